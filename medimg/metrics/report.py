"""The outcome of an evaluation: rows, summary with confidence intervals, and its files.

:class:`EvaluationReport` holds what :func:`~medimg.metrics.evaluate_folders` found;
:func:`write_report` writes ``metrics.csv`` (columns exactly :data:`CSV_COLUMNS`),
``summary.json`` (strict JSON: NaN and inf become null) and ``dice_boxplot.png``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bootstrap import summarize
from .plots import metric_boxplot

__all__ = [
    "CSV_COLUMNS",
    "EvaluationReport",
    "case_rows",
    "natural_key",
    "summarize_rows",
    "write_metrics_csv",
    "write_report",
]

#: Columns of ``metrics.csv``, in order.
CSV_COLUMNS = ("case_id", "label", "metric", "value")


@dataclass
class EvaluationReport:
    """The outcome of :func:`~medimg.metrics.evaluate_folders`.

    Attributes:
        rows: one dict per (case, class, metric): ``case_id, label, metric, value``.
        summary: ``{label: {metric: {mean, std, median, n, n_excluded, ci_low, ci_high}}}``
            plus ``"_class_mean"`` (several classes: per-case mean over classes) and the
            bookkeeping keys ``"_cases"`` and ``"_settings"`` (as in ``summary.json``).
        cases: case ids evaluated successfully.
        missing_pred: case ids with a reference but no prediction (missed cases).
        missing_ref: case ids with a prediction but no reference.
        failed: ``{case_id: message}`` for cases that could not be evaluated.
        files: ``{case_id: (pred_path or None, ref_path)}`` actually used.
        label_names: ``{class index: name}`` used in the rows.
        paths: outputs written: ``metrics_csv``, ``summary_json``, ``<metric>_boxplot``
            per metric (``dice_boxplot``...), ``subgroups_csv``.
        warnings: things a reader of the numbers must know (e.g. classes scored by value
            because the predictions' class names are unknown).
        notes: how the scoring was set up (where the label map and names came from).
        subgroups: with ``--metadata``/``--subgroup``, the per-group analysis
            (:mod:`medimg.metrics.seg_subgroups`), else None.
    """

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    cases: list[str]
    missing_pred: list[str] = field(default_factory=list)
    missing_ref: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[Path | None, Path]] = field(default_factory=dict)
    label_names: dict[int, str] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subgroups: Any = None

    @property
    def all_ok(self) -> bool:
        """Every case scored: none failed, none missing a prediction or a reference, and
        the subgroup analysis asked for done without a problem."""
        sub_ok = self.subgroups is None or not self.subgroups.problems
        return bool(self.cases) and not (self.failed or self.missing_pred or self.missing_ref) and sub_ok

    def problems(self) -> str:
        """One line counting missing and failed cases ('' when :attr:`all_ok`)."""
        parts = []
        if self.missing_pred:
            parts.append(f"{len(self.missing_pred)} case(s) without a prediction")
        if self.missing_ref:
            parts.append(f"{len(self.missing_ref)} prediction(s) without a reference")
        if self.failed:
            parts.append(f"{len(self.failed)} case(s) failed")
        if not self.cases:
            parts.append("no case could be evaluated")
        sub = list(self.subgroups.problems) if self.subgroups is not None else []
        if not parts:
            return "\n".join(sub)
        return "\n".join(["; ".join(parts) + f"; the summary covers the {len(self.cases)} case(s) scored", *sub])

    def values(self, label: str, metric: str) -> dict[str, float]:
        """``{case_id: value}`` of one label and metric."""
        return {r["case_id"]: r["value"] for r in self.rows if r["label"] == label and r["metric"] == metric}

    def format(self) -> str:
        """A one-screen text summary: mean [CI] (n) per label and metric, then the cases."""
        lines = list(self.notes)
        for label, per_metric in self.summary.items():
            if label.startswith("_") and label != "_class_mean":
                continue
            lines.append(f"{label}:")
            for metric, s in per_metric.items():
                mean = "n/a" if s["mean"] is None else f"{s['mean']:.4f}"
                ci = "" if s["ci_low"] is None else f" [{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
                excl = f", {s['n_excluded']} excluded (nan/inf)" if s["n_excluded"] else ""
                lines.append(f"  {metric:<16} {mean}{ci}  (n={s['n']}{excl})")
        c = self.summary.get("_cases", {})
        lines.append(
            f"cases: {c.get('n_evaluated', len(self.cases))} evaluated, "
            f"{len(self.missing_pred)} missing prediction, {len(self.missing_ref)} missing "
            f"reference, {len(self.failed)} failed"
        )
        if self.missing_pred:
            lines.append(f"  missing prediction: {', '.join(self.missing_pred)}")
        if self.missing_ref:
            lines.append(f"  missing reference: {', '.join(self.missing_ref)}")
        for cid, msg in self.failed.items():
            lines.append(f"  failed {cid}: {msg.splitlines()[0]}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        if self.subgroups is not None and self.subgroups.rows:
            lines.append(self.subgroups.format(problems=False))
        for key, p in self.paths.items():
            lines.append(f"wrote {key}: {p}")
        return "\n".join(lines)


def natural_key(s: str) -> list[Any]:
    """Sort key putting ``case2`` before ``case10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def case_rows(
    per_case: Mapping[str, Mapping[int, Mapping[str, float]]],
    classes: Sequence[int],
    labels: Sequence[str],
    metrics: Sequence[str],
    empty_values: Mapping[str, float],
) -> list[dict[str, Any]]:
    """One row per (case, class, metric), cases in natural order.

    Every case gets a row for every class, so per-class statistics cover the same cases:
    a class absent from both pred and ref of a case gets ``empty_values`` (the both-empty
    values documented in :mod:`medimg.metrics.segmentation`).
    """
    rows: list[dict[str, Any]] = []
    for cid in sorted(per_case, key=natural_key):
        for c, lab in zip(classes, labels):
            vals = per_case[cid].get(c, empty_values)
            rows.extend({"case_id": cid, "label": lab, "metric": m, "value": vals[m]} for m in metrics)
    return rows


def _class_mean(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, list[float]]:
    """Per case and metric, the mean over classes (non-finite if any class is non-finite)."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        acc.setdefault((r["metric"], r["case_id"]), []).append(float(r["value"]))
    out: dict[str, list[float]] = {m: [] for m in metrics}
    for (metric, _), vals in acc.items():
        out[metric].append(float(np.mean(vals)))
    return out


def summarize_rows(
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    metrics: Sequence[str],
    *,
    bootstrap: int,
    ci: float,
    seed: int,
) -> dict[str, Any]:
    """``{label: {metric: statistics}}`` (+ ``"_class_mean"`` with several labels)."""
    summary: dict[str, Any] = {}
    for lab in labels:
        summary[lab] = {
            m: summarize([r["value"] for r in rows if r["label"] == lab and r["metric"] == m],
                         n_boot=bootstrap, ci=ci, seed=seed)
            for m in metrics
        }
    if len(labels) > 1:
        cm = _class_mean(rows, metrics)
        summary["_class_mean"] = {m: summarize(cm[m], n_boot=bootstrap, ci=ci, seed=seed) for m in metrics}
    return summary


def write_metrics_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as CSV with columns exactly ``case_id,label,metric,value``.

    Values are written at full precision; undefined values as ``nan`` and infinite
    distances as ``inf`` (both read back by ``float()`` and pandas).
    """
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r["case_id"], r["label"], r["metric"], repr(float(r["value"]))])
    return path


def write_report(report: EvaluationReport, output_dir: str | Path, metrics: Sequence[str]) -> None:
    """Write ``metrics.csv``, ``summary.json``, (with matplotlib) a box plot per metric,
    ``<metric>_boxplot.png``, and with subgroups ``subgroups.csv``; record their paths in
    ``report.paths``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.paths["metrics_csv"] = write_metrics_csv(report.rows, out / "metrics.csv")
    path = out / "summary.json"
    path.write_text(json.dumps(report.summary, indent=2, allow_nan=False) + "\n")
    report.paths["summary_json"] = path
    if report.subgroups is not None and report.subgroups.rows:
        from .classification.writing import write_subgroups_csv

        report.paths["subgroups_csv"] = write_subgroups_csv(report.subgroups.rows, out / "subgroups.csv")
    labels = [report.label_names[c] for c in sorted(report.label_names)]
    for old in out.glob("*_boxplot.png"):  # an earlier run's figures would mislead
        old.unlink()
    for metric in metrics if report.rows else ():
        png = metric_boxplot(report.rows, labels, metric, out / f"{metric}_boxplot.png", unit=_unit(metric))
        if png is not None:
            report.paths[f"{metric}_boxplot"] = png


def _unit(metric: str) -> str:
    from .registry import METRICS

    return str(getattr(METRICS.get(metric), "unit", "") or "")
