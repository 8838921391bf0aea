"""Deterministic intensity and label-value transforms (non-spatial)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..core.errors import TransformError
from ..core.image import Image
from ..core.sample import Sample, TransformRecord
from . import functional as Fn
from ._common import intensity_keys, label_keys
from .base import TRANSFORMS, Transform

__all__ = ["NormalizeIntensity", "ScaleIntensityRange", "MapLabels"]


@TRANSFORMS.register("normalize_intensity")
class NormalizeIntensity(Transform):
    """Z-score each channel: ``(x - mean) / std`` (MR-style normalisation).

    Args:
        nonzero: compute mean/std over the nonzero voxels only and leave zero voxels
            (background, e.g. outside a skull-stripped brain) at 0.
        corner_background: the same over the voxels differing from each channel's own
            constant background, the value all its corners share (e.g. a brain z-scored
            before skull stripping, whose background is each image's own minimum);
            background voxels become 0. A channel whose corners differ is z-scored whole.
        keys: intensity images to normalise (every intensity image by default).

    Params: ``stats``: per image, per channel ``[mean, std]`` as measured on this case,
    and with ``corner_background`` ``background`` (per image, per channel, the value or
    None), so a replay reproduces the output exactly.
    """

    name = "normalize_intensity"

    def __init__(self, nonzero: bool = False, keys: Sequence[str] | None = None,
                 corner_background: bool = False) -> None:
        super().__init__(keys)
        if nonzero and corner_background:
            raise TransformError("normalize_intensity: choose one of nonzero and corner_background",
                                 hint="nonzero: true for a background of 0; corner_background: true for any constant")
        self.nonzero = bool(nonzero)
        self.corner_background = bool(corner_background)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        keys = intensity_keys(self, sample)
        bgs = {k: Fn.corner_background(sample.images[k].data) if self.corner_background else None for k in keys}
        stats = {k: [list(s) for s in Fn.channel_stats(sample.images[k].data, self.nonzero, bgs[k])] for k in keys}
        params: dict[str, Any] = {"nonzero": self.nonzero, "stats": stats}
        if self.corner_background:
            params["background"] = bgs
        return params

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        images = {}
        for k, stats in params["stats"].items():
            im = sample[k]
            bg = params.get("background", {}).get(k)
            images[k] = im.new(Fn.zscore(im.data, stats, params["nonzero"], background=bg))
        return sample.replace(images, TransformRecord(self.name, params, False))


@TRANSFORMS.register("scale_intensity_range")
class ScaleIntensityRange(Transform):
    """Map ``[a_min, a_max]`` linearly onto ``[b_min, b_max]`` (a CT window), optional clip.

    Example: ``a_min=-175, a_max=250, b_min=0, b_max=1, clip=True`` (abdomen window, HU).

    Args:
        a_min, a_max: input range (e.g. Hounsfield units).
        b_min, b_max: output range.
        clip: clamp the output to ``[b_min, b_max]``.
        keys: intensity images (every intensity image by default).
    """

    name = "scale_intensity_range"

    def __init__(
        self,
        a_min: float,
        a_max: float,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = False,
        keys: Sequence[str] | None = None,
    ) -> None:
        super().__init__(keys)
        if float(a_max) == float(a_min):
            raise TransformError(
                f"scale_intensity_range: a_min and a_max are both {a_min}; the input range must not be empty",
                hint="e.g. a_min: -1000, a_max: 1000 for a wide CT window",
            )
        self.a_min, self.a_max = float(a_min), float(a_max)
        self.b_min, self.b_max = float(b_min), float(b_max)
        self.clip = bool(clip)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        return {
            "keys": intensity_keys(self, sample),
            "a_min": self.a_min, "a_max": self.a_max,
            "b_min": self.b_min, "b_max": self.b_max, "clip": self.clip,
        }

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        images = {
            k: sample[k].new(
                Fn.scale_range(sample[k].data, params["a_min"], params["a_max"],
                               params["b_min"], params["b_max"], params["clip"])
            )
            for k in params["keys"]
        }
        return sample.replace(images, TransformRecord(self.name, params, False))


@TRANSFORMS.register("map_labels")
class MapLabels(Transform):
    """Remap label values with ``mapping`` (``{old: new}``); values not listed become 0.

    Example: BraTS whole tumour ``{1: 1, 2: 1, 3: 1, 4: 1}``. Acts on label images.

    Args:
        mapping: ``{old_value: new_value}`` (keys may be strings from YAML/JSON).
        keys: label images (every label image by default).

    Params: ``mapping`` as ``[[old, new], ...]`` (JSON keeps no integer dict keys).
    """

    name = "map_labels"

    def __init__(self, mapping: Mapping[Any, int], keys: Sequence[str] | None = None) -> None:
        super().__init__(keys)
        try:
            self.mapping = {int(k): int(v) for k, v in dict(mapping).items()}
        except (TypeError, ValueError):
            raise TransformError(
                f"map_labels: mapping must be {{old: new}} with integer values, got {mapping!r}",
                hint="e.g. mapping: {1: 1, 2: 1, 4: 2}",
            ) from None

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        return {"keys": label_keys(self, sample), "mapping": [[k, v] for k, v in sorted(self.mapping.items())]}

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        images = {}
        for k in params["keys"]:
            im: Image = sample[k]
            data = im.data
            if data.is_floating_point():
                raise TransformError(
                    f"map_labels: image '{k}' of case '{sample.case_id}' holds floats ({str(data.dtype).removeprefix('torch.')}); "
                    "label values must be integers",
                    hint="map_labels acts on label images; check its 'keys'",
                )
            images[k] = im.new(Fn.map_values(data, params["mapping"]))
        return sample.replace(images, TransformRecord(self.name, params, False))
