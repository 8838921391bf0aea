"""The transform contract: parameters drawn once, deterministic apply, invertible history.

A transform is one class (never array/dictionary twins). Calling it on a :class:`Sample`:

1. ``params = t.make_params(sample, generator)`` draws all randomness from the given
   ``torch.Generator`` and records every fact needed later (input shape, affine...), as
   JSON-serialisable plain data;
2. ``t.apply(sample, params)`` is deterministic and returns a new sample whose history
   ends with ``TransformRecord(t.name, params, t.spatial)``.

Spatial transforms implement the classmethod ``invert_image(image, params)`` that maps an
image on the transform's *output* grid back onto its *input* grid, working from the
recorded params alone. :func:`invert_history` therefore inverts any recorded history,
e.g. taking class probabilities predicted on a preprocessed grid back to the scan's own
grid (then argmax), or replays it from a checkpoint's saved preprocessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch

from ..core.errors import TransformError
from ..core.image import Image
from ..core.registry import Registry
from ..core.sample import Sample, TransformRecord

__all__ = ["TRANSFORMS", "Transform", "Compose", "invert_history", "invert_image"]

#: Registry of transform classes by config name (``- name: resample``).
TRANSFORMS: Registry[type["Transform"]] = Registry("transforms")


class Transform:
    """Base class of all transforms.

    Class attributes:
        name: registered name, used in configs and history records.
        spatial: True if it changes the grid (shape or affine); then ``invert_image``
            must be implemented.
        random: True if ``make_params`` draws random numbers (augmentation).

    Args:
        keys: names of the images to transform; None means every image of the sample.
    """

    name: ClassVar[str] = "transform"
    spatial: ClassVar[bool] = False
    random: ClassVar[bool] = False

    def __init__(self, keys: Sequence[str] | None = None) -> None:
        self.keys = None if keys is None else tuple(keys)

    # -- the contract -----------------------------------------------------------------
    def selected(self, sample: Sample) -> list[str]:
        """Names of the images this transform acts on, in the sample's order."""
        if self.keys is None:
            return list(sample.images)
        missing = [k for k in self.keys if k not in sample.images]
        if missing:
            raise TransformError(
                f"{self.name}: case '{sample.case_id}' has no image named {missing} "
                f"(has: {', '.join(sample.images)})",
                hint="fix the transform's 'keys' in the config",
            )
        return list(self.keys)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Draw random parameters and record geometry; plain, JSON-serialisable data."""
        return {}

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        """Apply with fixed ``params``; must not modify ``sample`` in place."""
        images = {k: self.apply_image(sample.images[k], params) for k in self.selected(sample)}
        return sample.replace(images, TransformRecord(self.name, params, self.spatial))

    def apply_image(self, image: Image, params: dict[str, Any]) -> Image:
        """Apply to one image (override this, or ``apply`` for cross-image logic)."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply_image or apply")

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        """Map ``image`` from this transform's output grid back to its input grid."""
        if not cls.spatial:
            return image
        raise NotImplementedError(f"{cls.__name__} is spatial but cannot be inverted")

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        return self.apply(sample, self.make_params(sample, generator))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order; each appends its own record to the history."""

    name = "compose"

    def __init__(self, transforms: Iterable[Transform]) -> None:
        super().__init__(None)
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        for t in self.transforms:
            sample = t(sample, generator)
        return sample

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:  # pragma: no cover
        raise TransformError("Compose has no params of its own; call it, or its members")

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self):
        return iter(self.transforms)


def invert_image(image: Image, record: TransformRecord | dict[str, Any]) -> Image:
    """Invert one recorded spatial transform on ``image`` (probabilities, labels...)."""
    rec = record if isinstance(record, TransformRecord) else TransformRecord.from_dict(record)
    if not rec.spatial:
        return image
    cls = TRANSFORMS.get(rec.name)
    return cls.invert_image(image, rec.params)


def invert_history(
    image: Image, history: Sequence[TransformRecord | dict[str, Any]]
) -> Image:
    """Undo every spatial transform of ``history``, last first.

    ``image`` must be on the grid the history ended on; the result is on the grid the
    history started from. Non-spatial records (intensity changes) are skipped: what goes
    back is a prediction, not the input intensities.
    """
    out = image
    for rec in reversed(list(history)):
        out = invert_image(out, rec)
    return out
