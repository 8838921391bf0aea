"""The one-screen text of a :class:`~.report.ClassificationReport` (what the CLI prints)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .report import ClassificationReport

__all__ = ["format_report"]


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
    lines.extend(f"wrote {key}: {p}" for key, p in r.paths.items())
    return "\n".join(lines)
