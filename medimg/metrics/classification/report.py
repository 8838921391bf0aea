"""The outcome of a classification evaluation.

:class:`ClassificationReport` holds what
:func:`~medimg.metrics.classification.evaluate_classification` found, and gives the content of ``metrics.csv`` (columns exactly :data:`METRICS_CSV_COLUMNS`) and
``summary.json`` (strict JSON: undefined values are null) and the one-screen text;
:mod:`.writing` writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METRICS_CSV_COLUMNS", "OVERALL", "ClassificationReport", "format_report"]

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
        subgroups: the subgroup analysis (:mod:`.subgroups`) when one was asked for.
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
    subgroups: Any = None

    @property
    def all_ok(self) -> bool:
        """Every case of both files scored (none without its label or prediction), and
        the subgroup analysis asked for done without a problem."""
        sub_ok = self.subgroups is None or not self.subgroups.problems
        return bool(self.cases) and not (self.missing_prediction or self.missing_label) and sub_ok

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
        sub = list(self.subgroups.problems) if self.subgroups is not None else []
        if not parts:
            return "\n".join(sub)
        head = "; ".join(parts) + f"; the metrics cover the {len(self.cases)} case(s) in both files"
        return "\n".join([head, *sub])

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
            **({"subgroups": self.subgroups.summary()} if self.subgroups is not None else {}),
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
        return format_report(self)


def _key_text(key: Key) -> str:
    return key[0] if key[1] is None else f"{key[0]}/{key[1]}"


def _nested(a: np.ndarray) -> Any:
    """A list (of lists) with NaN as None."""
    return [_nested(x) for x in a] if a.ndim else _finite_or_none(float(a))


# --------------------------------------------------------------------------------------
# The one-screen text (what the CLI prints)
# --------------------------------------------------------------------------------------
def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.4f}"


def _headline(r: ClassificationReport) -> str:
    what = {
        "binary": f"binary, positive class '{r.positive_class}'",
        "multiclass": f"multi-class, {len(r.classes)} classes",
        "multilabel": f"multi-label, {len(r.classes)} labels",
    }[r.task]
    line = f"{what}; {len(r.cases)} cases"
    if r.threshold is not None:
        v: Any = r.threshold["value"]
        shown = f"{v:g}" if isinstance(v, float) else ", ".join(f"{k} {t:g}" for k, t in v.items())
        line += f"; threshold {shown} ({r.threshold['source']})"
    return line


def _value_lines(r: ClassificationReport) -> list[str]:
    pct = round(100 * float(r.settings.get("ci", 0.95)))
    ci_head = f"{pct}% CI" if r.intervals else ""
    lines = [f"  {'metric':<18} {'class':<14} {'value':>7}  {ci_head:<18}  n"]
    for (metric, cls), v in r.values.items():
        lo, hi = r.intervals.get((metric, cls), (math.nan, math.nan))
        ci = f"[{_num(lo)}, {_num(hi)}]" if r.intervals and math.isfinite(v) else ""
        name = "overall" if cls is None else cls
        lines.append(f"  {metric:<18} {name[:14]:<14} {_num(v):>7}  {ci:<18}  {r.n[(metric, cls)]}")
    return lines


def _matrix_lines(m: np.ndarray, names: list[str], indent: str = "  ") -> list[str]:
    width = max(8, *(len(n) for n in names)) + 1
    lines = [indent + " " * width + "".join(f"{n[: width - 1]:>{width}}" for n in names)]
    for name, row in zip(names, m):
        lines.append(
            indent + f"{name[: width - 1]:<{width}}" + "".join(f"{int(c):>{width}}" for c in row)
        )
    return lines


def _confusion_lines(r: ClassificationReport) -> list[str]:
    if r.task != "multilabel":
        return [
            "confusion matrix (rows: true, columns: predicted):",
            *_matrix_lines(r.confusion, r.classes),
        ]
    out = ["confusion matrices per label (rows: true, columns: predicted):"]
    for name, m in zip(r.classes, r.confusion):
        out.append(f"  {name}:")
        out.extend(_matrix_lines(m, ["absent", "present"], "    "))
    return out


def format_report(r: ClassificationReport) -> str:
    """Task and threshold, each value with its interval and n, the confusion matrix,
    undefined values with their reason, unmatched cases, warnings and files."""
    lines = list(r.notes) + [_headline(r)] + _value_lines(r) + _confusion_lines(r)
    for (metric, cls), why in r.undefined.items():
        lines.append(f"undefined: {metric}{'' if cls is None else f' of {cls}'}: {why}")
    lines.append(
        f"cases: {len(r.cases)} scored, {len(r.missing_prediction)} labelled without a prediction, "
        f"{len(r.missing_label)} predicted without a label"
    )
    for what, ids in (
        ("without a prediction", r.missing_prediction),
        ("without a label", r.missing_label),
    ):
        if ids:
            shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
            lines.append(f"  {what}: {shown}")
    lines.extend(f"warning: {w}" for w in r.warnings)
    if r.subgroups is not None and r.subgroups.rows:
        lines.append(r.subgroups.format(problems=False))
    lines.extend(f"wrote {key}: {p}" for key, p in r.paths.items())
    return "\n".join(lines)
