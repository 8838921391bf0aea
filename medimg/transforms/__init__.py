"""Invertible, replayable transforms on :class:`~medimg.core.Sample` (see base.py).

Deterministic preprocessing (``orient``, ``resample``, ``normalize_intensity``,
``scale_intensity_range``, ``map_labels``, ``crop_foreground``, ``spatial_pad``) is recorded
in ``Sample.history`` and inverted at inference with :func:`invert_history`; random
augmentation (``random_crop``, ``random_flip``, ``random_affine``, ``random_elastic``,
``random_intensity``, ``random_noise``, ``random_blur``, ``random_brightness``,
``random_contrast``, ``random_gamma``, ``random_low_resolution``, the MR artefacts
``random_bias_field``, ``random_motion``, ``random_ghosting``, ``one_of`` and ``monai``)
draws from a ``torch.Generator``, records what it drew, and replays it with ``apply``. Pure kernels live in
:mod:`medimg.transforms.functional`.
"""

from . import functional
from .artefacts import RandomBiasField, RandomGhosting, RandomMotion
from .augment import RandomAffine, RandomCrop, RandomFlip, RandomIntensity
from .augment_intensity import (
    RandomBlur,
    RandomBrightness,
    RandomContrast,
    RandomGamma,
    RandomLowResolution,
    RandomNoise,
)
from .base import TRANSFORMS, Compose, Transform, invert_history, invert_image
from .build import build_compose, build_transform, build_transforms
from .choice import OneOf
from .elastic import RandomElastic
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
    "RandomElastic",
    "RandomNoise",
    "RandomBlur",
    "RandomBrightness",
    "RandomContrast",
    "RandomGamma",
    "RandomLowResolution",
    "RandomBiasField",
    "RandomMotion",
    "RandomGhosting",
    "OneOf",
    "MonaiTransform",
]
