"""Per-class post-processing of predicted label maps: a minimum probability for a class
(applied where probabilities become labels, :func:`apply_min_probability`), then keep the
largest connected component, remove components under a size in mL.

Components are found by :func:`scipy.ndimage.label` (face connectivity) on the label map
as written, on the input's own grid, so sizes are physical: voxel volume = ``|det|`` of
the affine's 3x3 (mm^3) / 1000. Removed voxels become background (0).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core import Image
from ..core.spec import PostprocessSpec

__all__ = [
    "apply_min_probability",
    "low_probability_voxels",
    "kept_components",
    "label_components",
    "parse_class_list",
    "parse_class_probabilities",
    "parse_class_sizes",
    "postprocess_labels",
    "voxel_volume_ml",
]


def voxel_volume_ml(image: Image) -> float:
    """Volume of one voxel of ``image`` in mL (for a 2D image: its pixel area in mm^2 / 1000)."""
    nd = image.spatial_ndim
    a = np.asarray(image.affine, dtype=float)
    return float(abs(np.linalg.det(a[:nd, :nd]))) / 1000.0


def label_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a boolean ``mask`` (face connectivity, :func:`scipy.ndimage.label`).

    Returns:
        ``(components, sizes)``: the component index of each voxel (0 outside the mask,
        1..n inside) and the voxel count of components 1..n (``sizes[i]`` is component i+1's).
    """
    from scipy import ndimage

    comps, n = ndimage.label(mask)
    return comps, np.bincount(comps.ravel(), minlength=n + 1)[1:]


def kept_components(sizes: np.ndarray, voxel_ml: float, cls: int, spec: PostprocessSpec) -> np.ndarray:
    """Which components of class ``cls`` (voxel counts ``sizes``) ``spec`` keeps: those of at
    least ``spec.min_size_ml[cls]`` mL, then (``cls`` in ``spec.keep_largest``) the largest
    of them alone (the first of equal largest ones). Boolean array like ``sizes``."""
    keep = np.ones(len(sizes), dtype=bool)
    if cls in spec.min_size_ml:
        keep &= sizes * voxel_ml >= spec.min_size_ml[cls]
    if cls in spec.keep_largest and keep.any():
        largest = int(np.argmax(np.where(keep, sizes, -1)))
        keep[:] = False
        keep[largest] = True
    return keep


def apply_min_probability(labels: torch.Tensor, top: torch.Tensor, min_probability: dict[int, float]) -> torch.Tensor:
    """``labels`` (class values) with each class ``c`` of ``min_probability`` set to
    background where its probability ``top`` (that of the labelled class, same shape) is
    under ``min_probability[c]``; in place, and returned."""
    for cls, t in min_probability.items():
        labels[(labels == int(cls)) & (top < float(t))] = 0
    return labels


def low_probability_voxels(labels: torch.Tensor, top: torch.Tensor, below: float) -> tuple[np.ndarray, np.ndarray]:
    """The foreground voxels of ``labels`` whose probability ``top`` (of the labelled class)
    is under ``below``: ``(flat indices, int32 where they fit, else int64; probabilities float32)``. All that
    :func:`apply_min_probability` with minimums up to ``below`` can change, at a fraction
    of the memory of the whole probability map."""
    flat = ((labels > 0) & (top < below)).reshape(-1).nonzero().squeeze(1)
    index_type = np.int32 if labels.numel() < 2**31 else np.int64  # 8 bytes a voxel, not 12
    return flat.cpu().numpy().astype(index_type), top.reshape(-1)[flat].float().cpu().numpy()


def postprocess_labels(label: Image, spec: PostprocessSpec | None) -> Image:
    """``label`` (``(1, *spatial)`` class values) with ``spec``'s rules applied per class.

    For each class in ``spec.min_size_ml``, components smaller than the size become
    background; then for each class in ``spec.keep_largest``, only its largest remaining
    component is kept (:func:`kept_components`). A class absent from the map is left as it
    is (nothing to do). ``spec.min_probability`` needs the probabilities and is applied
    before, where they become labels (:func:`apply_min_probability`), not here.

    Returns:
        ``label`` itself when there is nothing to do, else a new Image on the same grid.
    """
    if spec is None or not spec.component_classes:
        return label
    data = label.data[0].cpu().numpy().copy()
    vox_ml = voxel_volume_ml(label)
    for cls in spec.component_classes:
        mask = data == cls
        if not mask.any():
            continue
        comps, sizes = label_components(mask)
        keep = kept_components(sizes, vox_ml, cls, spec)
        if keep.all():
            continue
        drop = np.concatenate([[False], ~keep])[comps]
        data[drop] = 0
    return label.new(torch.from_numpy(data)[None].to(label.data.dtype), kind="label")


def parse_class_list(text: str, option: str = "--keep-largest") -> list[int]:
    """``"1,2"`` -> ``[1, 2]``.

    Raises:
        ValueError: not a comma-separated list of class values (the message names ``option``).
    """
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected class values separated by commas, e.g. 1,2") from None


def parse_class_probabilities(text: str, option: str = "--min-probability") -> dict[int, float]:
    """``"1=0.8,2=0.6"`` -> ``{1: 0.8, 2: 0.6}`` (class value = probability in (0, 1)).

    Raises:
        ValueError: not ``CLASS=P`` pairs separated by commas, or a P outside (0, 1) (the
            message names ``option``).
    """
    out = parse_class_sizes(text, option, unit="P", example="1=0.8,2=0.6")
    bad = {c: p for c, p in out.items() if not 0.0 < p < 1.0}
    if bad:
        raise ValueError(f"{option} {text!r}: each probability must lie strictly between 0 and 1, got "
                         + ", ".join(f"{c}={p:g}" for c, p in bad.items()))
    return out


def parse_class_sizes(text: str, option: str = "--min-size", unit: str = "ML",
                      example: str = "1=0.5,2=3") -> dict[int, float]:
    """``"1=0.5,2=3"`` -> ``{1: 0.5, 2: 3.0}`` (class value = size in mL, or the number ``unit`` names).

    Raises:
        ValueError: not ``CLASS=ML`` pairs separated by commas (the message names ``option``).
    """
    out: dict[int, float] = {}
    for part in (t.strip() for t in text.split(",")):
        if not part:
            continue
        cls, sep, size = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[int(cls)] = float(size)
        except ValueError:
            raise ValueError(
                f"{option} {text!r}: expected CLASS={unit} pairs separated by commas, e.g. {example}"
            ) from None
    return out
