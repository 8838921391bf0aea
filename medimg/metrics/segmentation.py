"""Segmentation metrics: overlap, volume and surface distances, per class, in one pass each.

Conventions:
    * ``pred`` and ``ref`` are integer label maps of the same spatial shape (any number of
      dimensions, usually ``(I, J, K)``), numpy arrays or torch tensors, values in
      ``[0, num_classes)``. Class 0 is background.
    * Surface distances are in millimetres: voxel indices are scaled by ``spacing`` (mm per
      voxel along each array axis, e.g. :attr:`medimg.core.Image.spacing`).

Definitions (chosen to give the same numbers as MONAI 1.6.1, ``monai.metrics``):
    * **Surface voxels** of class ``c``: voxels of class ``c`` that have at least one
      face neighbour (6-neighbourhood in 3D, 4 in 2D) of another class or outside the
      image. This is ``mask ^ scipy.ndimage.binary_erosion(mask)`` with the default cross
      structure and zero border, as in ``monai.metrics.utils.get_mask_edges`` (``crop=True``,
      no sub-voxel areas). Distances are between surface-voxel centres.
    * **Directed distances** ``d(P->R)``: for each surface voxel of ``pred``, the Euclidean
      distance (mm) to the nearest surface voxel of ``ref`` (exact, via a KD-tree), and
      vice versa.
    * **HD** = ``max(max d(P->R), max d(R->P))``. **HD95** = the larger of the two directed
      95th percentiles, ``max(q95(d(P->R)), q95(d(R->P)))`` with linear interpolation between
      order statistics, as ``monai.metrics.compute_hausdorff_distance(percentile=95,
      directed=False)`` does (``hausdorff_distance.py``: ``torch.max`` over the per-direction
      ``torch.quantile``). This is *not* the 95th percentile of the pooled distances
      (medpy's convention, which can differ a lot).
    * **ASSD** (average symmetric surface distance) = the mean of the *concatenated*
      directed distances, ``mean(d(P->R) ++ d(R->P))``, as
      ``compute_average_surface_distance(symmetric=True)`` (``torch.cat`` then ``mean``);
      i.e. each surface voxel weighs the same, not each direction.
    * **NSD** (normalised surface Dice, Nikolov et al. 2021) at tolerance ``tau`` mm =
      ``(#{d(P->R) <= tau} + #{d(R->P) <= tau}) / (|S_P| + |S_R|)`` counted over surface
      voxels, as ``compute_surface_dice(use_subvoxels=False)``.

Empty masks (a class absent from ``pred``, ``ref`` or both), documented once here:

    ============  ==================  ==================  =====================
    metric        both empty          pred empty only     ref empty only
    ============  ==================  ==================  =====================
    dice/jaccard  ``empty_score``     0                   0
    nsd           ``empty_score``     0                   0
    precision     ``empty_score``     NaN (0/0)           0
    recall        ``empty_score``     0                   NaN (0/0)
    hd/hd95/assd  NaN                 inf                 inf
    volumes       0                   defined             defined
    ============  ==================  ==================  =====================

``empty_score`` defaults to 1.0 (both agree that the structure is absent: a perfect
answer); pass ``float("nan")`` to exclude such cases from averages instead. MONAI's
``DiceMetric`` gives 1 there with ``ignore_empty=False`` and NaN with its default
``ignore_empty=True``, which also turns a false-positive class (empty reference, non-empty
prediction) into NaN where medimg says 0. Its surface metrics give NaN for both empty and
inf (HD, ASSD) or 0 (NSD) for one empty, as here, except HD95, which comes out NaN for one
empty mask (``torch.quantile`` of all-inf distances); medimg says inf, like HD. Reports keep NaN and inf
rows and leave them out of means, with a count of how many values contributed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from ..core.registry import Registry

__all__ = [
    "METRICS",
    "SegmentationMetric",
    "ConfusionCounts",
    "confusion_matrix",
    "confusion_counts",
    "dice_per_class",
    "jaccard_per_class",
    "surface_points",
    "surface_distances",
    "hausdorff_per_class",
    "assd_per_class",
    "nsd_per_class",
    "compute_metrics",
    "metric_params_defaults",
]

# --------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------
def _to_numpy_labels(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """A non-negative integer numpy view/copy of a label map (memory order kept)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asanyarray(x)
    if x.dtype == np.bool_:
        return x.view(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if x.size and not np.array_equal(x, np.round(x)):  # also False for NaN / inf
            raise ValueError(
                f"{name} must hold integer class labels; got {x.dtype} values that are not "
                "whole numbers (probabilities or logits?). Take argmax over classes first."
            )
        x = x.astype(np.int64, order="K")
    elif not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must be an integer label map, got dtype {x.dtype}")
    if x.size == 0 or x.dtype in (np.uint8, np.uint16):
        return x
    lo = x.min()
    if lo < 0:
        raise ValueError(f"{name} has negative label {int(lo)}; labels must be 0..num_classes-1")
    hi = int(x.max())
    if hi < 256:
        return x.astype(np.uint8, order="K")
    if hi < 65536:
        return x.astype(np.uint16, order="K")
    return x


def _check_pair(pred: Any, ref: Any) -> None:
    if tuple(pred.shape) != tuple(ref.shape):
        raise ValueError(
            f"pred and ref must have the same shape; got pred {tuple(pred.shape)} and ref "
            f"{tuple(ref.shape)}. Resample the prediction onto the reference grid first."
        )


# --------------------------------------------------------------------------------------
# Overlap: one bincount over all classes
# --------------------------------------------------------------------------------------
class ConfusionCounts(NamedTuple):
    """Per-class voxel counts, each an int64 array of shape ``(num_classes,)``.

    ``tp[c]``: voxels labelled ``c`` in both; ``fp[c]``: ``c`` in pred only; ``fn[c]``:
    ``c`` in ref only; ``tn[c]``: neither.
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray


def confusion_matrix(
    pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, num_classes: int
) -> np.ndarray:
    """Voxel confusion matrix over all classes in one pass (``bincount`` of ``ref*K+pred``).

    Args:
        pred: predicted label map, any shape, integer (or bool) values in ``[0, K)``.
        ref: reference label map of the same shape.
        num_classes: ``K``, including background.

    Returns:
        int64 array ``(K, K)``: ``m[r, p]`` = number of voxels with reference class ``r``
        and predicted class ``p``.

    Raises:
        ValueError: shapes differ, or a label is negative or ``>= num_classes``.
    """
    _check_pair(pred, ref)
    k = int(num_classes)
    if k < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    on_gpu = isinstance(pred, torch.Tensor) and pred.device.type != "cpu"
    if on_gpu:  # stay on the device: no host copy of the volume during validation
        p = pred.reshape(-1).long()
        r = torch.as_tensor(ref, device=pred.device).reshape(-1).long()
        if p.numel():
            _check_range(int(p.min()), int(p.max()), "pred", k)
            _check_range(int(r.min()), int(r.max()), "ref", k)
        counts = torch.bincount(r * k + p, minlength=k * k).cpu().numpy()
        return counts.reshape(k, k).astype(np.int64)
    p = _to_numpy_labels(pred, "pred")
    r = _to_numpy_labels(ref, "ref")
    if p.size:
        _check_range(0, int(p.max()), "pred", k)
        _check_range(0, int(r.max()), "ref", k)
    # Combine in the narrowest dtype that holds K*K codes: the combine and the bincount
    # are the whole cost (uint8: ~0.06 s for 256^3 on 2 cores). order="K" keeps a
    # Fortran-ordered NIfTI array a view instead of copying it.
    if k * k <= 256:
        code = r.astype(np.uint8, copy=False) * np.uint8(k) + p.astype(np.uint8, copy=False)
    else:
        code = r.astype(np.int64) * k + p.astype(np.int64)
    flat = torch.from_numpy(np.ascontiguousarray(code.ravel(order="K")))
    counts = torch.bincount(flat, minlength=k * k).numpy()
    return counts.reshape(k, k).astype(np.int64)


def _check_range(lo: int, hi: int, name: str, k: int) -> None:
    if lo < 0 or hi >= k:
        raise ValueError(
            f"{name} has label {hi if hi >= k else lo} outside 0..{k - 1} "
            f"(num_classes={k}); pass the number of classes including background"
        )


def confusion_counts(
    pred: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor, num_classes: int
) -> ConfusionCounts:
    """Per-class TP/FP/FN/TN voxel counts from one :func:`confusion_matrix` pass."""
    m = confusion_matrix(pred, ref, num_classes)
    return _counts_from_matrix(m)


def _counts_from_matrix(m: np.ndarray) -> ConfusionCounts:
    tp = np.diag(m).copy()
    fp = m.sum(axis=0) - tp
    fn = m.sum(axis=1) - tp
    tn = m.sum() - tp - fp - fn
    return ConfusionCounts(tp, fp, fn, tn)


def _ratio(num: np.ndarray, den: np.ndarray, both_empty: np.ndarray, empty_score: float) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    out[both_empty] = empty_score
    return out


def dice_per_class(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    num_classes: int,
    empty_score: float = 1.0,
) -> np.ndarray:
    """Dice coefficient ``2|P∩R| / (|P|+|R|)`` of every class, background included.

    Args:
        pred: predicted label map (integer, any shape, numpy or torch on any device).
        ref: reference label map, same shape.
        num_classes: number of classes including background (index 0).
        empty_score: value where a class is absent from both (default 1.0; NaN to skip).

    Returns:
        float64 array ``(num_classes,)``; ``[0]`` is the background's Dice.
    """
    c = confusion_counts(pred, ref, num_classes)
    den = 2 * c.tp + c.fp + c.fn
    return _ratio(2 * c.tp, den, den == 0, empty_score)


def jaccard_per_class(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    num_classes: int,
    empty_score: float = 1.0,
) -> np.ndarray:
    """Jaccard index (IoU) ``|P∩R| / |P∪R|`` of every class; see :func:`dice_per_class`."""
    c = confusion_counts(pred, ref, num_classes)
    den = c.tp + c.fp + c.fn
    return _ratio(c.tp, den, den == 0, empty_score)


# --------------------------------------------------------------------------------------
# Surfaces and distances
# --------------------------------------------------------------------------------------
def _foreground_box(lab: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of ``lab > 0`` grown by one voxel (clipped to the array), or None."""
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
    lab = _to_numpy_labels(labels, "labels")
    nd = lab.ndim
    out = {int(c): np.zeros((0, nd), np.int64) for c in classes}
    box = _foreground_box(lab)
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


def _spacing_array(spacing: Sequence[float] | None, nd: int) -> np.ndarray:
    sp = np.ones(nd) if spacing is None else np.asarray(spacing, dtype=np.float64).ravel()
    if sp.shape != (nd,):
        raise ValueError(f"spacing must have {nd} values (mm per axis), got {list(sp)}")
    return sp


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
    sp = _spacing_array(spacing, len(labels.shape))
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
    _check_pair(pred, ref)
    shape = tuple(pred.shape)
    sp = _spacing_array(spacing, len(shape))
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


def _hd_from(d: tuple[np.ndarray, np.ndarray], percentile: float | None) -> float:
    a, b = d
    if len(a) == 0 and len(b) == 0:
        return math.nan
    if len(a) == 0 or len(b) == 0:
        return math.inf
    if percentile is None:
        return float(max(a.max(), b.max()))
    return float(max(np.percentile(a, percentile), np.percentile(b, percentile)))


def _assd_from(d: tuple[np.ndarray, np.ndarray]) -> float:
    a, b = d
    n = len(a) + len(b)
    if n == 0:
        return math.nan
    if len(a) == 0 or len(b) == 0:
        return math.inf
    return float((a.sum() + b.sum()) / n)


def _nsd_from(d: tuple[np.ndarray, np.ndarray], tolerance_mm: float, empty_score: float) -> float:
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
    return _per_class(pred, ref, num_classes, spacing, lambda d: _hd_from(d, percentile))


def assd_per_class(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Average symmetric surface distance (mm) of each foreground class (``[0]`` NaN)."""
    return _per_class(pred, ref, num_classes, spacing, _assd_from)


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
        pred, ref, num_classes, spacing, lambda d: _nsd_from(d, tolerance_mm, empty_score)
    )


# --------------------------------------------------------------------------------------
# The registry: metrics by name, computed together on one case
# --------------------------------------------------------------------------------------
class _Case:
    """Shared, lazily computed quantities of one (pred, ref) pair for several metrics."""

    def __init__(
        self,
        pred: np.ndarray,
        ref: np.ndarray,
        classes: Sequence[int],
        spacing: Sequence[float],
        empty_score: float,
    ) -> None:
        self.pred = pred
        self.ref = ref
        self.classes = [int(c) for c in classes]
        self.spacing = tuple(float(s) for s in spacing)
        self.empty_score = float(empty_score)
        self._counts: ConfusionCounts | None = None
        self._dist: dict[int, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def counts(self, c: int) -> tuple[int, int, int, int]:
        if self._counts is None:
            k = max(self.classes + [0]) + 1
            k = max(k, int(self.pred.max(initial=0)) + 1, int(self.ref.max(initial=0)) + 1)
            self._counts = confusion_counts(self.pred, self.ref, k)
        cc = self._counts
        return int(cc.tp[c]), int(cc.fp[c]), int(cc.fn[c]), int(cc.tn[c])

    def distances(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        if self._dist is None:
            self._dist = surface_distances(self.pred, self.ref, self.classes, self.spacing)
        return self._dist[c]


@dataclass(frozen=True)
class SegmentationMetric:
    """A named per-class segmentation metric.

    Attributes:
        name: registry name, also the ``metric`` column of reports.
        fn: ``fn(case, class_index, **params) -> float`` (internal case object).
        unit: ``""`` (a ratio), ``"mm"`` or ``"ml"``.
        higher_is_better: direction, for plots and model selection.
        defaults: parameters and their defaults (e.g. ``{"tolerance_mm": 2.0}``).
        description: one line for ``medimg list metrics``.
    """

    name: str
    fn: Callable[..., float]
    unit: str = ""
    higher_is_better: bool = True
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __call__(
        self,
        pred: np.ndarray | torch.Tensor,
        ref: np.ndarray | torch.Tensor,
        num_classes: int,
        spacing: Sequence[float] | None = None,
        empty_score: float = 1.0,
        **params: Any,
    ) -> np.ndarray:
        """This metric for every foreground class of one case.

        Example: ``METRICS.get("hd95")(pred, ref, 3, spacing=(0.8, 0.8, 2.5))``.

        Returns:
            float64 ``(num_classes,)``; ``[0]`` (background) is NaN.
        """
        classes = list(range(1, int(num_classes)))
        vals = compute_metrics(
            pred, ref, classes, [self.name], spacing=spacing,
            metric_params={self.name: params} if params else None, empty_score=empty_score,
        )
        out = np.full(int(num_classes), np.nan)
        for c in classes:
            out[c] = vals[c][self.name]
        return out


#: Segmentation metrics by name (``dice``, ``hd95``, ``nsd``...); see ``METRICS.list()``.
METRICS: Registry[SegmentationMetric] = Registry("metrics")


def _register(metric: SegmentationMetric) -> None:
    METRICS.register(metric.name, metric)


def _safe(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _m_dice(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _m_jaccard(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else tp / (tp + fp + fn)


def _m_precision(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else _safe(tp, tp + fp)


def _m_recall(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else _safe(tp, tp + fn)


def _m_specificity(case: _Case, c: int) -> float:
    _, fp, _, tn = case.counts(c)
    return _safe(tn, tn + fp)


def _m_volume(case: _Case, c: int) -> float:
    tp, fp, _, _ = case.counts(c)
    return (tp + fp) * case.voxel_ml


def _m_volume_ref(case: _Case, c: int) -> float:
    tp, _, fn, _ = case.counts(c)
    return (tp + fn) * case.voxel_ml


def _m_volume_diff(case: _Case, c: int) -> float:
    _, fp, fn, _ = case.counts(c)
    return (fp - fn) * case.voxel_ml


for _metric in (
    SegmentationMetric("dice", _m_dice, description="Dice coefficient 2|P∩R|/(|P|+|R|)"),
    SegmentationMetric("jaccard", _m_jaccard, description="Jaccard index (IoU) |P∩R|/|P∪R|"),
    SegmentationMetric("precision", _m_precision, description="positive predictive value TP/(TP+FP)"),
    SegmentationMetric("recall", _m_recall, description="sensitivity TP/(TP+FN)"),
    SegmentationMetric("specificity", _m_specificity, description="TN/(TN+FP) over the image"),
    SegmentationMetric(
        "hd", lambda case, c: _hd_from(case.distances(c), None), "mm", False,
        description="Hausdorff distance (max of both directed maxima), mm",
    ),
    SegmentationMetric(
        "hd95", lambda case, c: _hd_from(case.distances(c), 95.0), "mm", False,
        description="95th-percentile Hausdorff distance (max of the two directed q95), mm",
    ),
    SegmentationMetric(
        "assd", lambda case, c: _assd_from(case.distances(c)), "mm", False,
        description="average symmetric surface distance (mean over both surfaces), mm",
    ),
    SegmentationMetric(
        "nsd",
        lambda case, c, tolerance_mm=2.0: _nsd_from(case.distances(c), tolerance_mm, case.empty_score),
        defaults={"tolerance_mm": 2.0},
        description="normalised surface Dice at tolerance_mm (default 2 mm)",
    ),
    SegmentationMetric("volume_ml", _m_volume, "ml", description="predicted volume, ml"),
    SegmentationMetric("volume_ref_ml", _m_volume_ref, "ml", description="reference volume, ml"),
    SegmentationMetric(
        "volume_diff_ml", _m_volume_diff, "ml", False,
        description="predicted minus reference volume (signed), ml",
    ),
):
    _register(_metric)


def metric_params_defaults(name: str) -> dict[str, Any]:
    """The default parameters of metric ``name`` (did-you-mean error if unknown)."""
    return dict(METRICS.get(name).defaults)


def _resolve_params(
    metrics: Sequence[str], metric_params: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for name in metrics:
        m = METRICS.get(name)
        params[m.name] = dict(m.defaults)
    for name, given in (metric_params or {}).items():
        m = METRICS.get(name)
        unknown = set(given) - set(m.defaults)
        if unknown:
            raise ValueError(
                f"metric '{m.name}' has no parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(m.defaults) or 'none'}"
            )
        params.setdefault(m.name, dict(m.defaults)).update(given)
    return params


def compute_metrics(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    metrics: Sequence[str] = ("dice",),
    spacing: Sequence[float] | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    empty_score: float = 1.0,
) -> dict[int, dict[str, float]]:
    """Several metrics for several classes of one case, sharing the expensive steps.

    The confusion counts come from one bincount and the surfaces of all classes from one
    pass over each label map, whatever the number of metrics and classes.

    Args:
        pred: predicted label map ``(I, J, K)`` (or 2D), integer.
        ref: reference label map, same shape.
        classes: class indices to score (usually ``1..K-1``).
        metrics: names registered in :data:`METRICS`.
        spacing: mm per voxel along each axis (1 if None): distances in mm, volumes in ml.
        metric_params: per-metric parameters, e.g. ``{"nsd": {"tolerance_mm": 1.0}}``.
        empty_score: overlap score where a class is absent from both (module docstring).

    Returns:
        ``{class: {metric: value}}`` with NaN / inf as documented for empty masks.
    """
    _check_pair(pred, ref)
    p = _to_numpy_labels(pred, "pred")
    r = _to_numpy_labels(ref, "ref")
    nd = p.ndim
    sp = tuple([1.0] * nd) if spacing is None else tuple(float(s) for s in spacing)
    if len(sp) != nd:
        raise ValueError(f"spacing must have {nd} values (mm per axis), got {list(sp)}")
    params = _resolve_params(metrics, metric_params)
    case = _Case(p, r, classes, sp, empty_score)
    out: dict[int, dict[str, float]] = {}
    for c in case.classes:
        if c < 0:
            raise ValueError(f"class indices must be >= 0, got {c}")
        row: dict[str, float] = {}
        for name in metrics:
            m = METRICS.get(name)
            row[m.name] = float(m.fn(case, c, **params[m.name]))
        out[c] = row
    return out
