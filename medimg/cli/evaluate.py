"""``medimg evaluate PRED_DIR REF_DIR``: per-case, per-class metrics with confidence intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import EXIT_FAILURE, _console, _split_list, app


@app.command()
def evaluate(
    pred_dir: Annotated[Path, typer.Argument(help="Predicted label maps (flat or one folder per case).")],
    ref_dir: Annotated[Path, typer.Argument(help="Reference label maps, same layout rules.")],
    output_dir: Annotated[
        Optional[Path], typer.Option("--output-dir", "-o", help="Write metrics.csv, summary.json and plots here.")
    ] = None,
    metrics: Annotated[
        Optional[str], typer.Option(help="Comma-separated metric names (see `medimg list metrics`).")
    ] = None,
    label_names: Annotated[
        Optional[str], typer.Option(help="Comma-separated class names, background first.")
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the CIs (0: none).")] = 1000,
    ref_name: Annotated[
        Optional[str],
        typer.Option(help="Label file name inside each reference case folder (default: detected)."),
    ] = None,
    label_map: Annotated[
        Optional[str],
        typer.Option(help="Remap reference values before scoring, e.g. '1:1,2:1,4:1' (unlisted -> 0)."),
    ] = None,
) -> None:
    """Score predictions against references: per case, per class, with confidence intervals."""
    for what, p in (("prediction folder", pred_dir), ("reference folder", ref_dir)):
        if not p.is_dir():
            from ..core.errors import DataError

            raise DataError(f"{what} '{p}' " + ("is not a folder" if p.exists() else "does not exist"))
    from ..metrics import evaluate_folders

    report = evaluate_folders(
        pred_dir,
        ref_dir,
        output_dir,
        metrics=_split_list(metrics),
        label_names=_split_list(label_names),
        bootstrap=bootstrap,
        ref_name=ref_name,
        label_map=_parse_label_map(label_map),
    )
    _console().print(report.format(), markup=False)
    if not report.cases:
        _console(stderr=True).print("error: no case could be evaluated", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)


def _parse_label_map(text: Optional[str]) -> Optional[dict[int, int]]:
    """'1:1,2:1' -> {1: 1, 2: 1}; a ConfigError naming the option on bad text."""
    if not text:
        return None
    out: dict[int, int] = {}
    for part in text.split(","):
        try:
            old, new = part.split(":")
            out[int(old)] = int(new)
        except ValueError:
            from ..core.errors import ConfigError

            raise ConfigError(
                f"--label-map: cannot read {part.strip()!r}; expected 'old:new' integer pairs "
                "separated by commas, e.g. '1:1,2:1,4:1'"
            ) from None
    return out
