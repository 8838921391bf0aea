"""``medimg config validate|show``: check and print experiment configs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import ConfigError
from .app import EXIT_CONFIG, SetOption, _console, _print_error, config_app


@config_app.command("validate")
def config_validate(
    configs: Annotated[list[Path], typer.Argument(metavar="CONFIG", help="One or more YAML config files.")],
    overrides: SetOption = None,
    schema_only: Annotated[
        bool,
        typer.Option(
            "--schema-only",
            help="Check keys and types only; skip looking components up in their registries "
            "(fast: does not import torch).",
        ),
    ] = False,
    check_paths: Annotated[
        bool, typer.Option("--check-paths/--no-check-paths", help="Report data paths that do not exist.")
    ] = True,
) -> None:
    """Check configs; print every problem of every file (exit 2 if any is invalid)."""
    from ..config import load_config

    out = _console()
    bad = 0
    for cfg_path in configs:
        try:
            load_config(
                cfg_path, overrides or (), check_components=not schema_only, check_paths=check_paths
            )
        except ConfigError as exc:
            bad += 1
            _print_error(exc)
        else:
            out.print(f"ok: {cfg_path}", style="green", markup=False)
    if bad:
        if len(configs) > 1:
            _console(stderr=True).print(f"{bad} of {len(configs)} configs are invalid", markup=False)
        raise typer.Exit(EXIT_CONFIG)


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="A YAML config file.")],
    overrides: SetOption = None,
    schema_only: Annotated[
        bool, typer.Option("--schema-only", help="Do not check components against their registries.")
    ] = False,
) -> None:
    """Print the resolved config: every default filled in, overrides applied, paths absolute."""
    from ..config import dump_config, load_config

    cfg = load_config(config, overrides or (), check_components=not schema_only, check_paths=False)
    typer.echo(dump_config(cfg), nl=False)
