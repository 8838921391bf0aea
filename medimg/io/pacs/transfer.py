"""Move DICOM files between a PACS and a folder: :func:`pull` (WADO-RS), :func:`push` (STOW-RS).

Pulled instances are written byte for byte as the server stores them (the original transfer
syntax is asked for, ``transfer-syntax=*``) to ``OUT/<StudyInstanceUID>/<SeriesInstanceUID>/
<SOPInstanceUID>.dcm``, the layout ``medimg deid`` writes and ``medimg predict`` reads. With
``deid`` they are first written to a temporary folder, then de-identified into ``OUT`` with
:func:`medimg.io.deid.deidentify` (PS3.15 basic profile; its options as keyword arguments),
so no identifying file is left in ``OUT``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import PacsError
from .client import PacsClient
from .query import query_series

__all__ = ["PullReport", "PushReport", "pull", "push"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: Ask for the stored transfer syntax, so pixel data arrive as stored (PS3.18 8.7.3.5.2).
_AS_STORED = (("application/dicom", "*"),)


@dataclass
class PullReport:
    """What :func:`pull` wrote: the study, its series (UID -> number of files) and the folder."""

    study_uid: str
    out_dir: Path
    series: dict[str, int] = field(default_factory=dict)
    deid: Any = None  #: the :class:`~medimg.io.deid.DeidReport` where de-identified

    @property
    def n_files(self) -> int:
        return sum(self.series.values())

    def summary(self) -> str:
        text = f"pulled study {self.study_uid}: {len(self.series)} series, {self.n_files} file(s) into {self.out_dir}"
        if self.deid is not None:
            text += f"; de-identified ({self.deid.n_failed} failed)"
        return text


@dataclass
class PushReport:
    """What :func:`push` stored: counts, the studies touched and each failure (file, reason)."""

    n_stored: int = 0
    studies: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        return (f"stored {self.n_stored} instance(s) of {len(self.studies)} study(ies); "
                f"{self.n_failed} failed")


def _safe(uid: str, what: str) -> str:
    """A UID used as a file or folder name: digits and dots only (never a path from a server)."""
    if not _UID.match(uid or ""):
        raise PacsError(f"the PACS sent a {what} that is not a DICOM UID: {uid!r}")
    return uid


def _pull_series(client: PacsClient, study_uid: str, series: Mapping[str, str], dest: Path) -> int:
    series_uid = series["SeriesInstanceUID"]
    folder = dest / _safe(study_uid, "StudyInstanceUID") / _safe(series_uid, "SeriesInstanceUID")
    folder.mkdir(parents=True, exist_ok=True)
    what = f"series {series_uid} of study {study_uid}"
    n = 0
    for ds in client.call(client.web.iter_series, study_uid, series_uid, media_types=_AS_STORED, what=what):
        ds.save_as(folder / f"{_safe(ds.SOPInstanceUID, 'SOPInstanceUID')}.dcm", enforce_file_format=True)
        n += 1
    expected = series.get("NumberOfSeriesRelatedInstances") or ""
    if expected.isdigit() and n != int(expected):
        raise PacsError(
            f"{what}: received {n} of the {expected} instances the PACS lists",
            hint="the study may still be arriving at the PACS: pull it again later",
        )
    return n


def pull(
    client: PacsClient,
    study_uid: str,
    out_dir: str | Path,
    *,
    series_uids: Iterable[str] | None = None,
    deid: Mapping[str, Any] | bool | None = None,
) -> PullReport:
    """Pull a study (or some of its series) from the PACS into ``out_dir``.

    Args:
        client: a connection (:func:`~medimg.io.pacs.connect`).
        study_uid: the StudyInstanceUID.
        out_dir: the folder to write into (created).
        series_uids: only these series (default: every series of the study).
        deid: de-identify on the way in: ``True`` for the basic profile, or a mapping of
            :func:`~medimg.io.deid.deidentify` keyword arguments (``shift_dates``,
            ``secret``...). ``out_dir`` must then be empty, as for ``medimg deid``.

    Raises:
        PacsError: the study (or a series) does not exist on the server, it cannot be
            reached, or fewer instances arrived than it lists.
    """
    out_dir = Path(out_dir)
    listed = query_series(client, study_uid)
    if not listed:
        raise PacsError(f"study {study_uid} does not exist on the PACS at {client.server.url}",
                        hint="check the StudyInstanceUID: `medimg pacs query` lists the studies there")
    if series_uids is not None:
        wanted = list(series_uids)
        by_uid = {s["SeriesInstanceUID"]: s for s in listed}
        missing = [u for u in wanted if u not in by_uid]
        if missing:
            raise PacsError(f"series {', '.join(missing)} not found in study {study_uid} on {client.server.url}",
                            hint="`medimg pacs query --study UID` lists its series")
        listed = [by_uid[u] for u in wanted]
    if not deid:
        report = PullReport(study_uid, out_dir)
        for s in listed:
            report.series[s["SeriesInstanceUID"]] = _pull_series(client, study_uid, s, out_dir)
        return report
    from ..deid import deidentify

    options = dict(deid) if isinstance(deid, Mapping) else {}
    with tempfile.TemporaryDirectory(prefix="medimg-pull-") as tmp:
        report = PullReport(study_uid, out_dir)
        for s in listed:
            report.series[s["SeriesInstanceUID"]] = _pull_series(client, study_uid, s, Path(tmp))
        report.deid = deidentify(Path(tmp), out_dir, **options)
    return report


def input_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files given and every file under the folders given (a missing path is an error)."""
    from ..layout import walk_files

    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(walk_files(p))
        elif p.is_file():
            files.append(p)
        else:
            raise PacsError(f"'{p}' does not exist", hint="give DICOM files or folders to push")
    return files


def push(client: PacsClient, paths: Iterable[str | Path], *, batch_size: int = 32) -> PushReport:
    """Store DICOM files (or every file under folders) on the PACS with STOW-RS.

    Files that are not DICOM are listed as failures; the others are sent in batches of
    ``batch_size``; a batch the server rejects lists each of its files with the reason.

    Raises:
        PacsError: the server cannot be reached or refuses the credentials (nothing stored
            by the failing request).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    report = PushReport()
    batch: list[tuple[Path, Any]] = []

    def send() -> None:
        if not batch:
            return
        what = f"storing {len(batch)} instance(s) (first: '{batch[0][0]}')"
        try:
            answer = client.call(client.web.store_instances, [ds for _, ds in batch], what=what)
        except PacsError as exc:
            # 400/409/415: the server rejected these instances; go on with the others
            if getattr(exc, "status", None) not in (400, 409, 415, 422):
                raise
            report.failures.extend((str(p), exc.message) for p, _ in batch)
        else:
            failed = {item.get("ReferencedSOPInstanceUID"): item.get("FailureReason")
                      for item in answer.get("FailedSOPSequence", [])}
            for p, ds in batch:
                if ds.SOPInstanceUID in failed:
                    report.failures.append((str(p), f"rejected by the PACS (failure reason {failed[ds.SOPInstanceUID]})"))
                else:
                    report.n_stored += 1
                    report.studies.add(str(ds.StudyInstanceUID))
        batch.clear()

    for path in input_files(paths):
        try:
            ds = pydicom.dcmread(path)
            ds.SOPInstanceUID  # noqa: B018 - a storable instance has one
        except (InvalidDicomError, AttributeError, OSError, ValueError) as exc:
            report.failures.append((str(path), f"not a DICOM instance: {' '.join(str(exc).split())[:120]}"))
            continue
        batch.append((path, ds))
        if len(batch) >= batch_size:
            send()
    send()
    return report
