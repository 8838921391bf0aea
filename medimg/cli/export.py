"""``medimg export CHECKPOINT OUT --format onnx|torchscript``: the network, checked for parity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ..core.errors import CheckpointError
from .app import _console, app

#: ``export_checkpoint(format=...)`` as the command line offers it (torch-free to import;
#: tests/cli checks it against ``medimg.inference.export.EXPORT_FORMATS``).
ExportFormat = Literal["onnx", "torchscript"]


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A medimg checkpoint (.pt), e.g. best.pt of a run folder.")],
    output: Annotated[
        Path,
        typer.Argument(metavar="OUT", help="The file to write, e.g. model.onnx or model.ts (folders are created)."),
    ],
    format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="onnx (onnxruntime) or torchscript (torch.jit.load).")
    ] = "onnx",
) -> None:
    """Export a checkpoint's network with its prediction settings, after a parity check.

    The exported network takes a dynamic batch (and dynamic spatial size where the network
    allows it); it must give the torch network's logits within 1e-4 on a random input of
    the checkpoint's roi size, else nothing is written and the command fails. The
    checkpoint's prediction settings go inside the file, so `medimg predict OUT.onnx INPUT
    OUTPUT_DIR` needs nothing else.
    """
    if not checkpoint.is_file():
        raise CheckpointError(
            f"checkpoint '{checkpoint}' not found" if not checkpoint.exists() else f"'{checkpoint}' is not a file",
            hint="give the .pt file written by `medimg train` (best.pt in the run folder)",
        )
    from ..inference.export import export_checkpoint

    report = export_checkpoint(checkpoint, output, format)
    spatial = "dynamic" if report.dynamic_spatial else f"fixed at {report.input_shape[2:]}"
    _console().print(
        f"exported {checkpoint} -> {report.path} ({report.format}; batch dynamic, spatial size {spatial}); "
        f"parity: max |logit difference| {report.max_abs_diff:.2g} < 1e-4 on input {report.input_shape}",
        markup=False,
    )
