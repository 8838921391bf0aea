"""``medimg convert DICOM_DIR OUTPUT_DIR``: every DICOM series to NIfTI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_FAILURE, _check_choice, _console, app


@app.command()
def convert(
    input: Annotated[Path, typer.Argument(help="A DICOM file or folder (searched recursively).")],
    output_dir: Annotated[Path, typer.Argument(help="Where to write one .nii.gz per series and series.csv.")],
    multi_volume: Annotated[
        str, typer.Option(help="Series with several volumes: 'channels' (one 4D file) or 'split'.")
    ] = "channels",
    gantry_tilt: Annotated[
        str, typer.Option(help="Tilted CT: 'error', 'shear' (keep voxels, sheared affine) or 'resample'.")
    ] = "error",
    uneven_spacing: Annotated[
        str, typer.Option(help="Uneven slice gaps: 'error' or 'resample' to the median spacing.")
    ] = "error",
) -> None:
    """Convert every DICOM series under INPUT to NIfTI (RAS+, exact geometry); exit 1 if any failed."""
    _check_choice("--multi-volume", multi_volume, ("channels", "split"))
    _check_choice("--gantry-tilt", gantry_tilt, ("error", "shear", "resample"))
    _check_choice("--uneven-spacing", uneven_spacing, ("error", "resample"))
    if not input.exists():
        from ..core.errors import ImageReadError

        raise ImageReadError(f"'{input}' does not exist", hint="give a DICOM file or folder")
    from ..io import convert_dicom

    report = convert_dicom(
        input,
        output_dir,
        multi_volume=multi_volume,  # type: ignore[arg-type]
        gantry_tilt=gantry_tilt,  # type: ignore[arg-type]
        uneven_spacing=uneven_spacing,  # type: ignore[arg-type]
        progress=sys.stderr.isatty(),
    )
    _console().print(report.summary(), markup=False)
    if not report.rows:
        _console(stderr=True).print(f"error: no DICOM series found under '{input}'", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)
