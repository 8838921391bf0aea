"""The ``medimg`` Typer app: error handling, exit codes, shared options and helpers.

Each command group lives in its own module (``info``, ``config``, ``listing``, ``train``, ``calibrate``,
``card``, ``predict``, ``export``, ``evaluate``, ``compare``, ``demo``, ``convert``, ``deid``, ``pacs``, ``serve``), which registers its commands on
:data:`app` when :mod:`medimg.cli` imports it.

Every command imports what it needs (torch, MONAI, pydicom...) inside its body, so
``medimg --help`` starts in a fraction of a second. Every error is printed for a person,
in command-line terms and without a traceback (unless ``--debug`` is given):

- errors medimg raises on purpose (:class:`~medimg.core.errors.MedimgError`): one
  ``error:`` line (plus the problem list of a config error) and a ``hint:`` line, the
  error's ``cli_hint`` where it has one;
- usage errors (unknown option, missing argument, bad option value or choice): the
  command's usage line, one ``error:`` line and a pointer to its ``--help``;
- anything else: ``error: <first line of the message>`` and how to get the traceback.

Exit codes (:data:`EXIT_CODES`): 0 success, 1 failure (an input cannot be read, a case
failed), 2 usage or config error (fix the command line or the config), 130 interrupted.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer
from typer.core import TyperGroup

from ..core.errors import ConfigError, MedimgError, exception_reason

__all__ = [
    "app",
    "config_app",
    "pacs_app",
    "main",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "EXIT_CONFIG",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
    "SetOption",
    "MultiVolume",
    "GantryTilt",
    "UnevenSpacing",
    "DeidNaming",
    "progress_enabled",
]

#: Exit codes, shown in ``medimg --help`` and the README.
EXIT_OK = 0
#: An input cannot be read or a case of a batch failed (the others were still processed).
EXIT_FAILURE = 1
#: The command line is wrong: unknown option, missing argument, bad option value or choice.
EXIT_USAGE = 2
#: The config is invalid (every problem is listed). The same code as a usage error: in
#: both cases what the user typed (or the config they gave) must change.
EXIT_CONFIG = EXIT_USAGE
#: Stopped with Ctrl-C.
EXIT_INTERRUPTED = 130
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "an input cannot be read, or a case of a batch failed (the others are still done)",
    EXIT_USAGE: "usage or config error (unknown option, missing argument, bad option value, invalid config)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

# Closed option sets of the library's functions, as the CLI offers them. They must stay
# torch-free to import (the CLI builds every command for `medimg --help`), so they are
# written here; tests/cli checks each against the annotation of the library function
# that takes it, so the two cannot drift apart.
#: ``convert_dicom(multi_volume=...)``: a series of several volumes as one 4D file or split.
MultiVolume = Literal["channels", "split"]
#: ``read_dicom(gantry_tilt=...)``: tilted CT refused, sheared affine, or resampled.
GantryTilt = Literal["error", "shear", "resample"]
#: ``read_dicom(uneven_spacing=...)``: uneven slice gaps refused or resampled.
UnevenSpacing = Literal["error", "resample"]
#: ``deidentify(naming=...)``: output paths by new UIDs or as the input paths.
DeidNaming = Literal["uid", "keep"]


def _click_class(name: str) -> type:
    """Click's ``UsageError`` / ``ClickException`` as Typer raises them (Typer >= 0.2x
    carries its own copy of Click, so the separate ``click`` package's classes differ)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_UsageError = _click_class("UsageError")
_ClickException = _click_class("ClickException")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def progress_enabled() -> bool:
    """Whether batch commands show a progress bar: when stderr is a terminal (the bar
    goes to stderr; stdout keeps the summary, so it can be piped)."""
    return sys.stderr.isatty()


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0].strip() if text else ""


def _print_error(exc: BaseException) -> int:
    """Print ``exc`` for a person (no traceback); return the exit code."""
    err = _console(stderr=True)
    if isinstance(exc, MedimgError):
        first, _, rest = exc.message.partition("\n")
        err.print(f"error: {first}", style="bold red", markup=False)
        if rest:
            err.print(rest, markup=False)
        hint = exc.hint_for("cli")
        if isinstance(exc, ConfigError) and not hint:
            hint = _demo_data_hint(exc)
        if hint:
            err.print(f"hint: {hint}", style="yellow", markup=False)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILURE
    # Not raised on purpose: its message, without the Python class name (where the class
    # carries the meaning, as for KeyError or an empty message, that meaning in words).
    text = _first_line(str(exc))
    if not text or isinstance(exc, (KeyError, EOFError)):
        text = exception_reason(exc)
    err.print(f"error: {text}", style="bold red", markup=False)
    err.print("run with --debug for the traceback: medimg --debug COMMAND ...", style="yellow", markup=False)
    return EXIT_FAILURE


def _usage_message(exc: Any) -> str:
    """Click's message for a usage error, in the CLI's own terms."""
    text = _first_line(exc.format_message())
    # Typer validates option values with pydantic, whose messages start "Value error, ".
    text = re.sub(r"(:\s*)Value error,\s*", r"\1", text)
    text = text.rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _print_usage_error(exc: Any) -> int:
    """``usage:`` line, one ``error:`` line and where the help is; return the exit code."""
    err = _console(stderr=True)
    ctx = exc.ctx
    if ctx is not None:
        err.print(ctx.get_usage().replace("Usage:", "usage:", 1), markup=False)
    err.print(f"error: {_usage_message(exc)}", style="bold red", markup=False)
    command = ctx.command_path if ctx is not None else "medimg"
    err.print(f"hint: see `{command} --help`", style="yellow", markup=False)
    return EXIT_USAGE


def _demo_data_hint(exc: Any) -> str | None:
    """For the shipped demo config whose data is not there yet: say to run ``medimg demo``.

    The demo config's ``data.root`` is written by ``medimg demo``, so in a fresh checkout
    ``medimg config validate configs/demo.yaml`` reports it missing. Recognised by
    content: a file identical to the packaged ``medimg/configs/demo.yaml``.
    """
    files = {
        m.group(1)
        for loc, key, _msg in getattr(exc, "problems", [])
        if key in ("data.root", "data.manifest") and (m := re.match(r"(.+):\d+:\d+$", loc))
    }
    if not files:
        return None
    from importlib import resources

    try:
        shipped = (resources.files("medimg") / "configs" / "demo.yaml").read_bytes()
    except OSError:  # pragma: no cover - a broken install
        return None
    for name in sorted(files):
        path = Path(name)
        try:
            if path.read_bytes() != shipped:
                continue
            import yaml

            root = (path.parent / yaml.safe_load(shipped)["data"]["root"]).resolve()
        except (OSError, KeyError, TypeError, ValueError):
            continue
        out_dir = root.parent if root.name == "data" else root
        try:
            shown = out_dir.relative_to(Path.cwd())
        except ValueError:
            shown = out_dir
        return (
            f"this is the demo config, whose data `medimg demo` generates: run "
            f"`medimg demo --output-dir {shown}` first (it writes {shown / root.name})"
        )
    return None


_EPILOG = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."


def _name_arguments(group: Any) -> None:
    """Show every positional argument in upper case (``INPUT``, ``OUTPUT_DIR``), as the
    README and the help texts write them, unless its command sets a ``metavar``."""
    for command in getattr(group, "commands", {}).values():
        for param in command.params:
            if param.param_type_name == "argument" and param.metavar is None:
                param.metavar = param.name.upper()
        _name_arguments(command)


class _Group(TyperGroup):
    """Turns exceptions into one-line messages and exit codes (tracebacks with --debug)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_arguments(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # Typer/Click's own signals (Exit, Abort, usage errors) pass through.
            if isinstance(exc, (_ClickException, typer.Exit, typer.Abort)) or type(
                exc
            ).__module__.startswith(("typer", "click")) or ctx.params.get("debug"):
                raise
            if isinstance(exc, BrokenPipeError):  # `medimg ... | head`: stop quietly
                raise typer.Exit(EXIT_FAILURE) from None
            raise typer.Exit(_print_error(exc)) from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's ``main``, with usage errors printed as plain ``error:`` lines (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `medimg` alone: the help was shown
                sys.exit(EXIT_USAGE)
            sys.exit(_print_usage_error(exc))
        except _ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            _console(stderr=True).print("aborted", markup=False)
            sys.exit(EXIT_INTERRUPTED)
        # Without standalone mode Typer returns the exit code of a typer.Exit, else the
        # command's return value (None for every medimg command).
        sys.exit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(
    cls=_Group,
    name="medimg",
    help="medimg: medical image diagnosis toolkit (DICOM/NIfTI I/O, training, prediction, evaluation).",
    epilog=_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(
    help="Check and print experiment configs.", no_args_is_help=True, add_completion=False
)
app.add_typer(config_app, name="config")
pacs_app = typer.Typer(
    help="Query a PACS, pull studies from it and push files to it (DICOMweb).",
    no_args_is_help=True, add_completion=False,
)
app.add_typer(pacs_app, name="pacs")


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
    """A usage error (exit 2) unless ``value`` is one of ``choices``.

    Prefer a ``Literal`` option type (:data:`GantryTilt`...): Typer then checks the value
    and ``--help`` lists the choices. Kept for options whose set is only known at run time.
    """
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(repr(c) for c in choices)}", param_hint=option)


def _check_names(option: str, names: Optional[list[str]], kind: str) -> None:
    """A usage error (exit 2) for a name in ``names`` that the ``kind`` registry lacks.

    For comma-separated options such as ``--metrics dice,hd95``: a misspelt name is a bad
    option value, reported before any work starts, with the close matches and where the
    valid names are listed (``medimg list KIND``). Imports the registry (and so torch).
    """
    if not names:
        return
    from ..config import get_registry
    from ..core.builder import singular

    registry = get_registry(kind)
    known = set(registry.list())
    for name in names:
        if name.lower() not in known:
            close = registry.suggest(name)
            tip = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise typer.BadParameter(
                f"unknown {singular(kind)} {name!r}; {tip}see `medimg list {kind}`", param_hint=option
            )


def main() -> None:
    """Console-script entry point (``medimg``)."""
    app(prog_name="medimg")
