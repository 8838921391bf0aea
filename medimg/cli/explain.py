"""``medimg explain CHECKPOINT INPUT OUTPUT_DIR``: Grad-CAM heat maps of a classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import EXIT_FAILURE, _console, app, progress_enabled
from .predict import _check_device, _check_run_inputs


@app.command()
def explain(
    checkpoint: Annotated[Path, typer.Argument(help="A classification checkpoint (.pt).")],
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="An image file or DICOM series folder (one case), or a folder of cases (as for predict).",
        ),
    ],
    output_dir: Annotated[
        Path,
        typer.Argument(help="Where to write <case>_gradcam.png (and <case>_gradcam.nii.gz for 3D) "
                       "and explanations.csv."),
    ],
    layer: Annotated[
        Optional[str], typer.Option(help="Layer to read, e.g. layer4 (default: the model's own choice).")
    ] = None,
    target_class: Annotated[
        Optional[int], typer.Option(min=0, help="Class index to explain (default: each case's predicted class).")
    ] = None,
    device: Annotated[
        str, typer.Option(callback=_check_device, help="auto (CUDA if available), cpu, cuda, cuda:1, mps.")
    ] = "auto",
) -> None:
    """Write Grad-CAM heat maps for every case; exit 1 if any case failed (all are attempted)."""
    _check_run_inputs(checkpoint, input_path, device, "give an image file or a folder of cases")
    from ..inference.explain import EXPLANATIONS_CSV, explain_folder
    from ..inference.predictor import resolve_device

    report = explain_folder(checkpoint, input_path, output_dir, layer=layer, target_class=target_class,
                            device=resolve_device(device), progress=progress_enabled())
    out = _console()
    out.print(f"explained {len(report.ok)} of {len(report.ok) + len(report.failed)} cases -> {output_dir}",
              markup=False)
    for case, msg in report.failed:
        out.print(f"  {case}: failed: {msg}", markup=False)
    if report.failed:
        _console(stderr=True).print(
            f"error: {len(report.failed)} case(s) failed; see {Path(output_dir) / EXPLANATIONS_CSV}",
            style="bold red", markup=False,
        )
        raise typer.Exit(EXIT_FAILURE)
