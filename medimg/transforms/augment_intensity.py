"""Random intensity augmentations, one operation each (nnU-Net's default set).

``random_noise``, ``random_blur``, ``random_brightness``, ``random_contrast``,
``random_gamma`` and ``random_low_resolution`` change intensity images only (labels and
probabilities are left alone). Each applies with probability ``prob``; ``make_params``
draws everything from the ``torch.Generator`` (noise fields as a recorded seed) and
``apply`` is the deterministic twin: the same operation with the recorded params, so a
history replays exactly. Kernels: :mod:`medimg.transforms.functional.augment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core.image import Image
from ..core.sample import Sample, TransformRecord
from ._common import check_prob, check_range, generator_seed, intensity_keys, uniform
from .base import TRANSFORMS, Transform
from .functional import augment as Fa

__all__ = [
    "IntensityAugment",
    "RandomNoise",
    "RandomBlur",
    "RandomBrightness",
    "RandomContrast",
    "RandomGamma",
    "RandomLowResolution",
]


class IntensityAugment(Transform):
    """Base of the random intensity operations: the ``prob`` draw, the intensity keys and
    the record; subclasses define :meth:`draw` (random values, plain data) and
    :meth:`kernel` (deterministic, from the params alone).

    Params: ``keys`` (the images changed), ``applied`` (whether the draw under ``prob``
    hit), and, when applied, what :meth:`draw` returned.
    """

    random = True

    def __init__(self, prob: float, keys: Sequence[str] | None = None) -> None:
        super().__init__(keys)
        self.prob = check_prob(self.name, prob)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        """The operation's random values for ``image`` (the first selected one)."""
        raise NotImplementedError

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        """The operation on float data ``(C, *spatial)`` of the ``index``-th key."""
        raise NotImplementedError

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        keys = intensity_keys(self, sample)
        applied = float(torch.rand(1, generator=generator)) < self.prob and bool(keys)
        params: dict[str, Any] = {"keys": keys, "applied": applied}
        if applied:
            params.update(self.draw(sample[keys[0]], generator))
        return params

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        images = {}
        if params["applied"]:
            for i, k in enumerate(params["keys"]):
                im = sample[k]
                x = im.data if im.data.is_floating_point() else im.data.to(torch.float32)
                images[k] = im.new(self.kernel(x, params, i))
        return sample.replace(images, TransformRecord(self.name, params, False))


@TRANSFORMS.register("random_noise")
class RandomNoise(IntensityAugment):
    """Additive Gaussian noise with a standard deviation uniform in ``std`` (image units).

    Args:
        std: ``(min, max)`` standard deviation, in the image's units (>= 0).
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``std``, ``seed`` (the noise field is regenerated from it; image ``i`` of
    ``keys`` uses ``seed + i``).
    """

    name = "random_noise"

    def __init__(self, std: Sequence[float] = (0.0, 0.1), prob: float = 0.1, keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.std = check_range(self.name, "std", std, low=0.0)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        return {"std": uniform(generator, *self.std), "seed": generator_seed(generator)}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fa.gaussian_noise(x, params["std"], int(params["seed"]) + index)


@TRANSFORMS.register("random_blur")
class RandomBlur(IntensityAugment):
    """Gaussian smoothing with ``sigma`` voxels uniform in ``sigma`` (one draw for all axes,
    or one per axis with ``per_axis``).

    Args:
        sigma: ``(min, max)`` standard deviation of the Gaussian, voxels (>= 0).
        per_axis: draw a sigma for each axis instead of one for all.
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``sigma`` (one value per spatial axis, voxels).
    """

    name = "random_blur"

    def __init__(self, sigma: Sequence[float] = (0.5, 1.0), per_axis: bool = False, prob: float = 0.2,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.sigma = check_range(self.name, "sigma", sigma, low=0.0)
        self.per_axis = bool(per_axis)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        nd = image.spatial_ndim
        if self.per_axis:
            return {"sigma": [uniform(generator, *self.sigma) for _ in range(nd)]}
        return {"sigma": [uniform(generator, *self.sigma)] * nd}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fa.gaussian_blur(x, params["sigma"])


@TRANSFORMS.register("random_brightness")
class RandomBrightness(IntensityAugment):
    """Multiplicative brightness: ``x * factor``, ``factor`` uniform in ``factor``.

    Args:
        factor: ``(min, max)`` multiplier.
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``factor``.
    """

    name = "random_brightness"

    def __init__(self, factor: Sequence[float] = (0.75, 1.25), prob: float = 0.15,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.factor = check_range(self.name, "factor", factor)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        return {"factor": uniform(generator, *self.factor)}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return x * params["factor"]


@TRANSFORMS.register("random_contrast")
class RandomContrast(IntensityAugment):
    """Contrast about each channel's mean: ``(x - mean) * factor + mean``, ``factor``
    uniform in ``factor``; with ``preserve_range`` clipped to the channel's original range.

    Args:
        factor: ``(min, max)`` contrast factor (>= 0; < 1 flattens, > 1 stretches).
        preserve_range: clip to each channel's original ``[min, max]``.
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``factor``, ``preserve_range``.
    """

    name = "random_contrast"

    def __init__(self, factor: Sequence[float] = (0.75, 1.25), preserve_range: bool = True, prob: float = 0.15,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.factor = check_range(self.name, "factor", factor, low=0.0)
        self.preserve_range = bool(preserve_range)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        return {"factor": uniform(generator, *self.factor), "preserve_range": self.preserve_range}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fa.adjust_contrast(x, params["factor"], params["preserve_range"])


@TRANSFORMS.register("random_gamma")
class RandomGamma(IntensityAugment):
    """Gamma on each channel's own ``[min, max]``, exponent uniform in ``gamma``.

    Args:
        gamma: ``(min, max)`` exponent, min > 0.
        invert: apply to the negated image (nnU-Net's second, inverted gamma entry).
        retain_stats: keep each channel's mean and std.
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``gamma``, ``invert``, ``retain_stats``.
    """

    name = "random_gamma"

    def __init__(self, gamma: Sequence[float] = (0.7, 1.5), invert: bool = False, retain_stats: bool = True,
                 prob: float = 0.3, keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.gamma = check_range(self.name, "gamma", gamma, low=0.0, strict_low=True)
        self.invert, self.retain_stats = bool(invert), bool(retain_stats)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        return {"gamma": uniform(generator, *self.gamma), "invert": self.invert, "retain_stats": self.retain_stats}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fa.gamma_transform(x, params["gamma"], params["invert"], params["retain_stats"])


@TRANSFORMS.register("random_low_resolution")
class RandomLowResolution(IntensityAugment):
    """Simulated low resolution: down to ``zoom`` times the voxel count (nearest), back up
    to the grid (linear); ``zoom`` uniform in ``zoom`` (one draw, or one per axis).

    Args:
        zoom: ``(min, max)`` fraction of the voxel count kept per axis, in (0, 1].
        per_axis: draw a zoom for each axis instead of one for all.
        prob: probability of applying it.
        keys: intensity images (every intensity image by default).

    Params: ``zoom`` (per axis), ``low_shape`` (the intermediate grid).
    """

    name = "random_low_resolution"

    def __init__(self, zoom: Sequence[float] = (0.5, 1.0), per_axis: bool = False, prob: float = 0.25,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__(prob, keys)
        self.zoom = check_range(self.name, "zoom", zoom, low=0.0, high=1.0, strict_low=True)
        self.per_axis = bool(per_axis)

    def draw(self, image: Image, generator: torch.Generator | None) -> dict[str, Any]:
        nd = image.spatial_ndim
        zoom = [uniform(generator, *self.zoom) for _ in range(nd)] if self.per_axis \
            else [uniform(generator, *self.zoom)] * nd
        low = [max(1, round(n * z)) for n, z in zip(image.spatial_shape, zoom)]
        return {"zoom": zoom, "low_shape": low}

    def kernel(self, x: torch.Tensor, params: dict[str, Any], index: int) -> torch.Tensor:
        return Fa.low_resolution(x, params["low_shape"])
