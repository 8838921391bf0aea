"""2D pictures (PNG, JPEG, BMP, TIFF) -> :class:`~medimg.core.Image`, through Pillow.

What comes back:

- **data** ``(C, H, W)``: axis 0 of the spatial axes is the row (top to bottom), axis 1 the
  column (left to right), as the picture is shown. ``C`` is 1 for grayscale (modes ``1``,
  ``L``, ``I;16``, ``I``, ``F``) and 3 for colour. An alpha channel is dropped (models take
  1 or 3 channels; ``meta["dropped_alpha"]`` says so). A palette picture is converted
  explicitly: to grayscale when every palette entry is gray, else to RGB
  (``meta["converted_from"] = "P"``). CMYK, YCbCr and other colour modes become RGB.
- **dtype**: 8-bit pictures stay ``uint8``; 16-bit grayscale becomes ``int32`` (every
  value kept: torch has few operations on ``uint16``); 32-bit integer stays ``int32``,
  float stays ``float32``. ``meta["bits"]`` is 8, 16 or 32.
- **affine**: the identity. A picture carries no patient orientation, so rows map to +x
  and columns to +y in 1 mm steps from the top-left pixel's centre (axis codes ``RA``, not
  anatomical). This is the affine every array without geometry gets (an npz image, an
  ``Image`` built from a tensor), so a picture and the same picture from an npz go through
  ``orient``, ``resample``, ``resize`` and flips alike, in training and in prediction. A
  resolution in the file (PNG pHYs, JPEG/TIFF DPI) is ignored.
- **kind** ``"intensity"``; ``meta``: ``source``, ``format`` (``PNG``...), ``mode``
  (Pillow's mode of the file).

Multi-frame files (animated PNG/GIF, TIFF stacks) are refused rather than read in part.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import ImageReadError, exception_reason
from ..core.image import Image

__all__ = ["RASTER_SUFFIXES", "is_raster_path", "read_raster"]

#: Suffix (lower case) -> format name, for the pictures :func:`read_raster` reads (the
#: suffixes are ``medimg.io.layout.PICTURE_SUFFIXES``, which dispatching uses).
RASTER_SUFFIXES: dict[str, str] = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
}

_GRAY = {"1": 8, "L": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}
_WITH_ALPHA = {"LA": "L", "La": "L", "RGBA": "RGB", "RGBa": "RGB", "PA": "P"}


def is_raster_path(path: str | os.PathLike) -> bool:
    """Whether the file name ends in a picture suffix (``.png``, ``.jpg``... any case)."""
    return Path(path).suffix.lower() in RASTER_SUFFIXES


def _open(path: Path) -> Any:
    """The decoded Pillow image, or an :class:`ImageReadError` saying what was found."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    expected = RASTER_SUFFIXES.get(path.suffix.lower(), "picture")
    try:
        pic = PILImage.open(path)
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            head = f.read(8)
        found = "an empty file" if not head else f"content starting with bytes {head.hex(' ')}"
        raise ImageReadError(
            f"cannot read image '{path}': expected a {expected} file, found {found}",
            hint="check that the file is a complete picture (open it in an image viewer)",
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system's answer (permission denied...)
            raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exception_reason(exc)}") from None
        raise _corrupt(path, expected, exc) from None
    except (ValueError, SyntaxError) as exc:  # Pillow: a broken header
        raise _corrupt(path, expected, exc) from None
    frames = int(getattr(pic, "n_frames", 1) or 1)
    if frames > 1:
        raise ImageReadError(
            f"cannot read image '{path}': expected one 2D picture, found {frames} frames",
            hint="save each frame as its own file, or convert the stack to NIfTI",
        )
    try:
        pic.load()
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow: truncated or corrupt data
        raise _corrupt(path, expected, exc) from None
    return pic


def _corrupt(path: Path, expected: str, exc: BaseException) -> ImageReadError:
    """The one-line error for a picture whose data Pillow could not decode."""
    return ImageReadError(
        f"cannot read image '{path}': the {expected} data is truncated or corrupt ({exception_reason(exc)})",
        hint="write the file again from its source",
    )


def _plain_mode(pic: Any, meta: dict[str, Any]) -> Any:
    """Convert alpha, palette and colour-space modes to grayscale or RGB (noted in ``meta``)."""
    if pic.mode in _WITH_ALPHA:
        meta["dropped_alpha"] = True
        pic = pic.convert(_WITH_ALPHA[pic.mode]) if pic.mode != "PA" else pic.convert("RGB")
    if pic.mode == "P":
        meta["converted_from"] = "P"
        palette = np.asarray(pic.convert("RGB"))
        gray = bool((palette[..., 0] == palette[..., 1]).all() and (palette[..., 1] == palette[..., 2]).all())
        pic = pic.convert("L" if gray else "RGB")
    if pic.mode == "1":
        pic = pic.convert("L")  # 0 / 255
    if pic.mode not in _GRAY and pic.mode != "RGB":
        meta["converted_from"] = pic.mode
        pic = pic.convert("RGB")
    return pic


def read_raster(path: str | os.PathLike, *, kind: str | None = None) -> Image:
    """Read a PNG, JPEG, BMP or single-frame TIFF into a ``(C, H, W)`` :class:`Image`.

    Args:
        path: the picture file.
        kind: ``"intensity"`` (default) or ``"label"`` (a mask saved as a picture).

    Returns:
        ``Image`` with data ``(1, H, W)`` or ``(3, H, W)`` and the identity affine (the
        conventions in the module docstring).

    Raises:
        ImageReadError: the file is not a picture Pillow decodes, is truncated or corrupt,
            or holds several frames; the message names the file and what was found.
    """
    p = Path(path)
    pic = _open(p)
    meta: dict[str, Any] = {"source": str(p), "format": pic.format or RASTER_SUFFIXES.get(p.suffix.lower(), ""), "mode": pic.mode}
    pic = _plain_mode(pic, meta)
    arr = np.array(pic)  # a writable copy (torch refuses to share read-only memory)
    if pic.mode.startswith("I;16") or arr.dtype in (np.uint16, np.dtype(">u2")):
        arr = arr.astype(np.int32)
        meta["bits"] = 16
    else:
        meta["bits"] = _GRAY.get(pic.mode, 8)
        arr = arr.astype(arr.dtype.newbyteorder("=")) if arr.dtype.byteorder == ">" else arr
    data = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    return Image(torch.from_numpy(np.ascontiguousarray(data)), np.eye(4), kind or "intensity", meta)
