"""Writing a :class:`~.report.ClassificationReport`: ``metrics.csv``, ``summary.json``, ``roc_curve.csv``,
``confusion_matrix.csv`` and the figures of :mod:`.plots` and :mod:`.reliability`."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..html_report import footer_line
from .calibration import reliability_columns
from .plots import confusion_figure, roc_figure
from .reliability import ece_note, reliability_figure
from .report import METRICS_CSV_COLUMNS, ClassificationReport
from .report_page import write_classification_pages
from .roc import binary_roc
from .subgroups import SUBGROUPS_CSV_COLUMNS

__all__ = ["ROC_CSV_COLUMNS", "write_confusion_csv", "write_metrics_csv", "write_report", "write_roc_csv",
           "write_subgroups_csv"]

#: Columns of ``roc_curve.csv``: one row per operating point of each ROC curve.
ROC_CSV_COLUMNS = ("class", "threshold", "false_positive_rate", "sensitivity", "specificity", "accuracy",
                   "predicted_positive")


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else repr(float(x))


def write_metrics_csv(report: ClassificationReport, path: Path) -> Path:
    """``metrics.csv``: one row per (metric, class), columns :data:`METRICS_CSV_COLUMNS`;
    undefined values and intervals as ``nan``."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(METRICS_CSV_COLUMNS)
        for r in report.rows():
            w.writerow(
                [
                    r["metric"],
                    r["class"],
                    _fmt(r["value"]),
                    _fmt(r["ci_low"]),
                    _fmt(r["ci_high"]),
                    r["n"],
                ]
            )
    return path


def write_subgroups_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """``subgroups.csv``: columns :data:`~.subgroups.SUBGROUPS_CSV_COLUMNS`, one row per
    (attribute, group, metric) and per (attribute, gap); NaN as ``nan``."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SUBGROUPS_CSV_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r[c]) if c in ("value", "ci_low", "ci_high") else r[c] for c in SUBGROUPS_CSV_COLUMNS])
    return path


def write_confusion_csv(report: ClassificationReport, path: Path) -> Path:
    """``confusion_matrix.csv``: ``[label,] true, predicted, count, fraction_of_true,
    ci_low, ci_high`` (``label`` and absent/present for multi-label)."""
    m = report.confusion if report.task == "multilabel" else report.confusion[None]
    lo, hi = (np.full(m.shape, np.nan),) * 2
    if report.confusion_ci is not None:
        lo, hi = (np.reshape(x, m.shape) for x in report.confusion_ci)
    names = ["absent", "present"] if report.task == "multilabel" else report.classes
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        lead = ["label"] if report.task == "multilabel" else []
        w.writerow(lead + ["true", "predicted", "count", "fraction_of_true", "ci_low", "ci_high"])
        for k in range(m.shape[0]):
            row_sum = m[k].sum(axis=1)
            for t, tname in enumerate(names):
                for p, pname in enumerate(names):
                    frac = m[k, t, p] / row_sum[t] if row_sum[t] else math.nan
                    label = [report.classes[k]] if report.task == "multilabel" else []
                    w.writerow(
                        label
                        + [
                            tname,
                            pname,
                            int(m[k, t, p]),
                            _fmt(frac),
                            _fmt(lo[k, t, p]),
                            _fmt(hi[k, t, p]),
                        ]
                    )
    return path


def write_roc_csv(report: ClassificationReport, truth: np.ndarray, scores: np.ndarray, path: Path) -> Path:
    """``roc_curve.csv``: every operating point of the curves in ``roc_curve.png``.

    Row ``k`` of a class is the rule "positive when ``p >= threshold``" (the first row, at
    ``inf``, calls nothing positive). ``accuracy`` is the fraction of cases that rule
    classifies correctly (binary: the task's accuracy at that threshold; multi-class and
    multi-label: the one-vs-rest accuracy of that class or label), so the best accuracy
    any threshold reaches can be read off, not guessed.

    Args:
        truth, scores: ``(n, C)`` one-vs-rest columns (binary: the positive class only).
    """
    names = [report.positive_class or ""] if report.task == "binary" else report.classes
    n = truth.shape[0]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ROC_CSV_COLUMNS)
        for k, name in enumerate(names):
            fpr, tpr, thresholds = binary_roc(truth[:, k], scores[:, k])
            npos = int(truth[:, k].sum())
            correct = tpr * npos + (1.0 - fpr) * (n - npos)
            called = tpr * npos + fpr * (n - npos)
            for t, fp, tp, c, m in zip(thresholds, fpr, tpr, correct, called):
                w.writerow([name, "inf" if t == np.inf else _fmt(t), _fmt(fp), _fmt(tp), _fmt(1.0 - fp), _fmt(c / n), int(round(m))])
    return path


def write_report(
    report: ClassificationReport, output_dir: str | Path, figures: dict[str, Any] | None = None
) -> None:
    """Write ``metrics.csv``, ``summary.json``, ``confusion_matrix.csv``, ``roc_curve.csv``
    (where the AUC was scored) and, with matplotlib, ``roc_curve.png`` and ``confusion_matrix.png``; then ``report.html`` and
    ``report.md`` (:mod:`.report_page`) showing them; record their paths in
    ``report.paths``.

    Args:
        figures: what the figures need: ``{"truth": (n, C) bool, "scores": (n, C)}``
            for the ROC curves, and ``"prep"`` (the checked task) for
            ``reliability_diagram.png`` when ``ece`` was scored (None: neither).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.paths["metrics_csv"] = write_metrics_csv(report, out / "metrics.csv")
    report.paths["confusion_csv"] = write_confusion_csv(report, out / "confusion_matrix.csv")
    if report.subgroups is not None and report.subgroups.rows:
        report.paths["subgroups_csv"] = write_subgroups_csv(report.subgroups.rows, out / "subgroups.csv")
    path = out / "summary.json"
    path.write_text(json.dumps(report.summary(), indent=2, allow_nan=False) + "\n")
    report.paths["summary_json"] = path
    if figures is not None and ("auc", None) in report.values:
        report.paths["roc_csv"] = write_roc_csv(report, figures["truth"], figures["scores"], out / "roc_curve.csv")
        png = roc_figure(report, figures["truth"], figures["scores"], out / "roc_curve.png")
        if png is not None:
            report.paths["roc_curve"] = png
    png = confusion_figure(report, out / "confusion_matrix.png")
    if png is not None:
        report.paths["confusion_png"] = png
    if figures is not None and "prep" in figures and ("ece", None) in report.values:
        png = _reliability(report, figures["prep"], out / "reliability_diagram.png")
        if png is not None:
            report.paths["reliability_png"] = png
    write_classification_pages(report, out, footer_line())


def _reliability(report: ClassificationReport, prep: Any, path: Path) -> Path | None:
    """The reliability diagram of the scored predictions, each curve's ECE in its legend."""
    names = [report.positive_class or ""] if report.task == "binary" else report.classes
    curves = reliability_columns(prep, names)
    keys = [("ece", None)] if report.task != "multilabel" else [("ece", n) for n in names]
    notes = [ece_note(report.values.get(k, math.nan), report.intervals.get(k)) for k in keys]
    title = f"{len(report.cases)} cases" + (
        f"; positive class '{report.positive_class}'" if report.task == "binary" else ""
    )
    return reliability_figure([(title, curves, notes)], path, top_label=report.task == "multiclass")
