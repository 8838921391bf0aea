"""Random augmentation of a whole batch at once, for whole-image training (classification).

Per-item augmentation (:class:`~medimg.transforms.Compose` on a
:class:`~medimg.core.Sample`) records every parameter so it can be inverted; classification
training does not need that, and at 28 px the per-item bookkeeping costs more than the
network step. :class:`BatchAugment` calls each transform's ``apply_batch`` on a
``(B, C, *spatial)`` tensor: every item draws its own flips, angles, scale, shift and
intensity change (the same distributions as the per-item path) from one
``torch.Generator``, and one ``grid_sample`` warps the whole batch.

Supported: ``random_flip``, ``random_affine`` and ``random_intensity`` acting on every
image (:func:`batch_supported` says whether a list of transforms qualifies).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .augment import RandomAffine, RandomFlip, RandomIntensity

__all__ = ["BatchAugment", "batch_supported"]

_SUPPORTED = (RandomFlip, RandomAffine, RandomIntensity)


def batch_supported(transforms: Sequence[Any]) -> bool:
    """Whether every transform has a batched form (and acts on every image: ``keys`` unset)."""
    return all(isinstance(t, _SUPPORTED) and t.keys is None for t in transforms)


class BatchAugment:
    """Random transforms applied to whole batches (see the module docstring).

    Args:
        transforms: ``random_flip``, ``random_affine`` and ``random_intensity`` instances,
            applied in order (affine warps take the voxels as 1 mm cubes, as the
            in-memory classification images are).
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        if not batch_supported(transforms):
            names = ", ".join(getattr(t, "name", type(t).__name__) for t in transforms)
            raise ValueError(f"batch augmentation supports random_flip, random_affine, random_intensity; got {names}")
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` ``(B, C, *spatial)`` float; returns a new tensor of the same shape."""
        for t in self.transforms:
            x = t.apply_batch(x, generator)
        return x
