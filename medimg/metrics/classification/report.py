"""The outcome of a classification evaluation and its files.

:class:`ClassificationReport` holds what
:func:`~medimg.metrics.classification.evaluate_classification` found; :func:`write_report`
writes ``metrics.csv`` (columns exactly :data:`METRICS_CSV_COLUMNS`), ``summary.json``
(strict JSON: undefined values are null), ``confusion_matrix.csv`` and the figures.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METRICS_CSV_COLUMNS", "OVERALL", "ClassificationReport", "write_report"]

#: Columns of ``metrics.csv``, in order.
METRICS_CSV_COLUMNS = ("metric", "class", "value", "ci_low", "ci_high", "n")
#: The ``class`` of the rows holding the task's value (binary: the positive class;
#: otherwise the macro average, or for multi-class accuracy the fraction correct).
OVERALL = "overall"

Key = tuple[str, "str | None"]  # (metric, class name or None for the task's value)


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass
class ClassificationReport:
    """The outcome of :func:`~medimg.metrics.classification.evaluate_classification`.

    Attributes:
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        classes: class (label) names, in the order of the ``prob_`` columns.
        cases: case ids scored (both files have them).
        values: ``{(metric, class): value}``; class None is the task's value
            (``overall`` in the files), a name a class's own (multi-class, multi-label).
            NaN where undefined, with the reason in ``undefined``.
        intervals: ``{(metric, class): (ci_low, ci_high)}`` (empty without bootstrap).
        n: ``{(metric, class): cases}``: the cases the value is a fraction of
            (``sensitivity``: the positives; ``ppv``: the cases predicted positive; the
            task's AUC, accuracy, balanced accuracy and F1: all cases scored).
        undefined: ``{(metric, class): why it has no value}``.
        confusion: counts ``[true, predicted]`` (``(K, K)``; multi-label ``(L, 2, 2)``).
        confusion_ci: row-normalised confusion intervals ``(low, high)`` or None.
        threshold: ``{"value": ..., "source": ...}`` of the binary / multi-label decision
            (None for multi-class: the argmax).
        missing_prediction: case ids with a label but no prediction.
        missing_label: case ids with a prediction but no label.
        warnings: what a reader of the numbers must know; notes: how it was set up.
        paths: the files written, by kind.
        settings: bootstrap, ci, seed, the input files and split.
    """

    task: str
    classes: list[str]
    cases: list[str]
    values: dict[Key, float]
    intervals: dict[Key, tuple[float, float]]
    n: dict[Key, int]
    undefined: dict[Key, str]
    confusion: np.ndarray
    confusion_ci: tuple[np.ndarray, np.ndarray] | None = None
    threshold: dict[str, Any] | None = None
    missing_prediction: list[str] = field(default_factory=list)
    missing_label: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def all_ok(self) -> bool:
        """Every case of both files scored: none without its label or prediction."""
        return bool(self.cases) and not (self.missing_prediction or self.missing_label)

    @property
    def positive_class(self) -> str | None:
        """The binary task's positive class (the second ``prob_`` column), else None."""
        return self.classes[1] if self.task == "binary" else None

    def problems(self) -> str:
        """One line counting unmatched cases ('' when :attr:`all_ok`)."""
        parts = []
        if self.missing_prediction:
            parts.append(f"{len(self.missing_prediction)} labelled case(s) without a prediction")
        if self.missing_label:
            parts.append(f"{len(self.missing_label)} predicted case(s) without a label")
        if not parts:
            return ""
        return "; ".join(parts) + f"; the metrics cover the {len(self.cases)} case(s) in both files"

    def value(self, metric: str, cls: str | None = None) -> float:
        """The value of ``metric`` (the task's, or the class ``cls``'s)."""
        return self.values[(metric, cls)]

    def rows(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.csv``: task values first, then each class's."""
        out = []
        for (metric, cls), v in self.values.items():
            lo, hi = self.intervals.get((metric, cls), (math.nan, math.nan))
            out.append(
                {
                    "metric": metric,
                    "class": OVERALL if cls is None else cls,
                    "value": v,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": self.n[(metric, cls)],
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """The content of ``summary.json`` (JSON-ready; undefined values are None)."""

        def stat(key: Key) -> dict[str, Any]:
            lo, hi = self.intervals.get(key, (math.nan, math.nan))
            return {
                "value": _finite_or_none(self.values[key]),
                "ci_low": _finite_or_none(lo),
                "ci_high": _finite_or_none(hi),
                "n": self.n[key],
            }

        per_class: dict[str, dict[str, Any]] = {}
        for key in self.values:
            if key[1] is not None:
                per_class.setdefault(key[1], {})[key[0]] = stat(key)
        return {
            "ok": self.all_ok,
            "task": self.task,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "threshold": self.threshold,
            "n_cases": len(self.cases),
            "metrics": {m: stat((m, c)) for (m, c) in self.values if c is None},
            "per_class": per_class,
            "undefined": {_key_text(k): why for k, why in self.undefined.items()},
            "confusion_matrix": self._confusion_summary(),
            "cases": {
                "n_evaluated": len(self.cases),
                "missing_prediction": self.missing_prediction,
                "missing_label": self.missing_label,
            },
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
        }

    def _confusion_summary(self) -> dict[str, Any]:
        counts = self.confusion
        rows = counts.sum(axis=-1, keepdims=True)
        frac = np.divide(counts, rows, out=np.full(counts.shape, np.nan), where=rows > 0)
        out: dict[str, Any] = {
            "axes": "[label][true][predicted]"
            if self.task == "multilabel"
            else "[true][predicted]",
            "classes": list(self.classes) if self.task != "multilabel" else ["absent", "present"],
            "counts": counts.tolist(),
            "row_normalised": _nested(frac),
        }
        if self.task == "multilabel":
            out["labels"] = list(self.classes)
        if self.confusion_ci is not None:
            out["row_normalised_ci_low"] = _nested(self.confusion_ci[0])
            out["row_normalised_ci_high"] = _nested(self.confusion_ci[1])
        return out

    def format(self) -> str:
        """A one-screen text summary: the task, every value with its interval, the
        confusion matrix, undefined values, unmatched cases, and the files written."""
        from .report_text import format_report

        return format_report(self)


def _key_text(key: Key) -> str:
    return key[0] if key[1] is None else f"{key[0]}/{key[1]}"


def _nested(a: np.ndarray) -> Any:
    """A list (of lists) with NaN as None."""
    return [_nested(x) for x in a] if a.ndim else _finite_or_none(float(a))


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


def write_report(
    report: ClassificationReport, output_dir: str | Path, figures: dict[str, Any] | None = None
) -> None:
    """Write ``metrics.csv``, ``summary.json``, ``confusion_matrix.csv`` and, with
    matplotlib, ``roc_curve.png`` and ``confusion_matrix.png``; record their paths in
    ``report.paths``.

    Args:
        figures: what the ROC figure needs: ``{"truth": (n, C) bool, "scores": (n, C)}``
            (None: no ROC figure).
    """
    from .plots import confusion_figure, roc_figure

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.paths["metrics_csv"] = write_metrics_csv(report, out / "metrics.csv")
    report.paths["confusion_csv"] = write_confusion_csv(report, out / "confusion_matrix.csv")
    path = out / "summary.json"
    path.write_text(json.dumps(report.summary(), indent=2, allow_nan=False) + "\n")
    report.paths["summary_json"] = path
    if figures is not None and ("auc", None) in report.values:
        png = roc_figure(report, figures["truth"], figures["scores"], out / "roc_curve.png")
        if png is not None:
            report.paths["roc_curve"] = png
    png = confusion_figure(report, out / "confusion_matrix.png")
    if png is not None:
        report.paths["confusion_png"] = png
