"""Confusion matrices and the metrics made of them, plus the table of every metric.

Definitions, per class scored one-vs-rest (TP, FP, FN, TN counted in cases):

=====================  =============================  ==================================
``accuracy``           (TP + TN) / n                  multi-class: correct / n
``balanced_accuracy``  (sensitivity + specificity)/2  multi-class: mean sensitivity
``sensitivity``        TP / (TP + FN)                 recall, true positive rate
``specificity``        TN / (TN + FP)                 true negative rate
``ppv``                TP / (TP + FP)                 precision
``npv``                TN / (TN + FN)
``f1``                 2 TP / (2 TP + FP + FN)
``auc``                see :mod:`.roc`
``ece``, ``brier``,    see :mod:`.calibration` (from the probabilities, not the counts;
``nll``                lower is better)
=====================  =============================  ==================================

Binary tasks report the positive class. Multi-class and multi-label tasks report every
class (label) and, as the task's value, the unweighted mean over them (macro average;
multi-class ``accuracy`` and ``balanced_accuracy`` are defined on the task directly).

A ratio whose denominator is 0 (``ppv`` when nothing was predicted positive) does not
exist: it is NaN here, never 0, and :func:`undefined_reason` says why; a macro average
over a class whose value is NaN is NaN too. Only the AUC raises, because a task whose
labels hold one class cannot be ranked at all (:mod:`.roc`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...core.errors import DataError
from .calibration import CALIBRATION_METRICS, calibration_table
from .roc import auc_columns, check_auc_defined
from .tasks import Prepared, decide, prepare

__all__ = [
    "CLASSIFICATION_METRICS",
    "accuracy",
    "balanced_accuracy",
    "check_metric_names",
    "classification_metrics",
    "confusion_batch",
    "confusion_matrix",
    "f1",
    "metric_table",
    "npv",
    "ppv",
    "sensitivity",
    "specificity",
    "undefined_reason",
]

#: The classification metrics, by the name used everywhere (configs, CSV, summary.json).
CLASSIFICATION_METRICS = (
    "auc",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    *CALIBRATION_METRICS,
)
#: Metrics that multi-class reports per class as well (accuracy is the task's own).
_PER_CLASS_MULTICLASS = ("auc", "sensitivity", "specificity", "ppv", "npv", "f1")

Key = tuple[str, "int | None"]  # (metric, class index or None for the task's value)


def check_metric_names(metrics: Any) -> tuple[str, ...]:
    """The metric names, checked against :data:`CLASSIFICATION_METRICS` (None: all)."""
    if metrics is None:
        return CLASSIFICATION_METRICS
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in names if m not in CLASSIFICATION_METRICS]
    if unknown or not names:
        found = ", ".join(f"'{m}'" for m in unknown) if unknown else "none"
        raise DataError(
            f"unknown classification metric name(s): {found}; "
            f"expected names among {', '.join(CLASSIFICATION_METRICS)}"
        )
    return names


def confusion_batch(prep: Prepared, y_pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Confusion counts of every resample of cases.

    Args:
        prep: the checked task; y_pred: predicted labels (layout of ``prep.y``).
        idx: ``(B, m)`` case indices, one row per resample (``arange(n)[None]``: the data).

    Returns:
        single-label ``(B, K, K)`` with ``[b, true, predicted]``; multi-label
        ``(B, L, 2, 2)`` with ``[b, label, true, predicted]``; int64.
    """
    b = idx.shape[0]
    if prep.task == "multilabel":
        ncell = 4 * prep.num_classes
        code = np.arange(prep.num_classes) * 4 + prep.y * 2 + y_pred  # (n, L)
        codes = code[idx] + (np.arange(b) * ncell)[:, None, None]
        shape: tuple[int, ...] = (b, prep.num_classes, 2, 2)
    else:
        k = prep.num_classes
        ncell = k * k
        codes = (prep.y * k + y_pred)[idx] + (np.arange(b) * ncell)[:, None]
        shape = (b, k, k)
    return np.bincount(codes.ravel(), minlength=b * ncell).reshape(shape)


def one_vs_rest_counts(prep: Prepared, m: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(tp, fp, fn, tn)``, each ``(B, C)``, from :func:`confusion_batch` counts."""
    if prep.task == "multilabel":
        return m[..., 1, 1], m[..., 0, 1], m[..., 1, 0], m[..., 0, 0]
    if prep.task == "binary":
        return m[:, 1:, 1], m[:, :1, 1], m[:, 1:, 0], m[:, :1, 0]
    tp = np.diagonal(m, axis1=1, axis2=2)
    fp = m.sum(axis=1) - tp
    fn = m.sum(axis=2) - tp
    tn = m.sum(axis=(1, 2))[:, None] - tp - fp - fn
    return tp, fp, fn, tn


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _per_class_rates(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray
) -> dict[str, np.ndarray]:
    sens = _ratio(tp, tp + fn)
    spec = _ratio(tn, tn + fp)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "balanced_accuracy": (sens + spec) / 2.0,
        "sensitivity": sens,
        "specificity": spec,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def metric_table(
    prep: Prepared,
    y_pred: np.ndarray,
    metrics: tuple[str, ...] = CLASSIFICATION_METRICS,
    idx: np.ndarray | None = None,
    codes: list[tuple[np.ndarray, int]] | None = None,
) -> tuple[dict[Key, np.ndarray], np.ndarray]:
    """Every metric of every resample: the one computation behind values and intervals.

    Args:
        prep, y_pred: the checked task and its predicted labels.
        metrics: names from :data:`CLASSIFICATION_METRICS`.
        idx: ``(B, m)`` case indices per resample; None for the data itself (``B = 1``).
        codes: :func:`~.roc.rank_codes` of the task, computed once for many calls.

    Returns:
        ``(table, confusion)``: ``{(metric, class): (B,) values}`` with class None for the
        task's value and an index for a class's own (multi-class, multi-label), and the
        :func:`confusion_batch` counts.
    """
    if idx is None:
        idx = np.arange(prep.n)[None, :]
    m = confusion_batch(prep, y_pred, idx)
    tp, fp, fn, tn = one_vs_rest_counts(prep, m)
    per = _per_class_rates(tp, fp, fn, tn)
    if "auc" in metrics:
        truth, scores = prep.one_vs_rest()
        per["auc"] = auc_columns(truth, scores, idx, codes)
    table: dict[Key, np.ndarray] = {}
    for name in metrics:
        if name in CALIBRATION_METRICS:
            table.update(calibration_table(prep, idx, (name,)))
            continue
        if prep.task == "binary":
            table[(name, None)] = per[name][:, 0]
            continue
        table[(name, None)] = per[name].mean(axis=1)
        if prep.task == "multilabel" or name in _PER_CLASS_MULTICLASS:
            for c in range(prep.num_classes):
                table[(name, c)] = per[name][:, c]
    if prep.task == "multiclass":  # defined on the task, not as a mean of one-vs-rest values
        if "accuracy" in metrics:
            table[("accuracy", None)] = tp.sum(axis=1) / idx.shape[1]
        if "balanced_accuracy" in metrics:
            table[("balanced_accuracy", None)] = per["sensitivity"].mean(axis=1)
    return table, m


def undefined_reason(metric: str, tp: int, fp: int, fn: int, tn: int, name: str) -> str:
    """Why ``metric`` of the class called ``name`` has no value, given its counts."""
    reasons = {
        "sensitivity": f"no case is {name} in the labels",
        "specificity": f"every case is {name} in the labels",
        "ppv": f"no case was predicted {name}",
        "npv": f"every case was predicted {name}",
        "f1": f"no case is or was predicted {name}",
        "balanced_accuracy": (
            f"no case is {name} in the labels"
            if tp + fn == 0
            else f"every case is {name} in the labels"
        ),
    }
    return reasons.get(metric, "no case to count")


# --------------------------------------------------------------------------------------
# The pure functions, one per metric
# --------------------------------------------------------------------------------------
def _value(
    name: str, y_true: Any, probs: Any, task: str | None, threshold: Any, average: str | None
) -> float | np.ndarray:
    if average not in ("macro", None):
        raise DataError(f"average must be 'macro' or None; got {average!r}")
    prep = prepare(y_true, probs, task)
    if average is None and prep.task != "binary":
        tp, fp, fn, tn = one_vs_rest_counts(
            prep, confusion_batch(prep, decide(prep, threshold), np.arange(prep.n)[None])
        )
        return _per_class_rates(tp, fp, fn, tn)[name][0]
    table, _ = metric_table(prep, decide(prep, threshold), (name,))
    return float(table[(name, None)][0])


def accuracy(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """Fraction of cases classified correctly (multi-label: per label, then the mean).

    Args:
        y_true, probs, task: as in :mod:`medimg.metrics.classification.tasks`.
        threshold: binary and multi-label decision threshold (``p >= threshold`` is
            positive); one per label allowed. Multi-class uses the argmax.
        average: ``"macro"`` for the task's value; None for one value per class
            (one-vs-rest; binary always gives one number).
    """
    return _value("accuracy", y_true, probs, task, threshold, average)


def balanced_accuracy(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """Mean of sensitivity and specificity (multi-class: mean sensitivity over classes).
    Arguments as :func:`accuracy`; NaN when a class is absent from ``y_true``."""
    return _value("balanced_accuracy", y_true, probs, task, threshold, average)


def sensitivity(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """TP / (TP + FN), the true positive rate (recall). Arguments as :func:`accuracy`;
    NaN when no case is positive."""
    return _value("sensitivity", y_true, probs, task, threshold, average)


def specificity(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """TN / (TN + FP), the true negative rate. Arguments as :func:`accuracy`; NaN when
    every case is positive."""
    return _value("specificity", y_true, probs, task, threshold, average)


def ppv(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """TP / (TP + FP), the positive predictive value (precision). Arguments as
    :func:`accuracy`; NaN (not 0) when nothing was predicted positive."""
    return _value("ppv", y_true, probs, task, threshold, average)


def npv(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """TN / (TN + FN), the negative predictive value. Arguments as :func:`accuracy`; NaN
    when nothing was predicted negative."""
    return _value("npv", y_true, probs, task, threshold, average)


def f1(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    average: str | None = "macro",
) -> float | np.ndarray:
    """2 TP / (2 TP + FP + FN), the harmonic mean of sensitivity and PPV. Arguments as
    :func:`accuracy`; NaN when no case is or was predicted positive."""
    return _value("f1", y_true, probs, task, threshold, average)


def confusion_matrix(
    y_true: Any, probs: Any, *, task: str | None = None, threshold: Any = 0.5
) -> np.ndarray:
    """Counts of (true, predicted) classes.

    Returns:
        binary ``(2, 2)`` ``[[TN, FP], [FN, TP]]``; multi-class ``(K, K)``; both indexed
        ``[true, predicted]``. Multi-label ``(L, 2, 2)``, one binary matrix per label.
    """
    prep = prepare(y_true, probs, task)
    return confusion_batch(prep, decide(prep, threshold), np.arange(prep.n)[None])[0]


def classification_metrics(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    metrics: Any = None,
    split: str | None = None,
) -> dict[str, float]:
    """The task's value of every metric, by name (what validation selects on).

    Args:
        y_true, probs, task, threshold: as in :func:`accuracy`.
        metrics: names from :data:`CLASSIFICATION_METRICS` (default: all).
        split: the name of the data (``"validation"``), used in errors.

    Raises:
        DataError: ``auc`` asked for where a class has no positive or no negative case.
    """
    names = check_metric_names(metrics)
    prep = prepare(y_true, probs, task)
    if "auc" in names:
        check_auc_defined(prep.one_vs_rest()[0], prep, split)
    table, _ = metric_table(prep, decide(prep, threshold), names)
    return {name: float(table[(name, None)][0]) for name in names}
