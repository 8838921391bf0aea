"""Random augmentation (training only): patch sampling, flips, affine warps, intensity.

All randomness comes from the ``torch.Generator`` given to ``make_params``; ``apply`` is
deterministic, so a recorded history replays exactly. Flips and affine warps move the
content within a fixed grid (the affine is unchanged); crops change the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.errors import TransformError
from ..core.image import Image
from ..core.sample import Sample, TransformRecord
from . import functional as Fn
from ._common import (
    check_shape,
    finish,
    generator_seed,
    int_list,
    intensity_keys,
    interp_mode,
    pad_value,
    reference,
    translated,
    uniform,
)
from .base import TRANSFORMS, Transform

__all__ = ["RandomCrop", "RandomFlip", "RandomAffine", "RandomIntensity", "affine_theta", "rotation_matrix"]


@TRANSFORMS.register("random_crop")
class RandomCrop(Transform):
    """Sample a patch of ``roi_size`` voxels, oversampling foreground (nnU-Net style).

    With probability ``pos_fraction`` the patch centre is a voxel drawn uniformly from
    ``label > 0`` (so the patch contains foreground); otherwise it is uniform over the
    grid. The patch is then shifted to lie inside the image. Images smaller than the roi
    are padded (0; background probability 1), centred.

    Args:
        roi_size: patch size in voxels, one per spatial axis.
        pos_fraction: probability of a foreground-centred patch, in [0, 1].
        label_key: label image that defines the foreground.
        keys: images to crop (all by default).

    Params: ``in_shape``, ``start`` (patch origin in input voxels, may be negative where
    padded), ``roi_size``, ``foreground`` (whether the centre was drawn from foreground).
    """

    name = "random_crop"
    spatial = True
    random = True

    def __init__(
        self,
        roi_size: Sequence[int],
        pos_fraction: float = 0.33,
        label_key: str = "label",
        keys: Sequence[str] | None = None,
    ) -> None:
        super().__init__(keys)
        self.roi_size = [int(r) for r in roi_size]
        if any(r < 1 for r in self.roi_size):
            raise TransformError(f"random_crop: roi_size {self.roi_size} must be positive voxel counts")
        if not 0.0 <= float(pos_fraction) <= 1.0:
            raise TransformError(f"random_crop: pos_fraction must be in [0, 1], got {pos_fraction}")
        self.pos_fraction = float(pos_fraction)
        self.label_key = label_key

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        shape = list(ref.spatial_shape)
        roi = int_list(self.roi_size, ref.spatial_ndim, self.name, "roi_size")
        use_fg = float(torch.rand(1, generator=generator)) < self.pos_fraction
        centre = None
        if use_fg:
            if self.label_key not in sample.images:
                raise TransformError(
                    f"random_crop: case '{sample.case_id}' has no label image '{self.label_key}' "
                    f"for foreground sampling (has: {', '.join(sample.images)})",
                    hint="set label_key, or pos_fraction: 0 for uniform patches",
                )
            lab = sample.images[self.label_key].data
            mask = lab[0] > 0 if lab.shape[0] == 1 else (lab > 0).any(0)
            fg = torch.nonzero(mask)  # (n, nd), keeps the data's memory layout (no flatten copy)
            if fg.shape[0] > 0:
                k = int(torch.randint(0, fg.shape[0], (1,), generator=generator))
                centre = [int(v) for v in fg[k].tolist()]
        if centre is None:
            centre = [int(torch.randint(0, n, (1,), generator=generator)) for n in shape]
        start = []
        for c, n, r in zip(centre, shape, roi):
            if n <= r:  # smaller than the roi: centred with padding
                start.append(-((r - n) // 2))
            else:
                start.append(min(max(c - r // 2, 0), n - r))
        return {"in_shape": shape, "start": start, "roi_size": roi, "foreground": centre is not None and use_fg}

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        check_shape(self.name, image, params["in_shape"], "apply")
        shape, start, roi = params["in_shape"], params["start"], params["roi_size"]
        lo = [max(s, 0) for s in start]
        hi = [min(s + r, n) for s, r, n in zip(start, roi, shape)]
        view = Fn.crop(image.data, lo, hi)
        data = Fn.pad(view, [a - s for a, s in zip(lo, start)], [s + r - b for s, r, b in zip(start, roi, hi)],
                      pad_value(image))
        if data is view:  # a view would keep the whole volume alive
            data = view.clone()
        return image.new(data, translated(image.affine, start))

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        shape, start, roi = params["in_shape"], params["start"], params["roi_size"]
        check_shape(cls.name, image, roi, "invert")
        lo = [max(s, 0) for s in start]
        hi = [min(s + r, n) for s, r, n in zip(start, roi, shape)]
        inner = Fn.crop(image.data, [a - s for a, s in zip(lo, start)], [b - s for b, s in zip(hi, start)])
        data = Fn.pad(inner, lo, [n - b for n, b in zip(shape, hi)], pad_value(image))
        if data is inner:
            data = inner.clone()
        return image.new(data, translated(image.affine, [-s for s in start]))


@TRANSFORMS.register("random_flip")
class RandomFlip(Transform):
    """Mirror the content along each of ``axes`` with probability ``prob`` (per axis).

    The affine is kept: the content moves within the grid (an augmentation, not a
    re-indexing). Inverse: the same flips.

    Params: ``axes``: the axes actually flipped.
    """

    name = "random_flip"
    spatial = True
    random = True

    def __init__(self, axes: Sequence[int] = (0, 1, 2), prob: float = 0.5, keys: Sequence[str] | None = None) -> None:
        super().__init__(keys)
        self.axes = [int(a) for a in axes]
        if not 0.0 <= float(prob) <= 1.0:
            raise TransformError(f"random_flip: prob must be in [0, 1], got {prob}")
        self.prob = float(prob)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        bad = [a for a in self.axes if not 0 <= a < ref.spatial_ndim]
        if bad:
            raise TransformError(
                f"random_flip: axes {bad} do not exist in the {ref.spatial_ndim}D image of case '{sample.case_id}'",
                hint=f"spatial axes are 0..{ref.spatial_ndim - 1} (channel axis excluded)",
            )
        draws = torch.rand(len(self.axes), generator=generator)
        return {"axes": [a for a, u in zip(self.axes, draws.tolist()) if u < self.prob]}

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        return image.new(Fn.flip(image.data, params["axes"]) if params["axes"] else image.data.clone())

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        return image.new(Fn.flip(image.data, params["axes"]) if params["axes"] else image.data.clone())

    def apply_batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Flip each item of a batch ``(B, C, *spatial)`` along each axis with probability
        ``prob``, each item drawing its own flips (axes beyond the image's are skipped)."""
        nd = x.ndim - 2
        for axis in self.axes:
            if axis >= nd:
                continue
            hit = torch.rand(x.shape[0], generator=generator) < self.prob
            if bool(hit.any()):
                x = torch.where(hit.view(-1, *[1] * (x.ndim - 1)).to(x.device), x.flip(2 + axis), x)
        return x


def _uniform_n(n: int, lo: float, hi: float, g: torch.Generator | None) -> torch.Tensor:
    """``n`` float64 values uniformly in ``[lo, hi)`` from ``g``."""
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """:func:`rotation_matrix` for a batch: angles ``(n, 1)`` (2D) or ``(n, 3)`` (3D) in
    radians -> ``(n, nd, nd)`` float64."""
    c, s = torch.cos(angles), torch.sin(angles)
    n = angles.shape[0]
    if angles.shape[1] == 1:
        return torch.stack([torch.stack([c[:, 0], -s[:, 0]], 1), torch.stack([s[:, 0], c[:, 0]], 1)], 1)
    r = torch.eye(3, dtype=angles.dtype).repeat(n, 1, 1)
    for ax in range(3):
        i, j = [d for d in range(3) if d != ax]
        m = torch.eye(3, dtype=angles.dtype).repeat(n, 1, 1)
        m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c[:, ax], -s[:, ax], s[:, ax], c[:, ax]
        r = m @ r
    return r


def rotation_matrix(angles: Sequence[float]) -> np.ndarray:
    """Rotation matrix in voxel-axis order; 3D: about axis 0, then 1, then 2 (radians)."""
    return _rotation_matrices(torch.tensor([list(angles)], dtype=torch.float64))[0].numpy()


def affine_theta(shape: Sequence[int], spacing: Sequence[float], angles: Sequence[float], scale: float,
                 shift: Sequence[float]) -> np.ndarray:
    """The ``nd x (nd+1)`` map from normalised output to input coordinates (data axis order,
    ``align_corners=False``) of a rotation by ``angles`` degrees and a zoom by ``scale``
    about the grid centre in millimetres, the content then moved by ``shift`` (fractions
    of the extent)."""
    a = rotation_matrix([math.radians(x) for x in angles]) * scale  # content map, mm about the centre
    half = np.array(shape, dtype=np.float64) * np.array(spacing, dtype=np.float64)[: len(shape)] / 2.0
    # output normalised coords -> mm (D) -> input mm (A^-1) -> input normalised (D^-1)
    m = np.diag(1.0 / half) @ np.linalg.inv(a) @ np.diag(half)
    # the content moves by shift (normalised: 2 * fraction): input = m @ (output - 2 * shift)
    return np.concatenate([m, -(m @ (2.0 * np.asarray(shift, dtype=np.float64)))[:, None]], axis=1)


@TRANSFORMS.register("random_affine")
class RandomAffine(Transform):
    """Random rotation, isotropic scaling and shift about the image centre, in millimetres.

    Rotation angles are uniform in ``[-d, d]`` degrees about each axis and the scale is
    uniform in ``scale``; the warp is computed in physical space (voxel spacing taken
    into account) and sampled with ``F.affine_grid``/``grid_sample`` (a true rotation is
    not separable). Labels nearest, intensities linear with 0 outside, probabilities
    linear with background 1 outside (``interpolation: nearest`` samples intensities
    nearest too: binary masks given as images, such as MedMNIST's AdrenalMNIST3D shapes,
    stay binary, as the images met at test time are). The grid and affine are unchanged.

    Args:
        degrees: max rotation per axis (3D: about I, J, K; 2D: one angle); one value for all.
        scale: ``(min, max)`` zoom factor; > 1 enlarges the content.
        translate: max shift of the content along each axis, as a fraction of the image's
            extent along it (uniform in ``[-translate, translate]``); 0 (default): none.
        prob: probability of applying the warp at all.
        keys: images to warp (all by default).
        interpolation: ``linear`` (default) or ``nearest`` for intensity images; labels
            are always sampled nearest.

    Params: ``theta``: the ``nd x (nd+1)`` map from normalised output to input
    coordinates (data axis order, ``align_corners=False``), or None when not applied;
    ``angles`` (degrees), ``scale``, ``shift`` (fractions of the extent),
    ``interpolation``.
    """

    name = "random_affine"
    spatial = True
    random = True

    def __init__(
        self,
        degrees: float | Sequence[float] = 15.0,
        scale: Sequence[float] = (0.9, 1.1),
        prob: float = 0.5,
        keys: Sequence[str] | None = None,
        translate: float = 0.0,
        interpolation: str = "linear",
    ) -> None:
        super().__init__(keys)
        if interpolation not in ("linear", "nearest"):
            raise TransformError(f"random_affine: interpolation must be linear or nearest, got {interpolation!r}")
        self.interpolation = interpolation
        if not 0.0 <= float(translate) < 1.0:
            raise TransformError(f"random_affine: translate is a fraction of the image extent in [0, 1), got {translate}")
        self.translate = float(translate)
        self.degrees = float(degrees) if isinstance(degrees, (int, float)) else [float(d) for d in degrees]
        self.scale = [float(s) for s in scale]
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise TransformError(f"random_affine: scale must be (min, max) with 0 < min <= max, got {list(scale)}")
        self.prob = float(prob)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        nd = ref.spatial_ndim
        n_angles = 3 if nd == 3 else 1
        degs = [self.degrees] * n_angles if isinstance(self.degrees, float) else list(self.degrees)
        if len(degs) != n_angles:
            raise TransformError(
                f"random_affine: degrees {degs} has {len(degs)} values; a {nd}D image needs {n_angles}"
            )
        if float(torch.rand(1, generator=generator)) >= self.prob:
            return {"theta": None, "angles": [0.0] * n_angles, "scale": 1.0, "shift": [0.0] * nd,
                    "interpolation": self.interpolation}
        angles = [uniform(generator, -d, d) for d in degs]
        s = uniform(generator, *self.scale)
        shift = [uniform(generator, -self.translate, self.translate) if self.translate else 0.0 for _ in range(nd)]
        theta = affine_theta(ref.spatial_shape, ref.spacing, angles, s, shift)
        return {"theta": theta.tolist(), "angles": angles, "scale": s, "shift": shift,
                "interpolation": self.interpolation}

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        if params["theta"] is None:
            return image.new(image.data.clone())
        return self._warp(image, np.asarray(params["theta"]), params.get("interpolation", "linear"))

    @classmethod
    def _warp(cls, image: Image, theta: np.ndarray, interpolation: str = "linear") -> Image:
        mode = "nearest" if image.kind == "intensity" and interpolation == "nearest" else interp_mode(image)
        data = Fn.warp_affine(image.data, torch.as_tensor(theta), mode)
        return image.new(finish(image, data))

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        if params["theta"] is None:
            return image.new(image.data.clone())
        theta = np.asarray(params["theta"], dtype=np.float64)
        nd = theta.shape[0]
        full = np.eye(nd + 1)
        full[:nd] = theta
        return cls._warp(image, np.linalg.inv(full)[:nd])

    def _batch_thetas(self, n: int, shape: Sequence[int], spacing: Sequence[float],
                      g: torch.Generator | None) -> torch.Tensor | None:
        """Per-item ``(n, nd, nd+1)`` maps (as ``theta`` in :meth:`make_params`), identity
        where the warp is not applied; None when no item is warped."""
        nd = len(shape)
        n_angles = 3 if nd == 3 else 1
        degs = [self.degrees] * n_angles if isinstance(self.degrees, float) else list(self.degrees)
        applied = torch.rand(n, generator=g) < self.prob
        if not bool(applied.any()):
            return None
        angles = torch.stack([_uniform_n(n, -d, d, g) for d in degs], 1)
        scales = _uniform_n(n, self.scale[0], self.scale[1], g)
        shifts = torch.stack([_uniform_n(n, -self.translate, self.translate, g) for _ in range(nd)], 1) * 2.0
        half = torch.tensor([s * sp / 2.0 for s, sp in zip(shape, spacing)], dtype=torch.float64)
        rot = _rotation_matrices(torch.deg2rad(angles))  # (n, nd, nd), orthogonal: inverse = transpose
        m = rot.transpose(1, 2) / scales[:, None, None] * half[None, None, :] / half[None, :, None]
        m = torch.where(applied[:, None, None], m, torch.eye(nd, dtype=torch.float64))
        t = -(m @ shifts[:, :, None])[:, :, 0] * applied[:, None]
        return torch.cat([m, t[:, :, None]], dim=2)

    def apply_batch(self, x: torch.Tensor, generator: torch.Generator | None = None,
                    spacing: Sequence[float] | None = None) -> torch.Tensor:
        """Warp each item of a batch ``(B, C, *spatial)`` of intensity images with its own
        draw (same distributions as :meth:`make_params`), in one ``grid_sample``."""
        nd = x.ndim - 2
        thetas = self._batch_thetas(x.shape[0], x.shape[2:], spacing or [1.0] * nd, generator)
        if thetas is None:
            return x
        return Fn.warp_affine_batch(x, thetas, self.interpolation)


@TRANSFORMS.register("random_intensity")
class RandomIntensity(Transform):
    """Random intensity changes on intensity images, each with its own probability:

    ``x * scale + shift``; gamma on each channel's own [min, max] range; additive
    Gaussian noise with a random std. Applied in that order.

    Args:
        scale: ``(min, max)`` multiplicative factor; ``shift``: ``(min, max)`` offset.
        gamma: ``(min, max)`` exponent.
        noise_std: ``(min, max)`` noise standard deviation (in the image's units).
        prob_scale_shift, prob_gamma, prob_noise: probability of each change.
        keys: intensity images (every intensity image by default).

    Params: ``scale``/``shift``/``gamma``/``noise_std`` (None where not applied) and
    ``noise_seed`` (the noise field is regenerated from it on replay).
    """

    name = "random_intensity"
    random = True

    def __init__(
        self,
        scale: Sequence[float] = (0.9, 1.1),
        shift: Sequence[float] = (-0.1, 0.1),
        gamma: Sequence[float] = (0.7, 1.5),
        noise_std: Sequence[float] = (0.0, 0.1),
        prob_scale_shift: float = 0.5,
        prob_gamma: float = 0.3,
        prob_noise: float = 0.15,
        keys: Sequence[str] | None = None,
    ) -> None:
        super().__init__(keys)
        for nm, v in (("scale", scale), ("shift", shift), ("gamma", gamma), ("noise_std", noise_std)):
            if len(list(v)) != 2 or float(list(v)[0]) > float(list(v)[1]):
                raise TransformError(f"random_intensity: {nm} must be (min, max) with min <= max, got {v!r}")
        if float(gamma[0]) <= 0:
            raise TransformError(f"random_intensity: gamma must be > 0, got {list(gamma)}")
        self.scale, self.shift = [float(x) for x in scale], [float(x) for x in shift]
        self.gamma, self.noise_std = [float(x) for x in gamma], [float(x) for x in noise_std]
        self.prob_scale_shift, self.prob_gamma, self.prob_noise = float(prob_scale_shift), float(prob_gamma), float(prob_noise)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        u = torch.rand(3, generator=generator).tolist()
        p: dict[str, Any] = {"keys": intensity_keys(self, sample), "scale": None, "shift": None,
                             "gamma": None, "noise_std": None, "noise_seed": None}
        if u[0] < self.prob_scale_shift:
            p["scale"], p["shift"] = uniform(generator, *self.scale), uniform(generator, *self.shift)
        if u[1] < self.prob_gamma:
            p["gamma"] = uniform(generator, *self.gamma)
        if u[2] < self.prob_noise:
            p["noise_std"] = uniform(generator, *self.noise_std)
            p["noise_seed"] = generator_seed(generator)
        return p

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        images = {}
        for i, k in enumerate(params["keys"]):
            im = sample[k]
            x = im.data if im.data.is_floating_point() else im.data.to(torch.float32)
            if params["scale"] is not None:
                x = x * params["scale"] + params["shift"]
            if params["gamma"] is not None:
                x = Fn.adjust_gamma(x, params["gamma"])
            if params["noise_std"] is not None:
                g = torch.Generator(device=x.device).manual_seed(int(params["noise_seed"]) + i)
                x = x + params["noise_std"] * torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
            images[k] = im.new(x.clone() if x is im.data else x)
        return sample.replace(images, TransformRecord(self.name, params, False))

    def apply_batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Change each item of a batch ``(B, C, *spatial)`` of intensity images with its own
        draw (same distributions and order as :meth:`make_params` and :meth:`apply`)."""
        g, n = generator, x.shape[0]
        view = (n, *[1] * (x.ndim - 1))
        u = torch.rand(n, 3, generator=g)
        on = (u[:, 0] < self.prob_scale_shift).double()
        scale = 1.0 + on * (_uniform_n(n, *self.scale, g) - 1.0)
        shift = on * _uniform_n(n, *self.shift, g)
        x = x * scale.view(view).to(x) + shift.view(view).to(x)
        gam, gammas = u[:, 1] < self.prob_gamma, _uniform_n(n, *self.gamma, g)
        if bool(gam.any()):
            dims = tuple(range(2, x.ndim))
            lo, hi = x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)
            rng = (hi - lo).clamp_min(1e-7)
            warped = lo + rng * ((x - lo) / rng).clamp(0, 1).pow(gammas.view(view).to(x))
            x = torch.where(gam.view(view).to(x.device), warped, x)
        noisy, stds = u[:, 2] < self.prob_noise, _uniform_n(n, *self.noise_std, g)
        if bool(noisy.any()):
            sigma = (stds * noisy.double()).view(view).to(x.dtype)
            x = x + (torch.randn(x.shape, generator=g, dtype=x.dtype) * sigma).to(x.device)
        return x
