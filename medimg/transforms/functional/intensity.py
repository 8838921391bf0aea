"""Pure tensor kernels for intensity transforms on channel-first data ``(C, *spatial)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = [
    "channel_stats",
    "zscore",
    "scale_range",
    "adjust_gamma",
    "map_values",
]


def _float(data: torch.Tensor) -> torch.Tensor:
    return data if data.is_floating_point() else data.to(torch.float32)


def channel_stats(data: torch.Tensor, nonzero: bool = False) -> list[tuple[float, float]]:
    """``(mean, std)`` of each channel, over all voxels or only the nonzero ones.

    A channel without nonzero voxels gets ``(0.0, 1.0)``.
    """
    out: list[tuple[float, float]] = []
    for c in range(data.shape[0]):
        x = _float(data[c])
        # zeros add nothing to the sums, so nonzero stats need only the nonzero count
        n = int(torch.count_nonzero(x)) if nonzero else x.numel()
        if n == 0:
            out.append((0.0, 1.0))
            continue
        # two passes in float32 (torch sums pairwise: ~1e-7 relative here); a float64
        # upcast of the volume would cost 30x more time for no visible gain
        mean = float(x.sum()) / n
        d = x - mean
        if nonzero:
            d = torch.where(x != 0, d, torch.zeros((), dtype=d.dtype, device=d.device))
        std = float(torch.linalg.vector_norm(d)) / n**0.5
        out.append((mean, std))
    return out


def zscore(
    data: torch.Tensor, stats: Sequence[Sequence[float]], nonzero: bool = False, eps: float = 1e-8
) -> torch.Tensor:
    """``(x - mean) / std`` per channel with the given ``stats``; float32 out.

    With ``nonzero`` voxels equal to 0 (background) stay 0. A std below ``eps`` is
    treated as 1 (a constant channel is only shifted).
    """
    x = _float(data)
    out = torch.empty_like(x)
    for c, (mean, std) in enumerate(stats):
        std = std if std > eps else 1.0
        out[c] = (x[c] - mean) / std
        if nonzero:
            out[c] = torch.where(x[c] != 0, out[c], torch.zeros((), dtype=x.dtype, device=x.device))
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
