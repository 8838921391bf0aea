"""DICOM series: discover, group, sort, validate, decode -> :class:`~medimg.core.Image`.

What this module guarantees
---------------------------
* :func:`find_series` walks a folder tree (any file names, ``.dcm`` or not; ``DICOMDIR``
  is ignored, every file is looked at) and groups files into series by
  SeriesInstanceUID, then within a UID by geometry (orientation, pixel spacing, matrix
  size) and by contrast (image/frame type, complex component), since those split one UID
  into several volumes. Non-image objects (SR, RT, presentation states, SEG, KO...) are
  listed, not stacked. Unreadable files are reported with the reason, never fatal.
* :func:`read_dicom` assembles one series into an ``Image`` whose affine places every
  voxel where the scanner says, or raises :class:`~medimg.core.errors.DicomSeriesError`
  naming the series, the files and the problem. Never a silently wrong volume.
* :func:`convert_dicom` converts every series under a folder to ``.nii.gz`` plus a
  ``series.csv`` report (one row per series found, including the failed ones).

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
  palette), or the number of volumes with ``multi_volume="channels"``.
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
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
import os
import re
import struct
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medimg.core.affine import lps_to_ras
from medimg.core.errors import DicomError, DicomSeriesError, MissingDependencyError
from medimg.core.image import Image

__all__ = [
    "SeriesInfo",
    "DicomScan",
    "ConversionReport",
    "find_series",
    "read_dicom",
    "read_series",
    "convert_dicom",
    "load_series_datasets",
    "is_dicom_file",
]

# ----------------------------------------------------------------------------------------
# constants
# ----------------------------------------------------------------------------------------

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_UNCOMPRESSED = {_IMPLICIT_LE, _EXPLICIT_LE, _EXPLICIT_BE}

#: Modalities whose objects carry no image volume to stack (listed by find_series only).
_NON_IMAGE_MODALITIES = {
    "SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "RTDOSE", "RTIMAGE", "PR", "KO", "SEG", "REG",
    "DOC", "FID", "AU", "ECG", "HD", "PLAN", "RWV", "OT_PDF", "RAW", "REGISTRATION",
}
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = 0x7FE00008
_DOUBLE_PIXEL_DATA = 0x7FE00009

#: Positions closer than this along the normal are the same slice position (mm).
_POSITION_TOL_MM = 0.01

_DICOM_EXTRA_HINT = "pip install 'medimg[dicom]'  (pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle)"


def _pydicom():
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - pydicom is a core dependency
        raise MissingDependencyError(
            "reading DICOM needs the package 'pydicom', which is not installed",
            hint="pip install pydicom",
        ) from exc
    return pydicom


# ----------------------------------------------------------------------------------------
# per-file and per-frame header records
# ----------------------------------------------------------------------------------------


@dataclass
class _FileHeader:
    """What one file says about itself (only the tags grouping and assembly need)."""

    path: str
    transfer_syntax: str
    sop_class_uid: str
    sop_instance_uid: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    manufacturer: str
    description: str
    series_number: int | None
    patient_key: str  # a hash of PatientID: groups patients without keeping the id
    study_key: str
    photometric: str
    samples_per_pixel: int
    planar_configuration: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    num_frames: int
    rows: int
    columns: int
    pixel_offset: int | None  # byte offset of an uncompressed PixelData value
    pixel_tag: int | None
    has_pixels: bool
    instance_number: int | None
    acquisition_number: int | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    gantry_tilt: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Frame:
    """One 2D slice: a single-frame file, one frame of a multi-frame file, or a mosaic tile."""

    header: _FileHeader
    frame: int  # 0-based frame index inside the file (mosaic: tile index)
    ipp: np.ndarray | None  # (3,) LPS mm
    iop: tuple[float, ...] | None  # 6 direction cosines
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    rows: int
    columns: int
    slope: float
    intercept: float
    contrast: tuple
    keys: dict[str, Any]
    mosaic: int = 0  # number of tiles when the frame is a tile of a Siemens mosaic

    @property
    def path(self) -> str:
        return self.header.path


# ----------------------------------------------------------------------------------------
# public records
# ----------------------------------------------------------------------------------------


@dataclass
class SeriesInfo:
    """One series (or one volume group of a series) found by :func:`find_series`.

    Attributes:
        key: unique within a scan: the SeriesInstanceUID, or ``UID#n`` where one UID
            splits into several volume groups (geometry or contrast). Pass either to
            ``read_dicom(..., series_uid=...)``.
        series_instance_uid: SeriesInstanceUID (0020,000E).
        description: SeriesDescription, modality, manufacturer, series_number: as in
            the files.
        files: unique file paths, in slice order (volume 0 first).
        frames: ``(path, frame_index)`` per slice, slice order, volume-major; the frame
            index is 0-based (mosaic: tile index).
        sop_instance_uids: SOPInstanceUID per entry of ``frames``.
        shape: ``(I, J, K)`` (columns, rows, slices) or None when no volume.
        num_volumes: volumes at the same positions (time points, echoes, b-values...).
        spacing: ``(column spacing, row spacing, slice step)`` in mm.
        orientation: ImageOrientationPatient (row cosine, column cosine), LPS.
        is_image: False for non-image objects (SR, RT, PR, SEG...), listed only.
        status: ``"ok"``, ``"error"`` (see ``error``) or ``"non-image"``.
        error: why the series cannot be assembled with the default options.
        split: why a UID was split (e.g. ``"orientation/size/spacing group 2 of 3"``).
    """

    key: str
    series_instance_uid: str
    description: str = ""
    modality: str = ""
    manufacturer: str = ""
    series_number: int | None = None
    study_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    sop_class_uid: str = ""
    transfer_syntaxes: tuple[str, ...] = ()
    files: list[str] = field(default_factory=list)
    frames: list[tuple[str, int]] = field(default_factory=list)
    sop_instance_uids: list[str] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    num_volumes: int = 1
    spacing: tuple[float, ...] | None = None
    orientation: tuple[float, ...] | None = None
    is_image: bool = True
    status: str = "ok"
    error: str | None = None
    split: str | None = None
    volume_labels: list[str] = field(default_factory=list)
    patient_index: int = 0
    study_index: int = 0
    _frames: list[_Frame] = field(default_factory=list, repr=False, compare=False)

    @property
    def num_files(self) -> int:
        return len(self.files)

    def summary(self) -> str:
        """One line: key, description, files, shape, status."""
        shp = "x".join(str(s) for s in self.shape) if self.shape else "-"
        vols = f" x{self.num_volumes} volumes" if self.num_volumes > 1 else ""
        msg = f"{self.key}  '{self.description}' ({self.modality})  {self.num_files} files  {shp}{vols}  {self.status}"
        return msg + (f": {self.error}" if self.error else "")


@dataclass
class DicomScan:
    """What :func:`find_series` found under a folder.

    Iterating (and ``len``, indexing) goes over the image series; ``non_image`` lists
    SR/RT/PR/SEG... objects by series, ``unreadable`` lists ``(path, reason)`` for every
    file that could not be used (not DICOM, truncated, no pixel data, bad values).
    """

    root: str
    series: list[SeriesInfo] = field(default_factory=list)
    non_image: list[SeriesInfo] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    num_files: int = 0
    seconds: float = 0.0

    def __iter__(self) -> Iterator[SeriesInfo]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, index: int) -> SeriesInfo:
        return self.series[index]

    def get(self, key: str) -> list[SeriesInfo]:
        """Series whose key or SeriesInstanceUID equals ``key`` (image series first)."""
        hits = [s for s in self.series if s.key == key]
        if hits:
            return hits
        return [s for s in self.series + self.non_image if s.series_instance_uid == key]

    def summary(self) -> str:
        lines = [f"{len(self.series)} image series, {len(self.non_image)} non-image, "
                 f"{len(self.unreadable)} unreadable files, {self.num_files} files in {self.root}"]
        lines += ["  " + s.summary() for s in self.series + self.non_image]
        lines += [f"  unreadable: {p}: {r}" for p, r in self.unreadable[:20]]
        if len(self.unreadable) > 20:
            lines.append(f"  ... and {len(self.unreadable) - 20} more unreadable files")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# header parsing
# ----------------------------------------------------------------------------------------


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Cheap check: a Part 10 file (``DICM`` at byte 128) or a bare data set starting with group 0008."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return _looks_like_bare_dataset(head)


def _looks_like_bare_dataset(head: bytes) -> bool:
    # A data set without preamble/meta (PS3.10 7.1 is then violated, but such files
    # exist): it starts with a little-endian (0008,xxxx) or (0002,xxxx) element tag.
    if len(head) < 8:
        return False
    little = head[0:2] in (b"\x08\x00", b"\x02\x00") and head[3] == 0
    big = head[0:2] in (b"\x00\x08", b"\x00\x02") and head[2] == 0
    return little or big


#: Value representation of the tags read by the fast getter (implicit VR files carry none).
_FAST_VR = {
    0x00080016: "UI", 0x00080018: "UI", 0x0020000D: "UI", 0x0020000E: "UI", 0x00200052: "UI",
    0x00080060: "CS", 0x00080070: "LO", 0x0008103E: "LO", 0x00100020: "LO", 0x00100010: "PN",
    0x00280004: "CS", 0x00080032: "TM", 0x00080033: "TM", 0x00080008: "CS",
    0x00200011: "IS", 0x00200013: "IS", 0x00200012: "IS", 0x00280008: "IS", 0x00200100: "IS",
    0x00180086: "IS",
    0x00200032: "DS", 0x00200037: "DS", 0x00280030: "DS", 0x00181164: "DS", 0x00281052: "DS",
    0x00281053: "DS", 0x00180050: "DS", 0x00180088: "DS", 0x00181120: "DS", 0x00180081: "DS",
    0x00181060: "DS",
    0x00280010: "US", 0x00280011: "US", 0x00280002: "US", 0x00280100: "US", 0x00280101: "US",
    0x00280103: "US", 0x00280006: "US", 0x0019100A: "US",
    0x00189087: "FD", 0x00189089: "FD", 0x00089208: "CS", 0x00080021: "DA", 0x00080031: "TM",
}
_STRING_VRS = {"UI", "CS", "LO", "SH", "PN", "TM", "DA", "DT", "LT", "ST", "AE", "UT"}


def _fast(ds: Any, tag: int) -> Any:
    """A tag's value, decoding the raw bytes of the few VRs used here directly.

    pydicom converts raw elements through its generic hook chain (~20-50 us each); this
    reader needs ~40 tags per file, so decoding them here halves header time. Anything
    unusual (already converted, unknown VR, odd bytes) goes through pydicom.
    """
    # Dataset._dict is pydicom's tag -> element mapping (private, stable since 1.x);
    # reading it directly avoids Tag() conversion per lookup. get_item is the fallback.
    store = getattr(ds, "_dict", None)
    elem = store.get(tag) if isinstance(store, dict) else ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    raw = getattr(elem, "is_raw", False)
    if not raw:
        return elem.value
    vr = elem.VR or _FAST_VR.get(tag)
    data = elem.value
    if data is None or vr is None:
        return ds[tag].value
    try:
        if vr in _STRING_VRS or vr in ("IS", "DS"):
            if vr in _TEXT_VRS and not isinstance(ds, _Lite) and max(data, default=0) >= 0x80:
                return ds[tag].value  # non-ASCII text: pydicom applies SpecificCharacterSet
            text = data.decode("latin-1").strip(" \x00")
            if vr in ("IS", "DS"):
                parts = [p.strip() for p in text.split("\\")] if text else []
                if not parts:
                    return None
                nums = [float(p) if vr == "DS" else int(float(p)) for p in parts]
                return nums[0] if len(nums) == 1 else nums
            if "\\" in text and vr in ("CS", "LO", "SH"):
                return text.split("\\")
            return text
        if vr == "US" and len(data) == 2:
            return int.from_bytes(data, "little" if elem.is_little_endian else "big")
        order = "<" if elem.is_little_endian else ">"
        if vr in ("US", "SS", "UL", "SL", "FD", "FL"):
            code = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FD": "d", "FL": "f"}[vr]
            vals = np.frombuffer(data, dtype=order + code).tolist()
            return vals[0] if len(vals) == 1 else (vals or None)
    except (ValueError, UnicodeDecodeError):
        pass
    return ds[tag].value


@functools.lru_cache(maxsize=None)
def _tag_of(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - programming error
        raise KeyError(keyword)
    return int(tag)


def _g(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` through :func:`_fast`."""
    value = _fast(ds, _tag_of(keyword))
    return default if value is None else value


def _num(value: Any, cast=float) -> Any:
    if value is None or value == "":
        return None
    try:
        return cast(value)
    except (TypeError, ValueError):
        return None


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        return None
    return vals


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]



# ----------------------------------------------------------------------------------------
# a small header parser for the common case
# ----------------------------------------------------------------------------------------

#: Explicit-VR value representations with a 4-byte length (PS3.5 7.1.2, Table 7.1-1).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_TEXT_VRS = {"LO", "SH", "PN", "LT", "ST", "UT", "UC"}
_DEFAULT_CHARSETS = {"", "ISO_IR 100", "ISO_IR 6", "ISO 2022 IR 6"}
#: Tags whose presence sends a file to pydicom: functional groups (enhanced multi-frame),
#: Siemens CSA/mosaic, DICOMDIR records, palette LUT data, ICC profiles.
_LITE_FALLBACK_TAGS = {0x52009229, 0x52009230, 0x0019100A, 0x00041220,
                       0x00281201, 0x00281202, 0x00281203, 0x00281221, 0x00282000}
_LITE_READ = 256 * 1024


class _Lite:
    """Just enough of a pydicom ``Dataset`` for :func:`_fast`: raw elements by tag."""

    def __init__(self, elems: dict[int, Any], file_meta: dict[str, str], implicit: bool) -> None:
        self._dict = elems
        self.file_meta = file_meta
        self.is_implicit_VR = implicit
        self.is_little_endian = True

    def __contains__(self, key: Any) -> bool:
        tag = key if isinstance(key, int) else _tag_of(key)
        return tag in self._dict

    def __getitem__(self, tag: int) -> Any:
        raise KeyError(tag)  # _fast's pydicom fallback: not available, value unreadable


class _LiteFallback(Exception):
    pass


def _check_fragments(path: str, offset: int, size: int) -> None:
    """Walk the items of encapsulated pixel data (PS3.5 A.4) to the sequence delimiter.

    Raises _FileProblem when the file ends first (a truncated compressed file).
    """
    with open(path, "rb") as fh:
        pos = offset
        while pos + 8 <= size:
            fh.seek(pos)
            head = fh.read(8)
            group, elem, length = struct.unpack("<HHI", head)
            if (group, elem) == (0xFFFE, 0xE0DD):
                return
            if (group, elem) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
                raise _FileProblem(f"corrupt encapsulated pixel data at byte {pos}: expected an item tag (FFFE,E000)")
            pos += 8 + length
    raise _FileProblem("truncated compressed pixel data: the file ends before the sequence delimiter (FFFE,E0DD)")


def _lite_parse(path: str, size: int) -> tuple[_Lite, int | None, int | None, bool] | None:
    """Parse a Part 10 file's header into raw elements, stopping at the pixel data.

    Returns ``(dataset, pixel_offset, pixel_length, has_pixels)`` or None when the file
    needs pydicom (no preamble, big endian, deflate, non-default character set,
    functional groups, mosaic, anything unexpected). ~10x faster than ``dcmread``
    because only the ~40 tags used here are kept and nothing is converted.
    """
    from pydicom.dataelem import RawDataElement

    with open(path, "rb") as fh:
        buf = fh.read(_LITE_READ if size > _LITE_READ else size)
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    end = len(buf)
    whole = end == size
    unpack = struct.unpack_from
    pos = 132
    meta: dict[str, str] = {}
    # file meta group 0002: always explicit VR little endian (PS3.10 7.1)
    while pos + 8 <= end:
        group, elem = unpack("<HH", buf, pos)
        if group != 0x0002:
            break
        vr = buf[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length, hdr = unpack("<I", buf, pos + 8)[0], 12
        else:
            length, hdr = unpack("<H", buf, pos + 6)[0], 8
        if elem in (0x0010, 0x0002):
            key = "TransferSyntaxUID" if elem == 0x0010 else "MediaStorageSOPClassUID"
            meta[key] = buf[pos + hdr:pos + hdr + length].decode("latin-1").strip(" \x00")
        pos += hdr + length
    ts = meta.get("TransferSyntaxUID", "")
    if not ts or ts in (_EXPLICIT_BE, _DEFLATED):
        return None
    implicit = ts == _IMPLICIT_LE
    elems: dict[int, Any] = {}
    wanted = _FAST_VR

    def element_header(p: int) -> tuple[int, bytes | None, int, int]:
        group, el = unpack("<HH", buf, p)
        tag = (group << 16) | el
        if implicit or group == 0xFFFE:
            return tag, None, unpack("<I", buf, p + 4)[0], 8
        vr = buf[p + 4:p + 6]
        if vr in _LONG_VRS:
            return tag, vr, unpack("<I", buf, p + 8)[0], 12
        return tag, vr, unpack("<H", buf, p + 6)[0], 8

    def skip_undefined(p: int) -> int:
        # items of an undefined-length sequence (PS3.5 7.5), or fragments of
        # encapsulated data, until the sequence delimiter (FFFE,E0DD)
        while True:
            if p + 8 > end:
                raise _LiteFallback
            tag, _, length, hdr = element_header(p)
            p += hdr
            if tag == 0xFFFEE0DD:
                return p
            if tag != 0xFFFEE000:
                raise _LiteFallback
            if length == 0xFFFFFFFF:
                p = skip_dataset(p, item=True)
            else:
                p += length

    def skip_dataset(p: int, item: bool) -> int:
        while True:
            if p + 8 > end:
                raise _LiteFallback
            tag, _, length, hdr = element_header(p)
            if tag == 0xFFFEE00D:  # item delimiter
                return p + hdr
            p += hdr
            p = skip_undefined(p) if length == 0xFFFFFFFF else p + length

    try:
        while pos + 8 <= end:
            group, el = unpack("<HH", buf, pos)
            tag = (group << 16) | el
            if implicit:
                vr, length, hdr = None, unpack("<I", buf, pos + 4)[0], 8
            else:
                vr = buf[pos + 4:pos + 6]
                if vr in _LONG_VRS:
                    length, hdr = unpack("<I", buf, pos + 8)[0], 12
                else:
                    length, hdr = unpack("<H", buf, pos + 6)[0], 8
            if tag in _LITE_FALLBACK_TAGS:
                return None
            if tag in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
                elems[tag] = RawDataElement(tag, vr.decode() if vr else None, length, None, pos + hdr,
                                            implicit, True, True, False)
                defined = length != 0xFFFFFFFF
                if not defined:
                    _check_fragments(path, pos + hdr, size)
                return _Lite(elems, meta, implicit), (pos + hdr if defined else None), (length if defined else None), True
            if tag == 0x00080005 and length:
                charset = buf[pos + hdr:pos + hdr + length].decode("latin-1").strip(" \x00")
                if charset not in _DEFAULT_CHARSETS:
                    return None
            if length == 0xFFFFFFFF:
                if tag in wanted:
                    return None
                pos = skip_undefined(pos + hdr)
                continue
            if tag in wanted:
                if pos + hdr + length > end:
                    raise _LiteFallback
                elems[tag] = RawDataElement(tag, vr.decode() if vr else None, length,
                                            bytes(buf[pos + hdr:pos + hdr + length]), pos + hdr,
                                            implicit, True, True, False)
            pos += hdr + length
    except (_LiteFallback, struct.error, UnicodeDecodeError):
        return None
    if not whole or pos != end:
        return None  # header longer than the first block, or trailing garbage: pydicom decides
    return _Lite(elems, meta, implicit), None, None, False


def _read_header(path: str) -> tuple[_FileHeader | None, Any, str | None]:
    """Parse one file's header. Returns ``(header, dataset, None)`` or ``(None, None, reason)``."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    notes: list[str] = []
    try:
        size = os.path.getsize(path)
        if size == 0:
            return None, None, "empty file"
        parsed = _lite_parse(path, size)
        if parsed is not None:
            lite, offset, length, has_pixels = parsed
            try:
                return _header_from_dataset(path, lite, size, notes, pixel_offset=offset,
                                            has_pixels=has_pixels), lite, None
            except _FileProblem as exc:
                return None, None, str(exc)
            except Exception:
                pass  # odd values: let pydicom read the file
        try:
            # Fast path: parse up to the pixel data, then find the pixel data at the end
            # of the file (where it is in almost every single-frame file) by checking
            # its element header; otherwise parse the whole file with deferred values.
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            hint = _pixel_data_at_end(path, ds, size)
            if hint is not None:
                try:
                    return _header_from_dataset(path, ds, size, notes, pixel_offset=hint), ds, None
                except _FileProblem as exc:
                    return None, None, str(exc)
            ds = pydicom.dcmread(path, defer_size=512)
        except InvalidDicomError:
            with open(path, "rb") as fh:
                head = fh.read(132)
            if not _looks_like_bare_dataset(head):
                return None, None, "not a DICOM file (no 'DICM' marker at byte 128)"
            ds = pydicom.dcmread(path, defer_size=512, force=True)
            notes.append("no DICOM file meta header (read as a bare data set)")
    except _FileProblem as exc:
        return None, None, str(exc)
    except (OSError, EOFError) as exc:
        return None, None, f"cannot read the file: {exc}"
    except Exception as exc:  # pydicom raises many kinds on corrupt input
        return None, None, f"corrupt or truncated DICOM: {type(exc).__name__}: {exc}"
    try:
        return _header_from_dataset(path, ds, size, notes), ds, None
    except _FileProblem as exc:
        return None, None, str(exc)
    except Exception as exc:
        return None, None, f"invalid DICOM values: {type(exc).__name__}: {exc}"


class _FileProblem(Exception):
    pass


def _pixel_data_at_end(path: str, ds: Any, size: int) -> int | None:
    """Offset of native (uncompressed) PixelData when it is the file's last element, else None.

    The element header just before ``size - length`` must read (7FE0,0010) with that
    exact length (PS3.5 7.1.2 explicit VR: tag, VR, 2 reserved bytes, 4-byte length;
    7.1.3 implicit VR: tag, 4-byte length), so a match cannot happen by accident.
    """
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if ts not in _UNCOMPRESSED:
        return None
    try:
        rows = int(_g(ds, "Rows") or 0)
        cols = int(_g(ds, "Columns") or 0)
        frames = int(_num(_g(ds, "NumberOfFrames"), int) or 1)
        spp = int(_g(ds, "SamplesPerPixel") or 1)
        bits = int(_g(ds, "BitsAllocated") or 0)
    except (TypeError, ValueError):
        return None
    if bits not in (8, 16, 32) or rows <= 0 or cols <= 0:
        return None
    length = rows * cols * frames * spp * bits // 8
    length += length & 1  # values are padded to an even length
    offset = size - length
    if offset < 12:
        return None
    with open(path, "rb") as fh:
        fh.seek(offset - 12)
        head = fh.read(12)
    if ts == _EXPLICIT_BE:
        ok = head[0:4] == b"\x7f\xe0\x00\x10" and head[4:6] in (b"OW", b"OB") and \
            int.from_bytes(head[8:12], "big") == length
    elif ts == _EXPLICIT_LE:
        ok = head[0:4] == b"\xe0\x7f\x10\x00" and head[4:6] in (b"OW", b"OB") and \
            int.from_bytes(head[8:12], "little") == length
    else:
        ok = head[4:8] == b"\xe0\x7f\x10\x00" and int.from_bytes(head[8:12], "little") == length
    return offset if ok else None


def _header_from_dataset(path: str, ds: Any, size: int, notes: list[str],
                         pixel_offset: int | None = None, has_pixels: bool | None = None) -> _FileHeader:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "") or _IMPLICIT_LE
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in (meta or {}):
        ts = _IMPLICIT_LE if ds.is_implicit_VR in (True, None) else (
            _EXPLICIT_LE if ds.is_little_endian in (True, None) else _EXPLICIT_BE)
    sop_class = str(_g(ds, "SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))
    if sop_class == _MEDIA_STORAGE_DIRECTORY or 0x00041220 in ds:
        raise _FileProblem("DICOMDIR (media directory): ignored, the files themselves are read")
    if "SOPClassUID" not in ds and "Modality" not in ds and "SeriesInstanceUID" not in ds:
        raise _FileProblem("no usable DICOM content (no SOPClassUID, Modality or SeriesInstanceUID): "
                           "truncated or corrupt file")
    series_uid = str(_g(ds, "SeriesInstanceUID", "") or "").strip()
    if not series_uid:
        # Anonymisers sometimes blank the UID; group by what else identifies a series.
        ident = "|".join(str(ds.get(k, "") or "") for k in (
            "StudyInstanceUID", "SeriesNumber", "Modality", "SeriesDescription", "FrameOfReferenceUID",
            "SeriesDate", "SeriesTime"))
        series_uid = f"noSeriesUID-{_short_hash(ident)}"
        notes.append(f"empty SeriesInstanceUID (0020,000E): grouped as '{series_uid}' by study, "
                     "series number, modality, description and frame of reference")
    pixel_tag = _PIXEL_DATA if pixel_offset is not None else None
    for tag in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
        if pixel_tag is None and tag in ds:
            pixel_tag = tag
            break
    lite = isinstance(ds, _Lite)
    rows = int(_num(_g(ds, "Rows"), int) or 0)
    cols = int(_num(_g(ds, "Columns"), int) or 0)
    nframes = int(_num(_g(ds, "NumberOfFrames"), int) or 1)
    spp = int(_num(_g(ds, "SamplesPerPixel"), int) or 1)
    bits_alloc = int(_num(_g(ds, "BitsAllocated"), int) or 0)
    offset = pixel_offset
    if pixel_tag is not None and (rows <= 0 or cols <= 0):
        raise _FileProblem(f"pixel data but Rows={rows}, Columns={cols}: the image size is unknown")
    if lite and offset is not None:
        expected = rows * cols * nframes * spp * bits_alloc // 8
        if offset + expected > size:
            raise _FileProblem(
                f"truncated pixel data: expected {expected} bytes at offset {offset}, "
                f"the file ends {size - offset} bytes after it")
        if ts not in _UNCOMPRESSED or bits_alloc not in (8, 16, 32, 64):
            offset = None
    if pixel_tag is not None and offset is None and not lite:
        # keep_deferred: the raw element (offset, length) without reading the pixels
        elem = ds.get_item(pixel_tag, keep_deferred=True)
        undefined = bool(getattr(elem, "is_undefined_length", False)) or getattr(elem, "length", 0) == 0xFFFFFFFF
        tell = getattr(elem, "value_tell", None)
        if tell is None:
            tell = getattr(elem, "file_tell", None)
        if ts in _UNCOMPRESSED and not undefined and tell is not None and bits_alloc in (8, 16, 32, 64):
            expected = rows * cols * nframes * spp * bits_alloc // 8
            if tell + expected > size:
                raise _FileProblem(
                    f"truncated pixel data: expected {expected} bytes at offset {tell}, "
                    f"the file ends {size - tell} bytes after it"
                )
            offset = int(tell)
    patient = str(_g(ds, "PatientID", "") or "") + "|" + str(_g(ds, "PatientName", "") or "")
    return _FileHeader(
        path=path,
        transfer_syntax=ts,
        sop_class_uid=sop_class,
        sop_instance_uid=str(_g(ds, "SOPInstanceUID", "") or _short_hash(path)),
        series_uid=series_uid,
        study_uid=str(_g(ds, "StudyInstanceUID", "") or ""),
        frame_of_reference_uid=str(_g(ds, "FrameOfReferenceUID", "") or ""),
        modality=str(_g(ds, "Modality", "") or ""),
        manufacturer=str(_g(ds, "Manufacturer", "") or ""),
        description=str(_g(ds, "SeriesDescription", "") or ""),
        series_number=_num(_g(ds, "SeriesNumber"), int),
        patient_key=_short_hash(patient),
        study_key=str(_g(ds, "StudyInstanceUID", "") or ""),
        photometric=str(_g(ds, "PhotometricInterpretation", "") or ""),
        samples_per_pixel=spp,
        planar_configuration=int(_num(_g(ds, "PlanarConfiguration"), int) or 0),
        bits_allocated=bits_alloc,
        bits_stored=int(_num(_g(ds, "BitsStored"), int) or bits_alloc),
        pixel_representation=int(_num(_g(ds, "PixelRepresentation"), int) or 0),
        num_frames=nframes,
        rows=rows,
        columns=cols,
        pixel_offset=offset,
        pixel_tag=pixel_tag,
        has_pixels=pixel_tag is not None,
        instance_number=_num(_g(ds, "InstanceNumber"), int),
        acquisition_number=_num(_g(ds, "AcquisitionNumber"), int),
        slice_thickness=_num(_g(ds, "SliceThickness")),
        spacing_between_slices=_num(_g(ds, "SpacingBetweenSlices")),
        gantry_tilt=_num(_g(ds, "GantryDetectorTilt")),
        notes=notes,
    )


def _first_item(ds: Any, keyword: str) -> Any:
    seq = ds.get(keyword) if ds is not None else None
    if seq:
        try:
            return seq[0]
        except (IndexError, TypeError):
            return None
    return None


def _fg_value(per_frame: Any, shared: Any, seq_keyword: str, keyword: str) -> Any:
    """Look a value up in a per-frame functional group, then in the shared one (PS3.3 C.7.6.16)."""
    for group in (per_frame, shared):
        item = _first_item(group, seq_keyword)
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


def _image_type_tail(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    vals = [value] if isinstance(value, str) else list(value)
    # ORIGINAL/DERIVED and PRIMARY/SECONDARY (values 1, 2) do not change the contrast.
    return tuple(str(v).upper() for v in vals[2:] if str(v).upper() not in ("", "NONE", "MOSAIC", "NORM", "DIS2D", "DIS3D", "ND"))


def _frames_from_file(h: _FileHeader, ds: Any) -> list[_Frame]:
    """Split a file into 2D frames with their geometry and volume keys."""
    file_keys = {
        "acquisition_number": h.acquisition_number,
        "temporal_position": _num(_g(ds, "TemporalPositionIdentifier"), int),
        "trigger_time": _num(_g(ds, "TriggerTime")),
        "echo_number": _num(_first_or_value(_g(ds, "EchoNumbers")), int),
        "echo_time": _num(_g(ds, "EchoTime")),
        "b_value": _num(_g(ds, "DiffusionBValue")),
        "gradient": _floats(_g(ds, "DiffusionGradientOrientation"), 3),
        "instance_number": h.instance_number,
        "acquisition_time": str(_g(ds, "AcquisitionTime", "") or "") or None,
        "content_time": str(_g(ds, "ContentTime", "") or "") or None,
    }
    contrast_file = (_image_type_tail(_g(ds, "ImageType")), str(_g(ds, "ComplexImageComponent", "") or ""))
    slope = _num(_g(ds, "RescaleSlope"))
    intercept = _num(_g(ds, "RescaleIntercept"))
    slope = 1.0 if slope is None or slope == 0 else slope
    intercept = 0.0 if intercept is None else intercept
    ipp = _checked_floats(ds, "ImagePositionPatient", 3)
    iop = _checked_floats(ds, "ImageOrientationPatient", 6)
    ps = _checked_floats(ds, "PixelSpacing", 2) or _floats(_g(ds, "ImagerPixelSpacing"), 2)

    per_frame_seq = _g(ds, "PerFrameFunctionalGroupsSequence")
    if per_frame_seq is not None and h.num_frames >= 1:
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        frames = []
        if len(per_frame_seq) != h.num_frames:
            raise _FileProblem(
                f"PerFrameFunctionalGroupsSequence has {len(per_frame_seq)} items for "
                f"NumberOfFrames={h.num_frames}"
            )
        for f, pf in enumerate(per_frame_seq):
            f_ipp = _floats(_fg_value(pf, shared, "PlanePositionSequence", "ImagePositionPatient"), 3)
            f_iop = _floats(_fg_value(pf, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
            f_ps = _floats(_fg_value(pf, shared, "PixelMeasuresSequence", "PixelSpacing"), 2)
            f_slope = _num(_fg_value(pf, shared, "PixelValueTransformationSequence", "RescaleSlope"))
            f_inter = _num(_fg_value(pf, shared, "PixelValueTransformationSequence", "RescaleIntercept"))
            content = _first_item(pf, "FrameContentSequence")
            ftype = None
            cplx = ""
            for group in (pf, shared):
                if group is None:
                    continue
                for elem in group:
                    if elem.keyword.endswith("FrameTypeSequence") and elem.value:
                        ftype = elem.value[0].get("FrameType")
                        cplx = str(elem.value[0].get("ComplexImageComponent", "") or "")
                        break
                if ftype is not None:
                    break
            keys = dict(file_keys)
            keys.update(
                temporal_position=_num(content.get("TemporalPositionIndex"), int) if content else None,
                stack=str(content.get("StackID", "")) if content else None,
                frame_time=str(content.get("FrameAcquisitionDateTime", "") or "") or None if content else None,
                echo_time=_num(_fg_value(pf, shared, "MREchoSequence", "EffectiveEchoTime")),
                b_value=_num(_fg_value(pf, shared, "MRDiffusionSequence", "DiffusionBValue")),
                trigger_time=_num(_fg_value(pf, shared, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime")),
                file=(h.acquisition_number, h.instance_number, h.path),
            )
            diff = _first_item(pf, "MRDiffusionSequence")
            if diff is not None:
                keys["gradient"] = _floats(_fg_value(diff, None, "DiffusionGradientDirectionSequence", "DiffusionGradientOrientation"), 3)
            frames.append(
                _Frame(
                    header=h, frame=f, ipp=None if f_ipp is None else np.asarray(f_ipp),
                    iop=f_iop or iop, pixel_spacing=f_ps or ps, rows=h.rows, columns=h.columns,
                    slope=1.0 if not f_slope else f_slope,
                    intercept=0.0 if f_inter is None else f_inter,
                    contrast=(_image_type_tail(ftype) if ftype is not None else contrast_file[0], cplx or contrast_file[1]),
                    keys=keys,
                )
            )
        return frames

    n_mosaic = _num(_fast(ds, 0x0019100A), int)
    image_type = [str(v).upper() for v in (_g(ds, "ImageType") or [])]
    if n_mosaic and n_mosaic > 1 and "MOSAIC" in image_type and h.num_frames == 1:
        return _mosaic_frames(h, ds, n_mosaic, ipp, iop, ps, slope, intercept, contrast_file, file_keys)

    if h.num_frames > 1:
        # Multi-frame without functional groups (e.g. NM, US, legacy MR): frames share
        # one geometry; only a stack along the normal is assembled when the file gives
        # the spacing (SpacingBetweenSlices), otherwise frames are kept as volumes.
        step = h.spacing_between_slices
        frames = []
        for f in range(h.num_frames):
            f_ipp = None
            if ipp is not None and iop is not None and step:
                n = np.cross(iop[:3], iop[3:])
                f_ipp = np.asarray(ipp) + f * step * n
            keys = dict(file_keys, file=(h.acquisition_number, h.instance_number, h.path), frame_index=f)
            frames.append(_Frame(h, f, f_ipp, iop, ps, h.rows, h.columns, slope, intercept, contrast_file, keys))
        return frames
    keys = dict(file_keys)
    return [_Frame(h, 0, None if ipp is None else np.asarray(ipp), iop, ps, h.rows, h.columns,
                   slope, intercept, contrast_file, keys)]


def _checked_floats(ds: Any, keyword: str, n: int) -> tuple[float, ...] | None:
    """A geometry attribute as ``n`` floats; present but unreadable is a file problem."""
    raw = _g(ds, keyword)
    if raw is None or raw == "" or raw == []:
        return None
    vals = _floats(raw, n)
    if vals is None:
        shown = raw if not isinstance(raw, bytes) else raw[:40]
        raise _FileProblem(f"invalid {keyword} value {shown!r}: expected {n} numbers (wrong VR or corrupt value)")
    return vals


def _first_or_value(v: Any) -> Any:
    if v is None or isinstance(v, (str, bytes, int, float)):
        return v
    try:
        return v[0]
    except (TypeError, IndexError):
        return v


def _mosaic_frames(h, ds, n, ipp, iop, ps, slope, intercept, contrast, file_keys) -> list[_Frame]:
    """Siemens mosaic: one file holds ``n`` slices as tiles of one 2D image.

    The tiles form an ``m x m`` grid (``m = ceil(sqrt(n))``). ImagePositionPatient of a
    mosaic refers to the top-left corner of the whole mosaic as if it were one large
    slice; the first tile's true position is shifted by half the difference between the
    mosaic and tile sizes along the row and column directions. Slices are stored in the
    order of the CSA header's SliceNormalVector; their spacing is SpacingBetweenSlices.
    """
    if ipp is None or iop is None or ps is None:
        raise _FileProblem("Siemens mosaic without ImagePositionPatient/ImageOrientationPatient/PixelSpacing")
    m = int(math.ceil(math.sqrt(n)))
    if h.rows % m or h.columns % m:
        raise _FileProblem(f"Siemens mosaic of {n} images but {h.rows}x{h.columns} pixels is not a {m}x{m} grid")
    th, tw = h.rows // m, h.columns // m
    r = np.asarray(iop[:3])
    c = np.asarray(iop[3:])
    normal = np.cross(r, c)
    csa_normal = None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nibabel.nicom import csareader

        csa = csareader.get_csa_header(ds, "image")
        if csa is not None:
            v = csareader.get_slice_normal(csa)
            if v is not None:
                csa_normal = np.asarray(v, dtype=float)
    except Exception:  # pragma: no cover - CSA is private and sometimes malformed
        csa_normal = None
    if csa_normal is not None and np.dot(csa_normal, normal) < 0:
        normal = -normal
    step = h.spacing_between_slices or h.slice_thickness
    if not step:
        raise _FileProblem("Siemens mosaic without SpacingBetweenSlices: the slice spacing is unknown")
    row_spacing, col_spacing = ps
    first = (np.asarray(ipp) + r * col_spacing * (h.columns - tw) / 2.0
             + c * row_spacing * (h.rows - th) / 2.0)
    keys = dict(file_keys, file=(h.acquisition_number, h.instance_number, h.path))
    return [
        _Frame(h, t, first + t * step * normal, iop, ps, th, tw, slope, intercept, contrast, dict(keys), mosaic=n)
        for t in range(n)
    ]


# ----------------------------------------------------------------------------------------
# discovery
# ----------------------------------------------------------------------------------------


def _iter_files(root: Path) -> Iterator[str]:
    if root.is_file():
        yield str(root)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            yield os.path.join(dirpath, name)


def find_series(
    root: str | os.PathLike,
    *,
    validate: bool = True,
    progress: bool = False,
) -> DicomScan:
    """Find every DICOM series under ``root`` (a folder tree or one file).

    Args:
        root: folder (searched recursively; any file names) or a single file.
        validate: check each image series' geometry with the default options and fill
            ``status``/``error`` (cheap: positions only, no pixel data is read).
        progress: print a line every 500 files (for very large folders).

    Returns:
        A :class:`DicomScan`: image series (``scan.series``, also by iterating),
        non-image objects (``scan.non_image``) and ``scan.unreadable`` ``(path, reason)``.

    Raises:
        DicomError: ``root`` does not exist.
    """
    t0 = time.perf_counter()
    rootp = Path(root)
    if not rootp.exists():
        raise DicomError(f"DICOM input not found: '{rootp}'", hint="check the path")
    scan = DicomScan(root=str(rootp))
    frames_by_uid: dict[str, list[_Frame]] = defaultdict(list)
    non_image: dict[str, list[_FileHeader]] = defaultdict(list)
    seen_frames: set[tuple[str, int]] = set()
    for n, path in enumerate(_iter_files(rootp), 1):
        scan.num_files += 1
        if progress and n % 500 == 0:
            print(f"  scanned {n} files ...", flush=True)
        if os.path.basename(path).upper() == "DICOMDIR":
            scan.warnings.append(f"{path}: DICOMDIR ignored (every file is scanned directly)")
            continue
        header, ds, reason = _read_header(path)
        if header is None:
            scan.unreadable.append((path, reason or "unknown problem"))
            continue
        for note in header.notes:
            scan.warnings.append(f"{path}: {note}")
        if _is_non_image(header):
            non_image[header.series_uid].append(header)
            continue
        if not header.has_pixels:
            scan.unreadable.append((path, "image object without pixel data (7FE0,0010)"))
            continue
        try:
            frames = _frames_from_file(header, ds)
        except _FileProblem as exc:
            scan.unreadable.append((path, str(exc)))
            continue
        except Exception as exc:
            scan.unreadable.append((path, f"invalid DICOM values: {type(exc).__name__}: {exc}"))
            continue
        key = (header.sop_instance_uid, 0)
        if key in seen_frames and header.sop_instance_uid:
            scan.unreadable.append((path, f"duplicate of SOPInstanceUID {header.sop_instance_uid} already read: skipped"))
            continue
        seen_frames.add(key)
        frames_by_uid[header.series_uid].extend(frames)

    patients: dict[str, int] = {}
    studies: dict[str, int] = {}
    for uid, frames in frames_by_uid.items():
        scan.series.extend(_split_series(uid, frames))
    for uid, headers in non_image.items():
        h = headers[0]
        scan.non_image.append(
            SeriesInfo(
                key=uid, series_instance_uid=uid, description=h.description, modality=h.modality,
                manufacturer=h.manufacturer, series_number=h.series_number,
                study_instance_uid=h.study_uid, frame_of_reference_uid=h.frame_of_reference_uid,
                sop_class_uid=h.sop_class_uid,
                transfer_syntaxes=tuple(sorted({x.transfer_syntax for x in headers})),
                files=[x.path for x in headers], frames=[(x.path, 0) for x in headers],
                sop_instance_uids=[x.sop_instance_uid for x in headers],
                is_image=False, status="non-image",
                error=f"{_sop_class_name(h.sop_class_uid)} ({h.modality}): listed, not read as an image",
            )
        )
    scan.series.sort(key=lambda s: (s.study_instance_uid, s.series_number if s.series_number is not None else 1 << 30, s.key))
    for s in scan.series + scan.non_image:
        hdr = s._frames[0].header if s._frames else None
        pkey = hdr.patient_key if hdr else "?"
        patients.setdefault(pkey, len(patients) + 1)
        studies.setdefault(s.study_instance_uid, len(studies) + 1)
        s.patient_index = patients[pkey]
        s.study_index = studies[s.study_instance_uid]
    if validate:
        for s in scan.series:
            try:
                plan = _plan_geometry(s, _Options())
                s.shape, s.spacing = plan.shape, plan.spacing
                s.num_volumes, s.volume_labels = len(plan.order), list(plan.volume_labels)
            except DicomSeriesError as exc:
                s.status, s.error = "error", exc.message
    scan.seconds = time.perf_counter() - t0
    return scan


def _sop_class_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        return UID(uid).name or uid
    except Exception:  # pragma: no cover
        return uid


def _is_non_image(h: _FileHeader) -> bool:
    if h.modality.upper() in _NON_IMAGE_MODALITIES:
        return True
    name = _sop_class_name(h.sop_class_uid).lower()
    if any(w in name for w in ("structured report", " sr ", "presentation state", "segmentation",
                               "rt structure", "rt plan", "rt dose", "key object", "encapsulated",
                               "registration", "waveform", "raw data", "spectroscopy")):
        return True
    return not h.has_pixels and ("sr" in name or h.rows == 0)


def _round_tuple(v: Sequence[float] | None, nd: int) -> tuple | None:
    return None if v is None else tuple(round(float(x), nd) + 0.0 for x in v)


def _split_series(uid: str, frames: list[_Frame]) -> list[SeriesInfo]:
    """Split one SeriesInstanceUID into volume groups by geometry, then by contrast."""
    groups: dict[tuple, list[_Frame]] = defaultdict(list)
    for fr in frames:
        geo = (fr.rows, fr.columns, _round_tuple(fr.iop, 4), _round_tuple(fr.pixel_spacing, 4),
               fr.header.samples_per_pixel, fr.mosaic > 0)
        groups[(geo, fr.contrast)].append(fr)
    ordered = sorted(groups.values(), key=lambda fs: min((f.header.instance_number or 0, f.path, f.frame) for f in fs))
    geo_count = len({k[0] for k in groups})
    out = []
    for n, fs in enumerate(ordered, 1):
        h = fs[0].header
        split = None
        if len(ordered) > 1:
            split = (f"group {n} of {len(ordered)} of this SeriesInstanceUID "
                     + ("(differs in orientation, matrix size or pixel spacing)" if geo_count > 1
                        else "(differs in image/frame type or complex component)"))
        info = SeriesInfo(
            key=uid if len(ordered) == 1 else f"{uid}#{n}",
            series_instance_uid=uid, description=h.description, modality=h.modality,
            manufacturer=h.manufacturer, series_number=h.series_number,
            study_instance_uid=h.study_uid, frame_of_reference_uid=h.frame_of_reference_uid,
            sop_class_uid=h.sop_class_uid,
            transfer_syntaxes=tuple(sorted({f.header.transfer_syntax for f in fs})),
            orientation=fs[0].iop, split=split,
        )
        _set_frames(info, sorted(fs, key=lambda f: (f.header.instance_number or 0, f.path, f.frame)))
        out.append(info)
    return out


def _set_frames(info: SeriesInfo, frames: list[_Frame]) -> None:
    info._frames = frames
    info.frames = [(f.path, f.frame) for f in frames]
    info.sop_instance_uids = [f.header.sop_instance_uid for f in frames]
    seen: dict[str, None] = {}
    for f in frames:
        seen.setdefault(f.path, None)
    info.files = list(seen)


# ----------------------------------------------------------------------------------------
# geometry: sort, split volumes, validate
# ----------------------------------------------------------------------------------------


@dataclass
class _Options:
    gantry_tilt: str = "error"  # error | shear | resample
    uneven_spacing: str = "error"  # error | resample
    min_slices: int = 1


@dataclass
class _Plan:
    order: list[list[_Frame]]  # [volume][slice]
    affine_lps: np.ndarray  # of the output grid
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    positions: np.ndarray  # (K,) projections of the source slices on the normal (mm)
    resample_positions: np.ndarray | None = None  # target positions for uneven spacing
    tilt_shift: np.ndarray | None = None  # (2,) in-plane shift per slice (voxels i, j) for tilt resampling
    tilt_deg: float = 0.0
    volume_labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_VOLUME_KEYS = (
    "temporal_position", "trigger_time", "acquisition_number", "echo_number", "echo_time",
    "diffusion", "stack", "file", "frame_index", "frame_time", "acquisition_time", "content_time",
)


def _key_value(fr: _Frame, key: str) -> Any:
    if key == "diffusion":
        b = fr.keys.get("b_value")
        g = fr.keys.get("gradient")
        if b is None and g is None:
            return None
        return (b if b is not None else -1.0, tuple(g) if g is not None else ())
    return fr.keys.get(key)


def _fmt_files(frames: Iterable[_Frame], limit: int = 6) -> str:
    per_path: dict[str, list[int]] = {}
    for f in frames:
        per_path.setdefault(f.path, []).append(f.frame + 1)
    names = []
    for path, fr in per_path.items():
        multi = per_path and (fr[0] != 1 or len(fr) > 1)
        if not multi:
            names.append(path)
        elif len(fr) <= 3:
            names.append(f"{path} [frame {', '.join(str(x) for x in fr)}]")
        else:
            names.append(f"{path} [{len(fr)} frames]")
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _series_error(info: SeriesInfo, problem: str, frames: Iterable[_Frame] = (), hint: str | None = None) -> DicomSeriesError:
    frames = list(frames)
    where = f"DICOM series {info.key} ('{info.description}', {info.num_files} files)"
    files = _fmt_files(frames) if frames else ""
    msg = f"{where}: {problem}" + (f"; files: {files}" if files else "")
    return DicomSeriesError(msg, series_uid=info.series_instance_uid,
                            files=sorted({f.path for f in frames}) or list(info.files), hint=hint)


def _plan_geometry(info: SeriesInfo, opt: _Options) -> _Plan:
    frames = info._frames
    if not frames:
        raise _series_error(info, "no image frames")
    f0 = frames[0]
    if f0.iop is None or f0.ipp is None or any(f.ipp is None for f in frames):
        missing = [f for f in frames if f.ipp is None or f.iop is None]
        if len(frames) == 1:
            return _plan_2d(info, f0)
        raise _series_error(
            info, "ImagePositionPatient/ImageOrientationPatient missing: the slices cannot be placed in space",
            missing, hint="read the files one at a time (read_dicom(file)) to get 2D images")
    if f0.pixel_spacing is None:
        raise _series_error(info, "PixelSpacing (0028,0030) missing", frames[:1])
    r = np.asarray(f0.iop[:3], dtype=float)
    c = np.asarray(f0.iop[3:], dtype=float)
    if abs(np.linalg.norm(r) - 1) > 1e-2 or abs(np.linalg.norm(c) - 1) > 1e-2 or abs(np.dot(r, c)) > 1e-2:
        raise _series_error(info, f"ImageOrientationPatient {list(f0.iop)} is not two orthogonal unit vectors", frames[:1])
    r /= np.linalg.norm(r)
    c /= np.linalg.norm(c)
    normal = np.cross(r, c)
    normal /= np.linalg.norm(normal)
    row_spacing, col_spacing = f0.pixel_spacing  # PS3.3 C.7.6.2.1.1: [between rows, between columns]
    ipps = np.stack([f.ipp for f in frames])
    d = ipps @ normal  # projection on the slice normal, PS3.3 C.7.6.2.1.1
    order = np.argsort(d, kind="stable")
    d_sorted = d[order]
    # cluster equal positions
    cluster_start = np.concatenate([[True], np.diff(d_sorted) > _POSITION_TOL_MM])
    cluster_id = np.cumsum(cluster_start) - 1
    n_pos = int(cluster_id[-1]) + 1
    counts = np.bincount(cluster_id)
    clusters: list[list[_Frame]] = [[] for _ in range(n_pos)]
    for idx, cid in zip(order, cluster_id):
        clusters[cid].append(frames[idx])
    positions = np.array([d_sorted[cluster_start][i] for i in range(n_pos)])
    labels: list[str] = []
    if counts.max() > 1:
        if counts.min() != counts.max():
            bad = [i for i in range(n_pos) if counts[i] != np.median(counts)]
            example = clusters[bad[0]]
            raise _series_error(
                info,
                f"duplicate or missing slices: slice positions hold between {counts.min()} and "
                f"{counts.max()} images each (expected the same number at every position); "
                f"position {positions[bad[0]]:.3f} mm along the normal has {len(example)}",
                example, hint="remove duplicate files, or check that the series is complete")
        nvol = int(counts[0])
        key = _choose_volume_key(clusters)
        if key is None:
            raise _series_error(
                info,
                f"duplicate positions: {nvol} images at each of {n_pos} positions and no tag "
                "(temporal position, trigger time, acquisition number, echo, b-value) tells them apart",
                clusters[0], hint="remove duplicate copies of the files, or pass the files of one volume")
        vols: list[list[_Frame]] = [[] for _ in range(nvol)]
        for cl in clusters:
            for v, fr in enumerate(sorted(cl, key=lambda f: _sortable(_key_value(f, key)))):
                vols[v].append(fr)
        labels = [f"{key}={_key_value(v[0], key) if key != 'file' else os.path.basename(v[0].path)}" for v in vols]
    else:
        vols = [[cl[0] for cl in clusters]]
    ref = vols[0]
    # orientation consistency (geometry groups were split on rounded values; check exactly)
    iops = np.array([f.iop for f in ref], dtype=float)
    off = np.abs(iops - iops[0]).max(axis=1)
    if off.max() > 1e-3:
        raise _series_error(info, "mixed orientations inside the series", [f0, ref[int(off.argmax())]])
    k = len(ref)
    if k < opt.min_slices:
        raise _series_error(info, f"too few slices: {k} (at least {opt.min_slices} required)", ref)
    plan_notes: list[str] = []
    ipp_sorted = np.stack([f.ipp for f in ref])
    origin = ipp_sorted[0]
    step_vec = normal * _single_slice_step(ref[0].header)
    tilt_shift = None
    tilt_deg = 0.0
    resample_positions = None
    if k > 1:
        steps = np.diff(positions)
        total = ipp_sorted[-1] - ipp_sorted[0]
        along = float(total @ normal)
        inplane = total - along * normal
        # all slice origins must lie on one straight line (PS3.3 C.7.6.2.1.1)
        frac = (positions - positions[0]) / along
        expected = ipp_sorted[0] + frac[:, None] * total[None, :]
        resid = np.linalg.norm(ipp_sorted - expected, axis=1)
        if resid.max() > max(0.05, 0.01 * abs(along) / (k - 1)):
            worst = int(resid.argmax())
            raise _series_error(
                info,
                f"slice positions are not on a straight line (slice {worst} is {resid.max():.3f} mm off "
                "the line from the first to the last slice): the series is not one regular stack",
                [ref[0], ref[worst], ref[-1]])
        tilted = np.linalg.norm(inplane) > max(0.01, 1e-4 * abs(along))
        if tilted:
            tilt_deg = float(np.degrees(np.arctan2(np.linalg.norm(inplane), abs(along))))
            if opt.gantry_tilt == "error":
                tag = f" (GantryDetectorTilt {ref[0].header.gantry_tilt} deg)" if ref[0].header.gantry_tilt else ""
                raise _series_error(
                    info,
                    f"gantry tilt: slice positions move {np.linalg.norm(inplane) / (k - 1):.3f} mm in-plane per "
                    f"slice, {tilt_deg:.2f} degrees off the slice normal{tag}",
                    [ref[0], ref[-1]],
                    hint="pass gantry_tilt='shear' (exact sheared affine, no resampling) or "
                         "gantry_tilt='resample' (orthogonal grid, linear interpolation in-plane)")
        med = float(np.median(steps))
        tol = max(0.01, 0.01 * med)
        uneven = float(np.max(np.abs(steps - med))) > tol
        if uneven:
            i_min, i_max = int(steps.argmin()), int(steps.argmax())
            ratio = steps / med
            gaps = np.where((np.abs(ratio - np.round(ratio)) < 0.05) & (np.round(ratio) >= 2))[0]
            if steps.min() <= 0:
                problem = "duplicate slice positions"
            elif len(gaps):
                missing = int(np.sum(np.round(ratio[gaps]) - 1))
                problem = (f"missing slices: {missing} slice(s) missing (gap of {steps[gaps[0]]:.3f} mm "
                           f"where the spacing is {med:.3f} mm, between slices {gaps[0]} and {gaps[0] + 1})")
            else:
                problem = (f"non-uniform slice spacing: steps between {steps.min():.4f} mm (slices "
                           f"{i_min}-{i_min + 1}) and {steps.max():.4f} mm (slices {i_max}-{i_max + 1})")
            if opt.uneven_spacing == "error":
                fr_list = [ref[i_min], ref[i_min + 1], ref[i_max], ref[i_max + 1]] if not len(gaps) else [ref[gaps[0]], ref[gaps[0] + 1]]
                raise _series_error(info, problem, fr_list,
                                    hint="pass uneven_spacing='resample' to interpolate onto a uniform "
                                         f"grid at the median spacing ({med:.3f} mm)")
            if steps.min() <= 0:
                raise _series_error(info, problem, ref)
            n_new = int(round((positions[-1] - positions[0]) / med)) + 1
            resample_positions = np.linspace(positions[0], positions[-1], n_new)
            plan_notes.append(f"resampled along the slice axis to a uniform {along / (n_new - 1):.4f} mm: {problem}")
            k = n_new
        step_vec = total / (k - 1)
        if tilted and opt.gantry_tilt == "resample":
            # in-plane shift per slice, in voxels along i (row cosine) and j (column cosine)
            per_slice = inplane / (k - 1)
            tilt_shift = np.array([per_slice @ r / col_spacing, per_slice @ c / row_spacing])
            step_vec = normal * along / (k - 1)
            plan_notes.append(f"gantry tilt {tilt_deg:.2f} deg resampled onto an orthogonal grid")
        elif tilted:
            plan_notes.append(f"gantry tilt {tilt_deg:.2f} deg kept as a sheared affine")
    aff = np.eye(4)
    aff[:3, 0] = r * col_spacing
    aff[:3, 1] = c * row_spacing
    aff[:3, 2] = step_vec
    aff[:3, 3] = origin
    shape = (int(f0.columns), int(f0.rows), int(k))
    spacing = (float(col_spacing), float(row_spacing), float(np.linalg.norm(step_vec)))
    return _Plan(order=vols, affine_lps=aff, shape=shape, spacing=spacing, positions=positions,
                 resample_positions=resample_positions, tilt_shift=tilt_shift, tilt_deg=tilt_deg,
                 volume_labels=labels, notes=plan_notes)


def _single_slice_step(h: _FileHeader) -> float:
    # One slice has no second position; the k column then only scales a unit index
    # that no voxel centre uses. SpacingBetweenSlices, else SliceThickness, else 1 mm.
    return float(h.spacing_between_slices or h.slice_thickness or 1.0)


def _plan_2d(info: SeriesInfo, f: _Frame) -> _Plan:
    """A single slice without patient geometry (DX, CR, SC, US): pixel grid only."""
    ps = f.pixel_spacing or (1.0, 1.0)
    aff = np.diag([ps[1], ps[0], 1.0, 1.0])
    return _Plan(order=[[f]], affine_lps=aff, shape=(f.columns, f.rows, 1), spacing=(ps[1], ps[0], 1.0),
                 positions=np.zeros(1), notes=["no ImagePositionPatient/ImageOrientationPatient: pixel-grid affine"])


def _sortable(v: Any) -> tuple:
    if v is None:
        return (1, "")
    return (0, v)


def _choose_volume_key(clusters: list[list[_Frame]]) -> str | None:
    """The first tag whose values differ between all images at each position."""
    for key in _VOLUME_KEYS:
        ok = True
        for cl in clusters:
            vals = [_key_value(f, key) for f in cl]
            if any(v is None for v in vals) or len(set(vals)) != len(vals):
                ok = False
                break
        if ok:
            return key
    return None


# ----------------------------------------------------------------------------------------
# pixel decoding
# ----------------------------------------------------------------------------------------


def _np_dtype(h: _FileHeader) -> np.dtype:
    if h.pixel_tag == _FLOAT_PIXEL_DATA:
        base = "f4"
    elif h.pixel_tag == _DOUBLE_PIXEL_DATA:
        base = "f8"
    else:
        kind = "i" if h.pixel_representation == 1 else "u"
        base = f"{kind}{h.bits_allocated // 8}"
    order = ">" if h.transfer_syntax == _EXPLICIT_BE else "<"
    return np.dtype(order + base)


def _fast_path(h: _FileHeader) -> bool:
    return (h.pixel_offset is not None and h.samples_per_pixel == 1
            and h.bits_allocated in (8, 16, 32) and h.photometric.startswith("MONOCHROME"))


class _Decoder:
    """Decodes frames, caching the last decoded compressed file (multi-frame, mosaic)."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._arr: np.ndarray | None = None

    def frame(self, fr: _Frame) -> np.ndarray:
        """The frame's pixels as ``(rows, columns)`` or ``(rows, columns, samples)``."""
        h = fr.header
        if fr.mosaic:
            full = self._whole(h)
            m = int(math.ceil(math.sqrt(fr.mosaic)))
            th, tw = fr.rows, fr.columns
            tr, tc = divmod(fr.frame, m)
            return full[tr * th:(tr + 1) * th, tc * tw:(tc + 1) * tw]
        if _fast_path(h):
            dt = _np_dtype(h)
            count = h.rows * h.columns
            arr = np.fromfile(h.path, dtype=dt, count=count, offset=h.pixel_offset + fr.frame * count * dt.itemsize)
            if arr.size != count:
                raise DicomError(f"truncated pixel data in '{h.path}' (frame {fr.frame + 1})")
            return arr.reshape(h.rows, h.columns)
        full = self._whole(h)
        return full[fr.frame] if h.num_frames > 1 else full

    def _whole(self, h: _FileHeader) -> np.ndarray:
        if self._path != h.path:
            self._arr = _decode_with_pydicom(h)
            self._path = h.path
        assert self._arr is not None
        return self._arr


def _decode_with_pydicom(h: _FileHeader) -> np.ndarray:
    pydicom = _pydicom()
    ds = pydicom.dcmread(h.path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = h.transfer_syntax
    try:
        arr = ds.pixel_array
    except Exception as exc:
        from pydicom.uid import UID

        name = UID(h.transfer_syntax).name
        text = str(exc)
        if isinstance(exc, (NotImplementedError, RuntimeError, ImportError)) and (
            "plugin" in text.lower() or "decod" in text.lower() or "missing" in text.lower() or "handler" in text.lower()
        ):
            raise MissingDependencyError(
                f"cannot decode '{h.path}': transfer syntax {name} ({h.transfer_syntax}) needs a codec "
                f"that is not installed ({type(exc).__name__}: {text.splitlines()[0] if text else ''})",
                hint=_DICOM_EXTRA_HINT,
            ) from exc
        raise DicomError(f"cannot decode the pixel data of '{h.path}' ({name}): {type(exc).__name__}: {exc}") from exc
    if h.photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    return arr


# ----------------------------------------------------------------------------------------
# assembly
# ----------------------------------------------------------------------------------------


def _int_dtype_for(lo: float, hi: float) -> np.dtype | None:
    for dt in (np.int16, np.int32, np.int64):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return None


def _apply_rescale(vol: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """Apply the modality LUT (PS3.3 C.11.1.1.2: out = slope * stored + intercept).

    ``vol`` is ``(K, rows, cols)`` stored values (modified in place when the result fits
    its dtype). Integers stay integers (smallest int dtype holding the range) when every
    slope and intercept is integral; otherwise float32.
    """
    uniform = bool(np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]))
    integral = bool(np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts)))
    if uniform and slopes[0] == 1 and intercepts[0] == 0:
        if vol.dtype == np.uint16 or vol.dtype == np.uint32:
            hi = int(vol.max()) if vol.size else 0
            half = np.iinfo(vol.dtype).max // 2
            if hi <= half:  # same bits, reinterpret as signed: no copy
                return vol.view(np.int16 if vol.dtype == np.uint16 else np.int32)
        return vol
    if np.issubdtype(vol.dtype, np.integer) and integral:
        lo_raw, hi_raw = (int(vol.min()), int(vol.max())) if vol.size else (0, 0)
        cands = [s * v + b for s in slopes for b in intercepts for v in (lo_raw, hi_raw)] if not uniform else [
            slopes[0] * lo_raw + intercepts[0], slopes[0] * hi_raw + intercepts[0]]
        lo, hi = min(cands), max(cands)
        target = _int_dtype_for(lo, hi)
        if target is not None:
            if vol.dtype == np.uint16 and target == np.int16 and hi_raw <= 32767:
                out = vol.view(np.int16)
            elif vol.dtype == target:
                out = vol
            else:
                out = vol.astype(target)
            if uniform:
                if slopes[0] != 1:
                    out *= out.dtype.type(slopes[0])
                out += out.dtype.type(intercepts[0])
            else:
                for k in range(out.shape[0]):
                    out[k] *= out.dtype.type(slopes[k])
                    out[k] += out.dtype.type(intercepts[k])
            return out
    out = vol.astype(np.float32)
    if uniform:
        out *= np.float32(slopes[0])
        out += np.float32(intercepts[0])
    else:
        out *= slopes.astype(np.float32)[:, None, None]
        out += intercepts.astype(np.float32)[:, None, None]
    return out


def _fix_bits(vol: np.ndarray, h: _FileHeader) -> None:
    """Mask or sign-extend when BitsStored < BitsAllocated (PS3.5 8.1.1), in place."""
    if h.pixel_tag != _PIXEL_DATA or not np.issubdtype(vol.dtype, np.integer):
        return
    bs, ba = h.bits_stored, h.bits_allocated
    if not (0 < bs < ba):
        return
    if h.pixel_representation == 0:
        if vol.size and int(vol.max()) >= (1 << bs):
            vol &= vol.dtype.type((1 << bs) - 1)
    else:
        shift = ba - bs
        lo, hi = (int(vol.min()), int(vol.max())) if vol.size else (0, 0)
        if lo < -(1 << (bs - 1)) or hi >= (1 << (bs - 1)):
            vol <<= shift
            vol >>= shift


def _read_volume(plan: _Plan, frames: list[_Frame], decoder: _Decoder, rescale: bool) -> np.ndarray:
    """Decode the frames of one volume into ``(K, rows, cols[, samples])``, rescaled."""
    h0 = frames[0].header
    first = decoder.frame(frames[0])
    shape = (len(frames),) + first.shape
    dt = first.dtype.newbyteorder("=") if first.dtype.byteorder not in ("=", "|") else first.dtype
    vol = np.empty(shape, dtype=dt)
    vol[0] = first
    for k in range(1, len(frames)):
        arr = decoder.frame(frames[k])
        if arr.shape != first.shape:
            raise DicomError(f"'{frames[k].path}' decodes to {arr.shape}, expected {first.shape} like '{frames[0].path}'")
        vol[k] = arr
    if vol.ndim == 3:
        _fix_bits(vol, h0)
    if rescale and vol.ndim == 3 and h0.photometric.startswith("MONOCHROME"):
        slopes = np.array([f.slope for f in frames], dtype=np.float64)
        inters = np.array([f.intercept for f in frames], dtype=np.float64)
        vol = _apply_rescale(vol, slopes, inters)
    elif vol.dtype in (np.uint16, np.uint32) and vol.ndim == 3:
        vol = _apply_rescale(vol, np.ones(1), np.zeros(1))
    return vol


def _resample_slices(vol: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 from positions ``src`` to ``dst`` (mm), float32."""
    out = np.empty((len(dst),) + vol.shape[1:], dtype=np.float32)
    idx = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, len(src) - 2)
    w = (dst - src[idx]) / (src[idx + 1] - src[idx])
    for k, (i, wk) in enumerate(zip(idx, w)):
        out[k] = (1.0 - wk) * vol[i] + wk * vol[i + 1]
    return out


def _resample_tilt(vol: np.ndarray, shift_ij: np.ndarray) -> np.ndarray:
    """Shift slice k in-plane by ``k * shift_ij`` voxels (i = columns, j = rows), linear."""
    from scipy import ndimage

    out = np.empty(vol.shape, dtype=np.float32)
    fill = float(vol.min()) if vol.size else 0.0
    for k in range(vol.shape[0]):
        # vol[k] is (rows=j, cols=i); slice k's origin sits k*s voxels in-plane from slice 0's,
        # so output voxel (i, j) samples source (i - k*s_i, j - k*s_j): ndimage.shift's
        # output[x] = input[x - shift]
        ndimage.shift(vol[k].astype(np.float32), shift=(k * shift_ij[1], k * shift_ij[0]),
                      output=out[k], order=1, mode="constant", cval=fill)
    return out


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------


def _select_series(scan: DicomScan, path: str, series_uid: str | None) -> SeriesInfo:
    if series_uid is not None:
        hits = scan.get(series_uid)
        if not hits:
            listing = "\n".join("  " + s.summary() for s in scan.series) or "  (none)"
            raise DicomSeriesError(
                f"no DICOM series {series_uid!r} under '{path}'; the series found are:\n{listing}",
                series_uid=series_uid, hint="pass one of the keys above as series_uid")
        if len(hits) > 1:
            listing = "\n".join("  " + s.summary() for s in hits)
            raise DicomSeriesError(
                f"SeriesInstanceUID {series_uid} under '{path}' splits into {len(hits)} volume groups:\n{listing}",
                series_uid=series_uid, hint="pass one of the keys 'UID#n' above as series_uid")
        if not hits[0].is_image:
            raise DicomSeriesError(
                f"DICOM series {series_uid} under '{path}' is {hits[0].error}", series_uid=series_uid,
                files=hits[0].files,
                hint="DICOM SEG objects are read with medimg.io.dicom_seg")
        return hits[0]
    if not scan.series:
        reasons = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in scan.unreadable[:5])
        extra = f" ({len(scan.non_image)} non-image series: {', '.join(s.modality for s in scan.non_image)})" if scan.non_image else ""
        raise DicomError(
            f"no readable DICOM image series under '{path}' ({scan.num_files} files looked at{extra})"
            + (f"; unreadable files: {reasons}" + (" ..." if len(scan.unreadable) > 5 else "") if reasons else ""),
            hint="check the folder; find_series(path).summary() lists what was found and why files were skipped")
    if len(scan.series) > 1:
        listing = "\n".join("  " + s.summary() for s in scan.series)
        raise DicomSeriesError(
            f"'{path}' holds {len(scan.series)} DICOM image series; choose one:\n{listing}",
            files=[], choices=[s.key for s in scan.series], hint="pass series_uid=KEY (first column above), or use medimg.io.find_series(path) "
                           "to list them, or `medimg convert` to convert them all")
    return scan.series[0]


def read_dicom(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    multi_volume: Literal["channels", "split"] = "channels",
    gantry_tilt: Literal["error", "shear", "resample"] = "error",
    uneven_spacing: Literal["error", "resample"] = "error",
    rescale: bool = True,
    min_slices: int = 1,
) -> Image | list[Image]:
    """Read one DICOM series (folder or file) into an :class:`Image`.

    Args:
        path: a folder (searched recursively) or one DICOM file (read alone: a
            multi-frame or mosaic file is a volume, a single-frame file a one-slice one).
        series_uid: which series, by SeriesInstanceUID or ``SeriesInfo.key``; needed
            when the folder holds several.
        multi_volume: several volumes at the same positions (time points, echoes,
            b-values, phases): ``"channels"`` stacks them as channels ``(V, I, J, K)``;
            ``"split"`` returns a list of images, one per volume.
        gantry_tilt: tilted slice stacks: ``"error"`` (default) raises; ``"shear"``
            keeps every voxel where the scanner put it with a non-orthogonal affine
            (k column = step between slice positions); ``"resample"`` shifts each slice
            in-plane (linear) onto an orthogonal grid.
        uneven_spacing: missing slices or uneven steps: ``"error"`` (default) or
            ``"resample"`` (linear along the slice axis onto the median spacing).
        rescale: apply RescaleSlope/Intercept (modality LUT, e.g. HU for CT).
        min_slices: fewer slices than this is an error.

    Returns:
        ``Image`` with data ``(C, I, J, K)``: I = columns (along the row cosine),
        J = rows (along the column cosine), K = slices (along the normal); affine
        voxel -> RAS mm. A list of images with ``multi_volume="split"``.

    Raises:
        DicomSeriesError: several series and no choice, or a geometry problem (names
            the series, the files and the problem).
        DicomError: nothing readable under ``path``.
        MissingDependencyError: a compressed transfer syntax without its codec.
    """
    if multi_volume not in ("channels", "split"):
        raise ValueError(f"multi_volume must be 'channels' or 'split', got {multi_volume!r}")
    if gantry_tilt not in ("error", "shear", "resample"):
        raise ValueError(f"gantry_tilt must be 'error', 'shear' or 'resample', got {gantry_tilt!r}")
    if uneven_spacing not in ("error", "resample"):
        raise ValueError(f"uneven_spacing must be 'error' or 'resample', got {uneven_spacing!r}")
    scan = find_series(path, validate=False)
    info = _select_series(scan, str(path), series_uid)
    opt = _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing, min_slices=min_slices)
    return read_series(info, multi_volume=multi_volume, options=opt, rescale=rescale)


def read_series(
    info: SeriesInfo,
    *,
    multi_volume: Literal["channels", "split"] = "channels",
    gantry_tilt: Literal["error", "shear", "resample"] = "error",
    uneven_spacing: Literal["error", "resample"] = "error",
    rescale: bool = True,
    min_slices: int = 1,
    options: _Options | None = None,
) -> Image | list[Image]:
    """Assemble a series found by :func:`find_series` (see :func:`read_dicom` for the options)."""
    opt = options or _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing, min_slices=min_slices)
    if not info.is_image:
        raise _series_error(info, f"not an image series: {info.error}")
    plan = _plan_geometry(info, opt)
    decoder = _Decoder()
    volumes = []
    for frames in plan.order:
        vol = _read_volume(plan, frames, decoder, rescale)
        if plan.resample_positions is not None:
            vol = _resample_slices(vol.astype(np.float32), plan.positions, plan.resample_positions)
        if plan.tilt_shift is not None:
            vol = _resample_tilt(vol, plan.tilt_shift)
        volumes.append(vol)
    affine = lps_to_ras(plan.affine_lps)
    meta = _meta(info, plan, rescale)

    def to_channels(vol: np.ndarray) -> np.ndarray:
        # (K, rows, cols) -> (1, I=cols, J=rows, K) as a view; colour (K, rows, cols, S) -> (S, I, J, K)
        if vol.ndim == 3:
            return vol.transpose(2, 1, 0)[None]
        return vol.transpose(3, 2, 1, 0)

    if multi_volume == "split" or len(volumes) == 1:
        out = []
        for v, vol in enumerate(volumes):
            m = dict(meta)
            if len(volumes) > 1:
                m["volume_index"] = v
                m["volume_label"] = plan.volume_labels[v] if plan.volume_labels else str(v)
                m["sop_instance_uids"] = [f.header.sop_instance_uid for f in plan.order[v]]
                m["source_frames"] = [[f.header.sop_instance_uid, f.frame + 1] for f in plan.order[v]]
            out.append(Image(to_channels(vol), affine, meta=m))
        return out[0] if len(out) == 1 and multi_volume != "split" else out
    chans = [to_channels(v) for v in volumes]
    dtypes = {c.dtype for c in chans}
    if len(dtypes) > 1:
        common = np.result_type(*dtypes)
        chans = [c.astype(common) for c in chans]
    return Image(np.concatenate(chans, axis=0), affine, meta=meta)


def _meta(info: SeriesInfo, plan: _Plan, rescale: bool) -> dict[str, Any]:
    from pydicom.uid import UID

    ref = plan.order[0]
    h0 = ref[0].header
    files: list[str] = []
    for vol in plan.order:
        for f in vol:
            if f.path not in files:
                files.append(f.path)
    return {
        "source": info.files[0] if len(info.files) == 1 else os.path.commonpath(info.files),
        "format": "dicom",
        "series_key": info.key,
        "series_instance_uid": info.series_instance_uid,
        "study_instance_uid": info.study_instance_uid,
        "frame_of_reference_uid": info.frame_of_reference_uid,
        "sop_class_uid": info.sop_class_uid,
        "series_description": info.description,
        "series_number": info.series_number,
        "modality": info.modality,
        "manufacturer": info.manufacturer,
        "transfer_syntax": [UID(t).name or t for t in info.transfer_syntaxes],
        "num_files": len(files),
        "num_volumes": len(plan.order),
        "volume_labels": list(plan.volume_labels),
        "files": [f.path for f in ref] if len(plan.order) == 1 else files,
        "sop_instance_uids": [f.header.sop_instance_uid for f in ref],
        "source_frames": [[f.header.sop_instance_uid, f.frame + 1] for f in ref],
        "slice_positions_mm": [float(p) for p in plan.positions],
        "slice_thickness": h0.slice_thickness,
        "rescaled": bool(rescale),
        "rescale_slope": ref[0].slope,
        "rescale_intercept": ref[0].intercept,
        "photometric_interpretation": h0.photometric,
        "gantry_tilt_deg": plan.tilt_deg,
        "notes": list(plan.notes),
    }


def load_series_datasets(source: SeriesInfo | str | os.PathLike, series_uid: str | None = None) -> list[Any]:
    """The headers (no pixel data) of a series' files, in slice order.

    Args:
        source: a :class:`SeriesInfo` from :func:`find_series`, or a folder/file.
        series_uid: which series when ``source`` is a folder holding several.

    Returns:
        ``pydicom.Dataset`` per file, in the order of ``SeriesInfo.files`` after sorting
        along the slice normal (volume 0 first): what highdicom takes as source images.
    """
    pydicom = _pydicom()
    if isinstance(source, SeriesInfo):
        info = source
    else:
        info = _select_series(find_series(source, validate=False), str(source), series_uid)
    plan = _plan_geometry(info, _Options(gantry_tilt="shear", uneven_spacing="resample"))
    files: list[str] = []
    for vol in plan.order:
        for f in vol:
            if f.path not in files:
                files.append(f.path)
    return [pydicom.dcmread(p, stop_before_pixels=True, force=True) for p in files]


# ----------------------------------------------------------------------------------------
# conversion
# ----------------------------------------------------------------------------------------

_CSV_FIELDS = ["key", "uid", "series_number", "description", "modality", "files", "shape",
               "volumes", "spacing", "orientation", "status", "error", "output"]


@dataclass
class ConversionReport:
    """What :func:`convert_dicom` did: one row per series found (image or not) plus unreadable files."""

    input: str
    output_dir: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    csv_path: str = ""
    seconds: float = 0.0

    @property
    def converted(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "error"]

    def summary(self) -> str:
        lines = [f"converted {len(self.converted)} of {len(self.rows)} series from '{self.input}' "
                 f"to '{self.output_dir}' in {self.seconds:.1f} s ({len(self.unreadable)} unreadable files); "
                 f"report: {self.csv_path}"]
        for r in self.rows:
            tail = r["output"] if r["status"] == "ok" else f"{r['status']}: {r['error']}"
            lines.append(f"  {r['series_number']!s:>5} {r['description'][:40]:<40} {r['shape']:<14} {tail}")
        return "\n".join(lines)


def _safe(text: str, limit: int = 48) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._-")
    return text[:limit] or "series"


def _output_name(info: SeriesInfo, used: set[str]) -> str:
    se = f"_se{info.series_number:04d}" if info.series_number is not None else ""  # SeriesNumber is Type 2
    base = f"p{info.patient_index:03d}_st{info.study_index:02d}{se}_{_safe(info.description or info.modality)}"
    if info.key != info.series_instance_uid:
        base += f"_{info.key.rsplit('#', 1)[1]}"
    name, n = base, 2
    while name in used:
        name = f"{base}_{n}"
        n += 1
    used.add(name)
    return name


def convert_dicom(
    input: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    multi_volume: Literal["channels", "split"] = "channels",
    gantry_tilt: Literal["error", "shear", "resample"] = "error",
    uneven_spacing: Literal["error", "resample"] = "error",
    progress: bool = False,
) -> ConversionReport:
    """Convert every DICOM series under ``input`` to ``.nii.gz`` plus ``series.csv``.

    File names are ``p{patient}_st{study}_se{SeriesNumber}_{SeriesDescription}.nii.gz``
    where patient and study are running indices within this conversion (no patient
    names or ids). Multi-volume series become 4D NIfTI (volumes along the 4th axis), or
    one file per volume (``_v{n}``) with ``multi_volume="split"``. A series that fails
    validation gets ``status=error`` and its reason in the CSV; the others are still
    converted.

    Returns:
        :class:`ConversionReport`; ``series.csv`` has the columns
        ``key, uid, series_number, description, modality, files, shape, volumes,
        spacing, orientation, status, error, output``.
    """
    t0 = time.perf_counter()
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scan = find_series(input, validate=False, progress=progress)
    report = ConversionReport(input=str(input), output_dir=str(out_dir), unreadable=list(scan.unreadable))
    opt = _Options(gantry_tilt=gantry_tilt, uneven_spacing=uneven_spacing)
    used: set[str] = set()
    for n, info in enumerate(scan.series, 1):
        row = _row(info)
        try:
            img = read_series(info, multi_volume=multi_volume, options=opt)
            name = _output_name(info, used)
            imgs = img if isinstance(img, list) else [img]
            outputs = []
            for v, im in enumerate(imgs):
                fname = f"{name}.nii.gz" if len(imgs) == 1 else f"{name}_v{v + 1:03d}.nii.gz"
                _write_nifti(im, out_dir / fname)
                outputs.append(fname)
            row.update(status="ok", error="", output=";".join(outputs),
                       shape="x".join(str(s) for s in imgs[0].spatial_shape),
                       spacing=" ".join(f"{s:.4g}" for s in imgs[0].spacing),
                       volumes=imgs[0].meta["num_volumes"])
        except (DicomError, MissingDependencyError) as exc:
            row.update(status="error", error=getattr(exc, "message", str(exc)).replace("\n", " "), output="")
        if progress:
            print(f"  [{n}/{len(scan.series)}] {row['description']}: {row['status']}", flush=True)
        report.rows.append(row)
    for info in scan.non_image:
        report.rows.append(_row(info) | {"status": "non-image", "error": info.error or "", "output": ""})
    report.csv_path = str(out_dir / "series.csv")
    with open(report.csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for r in report.rows:
            writer.writerow({k: r.get(k, "") for k in _CSV_FIELDS})
        for p, reason in scan.unreadable:
            writer.writerow({"key": "", "uid": "", "files": p, "status": "unreadable", "error": reason})
    report.seconds = time.perf_counter() - t0
    return report


def _write_nifti(img: Image, path: Path) -> None:
    """Write through medimg.io.nifti when present, else nibabel (channels -> 4th axis)."""
    try:
        from medimg.io import nifti as _nifti

        writer = getattr(_nifti, "write_nifti", None) or getattr(_nifti, "write_image", None)
    except ImportError:
        writer = None
    if writer is not None:
        writer(img, path)
        return
    import nibabel as nib

    data = img.numpy()
    arr = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    nimg = nib.Nifti1Image(arr, img.affine)
    nimg.header.set_xyzt_units("mm", "sec")
    nimg.set_qform(img.affine, code=1)
    nimg.set_sform(img.affine, code=1)
    nib.save(nimg, str(path))


def _row(info: SeriesInfo) -> dict[str, Any]:
    return {
        "key": info.key,
        "uid": info.series_instance_uid,
        "series_number": info.series_number if info.series_number is not None else "",
        "description": info.description,
        "modality": info.modality,
        "files": info.num_files,
        "shape": "x".join(str(s) for s in info.shape) if info.shape else "",
        "volumes": info.num_volumes,
        "spacing": " ".join(f"{s:.4g}" for s in info.spacing) if info.spacing else "",
        "orientation": " ".join(f"{v:.4f}" for v in info.orientation) if info.orientation else "",
        "status": info.status,
        "error": info.error or "",
        "output": "",
    }
