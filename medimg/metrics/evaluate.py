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

Files and folders that are neither (``labels.json``, hidden files, folders without NIfTI)
are ignored. Cases present on one side only are listed, never dropped silently: a
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
import torch

from ..core.errors import DataError, exception_reason
from ..core.image import Image
from ..io.cases import FoundCase
from ..io.cases import find_cases as find_cases_on_disk
from .case import DEFAULT_METRICS, label_arrays, score_arrays
from .labels import (
    LabelCheck,
    format_label_map,
    label_name,
    names_dict,
    present_labels,
    read_prediction_labels,
)
from .overlays import worst_case_overlays
from .registry import METRICS, compute_metrics, resolve_params
from .report import EvaluationReport, case_rows, natural_key, summarize_rows, write_report
from .report_page import write_segmentation_pages

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


def _discover(root: Path, file_name: str | None, what: str) -> dict[str, FoundCase]:
    cases = find_cases_on_disk(root, files=[file_name] if file_name else None, pick="label", what=what)
    return {c.case_id: c for c in cases}


@dataclass
class _Matching:
    """The cases of both sides, matched by case id."""

    pred: dict[str, FoundCase]
    ref: dict[str, FoundCase]
    todo: list[str] = field(default_factory=list)
    missing_pred: list[str] = field(default_factory=list)
    missing_ref: list[str] = field(default_factory=list)
    n_matched: int = 0


def _match(pred: Path, ref: Path, pred_name: str | None, ref_name: str | None, missing_pred: str) -> _Matching:
    """Find both sides' cases and pair them (two files are one pair, whatever their names)."""
    if pred.is_file() and ref.is_file():
        p = _discover(pred, None, "prediction")
        cid = next(iter(p))
        r = {cid: replace(next(iter(_discover(ref, None, "reference").values())), case_id=cid)}
    else:
        p = _discover(pred, pred_name, "prediction")
        r = _discover(ref, ref_name, "reference")
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


def _read_pair(cid: str, m: _Matching, read: Callable[[Path], Image]) -> tuple[Image, Image, Path | None, Path]:
    """The prediction (an empty one for a missed case) and reference images of one case."""
    for side in (m.pred.get(cid), m.ref.get(cid)):
        if side is not None and not side.ok:
            raise side.error()
    ref_path = m.ref[cid].paths[0]
    ref = read(ref_path)
    ref.meta.setdefault("path", str(ref_path))
    if cid not in m.pred:  # a missed case scored as an empty prediction
        empty = torch.zeros((1, *ref.spatial_shape), dtype=torch.uint8)
        return Image(empty, ref.affine, kind="label", meta={"path": f"<missing prediction for {cid}>"}), ref, None, ref_path
    pred_path = m.pred[cid].paths[0]
    pred = read(pred_path)
    pred.meta.setdefault("path", str(pred_path))
    return pred, ref, pred_path, ref_path


def _score_cases(
    m: _Matching,
    check: LabelCheck,
    read: Callable[[Path], Image],
    metrics: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    empty_score: float,
    progress: Callable[[int, int, str], None] | None,
    surface: str = "monai",
) -> _Scored:
    """Read and score every matched case; a bad case is recorded and the others go on.

    Once a case shows labels outside the prediction's classes, the remaining cases are
    still read (so the error can list every value) but no longer scored.
    """
    out = _Scored()
    for i, cid in enumerate(m.todo):
        try:
            pred, ref, pred_path, ref_path = _read_pair(cid, m, read)
            p, r = label_arrays(pred, ref, check.label_map)
            pv, rv = present_labels(p), present_labels(r)
            check.add(cid, pv, rv)
            if not check.failed:
                classes = sorted((set(pv) | set(rv) | set(check.names)) - {0})
                out.per_case[cid] = score_arrays(
                    p, r, pred.spacing, check.names, metrics, metric_params=params,
                    classes=classes, empty_score=empty_score, surface=surface,
                )
                out.used[cid] = (pred_path, ref_path)
        except Exception as exc:  # noqa: BLE001  one bad case must not stop a study's evaluation
            out.failed[cid] = exception_reason(exc)
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


def _default_reader(path: Path) -> Image:
    from ..io import read_image

    return read_image(path, kind="label")


def evaluate_folders(
    pred_dir: str | Path,
    ref_dir: str | Path,
    output_dir: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    *,
    ref_name: str | None = None,
    pred_name: str | None = None,
    label_map: Mapping[int, int] | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    empty_score: float = 1.0,
    missing_pred: str = "report",
    reader: Callable[[Path], Image] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    allow_absent_classes: bool = False,
    surface: str = "monai",
    images: str | Path | None = None,
    worst_cases: int = 3,
    image_name: str | None = None,
) -> EvaluationReport:
    """Score every prediction in ``pred_dir`` against its reference in ``ref_dir``.

    Cases are matched by case id (module docstring), or two NIfTI files are one pair. A case
    that fails (unreadable file, grid mismatch...) is reported in ``failed`` and the others
    are still scored; ``report.all_ok`` is False when any failed or is missing on a side.

    Args:
        pred_dir: predictions, a folder or a file (its ``labels.json``, ``label_map.json``).
        ref_dir: references, a folder or a file.
        output_dir: where ``metrics.csv``, ``summary.json``, ``dice_boxplot.png`` and the
            report, ``report.html`` and ``report.md`` (:mod:`.report_page`), go (None: none).
        metrics: metric names; default :data:`DEFAULT_METRICS`.
        label_names: class names (background first, or ``{index: name}``); default
            ``labels.json`` in the prediction folder, else ``label_1``, ``label_2``...
        bootstrap: bootstrap resamples for the confidence intervals (0: none).
        ci: interval coverage, e.g. 0.95.
        seed: bootstrap seed; the same seed gives the same intervals.
        ref_name / pred_name: label file name inside case folders (auto-detected if None).
        label_map: remapping of reference values, e.g. ``{1: 1, 2: 1, 3: 1, 4: 1}``;
            unlisted values become 0. Default: the prediction folder's ``label_map.json``.
        metric_params: e.g. ``{"nsd": {"tolerance_mm": 1.0}}``.
        empty_score: overlap score where a class is absent from both pred and ref.
        missing_pred: ``"report"`` (list missed cases only) or ``"empty"`` (also score
            them as empty predictions: Dice 0, distances inf).
        reader: path -> Image; default :func:`medimg.io.read_image`.
        progress: called as ``progress(done, total, case_id)`` after each case.
        allow_absent_classes: score named classes found in no reference instead of stopping.
        surface: ``"monai"`` (default) or ``"deepmind"``: whose hd/hd95/assd/nsd definitions.
        images, worst_cases, image_name: scans (matched by case id; ``image_name`` in case
            folders) on which the ``worst_cases`` lowest-Dice cases are drawn (:mod:`.overlays`).

    Returns:
        An :class:`EvaluationReport`; ``report.format()`` is a one-screen summary.

    Raises:
        LabelMismatchError: with class names known, reference or prediction values that are
            not named classes, or a class in no reference; with the label map that fixes it.
        DataError: ``pred_dir``, ``ref_dir`` or ``images`` does not exist.
    """
    if missing_pred not in ("report", "empty"):
        raise ValueError(f"missing_pred must be 'report' or 'empty', got {missing_pred!r}")
    metrics = [METRICS.get(m).name for m in (DEFAULT_METRICS if metrics is None else metrics)]
    params = resolve_params(metrics, metric_params)  # fail early on bad names/params
    pred, ref = Path(pred_dir), Path(ref_dir)
    _check_images(images)
    matching = _match(pred, ref, pred_name, ref_name, missing_pred)
    check = _label_check(pred, label_names, label_map, allow_absent_classes)
    scored = _score_cases(matching, check, reader or _default_reader, metrics, params, empty_score, progress, surface)
    error = check.error()
    if error is not None:
        raise error
    stats = dict(bootstrap=bootstrap, ci=ci, seed=seed, missing_pred=missing_pred, pred=pred, ref=ref, surface=surface)
    report = _report(matching, scored, check, metrics, params, empty_score, stats)
    if output_dir is not None:
        _write_outputs(report, Path(output_dir), metrics, images, worst_cases, image_name)
    return report


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

