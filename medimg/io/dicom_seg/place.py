"""A DICOM SEG as a label on a given image's grid: the one way medimg places a SEG that
stands beside an image (``medimg evaluate``'s references and predictions, a training or
fingerprint label next to its case's first channel).

A SEG holds frames, not a grid; its frames are placed on the grid of the image it was made
on (:func:`~medimg.io.dicom_seg.read_dicom_seg` with that image as ``source``). A SEG whose
frames do not lie on that grid is an error naming the SEG and the grid; it is never
resampled, because moving a label map onto another grid changes the very volumes it holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...core.errors import GeometryError, exception_reason
from ...core.image import Image
from ..layout import is_seg_path
from .read import is_dicom_seg, read_dicom_seg

__all__ = ["is_seg_file", "read_seg_on_grid"]


def is_seg_file(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a DICOM SEG file: named ``<case_id>.seg.dcm``, or a ``.dcm``
    / ``.dicom`` / suffix-less DICOM file whose SOPClassUID is a Segmentation."""
    if path is None:
        return False
    p = Path(path)
    if p.is_dir():
        return False
    if is_seg_path(p):
        return True
    return p.suffix.lower() in (".dcm", ".dicom", "") and is_dicom_seg(p)


def read_seg_on_grid(path: str | os.PathLike, grid: Image, grid_what: str, *, who: str = "",
                     remedy: str = "give a SEG made on that series") -> Image:
    """The DICOM SEG ``path`` as one label channel exactly on ``grid``'s shape and affine.

    Args:
        path: the SEG file.
        grid: the image of the series the SEG was made on (e.g. a case's first channel).
        grid_what: how the message names ``grid`` (``"the scan 'a/b'"``).
        who: the message's prefix naming the case or row (``"case 'c1': "``).
        remedy: what the message tells the person to do, after the reason.

    Returns:
        A ``kind="label"`` :class:`~medimg.core.Image` on ``grid``; ``meta["path"]`` is ``path``.

    Raises:
        GeometryError: one line: the SEG's frames do not lie on ``grid`` (another spacing,
            orientation, position or FrameOfReferenceUID), naming both and the reason.
        DicomError: the file is not a readable SEG.
    """
    try:
        img = read_dicom_seg(path, source=grid)
    except GeometryError as exc:
        shape = "x".join(str(n) for n in grid.spatial_shape)
        spacing = ", ".join(f"{v:.4g}" for v in grid.spacing)
        raise GeometryError(
            f"{who}DICOM SEG '{path}' does not lie on the grid of {grid_what} (shape {shape}, "
            f"spacing {spacing} mm): it was made on another series ({exception_reason(exc)}); {remedy}"
        ) from exc
    if img.kind != "label":
        img = img.new(kind="label")
    img.meta.setdefault("path", str(path))
    return img
