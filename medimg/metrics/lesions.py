"""Lesion-wise metrics: connected components matched between prediction and reference.

For lesions and tumours, a voxel Dice hides what a reader counts: how many lesions were
found, how many were missed, how many false alarms. These metrics score each class's
connected components, and register in :data:`~medimg.metrics.METRICS` as
``lesion_sensitivity``, ``lesion_precision``, ``lesion_f1``, ``lesion_dice``,
``lesion_hd95``, ``lesion_fp`` and ``lesion_fn`` (``medimg evaluate --metrics
lesion_f1,lesion_dice``), so they come per case and class with bootstrap intervals like
every other metric.

The rule, step by step, for one class of one case:

1. **Components.** The class's voxels of the prediction and of the reference are split
   into connected components with :func:`scipy.ndimage.label`; ``connectivity`` is the
   neighbourhood of :func:`scipy.ndimage.generate_binary_structure` (3D: 1 = faces
   (6-neighbourhood), 2 = faces and edges (18), 3 = also corners (26, the default, as in
   the BraTS 2023 lesion-wise scoring)).
2. **Minimum size.** Components smaller than ``min_voxels`` voxels or ``min_ml`` ml (both
   default 0: all kept) are removed from both sides before matching: they are neither
   lesions to find nor false positives.
3. **Matching.** A reference lesion ``R`` and a predicted component ``P`` *match* when they
   share at least ``max(1, min_overlap * |R|)`` voxels; ``min_overlap`` is a fraction of
   the reference lesion (default 0: any common voxel). A reference lesion is *detected*
   (a true positive, TP) when some predicted component matches it, else *missed* (a false
   negative, FN). A predicted component that matches no reference lesion is a *false
   positive* (FP).
4. **Counts.** ``lesion_sensitivity`` = TP / (TP + FN), the fraction of reference lesions
   detected; ``lesion_precision`` = (predicted components that match) / (all predicted
   components); ``lesion_f1`` = 2 TP / (2 TP + FN + FP); ``lesion_fp`` = FP and
   ``lesion_fn`` = FN, counts per case.
5. **Lesion-wise Dice**, as in BraTS 2023: each reference lesion gets the Dice between it
   and the union of the predicted components that match it (0 when missed), each false
   positive component adds an entry of 0, and ``lesion_dice`` = sum of the entries /
   (TP + FN + FP).
6. **Lesion-wise HD95**: likewise, each detected lesion gets the HD95 (mm, MONAI's
   definition, :mod:`medimg.metrics.surface`) between it and its matching components;
   each missed lesion and each false positive gets the penalty ``missed_hd95_mm``
   (default: the image's diagonal in mm, as BraTS 2023 uses 374 mm, the diagonal of its
   grid), and ``lesion_hd95`` is their mean.

Empty cases follow :mod:`medimg.metrics.segmentation`: no lesion on either side gives
``empty_score`` for sensitivity, precision, F1 and Dice, NaN for HD95 and 0 for the
counts; no reference lesion but some predicted: sensitivity NaN (0/0), precision, F1 and
Dice 0; reference lesions and no prediction: precision NaN, the others 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import SegmentationMetric, _register
from .surface import foreground_box, hd_from_distances, surface_distances

__all__ = ["LESION_METRICS", "LesionMatch", "match_lesions"]

#: Parameters of every lesion metric, with their defaults.
LESION_DEFAULTS: dict[str, Any] = {
    "connectivity": 3,
    "min_overlap": 0.0,
    "min_voxels": 0,
    "min_ml": 0.0,
}


@dataclass
class LesionMatch:
    """The lesions of one class of one case, matched (module docstring).

    Attributes:
        n_ref / n_pred: reference lesions and predicted components (after the size filter).
        tp / fn / fp: detected and missed reference lesions, unmatched predicted components.
        pred_matched: predicted components that match some reference lesion.
        dice: one Dice per reference lesion (0 if missed), in label order.
        hd95: one HD95 (mm) per detected reference lesion, in label order.
    """

    n_ref: int
    n_pred: int
    tp: int
    fn: int
    fp: int
    pred_matched: int
    dice: list[float] = field(default_factory=list)
    hd95: list[float] = field(default_factory=list)


def _components(mask: np.ndarray, connectivity: int, min_size: float) -> tuple[np.ndarray, int]:
    """Labelled components of ``mask`` without those under ``min_size`` voxels, renumbered."""
    from scipy import ndimage

    if not 1 <= int(connectivity) <= mask.ndim:
        raise ValueError(
            f"lesion metrics: connectivity must be 1..{mask.ndim} for {mask.ndim}D images "
            f"(1: faces only, {mask.ndim}: corners too), got {connectivity}"
        )
    structure = ndimage.generate_binary_structure(mask.ndim, int(connectivity))
    lab, n = ndimage.label(mask, structure=structure)
    if n and min_size > 1:
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        keep = sizes >= min_size
        keep[0] = False
        new = np.zeros(n + 1, dtype=lab.dtype)
        new[keep] = np.arange(1, int(keep.sum()) + 1)
        lab, n = new[lab], int(keep.sum())
    return lab, int(n)


def _overlaps(ref_lab: np.ndarray, n_ref: int, pred_lab: np.ndarray, n_pred: int) -> np.ndarray:
    """``m[i, j]`` = voxels shared by reference lesion ``i+1`` and predicted component ``j+1``."""
    both = (ref_lab > 0) & (pred_lab > 0)
    code = ref_lab[both].astype(np.int64) * (n_pred + 1) + pred_lab[both]
    m = np.bincount(code, minlength=(n_ref + 1) * (n_pred + 1)).reshape(n_ref + 1, n_pred + 1)
    return m[1:, 1:]


def _hd95(ref: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...]) -> float:
    """HD95 (mm) of two binary masks, on their common bounding box grown by one voxel."""
    box = foreground_box(ref | pred)  # a detected lesion: never empty
    d = surface_distances(pred[box].view(np.uint8), ref[box].view(np.uint8), [1], spacing)[1]
    return hd_from_distances(d, 95.0)


def match_lesions(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: tuple[float, ...] | None = None,
    *,
    connectivity: int = 3,
    min_overlap: float = 0.0,
    min_voxels: int = 0,
    min_ml: float = 0.0,
    with_hd95: bool = True,
) -> LesionMatch:
    """Match the lesions of two binary masks (the rule is in the module docstring).

    Args:
        pred / ref: boolean (or 0/1) masks of one class, same shape.
        spacing: mm per voxel (1 if None), for ``min_ml`` and the HD95.
        connectivity: 1..ndim, see :func:`scipy.ndimage.generate_binary_structure`.
        min_overlap: fraction of a reference lesion a predicted component must cover to
            match it (0: one voxel is enough).
        min_voxels / min_ml: smaller components are removed from both sides.
        with_hd95: compute the per-lesion HD95 (the costly part).
    """
    pred = np.asarray(pred).astype(bool)
    ref = np.asarray(ref).astype(bool)
    if pred.shape != ref.shape:
        raise ValueError(f"pred and ref must have the same shape; got {pred.shape} and {ref.shape}")
    sp = tuple([1.0] * ref.ndim) if spacing is None else tuple(float(s) for s in spacing)
    if not 0.0 <= float(min_overlap) <= 1.0:
        raise ValueError(f"lesion metrics: min_overlap is a fraction in [0, 1], got {min_overlap}")
    min_size = max(float(min_voxels), float(min_ml) * 1000.0 / float(np.prod(sp)))
    # Components and surfaces are unchanged on the box grown by 1; both empty: one voxel.
    box = foreground_box(pred | ref) or tuple(slice(0, 1) for _ in ref.shape)
    pred, ref = pred[box], ref[box]
    ref_lab, n_ref = _components(ref, connectivity, min_size)
    pred_lab, n_pred = _components(pred, connectivity, min_size)
    m = _overlaps(ref_lab, n_ref, pred_lab, n_pred)
    sizes = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)[1:]
    need = np.maximum(1.0, float(min_overlap) * sizes)
    match = m >= need[:, None]
    detected = match.any(axis=1)
    pred_ok = match.any(axis=0)
    out = LesionMatch(
        n_ref=n_ref, n_pred=n_pred, tp=int(detected.sum()), fn=int(n_ref - detected.sum()),
        fp=int(n_pred - pred_ok.sum()), pred_matched=int(pred_ok.sum()),
    )
    pred_sizes = np.bincount(pred_lab.ravel(), minlength=n_pred + 1)[1:]
    for i in range(n_ref):
        if not detected[i]:
            out.dice.append(0.0)
            continue
        js = np.flatnonzero(match[i])
        inter = int(m[i, js].sum())
        out.dice.append(2.0 * inter / (int(sizes[i]) + int(pred_sizes[js].sum())))
        if with_hd95:
            out.hd95.append(_hd95(ref_lab == i + 1, np.isin(pred_lab, js + 1), sp))
    return out


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else math.nan


def _lesions(case: Any, c: int, params: dict[str, Any], with_hd95: bool) -> LesionMatch:
    """The :class:`LesionMatch` of class ``c``, cached on the case per parameter set."""
    key = ("lesions", c, tuple(sorted(params.items())))
    cache = case.cache
    hit = cache.get(key)
    if hit is None or (with_hd95 and len(hit.hd95) < hit.tp):
        hit = match_lesions(case.pred == c, case.ref == c, case.spacing, with_hd95=with_hd95, **params)
        cache[key] = hit
    return hit


def _split(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in LESION_DEFAULTS}


def _sensitivity(case: Any, c: int, **p: Any) -> float:
    lm = _lesions(case, c, _split(p), False)
    return case.empty_score if lm.n_ref + lm.n_pred == 0 else _ratio(lm.tp, lm.n_ref)


def _precision(case: Any, c: int, **p: Any) -> float:
    lm = _lesions(case, c, _split(p), False)
    return case.empty_score if lm.n_ref + lm.n_pred == 0 else _ratio(lm.pred_matched, lm.n_pred)


def _f1(case: Any, c: int, **p: Any) -> float:
    lm = _lesions(case, c, _split(p), False)
    return case.empty_score if lm.n_ref + lm.n_pred == 0 else 2 * lm.tp / (2 * lm.tp + lm.fn + lm.fp)


def _dice(case: Any, c: int, **p: Any) -> float:
    lm = _lesions(case, c, _split(p), False)
    if lm.n_ref + lm.n_pred == 0:
        return case.empty_score
    return float(sum(lm.dice)) / (lm.n_ref + lm.fp)


def _diagonal_mm(case: Any) -> float:
    return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(case.ref.shape, case.spacing))))


def _hd95_lesions(case: Any, c: int, missed_hd95_mm: float | None = None, **p: Any) -> float:
    lm = _lesions(case, c, _split(p), True)
    if lm.n_ref + lm.n_pred == 0:
        return math.nan
    penalty = _diagonal_mm(case) if missed_hd95_mm is None else float(missed_hd95_mm)
    return float(sum(lm.hd95) + penalty * (lm.fn + lm.fp)) / (lm.n_ref + lm.fp)


def _fp(case: Any, c: int, **p: Any) -> float:
    return float(_lesions(case, c, _split(p), False).fp)


def _fn(case: Any, c: int, **p: Any) -> float:
    return float(_lesions(case, c, _split(p), False).fn)


#: The lesion-wise metrics, registered in :data:`~medimg.metrics.METRICS`.
LESION_METRICS: tuple[SegmentationMetric, ...] = (
    SegmentationMetric("lesion_sensitivity", _sensitivity, defaults=LESION_DEFAULTS,
                       description="fraction of reference lesions detected (connected components)"),
    SegmentationMetric("lesion_precision", _precision, defaults=LESION_DEFAULTS,
                       description="fraction of predicted components that match a reference lesion"),
    SegmentationMetric("lesion_f1", _f1, defaults=LESION_DEFAULTS,
                       description="lesion-wise F1, 2TP/(2TP+FN+FP) over lesions"),
    SegmentationMetric("lesion_dice", _dice, defaults=LESION_DEFAULTS,
                       description="lesion-wise Dice (BraTS 2023: missed and false-positive lesions count 0)"),
    SegmentationMetric("lesion_hd95", _hd95_lesions, "mm", False,
                       defaults={**LESION_DEFAULTS, "missed_hd95_mm": None},
                       description="lesion-wise HD95, mm (missed and false-positive lesions: image diagonal)"),
    SegmentationMetric("lesion_fp", _fp, "", False, defaults=LESION_DEFAULTS,
                       description="false-positive predicted components per case"),
    SegmentationMetric("lesion_fn", _fn, "", False, defaults=LESION_DEFAULTS,
                       description="missed reference lesions per case"),
)

for _metric in LESION_METRICS:
    _register(_metric)
