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


# the options of a batch run (log, resume, shards, outputs, post-processing)
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Redo every case (default: skip the cases OUTPUT_DIR's log says were predicted).")
]
SaveProbabilitiesOpt = Annotated[
    bool,
    typer.Option("--save-probabilities", help="Also write <case_id>.probabilities.npz: class probabilities on the "
                 "input's grid (probabilities, affine, label_names)."),
]
ShardOpt = Annotated[
    Optional[str],
    typer.Option(metavar="i/N", help="Predict only shard i of N (case k of the sorted list when k % N == i), "
                 "e.g. 0/4; under torchrun each rank takes its own."),
]
KeepLargestOpt = Annotated[
    Optional[str],
    typer.Option(metavar="CLASSES", help="Keep only the largest connected component of these classes, e.g. 1,2 "
                 "(default: the checkpoint's inference.postprocess)."),
]
NoPostprocessOpt = Annotated[
    bool,
    typer.Option("--no-postprocess", help="Leave out the checkpoint's post-processing (inference.postprocess, e.g. "
                 "learned on validation by `medimg train`); --keep-largest / --min-size / --min-probability "
                 "still apply."),
]
RoiSizeOpt = Annotated[
    Optional[str],
    typer.Option(metavar="N[,N,N]", help="Sliding-window tile size in voxels per axis, e.g. 64,64,64, or one "
                 "value for every axis (default: checkpoint's)."),
]
MaxMemoryOpt = Annotated[
    Optional[float],
    typer.Option("--max-memory", metavar="GB", min=0.01,
                 help="Memory a case may use, in GB (default: what the device reports free). A case whose "
                 "estimated peak is larger fails, saying which settings would make it fit; the others go on."),
]
MinSizeOpt = Annotated[
    Optional[str],
    typer.Option(metavar="CLASS=ML,...", help="Remove connected components smaller than a size in mL, per class, "
                 "e.g. 1=0.5,2=3 (default: the checkpoint's inference.postprocess)."),
]
MinProbabilityOpt = Annotated[
    Optional[str],
    typer.Option(metavar="CLASS=P,...", help="Label a voxel with a class only where that class's probability "
                 "reaches P (else background), per class, e.g. 1=0.8 (default: the checkpoint's "
                 "inference.postprocess)."),
]


_CHECKPOINT_HELP = "A medimg checkpoint (.pt), or an ONNX or TorchScript file from `medimg export`."
_INPUT_HELP = (
    "A NIfTI file or DICOM series folder (one case), a folder of NIfTI files (one case each), "
    "a folder of case folders (one file per channel, as in training, or chosen by --channel), or a DICOM "
    "study folder or tree of studies (one case per study, series chosen by --channel); for a classifier "
    "also an .npz (its test_images). Or studies on a PACS: "
    "'dicomweb://HOST:PORT/dicom-web?StudyInstanceUID=UID' (or ?PatientID=..., see README), predicted "
    "into DICOM SEGs (with --push stored back in each study)."
)
PushOpt = Annotated[
    bool, typer.Option("--push", help="INPUT is a dicomweb:// address: store each SEG back in its study.")
]
PacsServerOpt = Annotated[
    Optional[Path],
    typer.Option("--server", help="INPUT is a dicomweb:// address: YAML server file with the credentials "
                 "(as `medimg pacs --server`; its url is replaced by the address)."),
]


def _is_pacs_input(input_path: str, push: bool, server: Optional[Path]) -> bool:
    """Whether INPUT is a ``dicomweb://`` address; --push and --server need one (usage error)."""
    from ..io.pacs.uri import is_dicomweb_uri

    from_pacs = is_dicomweb_uri(input_path)
    if (push or server is not None) and not from_pacs:
        raise typer.BadParameter("--push and --server need INPUT to be a dicomweb://HOST:PORT/PATH?StudyInstanceUID=... "
                                 "address", param_hint="--push / --server")
    return from_pacs


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help=_CHECKPOINT_HELP)],
    input_path: Annotated[str, typer.Argument(metavar="INPUT", help=_INPUT_HELP)],
    output_dir: Annotated[
        Path,
        typer.Argument(help="Where to write <case_id>.nii.gz (or .seg.dcm), labels.json and predict_log.csv "
                       "(a classifier: predictions.csv and predict_log.csv)."),
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
    roi_size: RoiSizeOpt = None,
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
    overwrite: OverwriteOpt = False,
    save_probabilities: SaveProbabilitiesOpt = False,
    shard: ShardOpt = None,
    keep_largest: KeepLargestOpt = None,
    min_size: MinSizeOpt = None,
    min_probability: MinProbabilityOpt = None,
    no_postprocess: NoPostprocessOpt = False,
    push: PushOpt = False,
    server: PacsServerOpt = None,
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Predict every case; outputs, predict_log.csv (one row per case and per skipped file); exit 1 if
    any case failed (all are attempted). A re-run skips the cases already predicted."""
    channels = _parse_channels(channel)
    from_pacs = _is_pacs_input(input_path, push, server)
    _check_run_inputs(checkpoint, Path("." if from_pacs else input_path), device,
                      "give a NIfTI file or a folder of cases")
    shard_value = _check_shard(shard)
    post = _postprocess_option(keep_largest, min_size, no_postprocess, min_probability)
    from ..inference import predict_folder

    predictor = _load_predictor(checkpoint, device, overlap, sw_batch_size, tta, channels, post, backend, roi_size)
    if from_pacs:
        from ..inference.pacs import predict_pacs

        report = predict_pacs(predictor, input_path, output_dir, server_file=server, push=push,
                              channels=channels, overwrite=overwrite)
    else:
        report = predict_folder(predictor, Path(input_path), output_dir, progress=progress_enabled(),
                                channels=channels, output_format=output_format, overwrite=overwrite,
                                shard=shard_value, save_probabilities=save_probabilities, max_memory_gb=max_memory)
    _print_report(report, output_dir)
    if report.failed:
        _console(stderr=True).print(
            f"error: {len(report.failed)} case(s) failed; see {report.log_path}", style="bold red", markup=False
        )
        raise typer.Exit(EXIT_FAILURE)


def _load_predictor(checkpoint: Path, device: str, overlap, sw_batch_size, tta, channels: dict, post: dict,
                    backend: str | None = None, roi_size: str | None = None):
    """The checkpoint's predictor with the command line's settings (each checked against the model)."""
    from ..inference.onnx_backend import load_predictor

    predictor = load_predictor(checkpoint, backend, _rank_device(device), overlap=overlap, sw_batch_size=sw_batch_size)
    if roi_size is not None:
        predictor = predictor.with_options(roi_size=_roi_option(roi_size, len(predictor.roi_size)))
    if tta is not None:
        predictor = predictor.with_options(tta_flips=list(range(len(predictor.roi_size))) if tta else [])
    _check_channels(predictor, channels)
    if post:
        _check_post_classes(post, predictor.label_names, predictor.num_classes)
        predictor = predictor.with_options(postprocess={**predictor.spec.postprocess.model_dump(), **post})
    return predictor


def _roi_option(value: str, ndim: int) -> list[int]:
    """``--roi-size 64,64,64`` (or ``64`` for every axis) as a list of ``ndim`` sizes (a bad
    value is a usage error)."""
    try:
        sizes = [int(v) for v in value.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes = sizes * ndim
    if len(sizes) != ndim or min(sizes) < 1:
        raise typer.BadParameter(f"{value!r}: give {ndim} positive sizes such as {','.join(['64'] * ndim)}, "
                                 "or one for every axis", param_hint="--roi-size")
    return sizes


def _check_shard(value: str | None) -> tuple[int, int] | None:
    """``--shard i/N`` as ``(i, N)`` (a bad value is a usage error)."""
    if value is None:
        return None
    from ..core.errors import ConfigError
    from ..inference.runlog import parse_shard

    try:
        return parse_shard(value)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message.removeprefix(f"--shard {value!r}: "), param_hint="--shard") from None


def _postprocess_option(keep_largest: str | None, min_size: str | None, none: bool = False,
                        min_probability: str | None = None) -> dict:
    """``--keep-largest``, ``--min-size`` and ``--min-probability`` as fields of
    ``inference.postprocess``; with ``--no-postprocess`` (``none``) every field is given,
    empty unless those options set it."""
    from ..inference.postprocess import parse_class_list, parse_class_probabilities, parse_class_sizes

    post: dict = {"keep_largest": [], "min_size_ml": {}, "min_probability": {}} if none else {}
    try:
        if keep_largest is not None:
            post["keep_largest"] = parse_class_list(keep_largest)
        if min_size is not None:
            post["min_size_ml"] = parse_class_sizes(min_size)
        if min_probability is not None:
            post["min_probability"] = parse_class_probabilities(min_probability)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return post


def _check_post_classes(post: dict, names: list[str] | None, num_classes: int | None) -> None:
    """A usage error where --keep-largest / --min-size / --min-probability name a class the model does not have."""
    for option, key in (("--keep-largest", "keep_largest"), ("--min-size", "min_size_ml"),
                        ("--min-probability", "min_probability")):
        values = list(post.get(key, []))
        bad = [c for c in values if c < 1 or (num_classes is not None and c >= num_classes)]
        if bad:
            classes = f"1..{num_classes - 1}" if num_classes else "1, 2, ..."
            named = f" ({', '.join(f'{i}={n}' for i, n in enumerate(names) if i)})" if names else ""
            raise typer.BadParameter(
                f"class value(s) {bad} are not foreground classes of this model; use {classes}{named}",
                param_hint=option,
            )


def _rank_device(device: str) -> str:
    """``--device auto`` under torchrun on a machine with GPUs: this rank's GPU (LOCAL_RANK)."""
    import os

    local = os.environ.get("LOCAL_RANK")
    if device != "auto" or local is None or not local.isdigit():
        return device
    import torch

    return f"cuda:{local}" if torch.cuda.is_available() and int(local) < torch.cuda.device_count() else device


def _print_report(report, output_dir: Path) -> None:
    """The run's summary table: ok cases (the first 10 of many), failed and skipped ones."""
    from rich.markup import escape
    from rich.table import Table

    total = len(report.ok) + len(report.failed)
    title = f"predicted {len(report.ok)} of {total} cases -> {output_dir}"
    if report.skipped:
        title += f" ({len(report.skipped)} skipped)"
    table = Table(title=title, title_justify="left")
    table.add_column("case", style="bold")
    table.add_column("status")
    table.add_column("seconds / reason")
    shown = report.ok if len(report.ok) <= 20 else report.ok[:10]  # an npz may hold thousands of cases
    for case in shown:
        table.add_row(escape(case), "[green]ok[/green]", f"{report.seconds.get(case, float('nan')):.2f}")
    if len(shown) < len(report.ok):
        table.add_row(f"... {len(report.ok) - len(shown)} more", "[green]ok[/green]", "")
    for case, msg in report.failed:
        table.add_row(escape(case), "[red]failed[/red]", escape(msg))
    skipped = report.skipped if len(report.skipped) <= 20 else report.skipped[:10]
    for case, msg in skipped:
        table.add_row(escape(case), "[yellow]skipped[/yellow]", escape(msg))
    if len(skipped) < len(report.skipped):
        table.add_row(f"... {len(report.skipped) - len(skipped)} more", "[yellow]skipped[/yellow]", f"see {report.log_path}")
    _console().print(table)
