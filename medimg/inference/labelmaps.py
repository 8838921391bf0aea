"""Class probabilities to label maps: the argmax over classes, ties to the lower class,
with a class's minimum probability (``inference.postprocess.min_probability``), on the
preprocessed grid (:func:`label_map_of`) or taken back to the input's grid a few classes
at a time (:func:`labels_by_class_chunks`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.errors import GeometryError
from ..core.image import Image
from ..transforms import invert_history
from .memory import INVERT_CLASS_CHUNK
from .postprocess import apply_min_probability

__all__ = ["inverted", "label_map_of", "labels_by_class_chunks"]


def label_map_of(probs: Image, min_probability: dict[int, float] | None = None) -> Image:
    """The argmax of class probabilities ``(K, *spatial)``: ``(1, *spatial)`` uint8 (int16
    over 256 classes), same grid and meta; a class of ``min_probability`` becomes
    background where its probability is under the class's minimum."""
    k = probs.num_channels
    top, labels = _argmax_classes(probs.data)
    labels = labels.to(torch.uint8 if k <= 256 else torch.int16)
    if min_probability:
        apply_min_probability(labels, top, min_probability)
    labels = labels[None]
    return Image(labels, probs.affine.copy(), kind="label", meta=dict(probs.meta))


def inverted(image: Image, history: Any, source: Image, case_id: str | None) -> Image:
    """``image`` taken back through the preprocessing ``history`` onto ``source``'s grid."""
    back = invert_history(image, history)
    if not back.same_grid(source):
        raise GeometryError(
            f"case '{case_id or '?'}': inverting the preprocessing gave grid "
            f"{back.spatial_shape} (affine off by {np.abs(back.affine - source.affine).max():.3g} mm), "
            f"expected the input's {source.spatial_shape}",
            hint="a preprocessing transform does not invert exactly; report this as a bug",
        )
    return back


def labels_by_class_chunks(probs: Image, history: Any, source: Image, case_id: str | None,
                            min_probability: dict[int, float] | None = None) -> torch.Tensor:
    """The argmax over classes of ``probs`` taken back to ``source``'s grid, inverted
    :data:`INVERT_CLASS_CHUNK` classes at a time with a running maximum.

    Inverting probabilities pads with background and renormalises each voxel over all
    classes (``fill_missing_background``), which couples the classes; the chunks are
    inverted as plain linear maps (zero padding) instead, the sum of all classes is kept,
    and the mass missing outside the field of view goes to the background at the end,
    as ``fill_missing_background`` does. Dividing every class by the same sum does not
    change the argmax, so it is left out; ``min_probability`` (class -> minimum) compares
    against the normalised probability, the running maximum over that sum.
    """
    k = probs.num_channels
    best = labels = total = background = None
    for k0 in range(0, k, INVERT_CLASS_CHUNK):
        part = Image(probs.data[k0 : k0 + INVERT_CLASS_CHUNK], probs.affine, kind="intensity")
        back = inverted(part, history, source, case_id).data.float()
        total = back.sum(0) if total is None else total.add_(back.sum(0))
        first = 0
        if k0 == 0:  # class 0 is decided at the end
            background, first = back[0].clone(), 1
            if back.shape[0] == 1:
                continue
        top, idx = _argmax_classes(back[first:])
        idx += k0 + first
        del back
        if best is None or labels is None:
            best, labels = top, idx.to(torch.uint8 if k <= 256 else torch.int16)
            continue
        better = top > best  # ties keep the lower class, as argmax does
        best[better] = top[better]
        labels[better] = idx[better].to(labels.dtype)
        del top, idx, better
    assert total is not None and background is not None
    if labels is None or best is None:  # one class only
        return torch.zeros(background.shape, dtype=torch.uint8)
    background.add_((1.0 - total).clamp_min_(0.0))
    labels[background >= best] = 0
    if min_probability:  # every voxel's classes sum to max(total, 1) once the background is filled
        apply_min_probability(labels, best.div_(total.clamp_min_(1.0)), min_probability)
    return labels


def _argmax_classes(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(max, argmax)`` over the class axis 0 of ``(K, *spatial)``, ties going to the
    lower class, as ``torch.argmax`` (both documented to return the first maximum).

    ``torch.max(data, 0)`` gives the same indices as ``torch.argmax(data, 0)`` and the
    values with them, and on CPU it is much faster over axis 0 of a volume (PyTorch 2.x's
    argmax reduces along a strided axis slowly): ``benchmarks/predict_folder.py`` went from
    42.7 to 27.0 s with it (docs/performance.md).
    """
    top, idx = torch.max(data, dim=0)
    return top, idx
