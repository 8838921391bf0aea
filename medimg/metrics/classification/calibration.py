"""Calibration: do the probabilities mean what they say? ``ece``, ``brier`` and ``nll``.

Definitions, with ``p`` the predicted probability and ``y`` the 0/1 outcome of a column
(the positive class of a binary task; one class of a multi-class task scored
one-vs-rest; one label of a multi-label task):

=========  =====================================================================
``ece``    expected calibration error with :data:`ECE_BINS` (15) **equal-width** bins
           on [0, 1] (bin ``b`` holds ``b/15 <= p < (b+1)/15``, the last one also
           ``p = 1``): ``sum_b (n_b / n) |mean p in b - fraction y = 1 in b|``
           (Naeini et al. 2015; Guo et al. 2017). Lower is better, 0 is perfect.
``brier``  mean squared error of the probability: ``mean (p - y)^2`` (Brier 1950).
``nll``    negative log-likelihood of the labels, natural log, per case:
           ``-mean [y log p + (1 - y) log(1 - p)]``; probabilities are clipped to
           ``[1e-15, 1 - 1e-15]`` (:data:`NLL_EPS`) so a confident error costs 34.5, not inf.
=========  =====================================================================

Per task:

* **binary**: the positive class's column (the curve a clinician reads: predicted risk
  against observed frequency).
* **multi-class**, the task's value: ``ece`` is the top-label ECE of Guo et al. (bins of
  the highest probability against the fraction of cases whose argmax is right);
  ``brier`` sums over the K classes per case (``sum_k (p_k - y_k)^2``, 0..2, Brier's own
  definition); ``nll`` is ``-mean log p_true``. ``ece`` and ``brier`` are also reported
  per class, one-vs-rest (``nll`` is the task's only).
* **multi-label**: every label as a binary column, and their unweighted mean.

All three come from per-case terms, so a bootstrap resample costs one gather (``brier``,
``nll``) or one ``bincount`` per column (``ece``), like the confusion counts. A binned
ECE is biased upwards on few cases (bin noise adds to it), so its bootstrap values tend
to lie above the data's own value and the percentile interval with them; compare ECEs on
sets of similar size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...core.errors import DataError
from .tasks import Prepared, prepare

__all__ = [
    "CALIBRATION_METRICS",
    "ECE_BINS",
    "LOWER_IS_BETTER",
    "NLL_EPS",
    "brier",
    "calibration_table",
    "ece",
    "nll",
    "reliability_columns",
    "reliability_curve",
]

#: The calibration metrics, by name (also in ``CLASSIFICATION_METRICS``).
CALIBRATION_METRICS = ("ece", "brier", "nll")
#: Metrics for which a lower value is better (the others: higher).
LOWER_IS_BETTER = CALIBRATION_METRICS
#: Equal-width probability bins of ``ece`` and the reliability diagram.
ECE_BINS = 15
#: Probabilities are clipped to ``[NLL_EPS, 1 - NLL_EPS]`` before the log of ``nll``.
NLL_EPS = 1e-15

Key = tuple[str, "int | None"]


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each probability (``p = 1`` in the last bin)."""
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def _ece_resamples(conf: np.ndarray, hit: np.ndarray, idx: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE ``(B,)`` of one column for every resample ``idx`` ``(B, m)``.

    ``sum_b (n_b / m) |mean conf - mean hit|`` equals ``(1/m) sum_b |sum (conf - hit)|``:
    one weighted ``bincount`` per chunk of resamples."""
    b = idx.shape[0]
    code = (_bins(conf, n_bins)[idx] + (np.arange(b) * n_bins)[:, None]).ravel()
    diff = (conf - hit)[idx].ravel()
    sums = np.bincount(code, weights=diff, minlength=b * n_bins).reshape(b, n_bins)
    return np.abs(sums).sum(axis=1) / idx.shape[1]


def _columns(prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """``(p, y)``, each ``(n, C)`` float64: one column per class scored one-vs-rest."""
    truth, scores = prep.one_vs_rest()
    return scores.astype(np.float64), truth.astype(np.float64)


def _nll_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    q = np.clip(p, NLL_EPS, 1.0 - NLL_EPS)
    return -(y * np.log(q) + (1.0 - y) * np.log1p(-q))


def calibration_table(
    prep: Prepared, idx: np.ndarray, metrics: tuple[str, ...], n_bins: int = ECE_BINS
) -> dict[Key, np.ndarray]:
    """``{(metric, class): (B,) values}`` of the calibration metrics among ``metrics``, for
    every resample ``idx`` ``(B, m)`` (the layout of :func:`~.counts.metric_table`)."""
    names = [m for m in metrics if m in CALIBRATION_METRICS]
    if not names:
        return {}
    p, y = _columns(prep)
    per: dict[str, np.ndarray] = {}  # (B, C) per column, one-vs-rest
    if "ece" in names:
        per["ece"] = np.stack(
            [_ece_resamples(p[:, c], y[:, c], idx, n_bins) for c in range(p.shape[1])], axis=1
        )
    if "brier" in names:
        per["brier"] = ((p - y) ** 2)[idx].mean(axis=1)
    if "nll" in names:
        per["nll"] = _nll_terms(p, y)[idx].mean(axis=1)
    table: dict[Key, np.ndarray] = {}
    for name in names:
        if prep.task == "binary":
            table[(name, None)] = per[name][:, 0]
            continue
        table[(name, None)] = per[name].mean(axis=1)
        if prep.task == "multilabel" or name != "nll":
            for c in range(prep.num_classes):
                table[(name, c)] = per[name][:, c]
    if prep.task == "multiclass":  # defined on the task, not as a mean of columns
        if "ece" in names:
            conf = prep.scores.max(axis=1)
            hit = (np.argmax(prep.scores, axis=1) == prep.y).astype(np.float64)
            table[("ece", None)] = _ece_resamples(conf, hit, idx, n_bins)
        if "brier" in names:
            table[("brier", None)] = per["brier"].sum(axis=1)
        if "nll" in names:
            p_true = p[np.arange(prep.n), prep.y]
            table[("nll", None)] = -np.log(np.clip(p_true, NLL_EPS, 1.0))[idx].mean(axis=1)
    return table


# --------------------------------------------------------------------------------------
# Reliability curves (the diagram's data)
# --------------------------------------------------------------------------------------
def reliability_curve(
    conf: np.ndarray, hit: np.ndarray, n_bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean_probability, observed_fraction, count)`` of the non-empty equal-width bins.

    Args:
        conf: ``(n,)`` probabilities; hit: ``(n,)`` 0/1 outcomes (the case is positive, or
            its top-label prediction is right).
    """
    b = _bins(np.asarray(conf, dtype=np.float64), n_bins)
    count = np.bincount(b, minlength=n_bins)
    s_conf = np.bincount(b, weights=conf, minlength=n_bins)
    s_hit = np.bincount(b, weights=np.asarray(hit, dtype=np.float64), minlength=n_bins)
    keep = count > 0
    return s_conf[keep] / count[keep], s_hit[keep] / count[keep], count[keep]


def reliability_columns(prep: Prepared, names: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, probability, outcome)]``: the curves of a reliability diagram.

    Binary: the positive class. Multi-class: the top label (highest probability against
    whether the argmax is right). Multi-label: one curve per label.
    """
    if prep.task == "multiclass":
        conf = prep.scores.max(axis=1)
        hit = (np.argmax(prep.scores, axis=1) == prep.y).astype(np.float64)
        return [("top label", conf, hit)]
    p, y = _columns(prep)
    return [(names[c], p[:, c], y[:, c]) for c in range(p.shape[1])]


# --------------------------------------------------------------------------------------
# The pure functions
# --------------------------------------------------------------------------------------
def _value(name: str, y_true: Any, probs: Any, task: str | None, average: str | None, n_bins: int) -> Any:
    if average not in ("macro", None):
        raise DataError(f"average must be 'macro' or None; got {average!r}")
    if int(n_bins) < 1:
        raise DataError(f"n_bins must be >= 1; got {n_bins}")
    prep = prepare(y_true, probs, task)
    table = calibration_table(prep, np.arange(prep.n)[None, :], (name,), int(n_bins))
    if average is None and prep.task != "binary" and (name, 0) in table:
        return np.array([table[(name, c)][0] for c in range(prep.num_classes)])
    return float(table[(name, None)][0])


def ece(
    y_true: Any,
    probs: Any,
    *,
    task: str | None = None,
    n_bins: int = ECE_BINS,
    average: str | None = "macro",
) -> float | np.ndarray:
    """Expected calibration error with ``n_bins`` equal-width bins (module docstring).

    Args:
        y_true, probs, task: as in :mod:`medimg.metrics.classification.tasks`.
        n_bins: bins on [0, 1] (default 15).
        average: ``"macro"`` for the task's value (multi-class: top-label ECE); None
            for one value per class, one-vs-rest (binary always gives one number).
    """
    return _value("ece", y_true, probs, task, average, n_bins)


def brier(
    y_true: Any, probs: Any, *, task: str | None = None, average: str | None = "macro"
) -> float | np.ndarray:
    """Brier score, ``mean (p - y)^2`` (multi-class: summed over classes per case).
    Arguments as :func:`ece`."""
    return _value("brier", y_true, probs, task, average, ECE_BINS)


def nll(
    y_true: Any, probs: Any, *, task: str | None = None, average: str | None = "macro"
) -> float | np.ndarray:
    """Negative log-likelihood (log loss, natural log) per case. Multi-class:
    ``-mean log p_true`` (one number); multi-label: binary cross-entropy per label and
    their mean. Arguments as :func:`ece`."""
    return _value("nll", y_true, probs, task, average, ECE_BINS)
