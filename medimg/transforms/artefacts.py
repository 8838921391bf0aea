"""Random MR artefacts on intensity images: bias field, motion, ghosting.

Each is one operation with probability ``prob`` (see
:class:`~medimg.transforms.augment_intensity.IntensityAugment`): ``make_params`` draws
from the ``torch.Generator``, ``apply`` replays the recorded params exactly. Motion and
ghosting work in k-space (``torch.fft``); labels are never changed (the anatomy does not
move, the acquisition is corrupted). Kernels: :mod:`medimg.transforms.functional.artefacts`
and :func:`~medimg.transforms.functional.bias_field`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core.errors import TransformError
from ..core.image import Image
from ._common import check_range, param_error, uniform
from .augment import affine_theta
from .augment_intensity import IntensityAugment
from .base import TRANSFORMS
from .functional import artefacts as Fart
from .functional import augment as Fa

__all__ = ["RandomBiasField", "RandomMotion", "RandomGhosting"]


def _axis(name: str, axes: Sequence[int], image: Image, g: torch.Generator | None) -> int:
    """One of ``axes`` that exists in ``image``, drawn uniformly."""
    ok = [a for a in axes if 0 <= a < image.spatial_ndim]
    if not ok:
        raise TransformError(
            f"{name}: axes {list(axes)} do not exist in a {image.spatial_ndim}D image",
            hint=f"set axes to spatial axes 0..{image.spatial_ndim - 1} (channel excluded)",
        )
    return ok[int(torch.randint(0, len(ok), (1,), generator=g))]


def _check_axes(name: str, axes: Sequence[int]) -> list[int]:
    out = [int(a) for a in axes]
    if not out or any(a < 0 or a > 2 for a in out):
        raise param_error(name, "axes", f"is {list(axes)!r}", "write axes: a list of spatial axes among 0, 1, 2")
    return out


@TRANSFORMS.register("random_bias_field")
class RandomBiasField(IntensityAugment):
    """MR intensity inhomogeneity: ``x * exp(p(u))`` with ``p`` a polynomial of total degree
    ``order`` over normalised voxel coordinates, coefficients uniform in ``coefficients``.

    Args:
        coefficients: ``(min, max)`` of each polynomial coefficient.
        order: total degree of the polynomial (0..6).
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``order``, ``coefficients`` (in the order of
    :func:`~medimg.transforms.functional.bias_field_terms`).
    """

    name = "random_bias_field"

    def __init__(self, coefficients: Sequence[float] = (-0.5, 0.5), order: int = 3, prob: float = 0.2,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.coefficients = check_range(self.name, "coefficients", coefficients)
        if not 0 <= int(order) <= 6:
            raise param_error(self.name, "order", f"is {order!r}", "write order: a polynomial degree 0..6 (3 is typical)")
        self.order = int(order)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        n = len(Fa.bias_field_terms(self.order, image.spatial_ndim))
        lo, hi = self.coefficients
        coef = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
        return {"order": self.order, "coefficients": coef.tolist()}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        field = Fa.bias_field(x.shape[1:], params["coefficients"], params["order"], x.dtype, x.device)
        return x * field


@TRANSFORMS.register("random_motion")
class RandomMotion(IntensityAugment):
    """Patient motion during the acquisition: ``num_transforms`` rigid movements (rotation
    up to ``degrees``, translation up to ``translation`` mm per axis) at random times, the
    k-space lines along a phase-encoding axis drawn from ``axes`` taken from the object at
    the position of their time.

    Args:
        degrees: max rotation per axis of each movement, degrees.
        translation: max shift per axis of each movement, millimetres.
        num_transforms: number of movements during the acquisition.
        axes: candidate phase-encoding axes (one is drawn per sample).
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``axis``, ``times`` (sorted fractions of the acquisition), ``thetas`` (one
    normalised rigid map per movement), ``angles`` (degrees), ``shifts`` (mm).
    """

    name = "random_motion"

    def __init__(self, degrees: float = 10.0, translation: float = 10.0, num_transforms: int = 2,
                 axes: Sequence[int] = (0, 1, 2), prob: float = 0.1, keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        if float(degrees) < 0 or float(translation) < 0 or int(num_transforms) < 1:
            raise param_error(self.name, "degrees/translation/num_transforms",
                              f"are {degrees!r}/{translation!r}/{num_transforms!r}",
                              "write degrees and translation as numbers >= 0, num_transforms: 1 or more")
        self.degrees, self.translation, self.num_transforms = float(degrees), float(translation), int(num_transforms)
        self.axes = _check_axes(self.name, axes)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        g, nd = generator, image.spatial_ndim
        axis = _axis(self.name, self.axes, image, g)
        times = sorted(uniform(g, 0.0, 1.0) for _ in range(self.num_transforms))
        n_angles = 3 if nd == 3 else 1
        thetas, angles, shifts = [], [], []
        for _ in range(self.num_transforms):
            ang = [uniform(g, -self.degrees, self.degrees) for _ in range(n_angles)]
            mm = [uniform(g, -self.translation, self.translation) for _ in range(nd)]
            frac = [m / (n * s) for m, n, s in zip(mm, image.spatial_shape, image.spacing)]
            thetas.append(affine_theta(image.spatial_shape, image.spacing, ang, 1.0, frac).tolist())
            angles.append(ang)
            shifts.append(mm)
        return {"axis": axis, "times": times, "thetas": thetas, "angles": angles, "shifts": shifts}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fart.motion(x, params["thetas"], params["times"], params["axis"])


@TRANSFORMS.register("random_ghosting")
class RandomGhosting(IntensityAugment):
    """Ghosting along a phase-encoding axis drawn from ``axes``: every ``num_ghosts``-th
    k-space plane scaled by ``1 - intensity`` (``num_ghosts`` an integer uniform in
    ``num_ghosts``, ``intensity`` uniform in ``intensity``), the central ``restore``
    fraction kept.

    Args:
        num_ghosts: ``(min, max)`` spacing of the corrupted k-space planes (integers >= 1).
        intensity: ``(min, max)`` strength of the corruption, in [0, 1].
        axes: candidate phase-encoding axes (one is drawn per sample).
        restore: fraction of central k-space planes left intact, in [0, 1).
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``axis``, ``num_ghosts``, ``intensity``, ``restore``.
    """

    name = "random_ghosting"

    def __init__(self, num_ghosts: Sequence[int] = (4, 10), intensity: Sequence[float] = (0.5, 1.0),
                 axes: Sequence[int] = (0, 1, 2), restore: float = 0.02, prob: float = 0.1,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.num_ghosts = [int(v) for v in check_range(self.name, "num_ghosts", num_ghosts, low=1.0)]
        self.intensity = check_range(self.name, "intensity", intensity, low=0.0, high=1.0)
        if not 0.0 <= float(restore) < 1.0:
            raise param_error(self.name, "restore", f"is {restore!r}",
                              "write restore: the fraction in [0, 1) of central k-space kept (0.02 is typical)")
        self.restore = float(restore)
        self.axes = _check_axes(self.name, axes)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        axis = _axis(self.name, self.axes, image, generator)
        lo, hi = self.num_ghosts
        n = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        return {"axis": axis, "num_ghosts": n, "intensity": uniform(generator, *self.intensity),
                "restore": self.restore}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fart.ghosting(x, params["num_ghosts"], params["axis"], params["intensity"], params["restore"])
