"""``medimg card RUN_DIR``: a model card (MODEL_CARD.md) from what a training run recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..core.errors import DataError
from .app import _console, app


@app.command()
def card(
    run_dir: Annotated[
        Path, typer.Argument(help="A run folder written by `medimg train` (best.pt, config.resolved.yaml, ...).")
    ],
    evaluation: Annotated[
        Optional[Path],
        typer.Option(help="The evaluation folder whose summary.json holds the test results, e.g. one written by "
                     "`medimg evaluate ... --subgroup` (default: RUN_DIR/test)."),
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write the card (default: RUN_DIR/MODEL_CARD.md).")
    ] = None,
) -> None:
    """Write MODEL_CARD.md: data per split and sources, config hash, versions, test metrics with CIs,
    subgroups and calibration when recorded, and TODO sections for the author (intended use,
    limitations, ethical considerations). A run without test results gets a card that says so."""
    if not run_dir.is_dir():
        raise DataError(
            f"run folder '{run_dir}' does not exist" if not run_dir.exists() else f"'{run_dir}' is a file, not a run folder",
            hint="give the folder `medimg train` wrote (it holds best.pt and config.resolved.yaml)",
        )
    if evaluation is not None and not (evaluation / "summary.json").is_file():
        raise DataError(f"--evaluation '{evaluation}' holds no summary.json",
                        hint="give a folder written by `medimg evaluate ... --output-dir`")
    from ..engine.card import model_card

    path = model_card(run_dir, evaluation, output)
    text = path.read_text(encoding="utf-8")
    todo = sum("TODO (author)" in line for line in text.splitlines())
    tested = "**No test results.**" not in text
    _console().print(f"wrote {path}: {'test metrics included' if tested else 'NO test results recorded'}; "
                     f"{todo} section(s) marked TODO (author) to fill in", markup=False)
