"""DICOM Segmentation (SEG) objects in and out.

Reading (:func:`read_dicom_seg`) turns a SEG of any of its kinds (PS3.3 A.51 Segmentation
IOD, BINARY and FRACTIONAL; A.51.x Label Map Segmentation, LABELMAP) into a label
:class:`~medimg.core.Image` on its source series' grid, so a SEG can be a training label.
Writing (:func:`write_dicom_seg`) stores a predicted label map as a SEG that references the
series it was predicted on. Like every medimg reader and writer they take ``(path)`` and
``(image, path)`` first.

Geometry is handled in world coordinates, never by trusting frame order:

* every SEG frame carries its own plane position (PS3.3 C.7.6.16.2.3, Plane Position
  (Patient)) and shares an orientation (C.7.6.16.2.4) and pixel spacing (C.7.6.16.2.1);
  a frame's pixel ``(r, c)`` lies at ``IPP + c * dc * X + r * dr * Y`` (LPS mm), with
  ``X, Y`` the first and second triplets of ImageOrientationPatient and
  ``PixelSpacing = (dr, dc)`` (C.7.6.2.1.1 and 10.7.1.3: row spacing first);
* each frame is mapped into the target grid through the target's voxel -> RAS affine,
  which must be the same lattice up to an axis permutation and flips (checked: a
  :class:`~medimg.core.errors.GeometryError` says how far off it is otherwise).

So a SEG read with its source series lands on exactly the grid that
``medimg.io.read_dicom`` gives that series, whatever axis order that grid uses, and a SEG
written from a label on the source grid puts frame ``k`` on source slice ``k``, including
series with flipped in-plane axes (ImageOrientationPatient ``(-1, 0, 0, 0, -1, 0)``).

Without a source the grid is built from the SEG alone, in DICOM's native voxel order:
``i`` = column, ``j`` = row, ``k`` = slice, slices ordered along the normal
``X x Y`` and spaced by the smallest distance between distinct frame positions; frames
omitted because they were empty (highdicom's default) become zero slices.

Tiled slide-microscopy SEGs (``TILED_SPARSE``/``TILED_FULL``, slide coordinate system) are
read as a 2D image ``(C, rows, columns)`` of the total pixel matrix (needs highdicom).

Reading needs only pydicom (plus highdicom for tiled slide SEGs); writing needs highdicom,
the optional extra ``pip install 'medimg[dicom-seg]'``.

:func:`read_seg_on_grid` places a SEG on a given image's grid (the case's scan or first
channel) with a one-line error when it does not fit; ``medimg evaluate``, training labels and
the fingerprint all read SEGs through it.

Modules: ``geometry`` (frame planes, placement in a grid, a SEG's own grid), ``source``
(the source series' headers and grid), ``read``, ``place`` (a SEG on a given grid), ``write``.
"""

from __future__ import annotations

from .place import is_seg_file, read_seg_on_grid
from .read import SEG_SOP_CLASS_UIDS, is_dicom_seg, read_dicom_seg
from .write import write_dicom_seg

__all__ = ["read_dicom_seg", "write_dicom_seg", "is_dicom_seg", "is_seg_file", "read_seg_on_grid",
           "SEG_SOP_CLASS_UIDS"]
