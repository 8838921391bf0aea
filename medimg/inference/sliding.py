"""Sliding-window inference over batched tiles with Gaussian blending.

Written here rather than taken from MONAI's ``sliding_window_inference`` for two reasons
measured in ``benchmarks/inference.py`` and PERFORMANCE.md: tiles are always batched
(MONAI's default ``sw_batch_size=1`` sends every tile alone through the network, and on
CPU PyTorch runs most 3x3x3 convolutions of a batch of one on its slow ``slow_conv3d``
fallback), and it works on plain tensors (no metadata tensor on the hot path).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["tile_starts", "gaussian_importance", "sliding_window"]


def tile_starts(size: int, roi: int, overlap: float) -> list[int]:
    """Start indices of the tiles along one axis, the last tile flush with the end.

    The number of tiles is ``ceil((size - roi) / (roi * (1 - overlap))) + 1`` (1 when the
    axis fits in one tile); starts are spread evenly so the overlap is as uniform as possible.
    """
    if size <= roi:
        return [0]
    step = max(1, int(round(roi * (1.0 - overlap))))
    n = math.ceil((size - roi) / step) + 1
    return [int(round(i * (size - roi) / (n - 1))) for i in range(n)]


def gaussian_importance(roi_size: Sequence[int], sigma_scale: float = 0.125, device=None) -> torch.Tensor:
    """Separable Gaussian weight map over one tile, peak 1 at the centre.

    ``sigma = sigma_scale * roi`` per axis (1/8 as nnU-Net and MONAI). Weights are
    clamped away from 0 so voxels covered only by tile borders still get a prediction.
    """
    w: torch.Tensor | None = None
    for d, n in enumerate(roi_size):
        x = torch.arange(n, dtype=torch.float32, device=device) - (n - 1) / 2.0
        g = torch.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2)
        shape = [1] * len(roi_size)
        shape[d] = n
        g = g.view(shape)
        w = g if w is None else w * g
    assert w is not None
    w = w / w.max()
    return w.clamp_min(1e-3)


def sliding_window(
    inputs: torch.Tensor,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    roi_size: Sequence[int],
    *,
    overlap: float = 0.25,
    sw_batch_size: int = 4,
    blend: str = "gaussian",
    out_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Run ``predictor`` over tiles of ``inputs`` and blend the outputs.

    Args:
        inputs: ``(C, *spatial)`` tensor (one case, 2D or 3D), on the predictor's device.
        predictor: maps a batch ``(B, C, *roi_size)`` to ``(B, K, *roi_size)``.
        roi_size: tile size in voxels per spatial axis. Axes shorter than the tile are
            zero-padded (symmetrically) and cropped back afterwards.
        overlap: fraction of a tile shared with its neighbour along each axis, in [0, 1).
        sw_batch_size: tiles per forward pass (>= 2 on CPU, see module doc).
        blend: ``"gaussian"`` (centre voxels weigh more) or ``"constant"`` (plain mean).
        out_dtype: dtype of the accumulated output.

    Returns:
        ``(K, *spatial)`` blended outputs on the input's grid and device.
    """
    nd = inputs.ndim - 1
    roi = [int(r) for r in roi_size]
    if len(roi) != nd:
        raise ValueError(f"roi_size {tuple(roi)} has {len(roi)} axes; the input has {nd} spatial axes")
    spatial = list(inputs.shape[1:])
    pad_total = [max(r - s, 0) for r, s in zip(roi, spatial)]
    if any(pad_total):
        pad: list[int] = []
        for p in reversed(pad_total):  # F.pad takes the last axis first
            pad += [p // 2, p - p // 2]
        x = F.pad(inputs, pad)
    else:
        x = inputs
    padded = list(x.shape[1:])
    starts = [tile_starts(padded[d], roi[d], overlap) for d in range(nd)]
    corners = list(itertools.product(*starts))
    if blend == "gaussian":
        weight = gaussian_importance(roi, device=x.device).to(out_dtype)
    elif blend == "constant":
        weight = torch.ones(roi, dtype=out_dtype, device=x.device)
    else:
        raise ValueError(f"blend must be 'gaussian' or 'constant', got {blend!r}")

    out: torch.Tensor | None = None
    norm = torch.zeros(padded, dtype=out_dtype, device=x.device)
    bs = max(1, int(sw_batch_size))
    for b0 in range(0, len(corners), bs):
        chunk = corners[b0 : b0 + bs]
        slices = [tuple(slice(c, c + r) for c, r in zip(corner, roi)) for corner in chunk]
        batch = torch.stack([x[(slice(None), *s)] for s in slices])
        pred = predictor(batch)
        if out is None:
            out = torch.zeros((pred.shape[1], *padded), dtype=out_dtype, device=x.device)
        pred = pred.to(out_dtype)
        for i, s in enumerate(slices):
            out[(slice(None), *s)] += pred[i] * weight
            norm[s] += weight
    assert out is not None
    out /= norm
    if any(pad_total):
        crop = tuple(slice(p // 2, p // 2 + s) for p, s in zip(pad_total, spatial))
        out = out[(slice(None), *crop)]
    return out
