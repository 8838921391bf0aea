"""Elastic deformation, optionally combined with a rotation and zoom, in one resampling.

A coarse grid of ``num_control_points`` per axis gets random displacements of at most
``max_displacement`` millimetres per axis; the field is upsampled linearly to every voxel
and added to the affine sampling grid, and each image is sampled once with
``grid_sample`` (labels nearest, intensities linear, probabilities linear with the
missing mass given to background). Combining the affine with the field saves a whole
resampling pass and its blur compared with two transforms in a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.image import Image
from ..core.sample import Sample, TransformRecord
from ._common import (
    check_prob,
    check_range,
    check_shape,
    finish,
    interp_mode,
    param_error,
    reference,
    uniform,
)
from .augment import affine_theta
from .base import TRANSFORMS, Transform
from .functional import deform as Fd

__all__ = ["RandomElastic"]


def _per_axis(value: Any, nd: int, name: str, key: str) -> list[float]:
    vals = [float(value)] * nd if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(vals) != nd:
        raise param_error(name, key, f"has {len(vals)} values {vals} but the image has {nd} spatial axes",
                          f"give {key} one value or {nd} values (one per axis)")
    return vals


@TRANSFORMS.register("random_elastic")
class RandomElastic(Transform):
    """Random elastic deformation (and optional rotation/zoom) of every image of a sample.

    Args:
        max_displacement: largest displacement of a control point, millimetres, one value
            or one per spatial axis.
        num_control_points: control points per axis (>= 2; one value or one per axis);
            fewer points give smoother, larger-scale deformations.
        degrees: max rotation per axis (3D: about I, J, K; 2D: one angle), degrees; 0: none.
        scale: ``(min, max)`` zoom factor of the combined affine; ``[1, 1]``: none.
        prob: probability of the elastic field.
        prob_affine: probability of the rotation/zoom (drawn separately).
        keys: images to deform (all by default).

    Params: ``in_shape``; ``theta`` (the affine part, as in ``random_affine``) or None;
    ``angles``, ``scale``; ``field``: the control-point displacements ``(nd, *points)`` in
    normalised coordinates (data axis order), or None. Both None: nothing changes.
    Inverse: the affine exactly, the field by fixed-point iteration (approximate where the
    field nearly folds).
    """

    name = "random_elastic"
    spatial = True
    random = True

    def __init__(
        self,
        max_displacement: float | Sequence[float] = 7.5,
        num_control_points: int | Sequence[int] = 7,
        degrees: float | Sequence[float] = 0.0,
        scale: Sequence[float] = (1.0, 1.0),
        prob: float = 0.2,
        prob_affine: float = 0.2,
        keys: Sequence[str] | None = None,
    ) -> None:
        super().__init__(keys)
        self.prob = check_prob(self.name, prob)
        self.prob_affine = check_prob(self.name, prob_affine)
        self.max_displacement = max_displacement if isinstance(max_displacement, (int, float)) \
            else [float(v) for v in max_displacement]
        if any(v < 0 for v in np.atleast_1d(self.max_displacement)):
            raise param_error(self.name, "max_displacement", f"is {max_displacement!r}",
                              "write max_displacement: a distance >= 0 in mm (one value or one per axis)")
        cps = [num_control_points] if isinstance(num_control_points, int) else list(num_control_points)
        if any(int(c) < 2 for c in cps):
            raise param_error(self.name, "num_control_points", f"is {num_control_points!r}",
                              "write num_control_points: an integer of at least 2 per axis (7 is typical)")
        self.num_control_points = num_control_points if isinstance(num_control_points, int) else [int(c) for c in cps]
        self.degrees = float(degrees) if isinstance(degrees, (int, float)) else [float(d) for d in degrees]
        self.scale = check_range(self.name, "scale", scale, low=0.0, strict_low=True)

    def _affine(self, ref: Image, g: torch.Generator | None) -> dict[str, Any]:
        nd = ref.spatial_ndim
        n_angles = 3 if nd == 3 else 1
        degs = _per_axis(self.degrees, n_angles, self.name, "degrees")
        hit = float(torch.rand(1, generator=g)) < self.prob_affine
        if not hit or (not any(degs) and self.scale == [1.0, 1.0]):
            return {"theta": None, "angles": [0.0] * n_angles, "scale": 1.0}
        angles = [uniform(g, -d, d) for d in degs]
        s = uniform(g, *self.scale)
        theta = affine_theta(ref.spatial_shape, ref.spacing, angles, s, [0.0] * nd)
        return {"theta": theta.tolist(), "angles": angles, "scale": s}

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        nd = ref.spatial_ndim
        params: dict[str, Any] = {"in_shape": list(ref.spatial_shape), **self._affine(ref, generator)}
        maxd = _per_axis(self.max_displacement, nd, self.name, "max_displacement")
        cps = [int(c) for c in _per_axis(self.num_control_points, nd, self.name, "num_control_points")]
        field = None
        if float(torch.rand(1, generator=generator)) < self.prob and any(maxd):
            half = torch.tensor([n * s / 2.0 for n, s in zip(ref.spatial_shape, ref.spacing)], dtype=torch.float64)
            u = torch.rand((nd, *cps), generator=generator, dtype=torch.float64) * 2.0 - 1.0
            field = (u * (torch.tensor(maxd, dtype=torch.float64) / half).view(nd, *[1] * nd)).tolist()
        params["field"] = field
        return params

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        keys = self.selected(sample)
        images = {}
        if params["theta"] is None and params["field"] is None:
            images = {k: sample[k].new(sample[k].data) for k in keys}
        else:
            grid = None
            for k in keys:
                im = sample[k]
                check_shape(self.name, im, params["in_shape"], "apply")
                if grid is None or grid.device != im.data.device:
                    grid = self._grid(params, im, inverse=False)
                images[k] = im.new(finish(im, Fd.warp_grid(im.data, grid, interp_mode(im))))
        return sample.replace(images, TransformRecord(self.name, params, True))

    @staticmethod
    def _grid(params: dict[str, Any], im: Image, inverse: bool) -> torch.Tensor:
        dtype = im.data.dtype if im.data.is_floating_point() else torch.float32
        theta = None if params["theta"] is None else torch.tensor(params["theta"], dtype=torch.float64)
        field = None if params["field"] is None else torch.tensor(params["field"], dtype=torch.float64)
        make = Fd.inverse_deformation_grid if inverse else Fd.deformation_grid
        return make(im.spatial_shape, theta, field, dtype=dtype, device=im.data.device)

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        if params["theta"] is None and params["field"] is None:
            return image.new(image.data.clone())
        check_shape(self.name, image, params["in_shape"], "apply")
        grid = self._grid(params, image, inverse=False)
        return image.new(finish(image, Fd.warp_grid(image.data, grid, interp_mode(image))))

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        if params["theta"] is None and params["field"] is None:
            return image.new(image.data.clone())
        check_shape(cls.name, image, params["in_shape"], "invert")
        grid = cls._grid(params, image, inverse=True)
        return image.new(finish(image, Fd.warp_grid(image.data, grid, interp_mode(image))))
