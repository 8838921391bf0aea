"""The ``medimg`` Typer app: error handling, exit codes, shared options and helpers.

Each command group lives in its own module (``info``, ``config``, ``listing``, ``train``,
``predict``, ``evaluate``, ``demo``, ``convert``, ``deid``), which registers its commands on
:data:`app` when :mod:`medimg.cli` imports it.

Every command imports what it needs (torch, MONAI, pydicom...) inside its body, so
``medimg --help`` starts in a fraction of a second. Errors medimg raises on purpose
(:class:`~medimg.core.errors.MedimgError`) are printed as one red ``error:`` line (plus
the problem list of a config error, and a ``hint:`` line) with exit code 2 for config
errors and 1 otherwise; no traceback is shown unless ``--debug`` is given.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

__all__ = ["app", "config_app", "main", "EXIT_FAILURE", "EXIT_CONFIG", "SetOption"]

#: Exit codes: 0 success, 1 failure (bad input, failed cases), 2 invalid config or usage.
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _print_error(exc: BaseException) -> int:
    """Print ``exc`` for a person (no traceback); return the exit code."""
    err = _console(stderr=True)
    # A MedimgError was raised, so medimg.core.errors is loaded: look it up instead of
    # importing it (importing medimg.core would import torch just to print a message).
    errors = sys.modules.get("medimg.core.errors")
    if errors is not None and isinstance(exc, errors.MedimgError):
        first, _, rest = exc.message.partition("\n")
        err.print(f"error: {first}", style="bold red", markup=False)
        if rest:
            err.print(rest, markup=False)
        if exc.hint:
            err.print(f"hint: {exc.hint}", style="yellow", markup=False)
        return EXIT_CONFIG if isinstance(exc, errors.ConfigError) else EXIT_FAILURE
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    err.print(f"error: {type(exc).__name__}: {text}".rstrip(": "), style="bold red", markup=False)
    err.print("run with --debug for the traceback: medimg --debug COMMAND ...", style="yellow", markup=False)
    return EXIT_FAILURE


class _Group(TyperGroup):
    """Turns exceptions into one-line messages and exit codes (tracebacks with --debug)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # Typer/Click's own signals (Exit, Abort, usage errors) pass through.
            if type(exc).__module__.startswith("typer") or ctx.params.get("debug"):
                raise
            if isinstance(exc, BrokenPipeError):  # `medimg ... | head`: stop quietly
                raise typer.Exit(EXIT_FAILURE) from None
            raise typer.Exit(_print_error(exc)) from None


app = typer.Typer(
    cls=_Group,
    name="medimg",
    help="medimg: medical image diagnosis toolkit (DICOM/NIfTI I/O, training, prediction, evaluation).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(
    help="Check and print experiment configs.", no_args_is_help=True, add_completion=False
)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"medimg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks for errors.")
    ] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """medimg: medical image diagnosis toolkit."""


SetOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key (repeatable); VALUE is YAML: --set trainer.max_epochs=5 "
        "--set 'preprocess[1].spacing=[1, 1, 1]'.",
    ),
]


def _fmt_floats(values: Any, digits: int = 4) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}g}" for v in values) + ")"


def _summary_table(title: str, rows: list[tuple[str, str]]):
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in rows:
        table.add_row(k, v)
    return table


def _fmt_metric(value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def _split_list(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(repr(c) for c in choices)}", param_hint=option)


def main() -> None:
    """Console-script entry point (``medimg``)."""
    app(prog_name="medimg")
