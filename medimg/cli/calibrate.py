"""``medimg calibrate RUN_DIR``: temperature scaling of a trained classifier, on its
validation split, stored in ``RUN_DIR/best.pt`` so that ``medimg predict`` emits
calibrated probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import DataError
from .app import _console, app
from .predict import _check_device, _check_device_available


@app.command()
def calibrate(
    run_dir: Annotated[
        Path,
        typer.Argument(help="A classification run folder written by `medimg train` (best.pt, config.resolved.yaml)."),
    ],
    device: Annotated[
        str, typer.Option(callback=_check_device, help="auto (CUDA if available), cpu, cuda, cuda:1, mps.")
    ] = "auto",
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the before/after CIs (0: none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
) -> None:
    """Fit one temperature T on the run's validation predictions (least NLL) and store it in best.pt.

    Writes RUN_DIR/calibration/ (calibration.json, metrics.csv: ece, brier and nll before and
    after; reliability_diagram.png). Running it again replaces T. Classifiers only.
    """
    from ..engine.rundir import RESOLVED_CONFIG

    if not run_dir.is_dir():
        raise DataError(
            f"run folder '{run_dir}' does not exist" if not run_dir.exists() else f"'{run_dir}' is a file, not a run folder",
            hint="give the folder `medimg train` wrote (it holds best.pt and config.resolved.yaml)",
        )
    _check_device_available(device)
    from ..engine.calibrate import calibrate_run, classifier_checkpoint

    classifier_checkpoint(run_dir)  # a segmentation run: say so before reading its data
    config_file = run_dir / RESOLVED_CONFIG
    if not config_file.is_file():
        raise DataError(
            f"'{run_dir}' has no {RESOLVED_CONFIG}, so the run's validation data is unknown",
            hint="give the folder `medimg train` wrote (it holds best.pt and config.resolved.yaml)",
        )
    from ..config import load_config
    from ..inference.predictor import resolve_device

    cfg = load_config(config_file)
    result = calibrate_run(run_dir, cfg, resolve_device(device), config_path=config_file,
                           bootstrap=bootstrap, seed=seed)
    _console().print(result.format(), markup=False)
