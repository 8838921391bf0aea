"""Invertible, replayable transforms on :class:`~medimg.core.Sample` (see base.py).

Deterministic preprocessing (``orient``, ``resample``, ``normalize_intensity``,
``scale_intensity_range``, ``map_labels``, ``crop_foreground``, ``spatial_pad``) is recorded
in ``Sample.history`` and inverted at inference with :func:`invert_history`; random
augmentation (``random_crop``, ``random_flip``, ``random_affine``, ``random_intensity``,
``monai``) draws from a ``torch.Generator``. Pure kernels live in
:mod:`medimg.transforms.functional`.
"""

from . import functional
from .augment import RandomAffine, RandomCrop, RandomFlip, RandomIntensity
from .base import TRANSFORMS, Compose, Transform, invert_history, invert_image
from .build import build_compose, build_transform, build_transforms
from .intensity import MapLabels, NormalizeIntensity, ScaleIntensityRange
from .monai_adapter import MonaiTransform
from .spatial import CropForeground, Orient, Resample, Resize, SpatialPad

__all__ = [
    "TRANSFORMS",
    "Compose",
    "Transform",
    "invert_history",
    "invert_image",
    "build_compose",
    "build_transform",
    "build_transforms",
    "functional",
    "Orient",
    "Resample",
    "Resize",
    "CropForeground",
    "SpatialPad",
    "NormalizeIntensity",
    "ScaleIntensityRange",
    "MapLabels",
    "RandomCrop",
    "RandomFlip",
    "RandomAffine",
    "RandomIntensity",
    "MonaiTransform",
]
