"""Pure tensor kernels for intensity transforms on channel-first data ``(C, *spatial)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = [
    "corner_background",
    "channel_stats",
    "zscore",
    "scale_range",
    "adjust_gamma",
    "map_values",
]


def _float(data: torch.Tensor) -> torch.Tensor:
    return data if data.is_floating_point() else data.to(torch.float32)


def corner_background(data: torch.Tensor) -> list[float | None]:
    """Per channel, the value every corner voxel shares (a constant background, such as
    the minimum of an MR image z-scored before it was skull-stripped), or None where the
    corners differ."""
    nd = data.ndim - 1
    idx = torch.tensor([0, -1], device=data.device)
    corners = data
    for axis in range(1, nd + 1):
        corners = corners.index_select(axis, idx % data.shape[axis])
    corners = corners.reshape(data.shape[0], -1)
    return [float(c[0]) if bool((c == c[0]).all()) else None for c in corners]


def _backgrounds(n: int, nonzero: bool, background: Sequence[float | None] | None) -> list[float | None]:
    if background is not None:
        if len(background) != n:
            raise ValueError(f"normalize_intensity: {len(background)} recorded background values for an image "
                             f"of {n} channels; replay the record on the image it was made on")
        return list(background)
    return [0.0 if nonzero else None] * n


def channel_stats(data: torch.Tensor, nonzero: bool = False,
                  background: Sequence[float | None] | None = None) -> list[tuple[float, float]]:
    """``(mean, std)`` of each channel, over all voxels, only the nonzero ones, or (with
    ``background``, one value or None per channel) the voxels differing from the channel's
    background value (None: all voxels).

    A channel without such voxels gets ``(0.0, 1.0)``.
    """
    out: list[tuple[float, float]] = []
    for c, bg in enumerate(_backgrounds(data.shape[0], nonzero, background)):
        x = _float(data[c])
        if bg is not None and bg != 0.0:
            x = x - bg  # the background becomes 0; the std is unchanged, the mean shifts by bg
        # zeros add nothing to the sums, so masked stats need only the nonzero count
        n = int(torch.count_nonzero(x)) if bg is not None else x.numel()
        if n == 0:
            out.append((0.0, 1.0))
            continue
        # two passes in float32 (torch sums pairwise: ~1e-7 relative here); a float64
        # upcast of the volume would cost 30x more time for no visible gain
        mean = float(x.sum()) / n
        d = x - mean
        if bg is not None:
            d = torch.where(x != 0, d, torch.zeros((), dtype=d.dtype, device=d.device))
        std = float(torch.linalg.vector_norm(d)) / n**0.5
        out.append((mean + (bg or 0.0), std))
    return out


def zscore(
    data: torch.Tensor, stats: Sequence[Sequence[float]], nonzero: bool = False, eps: float = 1e-8,
    background: Sequence[float | None] | None = None,
) -> torch.Tensor:
    """``(x - mean) / std`` per channel with the given ``stats``; float32 out.

    With ``nonzero`` voxels equal to 0 (background) stay 0; with ``background`` (one value
    or None per channel) voxels equal to their channel's value become 0. A std below
    ``eps`` is treated as 1 (a constant channel is only shifted).
    """
    x = _float(data)
    out = torch.empty_like(x)
    for c, ((mean, std), bg) in enumerate(zip(stats, _backgrounds(x.shape[0], nonzero, background))):
        std = std if std > eps else 1.0
        out[c] = (x[c] - mean) / std
        if bg is not None:
            out[c] = torch.where(x[c] != bg, out[c], torch.zeros((), dtype=x.dtype, device=x.device))
    return out


def scale_range(
    data: torch.Tensor, a_min: float, a_max: float, b_min: float, b_max: float, clip: bool = False
) -> torch.Tensor:
    """Map ``[a_min, a_max]`` linearly onto ``[b_min, b_max]`` (a CT window); clip if asked."""
    if a_max == a_min:
        raise ValueError(f"a_min and a_max must differ, both are {a_min}")
    x = _float(data)
    scale = (b_max - b_min) / (a_max - a_min)
    out = torch.mul(x, scale).add_(b_min - a_min * scale)  # one new tensor, then in place
    if clip:
        lo, hi = min(b_min, b_max), max(b_min, b_max)
        out.clamp_(lo, hi)
    return out


def adjust_gamma(data: torch.Tensor, gamma: float, eps: float = 1e-7) -> torch.Tensor:
    """Gamma on each channel's own ``[min, max]`` range, then back to that range.

    ``x -> min + (max - min) * ((x - min) / (max - min)) ** gamma``; works for z-scored
    data with negative values. A constant channel is returned unchanged.
    """
    x = _float(data)
    out = torch.empty_like(x)
    for c in range(x.shape[0]):
        lo, hi = x[c].amin(), x[c].amax()
        rng = hi - lo
        if float(rng) < eps:
            out[c] = x[c]
            continue
        out[c] = lo + rng * ((x[c] - lo) / rng).clamp_(0, 1).pow(gamma)
    return out


def map_values(data: torch.Tensor, mapping: Mapping[int, int] | Sequence[Sequence[int]]) -> torch.Tensor:
    """Replace integer values by ``mapping`` (dict or ``[[old, new], ...]``); unlisted -> 0.

    The output keeps the input's dtype.
    """
    pairs = list(mapping.items()) if isinstance(mapping, Mapping) else [tuple(p) for p in mapping]
    out = torch.zeros_like(data)
    for old, new in pairs:
        if new != 0:
            out.masked_fill_(data == int(old), int(new))
    return out
