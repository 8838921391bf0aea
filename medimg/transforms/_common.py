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


def param_error(name: str, key: str, found: str, fix: str) -> TransformError:
    """``"<name>: <key> <found>; <fix>"``: the one-line error of a bad constructor parameter
    (the config validator prints the message alone, so the fix is in it)."""
    return TransformError(f"{name}: {key} {found}; {fix}", hint=f"see `medimg list transforms {name}`")


def check_prob(name: str, prob: Any) -> float:
    """``prob`` as a float in [0, 1], or a one-line error naming the transform's key."""
    try:
        p = float(prob)
    except (TypeError, ValueError):
        p = float("nan")
    if not 0.0 <= p <= 1.0:
        raise param_error(name, "prob", f"is {prob!r}, not a probability",
                          "set prob to a number from 0 (never) to 1 (always)")
    return p


def check_range(name: str, key: str, value: Any, low: float | None = None,
                high: float | None = None, strict_low: bool = False) -> list[float]:
    """``value`` as ``[min, max]`` with ``min <= max`` inside ``[low, high]`` (``low``
    excluded with ``strict_low``), or a one-line error naming the key and the fix."""
    bounds = (f"{'>' if strict_low else '>='} {low}" if low is not None else "") + \
        (f"{' and ' if low is not None else ''}<= {high}" if high is not None else "")
    fix = f"write {key}: [min, max] with min <= max" + (f", both {bounds}" if bounds else "")
    try:
        vals = [float(v) for v in value]
    except (TypeError, ValueError):
        vals = []
    ok = len(vals) == 2 and vals[0] <= vals[1]
    if ok and low is not None:
        ok = vals[0] > low if strict_low else vals[0] >= low
    if ok and high is not None:
        ok = vals[1] <= high
    if not ok:
        raise param_error(name, key, f"is {value!r}, not a range", fix)
    return vals
