"""``medimg deid DICOM_DIR OUTPUT_DIR``: PS3.15 de-identification."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import EXIT_FAILURE, _check_choice, _console, app


@app.command()
def deid(
    input: Annotated[Path, typer.Argument(help="A DICOM file or folder (searched recursively).")],
    output_dir: Annotated[Path, typer.Argument(help="Where to write the de-identified copies (outside INPUT).")],
    mapping: Annotated[
        Optional[Path],
        typer.Option(help="Write the pseudonym/UID mapping CSV here (it re-identifies: keep it apart)."),
    ] = None,
    keep_private: Annotated[bool, typer.Option(help="Keep private tags (default: remove).")] = False,
    shift_dates: Annotated[
        bool, typer.Option(help="Shift dates by a per-patient offset instead of removing them.")
    ] = False,
    secret: Annotated[
        Optional[str],
        typer.Option(help="Key for UIDs, pseudonyms and date shifts; the same key gives the same "
                     "results across batches (default: random per run)."),
    ] = None,
    naming: Annotated[str, typer.Option(help="'uid': study/series/sop.dcm by new UIDs; 'keep': input paths.")] = "uid",
) -> None:
    """De-identify DICOM files (PS3.15 E.1 basic profile) into OUTPUT_DIR; exit 1 if any file failed."""
    _check_choice("--naming", naming, ("uid", "keep"))
    if not input.exists():
        from ..core.errors import ImageReadError

        raise ImageReadError(f"'{input}' does not exist", hint="give a DICOM file or folder")
    from ..io import deidentify

    report = deidentify(
        input,
        output_dir,
        mapping_path=mapping,
        keep_private=keep_private,
        shift_dates=shift_dates,
        secret=secret,
        naming=naming,
        progress=sys.stderr.isatty(),
    )
    _console().print(report.summary(), markup=False)
    if not report.files:
        _console(stderr=True).print(f"error: no file found under '{input}'", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)
    if report.n_failed:
        raise typer.Exit(EXIT_FAILURE)
