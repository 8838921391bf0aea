"""Scoring one case: two label :class:`~medimg.core.Image` on one grid -> rows of metrics.

:func:`compute_case_metrics` checks that prediction and reference share a grid (shape
equal, affines within :data:`~medimg.core.affine.GRID_ATOL_MM`), turns each into an
integer label array (the argmax of a probability image), remaps the reference with a
label map if given, and scores every foreground class with the metrics registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.affine import GRID_ATOL_MM
from ..core.errors import DataError, GeometryError
from ..core.image import Image
from ..io.layout import nifti_case_id
from .labels import apply_label_map, label_name, names_dict, present_labels
from .registry import compute_metrics

__all__ = [
    "DEFAULT_METRICS",
    "case_id_from_path",
    "compute_case_metrics",
    "label_arrays",
    "score_arrays",
    "source_of",
]

#: Metrics computed when none are named.
DEFAULT_METRICS: tuple[str, ...] = ("dice", "jaccard", "hd95", "assd", "nsd", "volume_ml", "volume_diff_ml")


def case_id_from_path(path: str | Path) -> str | None:
    """The case id of a NIfTI file: its name without ``.nii.gz`` / ``.nii`` (else None)."""
    return nifti_case_id(path)


def source_of(img: Image, default: str) -> str:
    """Where an image came from (its ``meta`` path, source or file name), for messages."""
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
            f"{role} '{where}' has {data.shape[0]} channels (shape {tuple(data.shape)}); expected a "
            "label map: one channel holding a class index per voxel",
            hint="pass a label map (Image kind 'label'), or class probabilities as kind "
            "'probabilities' so that their argmax is taken",
            cli_hint="give label maps (one class index per voxel, as `medimg predict` writes them), "
            "not one channel per class",
        )
    arr = data[0].detach().cpu().numpy()
    if np.issubdtype(arr.dtype, np.floating):
        rounded = np.rint(arr)
        if not np.array_equal(rounded, arr):
            raise DataError(
                f"{role} '{where}' holds non-integer values (e.g. {float(arr[arr != rounded][0]):g}); "
                "expected a label map of class indices",
                hint="store class indices (the argmax of the probabilities), or check that this file is a label map",
            )
        arr = rounded.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise DataError(f"{role} '{where}' has negative label {int(arr.min())}; labels must be >= 0")
    return arr


def _check_grid(pred: Image, ref: Image, pred_src: str, ref_src: str) -> None:
    if pred.spatial_shape != ref.spatial_shape:
        raise GeometryError(
            f"prediction '{pred_src}' and reference '{ref_src}' are not on the same grid: "
            f"shape {pred.spatial_shape} vs {ref.spatial_shape}",
            hint="write predictions on the reference's own grid (medimg predict inverts its "
            "preprocessing) or resample the prediction with nearest-neighbour first",
            cli_hint="write predictions on the reference's own grid (medimg predict does), or pass "
            "--resample-to reference to resample each prediction onto its reference (nearest neighbour)",
        )
    diff = np.abs(np.asarray(pred.affine) - np.asarray(ref.affine))
    if diff.max() > GRID_ATOL_MM:
        def fmt(t: Sequence[float]) -> str:
            return "(" + ", ".join(f"{v:.4g}" for v in t) + ")"

        raise GeometryError(
            f"prediction '{pred_src}' and reference '{ref_src}' are not on the same grid: "
            f"affines differ by up to {diff.max():.4g} mm (tolerance {GRID_ATOL_MM} mm); "
            f"spacing {fmt(pred.spacing)} vs {fmt(ref.spacing)} mm, origin {fmt(pred.origin)} "
            f"vs {fmt(ref.origin)} mm, axes {''.join(pred.axcodes)} vs {''.join(ref.axcodes)}",
            hint="resample or reorient the prediction onto the reference grid first",
            cli_hint="pass --resample-to reference to resample each prediction onto its reference "
            "(nearest neighbour), or write predictions on the reference's grid",
        )


def resample_labels_onto(pred: Image, ref: Image) -> Image:
    """``pred`` (a label map) resampled onto ``ref``'s grid, nearest neighbour; 0 where
    the reference grid reaches outside the prediction's. What ``--resample-to reference``
    does: each reference voxel takes the label of the prediction voxel its centre falls in
    (``scipy.ndimage.affine_transform``, order 0)."""
    from scipy.ndimage import affine_transform

    if pred.data.ndim != 4 or ref.data.ndim != 4:
        raise DataError(f"resampling onto the reference grid takes 3D label maps; '{source_of(pred, '<pred>')}' "
                        f"has shape {tuple(pred.data.shape[1:])}, '{source_of(ref, '<ref>')}' {tuple(ref.data.shape[1:])}")
    # one voxel of 0 around the prediction: scipy's "constant" mode gives cval to every
    # point past the outer voxel *centres*, but a voxel reaches half a voxel further
    arr = np.pad(pred.data[0].detach().cpu().numpy(), 1)
    m = np.linalg.inv(np.asarray(pred.affine, dtype=np.float64)) @ np.asarray(ref.affine, dtype=np.float64)
    out = affine_transform(arr, m[:3, :3], offset=m[:3, 3] + 1.0, output_shape=tuple(ref.spatial_shape), order=0,
                           mode="constant", cval=0)
    meta = {**pred.meta, "resampled_onto": source_of(ref, "<ref>")}
    return Image(torch.from_numpy(out[None]), np.asarray(ref.affine).copy(), kind="label", meta=meta)


def label_arrays(
    pred: Image, ref: Image, label_map: Mapping[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The integer label arrays of a prediction and its reference, checked to share a grid.

    The reference is remapped through ``label_map`` when given (unlisted values -> 0).

    Raises:
        GeometryError: not on the same grid (the message names both sources).
        DataError: an image is not a single-channel integer label map.
    """
    pred_src = source_of(pred, "<pred>")
    ref_src = source_of(ref, "<ref>")
    _check_grid(pred, ref, pred_src, ref_src)
    p = _label_array(pred, "prediction", pred_src)
    r = _label_array(ref, "reference", ref_src)
    if label_map:
        r = apply_label_map(r, label_map)
    return p, r


def score_arrays(
    p: np.ndarray,
    r: np.ndarray,
    spacing: Sequence[float],
    names: Mapping[int, str],
    metrics: Sequence[str],
    *,
    metric_params: Mapping[str, Mapping[str, Any]] | None,
    classes: Sequence[int] | None,
    empty_score: float,
    surface: str = "monai",
) -> dict[int, dict[str, float]]:
    """``{class: {metric: value}}`` of one case's label arrays.

    ``classes`` default: the named ones (value > 0) and any other value present in
    ``p`` or ``r``.
    """
    if classes is None:
        present = set(present_labels(p)) | set(present_labels(r))
        classes = sorted((present | set(names)) - {0})
    return compute_metrics(
        p, r, classes, metrics, spacing=spacing, metric_params=metric_params, empty_score=empty_score,
        surface=surface,
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
    surface: str = "monai",
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
            3: 1, 4: 1}`` scores BraTS labels as whole tumour; unlisted values become 0.
        classes: foreground classes to score; default: the named ones (index > 0) and
            any other label present in ``pred`` or ``ref``.
        empty_score: overlap score where a class is absent from both (see
            :mod:`medimg.metrics.segmentation`).
        surface: surface-distance definitions, ``"monai"`` (default) or ``"deepmind"``.

    Returns:
        Rows ``{"case_id", "label", "metric", "value"}``, classes in increasing order;
        distances in mm (from the image's spacing), volumes in ml.

    Raises:
        GeometryError: the two images are not on the same grid (message names both
            sources and what differs).
        DataError: an image is not a single-channel integer label map.
    """
    p, r = label_arrays(pred, ref, label_map)
    names = names_dict(label_names)
    values = score_arrays(
        p, r, pred.spacing, names, list(DEFAULT_METRICS if metrics is None else metrics),
        metric_params=metric_params, classes=classes, empty_score=empty_score, surface=surface,
    )
    pred_src = source_of(pred, "<pred>")
    cid = case_id or pred.meta.get("case_id") or case_id_from_path(pred_src) or pred_src
    rows = []
    for c in sorted(values):
        for name, value in values[c].items():
            rows.append({"case_id": str(cid), "label": label_name(names, c), "metric": name, "value": value})
    return rows
