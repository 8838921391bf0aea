"""``medimg demo``: synthetic data -> train -> predict -> evaluate, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import SetOption, _console, app


@app.command()
def demo(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where the demo writes its run.")] = Path(
        "runs/demo"
    ),
    minutes: Annotated[
        Optional[float], typer.Option(min=0.01, help="Training wall-clock budget (default: the demo config's).")
    ] = None,
    overrides: SetOption = None,
) -> None:
    """Generate synthetic data, train, predict and evaluate end to end (a few minutes on CPU)."""
    from ..demo import run_demo

    result = run_demo(output_dir, minutes, overrides=list(overrides or []) or None)
    _console().print(result.format(), markup=False)
