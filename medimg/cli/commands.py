"""The ``medimg`` command line (Typer + rich).

Every command imports what it needs (torch, MONAI, pydicom...) inside its body, so
``medimg --help`` starts in a fraction of a second. Errors medimg raises on purpose
(:class:`~medimg.core.errors.MedimgError`) are printed as one red ``error:`` line (plus
the problem list of a config error, and a ``hint:`` line) with exit code 2 for config
errors and 1 otherwise; no traceback is shown unless ``--debug`` is given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

__all__ = ["app", "main"]

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


# --------------------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------------------
#: Series-level metadata shown by ``info`` when present (no patient identifiers).
_SERIES_KEYS = (
    "format", "modality", "series_instance_uid", "series_uid", "series_description",
    "series_number", "study_instance_uid", "manufacturer", "transfer_syntax",
    "transfer_syntax_uid", "num_files", "num_volumes", "num_slices", "num_frames",
    "slice_spacing", "slice_thickness", "gantry_tilt_deg", "rescale_slope", "rescale_intercept",
    "photometric_interpretation", "notes", "warnings",
)


def image_summary(path: str | Path, series: str | None = None) -> dict[str, Any]:
    """Read ``path`` (NIfTI file or DICOM series) and summarise it as plain data.

    ``series`` picks one series (a key as listed by ``find_series``) of a DICOM folder
    holding several.
    """
    import torch

    from ..io import read_image

    if series is not None:
        from ..io.dicom import read_dicom

        img = read_dicom(path, series_uid=series)
    else:
        img = read_image(path)
    data = img.data
    summary: dict[str, Any] = {
        "path": str(path),
        "kind": img.kind,
        "shape": list(img.shape),
        "channels": img.num_channels,
        "spatial_shape": list(img.spatial_shape),
        "dtype": str(img.dtype).replace("torch.", ""),
        "spacing_mm": [float(s) for s in img.spacing],
        "origin_mm": [float(o) for o in img.origin],
        "axcodes": "".join(img.axcodes),
        "direction": [[round(float(v), 6) for v in row] for row in img.direction],
    }
    if data.numel():
        d = data if data.is_floating_point() else data.to(torch.float64)
        finite = torch.isfinite(d)
        vals = d[finite] if not bool(finite.all()) else d
        summary["intensity"] = {
            "min": float(vals.min()) if vals.numel() else None,
            "max": float(vals.max()) if vals.numel() else None,
            "mean": float(vals.double().mean()) if vals.numel() else None,
            "std": float(vals.double().std()) if vals.numel() > 1 else None,
            "non_finite": int((~finite).sum()),
        }
        if img.kind == "label" or not data.is_floating_point():
            uniq = torch.unique(data)
            if uniq.numel() <= 32:
                summary["values"] = [v.item() for v in uniq]
    meta = {str(k).lower(): v for k, v in (img.meta or {}).items()}
    series = {}
    for key in _SERIES_KEYS:
        v = meta.get(key)
        if v is not None and (isinstance(v, (str, int, float, bool)) or (
            isinstance(v, (list, tuple)) and len(v) <= 20
        )):
            series[key] = v if not isinstance(v, tuple) else list(v)
    if series:
        summary["series"] = series
    return summary


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="A NIfTI file or a DICOM file/folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    series: Annotated[
        Optional[str],
        typer.Option("--series", help="Key of the DICOM series to show, where PATH holds several (listed by the error)."),
    ] = None,
) -> None:
    """Show an image's shape, spacing, orientation, dtype and intensity range."""
    if not path.exists():
        from ..core.errors import ImageReadError

        raise ImageReadError(f"'{path}' does not exist", hint="check the path")
    from ..core.errors import DicomSeriesError

    try:
        summary = image_summary(path, series)
    except DicomSeriesError as exc:
        if series is None and exc.choices:
            raise DicomSeriesError(
                exc.message,
                hint="pick one with `medimg info PATH --series KEY` (first column above), "
                     "or convert them all with `medimg convert PATH OUT_DIR`",
            ) from exc
        raise
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(str(path)), show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("kind", summary["kind"])
    table.add_row("shape", f"{tuple(summary['shape'])}  (C, spatial...)")
    table.add_row("dtype", summary["dtype"])
    table.add_row("spacing (mm)", _fmt_floats(summary["spacing_mm"]))
    table.add_row("origin (mm, RAS)", _fmt_floats(summary["origin_mm"], 6))
    table.add_row("axcodes", summary["axcodes"])
    if "intensity" in summary:
        it = summary["intensity"]
        fmt = lambda v: "n/a" if v is None else f"{v:.6g}"  # noqa: E731
        table.add_row(
            "intensity", f"min {fmt(it['min'])}  max {fmt(it['max'])}  mean {fmt(it['mean'])}  std {fmt(it['std'])}"
        )
        if it["non_finite"]:
            table.add_row("non-finite voxels", str(it["non_finite"]))
    if "values" in summary:
        table.add_row("values", ", ".join(str(v) for v in summary["values"]))
    for key, value in summary.get("series", {}).items():
        if isinstance(value, list):
            if not value:
                continue
            value = ", ".join(str(v) for v in value)
        table.add_row(key.replace("_", " "), escape(str(value)))
    _console().print(table)


# --------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------
@config_app.command("validate")
def config_validate(
    configs: Annotated[list[Path], typer.Argument(help="One or more YAML config files.")],
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
        except Exception as exc:
            errors = sys.modules.get("medimg.core.errors")
            if errors is None or not isinstance(exc, errors.ConfigError):
                raise
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


# --------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------
def _describe(obj: Any) -> str:
    described = getattr(obj, "description", None)
    if isinstance(described, str) and described.strip():
        return described.strip().splitlines()[0]
    doc = getattr(obj, "__doc__", None) or ""
    if not doc and not isinstance(obj, type):
        doc = type(obj).__doc__ or ""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    return line.rstrip(".")


@app.command("list")
def list_components(
    kind: Annotated[
        Optional[str],
        typer.Argument(help="models, transforms, losses, metrics, optimizers or schedulers (default: all)."),
    ] = None,
) -> None:
    """List the registered components that configs can name."""
    from rich.markup import escape

    from ..config import REGISTRY_KINDS, get_registry

    kinds = list(REGISTRY_KINDS) if kind is None else [kind.lower()]
    from rich.table import Table

    out = _console()
    for k in kinds:
        try:
            reg = get_registry(k)
        except ImportError as exc:
            if kind is not None:
                raise
            out.print(f"{k}: not available ({exc})", style="yellow", markup=False)
            continue
        table = Table(title=f"{k} ({len(reg.list())})", title_justify="left")
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("description")
        for name in reg.list():
            table.add_row(name, escape(_describe(reg.get(name))))
        out.print(table)


# --------------------------------------------------------------------------------------
# train / predict / evaluate / demo
# --------------------------------------------------------------------------------------
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


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="The experiment's YAML config.")],
    overrides: SetOption = None,
    output_dir: Annotated[
        Optional[Path],
        typer.Option("--output-dir", "-o", help="Run folder (default: experiment.output_dir)."),
    ] = None,
) -> None:
    """Train a model from a config; writes checkpoints, config.resolved.yaml and environment.json."""
    from ..config import load_config

    cfg = load_config(config, overrides or ())
    from ..engine import train as run_training

    result = run_training(cfg, output_dir=output_dir, config_path=config)
    rows = [
        ("run folder", str(getattr(result, "run_dir", ""))),
        ("best checkpoint", str(getattr(result, "best_checkpoint", None))),
        ("last checkpoint", str(getattr(result, "last_checkpoint", None))),
        (f"best {cfg.evaluation.select_by}", _fmt_metric(getattr(result, "best_metric", None))),
    ]
    for extra in ("best_epoch", "epochs_run", "stopped_because"):
        if getattr(result, extra, None) is not None:
            rows.append((extra.replace("_", " "), str(getattr(result, extra))))
    if getattr(result, "seconds", None) is not None:
        rows.append(("training time", f"{float(result.seconds):.1f} s"))
    _console().print(_summary_table(f"trained {cfg.experiment.name}", rows))


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A medimg checkpoint (.pt).")],
    input: Annotated[Path, typer.Argument(help="A NIfTI file, a folder of them, or a folder of case folders.")],
    output_dir: Annotated[Path, typer.Argument(help="Where to write <case_id>.nii.gz and predictions.csv.")],
    device: Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda, cuda:1...")] = "auto",
    overlap: Annotated[
        Optional[float], typer.Option(min=0.0, max=0.99, help="Sliding-window overlap (default: checkpoint's).")
    ] = None,
    tta: Annotated[
        Optional[bool],
        typer.Option("--tta/--no-tta", help="Mirror test-time augmentation over all spatial axes (default: checkpoint's)."),
    ] = None,
    sw_batch_size: Annotated[Optional[int], typer.Option(min=1, help="Tiles per forward pass.")] = None,
) -> None:
    """Predict label maps for every case; exit 1 if any case failed (all are attempted)."""
    if not checkpoint.is_file():
        from ..core.errors import CheckpointError

        raise CheckpointError(
            f"checkpoint '{checkpoint}' not found" if not checkpoint.exists() else f"'{checkpoint}' is not a file",
            hint="give the .pt file written by `medimg train` (best.pt in the run folder)",
        )
    if not input.exists():
        from ..core.errors import DataError

        raise DataError(f"input '{input}' does not exist", hint="give a NIfTI file or a folder of cases")
    from ..inference import Predictor, predict_folder

    predictor = Predictor.from_checkpoint(checkpoint, device, overlap=overlap, sw_batch_size=sw_batch_size)
    if tta is not None:
        predictor.tta_flips = list(range(len(predictor.roi_size))) if tta else []
    report = predict_folder(predictor, input, output_dir, device=device, progress=sys.stderr.isatty())

    from rich.table import Table

    out = _console()
    table = Table(title=f"predicted {len(report.ok)} of {len(report.ok) + len(report.failed)} cases -> {output_dir}",
                  title_justify="left")
    table.add_column("case", style="bold")
    table.add_column("status")
    table.add_column("seconds / error")
    for case in report.ok:
        table.add_row(case, "[green]ok[/green]", f"{report.seconds.get(case, float('nan')):.2f}")
    for case, msg in report.failed:
        from rich.markup import escape

        table.add_row(case, "[red]failed[/red]", escape(msg))
    out.print(table)
    if report.failed:
        _console(stderr=True).print(
            f"error: {len(report.failed)} case(s) failed; see {Path(output_dir) / 'predictions.csv'}",
            style="bold red",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILURE)


def _split_list(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


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


# --------------------------------------------------------------------------------------
# DICOM: convert / deid
# --------------------------------------------------------------------------------------
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


@app.command()
def deid(
    input: Annotated[Path, typer.Argument(help="A DICOM file or folder (searched recursively).")],
    output_dir: Annotated[Path, typer.Argument(help="Where to write the de-identified copies (outside INPUT).")],
    mapping: Annotated[
        Optional[Path],
        typer.Option(help="Write the pseudonym/UID mapping CSV here (it re-identifies: keep it apart)."),
    ] = None,
    keep_private: Annotated[bool, typer.Option(help="Keep private tags (default: remove).")] = False,
    shift_dates: Annotated[
        bool, typer.Option(help="Shift dates by a per-patient offset instead of removing them.")
    ] = False,
    secret: Annotated[
        Optional[str],
        typer.Option(help="Key for UIDs, pseudonyms and date shifts; the same key gives the same "
                     "results across batches (default: random per run)."),
    ] = None,
    naming: Annotated[str, typer.Option(help="'uid': study/series/sop.dcm by new UIDs; 'keep': input paths.")] = "uid",
) -> None:
    """De-identify DICOM files (PS3.15 E.1 basic profile) into OUTPUT_DIR; exit 1 if any file failed."""
    _check_choice("--naming", naming, ("uid", "keep"))
    if not input.exists():
        from ..core.errors import ImageReadError

        raise ImageReadError(f"'{input}' does not exist", hint="give a DICOM file or folder")
    from ..io import deidentify

    report = deidentify(
        input,
        output_dir,
        mapping_path=mapping,
        keep_private=keep_private,
        shift_dates=shift_dates,
        secret=secret,
        naming=naming,
        progress=sys.stderr.isatty(),
    )
    _console().print(report.summary(), markup=False)
    if not report.files:
        _console(stderr=True).print(f"error: no file found under '{input}'", style="bold red", markup=False)
        raise typer.Exit(EXIT_FAILURE)
    if report.n_failed:
        raise typer.Exit(EXIT_FAILURE)


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(repr(c) for c in choices)}", param_hint=option)


def main() -> None:
    """Console-script entry point (``medimg``)."""
    app(prog_name="medimg")
