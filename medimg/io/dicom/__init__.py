"""DICOM series: discover, group, sort, validate, decode -> :class:`~medimg.core.Image`.

What this package guarantees
----------------------------
* :func:`find_series` walks a folder tree (any file names, ``.dcm`` or not; hidden files
  skipped as everywhere in medimg; ``DICOMDIR`` is ignored, every file is looked at) and
  groups files into series by SeriesInstanceUID, then within a UID by geometry
  (orientation, pixel spacing, matrix size) and by contrast (image/frame type, complex
  component), since those split one UID into several volumes. Non-image objects (SR, RT,
  presentation states, SEG, KO...) are listed, not stacked. Unreadable files are reported
  with the reason, never fatal.
* :func:`read_dicom` assembles one series into an ``Image`` whose affine places every
  voxel where the scanner says, or raises :class:`~medimg.core.errors.DicomSeriesError`
  naming the series, the files and the problem. Never a silently wrong volume.
  :func:`read_dicom_volumes` gives one image per volume instead of one with a channel
  per volume. Each always returns the one type it names.
* Conversion of every series under a folder to NIfTI is :func:`medimg.io.convert.convert_dicom`.

Geometry (DICOM PS3.3 C.7.6.2.1.1, Image Plane module)
------------------------------------------------------
* ImageOrientationPatient holds the row cosine ``r`` (direction in which the column
  index increases, along a row) then the column cosine ``c``; the slice normal is
  ``n = r x c``. PixelSpacing is ``[row spacing, column spacing]``: the distance
  between adjacent *rows* (i.e. along ``c``) first, then between adjacent *columns*
  (along ``r``).
* Voxel axes: ``i`` = column index (along ``r``), ``j`` = row index (along ``c``),
  ``k`` = slice, sorted by the projection of ImagePositionPatient on ``n``.
  The LPS affine has columns ``r * column_spacing``, ``c * row_spacing``, the step
  between consecutive slice positions, and origin = ImagePositionPatient of slice 0;
  it becomes RAS with :func:`medimg.core.affine.lps_to_ras` here, at the door.
* The slice spacing comes from the positions, never from SliceThickness (which is the
  thickness of the slab, and differs from the spacing for overlapping or gapped slices).
* Data are channel-first ``(C, I, J, K)``: ``C`` = 1 for grey, 3 for colour (RGB or
  palette), or the number of volumes (time points, echoes...) for :func:`read_dicom`.
* Modality LUT (RescaleSlope / RescaleIntercept) is applied by default, into the
  smallest dtype that holds the values (int16 for most CT; float32 for fractional
  slopes).

For the DICOM SEG writer (``medimg.io.dicom_seg``)
---------------------------------------------------
``Image.meta`` of a read series carries, in slice order (k = 0 .. K-1, volume 0):

* ``sop_instance_uids``: SOPInstanceUID of the instance holding each slice (repeated for
  an enhanced multi-frame instance),
* ``source_frames``: ``[sop_instance_uid, frame_number]`` per slice (frame numbers are
  1-based as in DICOM; 1 for single-frame instances),
* ``sop_class_uid``, ``study_instance_uid``, ``series_instance_uid``,
  ``frame_of_reference_uid``, ``files`` (paths in slice order).

:class:`SeriesInfo` has ``files`` (unique paths in slice order) and ``frames``
(``(path, frame_index_0_based)`` in slice order, volume-major), and
:func:`load_series_datasets` returns the headers (no pixel data) of a series' files in
slice order, which is what ``highdicom`` wants as ``source_images``.

Patient name, id and birth date never go into ``Image.meta``, ``SeriesInfo`` or the
converted file names.

Modules, by what they do
------------------------
``records`` (the data: file header, frame, SeriesInfo, DicomScan), ``values`` (tag values
from raw elements), ``lite`` (the hand-written header parser for common files),
``header`` (one file -> its header, pydicom for the rest), ``frames`` (a file -> its 2D
frames), ``discover`` (find_series), ``geometry`` (sort, split volumes, validate ->
a grid), ``pixels`` (decode, modality LUT, resample), ``read`` (the read functions).
"""

from __future__ import annotations

import importlib
from typing import Any

from .discover import find_series
from .header import is_dicom_file
from .read import (
    load_series_datasets,
    read_dicom,
    read_dicom_volumes,
    read_series,
    read_series_volumes,
)
from .records import DicomScan, ProgressHook, SeriesInfo

__all__ = [
    "SeriesInfo",
    "DicomScan",
    "ProgressHook",
    "find_series",
    "read_dicom",
    "read_dicom_volumes",
    "read_series",
    "read_series_volumes",
    "load_series_datasets",
    "is_dicom_file",
]

#: Names that lived here before conversion got its own module (``medimg.io.convert``):
#: still importable from here, loaded on first use (conversion sits above reading).
_MOVED = {"convert_dicom": "medimg.io.convert", "ConversionReport": "medimg.io.convert"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'medimg.io.dicom' has no attribute {name!r}")
