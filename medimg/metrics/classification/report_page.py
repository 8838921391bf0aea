"""The content of a classification evaluation's ``report.html`` / ``report.md``.

:func:`classification_document` turns a :class:`~.report.ClassificationReport` into a
:class:`~medimg.metrics.html_report.Document`: the task and threshold, the summary table
(every value with its bootstrap interval and the n it is a fraction of; intervals from
fewer than ten cases flagged), the ROC curve, the reliability diagram and the confusion
matrix (the PNGs :mod:`.writing` wrote), the confusion counts as a table, the subgroup
tables with the gaps between groups, and what was left out (cases without a label or a
prediction, subgroup problems, undefined values with their reason).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..html_report import (
    Bullets,
    Cell,
    Document,
    Section,
    Table,
    ci_cell,
    figures,
    fmt,
    write_pages,
)
from .report import ClassificationReport

__all__ = ["classification_document", "subgroup_sections", "write_classification_pages"]

_TASKS = {"binary": "binary", "multiclass": "multi-class", "multilabel": "multi-label"}


def _about(r: ClassificationReport) -> list[str]:
    s = r.settings
    lines = [f"Predictions: {s.get('predictions', '?')}", f"Labels: {s.get('labels', '?')}"
             + (f" (split '{s['split']}')" if s.get("split") else "")]
    task = _TASKS[r.task] + (f", positive class '{r.positive_class}'" if r.positive_class else "")
    lines.append(f"{task}; classes: {', '.join(r.classes)}; {len(r.cases)} case(s) scored")
    if r.threshold is not None:
        v: Any = r.threshold["value"]
        shown = f"{v:g}" if isinstance(v, float) else ", ".join(f"{k} {t:g}" for k, t in v.items())
        lines.append(f"Decision threshold {shown} ({r.threshold['source']})")
    if s.get("bootstrap"):
        pct = round(100 * float(s.get("ci", 0.95)))
        lines.append(f"Intervals: {pct}% percentile bootstrap, {s['bootstrap']} resamples of the "
                     f"{s.get('resampling', 'cases')}, seed {s.get('seed', 0)}")
    else:
        lines.append("No intervals (bootstrap 0)")
    if not r.all_ok:
        lines.insert(0, "⚠ Incomplete: " + "; ".join(r.problems().splitlines()) + " (see 'What was left out').")
    return lines + list(r.notes)


def _summary_table(r: ClassificationReport) -> Table:
    """Binary: one row per metric. Otherwise one row per metric and one column per class
    (``overall``: the macro mean, or multi-class accuracy), each cell ``value [CI] (n)``."""
    if r.task == "binary":
        return _binary_table(r)
    pct = round(100 * float(r.settings.get("ci", 0.95)))
    metrics = list(dict.fromkeys(m for m, _ in r.values))
    columns: list[str | None] = [None, *r.classes]
    rows: list[list[str | Cell]] = []
    for metric in metrics:
        row: list[str | Cell] = [metric]
        for cls in columns:
            if (metric, cls) not in r.values:
                row.append("")
                continue
            v, n = r.values[(metric, cls)], r.n[(metric, cls)]
            lo, hi = r.intervals.get((metric, cls), (math.nan, math.nan))
            ci = ci_cell(lo, hi, n) if math.isfinite(v) else Cell("")
            text = f"{fmt(v)} {ci.text}".strip() + ("" if ci.warn else f" (n={n})")
            row.append(Cell(text, ci.warn))
        rows.append(row)
    return Table(["metric", "overall", *r.classes], rows,
                 caption=f"value [{pct}% CI] (n: the cases it is a fraction of); overall: the task's value (the mean "
                 "over classes; multi-class accuracy: the fraction correct, ece: the top label)")


def _binary_table(r: ClassificationReport) -> Table:
    pct = round(100 * float(r.settings.get("ci", 0.95)))
    rows: list[list[str | Cell]] = []
    for (metric, cls), v in r.values.items():
        lo, hi = r.intervals.get((metric, cls), (math.nan, math.nan))
        n = r.n[(metric, cls)]
        ci = ci_cell(lo, hi, n) if math.isfinite(v) else Cell("n/a")
        note = r.undefined.get((metric, cls), "")
        rows.append([metric, "overall" if cls is None else cls, fmt(v), ci, str(n), note])
    return Table(["metric", "class", "value", f"{pct}% CI", "n", "note"], rows)


def _confusion_table(r: ClassificationReport) -> list[Table]:
    if r.task == "multilabel":
        return [Table(["true \\ predicted", "absent", "present"],
                      [[t, *(str(int(c)) for c in row)] for t, row in zip(("absent", "present"), m)],
                      caption=f"Confusion counts of '{name}'") for name, m in zip(r.classes, r.confusion)]
    return [Table(["true \\ predicted", *r.classes],
                  [[t, *(str(int(c)) for c in row)] for t, row in zip(r.classes, r.confusion)],
                  caption="Confusion counts (rows: true class, columns: predicted)")]


def _subgroup_sections(r: ClassificationReport) -> list[Section]:
    return subgroup_sections(r.subgroups, float(r.settings.get("ci", 0.95)))


def subgroup_sections(sub: Any, ci: float = 0.95) -> list[Section]:
    """A table per attribute of a :class:`~.subgroups.SubgroupReport` (None: none), and
    its problems (also the segmentation report's)."""
    if sub is None:
        return []
    pct = round(100 * ci)
    out = []
    for att in dict.fromkeys(row["attribute"] for row in sub.rows):
        rows: list[list[str | Cell]] = []
        for row in (x for x in sub.rows if x["attribute"] == att):
            name = row["group"] if row["kind"] == "group" else f"gap: {row['group'] or 'n/a'}"
            rows.append([name, row["metric"], fmt(row["value"]), ci_cell(row["ci_low"], row["ci_high"], int(row["n"])),
                         str(row["n"]), row["note"]])
        sec = Section(f"Subgroups by {att}")
        sec.add("Every metric per group, then the largest gap between groups (highest minus lowest value, "
                "over the groups with an interval); an interval of a gap that reaches below 0 means the data "
                "do not show which group is better.",
                Table(["group", "metric", "value", f"{pct}% CI", "n", "note"], rows))
        out.append(sec)
    if sub.problems:
        out.append(Section("Subgroup problems").add(Bullets(list(sub.problems))))
    return out


def _left_out(r: ClassificationReport) -> Section:
    sec = Section("What was left out")
    items = []
    if r.missing_prediction:
        items.append(f"{len(r.missing_prediction)} labelled case(s) without a prediction (not scored): "
                     + ", ".join(r.missing_prediction))
    if r.missing_label:
        items.append(f"{len(r.missing_label)} predicted case(s) without a label (not scored): "
                     + ", ".join(r.missing_label))
    items.extend(f"undefined: {m}{'' if c is None else f' of {c}'}: {why}" for (m, c), why in r.undefined.items())
    items.extend(f"warning: {w}" for w in r.warnings)
    if r.subgroups is not None:
        items.extend(f"subgroups: {p}" for p in r.subgroups.problems)
    sec.add(Bullets(items) if items else "Nothing: every case of both files was scored.")
    return sec


def classification_document(r: ClassificationReport) -> Document:
    """The report's content (module docstring); figures are the PNGs in ``r.paths``."""
    doc = Document("Classification evaluation", _about(r))
    doc.sections.append(Section("Summary").add(_summary_table(r)))
    figs = figures([
        (r.paths.get("roc_curve"), "ROC curve: AUC with its interval in the legend"
                                   + ("; the dot is the operating point" if r.task == "binary" else "")),
        (r.paths.get("reliability_png"), "Reliability diagram: observed frequency against predicted probability "
                                         "(the diagonal is perfect calibration), with the ECE"),
        (r.paths.get("confusion_png"), "Confusion matrix: counts, and each true class's cases split by prediction"),
    ])
    doc.sections.append(Section("Figures").add(*figs) if figs else Section("Figures").add(
        "No figures (matplotlib is not installed: pip install 'medimg[plots]')."))
    doc.sections.append(Section("Confusion matrix").add(*_confusion_table(r)))
    doc.sections.extend(_subgroup_sections(r))
    doc.sections.append(_left_out(r))
    return doc


def write_classification_pages(r: ClassificationReport, out_dir: str | Path, footer: str = "") -> None:
    """Write ``report.html`` and ``report.md``; record them in ``r.paths``."""
    r.paths.update(write_pages(classification_document(r), out_dir, footer))
