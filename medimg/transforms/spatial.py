"""Deterministic spatial transforms: orient, resample, resize, crop to foreground, pad.

Each records the geometry it needs in its params so that :func:`invert_history` can
take an image (e.g. class probabilities predicted on the preprocessed grid) back to the
source grid from the params alone. Interpolation is chosen by image kind: intensities
linear, labels nearest, probabilities linear and renormalised so channels sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.affine import orientation_transform, reoriented_affine, scaled_affine
from ..core.errors import TransformError
from ..core.image import Image
from ..core.sample import Sample
from . import functional as Fn
from ._common import check_shape, finish, int_list, interp_mode, pad_value, reference, translated
from .base import TRANSFORMS, Transform

__all__ = ["Orient", "Resample", "Resize", "CropForeground", "SpatialPad"]


@TRANSFORMS.register("orient")
class Orient(Transform):
    """Permute and flip voxel axes so they point along ``axcodes`` (e.g. RAS).

    Exact: no interpolation, every voxel keeps its world position (the affine is
    updated by :func:`~medimg.core.affine.reoriented_affine`). Oblique images get the
    closest axis codes. The inverse is exact.

    Args:
        axcodes: target codes, one letter per spatial axis from R/L, A/P, S/I, e.g.
            ``"RAS"`` (nibabel's canonical) or ``"LPS"`` (DICOM/ITK).
        keys: images to reorient (all by default; they must share a grid).

    Params: ``perm`` (new axis i = old axis perm[i]), ``flips``, ``in_shape``.
    """

    name = "orient"
    spatial = True

    def __init__(self, axcodes: str | Sequence[str] = "RAS", keys: Sequence[str] | None = None) -> None:
        super().__init__(keys)
        codes = "".join(str(c) for c in axcodes).upper()
        try:
            if len(codes) not in (2, 3):
                raise ValueError(codes)
            orientation_transform(np.eye(4), codes, ndim=len(codes))
        except ValueError:
            raise TransformError(
                f"orient: invalid axcodes {''.join(str(c) for c in axcodes)!r}: expected 2 or 3 letters, "
                "one from each of R/L, A/P, S/I, each anatomical axis once",
                hint="e.g. axcodes: RAS (NIfTI canonical) or LPS (DICOM)",
            ) from None
        self.axcodes = codes

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        if len(self.axcodes) != ref.spatial_ndim:
            raise TransformError(
                f"orient: axcodes {self.axcodes!r} have {len(self.axcodes)} letters but image of case "
                f"'{sample.case_id}' has {ref.spatial_ndim} spatial axes",
                hint=f"give {ref.spatial_ndim} letters",
            )
        perm, flips = orientation_transform(ref.affine, self.axcodes, ndim=ref.spatial_ndim)
        return {
            "axcodes": self.axcodes,
            "perm": [int(p) for p in perm],
            "flips": [bool(f) for f in flips],
            "in_shape": list(ref.spatial_shape),
        }

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        check_shape(self.name, image, params["in_shape"], "apply")
        data = Fn.reorient(image.data, params["perm"], params["flips"])
        aff = reoriented_affine(image.affine, image.spatial_shape, params["perm"], params["flips"])
        return image.new(data, aff)

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        perm, flips = params["perm"], params["flips"]
        out_shape = [params["in_shape"][p] for p in perm]
        check_shape(cls.name, image, out_shape, "invert")
        inv = [0] * len(perm)
        for i, p in enumerate(perm):
            inv[p] = i
        # old = flip(new, flips) then permute(inv): as (perm', flips') with flips in new order
        inv_flips = [bool(flips[inv[j]]) for j in range(len(perm))]
        data = Fn.reorient(image.data, inv, inv_flips)
        aff = reoriented_affine(image.affine, image.spatial_shape, inv, inv_flips)
        return image.new(data, aff)


@TRANSFORMS.register("resample")
class Resample(Transform):
    """Resample to a target voxel spacing (mm), keeping the field of view.

    The new shape is ``round(old_shape * old_spacing / spacing)`` per axis; the outer
    voxel edges stay where they were (``align_corners=False`` semantics, see
    :func:`~medimg.core.affine.scaled_affine`), so the achieved spacing is
    ``old_spacing * old_shape / new_shape``, within half a voxel of the target over the
    whole field of view. Axis-aligned, hence separable: 2D + 1D interpolation passes
    (:func:`~medimg.transforms.functional.resample_to_shape`), no dense sampling grid.

    Intensities: linear (float32 out). Labels: nearest. Probabilities: linear, then
    renormalised. No anti-aliasing when downsampling (as MONAI's Spacing).

    Args:
        spacing: target spacing in mm per spatial axis (I, J, K); ``None`` or ``0`` keeps
            that axis as it is.
        keys: images to resample (all by default; they must share a grid).

    Params: ``in_shape``, ``out_shape``, ``in_affine`` (4x4 nested list), ``spacing``.
    """

    name = "resample"
    spatial = True

    def __init__(self, spacing: Sequence[float | None], keys: Sequence[str] | None = None) -> None:
        super().__init__(keys)
        if isinstance(spacing, (int, float)):
            raise TransformError(
                f"resample: spacing must be a list with one value per spatial axis, got {spacing!r}",
                hint=f"e.g. spacing: [{spacing}, {spacing}, {spacing}]",
            )
        vals: list[float | None] = []
        for s in spacing:
            if s is None or float(s) == 0.0:
                vals.append(None)
            elif not float(s) > 0 or not np.isfinite(float(s)):
                raise TransformError(
                    f"resample: spacing {list(spacing)} has a non-positive value {s!r}",
                    hint="spacing is in mm and must be > 0 (null or 0 keeps an axis)",
                )
            else:
                vals.append(float(s))
        self.spacing = vals

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        nd = ref.spatial_ndim
        if len(self.spacing) != nd:
            raise TransformError(
                f"resample: spacing {self.spacing} has {len(self.spacing)} values but image of case "
                f"'{sample.case_id}' has {nd} spatial axes",
                hint=f"give {nd} values (mm along I, J{', K' if nd == 3 else ''}; null keeps an axis)",
            )
        old_sp = ref.spacing
        out_shape = [
            n if s is None else max(1, int(round(n * o / s)))
            for n, o, s in zip(ref.spatial_shape, old_sp, self.spacing)
        ]
        return {
            "spacing": [o if s is None else s for o, s in zip(old_sp, self.spacing)],
            "in_shape": list(ref.spatial_shape),
            "out_shape": out_shape,
            "in_affine": ref.affine.tolist(),
        }

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        check_shape(self.name, image, params["in_shape"], "apply")
        data = Fn.resample_to_shape(image.data, params["out_shape"], interp_mode(image))
        aff = scaled_affine(image.affine, params["in_shape"], params["out_shape"])
        return image.new(finish(image, data), aff)

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        check_shape(cls.name, image, params["out_shape"], "invert")
        data = Fn.resample_to_shape(image.data, params["in_shape"], interp_mode(image))
        return image.new(finish(image, data), np.asarray(params["in_affine"], dtype=np.float64))


@TRANSFORMS.register("resize")
class Resize(Resample):
    """Resize to a fixed spatial shape, keeping the field of view (the spacing changes).

    What mixed-size pictures need before they can be batched (e.g. chest X-rays of
    several sizes to ``size: [224, 224]``). The interpolation, the affine (outer voxel
    edges stay in place, so the new spacing is ``old_spacing * old_shape / size``) and
    the inverse are those of :class:`Resample`: a prediction goes back to each image's
    own shape. The aspect ratio is not kept; pad first (``spatial_pad``) to keep it.

    Args:
        size: the output shape, one int for every axis or one per spatial axis.
        keys: images to resize (all by default; they must share a grid).

    Params: as :class:`Resample`'s.
    """

    name = "resize"

    def __init__(self, size: int | Sequence[int], keys: Sequence[str] | None = None) -> None:
        Transform.__init__(self, keys)
        sizes = [size] if isinstance(size, int) else list(size)
        if not sizes or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes):
            raise TransformError(f"resize: size must be positive whole numbers of voxels, got {size!r}",
                                 hint="e.g. size: [224, 224] (2D) or size: [96, 96, 96] (3D)")
        self.size = size

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        out_shape = int_list(self.size, ref.spatial_ndim, self.name, "size")
        return {
            "spacing": [o * n / m for o, n, m in zip(ref.spacing, ref.spatial_shape, out_shape)],
            "in_shape": list(ref.spatial_shape),
            "out_shape": out_shape,
            "in_affine": ref.affine.tolist(),
        }


@TRANSFORMS.register("crop_foreground")
class CropForeground(Transform):
    """Crop every image to the bounding box of ``source > threshold`` (any channel) + margin.

    Useful to drop air around a body or brain. When nothing exceeds the threshold the
    image is kept whole. Inverse: pad back with 0 (intensity, labels) or background
    probability 1 (probabilities).

    Args:
        source: image whose values define the foreground (default ``"image"``).
        threshold: voxels strictly above it are foreground.
        margin: voxels added on each side, one int or one per axis.
        keys: images to crop (all by default).
        corner_background: foreground is instead every voxel differing from its channel's
            own constant background, the value all the channel's corners share (per case:
            MR z-scored before skull stripping has a different background in every image);
            channels whose corners differ use ``threshold``.

    Params: ``start``, ``stop`` (voxel box, stop exclusive), ``in_shape``.
    """

    name = "crop_foreground"
    spatial = True

    def __init__(
        self,
        source: str = "image",
        threshold: float = 0.0,
        margin: int | Sequence[int] = 0,
        keys: Sequence[str] | None = None,
        corner_background: bool = False,
    ) -> None:
        super().__init__(keys)
        self.source = source
        self.threshold = float(threshold)
        self.corner_background = bool(corner_background)
        self.margin = margin if isinstance(margin, int) else [int(m) for m in margin]

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        if self.source not in sample.images:
            raise TransformError(
                f"crop_foreground: case '{sample.case_id}' has no source image '{self.source}' "
                f"(has: {', '.join(sample.images)})",
                hint="set 'source' to the image whose nonzero region to keep",
            )
        src = sample.images[self.source]
        margin = int_list(self.margin, src.spatial_ndim, self.name, "margin")
        if self.corner_background:
            bgs = Fn.corner_background(src.data)
            mask = torch.stack([src.data[c] != bg if bg is not None else src.data[c] > self.threshold
                                for c, bg in enumerate(bgs)]).any(0)
        else:
            mask = (src.data > self.threshold).any(0)
        box = Fn.foreground_bbox(mask, margin)
        start, stop = box if box is not None else ([0] * src.spatial_ndim, list(src.spatial_shape))
        return {"start": start, "stop": stop, "in_shape": list(src.spatial_shape)}

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        check_shape(self.name, image, params["in_shape"], "apply")
        # clone: a view would keep the whole uncropped volume alive in caches
        data = Fn.crop(image.data, params["start"], params["stop"]).clone()
        return image.new(data, translated(image.affine, params["start"]))

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        start, stop, in_shape = params["start"], params["stop"], params["in_shape"]
        check_shape(cls.name, image, [e - s for s, e in zip(start, stop)], "invert")
        after = [n - e for n, e in zip(in_shape, stop)]
        data = Fn.pad(image.data, start, after, pad_value(image))
        return image.new(data, translated(image.affine, [-s for s in start]))


@TRANSFORMS.register("spatial_pad")
class SpatialPad(Transform):
    """Pad each axis to at least ``size`` voxels, centred (extra voxel after); 0 or
    background probability 1 outside. Inverse: crop.

    Args:
        size: minimal spatial size, one int or one per axis.
        keys: images to pad (all by default).

    Params: ``before``, ``after``, ``in_shape``.
    """

    name = "spatial_pad"
    spatial = True

    def __init__(self, size: int | Sequence[int], keys: Sequence[str] | None = None) -> None:
        super().__init__(keys)
        self.size = size if isinstance(size, int) else [int(s) for s in size]

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        ref = reference(self, sample, self.selected(sample))
        size = int_list(self.size, ref.spatial_ndim, self.name, "size")
        before, after = [], []
        for n, s in zip(ref.spatial_shape, size):
            extra = max(s - n, 0)
            before.append(extra // 2)
            after.append(extra - extra // 2)
        return {"before": before, "after": after, "in_shape": list(ref.spatial_shape)}

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        check_shape(self.name, image, params["in_shape"], "apply")
        data = Fn.pad(image.data, params["before"], params["after"], pad_value(image))
        return image.new(data, translated(image.affine, [-b for b in params["before"]]))

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        before, in_shape = params["before"], params["in_shape"]
        check_shape(cls.name, image, [n + b + a for n, b, a in zip(in_shape, before, params["after"])], "invert")
        stop = [b + n for b, n in zip(before, in_shape)]
        data = Fn.crop(image.data, before, stop).clone()
        return image.new(data, translated(image.affine, before))
