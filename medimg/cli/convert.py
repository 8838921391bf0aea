"""``medimg convert DICOM_DIR OUTPUT_DIR``: every DICOM series to NIfTI."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import ImageReadError
from .app import EXIT_FAILURE, GantryTilt, MultiVolume, UnevenSpacing, _console, app, progress_enabled

#: What the bar says for each stage the library reports (``medimg.io.dicom.ProgressHook``).
_STAGES = {"scan": "scanning files", "convert": "converting series"}


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress hook drawing one rich bar per stage on stderr (stdout keeps the summary);
    None when ``enabled`` is False (not a terminal)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    tasks: dict[str, object] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:

        def hook(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        yield hook


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="A DICOM file or folder (searched recursively).")],
    output_dir: Annotated[Path, typer.Argument(help="Where to write one .nii.gz per series and series.csv.")],
    multi_volume: Annotated[
        MultiVolume, typer.Option(help="Series with several volumes: 'channels' (one 4D file) or 'split'.")
    ] = "channels",
    gantry_tilt: Annotated[
        GantryTilt, typer.Option(help="Tilted CT: 'error', 'shear' (keep voxels, sheared affine) or 'resample'.")
    ] = "error",
    uneven_spacing: Annotated[
        UnevenSpacing, typer.Option(help="Uneven slice gaps: 'error' or 'resample' to the median spacing.")
    ] = "error",
) -> None:
    """Convert every DICOM series under INPUT to NIfTI (RAS+, exact geometry); exit 1 if any failed.

    Files are named STUDYDATE_stSTUDY_seNNNN_DESCRIPTION.nii.gz, where STUDY is a short hash
    of the StudyInstanceUID: the same names on every run, and different studies (of one
    patient too) never share a prefix. series.csv lists every series with its study UID and
    date; converting more studies into the same OUTPUT_DIR adds their rows.
    """
    if not source.exists():
        raise ImageReadError(f"'{source}' does not exist", hint="give a DICOM file or folder")
    from ..io.convert import convert_dicom

    with _progress_bar(progress_enabled()) as hook:
        report = convert_dicom(source, output_dir, multi_volume=multi_volume, gantry_tilt=gantry_tilt,
                               uneven_spacing=uneven_spacing, progress=hook)
    _console().print(report.summary(), markup=False)
    if not report.rows:
        _console(stderr=True).print(f"error: no DICOM series found under '{source}'", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)
