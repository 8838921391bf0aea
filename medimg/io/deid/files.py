"""One file through de-identification: read, check it is a complete image, clean, write.

Also the output folder's rule: a run writes into an empty folder, or, when asked to
overwrite, first deletes what an earlier de-identification run wrote there (and nothing
else), so a second run never leaves a second copy beside the first.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..layout import walk_files
from .transform import Deidentifier

__all__ = [
    "BadInput",
    "check_readable",
    "clear_outputs",
    "deidentify_file",
    "existing_outputs",
    "failure_reason",
    "progress",
    "pydicom_log_muted",
    "write_mapping",
]


def _expected_pixel_bytes(ds: Any) -> int | None:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None
    n = rows * cols * frames * spp
    return (n * bits + 7) // 8


def check_readable(ds: Any) -> str | None:
    """A reason why ``ds`` (fully read) is not a complete image file, or None."""
    from pydicom.uid import UID

    # pydicom reads a file cut short without complaint, leaving the last element with
    # fewer value bytes than its header declares: look at the still-raw elements
    # (Dataset._dict holds RawDataElement until first access) before anything converts them
    for raw in getattr(ds, "_dict", {}).values():
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if length is not None and length != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < length:
            return (
                f"truncated file: element {raw.tag} declares {length} bytes, "
                f"only {len(value)} present"
            )
    has_image = "Rows" in ds and "Columns" in ds
    if has_image and "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return "missing pixel data: Rows/Columns present but no (7FE0,0010) Pixel Data"
    if "PixelData" in ds:
        ts = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
        if ts and not ts.is_compressed:
            want = _expected_pixel_bytes(ds)
            have = len(ds.PixelData)
            if want is not None and have < want:
                return f"truncated pixel data: (7FE0,0010) holds {have} bytes, {want} expected"
    return None


def failure_reason(exc: BaseException) -> str:
    """A reason for a read/write failure that names no value from the file."""
    from pydicom.errors import InvalidDicomError

    if isinstance(exc, InvalidDicomError):
        return "not a DICOM file: no 'DICM' preamble/file meta header (PS3.10 7.1)"
    if isinstance(exc, EOFError) or "end of file" in str(exc).lower() or "truncat" in str(exc).lower():
        return "truncated file: it ends before the data its header announces"
    tag = re.search(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)", str(exc))
    where = f" in ({tag.group(1).upper()},{tag.group(2).upper()})" if tag else ""
    return f"unreadable or invalid value{where}: the bytes there do not follow the DICOM encoding"


class _DropAll(logging.Filter):
    """A logging filter that drops every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def pydicom_log_muted() -> Iterator[None]:
    """Drop the ``pydicom`` logger's records while a file is processed."""
    logger = logging.getLogger("pydicom")
    flt = _DropAll()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


class BadInput(Exception):
    """A file that reads but is not a complete DICOM image; ``reason`` names no value."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def deidentify_file(
    path: Path, rel: str, out_root: Path, naming: str, deid: Deidentifier, i: int
) -> tuple[Path, list[str]]:
    """Read ``path``, check it, de-identify it and write it under ``out_root``.

    Args:
        path: the input file; ``rel`` its path relative to the input root.
        naming: ``"uid"`` (``<study>/<series>/<sop>.dcm`` by the new UIDs) or ``"keep"``.
        i: the file's index, naming a file that has no SOP Instance UID.

    Returns:
        The written path and notes for the report.

    Raises:
        BadInput: the file reads but is not a complete image.
        Exception: pydicom's read/write errors (worded by :func:`failure_reason`).
    """
    import pydicom

    ds = pydicom.dcmread(path)  # force=False: a missing preamble/meta header is an error
    reason = check_readable(ds)
    if reason is not None:
        raise BadInput(reason)
    clean = deid(ds)
    if naming == "uid":
        target = (
            out_root
            / _safe(clean.get("StudyInstanceUID"))
            / _safe(clean.get("SeriesInstanceUID"))
            / (_safe(clean.get("SOPInstanceUID"), f"file{i + 1:06d}") + ".dcm")
        )
    else:
        target = out_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    clean.save_as(target, enforce_file_format=True)
    notes = []
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        notes.append("BurnedInAnnotation is YES: pixel data may show identifiers (not cleaned)")
    return target, notes


def _safe(uid: Any, fallback: str = "unknown") -> str:
    """A UID usable as a file name (digits and dots only), else ``fallback``."""
    s = str(uid or "").strip()
    return s if re.fullmatch(r"[0-9.]+", s) else fallback


def progress(items: list[Path], show: bool) -> Iterable[Path]:
    """``items``, with a transient progress bar on stderr when ``show``."""
    if not show:
        return items
    try:
        from rich.console import Console
        from rich.progress import track
    except ImportError:  # pragma: no cover - rich is a core dependency
        return items
    return track(items, description="de-identifying", transient=True, console=Console(stderr=True))


def write_mapping(path: Path, deid: Deidentifier) -> Path:
    """The CSV ``kind,original,new,date_offset_days`` that re-identifies the output.

    One ``PatientID`` row per patient (with the whole days its dates moved by, when dates
    were shifted; empty otherwise) and one ``UID`` row per replaced UID. Written readable
    by its owner only: it holds identifiers.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # identifiers: owner only
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "original", "new", "date_offset_days"])
        for orig, new in deid.patient_map.items():
            w.writerow(["PatientID", orig, new, deid.date_offset(orig) if deid.shift_dates else ""])
        for orig, new in deid.uid_map.items():
            w.writerow(["UID", orig, new, ""])
    return path


def existing_outputs(out_root: Path) -> list[Path]:
    """The (non-hidden) files already under ``out_root``: an earlier run's output, if any."""
    return list(walk_files(out_root)) if out_root.is_dir() else []


def _written_by_deid(path: Path) -> bool:
    """Whether ``path`` is a DICOM file that says its patient identity was removed."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, specific_tags=["PatientIdentityRemoved", "DeidentificationMethod"])
    except Exception:  # noqa: BLE001 - anything unreadable is not medimg's output
        return False
    method = ds.get("DeidentificationMethod", "")
    methods = list(method) if isinstance(method, (list, tuple, pydicom.multival.MultiValue)) else [method]
    return str(ds.get("PatientIdentityRemoved", "")).upper() == "YES" and "medimg deid" in methods


def clear_outputs(out_root: Path, files: list[Path]) -> None:
    """Delete an earlier run's ``files`` from ``out_root`` and the folders they leave empty.

    Raises:
        FileExistsError: one of them is not a file medimg de-identified (so it is not
            medimg's to delete); nothing is deleted then.
    """
    foreign = next((p for p in files if not _written_by_deid(p)), None)
    if foreign is not None:
        raise FileExistsError(
            f"the output folder '{out_root}' holds '{foreign.relative_to(out_root)}', which is not "
            "a file de-identified by medimg, so it is not replaced; choose an empty output folder"
        )
    for p in files:
        p.unlink()
    for folder in sorted({p.parent for p in files}, key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):  # still holds something (a hidden file): keep it
            while folder != out_root and folder.is_relative_to(out_root):
                folder.rmdir()
                folder = folder.parent
