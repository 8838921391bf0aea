"""Paired comparison of two classifiers: two ``predictions.csv`` against one label CSV.

What ``medimg compare PRED_A.csv PRED_B.csv LABELS.csv`` runs; the statistics are those
of :mod:`medimg.metrics.compare`. The files are read by the same code as ``medimg
evaluate`` (:mod:`medimg.metrics.classification.inputs`), and both predictions must have
the same ``prob_<class>`` columns. Two metrics are compared:

* ``auc``, per class scored one-vs-rest (binary: the positive class; multi-class and
  multi-label: each class, plus their ``macro`` mean, whose interval is bootstrapped and
  which has no test): the paired bootstrap interval of ``AUC_B - AUC_A`` (resamples
  where a class lacks positives or negatives are left out) and DeLong's test;
* ``accuracy`` (binary and multi-class): each case is correct (1) or not (0), decided as
  ``medimg evaluate`` decides (the ``predicted`` column, else the ``threshold`` column,
  else 0.5 or the argmax); the per-case difference is compared like a segmentation
  metric (bootstrap interval of the mean difference, Wilcoxon signed-rank p).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from .classification.decisions import decisions
from .classification.inputs import PredictionsTable, read_labels, read_predictions
from .classification.roc import auc_columns
from .classification.tasks import prepare
from .compare import MIN_RELIABLE, CompareReport, no_common_cases, paired_difference
from .delong import delong_test
from .report import natural_key

__all__ = ["compare_classification"]


def _left_out(a: PredictionsTable, b: PredictionsTable, labels: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    ids_a, ids_b = set(a.case_ids), set(b.case_ids)
    everything = ids_a | ids_b | set(labels)
    common = sorted(ids_a & ids_b & set(labels), key=natural_key)
    left = {}
    for cid in everything - set(common):
        why = [f"no prediction in '{p.path.name}'" for p, ids in ((a, ids_a), (b, ids_b)) if cid not in ids]
        if cid not in labels:
            why.append("no label")
        left[cid] = "; ".join(why)
    return common, left


def _auc_rows(truth: np.ndarray, sa: np.ndarray, sb: np.ndarray, names: list[str], n_boot: int, ci: float,
              seed: int) -> list[dict[str, Any]]:
    n = truth.shape[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n)) if n_boot else None
    boot = (auc_columns(truth, sb, idx) - auc_columns(truth, sa, idx)) if idx is not None else None
    alpha = (1.0 - ci) / 2.0
    rows = []

    def interval(d: np.ndarray) -> tuple[float | None, float | None]:
        d = d[np.isfinite(d)]
        if not d.size:
            return None, None
        lo, hi = np.quantile(d, [alpha, 1 - alpha])
        return float(lo), float(hi)

    for c, name in enumerate(names):
        t = truth[:, c]
        row: dict[str, Any] = {"metric": "auc", "class": name, "n": n, "n_excluded": 0, "test": "delong",
                               "reliable": n >= MIN_RELIABLE, "higher_is_better": True,
                               "ci_low": None, "ci_high": None, "p_value": None}
        if t.all() or not t.any():
            row.update(mean_a=None, mean_b=None, diff=None, test="none: one class only")
            rows.append(row)
            continue
        dl = delong_test(t, sa[:, c], sb[:, c])
        row.update(mean_a=dl["auc_a"], mean_b=dl["auc_b"], diff=dl["diff"], p_value=dl["p"], se=dl["se"])
        if boot is not None:
            row["ci_low"], row["ci_high"] = interval(boot[:, c])
        rows.append(row)
    if len(names) > 1 and all(r["diff"] is not None for r in rows):
        macro = {"metric": "auc", "class": "macro", "n": n, "n_excluded": 0, "test": "none (bootstrap only)",
                 "reliable": n >= MIN_RELIABLE, "higher_is_better": True, "p_value": None,
                 "mean_a": float(np.mean([r["mean_a"] for r in rows])),
                 "mean_b": float(np.mean([r["mean_b"] for r in rows])), "ci_low": None, "ci_high": None}
        macro["diff"] = macro["mean_b"] - macro["mean_a"]
        if boot is not None:
            macro["ci_low"], macro["ci_high"] = interval(boot.mean(axis=1))
        rows.append(macro)
    return rows


def _task(labels_multilabel: bool, n_classes: int) -> str:
    return "multilabel" if labels_multilabel else ("binary" if n_classes == 2 else "multiclass")


def compare_classification(
    pred_a: str | Path,
    pred_b: str | Path,
    labels_csv: str | Path,
    output_dir: str | Path | None = None,
    *,
    label_column: str | None = None,
    split: str | None = None,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> CompareReport:
    """Compare two classifiers' predictions on the same labelled cases (module docstring).

    Raises:
        DataError: a file is malformed, the two predictions have different classes, or no
            case is in both predictions and the labels.
    """
    a, b = read_predictions(pred_a), read_predictions(pred_b)
    if a.classes != b.classes:
        raise DataError(
            f"'{a.path}' and '{b.path}' predict different classes ({', '.join(a.classes)} vs "
            f"{', '.join(b.classes)}); a paired comparison needs the same prob_<class> columns",
            hint="compare two models of the same task and classes",
        )
    labels = read_labels(labels_csv, a.classes, label_column=label_column, split=split, source=a.path.name)
    common, left = _left_out(a, b, labels.y)
    if not common:
        raise no_common_cases(str(a.path), str(b.path), str(labels.path),
                              {"A": a.case_ids, "B": b.case_ids, "labels": list(labels.y)})
    task = _task(labels.multilabel, len(a.classes))
    y = (np.stack([np.asarray(labels.y[c]) for c in common]) if task == "multilabel"
         else np.array([labels.y[c] for c in common]))
    rows_a = [a.case_ids.index(c) for c in common]
    rows_b = [b.case_ids.index(c) for c in common]
    prep_a, prep_b = prepare(y, a.probs[rows_a], task), prepare(y, b.probs[rows_b], task)
    truth, sa = prep_a.one_vs_rest()
    _, sb = prep_b.one_vs_rest()
    names = [a.classes[1]] if task == "binary" else list(a.classes)
    rows = _auc_rows(truth, sa, sb, names, bootstrap, ci, seed)
    notes = []
    if task != "multilabel":
        ya, _, notes_a, _ = decisions(a, rows_a, prep_a, None)
        yb, _, notes_b, _ = decisions(b, rows_b, prep_b, None)
        notes = [f"A: {n}" for n in notes_a] + [f"B: {n}" for n in notes_b]
        acc = paired_difference((ya == y).astype(float), (yb == y).astype(float), n_boot=bootstrap, ci=ci,
                                seed=seed)
        rows.append({"metric": "accuracy", "class": "overall", **acc, "higher_is_better": True})
    settings = {"pred_a": str(a.path), "pred_b": str(b.path), "labels": str(labels.path), "split": split,
                "task": task, "bootstrap": int(bootstrap), "ci": ci, "seed": seed,
                "resampling": "cases, the same resample for A and B"}
    report = CompareReport(rows, common, left, settings, "classification", notes)
    if output_dir is not None:
        report.write(output_dir)
    return report
