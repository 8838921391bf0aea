"""Helpers shared by the transform classes (not public API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.errors import TransformError
from ..core.image import Image
from ..core.sample import Sample
from .functional.spatial import fill_missing_background


def reference(transform: Any, sample: Sample, keys: Sequence[str]) -> Image:
    """The image whose grid defines a spatial transform's params (the first selected)."""
    if not keys:
        raise TransformError(
            f"{transform.name}: case '{sample.case_id}' has no images to transform",
            hint="check the transform's 'keys'",
        )
    return sample.images[keys[0]]


def check_shape(name: str, image: Image, expected: Sequence[int], what: str) -> None:
    """Raise if ``image`` is not on the grid the params were recorded for."""
    if list(image.spatial_shape) != [int(s) for s in expected]:
        raise TransformError(
            f"{name}: {what} expects spatial shape {list(expected)}, got {list(image.spatial_shape)} "
            f"(kind {image.kind})",
            hint="params are tied to the grid they were recorded on; record them again with "
            "make_params on this sample, or invert in reverse order of the history",
        )


def interp_mode(image: Image) -> str:
    """Interpolation by kind: labels nearest, intensities and probabilities linear."""
    return "nearest" if image.kind == "label" else "linear"


def pad_value(image: Image) -> float | list[float]:
    """Constant for voxels outside the field of view: 0, or background=1 for probabilities."""
    if image.kind == "probabilities":
        return [1.0] + [0.0] * (image.num_channels - 1)
    return 0.0


def finish(image: Image, data: torch.Tensor) -> torch.Tensor:
    """Post-process resampled data by kind: probabilities sum to 1 again."""
    if image.kind == "probabilities":
        return fill_missing_background(data)
    return data


def translated(affine: np.ndarray, offset: Sequence[int]) -> np.ndarray:
    """Affine of a grid whose voxel 0 is voxel ``offset`` of the grid of ``affine``."""
    a = np.array(affine, dtype=np.float64)
    nd = len(offset)
    a[:3, 3] = a[:3, 3] + a[:3, :nd] @ np.asarray(offset, dtype=np.float64)
    return a


def int_list(value: Any, n: int, name: str, what: str) -> list[int]:
    """Broadcast an int or a list of ints to ``n`` values, naming the transform on error."""
    if isinstance(value, (int, np.integer)):
        return [int(value)] * n
    vals = list(value)
    if len(vals) != n:
        raise TransformError(
            f"{name}: {what} has {len(vals)} values {vals} but the image has {n} spatial axes",
            hint=f"give one value or {n} values (one per axis I, J, K)",
        )
    return [int(v) for v in vals]


def intensity_keys(transform: Any, sample: Sample) -> list[str]:
    """Images an intensity transform acts on: the named keys (must be intensity images), or
    every intensity image when ``keys`` is None."""
    if transform.keys is None:
        return [k for k, im in sample.images.items() if im.kind == "intensity"]
    keys = transform.selected(sample)
    bad = [k for k in keys if sample.images[k].kind != "intensity"]
    if bad:
        raise TransformError(
            f"{transform.name}: image(s) {bad} of case '{sample.case_id}' are of kind "
            f"{[sample.images[k].kind for k in bad]}, not intensity",
            hint="intensity transforms change only intensity images; remove those keys",
        )
    return keys


def label_keys(transform: Any, sample: Sample) -> list[str]:
    """Images a label transform acts on: named keys, or every label image when None."""
    if transform.keys is None:
        return [k for k, im in sample.images.items() if im.kind == "label"]
    return transform.selected(sample)


def generator_seed(generator: torch.Generator | None) -> int:
    """A 63-bit seed drawn from ``generator`` (for kernels that need their own stream)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


def uniform(generator: torch.Generator | None, lo: float, hi: float) -> float:
    """One float uniformly in ``[lo, hi)`` from ``generator``."""
    u = float(torch.rand(1, generator=generator).item())
    return float(lo + (hi - lo) * u)
