"""Bottom layer: the image and sample model, affine algebra, typed specs, the registry and
its builder, errors. No I/O.

The namespace is lazy (PEP 562): ``import medimg.core.errors`` or
``from medimg.core import ConfigError`` imports neither torch nor numpy; touching e.g.
``medimg.core.Image`` imports what it needs.
"""

from __future__ import annotations

from typing import Any

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
    PacsError,
    TransformError,
    UnknownComponentError,
)

# public name -> submodule that defines it
_LAZY: dict[str, str] = {
    "Image": "image",
    "KINDS": "image",
    "Sample": "sample",
    "TransformRecord": "sample",
    "Registry": "registry",
    **dict.fromkeys(
        [
            "affines_close",
            "GRID_ATOL_MM",
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
        ],
        "affine",
    ),
}

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
    "PacsError",
    "affines_close",
    "GRID_ATOL_MM",
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


def _submodule(short: str) -> Any:
    """The submodule named ``short``, imported now (plain imports: the import graph sees them)."""
    if short == "image":
        from . import image as module
    elif short == "sample":
        from . import sample as module
    elif short == "registry":
        from . import registry as module
    else:
        from . import affine as module
    return module


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(_submodule(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
