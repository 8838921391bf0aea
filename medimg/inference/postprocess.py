"""Per-class post-processing of predicted label maps: keep the largest connected component,
remove components under a size in mL.

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
    "kept_components",
    "label_components",
    "parse_class_list",
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


def postprocess_labels(label: Image, spec: PostprocessSpec | None) -> Image:
    """``label`` (``(1, *spatial)`` class values) with ``spec``'s rules applied per class.

    For each class in ``spec.min_size_ml``, components smaller than the size become
    background; then for each class in ``spec.keep_largest``, only its largest remaining
    component is kept (:func:`kept_components`). A class absent from the map is left as it
    is (nothing to do).

    Returns:
        ``label`` itself when there is nothing to do, else a new Image on the same grid.
    """
    if spec is None or not spec.classes:
        return label
    data = label.data[0].cpu().numpy().copy()
    vox_ml = voxel_volume_ml(label)
    for cls in spec.classes:
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


def parse_class_sizes(text: str, option: str = "--min-size") -> dict[int, float]:
    """``"1=0.5,2=3"`` -> ``{1: 0.5, 2: 3.0}`` (class value = size in mL).

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
                f"{option} {text!r}: expected CLASS=ML pairs separated by commas, e.g. 1=0.5,2=3"
            ) from None
    return out
