"""De-identify a folder (or one file) of DICOM files into an output folder."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Literal

from ..layout import walk_files
from .files import (
    BadInput,
    clear_outputs,
    deidentify_file,
    existing_outputs,
    failure_reason,
    pydicom_log_muted,
    write_mapping,
)
from .files import (
    progress as _progress,
)
from .report import DeidFileResult, DeidReport
from .transform import Deidentifier

__all__ = ["OutputNotEmptyError", "deidentify"]

log = logging.getLogger("medimg.io.deid")


class OutputNotEmptyError(FileExistsError):
    """The output folder already holds files; ``folder`` and ``n_files`` say which and how many."""

    def __init__(self, folder: Path, n_files: int) -> None:
        self.folder = folder
        self.n_files = n_files
        super().__init__(
            f"the output folder '{folder}' already holds {n_files} file(s), from an earlier run?; "
            "writing there would leave a second copy beside them: choose an empty folder, "
            "or pass overwrite=True to replace what medimg de-identified there"
        )


def _check_paths(src: Path, out_root: Path, naming: str, overwrite: bool) -> None:
    """Refuse a missing input, a bad naming, an output inside the input or a used output."""
    if not src.exists():
        raise FileNotFoundError(f"deid input not found: {src}")
    if naming not in ("uid", "keep"):
        raise ValueError(f"naming must be 'uid' or 'keep', got {naming!r}")
    if src.is_dir() and out_root.resolve().is_relative_to(src.resolve()):
        raise ValueError(
            f"the output folder {out_root} is inside the input folder {src}; choose a folder outside it"
        )
    if out_root.exists() and not out_root.is_dir():
        raise NotADirectoryError(f"the output '{out_root}' is a file; give a folder")
    earlier = existing_outputs(out_root)
    if earlier and not overwrite:
        raise OutputNotEmptyError(out_root, len(earlier))
    if earlier:
        clear_outputs(out_root, earlier)


def _run_files(
    files: list[Path], base: Path, out_root: Path, naming: str, deid: Deidentifier,
    report: DeidReport, show_progress: bool,
) -> None:
    """De-identify each file into ``out_root``, recording its result in ``report``."""
    for i, path in enumerate(_progress(files, show_progress)):
        rel = str(path.relative_to(base))
        try:
            # pydicom's value warnings and log records quote the offending value (often a
            # name or an ID): keep them off the console and out of the logs
            with warnings.catch_warnings(record=True) as caught, pydicom_log_muted():
                warnings.simplefilter("always")
                target, notes = deidentify_file(path, rel, out_root, naming, deid, i)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the folder
            reason = exc.reason if isinstance(exc, BadInput) else failure_reason(exc)
            report.files.append(DeidFileResult(rel, "failed", reason=reason))
            log.warning("file #%d failed: %s", i + 1, reason)
            continue
        if caught:
            notes.append(f"{len(caught)} pydicom warning(s) about invalid values (values not shown)")
        report.files.append(DeidFileResult(rel, "ok", output=target, notes=notes))
        log.debug("file #%d -> %s", i + 1, target.name)


def deidentify(
    path: str | Path,
    output_dir: str | Path,
    *,
    mapping_path: str | Path | None = None,
    keep_private: bool = False,
    shift_dates: bool = False,
    secret: bytes | str | None = None,
    date_shift_max_days: int = 365,
    keep_device_identity: bool = False,
    keep_patient_characteristics: bool = False,
    keep_institution_identity: bool = False,
    keep_uids: bool = False,
    naming: Literal["uid", "keep"] = "uid",
    overwrite: bool = False,
    progress: bool = False,
) -> DeidReport:
    """De-identify every DICOM file under ``path`` into ``output_dir``.

    Files are listed by :func:`medimg.io.layout.walk_files` (hidden files and folders are
    skipped, as by every other command). See :mod:`medimg.io.deid` for what is done.

    Args:
        path: a DICOM file or a folder (searched recursively).
        output_dir: where the de-identified files go (created; must be empty, see
            ``overwrite``).
        mapping_path: if given, a CSV ``kind,original,new,date_offset_days`` of the
            PatientID pseudonyms (with each patient's date shift in days when
            ``shift_dates``) and UID replacements (it re-identifies: keep it apart from
            the data). Otherwise no mapping is written anywhere.
        keep_private: keep private attributes.
        shift_dates: shift dates per patient instead of removing them.
        secret: HMAC key for UIDs, pseudonyms and date shifts (random per run if None; pass
            one to de-identify batches of the same study consistently).
        date_shift_max_days: shifts are in ``[-max, -1]`` days.
        keep_device_identity, keep_patient_characteristics, keep_institution_identity,
        keep_uids: the E.3 retain options.
        naming: ``"uid"`` (default) ``<study>/<series>/<sop>.dcm`` named by the new UIDs;
            ``"keep"``: the input's relative paths.
        overwrite: when ``output_dir`` already holds files, delete them first (only files
            that medimg de-identified; anything else stops the run). Without it a used
            output folder is refused, so a second run never leaves a second copy.
        progress: show a progress bar (rich) on stderr.

    Returns:
        A :class:`DeidReport`: per file ``ok`` or ``failed`` with its reason (truncated file,
        missing file meta header, missing pixel data, invalid value...). One bad file never
        stops the others.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OutputNotEmptyError: ``output_dir`` holds files and ``overwrite`` is False.
        FileExistsError: ``overwrite`` but ``output_dir`` holds a file medimg did not write.
        ValueError: bad ``naming`` or an output folder inside the input folder.
    """
    src, out_root = Path(path), Path(output_dir)
    _check_paths(src, out_root, naming, overwrite)
    options: dict[str, Any] = {
        "keep_private": keep_private,
        "shift_dates": shift_dates,
        "keep_device_identity": keep_device_identity,
        "keep_patient_characteristics": keep_patient_characteristics,
        "keep_institution_identity": keep_institution_identity,
        "keep_uids": keep_uids,
    }
    deid = Deidentifier(secret=secret, date_shift_max_days=date_shift_max_days, **options)
    report = DeidReport(
        input_dir=src, output_dir=out_root, options={**options, "naming": naming},
        table=deid.profile.describe(),
    )
    files = list(walk_files(src))
    log.info("de-identifying %d files", len(files))
    _run_files(files, src if src.is_dir() else src.parent, out_root, naming, deid, report, progress)
    if mapping_path is not None:
        report.mapping_path = write_mapping(Path(mapping_path), deid)
    log.info("de-identified %d files, %d failed", report.n_ok, report.n_failed)
    return report
