"""Discovery: every file under a folder -> series, grouped, sorted and checked.

Files are listed by :func:`medimg.io.layout.walk_files` (the project's one walker: any
file name, hidden files and folders skipped). Files are grouped by SeriesInstanceUID, then
within a UID by geometry (orientation, pixel spacing, matrix size) and by contrast
(image/frame type, complex component), since those split one UID into several volumes.
Non-image objects (SR, RT, presentation states, SEG, KO...) are listed, not stacked.
Unreadable files are reported with the reason, never fatal.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from medimg.core.errors import DicomError, DicomSeriesError, exception_reason

from ..layout import walk_files
from .frames import _frames_from_file
from .geometry import _Options, _plan_geometry
from .header import _read_header
from .records import (
    _NON_IMAGE_MODALITIES,
    DicomScan,
    ProgressHook,
    SeriesInfo,
    _FileHeader,
    _FileProblem,
    _Frame,
)

__all__ = ["find_series"]


def find_series(
    root: str | os.PathLike,
    *,
    validate: bool = True,
    progress: ProgressHook | None = None,
) -> DicomScan:
    """Find every DICOM series under ``root`` (a folder tree or one file).

    Args:
        root: folder (searched recursively; any file names, hidden files skipped) or a
            single file.
        validate: check each image series' geometry with the default options and fill
            ``status``/``error`` (cheap: positions only, no pixel data is read).
        progress: called as ``progress("scan", files_done, files_total)`` after each file
            (see :data:`ProgressHook`); nothing is printed.

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
    seen: set[str] = set()
    paths = [str(p) for p in walk_files(rootp)]
    scan.num_files = len(paths)
    for n, path in enumerate(paths, 1):
        _scan_file(path, scan, frames_by_uid, non_image, seen)
        if progress is not None:
            progress("scan", n, len(paths))
    for uid, frames in frames_by_uid.items():
        scan.series.extend(_split_series(uid, frames))
    scan.non_image.extend(_non_image_series(uid, headers) for uid, headers in non_image.items())
    scan.series.sort(key=lambda s: (s.study_instance_uid, s.series_number if s.series_number is not None else 1 << 30, s.key))
    _number_patients_and_studies(scan.series + scan.non_image)
    if validate:
        for s in scan.series:
            _validate(s)
    scan.seconds = time.perf_counter() - t0
    return scan


def _scan_file(path: str, scan: DicomScan, frames_by_uid: dict[str, list[_Frame]],
               non_image: dict[str, list[_FileHeader]], seen: set[str]) -> None:
    """Read one file's header and file it: frames of a series, non-image, or unreadable."""
    if os.path.basename(path).upper() == "DICOMDIR":
        scan.warnings.append(f"{path}: DICOMDIR ignored (every file is scanned directly)")
        return
    header, ds, reason = _read_header(path)
    if header is None:
        scan.unreadable.append((path, reason or "unknown problem"))
        return
    for note in header.notes:
        scan.warnings.append(f"{path}: {note}")
    if _is_non_image(header):
        non_image[header.series_uid].append(header)
        return
    if not header.has_pixels:
        scan.unreadable.append((path, "image object without pixel data (7FE0,0010)"))
        return
    try:
        frames = _frames_from_file(header, ds)
    except _FileProblem as exc:
        scan.unreadable.append((path, str(exc)))
        return
    except Exception as exc:
        scan.unreadable.append((path, f"invalid DICOM values: {exception_reason(exc)}"))
        return
    uid = header.sop_instance_uid
    if uid in seen and uid:
        scan.unreadable.append((path, f"duplicate of SOPInstanceUID {uid} already read: skipped"))
        return
    seen.add(uid)
    frames_by_uid[header.series_uid].extend(frames)


def _validate(s: SeriesInfo) -> None:
    """Fill shape, spacing and volumes of a series, or its ``status="error"`` and why."""
    try:
        plan = _plan_geometry(s, _Options())
        s.shape, s.spacing = plan.shape, plan.spacing
        s.num_volumes, s.volume_labels = len(plan.order), list(plan.volume_labels)
    except DicomSeriesError as exc:
        s.status, s.error = "error", exc.message


def _number_patients_and_studies(series: list[SeriesInfo]) -> None:
    """Running patient and study numbers (1, 2, ...) in series order."""
    patients: dict[str, int] = {}
    studies: dict[str, int] = {}
    for s in series:
        hdr = s._frames[0].header if s._frames else None
        pkey = hdr.patient_key if hdr else "?"
        patients.setdefault(pkey, len(patients) + 1)
        studies.setdefault(s.study_instance_uid, len(studies) + 1)
        s.patient_index = patients[pkey]
        s.study_index = studies[s.study_instance_uid]


def _sop_class_name(uid: str) -> str:
    """The SOP class's name (``"CT Image Storage"``), or the UID itself."""
    try:
        from pydicom.uid import UID

        return UID(uid).name or uid
    except Exception:  # pragma: no cover
        return uid


def _is_non_image(h: _FileHeader) -> bool:
    """Whether a file is an object without an image volume (SR, RT, PR, SEG, KO...)."""
    if h.modality.upper() in _NON_IMAGE_MODALITIES:
        return True
    name = _sop_class_name(h.sop_class_uid).lower()
    if any(w in name for w in ("structured report", " sr ", "presentation state", "segmentation",
                               "rt structure", "rt plan", "rt dose", "key object", "encapsulated",
                               "registration", "waveform", "raw data", "spectroscopy")):
        return True
    return not h.has_pixels and ("sr" in name or h.rows == 0)


def _non_image_series(uid: str, headers: list[_FileHeader]) -> SeriesInfo:
    """The listing of one non-image series."""
    h = headers[0]
    return SeriesInfo(
        key=uid, series_instance_uid=uid, description=h.description, modality=h.modality,
        manufacturer=h.manufacturer, series_number=h.series_number,
        study_instance_uid=h.study_uid, study_date=h.study_date,
        frame_of_reference_uid=h.frame_of_reference_uid, sop_class_uid=h.sop_class_uid,
        transfer_syntaxes=tuple(sorted({x.transfer_syntax for x in headers})),
        files=[x.path for x in headers], frames=[(x.path, 0) for x in headers],
        sop_instance_uids=[x.sop_instance_uid for x in headers],
        is_image=False, status="non-image",
        error=f"{_sop_class_name(h.sop_class_uid)} ({h.modality}): listed, not read as an image",
    )


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
            study_instance_uid=h.study_uid, study_date=h.study_date,
            frame_of_reference_uid=h.frame_of_reference_uid, sop_class_uid=h.sop_class_uid,
            transfer_syntaxes=tuple(sorted({f.header.transfer_syntax for f in fs})),
            orientation=fs[0].iop, split=split,
        )
        _set_frames(info, sorted(fs, key=lambda f: (f.header.instance_number or 0, f.path, f.frame)))
        out.append(info)
    return out


def _set_frames(info: SeriesInfo, frames: list[_Frame]) -> None:
    """Attach frames to a series and fill its files, frames and SOP instance lists."""
    info._frames = frames
    info.frames = [(f.path, f.frame) for f in frames]
    info.sop_instance_uids = [f.header.sop_instance_uid for f in frames]
    seen: dict[str, None] = {}
    for f in frames:
        seen.setdefault(f.path, None)
    info.files = list(seen)
