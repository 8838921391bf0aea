"""The content of a segmentation evaluation's ``report.html`` / ``report.md``.

:func:`segmentation_document` turns an :class:`~.report.EvaluationReport` (and the
:class:`~.overlays.Overlay` s of its worst cases, if any) into a
:class:`~.html_report.Document`: what was scored and how, the summary table (mean, its
bootstrap interval, median and n per class and metric; intervals from fewer than ten
cases flagged), a per-class box plot of every metric, the subgroup tables (with
``--subgroup``), the worst cases drawn on their scans, and
what was left out (cases without a prediction or reference, cases that failed, worst
cases that could not be drawn). :func:`write_segmentation_pages` writes both files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .classification.report_page import subgroup_sections
from .html_report import (
    Bullets,
    Cell,
    Document,
    Figure,
    Section,
    Table,
    ci_cell,
    fmt,
    footer_line,
    write_pages,
)
from .overlays import Overlay
from .report import EvaluationReport

__all__ = ["segmentation_document", "write_segmentation_pages"]

_CLASS_MEAN = "_class_mean"


def _about(report: EvaluationReport) -> list[str]:
    s = report.summary.get("_settings", {})
    c = report.summary.get("_cases", {})
    pct = round(100 * float(s.get("ci", 0.95)))
    lines = [
        f"Predictions: {s.get('pred_dir', '?')}",
        f"References: {s.get('ref_dir', '?')}",
        f"{c.get('n_evaluated', len(report.cases))} case(s) scored; classes: "
        + (", ".join(report.label_names.values()) or "none"),
        f"Intervals: {pct}% percentile bootstrap over cases, {s.get('bootstrap', 0)} resamples, seed {s.get('seed', 0)}; "
        f"surface distances: {s.get('surface_distance', 'monai')} definitions; a class absent from both "
        f"prediction and reference scores {fmt(s.get('empty_score'), 3)} in overlap metrics.",
    ]
    if not report.all_ok:
        lines.insert(0, f"⚠ Incomplete: {report.problems()} (see 'What was left out').")
    return lines + list(report.notes)


def _summary_table(report: EvaluationReport) -> Table:
    pct = round(100 * float(report.summary.get("_settings", {}).get("ci", 0.95)))
    rows: list[list[str | Cell]] = []
    for label, per_metric in report.summary.items():
        if label.startswith("_") and label != _CLASS_MEAN:
            continue
        name = "mean over classes" if label == _CLASS_MEAN else label
        for metric, st in per_metric.items():
            excluded = f" ({st['n_excluded']} excluded: nan/inf)" if st.get("n_excluded") else ""
            rows.append([name, metric + _unit(metric), fmt(st["mean"]), ci_cell(st["ci_low"], st["ci_high"], int(st["n"])),
                         fmt(st["median"]), fmt(st["std"]), f"{st['n']}{excluded}"])
    return Table(["class", "metric", "mean", f"{pct}% CI of the mean", "median", "std", "n"], rows)


def _unit(metric: str) -> str:
    """`` (mm)`` / `` (ml)`` after a metric with a unit, from the metrics registry."""
    from .registry import METRICS

    try:
        unit = METRICS.get(metric).unit
    except Exception:  # noqa: BLE001  a name the registry does not know: no unit shown
        return ""
    return f" ({unit})" if unit else ""


def _left_out(report: EvaluationReport, overlays: Sequence[Overlay]) -> Section:
    sec = Section("What was left out")
    c = report.summary.get("_cases", {})
    items = []
    if report.missing_pred:
        how = "scored as empty predictions" if c.get("missing_pred_scored_as_empty") else "not scored"
        items.append(f"{len(report.missing_pred)} case(s) with a reference but no prediction ({how}): "
                     + ", ".join(report.missing_pred))
    if report.missing_ref:
        items.append(f"{len(report.missing_ref)} prediction(s) without a reference (not scored): "
                     + ", ".join(report.missing_ref))
    if report.failed:
        sec.add(Table(["case", "why it was not scored"],
                      [[cid, msg.splitlines()[0]] for cid, msg in report.failed.items()],
                      caption=f"{len(report.failed)} case(s) failed"))
    items.extend(f"overlay of {o.case_id} not drawn: {o.problem}" for o in overlays if o.problem)
    items.extend(f"warning: {w}" for w in report.warnings)
    if report.subgroups is not None:
        items.extend(f"subgroups: {p}" for p in report.subgroups.problems)
    if items:
        sec.add(Bullets(items))
    if not (items or report.failed):
        sec.add("Nothing: every case had a prediction and a reference, and every case was scored.")
    return sec


def _worst_section(overlays: Sequence[Overlay], images: Any) -> Section:
    sec = Section(f"Worst cases ({len(overlays)} lowest Dice)")
    sec.add(f"Scans from {images}. Each case is shown on the axial slice with the most voxels in error: "
            "reference contours solid, prediction dashed, one colour per class (left); false positives red, "
            "false negatives blue, wrong class purple (right). Radiological convention: the patient's right on the left.")
    rows: list[list[str | Cell]] = []
    for o in overlays:
        per = ", ".join(f"{k} {fmt(v, 3)}" for k, v in o.per_class.items())
        where = "n/a" if o.path is None else ("2D" if o.slice_index is None else f"{o.slice_index + 1} / {o.n_slices}")
        rows.append([o.case_id, fmt(o.dice), per, where, o.problem or ""])
    sec.add(Table(["case", "mean Dice", "Dice per class", "axial slice", "problem"], rows))
    for o in overlays:
        if o.path is not None:
            sec.add(Figure(o.path, f"{o.case_id}: mean Dice {fmt(o.dice, 3)}"
                           + (f", axial slice {o.slice_index + 1} of {o.n_slices}" if o.slice_index is not None else "")
                           + f", {o.error_voxels} voxels in error on it"))
    return sec


def segmentation_document(
    report: EvaluationReport, overlays: Sequence[Overlay] = (), images: Any = None
) -> Document:
    """The report's content (module docstring); figures are the PNGs in ``report.paths``."""
    doc = Document("Segmentation evaluation", _about(report))
    summary = Section("Summary").add(_summary_table(report))
    doc.sections.append(summary)
    metrics = list(report.summary.get("_settings", {}).get("metrics", {}))
    boxes = [(m, report.paths[f"{m}_boxplot"]) for m in metrics if f"{m}_boxplot" in report.paths]
    if boxes:
        doc.sections.append(Section("Per-case values by class").add(*(
            Figure(path, f"{m}{_unit(m)} per case and class: box (quartiles, median line, mean triangle) and every "
                         "case as a dot; nan/inf values left out (counted under each box)")
            for m, path in boxes)))
    doc.sections.extend(subgroup_sections(report.subgroups, float(report.summary.get("_settings", {}).get("ci", 0.95))))
    if overlays:
        doc.sections.append(_worst_section(overlays, images))
    doc.sections.append(_left_out(report, overlays))
    return doc


def write_segmentation_pages(
    report: EvaluationReport, out_dir: str | Path, overlays: Sequence[Overlay] = (), images: Any = None
) -> None:
    """Write ``report.html`` and ``report.md``; record them (and the overlays) in ``report.paths``."""
    for i, o in enumerate(overlays, start=1):
        if o.path is not None:
            report.paths[f"overlay_{i}"] = o.path
    report.paths.update(write_pages(segmentation_document(report, overlays, images), out_dir, footer_line()))
