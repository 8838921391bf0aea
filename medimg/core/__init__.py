"""Bottom layer: the image and sample model, affine algebra, registry, errors. No I/O."""

from .affine import (
    affines_close,
    axcodes_from_affine,
    direction_from_affine,
    lps_to_ras,
    make_affine,
    orientation_transform,
    origin_from_affine,
    ras_to_lps,
    reoriented_affine,
    scaled_affine,
    spacing_from_affine,
)
from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DicomError,
    DicomSeriesError,
    GeometryError,
    ImageReadError,
    ImageWriteError,
    MedimgError,
    MissingDependencyError,
    TransformError,
    UnknownComponentError,
)
from .image import KINDS, Image
from .registry import Registry
from .sample import Sample, TransformRecord

__all__ = [
    "Image",
    "KINDS",
    "Sample",
    "TransformRecord",
    "Registry",
    "MedimgError",
    "ConfigError",
    "UnknownComponentError",
    "ImageReadError",
    "ImageWriteError",
    "DicomError",
    "DicomSeriesError",
    "GeometryError",
    "DataError",
    "TransformError",
    "CheckpointError",
    "MissingDependencyError",
    "affines_close",
    "axcodes_from_affine",
    "direction_from_affine",
    "lps_to_ras",
    "make_affine",
    "orientation_transform",
    "origin_from_affine",
    "ras_to_lps",
    "reoriented_affine",
    "scaled_affine",
    "spacing_from_affine",
]
