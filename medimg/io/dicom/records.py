"""The records of DICOM discovery: what a file says, its 2D frames, a series, a scan.

``_FileHeader`` and ``_Frame`` are internal (one per file, one per 2D slice); ``SeriesInfo``
and ``DicomScan`` are public: what :func:`~medimg.io.dicom.find_series` returns. The
constants shared by the other modules of the package (transfer syntaxes, pixel data
tags, tolerances) live here too, so every module reads them from one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medimg.core.errors import MissingDependencyError

__all__ = ["SeriesInfo", "DicomScan", "ProgressHook"]

#: ``progress(stage, done, total)``: called as long work advances, for a front end to draw
#: a bar. ``stage`` is ``"scan"`` (files looked at by ``find_series``) or ``"convert"``
#: (series written by ``convert_dicom``); ``done`` counts up to ``total``. The library
#: itself never prints progress.
ProgressHook = Callable[[str, int, int], None]

# ----------------------------------------------------------------------------------------
# constants (PS3.5 transfer syntaxes, PS3.6 tags)
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


def _pydicom() -> Any:
    """The ``pydicom`` module, or a one-line install hint."""
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - pydicom is a core dependency
        raise MissingDependencyError(
            "reading DICOM needs the package 'pydicom', which is not installed",
            hint="pip install pydicom",
        ) from exc
    return pydicom


class _FileProblem(Exception):
    """One file cannot be used (the message says why); discovery lists it as unreadable."""


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
    study_date: str = ""  # StudyDate (0008,0020), YYYYMMDD as in the file
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
        study_instance_uid, study_date: StudyInstanceUID (0020,000D) and StudyDate
            (0008,0020, ``YYYYMMDD``; empty when the files have none).
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
        patient_index, study_index: running numbers (1, 2, ...) of the patient and study
            within this scan (no patient identifier is kept).
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
    study_date: str = ""
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
        """Several lines: the counts, one line per series, then the unreadable files (20 at most)."""
        lines = [f"{len(self.series)} image series, {len(self.non_image)} non-image, "
                 f"{len(self.unreadable)} unreadable files, {self.num_files} files in {self.root}"]
        lines += ["  " + s.summary() for s in self.series + self.non_image]
        lines += [f"  unreadable: {p}: {r}" for p, r in self.unreadable[:20]]
        if len(self.unreadable) > 20:
            lines.append(f"  ... and {len(self.unreadable) - 20} more unreadable files")
        return "\n".join(lines)
