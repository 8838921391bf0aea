"""Dense deformations: affine + coarse elastic displacement, sampled in one ``grid_sample``.

Coordinates are normalised with ``align_corners=False`` (-1 and 1 are the outer voxel
edges, as in :func:`~medimg.transforms.functional.warp_affine`); ``theta`` maps output to
input coordinates in *data* axis order (I, J, K). A displacement field ``field`` of shape
``(nd, *control_points)`` holds, in the same units and axis order, how far each output
point's sample moves in the input; it is upsampled (linear, control points spanning the
grid's first to last voxel centre) to the full grid. The sampling position of output
voxel ``x`` is ``theta @ [x, 1] + field(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["deformation_grid", "inverse_deformation_grid", "warp_grid", "upsample_field"]


def _theta_xyz(theta: torch.Tensor, nd: int) -> torch.Tensor:
    """A data-order ``(nd, nd+1)`` map reordered to ``grid_sample``'s (x = last axis, ...)."""
    rev = list(range(nd - 1, -1, -1))
    m = theta[:, :nd][rev][:, rev]
    return torch.cat([m, theta[rev, nd:]], dim=1)


def upsample_field(field: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The coarse ``(nd, *cp)`` displacement at every voxel: ``(1, nd, *shape)``, channels
    reversed to ``grid_sample``'s x, y, z order."""
    nd = len(shape)
    mode = "trilinear" if nd == 3 else "bilinear"
    return F.interpolate(field.flip(0)[None], size=tuple(int(s) for s in shape), mode=mode, align_corners=True)


def _interp_matrix(n: int, cp: int) -> torch.Tensor:
    """``(n, cp)`` linear interpolation weights from ``cp`` points spanning the first to the
    last of ``n`` voxel centres (``align_corners=True``), float64."""
    pos = torch.arange(n, dtype=torch.float64) * ((cp - 1) / (n - 1) if n > 1 else 0.0)
    lo = pos.floor().clamp_(max=max(cp - 2, 0)).long()
    frac = pos - lo
    w = torch.zeros(n, cp, dtype=torch.float64)
    rows = torch.arange(n)
    w[rows, lo] = 1.0 - frac
    if cp > 1:
        w[rows, lo + 1] += frac
    return w


def deformation_grid(shape: Sequence[int], theta: torch.Tensor | None, field: torch.Tensor | None,
                     dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``grid_sample`` grid ``(1, *shape, nd)`` of ``theta`` then ``field`` (either may
    be None: identity / no displacement).

    The affine is linear in the voxel coordinates, so linear interpolation between the
    control points reproduces it exactly: it is added to the coarse field at the control
    points, and the sum is upsampled separably (one small matrix product per axis, the
    last written straight into ``grid_sample``'s layout). 10x faster than
    ``affine_grid`` plus an interpolated field on a 128^3 grid.
    """
    shape = [int(s) for s in shape]
    nd = len(shape)
    th = torch.eye(nd, nd + 1, dtype=torch.float64) if theta is None else torch.as_tensor(theta, dtype=torch.float64)
    coarse = torch.zeros(nd, *[2] * nd, dtype=torch.float64) if field is None \
        else torch.as_tensor(field, dtype=torch.float64).clone()
    cps = list(coarse.shape[1:])
    for a, (n, cp) in enumerate(zip(shape, cps)):
        idx = torch.arange(cp, dtype=torch.float64) * ((n - 1) / (cp - 1))
        u = (2.0 * idx + 1.0) / n - 1.0  # normalised coordinate of each control point
        view = [1] * nd
        view[a] = cp
        coarse += th[:, a].view(nd, *[1] * nd) * u.view(view)
    coarse += th[:, nd].view(nd, *[1] * nd)
    coarse = coarse.flip(0).to(dtype=dtype, device=device)  # data order -> x, y, z
    mats = [_interp_matrix(n, cp).to(dtype=dtype, device=device) for n, cp in zip(shape, cps)]
    t = coarse
    for a in range(nd - 1, 0, -1):  # last axes first: (c, cp0, .., n_a, ..)
        t = torch.movedim(torch.tensordot(t, mats[a], dims=([a + 1], [1])), -1, a + 1)
    # axis 0 straight into (n0, ..., c): out[i, ..., c] = sum_m W0[i, m] t[c, m, ...]
    rest = t.permute(1, *range(2, nd + 1), 0).reshape(cps[0], -1)
    return (mats[0] @ rest).view(1, *shape, nd)


def inverse_deformation_grid(shape: Sequence[int], theta: torch.Tensor | None, field: torch.Tensor | None,
                             iterations: int = 10, dtype: torch.dtype = torch.float32,
                             device: torch.device | str = "cpu") -> torch.Tensor:
    """The grid of the inverse map (approximately, where the field is folded nowhere):
    solves ``theta @ [x, 1] + field(x) = y`` for ``x`` at every voxel ``y`` by the fixed-point
    iteration ``x <- A^-1 (y - t - field(x))``. Exact for a pure affine."""
    nd = len(shape)
    th = torch.eye(nd, nd + 1, dtype=torch.float64) if theta is None else torch.as_tensor(theta, dtype=torch.float64)
    txyz = _theta_xyz(th, nd)
    a_inv = torch.linalg.inv(txyz[:, :nd])
    inv = torch.cat([a_inv, -(a_inv @ txyz[:, nd:])], dim=1)
    y = F.affine_grid(inv.to(dtype=dtype, device=device)[None], [1, 1, *shape], align_corners=False)
    if field is None:
        return y
    disp = upsample_field(torch.as_tensor(field, dtype=dtype, device=device), shape)
    a_inv_t = a_inv.T.to(dtype=dtype, device=device)
    x = y
    for _ in range(int(iterations)):
        d = F.grid_sample(disp, x, mode="bilinear", padding_mode="border", align_corners=False).movedim(1, -1)
        x = y - d @ a_inv_t
    return x


def warp_grid(data: torch.Tensor, grid: torch.Tensor, mode: str = "linear") -> torch.Tensor:
    """Sample ``data`` ``(C, *spatial)`` at ``grid`` ``(1, *shape, nd)``; 0 outside.

    ``mode``: ``"linear"`` (float out) or ``"nearest"`` (labels; the input dtype is kept).
    """
    x = data[None] if data.is_floating_point() else data[None].to(torch.float32)
    if grid.dtype != x.dtype:
        grid = grid.to(x.dtype)
    gmode = "bilinear" if mode == "linear" else "nearest"
    out = F.grid_sample(x, grid, mode=gmode, padding_mode="zeros", align_corners=False)[0]
    if mode == "nearest" and out.dtype != data.dtype:
        out = out.round_().to(data.dtype)
    return out
