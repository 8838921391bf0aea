"""Files <-> :class:`~medimg.core.Image`: NIfTI, DICOM series, DICOM SEG, 2D pictures, de-identification.

The front door is two functions::

    img = read_image("ct.nii.gz")          # or a DICOM folder / file
    write_image(img, "out/pred.nii.gz")

``read_image`` picks the reader from the file itself: ``.nii`` / ``.nii.gz`` (or NIfTI /
gzip magic bytes) -> :func:`read_nifti`; a folder, or a file that is DICOM (``DICM`` at
byte 128, or a bare data set) -> :func:`medimg.io.dicom.read_dicom`; ``.png``, ``.jpg`` /
``.jpeg``, ``.bmp``, ``.tif`` / ``.tiff`` (any case) -> :func:`medimg.io.raster.read_raster`
(``(C, H, W)``, identity affine: see that module). Every image comes back
channel-first with a voxel -> RAS+ mm affine (DICOM's LPS is converted at this door).

The DICOM names (``find_series``, ``read_dicom``, ``SeriesInfo`` from
:mod:`medimg.io.dicom`; ``convert_dicom`` from :mod:`medimg.io.convert`; ``read_dicom_seg``,
``write_dicom_seg`` from :mod:`medimg.io.dicom_seg`; ``deidentify``) are loaded on first use
(PEP 562), so ``import medimg.io`` does not import pydicom or highdicom; so is
``read_raster`` (Pillow).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ..core.errors import ImageReadError, ImageWriteError
from ..core.image import Image
from .layout import (
    PICTURE_SUFFIXES as _RASTER_SUFFIXES,  # what medimg.io.raster reads, without Pillow
)
from .nifti import NIFTI_SUFFIXES, is_nifti_path, read_nifti, write_nifti

# lazily imported public name -> module defining it
_LAZY: dict[str, str] = {
    "find_series": "medimg.io.dicom",
    "read_dicom": "medimg.io.dicom",
    "convert_dicom": "medimg.io.convert",
    "SeriesInfo": "medimg.io.dicom",
    "read_dicom_seg": "medimg.io.dicom_seg",
    "write_dicom_seg": "medimg.io.dicom_seg",
    "deidentify": "medimg.io.deid",
    "read_raster": "medimg.io.raster",
}

__all__ = [
    "read_image",
    "write_image",
    "read_nifti",
    "write_nifti",
    "SUPPORTED_FORMATS",
    *_LAZY,
]

#: What :func:`read_image` reads, for messages and ``medimg info``.
SUPPORTED_FORMATS = (
    "NIfTI-1/2 (.nii, .nii.gz), DICOM (a series folder or a .dcm file) and 2D pictures "
    "(.png, .jpg, .jpeg, .bmp, .tif, .tiff)"
)

_OTHER_FORMATS = {
    ".mha": "MetaImage", ".mhd": "MetaImage", ".nrrd": "NRRD", ".nhdr": "NRRD",
    ".hdr": "Analyze/NIfTI pair", ".img": "Analyze/NIfTI pair", ".mgz": "FreeSurfer MGH",
    ".mgh": "FreeSurfer MGH", ".npy": "NumPy", ".npz": "NumPy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'medimg.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _sniff(path: Path) -> str:
    """``"nifti"``, ``"dicom"`` or ``""`` from the first bytes of a file."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)  # enough compressed input for a gzipped NIfTI header
    except OSError as exc:
        raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}") from exc
    if len(head) >= 132 and head[128:132] == b"DICM":  # DICOM PS3.10 §7.1: preamble + 'DICM'
        return "dicom"
    if head[:2] == b"\x1f\x8b":  # gzip: NIfTI inside?
        from ._gzip import GzipDataError, gunzip_head

        try:
            inner = gunzip_head(head, 352)
        except GzipDataError:
            return ""
        return "nifti" if inner[344:347] == b"n+1" or inner[4:7] == b"n+2" else ""
    if head[344:347] == b"n+1" or head[4:7] == b"n+2":
        return "nifti"
    # a bare data set without preamble (violates PS3.10, seen in old archives): it starts
    # with a little-endian (0008,xxxx) or (0002,xxxx) element tag
    if len(head) >= 8 and head[0:2] in (b"\x08\x00", b"\x02\x00") and head[3] == 0:
        return "dicom"
    return ""


def read_image(
    path: str | os.PathLike,
    *,
    dtype: Any = None,
    kind: str | None = None,
    source: Any = None,
) -> Image:
    """Read a NIfTI file, a DICOM file, a DICOM series folder or a 2D picture into an :class:`Image`.

    Args:
        path: ``.nii`` / ``.nii.gz`` file, DICOM file, a folder holding one DICOM
            series (see :func:`medimg.io.dicom.read_dicom` to choose among several), or a
            PNG / JPEG / BMP / TIFF picture (chosen by suffix, any case).
        dtype: cast the data to this dtype (``torch.float32``, ``"float32"``,
            ``np.int16``...); by default the file's own dtype is kept (NIfTI scaled by
            ``scl_slope`` -> float32 where that holds every value exactly, else float64;
            DICOM rescaled to HU -> the smallest dtype holding it).
        kind: ``"intensity"``, ``"label"`` or ``"probabilities"``; by default ``"label"``
            for NIfTI files with intent NIFTI_INTENT_LABEL, else what the reader says.
        source: for a DICOM SEG file only (read by
            :func:`medimg.io.dicom_seg.read_dicom_seg` as one label channel): the image or
            DICOM series folder whose grid its frames are placed on, its source series; None:
            the grid its own frames span. Other formats ignore it.

    Returns:
        ``Image`` with channel-first data ``(C, I, J, K)`` (``(C, H, W)`` for 2D files) and
        an affine mapping voxel indices to RAS+ mm. ``meta["source"]`` is the path.

    Raises:
        ImageReadError: the path does not exist, or is not a supported format (the message
            names the file and the supported formats), or the file is truncated/corrupt.
        DicomSeriesError: a DICOM series cannot be assembled into a correct volume.
        GeometryError: a DICOM SEG frame does not lie on the ``source`` grid.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(
            f"cannot read image '{p}': file or folder not found",
            hint="check the path and the working directory",
        )
    if p.is_dir():
        img = importlib.import_module("medimg.io.dicom").read_dicom(p)
    elif is_nifti_path(p):
        img = read_nifti(p, kind=kind)
    elif p.suffix.lower() in _RASTER_SUFFIXES:
        img = importlib.import_module("medimg.io.raster").read_raster(p, kind=kind)
    else:
        fmt = _sniff(p)
        if fmt == "nifti":
            img = read_nifti(p, kind=kind)
        elif fmt == "dicom" or p.suffix.lower() in (".dcm", ".dicom", ".ima"):
            seg = importlib.import_module("medimg.io.dicom_seg")
            if seg.is_dicom_seg(p):
                img = seg.read_dicom_seg(p, source=source)
            else:
                img = importlib.import_module("medimg.io.dicom").read_dicom(p)
        else:
            other = _OTHER_FORMATS.get(p.suffix.lower())
            found = f"a {other} file" if other else f"suffix '{''.join(p.suffixes) or '(none)'}' and no NIfTI or DICOM signature"
            raise ImageReadError(
                f"cannot read image '{p}': unsupported format: expected {SUPPORTED_FORMATS}, "
                f"found {found}",
                hint="convert it to NIfTI (.nii.gz) first with a tool that reads it (e.g. "
                "SimpleITK or 3D Slicer); DICOM converts with `medimg convert`",
            )
    if kind is not None and img.kind != kind:
        img = img.new(kind=kind)
    if dtype is not None:
        img = img.to(_torch_dtype(dtype))
    return img


def _torch_dtype(dtype: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        npdt = np.dtype(dtype)
        return torch.from_numpy(np.empty(0, dtype=npdt)).dtype
    except TypeError as exc:
        raise ValueError(f"dtype must be a torch or numpy dtype (e.g. 'float32'), got {dtype!r}") from exc


def write_image(image: Image, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write an :class:`Image` to ``.nii`` or ``.nii.gz`` (see :func:`write_nifti`).

    Args:
        image: the image to write.
        path: file name ending in ``.nii`` or ``.nii.gz``.
        **kwargs: passed to :func:`write_nifti` (``compresslevel``).

    Returns:
        The path written.

    Raises:
        ImageWriteError: another suffix (DICOM SEG is written by
            :func:`medimg.io.dicom_seg.write_dicom_seg`), or the file cannot be written.
    """
    p = Path(path)
    if not is_nifti_path(p):
        raise ImageWriteError(
            f"cannot write image '{p}': unsupported suffix '{''.join(p.suffixes) or '(none)'}', "
            f"expected one of {', '.join(NIFTI_SUFFIXES)}",
            hint="name the file e.g. 'pred.nii.gz' (a DICOM SEG is written by write_dicom_seg, "
            "not write_image)",
            cli_hint="name the file e.g. 'pred.nii.gz'",
        )
    return write_nifti(image, p, **kwargs)
