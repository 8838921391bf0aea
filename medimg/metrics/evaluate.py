"""Evaluate predicted label maps against references: per case, per class, with a summary.

The entry points are :func:`compute_case_metrics` (two :class:`~medimg.core.Image`) and
:func:`evaluate_folders` (two folders, what ``medimg evaluate PRED_DIR REF_DIR`` runs).

Folder layouts (the same rules for the prediction and the reference folder):

* flat: ``DIR/<case_id>.nii.gz`` (or ``.nii``); the case id is the file name without the
  extension;
* one folder per case: ``DIR/<case_id>/<file>``. The file is ``ref_name`` (``pred_name``)
  when given, e.g. ``"OTMultiClass.nii.gz"``. Otherwise it is auto-detected among the
  folder's NIfTI files: the only one whose name says it is a label map (contains
  ``label``, ``seg``, ``multiclass``, ``truth``, ``annot`` or the word ``gt``); failing
  that, the only one containing ``mask``; failing that, the only NIfTI file. Anything
  else is ambiguous and that case is reported as failed, with the candidates, rather than
  guessed. (``mask`` ranks lower because folders often hold brain or body masks beside
  the label map, as BraTS's ``brainmask.nii.gz`` beside ``OTMultiClass.nii.gz``.)

Files and folders that are neither (``labels.json``, hidden files, folders without NIfTI)
are ignored. Cases present on one side only are listed, never dropped silently: a
reference without a prediction is a *missed* case (``missing_pred``), which a study must
count as a failure; ``missing_pred="empty"`` scores it as an empty prediction.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.affine import GRID_ATOL_MM
from ..core.errors import DataError, GeometryError
from ..core.image import Image
from ..io.layout import nifti_case_id
from .bootstrap import summarize
from .segmentation import METRICS, _resolve_params, compute_metrics

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_METRICS",
    "EvaluationReport",
    "case_id_from_path",
    "compute_case_metrics",
    "evaluate_folders",
    "find_cases",
    "load_label_names",
    "write_metrics_csv",
]

#: Metrics computed when none are named.
DEFAULT_METRICS: tuple[str, ...] = ("dice", "jaccard", "hd95", "assd", "nsd", "volume_ml", "volume_diff_ml")

#: Columns of ``metrics.csv``, in order.
CSV_COLUMNS = ("case_id", "label", "metric", "value")

_STRONG = ("label", "seg", "multiclass", "truth", "annot")


# --------------------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------------------
def case_id_from_path(path: str | Path) -> str | None:
    """The case id of a NIfTI file: its name without ``.nii.gz`` / ``.nii`` (else None)."""
    return nifti_case_id(path)


def _source(img: Image, default: str) -> str:
    for key in ("path", "source", "filename", "file"):
        value = img.meta.get(key)
        if value:
            return str(value)
    return default


def _label_array(img: Image, role: str, where: str) -> np.ndarray:
    """The ``(I, J, K)`` integer label array of a label (or probability) image."""
    data = img.data
    if img.kind == "probabilities" and data.shape[0] > 1:
        data = data.argmax(dim=0, keepdim=True)
    if data.shape[0] != 1:
        raise DataError(
            f"{role} '{where}' has {data.shape[0]} channels; expected one channel of integer "
            f"class labels (kind='label') or class probabilities (kind='probabilities', "
            f"argmax taken). Found kind='{img.kind}', shape {tuple(data.shape)}"
        )
    arr = data[0].detach().cpu().numpy()
    if np.issubdtype(arr.dtype, np.floating):
        rounded = np.rint(arr)
        if not np.array_equal(rounded, arr):
            raise DataError(
                f"{role} '{where}' holds non-integer values (e.g. {float(arr[arr != rounded][0]):g}); "
                "expected a label map of class indices",
                hint="pass the argmax of the probabilities, or check that this file is a label map",
            )
        arr = rounded.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise DataError(f"{role} '{where}' has negative label {int(arr.min())}; labels must be >= 0")
    return arr


def _present_labels(arr: np.ndarray) -> list[int]:
    """Label values present in a non-negative integer array (a bincount, not a sort)."""
    if arr.size == 0:
        return []
    flat = np.ascontiguousarray(arr.ravel(order="K"))
    if flat.dtype != np.uint8:
        flat = flat.astype(np.int64, copy=False)
    return np.flatnonzero(torch.bincount(torch.from_numpy(flat)).numpy()).tolist()


def _apply_label_map(arr: np.ndarray, label_map: Mapping[int, int]) -> np.ndarray:
    """Remap values through ``label_map``; values not in the map become 0 (a new array).

    Same rule as ``data.label_map`` and the ``map_labels`` transform, so a reference is
    scored with exactly the classes the model was trained on.
    """
    hi = max(int(arr.max(initial=0)), max((int(k) for k in label_map), default=0))
    lut = np.zeros(hi + 1, dtype=np.int64)
    for src, dst in label_map.items():
        if int(dst) < 0:
            raise ValueError(f"label_map maps {src} to negative label {dst}")
        lut[int(src)] = int(dst)
    return lut[arr]


def _check_grid(pred: Image, ref: Image, pred_src: str, ref_src: str) -> None:
    if pred.spatial_shape != ref.spatial_shape:
        raise GeometryError(
            f"prediction '{pred_src}' and reference '{ref_src}' are not on the same grid: "
            f"shape {pred.spatial_shape} vs {ref.spatial_shape}",
            hint="write predictions on the reference's own grid (medimg predict inverts its "
            "preprocessing) or resample the prediction with nearest-neighbour first",
        )
    diff = np.abs(np.asarray(pred.affine) - np.asarray(ref.affine))
    if diff.max() > GRID_ATOL_MM:
        fmt = lambda t: "(" + ", ".join(f"{v:.4g}" for v in t) + ")"  # noqa: E731
        raise GeometryError(
            f"prediction '{pred_src}' and reference '{ref_src}' are not on the same grid: "
            f"affines differ by up to {diff.max():.4g} mm (tolerance {GRID_ATOL_MM} mm); "
            f"spacing {fmt(pred.spacing)} vs {fmt(ref.spacing)} mm, origin {fmt(pred.origin)} "
            f"vs {fmt(ref.origin)} mm, axes {''.join(pred.axcodes)} vs {''.join(ref.axcodes)}",
            hint="resample or reorient the prediction onto the reference grid first",
        )


def _names_dict(label_names: Sequence[str] | Mapping[int, str] | None) -> dict[int, str]:
    if label_names is None:
        return {}
    if isinstance(label_names, Mapping):
        return {int(k): str(v) for k, v in label_names.items()}
    return {i: str(n) for i, n in enumerate(label_names)}


def _label_name(names: Mapping[int, str], c: int) -> str:
    return names.get(c, f"label_{c}")


def _score_case(
    pred: Image,
    ref: Image,
    label_names: Sequence[str] | Mapping[int, str] | None,
    metrics: Sequence[str] | None,
    *,
    metric_params: Mapping[str, Mapping[str, Any]] | None,
    label_map: Mapping[int, int] | None,
    classes: Sequence[int] | None,
    empty_score: float,
) -> dict[int, dict[str, float]]:
    """``{class: {metric: value}}`` of one case (see :func:`compute_case_metrics`)."""
    pred_src = _source(pred, "<pred>")
    ref_src = _source(ref, "<ref>")
    _check_grid(pred, ref, pred_src, ref_src)
    p = _label_array(pred, "prediction", pred_src)
    r = _label_array(ref, "reference", ref_src)
    if label_map:
        r = _apply_label_map(r, label_map)
    names = _names_dict(label_names)
    metrics = list(DEFAULT_METRICS if metrics is None else metrics)
    if classes is None:
        present = set(_present_labels(p)) | set(_present_labels(r))
        classes = sorted((present | set(names)) - {0})
    return compute_metrics(
        p, r, classes, metrics, spacing=pred.spacing, metric_params=metric_params,
        empty_score=empty_score,
    )


def compute_case_metrics(
    pred: Image,
    ref: Image,
    label_names: Sequence[str] | Mapping[int, str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    case_id: str | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    label_map: Mapping[int, int] | None = None,
    classes: Sequence[int] | None = None,
    empty_score: float = 1.0,
) -> list[dict[str, Any]]:
    """Metrics of one case, one row per (foreground class, metric).

    Args:
        pred: predicted label map, ``Image`` of one channel ``(1, I, J, K)`` (or a
            probability image, argmax taken).
        ref: reference label map on the same grid (shape equal, affine within 1e-3 mm).
        label_names: class names by index (a list with background first, or a mapping);
            classes without a name are called ``label_<k>``.
        metrics: names in :data:`~medimg.metrics.METRICS`; default :data:`DEFAULT_METRICS`.
        case_id: the ``case_id`` column; default: ``pred.meta["case_id"]``, else the
            prediction's file name without extension.
        metric_params: e.g. ``{"nsd": {"tolerance_mm": 1.0}}``.
        label_map: remapping of *reference* values before scoring, e.g. ``{1: 1, 2: 1,
            3: 1, 4: 1}`` scores BraTS labels as whole tumour; unmapped values are kept.
        classes: foreground classes to score; default: the named ones (index > 0) and
            any other label present in ``pred`` or ``ref``.
        empty_score: overlap score where a class is absent from both (see
            :mod:`medimg.metrics.segmentation`).

    Returns:
        Rows ``{"case_id", "label", "metric", "value"}``, classes in increasing order;
        distances in mm (from the image's spacing), volumes in ml.

    Raises:
        GeometryError: the two images are not on the same grid (message names both
            sources and what differs).
        DataError: an image is not a single-channel integer label map.
    """
    values = _score_case(
        pred, ref, label_names, metrics, metric_params=metric_params, label_map=label_map,
        classes=classes, empty_score=empty_score,
    )
    names = _names_dict(label_names)
    pred_src = _source(pred, "<pred>")
    cid = case_id or pred.meta.get("case_id") or case_id_from_path(pred_src) or pred_src
    rows = []
    for c in sorted(values):
        for name, value in values[c].items():
            rows.append({"case_id": str(cid), "label": _label_name(names, c), "metric": name, "value": value})
    return rows


# --------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------
def _is_label_name(name: str, strong: bool) -> bool:
    low = name.lower()
    if strong:
        tokens = re.split(r"[^a-z0-9]+", low)
        return any(k in low for k in _STRONG) or "gt" in tokens
    return "mask" in low


def _pick_in_folder(folder: Path, file_name: str | None) -> Path | str:
    """The label file of a case folder, or a message saying why none could be chosen."""
    if file_name:
        path = folder / file_name
        return path if path.is_file() else f"no file '{file_name}' in case folder '{folder}'"
    nifti = sorted(p for p in folder.iterdir() if p.is_file() and case_id_from_path(p) and not p.name.startswith("."))
    if not nifti:
        return f"no NIfTI file in case folder '{folder}'"
    for strong in (True, False):
        hits = [p for p in nifti if _is_label_name(p.name, strong)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            return (
                f"case folder '{folder}' holds several candidate label files "
                f"({', '.join(p.name for p in hits)}); name the one to use"
            )
    if len(nifti) == 1:
        return nifti[0]
    return (
        f"case folder '{folder}' holds {len(nifti)} NIfTI files "
        f"({', '.join(p.name for p in nifti)}) and none is named like a label map; name the one to use"
    )


def find_cases(root: str | Path, file_name: str | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """Cases in a prediction or reference folder (layouts in the module docstring).

    Args:
        root: the folder.
        file_name: for one-folder-per-case layouts, the label file's name in each folder
            (auto-detected if None).

    Returns:
        ``(files, problems)``: ``{case_id: path}`` and ``{case_id: message}`` for cases
        whose file could not be determined (ambiguous folder, duplicate case id).

    Raises:
        DataError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder; expected a folder of NIfTI files or of case folders")
    files: dict[str, Path] = {}
    problems: dict[str, str] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            cid = case_id_from_path(entry)
            if cid is None:
                continue
            found: Path | str = entry
        elif entry.is_dir():
            cid = entry.name
            has_nifti = any(case_id_from_path(p) for p in entry.iterdir() if p.is_file())
            if not has_nifti:  # not a case folder (docs, plots...)
                continue
            found = _pick_in_folder(entry, file_name)
        else:
            continue
        if cid in files or cid in problems:
            other = files.get(cid, cid)
            problems[cid] = f"case id '{cid}' appears twice in '{root}' ('{other}' and '{entry}')"
            files.pop(cid, None)
        elif isinstance(found, Path):
            files[cid] = found
        else:
            problems[cid] = found
    return files, problems


def load_label_names(pred_dir: str | Path) -> dict[int, str] | None:
    """Class names from ``PRED_DIR/labels.json`` (``{"0": "background", "1": "tumour"}``)."""
    path = Path(pred_dir) / "labels.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return {int(k): str(v) for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise DataError(
            f"cannot read label names from '{path}': {exc}; expected a JSON object like "
            '{"0": "background", "1": "tumour"}'
        ) from exc


@dataclass
class EvaluationReport:
    """The outcome of :func:`evaluate_folders`.

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
        paths: outputs written: ``metrics_csv``, ``summary_json``, ``dice_boxplot``.
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

    def values(self, label: str, metric: str) -> dict[str, float]:
        """``{case_id: value}`` of one label and metric."""
        return {r["case_id"]: r["value"] for r in self.rows if r["label"] == label and r["metric"] == metric}

    def format(self) -> str:
        """A one-screen text summary: mean [CI] (n) per label and metric, then the cases."""
        lines = []
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
        for cid, msg in self.failed.items():
            lines.append(f"  failed {cid}: {msg.splitlines()[0]}")
        for key, p in self.paths.items():
            lines.append(f"wrote {key}: {p}")
        return "\n".join(lines)


def _default_reader(path: Path) -> Image:
    from ..io import read_image

    return read_image(path, kind="label")


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


def _natural_key(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _class_mean(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, list[float]]:
    """Per case and metric, the mean over classes (non-finite if any class is non-finite)."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        acc.setdefault((r["metric"], r["case_id"]), []).append(float(r["value"]))
    out: dict[str, list[float]] = {m: [] for m in metrics}
    for (metric, _), vals in acc.items():
        out[metric].append(float(np.mean(vals)))
    return out


def _boxplot(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # optional: pip install 'medimg[plots]'
        return None
    data = [[float(r["value"]) for r in rows if r["label"] == lab and r["metric"] == "dice"] for lab in labels]
    data = [[v for v in d if math.isfinite(v)] for d in data]
    if not any(data):
        return None
    fig = Figure(figsize=(max(3.0, 1.2 * len(labels) + 1.5), 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), [f"{lab}\n(n={len(d)})" for lab, d in zip(labels, data)])
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):  # every case visible, not only the quartiles
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(d)), d, s=10, alpha=0.6, color="tab:blue")
    ax.set_ylabel("Dice")
    ax.set_ylim(min(0.0, min((min(d) for d in data if d), default=0.0)) - 0.02, 1.02)
    ax.set_title("Dice per case and class")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


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
) -> EvaluationReport:
    """Score every prediction in ``pred_dir`` against its reference in ``ref_dir``.

    Cases are matched by case id (layouts in the module docstring). Each case is read,
    checked for a common grid and scored with :func:`compute_case_metrics`; a case that
    fails (unreadable file, grid mismatch...) is reported in ``failed`` and the others are
    still evaluated.

    Args:
        pred_dir: predictions (``labels.json`` there names the classes).
        ref_dir: references.
        output_dir: where to write ``metrics.csv``, ``summary.json`` and (with
            matplotlib) ``dice_boxplot.png``; nothing is written if None.
        metrics: metric names; default :data:`DEFAULT_METRICS`.
        label_names: class names (background first, or ``{index: name}``); default
            ``PRED_DIR/labels.json``, else ``label_1``, ``label_2``...
        bootstrap: bootstrap resamples for the confidence intervals (0: none).
        ci: interval coverage, e.g. 0.95.
        seed: bootstrap seed; the same seed gives the same intervals.
        ref_name / pred_name: label file name inside case folders (auto-detected if None).
        label_map: remapping of reference values, e.g. ``{1: 1, 2: 1, 3: 1, 4: 1}``.
        metric_params: e.g. ``{"nsd": {"tolerance_mm": 1.0}}``.
        empty_score: overlap score where a class is absent from both pred and ref.
        missing_pred: ``"report"`` (list missed cases only) or ``"empty"`` (also score
            them as empty predictions: Dice 0, distances inf).
        reader: path -> Image; default :func:`medimg.io.read_image`.
        progress: called as ``progress(done, total, case_id)`` after each case.

    Returns:
        An :class:`EvaluationReport`; ``report.format()`` is a one-screen summary.
    """
    if missing_pred not in ("report", "empty"):
        raise ValueError(f"missing_pred must be 'report' or 'empty', got {missing_pred!r}")
    metrics = [METRICS.get(m).name for m in (DEFAULT_METRICS if metrics is None else metrics)]
    params = _resolve_params(metrics, metric_params)  # fail early on bad names/params
    read = reader or _default_reader
    pred_files, pred_problems = find_cases(pred_dir, pred_name)
    ref_files, ref_problems = find_cases(ref_dir, ref_name)
    names = _names_dict(label_names) if label_names is not None else (load_label_names(pred_dir) or {})

    pred_ids = set(pred_files) | set(pred_problems)
    ref_ids = set(ref_files) | set(ref_problems)
    missing_pred_ids = sorted(ref_ids - pred_ids, key=_natural_key)
    missing_ref_ids = sorted(pred_ids - ref_ids, key=_natural_key)
    todo = sorted(pred_ids & ref_ids, key=_natural_key)
    if missing_pred == "empty":
        todo = sorted(set(todo) | set(missing_pred_ids), key=_natural_key)

    failed: dict[str, str] = {}
    per_case: dict[str, dict[int, dict[str, float]]] = {}
    used: dict[str, tuple[Path | None, Path]] = {}
    for i, cid in enumerate(todo):
        try:
            if cid in pred_problems or cid in ref_problems:
                raise DataError(pred_problems.get(cid) or ref_problems[cid])
            ref_path = ref_files[cid]
            ref = read(ref_path)
            ref.meta.setdefault("path", str(ref_path))
            if cid in pred_files:
                pred_path: Path | None = pred_files[cid]
                pred = read(pred_path)
                pred.meta.setdefault("path", str(pred_path))
            else:  # a missed case scored as an empty prediction
                pred_path = None
                pred = Image(torch.zeros((1, *ref.spatial_shape), dtype=torch.uint8), ref.affine,
                             kind="label", meta={"path": f"<missing prediction for {cid}>"})
            per_case[cid] = _score_case(
                pred, ref, names, metrics, metric_params=params, label_map=label_map,
                classes=None, empty_score=empty_score,
            )
            used[cid] = (pred_path, ref_path)
        except Exception as exc:  # one bad case must not stop a study's evaluation
            failed[cid] = f"{type(exc).__name__}: {exc}"
        if progress is not None:
            progress(i + 1, len(todo), cid)

    # Every evaluated case gets a row for every class seen anywhere (or named), so the
    # per-class statistics cover the same cases: a class absent from both pred and ref of
    # a case gets the both-empty values documented in medimg.metrics.segmentation.
    classes = sorted({c for c in names if c > 0} | {c for v in per_case.values() for c in v})
    labels = [_label_name(names, c) for c in classes]
    empty_vals = compute_metrics(
        np.zeros((1, 1, 1), np.uint8), np.zeros((1, 1, 1), np.uint8), [1], metrics,
        metric_params=params, empty_score=empty_score,
    )[1]
    cases = sorted(per_case, key=_natural_key)
    rows: list[dict[str, Any]] = []
    for cid in cases:
        for c, lab in zip(classes, labels):
            vals = per_case[cid].get(c, empty_vals)
            rows.extend({"case_id": cid, "label": lab, "metric": m, "value": vals[m]} for m in metrics)

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
    summary["_cases"] = {
        "n_matched": len(set(pred_ids) & set(ref_ids)),
        "n_evaluated": len(cases),
        "missing_pred": missing_pred_ids,
        "missing_ref": missing_ref_ids,
        "failed": dict(failed),
        "missing_pred_scored_as_empty": missing_pred == "empty",
    }
    summary["_settings"] = {
        "metrics": {m: params[m] for m in metrics},
        "empty_score": None if math.isnan(empty_score) else empty_score,
        "bootstrap": int(bootstrap),
        "ci": ci,
        "seed": seed,
        "label_map": {str(k): int(v) for k, v in (label_map or {}).items()},
        "label_names": {str(c): lab for c, lab in zip(classes, labels)},
        "pred_dir": str(pred_dir),
        "ref_dir": str(ref_dir),
    }

    report = EvaluationReport(
        rows=rows, summary=summary, cases=cases, missing_pred=missing_pred_ids,
        missing_ref=missing_ref_ids, failed=failed, files=used,
        label_names=dict(zip(classes, labels)),
    )
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.paths["metrics_csv"] = write_metrics_csv(rows, out / "metrics.csv")
        path = out / "summary.json"
        path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        report.paths["summary_json"] = path
        if "dice" in metrics and rows:
            png = _boxplot(rows, labels, out / "dice_boxplot.png")
            if png is not None:
                report.paths["dice_boxplot"] = png
    return report
