"""Pure tensor kernels of the intensity augmentations, channel-first ``(C, *spatial)``.

Every kernel is deterministic given its arguments (noise fields come from a seed), works
on CPU and CUDA, and returns a new float tensor; inputs are never modified. Used by
:mod:`medimg.transforms.augment_intensity` and :mod:`medimg.transforms.artefacts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .intensity import adjust_gamma
from .spatial import resample_to_shape

__all__ = [
    "gaussian_noise",
    "gaussian_blur",
    "adjust_contrast",
    "gamma_transform",
    "low_resolution",
    "bias_field",
    "bias_field_terms",
]


def _float(data: torch.Tensor) -> torch.Tensor:
    return data if data.is_floating_point() else data.to(torch.float32)


def gaussian_noise(data: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """``data + std * N(0, 1)``, the noise field drawn from a generator seeded with ``seed``."""
    x = _float(data)
    g = torch.Generator(device=x.device).manual_seed(int(seed))
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
    return noise.mul_(float(std)).add_(x)


def _kernel1d(sigma: float, dtype: torch.dtype, device: torch.device, truncate: float = 3.0) -> torch.Tensor:
    radius = max(1, int(math.ceil(truncate * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_blur(data: torch.Tensor, sigma: Sequence[float], truncate: float = 3.0) -> torch.Tensor:
    """Separable Gaussian smoothing with ``sigma`` voxels per spatial axis (0: that axis is
    left alone), edges replicated, kernels cut at ``truncate`` sigmas.

    Each axis is a weighted sum of shifted views of the edge-padded data (one
    ``index_select`` and one multiply-add per tap): 5-10x faster on the CPU than
    ``conv2d``/``conv3d`` with a ``(k, 1, 1)`` kernel, which the thin kernels do not suit.
    """
    x = _float(data)
    nd = x.ndim - 1
    if len(sigma) != nd:
        raise ValueError(f"sigma has {len(sigma)} values, data has {nd} spatial axes")
    out = x
    for ax, s in enumerate(sigma):
        if float(s) <= 0:
            continue
        w = _kernel1d(float(s), torch.float64, torch.device("cpu"), truncate).tolist()
        r = (len(w) - 1) // 2
        d, n = ax + 1, x.shape[ax + 1]
        idx = torch.arange(-r, n + r, device=x.device).clamp_(0, n - 1)
        padded = out.index_select(d, idx)
        acc = padded.narrow(d, 0, n) * w[0]
        for i in range(1, len(w)):
            acc.add_(padded.narrow(d, i, n), alpha=w[i])
        out = acc
    return out if out is not data else out.clone()


def _stats_dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(1, x.ndim))


def adjust_contrast(data: torch.Tensor, factor: float, preserve_range: bool = True) -> torch.Tensor:
    """``(x - mean) * factor + mean`` per channel; with ``preserve_range`` clipped to each
    channel's original ``[min, max]`` (nnU-Net's contrast augmentation)."""
    x = _float(data)
    dims = _stats_dims(x)
    mean = x.mean(dim=dims, keepdim=True)
    out = (x - mean).mul_(float(factor)).add_(mean)
    if preserve_range:
        out = torch.maximum(torch.minimum(out, x.amax(dim=dims, keepdim=True)), x.amin(dim=dims, keepdim=True))
    return out


def gamma_transform(data: torch.Tensor, gamma: float, invert: bool = False, retain_stats: bool = True) -> torch.Tensor:
    """Gamma on each channel's own ``[min, max]`` (:func:`adjust_gamma`).

    Args:
        invert: apply it to ``-x`` and negate back (brightens dark parts instead).
        retain_stats: rescale each channel to its original mean and std afterwards.
    """
    x = _float(data)
    y = -adjust_gamma(-x, gamma) if invert else adjust_gamma(x, gamma)
    if retain_stats:
        dims = _stats_dims(x)
        m0, s0 = x.mean(dim=dims, keepdim=True), x.std(dim=dims, keepdim=True)
        m1, s1 = y.mean(dim=dims, keepdim=True), y.std(dim=dims, keepdim=True)
        y = (y - m1).mul_(s0 / s1.clamp_min(1e-8)).add_(m0)
    return y


def low_resolution(data: torch.Tensor, low_shape: Sequence[int]) -> torch.Tensor:
    """Simulated low resolution: down to ``low_shape`` voxels (nearest), back up (linear)."""
    x = _float(data)
    shape = list(x.shape[1:])
    if [int(s) for s in low_shape] == shape:
        return x.clone()
    small = resample_to_shape(x, low_shape, "nearest")
    return resample_to_shape(small, shape, "linear")


def bias_field_terms(order: int, nd: int) -> list[tuple[int, ...]]:
    """The exponents of a polynomial of total degree <= ``order`` in ``nd`` variables, in a
    fixed order (one coefficient each in :func:`bias_field`)."""
    terms: list[tuple[int, ...]] = []

    def rec(prefix: tuple[int, ...], left: int) -> None:
        if len(prefix) == nd:
            terms.append(prefix)
            return
        for e in range(left + 1):
            rec((*prefix, e), left - e)

    rec((), int(order))
    return terms


def bias_field(shape: Sequence[int], coefficients: Sequence[float], order: int,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Smooth multiplicative field ``exp(sum_t c_t * prod_a u_a ** e_ta)`` on ``shape``.

    ``u_a`` are voxel-centre coordinates normalised to ``[-1, 1]`` along each axis; the terms
    ``e_t`` are :func:`bias_field_terms` (``order``, ``len(shape)``). Evaluated as one
    ``einsum`` of per-axis power tables (no loop over voxels). Returns ``(*shape)``.
    """
    nd = len(shape)
    terms = bias_field_terms(order, nd)
    if len(coefficients) != len(terms):
        raise ValueError(f"a degree-{order} field in {nd}D has {len(terms)} coefficients, got {len(coefficients)}")
    coef = torch.zeros([order + 1] * nd, dtype=torch.float64)
    for t, c in zip(terms, coefficients):
        coef[t] = float(c)
    powers = []
    for n in shape:
        u = (2.0 * torch.arange(n, dtype=torch.float64) + 1.0) / n - 1.0
        powers.append(torch.stack([u**e for e in range(order + 1)]).to(dtype))
    letters = "abc"[:nd]
    eq = "".join("ijk"[:nd]) + "," + ",".join(f"{'ijk'[a]}{letters[a]}" for a in range(nd)) + "->" + letters
    poly = torch.einsum(eq, coef.to(dtype), *powers)
    return poly.exp_().to(device)
