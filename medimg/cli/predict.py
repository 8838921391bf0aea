"""``medimg predict CHECKPOINT INPUT OUTPUT_DIR``: batch prediction."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ..core.errors import CheckpointError, DataError
from .app import EXIT_FAILURE, _console, app, progress_enabled

#: ``load_predictor(backend=...)`` as the command line offers it (tests/cli checks it
#: against ``medimg.inference.onnx_backend.BACKENDS``).
Backend = Literal["torch", "onnxruntime"]


def _check_device(value: str) -> str:
    """``--device``: auto, cpu, mps, cuda or cuda:N (a bad value is a usage error)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip().lower()):
        raise typer.BadParameter(f"{value!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return value.strip().lower()


def _check_run_inputs(checkpoint: Path, input_path: Path, device: str, input_hint: str) -> None:
    """What `predict` and `explain` check before loading anything: the checkpoint is a
    file, INPUT exists, and the --device is there."""
    if not checkpoint.is_file():
        raise CheckpointError(
            f"checkpoint '{checkpoint}' not found" if not checkpoint.exists() else f"'{checkpoint}' is not a file",
            hint="give the .pt file written by `medimg train` (best.pt in the run folder)",
        )
    if not input_path.exists():
        raise DataError(f"input '{input_path}' does not exist", hint=input_hint)
    _check_device_available(device)


def _check_device_available(device: str) -> None:
    """A usage error where --device asks for hardware this machine does not have."""
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            found = "no CUDA GPU" if not count else f"{count} CUDA GPU(s) (cuda:0..cuda:{count - 1})"
            raise typer.BadParameter(f"{device!r}: this machine has {found}; use --device auto or cpu",
                                     param_hint="--device")
    elif device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise typer.BadParameter("'mps': not available on this machine; use --device auto or cpu",
                                 param_hint="--device")


def _parse_channels(values: list[str] | None) -> dict[str, str]:
    """``--channel NAME=PATTERN`` (repeatable) as ``{NAME: PATTERN}`` (a bad one is a usage error)."""
    out: dict[str, str] = {}
    for value in values or []:
        name, eq, pattern = value.partition("=")
        name, pattern = name.strip(), pattern.strip().strip("'\"")
        if not eq or not name or not pattern:
            raise typer.BadParameter(f"{value!r} is not NAME=PATTERN, e.g. flair='*FLAIR*'", param_hint="--channel")
        if name in out:
            raise typer.BadParameter(f"channel '{name}' is given twice", param_hint="--channel")
        out[name] = pattern
    return out


def _check_channels(predictor, channels: dict[str, str]) -> None:
    """A usage error for a --channel NAME that is not one of the model's channels."""
    from ..core.errors import ConfigError
    from ..io.studies import resolve_channel_patterns

    try:
        resolve_channel_patterns(channels, predictor.image_keys, predictor.in_channels or 1)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--channel") from None


@app.command()
def predict(
    checkpoint: Annotated[
        Path, typer.Argument(help="A medimg checkpoint (.pt), or an ONNX or TorchScript file from `medimg export`.")
    ],
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="A NIfTI file or DICOM series folder (one case), a folder of NIfTI files (one case each), "
            "a folder of case folders (one file per channel, as in training, or chosen by --channel), or a DICOM "
            "study folder or tree of studies (one case per study, series chosen by --channel); for a classifier "
            "also an .npz (its test_images).",
        ),
    ],
    output_dir: Annotated[
        Path, typer.Argument(help="Where to write <case_id>.nii.gz (or .seg.dcm) and predictions.csv "
                             "(a classifier: predictions.csv).")
    ],
    device: Annotated[
        str, typer.Option(callback=_check_device, help="auto (CUDA if available), cpu, cuda, cuda:1, mps.")
    ] = "auto",
    overlap: Annotated[
        Optional[float], typer.Option(min=0.0, max=0.99, help="Sliding-window overlap (default: checkpoint's).")
    ] = None,
    tta: Annotated[
        Optional[bool],
        typer.Option("--tta/--no-tta", help="Mirror test-time augmentation over all spatial axes (default: checkpoint's)."),
    ] = None,
    sw_batch_size: Annotated[Optional[int], typer.Option(min=1, help="Tiles per forward pass.")] = None,
    backend: Annotated[
        Backend | None,
        typer.Option(help="Where the network runs: torch, or onnxruntime (an ONNX model, or the checkpoint exported "
                     "to ONNX on the fly). Default: onnxruntime for an .onnx file, else torch."),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel", metavar="NAME=PATTERN",
            help="Which file (by name, in case folders) or DICOM series (by SeriesDescription, in study "
            "folders) is the model's channel NAME: a case-insensitive pattern such as flair='*FLAIR*'. "
            "Repeat per channel; replaces the checkpoint's inference.channels for that NAME.",
        ),
    ] = None,
    output_format: Annotated[
        Literal["nifti", "dicom-seg"],
        typer.Option(
            "--format",
            help="nifti: <case_id>.nii.gz; dicom-seg: <case_id>.seg.dcm, a DICOM SEG referencing the source "
            "series (DICOM inputs only; a non-DICOM case fails).",
        ),
    ] = "nifti",
) -> None:
    """Predict label maps for every case; exit 1 if any case failed (all are attempted)."""
    channels = _parse_channels(channel)
    _check_run_inputs(checkpoint, input_path, device, "give a NIfTI file or a folder of cases")
    from ..inference import predict_folder
    from ..inference.onnx_backend import load_predictor

    predictor = load_predictor(checkpoint, backend, device, overlap=overlap, sw_batch_size=sw_batch_size)
    if tta is not None:
        predictor = predictor.with_options(tta_flips=list(range(len(predictor.roi_size))) if tta else [])
    _check_channels(predictor, channels)
    report = predict_folder(predictor, input_path, output_dir, progress=progress_enabled(),
                            channels=channels, output_format=output_format)
    _print_report(report, output_dir)


def _print_report(report, output_dir: Path) -> None:
    """The table of cases (ok with seconds, failed with why); exit 1 if any failed."""
    from rich.table import Table

    out = _console()
    table = Table(title=f"predicted {len(report.ok)} of {len(report.ok) + len(report.failed)} cases -> {output_dir}",
                  title_justify="left")
    table.add_column("case", style="bold")
    table.add_column("status")
    table.add_column("seconds / error")
    shown = report.ok if len(report.ok) <= 20 else report.ok[:10]  # an npz may hold thousands of cases
    for case in shown:
        table.add_row(case, "[green]ok[/green]", f"{report.seconds.get(case, float('nan')):.2f}")
    if len(shown) < len(report.ok):
        table.add_row(f"... {len(report.ok) - len(shown)} more", "[green]ok[/green]", "")
    for case, msg in report.failed:
        from rich.markup import escape

        table.add_row(case, "[red]failed[/red]", escape(msg))
    out.print(table)
    if report.failed:
        _console(stderr=True).print(
            f"error: {len(report.failed)} case(s) failed; see "
            f"{Path(output_dir) / ('failures.csv' if (Path(output_dir) / 'failures.csv').exists() else 'predictions.csv')}",
            style="bold red",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILURE)
