"""MR artefact kernels in k-space (``torch.fft``), channel-first ``(C, *spatial)``.

Both kernels return the real part of the inverse transform as float; inputs are never
modified. The phase-encoding ``axis`` is a spatial axis (0-based, channel excluded).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .deform import deformation_grid, warp_grid

__all__ = ["motion", "ghosting"]


def _float(data: torch.Tensor) -> torch.Tensor:
    return data if data.is_floating_point() else data.to(torch.float32)


def motion(data: torch.Tensor, thetas: Sequence[Sequence[Sequence[float]]], times: Sequence[float],
           axis: int) -> torch.Tensor:
    """Patient motion during the acquisition: k-space filled in segments along ``axis``.

    The object is still until ``times[0]`` (a fraction of the acquisition, in (0, 1)),
    then sits at position ``thetas[0]`` (a ``(nd, nd+1)`` normalised affine as in
    :func:`~medimg.transforms.functional.warp_affine`) until ``times[1]``, and so on; the
    k-space lines (after ``fftshift``, low to high along ``axis``) acquired in each
    interval come from the object at that position.
    """
    x = _float(data)
    dims = tuple(range(1, x.ndim))
    n = x.shape[axis + 1]
    edges = [0, *[min(n, max(0, round(float(t) * n))) for t in times], n]
    k = torch.fft.fftshift(torch.fft.fftn(x, dim=dims), dim=axis + 1)
    for j, theta in enumerate(thetas):
        lo, hi = edges[j + 1], edges[j + 2]
        if hi <= lo:
            continue
        grid = deformation_grid(x.shape[1:], torch.as_tensor(theta, dtype=torch.float64), None,
                                dtype=x.dtype, device=x.device)
        moved = torch.fft.fftshift(torch.fft.fftn(warp_grid(x, grid), dim=dims), dim=axis + 1)
        sl = [slice(None)] * x.ndim
        sl[axis + 1] = slice(lo, hi)
        k[tuple(sl)] = moved[tuple(sl)]
    out = torch.fft.ifftn(torch.fft.ifftshift(k, dim=axis + 1), dim=dims).real
    return out.to(x.dtype).contiguous()


def ghosting(data: torch.Tensor, num_ghosts: int, axis: int, intensity: float, restore: float = 0.02) -> torch.Tensor:
    """Ghosts along ``axis``: every ``num_ghosts``-th k-space plane scaled by ``1 - intensity``
    (an acquisition inconsistent every ``num_ghosts`` lines), then the central
    ``restore`` fraction of planes put back (the image's contrast stays)."""
    x = _float(data)
    dims = tuple(range(1, x.ndim))
    n = x.shape[axis + 1]
    k = torch.fft.fftshift(torch.fft.fftn(x, dim=dims), dim=axis + 1)
    scale = torch.ones(n, dtype=x.dtype, device=x.device)
    scale[:: max(1, int(num_ghosts))] = 1.0 - float(intensity)
    keep = int(round(float(restore) * n / 2))
    c = n // 2
    scale[max(0, c - keep): c + keep + 1] = 1.0
    shape = [1] * x.ndim
    shape[axis + 1] = n
    k = k * scale.view(shape)
    out = torch.fft.ifftn(torch.fft.ifftshift(k, dim=axis + 1), dim=dims).real
    return out.to(x.dtype).contiguous()
