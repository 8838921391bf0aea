"""Deep supervision: one loss over a network's outputs at several resolutions, nnU-Net style.

A deep-supervised network (``model: {name: dynunet, deep_supervision: true}``) returns, in
training mode, one tensor ``(B, N, K, *spatial)``: ``N`` sets of logits, the full-resolution
ones first, then those of ever coarser decoder levels (MONAI's DynUNet upsamples them to full
resolution). A list or tuple of ``(B, K, *spatial_i)`` tensors, full resolution first, is
accepted as well; the label is then resized to each output's grid with nearest-neighbour
sampling (a class index is never averaged).

The loss is ``sum_i w_i * loss(output_i, label_i)`` with nnU-Net's weights (Isensee et al.
2021): ``1, 1/2, 1/4, ...`` from full resolution down, the coarsest output weighted 0, the
weights normalised to sum to 1 (:func:`deep_supervision_weights`). Outputs of weight 0 are not
scored. Every registered segmentation loss does this by itself when handed such an output
(:func:`deep_supervised`), so ``loss: {name: dice_ce}`` needs no change; ``loss: {name:
deep_supervision, loss: {name: ...}, weights: [...]}`` sets other weights or wraps a plugin
loss. In evaluation mode the network returns ordinary logits and the loss is the plain one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

__all__ = ["deep_supervision_weights", "deep_supervised", "split_outputs"]

Outputs = torch.Tensor | Sequence[torch.Tensor]


def deep_supervision_weights(n: int) -> list[float]:
    """nnU-Net's weights for ``n`` outputs, full resolution first: ``1, 1/2, 1/4, ...``,
    the last (coarsest) set to 0 when there are several, normalised to sum to 1.

    >>> deep_supervision_weights(3)
    [0.6666666666666666, 0.3333333333333333, 0.0]
    """
    if n < 1:
        raise ValueError(f"deep supervision needs at least one output, got {n}")
    raw = [0.5**i for i in range(n)]
    if n > 1:
        raw[-1] = 0.0
    total = sum(raw)
    return [w / total for w in raw]


def split_outputs(logits: Outputs, label: torch.Tensor) -> list[torch.Tensor] | None:
    """The outputs of a deep-supervised network, full resolution first; None for one output.

    Args:
        logits: ``(B, K, *spatial)`` (one output), ``(B, N, K, *spatial)`` stacked outputs
            (one more axis than the label ``(B, 1, *spatial)``), or a list/tuple of
            ``(B, K, *spatial_i)``.
        label: ``(B, 1, *spatial)`` class indices.
    """
    if isinstance(logits, (list, tuple)):
        return list(logits)
    if logits.ndim == label.ndim + 2:  # a label without its channel axis
        label = label.unsqueeze(1)
    if logits.ndim == label.ndim + 1 and label.ndim >= 3 and label.shape[1] == 1:
        return list(logits.unbind(dim=1))
    return None


def _label_for(label: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``label`` (B, 1, *spatial) on a grid of ``size`` voxels (nearest neighbour)."""
    if tuple(label.shape[2:]) == tuple(size):
        return label
    return F.interpolate(label.float(), size=tuple(size), mode="nearest-exact").to(label.dtype)


def deep_supervised(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    logits: Outputs,
    label: torch.Tensor,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """``loss(logits, label)`` for one output; the weighted sum over the outputs of a
    deep-supervised network otherwise (see the module docstring).

    Args:
        loss: the single-output loss, ``(B, K, *spatial), (B, 1, *spatial) -> scalar``.
        logits: one output or several (:func:`split_outputs`).
        label: ``(B, 1, *spatial)`` class indices at full resolution.
        weights: one weight per output, full resolution first (default:
            :func:`deep_supervision_weights`); used as given, not normalised.

    Raises:
        ValueError: ``weights`` does not have one value per output.
    """
    outputs = split_outputs(logits, label)
    if outputs is None:
        return loss(logits, label)  # type: ignore[arg-type]
    if outputs[0].ndim == label.ndim + 1:
        label = label.unsqueeze(1)
    w = list(weights) if weights is not None else deep_supervision_weights(len(outputs))
    if len(w) != len(outputs):
        raise ValueError(
            f"loss: {len(w)} deep-supervision weights for {len(outputs)} network outputs; "
            "give one weight per output (full resolution first) in loss.weights"
        )
    terms = [wi * loss(out, _label_for(label, out.shape[2:])) for wi, out in zip(w, outputs) if wi != 0]
    return torch.stack(terms).sum()
