"""Conversion: every DICOM series under a folder -> ``.nii.gz`` files plus ``series.csv``.

File names are stable across runs and distinct across studies:
``{StudyDate}_st{study}_se{SeriesNumber}_{SeriesDescription}.nii.gz``, where ``study`` is
6 hex digits of a hash of the StudyInstanceUID (the same study always gives the same
name; two studies of one patient never share a prefix) and the StudyDate is ``nodate``
where the files have none. No patient name or id goes into a name.

``series.csv`` has one row per series found (image or not, converted or failed) and one
per unreadable file. Converting a second input into the same folder keeps the rows of
the series converted there before (a series converted again replaces its row), so the
CSV describes every file in the folder.
"""

from __future__ import annotations

import csv
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..core.errors import DicomError, MissingDependencyError
from .dicom import ProgressHook, SeriesInfo, find_series, read_series, read_series_volumes
from .dicom.values import _short_hash
from .nifti import write_nifti

__all__ = ["ConversionReport", "convert_dicom"]

MultiVolume = Literal["channels", "split"]

_CSV_FIELDS = ["key", "uid", "series_number", "description", "modality", "files", "shape",
               "volumes", "spacing", "orientation", "status", "error", "output",
               "study_uid", "study_date"]


@dataclass
class ConversionReport:
    """What :func:`convert_dicom` did: one row per series found (image or not) plus unreadable files.

    ``rows`` are this run's series (``series.csv`` also keeps earlier runs' rows).
    """

    source: str
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
        """A first line with the counts, then one line per series."""
        lines = [f"converted {len(self.converted)} of {len(self.rows)} series from '{self.source}' "
                 f"to '{self.output_dir}' in {self.seconds:.1f} s ({len(self.unreadable)} unreadable files); "
                 f"report: {self.csv_path}"]
        for r in self.rows:
            tail = r["output"] if r["status"] == "ok" else f"{r['status']}: {r['error']}"
            lines.append(f"  {r['series_number']!s:>5} {r['description'][:40]:<40} {r['shape']:<14} {tail}")
        return "\n".join(lines)


def convert_dicom(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    multi_volume: MultiVolume = "channels",
    gantry_tilt: Literal["error", "shear", "resample"] = "error",
    uneven_spacing: Literal["error", "resample"] = "error",
    progress: ProgressHook | None = None,
) -> ConversionReport:
    """Convert every DICOM series under ``source`` to ``.nii.gz`` plus ``series.csv``.

    Args:
        source: a DICOM folder (searched recursively) or file.
        output_dir: where the files go (created if needed).
        multi_volume: series with several volumes (time points, echoes...):
            ``"channels"``: one 4D NIfTI (volumes along the 4th axis); ``"split"``: one file
            per volume (``_v001``, ``_v002``...).
        gantry_tilt, uneven_spacing: as :func:`medimg.io.dicom.read_dicom`.
        progress: called as ``progress("scan", files_done, files_total)`` while series are
            found, then ``progress("convert", series_done, series_total)``; nothing is printed.

    Returns:
        :class:`ConversionReport`. A series that fails validation gets ``status=error`` and
        its reason in the CSV; the others are still converted. ``series.csv`` has the
        columns ``key, uid, series_number, description, modality, files, shape, volumes,
        spacing, orientation, status, error, output, study_uid, study_date``.

    Raises:
        DicomError: ``source`` does not exist.
        ValueError: an option outside its choices.
    """
    if multi_volume not in ("channels", "split"):
        raise ValueError(f"multi_volume must be 'channels' or 'split', got {multi_volume!r}")
    t0 = time.perf_counter()
    out_dir = Path(output_dir)
    scan = find_series(source, validate=False, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ConversionReport(source=str(source), output_dir=str(out_dir), unreadable=list(scan.unreadable))
    options = {"gantry_tilt": gantry_tilt, "uneven_spacing": uneven_spacing}
    used: set[str] = set()
    for n, info in enumerate(scan.series, 1):
        report.rows.append(_convert_one(info, out_dir, used, multi_volume, options))
        if progress is not None:
            progress("convert", n, len(scan.series))
    for info in scan.non_image:
        report.rows.append(_row(info) | {"status": "non-image", "error": info.error or "", "output": ""})
    report.csv_path = str(out_dir / "series.csv")
    _write_csv(Path(report.csv_path), report.rows, scan.unreadable)
    report.seconds = time.perf_counter() - t0
    return report


def _convert_one(info: SeriesInfo, out_dir: Path, used: set[str], multi_volume: str,
                 options: dict[str, Any]) -> dict[str, Any]:
    """Read one series, write its NIfTI file(s); its CSV row (``status`` ok or error)."""
    row = _row(info)
    try:
        if multi_volume == "split":
            images = read_series_volumes(info, **options)
        else:
            images = [read_series(info, **options)]
        name = _output_name(info, used)
        outputs = []
        for v, image in enumerate(images):
            fname = f"{name}.nii.gz" if len(images) == 1 else f"{name}_v{v + 1:03d}.nii.gz"
            write_nifti(image, out_dir / fname)
            outputs.append(fname)
        row.update(status="ok", error="", output=";".join(outputs),
                   shape="x".join(str(s) for s in images[0].spatial_shape),
                   spacing=" ".join(f"{s:.4g}" for s in images[0].spacing),
                   volumes=images[0].meta["num_volumes"])
    except (DicomError, MissingDependencyError) as exc:
        row.update(status="error", error=getattr(exc, "message", str(exc)).replace("\n", " "), output="")
    return row


def _safe(text: str, limit: int = 48) -> str:
    """``text`` with only letters, digits, ``.``, ``_`` and ``-`` (runs of others -> ``_``)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._-")
    return text[:limit] or "series"


def _study_prefix(info: SeriesInfo) -> str:
    """``{StudyDate}_st{hash}``: the same for every run over one study, different per study."""
    date = re.sub(r"[^0-9]", "", info.study_date)[:8] or "nodate"
    return f"{date}_st{_short_hash(info.study_instance_uid)[:6]}"


def _output_name(info: SeriesInfo, used: set[str]) -> str:
    """The file name (without suffix) of a series, unique within ``used`` (which it joins)."""
    se = f"_se{info.series_number:04d}" if info.series_number is not None else ""  # SeriesNumber is Type 2
    base = f"{_study_prefix(info)}{se}_{_safe(info.description or info.modality)}"
    if info.key != info.series_instance_uid:
        base += f"_{info.key.rsplit('#', 1)[1]}"
    name = base
    if name in used:  # same number and description in one study: told apart by the series
        name = f"{base}_{_short_hash(info.key)[:6]}"
    n = 2
    while name in used:
        name = f"{base}_{n}"
        n += 1
    used.add(name)
    return name


def _row(info: SeriesInfo) -> dict[str, Any]:
    """The CSV row of a series as found (status from discovery)."""
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
        "study_uid": info.study_instance_uid,
        "study_date": info.study_date,
    }


def _earlier_rows(csv_path: Path, keys: set[str]) -> list[dict[str, Any]]:
    """Rows of an earlier run's ``series.csv`` for series not converted again (none if absent)."""
    if not csv_path.is_file():
        return []
    try:
        with open(csv_path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
    return [r for r in rows if r.get("key") and r.get("status") != "unreadable" and r["key"] not in keys]


def _write_csv(path: Path, rows: list[dict[str, Any]], unreadable: list[tuple[str, str]]) -> None:
    """``series.csv``: earlier runs' other series, this run's series, this run's unreadable files."""
    earlier = _earlier_rows(path, {r["key"] for r in rows})
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for r in earlier + rows:
            writer.writerow({k: "" if r.get(k) is None else r[k] for k in _CSV_FIELDS})
        for p, reason in unreadable:
            writer.writerow({"key": "", "uid": "", "files": p, "status": "unreadable", "error": reason})
