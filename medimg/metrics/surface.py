"""Surface distances in mm: surface voxels, directed nearest distances, HD, HD95, ASSD, NSD.

Definitions (MONAI 1.6.1's) and the empty-mask conventions are in
:mod:`medimg.metrics.segmentation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ._inputs import check_same_shape, spacing_array, to_label_array

__all__ = [
    "surface_points",
    "surface_distances",
    "hausdorff_per_class",
    "assd_per_class",
    "nsd_per_class",
]


def foreground_box(lab: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of ``lab != 0`` grown by one voxel (clipped to the array), or None if empty.

    Components and surfaces of the foreground are unchanged on this crop (used here and by
    :mod:`medimg.metrics.lesions`).
    """
    fg = lab != 0
    box = []
    for ax in range(lab.ndim):
        other = tuple(a for a in range(lab.ndim) if a != ax)
        hit = np.flatnonzero(fg.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(max(int(hit[0]) - 1, 0), min(int(hit[-1]) + 2, lab.shape[ax])))
    return tuple(box)


def _surface_mask(lab: np.ndarray) -> np.ndarray:
    """Voxels with a face neighbour of another label, or on the array's border."""
    b = np.zeros(lab.shape, dtype=bool)
    nd = lab.ndim
    for ax in range(nd):
        lo = [slice(None)] * nd
        hi = [slice(None)] * nd
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        diff = lab[tuple(hi)] != lab[tuple(lo)]
        b[tuple(lo)] |= diff
        b[tuple(hi)] |= diff
        # Outside the array counts as another label (MONAI: erosion with a zero border).
        first = [slice(None)] * nd
        first[ax] = 0
        b[tuple(first)] = True
        first[ax] = -1
        b[tuple(first)] = True
    return b


def _surface_voxels(labels: np.ndarray | torch.Tensor, classes: Sequence[int]) -> dict[int, np.ndarray]:
    """``{c: int64 (n_c, ndim) voxel indices}`` of each class's surface voxels."""
    lab = to_label_array(labels, "labels")
    nd = lab.ndim
    out = {int(c): np.zeros((0, nd), np.int64) for c in classes}
    box = foreground_box(lab)
    if box is None:
        return out
    crop = lab[box]
    surf = _surface_mask(crop)
    surf &= crop != 0
    idx = np.nonzero(surf)
    vals = crop[idx]
    coords = np.stack(idx, axis=1).astype(np.int64)
    coords += np.array([s.start for s in box], dtype=np.int64)
    wanted = np.asarray(sorted(out), dtype=np.int64)
    if len(wanted) == 1:
        out[int(wanted[0])] = coords[vals == wanted[0]]
        return out
    order = np.argsort(vals, kind="stable")
    svals = vals[order]
    for c in wanted:
        lo, hi = np.searchsorted(svals, [c, c + 1])
        out[int(c)] = coords[order[lo:hi]]
    return out


def surface_points(
    labels: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    spacing: Sequence[float] | None = None,
) -> dict[int, np.ndarray]:
    """Surface-voxel centres of each class, in mm, from one pass over the label map.

    A voxel of class ``c`` is on the surface when one of its face neighbours has another
    label or lies outside the array (see the module docstring). Only the bounding box of
    the foreground (+1 voxel) is scanned.

    Args:
        labels: integer label map ``(I, J, K)`` (or 2D).
        classes: the classes wanted (background 0 is not meaningful here).
        spacing: mm per voxel along each axis; 1 if None.

    Returns:
        ``{c: float64 array (n_c, ndim)}`` of voxel index * spacing (mm); ``n_c`` may be 0.
    """
    sp = spacing_array(spacing, len(labels.shape))
    return {c: v * sp for c, v in _surface_voxels(labels, classes).items()}


def _nearest(from_pts: np.ndarray, to_pts: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
    """Distance (mm) from each point of ``from_pts`` to the nearest of ``to_pts``.

    ``skip`` marks points known to lie on ``to_pts`` (distance 0), left out of the query.
    """
    from scipy.spatial import cKDTree

    if len(from_pts) == 0:
        return np.zeros(0)
    if len(to_pts) == 0:
        return np.full(len(from_pts), np.inf)
    out = np.zeros(len(from_pts))
    query = from_pts if skip is None else from_pts[~skip]
    if len(query):
        tree = cKDTree(to_pts, leafsize=32, balanced_tree=False, compact_nodes=False)
        d = tree.query(query, k=1, workers=-1)[0]
        if skip is None:
            out = d
        else:
            out[~skip] = d
    return out


def surface_distances(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    spacing: Sequence[float] | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Directed surface distances of each class: ``{c: (d_pred_to_ref, d_ref_to_pred)}`` in mm.

    ``d_pred_to_ref[i]`` is the distance from the i-th surface voxel of ``pred`` to the
    nearest surface voxel of ``ref`` (inf where ``ref`` has no such class; empty where
    ``pred`` has none). Exact Euclidean distances through a KD-tree on the surface voxels;
    voxels on both surfaces (distance 0, often half of them for a good segmentation) are
    found by index and not queried.
    """
    check_same_shape(pred, ref)
    shape = tuple(pred.shape)
    sp = spacing_array(spacing, len(shape))
    vox_pred = _surface_voxels(pred, classes)
    vox_ref = _surface_voxels(ref, classes)
    out = {}
    for c in vox_pred:
        vp, vr = vox_pred[c], vox_ref[c]
        if len(vp) and len(vr):
            fp = np.ravel_multi_index(tuple(vp.T), shape)
            fr = np.ravel_multi_index(tuple(vr.T), shape)
            on_p = np.isin(fp, fr, assume_unique=True)
            on_r = np.isin(fr, fp, assume_unique=True)
        else:
            on_p = on_r = None
        pp, pr = vp * sp, vr * sp
        out[c] = (_nearest(pp, pr, on_p), _nearest(pr, pp, on_r))
    return out


def hd_from_distances(d: tuple[np.ndarray, np.ndarray], percentile: float | None) -> float:
    a, b = d
    if len(a) == 0 and len(b) == 0:
        return math.nan
    if len(a) == 0 or len(b) == 0:
        return math.inf
    if percentile is None:
        return float(max(a.max(), b.max()))
    return float(max(np.percentile(a, percentile), np.percentile(b, percentile)))


def assd_from_distances(d: tuple[np.ndarray, np.ndarray]) -> float:
    a, b = d
    n = len(a) + len(b)
    if n == 0:
        return math.nan
    if len(a) == 0 or len(b) == 0:
        return math.inf
    return float((a.sum() + b.sum()) / n)


def nsd_from_distances(d: tuple[np.ndarray, np.ndarray], tolerance_mm: float, empty_score: float) -> float:
    a, b = d
    n = len(a) + len(b)
    if n == 0:
        return float(empty_score)
    return float((np.count_nonzero(a <= tolerance_mm) + np.count_nonzero(b <= tolerance_mm)) / n)


def _per_class(
    pred: Any, ref: Any, num_classes: int, spacing: Sequence[float] | None, fn: Callable
) -> np.ndarray:
    classes = list(range(1, int(num_classes)))
    dist = surface_distances(pred, ref, classes, spacing)
    out = np.full(int(num_classes), np.nan)
    for c in classes:
        out[c] = fn(dist[c])
    return out


def hausdorff_per_class(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    num_classes: int,
    spacing: Sequence[float] | None = None,
    percentile: float | None = None,
) -> np.ndarray:
    """Symmetric Hausdorff distance (mm) of each foreground class.

    Args:
        percentile: None for the maximum (HD); e.g. 95 for HD95 = the larger of the two
            directed 95th percentiles (MONAI's definition, see the module docstring).

    Returns:
        float64 ``(num_classes,)``; ``[0]`` (background) is NaN; inf if one mask is empty,
        NaN if both are.
    """
    if percentile is not None and not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return _per_class(pred, ref, num_classes, spacing, lambda d: hd_from_distances(d, percentile))


def assd_per_class(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Average symmetric surface distance (mm) of each foreground class (``[0]`` NaN)."""
    return _per_class(pred, ref, num_classes, spacing, assd_from_distances)


def nsd_per_class(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    num_classes: int,
    spacing: Sequence[float] | None = None,
    tolerance_mm: float = 2.0,
    empty_score: float = 1.0,
) -> np.ndarray:
    """Normalised surface Dice at ``tolerance_mm`` of each foreground class (``[0]`` NaN)."""
    return _per_class(
        pred, ref, num_classes, spacing, lambda d: nsd_from_distances(d, tolerance_mm, empty_score)
    )
