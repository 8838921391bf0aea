"""Evaluate predicted label maps against references: per case, per class, with a summary.

:func:`evaluate_folders` is what ``medimg evaluate PRED REF`` runs. ``PRED`` and ``REF``
are each a NIfTI file or a folder; cases are found by :func:`medimg.io.cases.find_cases`
with the same rules on both sides:

* a file: one case (two files are scored as one pair, whatever their names);
* flat: ``DIR/<case_id>.nii.gz`` (or ``.nii``); the case id is the file name without the
  extension;
* one folder per case: ``DIR/<case_id>/<file>``. The file is ``ref_name`` (``pred_name``)
  when given, e.g. ``"OTMultiClass.nii.gz"``. Otherwise it is auto-detected among the
  folder's NIfTI files: the only one whose name says it is a label map (contains
  ``label``, ``seg``, ``multiclass``, ``truth``, ``annot`` or the word ``gt``); failing
  that, the only one containing ``mask``; failing that, the only NIfTI file. Anything
  else is ambiguous and that case is reported as failed, with the candidates, rather than
  guessed.

Besides NIfTI files, a case's label map may be (on either side)

* a DICOM mask series: a case folder (or the one folder given) of DICOM slices holding
  a label map, read like any DICOM series;
* a DICOM SEG file, ``DIR/<case_id>.seg.dcm`` as ``medimg predict --format dicom-seg``
  names it (or one SEG file given), placed on its source series' grid: the scan from
  ``images`` when given, else the other side's image; a SEG that does not lie on that grid
  is a failed case saying so, never resampled (:mod:`.scoring` says why);
* a row of a manifest: ``PRED`` or ``REF`` a CSV with ``case_id`` and a ``label_column``
  (default ``label``) holding each case's file, relative to the CSV's folder.

Files and folders that are none of these (``labels.json``, hidden files, folders without NIfTI
or DICOM) are ignored. Cases present on one side only are listed, never dropped silently: a
reference without a prediction is a *missed* case (``missing_pred``), which a study must
count as a failure; ``missing_pred="empty"`` scores it as an empty prediction.

What the classes mean comes from the prediction folder (:mod:`medimg.metrics.labels`):
``labels.json`` names them and ``label_map.json`` (the ``data.label_map`` the model was
trained with) is applied to the references when no ``label_map`` is given. When the
reference values and the named classes disagree, evaluation stops with both sets and the
label map that would fix it (:class:`~medimg.metrics.labels.LabelMismatchError`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..core.image import Image
from ..io.cases import FoundCase
from ..io.cases import find_cases as find_cases_on_disk
from .case import DEFAULT_METRICS
from .labels import (
    LabelCheck,
    format_label_map,
    label_name,
    names_dict,
    read_prediction_labels,
)
from .overlays import find_scans, worst_case_overlays
from .registry import METRICS, compute_metrics, resolve_params
from .report import EvaluationReport, case_rows, natural_key, summarize_rows, write_report
from .report_page import write_segmentation_pages
from .scoring import CaseJob, score_all

__all__ = ["evaluate_folders", "find_cases"]


# --------------------------------------------------------------------------------------
# Which cases: discovery and matching
# --------------------------------------------------------------------------------------
def find_cases(root: str | Path, file_name: str | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """Cases of a prediction or reference file or folder, by case id (module docstring).

    The discovery is :func:`medimg.io.cases.find_cases` (with ``pick="label"``); this
    returns it as two lookups.

    Args:
        root: the file or folder.
        file_name: for one-folder-per-case layouts, the label file's name in each folder
            (auto-detected if None).

    Returns:
        ``(files, problems)``: ``{case_id: path}`` and ``{case_id: message}`` for cases
        whose file could not be determined (ambiguous folder, duplicate case id).

    Raises:
        DataError: ``root`` does not exist, or is a file that is not NIfTI.
    """
    found = _discover(Path(root), file_name, "folder")
    files = {c.case_id: c.paths[0] for c in found.values() if c.ok}
    problems = {c.case_id: str(c.problem) for c in found.values() if not c.ok}
    return files, problems


def _discover(root: Path, file_name: str | None, what: str, column: str = "label") -> dict[str, FoundCase]:
    cases = find_cases_on_disk(root, files=[file_name] if file_name else None, pick="label", what=what,
                               dicom=True, seg=True, column=column)
    return {c.case_id: c for c in cases}


@dataclass
class _Matching:
    """The cases of both sides, matched by case id (and their scans, with ``--images``)."""

    pred: dict[str, FoundCase]
    ref: dict[str, FoundCase]
    todo: list[str] = field(default_factory=list)
    missing_pred: list[str] = field(default_factory=list)
    missing_ref: list[str] = field(default_factory=list)
    n_matched: int = 0
    scans: dict[str, FoundCase] = field(default_factory=dict)

    def add_scans(self, images: str | Path | None, image_name: str | None) -> None:
        """The scans of ``--images`` (none without), matched by case id (one scan file: the one case)."""
        if images is None:
            return
        self.scans = find_scans(Path(images), image_name)
        if Path(images).is_file() and len(self.todo) == 1:  # one pair, one scan: whatever the names
            self.scans = {self.todo[0]: next(iter(self.scans.values()))}

    def jobs(self) -> list[CaseJob]:
        """What scoring each case to do needs (:mod:`.scoring`)."""
        out = []
        for cid in self.todo:
            sides = [c for c in (self.pred.get(cid), self.ref.get(cid)) if c is not None]
            problem = next((str(c.problem) for c in sides if not c.ok), None)
            pred = self.pred[cid].paths[0] if cid in self.pred and self.pred[cid].ok else None
            ref = self.ref[cid].paths[0] if self.ref[cid].ok else Path()
            scan = self.scans.get(cid)
            out.append(CaseJob(cid, pred, ref, scan.paths[0] if scan is not None and scan.ok else None, problem))
        return out


def _is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


def _match(pred: Path, ref: Path, pred_name: str | None, ref_name: str | None, missing_pred: str,
           column: str = "label") -> _Matching:
    """Find both sides' cases and pair them (two files are one pair, whatever their names)."""
    if pred.is_file() and ref.is_file() and not (_is_manifest(pred) or _is_manifest(ref)):
        p = _discover(pred, None, "prediction")
        cid = next(iter(p))
        r = {cid: replace(next(iter(_discover(ref, None, "reference").values())), case_id=cid)}
    else:
        p = _discover(pred, pred_name, "prediction", column)
        r = _discover(ref, ref_name, "reference", column)
    m = _Matching(p, r)
    m.missing_pred = sorted(set(r) - set(p), key=natural_key)
    m.missing_ref = sorted(set(p) - set(r), key=natural_key)
    matched = set(p) & set(r)
    m.n_matched = len(matched)
    if missing_pred == "empty":
        matched |= set(m.missing_pred)
    m.todo = sorted(matched, key=natural_key)
    return m


# --------------------------------------------------------------------------------------
# What the classes mean
# --------------------------------------------------------------------------------------
def _label_check(
    pred: Path,
    label_names: Sequence[str] | Mapping[int, str] | None,
    label_map: Mapping[int, int] | None,
    allow_absent_classes: bool,
) -> LabelCheck:
    """Names and label map: the ones given, else those recorded in the prediction folder."""
    recorded = read_prediction_labels(pred if pred.is_dir() else pred.parent)
    if label_names is not None:
        names, names_from = names_dict(label_names), "the label names given"
    else:
        names, names_from = recorded.names or {}, f"'{recorded.names_path}'"
    if label_map:
        lmap: dict[int, int] | None = {int(k): int(v) for k, v in label_map.items()}
        map_from: str | None = "the label map given"
    elif recorded.label_map:
        lmap, map_from = recorded.label_map, f"the model's training label map, '{recorded.label_map_path}'"
    else:
        lmap, map_from = None, None
    return LabelCheck(names, names_from, lmap, map_from, allow_absent_classes)


# --------------------------------------------------------------------------------------
# Scoring every case
# --------------------------------------------------------------------------------------
@dataclass
class _Scored:
    per_case: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    used: dict[str, tuple[Path | None, Path]] = field(default_factory=dict)


def _score_cases(
    m: _Matching,
    check: LabelCheck,
    read: Callable[[Path], Image] | None,
    metrics: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    empty_score: float,
    progress: Callable[[int, int, str], None] | None,
    surface: str = "monai",
    workers: int | None = 1,
    resample_to: str | None = None,
    interface: str = "python",
) -> _Scored:
    """Read and score every matched case (in ``workers`` processes, :mod:`.scoring`); a bad
    case is recorded and the others go on.

    Results are taken in case order. Once a case shows labels outside the prediction's
    classes, the remaining cases' values are still collected (so the error can list every
    value) but no longer kept.
    """
    out = _Scored()
    results = score_all(m.jobs(), label_map=check.label_map, names=check.names, metrics=metrics, params=params,
                        empty_score=empty_score, surface=surface, workers=workers, reader=read,
                        resample_to=resample_to, interface=interface)
    for i, res in enumerate(results):
        cid = res.case_id
        if res.error is not None:
            out.failed[cid] = res.error
        else:
            check.add(cid, res.pred_values, res.ref_values)
            if not check.failed and res.values is not None and res.files is not None:
                out.per_case[cid] = res.values
                out.used[cid] = res.files
        if progress is not None:
            progress(i + 1, len(m.todo), cid)
    return out


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------
def _settings(
    metrics: Sequence[str], params: Mapping[str, Any], check: LabelCheck, labels: dict[int, str],
    empty_score: float, bootstrap: int, ci: float, seed: int, pred: Path, ref: Path,
) -> dict[str, Any]:
    return {
        "metrics": {m: params[m] for m in metrics},
        "empty_score": None if math.isnan(empty_score) else empty_score,
        "bootstrap": int(bootstrap),
        "ci": ci,
        "seed": seed,
        "label_map": {str(k): int(v) for k, v in (check.label_map or {}).items()},
        "label_map_from": check.map_from,
        "label_names": {str(c): lab for c, lab in labels.items()},
        "label_names_from": check.names_from if check.names else None,
        "pred_dir": str(pred),
        "ref_dir": str(ref),
    }


def _report(
    m: _Matching, s: _Scored, check: LabelCheck, metrics: Sequence[str],
    params: Mapping[str, Mapping[str, Any]], empty_score: float, stats: dict[str, Any],
) -> EvaluationReport:
    """Rows, summary and bookkeeping of the scored cases."""
    names = check.names
    classes = sorted({c for c in names if c > 0} | {c for v in s.per_case.values() for c in v})
    labels = {c: label_name(names, c) for c in classes}
    empty_vals = compute_metrics(
        np.zeros((1, 1, 1), np.uint8), np.zeros((1, 1, 1), np.uint8), [1], metrics,
        metric_params=params, empty_score=empty_score,
    )[1]
    rows = case_rows(s.per_case, classes, list(labels.values()), metrics, empty_vals)
    summary = summarize_rows(rows, list(labels.values()), metrics, bootstrap=stats["bootstrap"],
                             ci=stats["ci"], seed=stats["seed"])
    summary["_cases"] = {
        "n_matched": m.n_matched,
        "n_evaluated": len(s.per_case),
        "missing_pred": m.missing_pred,
        "missing_ref": m.missing_ref,
        "failed": dict(s.failed),
        "missing_pred_scored_as_empty": stats["missing_pred"] == "empty",
    }
    summary["_settings"] = _settings(metrics, params, check, labels, empty_score, stats["bootstrap"],
                                     stats["ci"], stats["seed"], stats["pred"], stats["ref"])
    summary["_settings"]["surface_distance"] = stats["surface"]
    notes = []
    if check.label_map:
        notes.append(f"reference labels mapped with {format_label_map(check.label_map)} ({check.map_from})")
    return EvaluationReport(
        rows=rows, summary=summary, cases=sorted(s.per_case, key=natural_key), missing_pred=m.missing_pred,
        missing_ref=m.missing_ref, failed=s.failed, files=s.used, label_names=labels,
        warnings=check.warnings(), notes=notes,
    )


def evaluate_folders(
    pred_dir: str | Path,
    ref_dir: str | Path,
    output_dir: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    bootstrap: int = 1000, ci: float = 0.95, seed: int = 0,
    *,
    ref_name: str | None = None, pred_name: str | None = None, label_map: Mapping[int, int] | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    empty_score: float = 1.0, missing_pred: str = "report",
    reader: Callable[[Path], Image] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    allow_absent_classes: bool = False, surface: str = "monai",
    images: str | Path | None = None, worst_cases: int = 3, image_name: str | None = None,
    label_column: str = "label", workers: int | None = 1, resample_to: str | None = None, interface: str = "python",
    metadata: str | Path | None = None, subgroups: Sequence[str] | None = None,
) -> EvaluationReport:
    """Score every prediction in ``pred_dir`` against its reference in ``ref_dir``.

    Cases are matched by case id (module docstring), or two files are one pair. A case that
    fails (unreadable, grid mismatch...) is in ``failed`` and the others are still scored;
    ``report.all_ok`` is False when any failed or is missing on a side.

    Args:
        pred_dir, ref_dir: predictions (a folder or a file; its folder's ``labels.json`` and
            ``label_map.json``) and references (a folder or a file).
        output_dir: where ``metrics.csv``, ``summary.json``, ``<metric>_boxplot.png`` and
            ``report.html`` / ``report.md`` (:mod:`.report_page`) go (None: none).
        metrics: metric names (default :data:`DEFAULT_METRICS`). label_names: class names (background first, or ``{index: name}``); default
            ``labels.json`` in the prediction folder, else ``label_1``, ``label_2``...
        bootstrap: resamples for the confidence intervals (0: none).
        ci, seed: interval coverage (e.g. 0.95); bootstrap seed (same seed, same intervals).
        ref_name / pred_name: label file name inside case folders (auto-detected if None).
        label_map: remapping of reference values, e.g. ``{1: 1, 2: 1, 3: 1, 4: 1}``;
            unlisted values become 0. Default: the prediction folder's ``label_map.json``.
        metric_params: e.g. ``{"nsd": {"tolerance_mm": 1.0}}``. empty_score: overlap score
            where a class is absent from both pred and ref.
        missing_pred: ``"report"`` (list missed cases only) or ``"empty"`` (also score
            them as empty predictions: Dice 0, distances inf).
        reader, progress: path -> Image (default :func:`medimg.io.read_image`); called as
            ``progress(done, total, case_id)`` after each case.
        allow_absent_classes: score named classes found in no reference instead of stopping.
        surface: ``"monai"`` (default) or ``"deepmind"``: whose hd/hd95/assd/nsd definitions.
        images, worst_cases, image_name: scans (matched by case id; ``image_name`` in case
            folders) on which the ``worst_cases`` lowest-Dice cases are drawn (:mod:`.overlays`);
            also the grid DICOM SEGs are placed on (:mod:`.scoring`).
        label_column: a manifest CSV's column of label map files (beside ``case_id``).
        workers: processes scoring cases (None: the cores available; 1: this one; same results).
        resample_to: ``"reference"``: a prediction on another grid is resampled onto its reference
            (nearest); None: that case fails, naming both grids and the fix (CLI terms: ``interface="cli"``).
        metadata, subgroups: a CSV (``case_id`` + one column per attribute) and the columns
            to group by (:mod:`.seg_subgroups`): ``report.subgroups``, ``summary.json``'s
            ``_subgroups``, ``subgroups.csv``; its problems make ``all_ok`` False.

    Returns:
        An :class:`EvaluationReport`; ``report.format()`` is a one-screen summary.

    Raises:
        LabelMismatchError: with class names known, reference or prediction values that are
            not named classes, or a class in no reference; with the label map that fixes it.
        DataError: ``pred_dir``, ``ref_dir`` or ``images`` does not exist.
    """
    metrics, params = _resolve(metrics, metric_params, missing_pred)  # fail early on bad names/params
    pred, ref = Path(pred_dir), Path(ref_dir)
    _check_images(images)
    (matching := _match(pred, ref, pred_name, ref_name, missing_pred, label_column)).add_scans(images, image_name)
    check = _label_check(pred, label_names, label_map, allow_absent_classes)
    scored = _score_cases(matching, check, reader, metrics, params, empty_score, progress, surface, workers,
                          resample_to, interface)
    error = check.error()
    if error is not None:
        raise error
    stats = dict(bootstrap=bootstrap, ci=ci, seed=seed, missing_pred=missing_pred, pred=pred, ref=ref, surface=surface)
    report = _report(matching, scored, check, metrics, params, empty_score, stats)
    if subgroups:
        report.subgroups = _subgroups(report, metrics, metadata, subgroups, stats)
    if output_dir is not None:
        _write_outputs(report, Path(output_dir), metrics, images, worst_cases, image_name)
    return report


def _resolve(metrics: Sequence[str] | None, metric_params: Mapping[str, Mapping[str, Any]] | None,
             missing_pred: str) -> tuple[list[str], dict[str, Any]]:
    """The metric names and their parameters, checked; ``missing_pred`` checked."""
    if missing_pred not in ("report", "empty"):
        raise ValueError(f"missing_pred must be 'report' or 'empty', got {missing_pred!r}")
    names = [METRICS.get(m).name for m in (DEFAULT_METRICS if metrics is None else metrics)]
    return names, resolve_params(names, metric_params)


def _subgroups(report: EvaluationReport, metrics: Sequence[str], metadata: str | Path | None,
               columns: Sequence[str], stats: Mapping[str, Any]) -> Any:
    """The subgroup analysis of the scored cases (also put in ``report.summary``)."""
    from .classification.subgroups import SubgroupReport
    from .seg_subgroups import segmentation_subgroups

    if metadata is None:
        sub = SubgroupReport("segmentation", problems=["subgroups need a metadata file (case_id + one column per "
                                                       "attribute)"])
    else:
        labels = [report.label_names[c] for c in sorted(report.label_names)]
        sub = segmentation_subgroups(report.rows, report.cases, labels, metrics, metadata, list(columns),
                                     bootstrap=stats["bootstrap"], ci=stats["ci"], seed=stats["seed"])
    report.summary["_subgroups"] = sub.summary()
    return sub


def _check_images(images: str | Path | None) -> None:
    if images is not None and not Path(images).exists():
        raise DataError(f"images folder '{images}' does not exist",
                        hint="give the folder of the scans the references were drawn on")


def _write_outputs(report: EvaluationReport, out: Path, metrics: Sequence[str], images: str | Path | None,
                   worst_cases: int, image_name: str | None) -> None:
    """metrics.csv, summary.json, the box plot, the worst cases' overlays and the report pages."""
    write_report(report, out, metrics)
    overlays = []
    if images is not None and worst_cases > 0:
        overlays = worst_case_overlays(report, images, out, worst_cases, image_name=image_name)
    write_segmentation_pages(report, out, overlays, images)

