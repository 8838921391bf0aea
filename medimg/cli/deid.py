"""``medimg deid DICOM_DIR OUTPUT_DIR``: PS3.15 de-identification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import ImageReadError, ImageWriteError, exception_reason
from .app import EXIT_FAILURE, DeidNaming, _console, app, progress_enabled


@app.command()
def deid(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="A DICOM file or folder (searched recursively).")
    ],
    output_dir: Annotated[
        Path, typer.Argument(help="Where to write the de-identified copies (an empty folder outside INPUT).")
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(help="Write the pseudonym/UID/date-offset mapping CSV here (it re-identifies: keep it apart)."),
    ] = None,
    keep_private: Annotated[bool, typer.Option(help="Keep private tags (default: remove).")] = False,
    shift_dates: Annotated[
        bool, typer.Option(help="Shift dates by a per-patient offset instead of removing them; times are kept.")
    ] = False,
    keep_uids: Annotated[bool, typer.Option(help="Keep UIDs (PS3.15 Retain UIDs option).")] = False,
    keep_device_identity: Annotated[
        bool, typer.Option(help="Keep device names and serial numbers (Retain Device Identity option).")
    ] = False,
    keep_patient_characteristics: Annotated[
        bool, typer.Option(help="Keep sex, age, size, weight... (Retain Patient Characteristics option).")
    ] = False,
    keep_institution_identity: Annotated[
        bool, typer.Option(help="Keep institution names (Retain Institution Identity option).")
    ] = False,
    secret: Annotated[
        str | None,
        typer.Option(help="Key for UIDs, pseudonyms and date shifts; the same key gives the same "
                     "results across batches (default: random per run)."),
    ] = None,
    naming: Annotated[DeidNaming, typer.Option(help="'uid': study/series/sop.dcm by new UIDs; 'keep': input paths.")] = "uid",
    overwrite: Annotated[
        bool,
        typer.Option(help="OUTPUT_DIR holds an earlier run's files: delete them first (only files medimg "
                     "de-identified; anything else stops the run)."),
    ] = False,
) -> None:
    """De-identify DICOM files (PS3.15 E.1 basic profile) into OUTPUT_DIR; exit 1 if any file failed."""
    if not input_path.exists():
        raise ImageReadError(f"'{input_path}' does not exist", hint="give a DICOM file or folder")
    from ..io.deid import OutputNotEmptyError, deidentify

    try:
        report = deidentify(
            input_path,
            output_dir,
            mapping_path=mapping,
            keep_private=keep_private,
            shift_dates=shift_dates,
            keep_uids=keep_uids,
            keep_device_identity=keep_device_identity,
            keep_patient_characteristics=keep_patient_characteristics,
            keep_institution_identity=keep_institution_identity,
            secret=secret,
            naming=naming,
            overwrite=overwrite,
            progress=progress_enabled(),
        )
    except OutputNotEmptyError as exc:
        raise ImageWriteError(
            f"output folder '{exc.folder}' already holds {exc.n_files} file(s) from an earlier run; "
            "choose an empty folder, or add --overwrite to replace what medimg de-identified there"
        ) from None
    except (FileExistsError, NotADirectoryError, ValueError) as exc:
        raise ImageWriteError(exception_reason(exc)) from None
    _console().print(report.summary(), markup=False)
    if not report.files:
        _console(stderr=True).print(f"error: no file found under '{input_path}'", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)
    if report.n_failed:
        raise typer.Exit(EXIT_FAILURE)
