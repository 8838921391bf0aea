"""Export the network of a medimg checkpoint to ONNX or TorchScript, checked for parity.

``export_checkpoint(ckpt, out, format="onnx")`` rebuilds the checkpoint's network (CPU,
float32, eval mode), exports it from a batch of one with a dynamic batch axis and, where
the network allows, dynamic spatial axes, and then runs the exported network (onnxruntime
for ONNX, ``torch.jit.load`` for TorchScript) and the torch network on the same random
input of the checkpoint's ``roi_size``, batch 2. A maximum absolute logit difference of
``atol`` (1e-4) or more is an error that names the measured difference; nothing is
written to ``out`` then.

"Where the network allows" is measured, not assumed: a probe doubles the first spatial
axis; when the torch network refuses that size, or the exported one disagrees there, an
ONNX file is exported again with its spatial axes fixed at ``roi_size`` (a TorchScript
file is kept and recorded as fixed). Sliding-window prediction only ever feeds tiles of
``roi_size``, so a segmentation model works either way; a classifier sees whole
preprocessed images and then needs them at that size.

The checkpoint's :class:`~medimg.core.spec.InferenceSpec` travels inside the file, so
prediction needs nothing else (:func:`read_export_metadata`): as JSON under the ONNX
``metadata_props`` key ``"medimg"``, or as the TorchScript archive's extra file
``medimg.json``. The JSON is :func:`export_metadata`'s dict::

    {"format": "medimg-export", "format_version": 1, "inference": {...InferenceSpec...},
     "model": {"name": "unet", "params": {...}}, "in_channels": 1, "out_channels": 3,
     "spatial_dims": 3, "dynamic_spatial": true, "parity_max_abs_diff": 2.1e-06,
     "versions": {...}}

ONNX is written with PyTorch's TorchScript-based exporter (``dynamo=False``, opset 17): it
exports MONAI's networks and the torchvision classifiers with dynamic axes and needs only
the ``onnx`` package (the ``torch.export``-based exporter would add ``onnxscript``).
TorchScript uses ``torch.jit.script`` and falls back to ``torch.jit.trace`` for networks
that do not script (``cnn3d``'s classifier head calls ``super()``).
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.environment import CHECKPOINT_PACKAGES, package_versions
from ..core.errors import (
    CheckpointError,
    ConfigError,
    ImageWriteError,
    MissingDependencyError,
    exception_reason,
    require,
)
from .checkpoint import build_model, inference_spec, load_checkpoint
from .runlog import atomic_path

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_FORMATS",
    "PARITY_ATOL",
    "AxiswiseInstanceNorm",
    "ExportReport",
    "export_bytes",
    "export_checkpoint",
    "export_metadata",
    "for_onnx",
    "onnx_bytes",
    "read_export_metadata",
]

#: The formats ``export_checkpoint`` writes (``medimg export --format``).
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "torchscript")
#: ``"format"`` of the metadata stored in an exported file.
EXPORT_FORMAT = "medimg-export"
EXPORT_VERSION = 1
#: Largest accepted absolute logit difference between the exported and the torch network.
PARITY_ATOL = 1e-4
#: ONNX ``metadata_props`` key (and TorchScript extra file ``<key>.json``) of the metadata.
METADATA_KEY = "medimg"
_INPUT, _OUTPUT = "image", "logits"
ONNX_OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_checkpoint` wrote and measured.

    Attributes:
        path: the exported file.
        format: ``onnx`` or ``torchscript``.
        max_abs_diff: largest absolute logit difference, exported vs torch, on the probe.
        input_shape: the probe's shape ``(2, C, *roi_size)``.
        dynamic_spatial: whether the spatial axes accept other sizes than ``roi_size``.
        metadata: the dict stored in the file (:func:`export_metadata`).
    """

    path: Path
    format: str
    max_abs_diff: float
    input_shape: tuple[int, ...]
    dynamic_spatial: bool
    metadata: dict[str, Any]


def export_metadata(ckpt: Mapping[str, Any], source: str | os.PathLike = "checkpoint") -> dict[str, Any]:
    """The plain-data description stored with an exported network (module docstring);
    ``dynamic_spatial`` and ``parity_max_abs_diff`` are added by the export."""
    spec = inference_spec(ckpt, source)
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "inference": spec.model_dump(mode="json"),
        "model": {"name": str(ckpt["model"]["name"]), "params": dict(ckpt["model"]["params"])},
        "in_channels": int(ckpt["in_channels"]),
        "out_channels": int(ckpt["out_channels"]),
        "spatial_dims": int(ckpt.get("spatial_dims", len(spec.roi_size))),
        "versions": package_versions(CHECKPOINT_PACKAGES),
    }


def _need(module: str, purpose: str, cli_hint: str | None = None) -> Any:
    """Import an optional dependency of the ``onnx`` extra, or say how to install it."""
    try:
        return require(module, "onnx", purpose)
    except MissingDependencyError as exc:
        raise (exc.reworded(cli_hint) if cli_hint else exc) from None


class AxiswiseInstanceNorm(nn.Module):
    """Instance normalisation whose means are taken one spatial axis at a time.

    The same function as the ``nn.InstanceNorm*d`` it replaces (eval mode, no running
    statistics), written for ONNX: onnxruntime's ``InstanceNormalization`` and
    ``ReduceMean`` add the voxels of a whole 96^3 tile in one float32 sum, which put
    MONAI's UNet 8e-5 off torch's logits (torch sums pairwise: 6e-6 off a float64
    run); means over one axis after another sum 96 values at a time and stay within 1e-5.

    Args:
        norm: the instance normalisation to copy (``eps``, affine ``weight`` / ``bias``).
    """

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.eps = float(norm.eps)
        self.weight = norm.weight
        self.bias = norm.bias

    @staticmethod
    def _mean(t: torch.Tensor) -> torch.Tensor:
        for axis in range(t.ndim - 1, 1, -1):
            t = t.mean(dim=axis, keepdim=True)
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - self._mean(x)
        y = centred * torch.rsqrt(self._mean(centred * centred) + self.eps)
        if self.weight is not None:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def for_onnx(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each instance normalisation (without running statistics)
    replaced by an :class:`AxiswiseInstanceNorm`; ``model`` itself is left as it is."""
    from torch.nn.modules.instancenorm import _InstanceNorm

    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _InstanceNorm) and not child.track_running_stats:
                setattr(parent, name, AxiswiseInstanceNorm(child))
    return model.eval()


def onnx_bytes(model: nn.Module, example: torch.Tensor, dynamic_spatial: bool = True) -> bytes:
    """``model`` as a serialised ONNX model with a dynamic batch axis (and spatial axes).

    Args:
        model: a CPU float32 network in eval mode, ``(B, C, *spatial) -> (B, K, ...)``;
            exported as :func:`for_onnx` rewrites it.
        example: an input it accepts; its values do not matter.
        dynamic_spatial: also mark the spatial axes of the input (and of a ``(B, K,
            *spatial)`` output) dynamic.
    """
    _need("onnx", "exporting to ONNX")
    model = for_onnx(model)
    with torch.no_grad():
        out_ndim = model(example).ndim
    axes_in = {0: "batch"}
    axes_out = {0: "batch"}
    if dynamic_spatial:
        axes_in.update({i: f"spatial_{i - 2}" for i in range(2, example.ndim)})
        if out_ndim == example.ndim:
            axes_out.update({i: f"spatial_{i - 2}" for i in range(2, out_ndim)})
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the exporter warns that it is the legacy one and about every shape check it traces
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buf, input_names=[_INPUT], output_names=[_OUTPUT],
                          dynamic_axes={_INPUT: axes_in, _OUTPUT: axes_out}, opset_version=ONNX_OPSET,
                          dynamo=False)
    return buf.getvalue()


def _with_metadata(fmt: str, data: bytes, metadata: Mapping[str, Any]) -> bytes:
    """``data`` (an exported file) with ``metadata`` stored in it as JSON."""
    text = json.dumps(metadata)
    if fmt == "onnx":
        onnx = _need("onnx", "exporting to ONNX")
        proto = onnx.load_from_string(data)
        onnx.helper.set_model_props(proto, {METADATA_KEY: text})
        return proto.SerializeToString()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_torchscript_runner(data), buf, _extra_files={f"{METADATA_KEY}.json": text})
    return buf.getvalue()


def _onnx_runner(data: bytes) -> Callable[[torch.Tensor], torch.Tensor]:
    ort = _need("onnxruntime", "checking an ONNX export")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {_INPUT: x.numpy()})[0])


def _torchscript(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        try:
            return torch.jit.script(model)
        except Exception:  # noqa: BLE001 - any network torch.jit cannot compile is traced instead
            return torch.jit.trace(model, example)


def _torchscript_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_torchscript(model, example), buf)
    return buf.getvalue()


def _torchscript_runner(data: bytes) -> Callable[[torch.Tensor], torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return module


def _max_diff(run: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = model(x).float()
        got = torch.as_tensor(run(x)).float()
    if got.shape != ref.shape:
        return float("inf")
    return float((got - ref).abs().max())


def _serialise(fmt: str, model: nn.Module, x: torch.Tensor, dynamic: bool) -> bytes:
    return onnx_bytes(model, x, dynamic) if fmt == "onnx" else _torchscript_bytes(model, x)


def _runner(fmt: str, data: bytes) -> Callable[[torch.Tensor], torch.Tensor]:
    return _onnx_runner(data) if fmt == "onnx" else _torchscript_runner(data)


def _spatial_probe_ok(fmt: str, data: bytes, model: nn.Module, x: torch.Tensor, atol: float) -> bool:
    """Whether the exported network agrees with torch on a batch of one, first spatial
    axis doubled (False where the torch network itself refuses that size)."""
    probe = torch.cat([x[:1], x[:1]], dim=2)
    try:
        with torch.no_grad():
            model(probe)
    except Exception:  # noqa: BLE001 - the network does not take other sizes
        return False
    try:
        return _max_diff(_runner(fmt, data), model, probe) < atol
    except Exception:  # noqa: BLE001 - onnxruntime or TorchScript refused the size
        return False


def _export_bytes(fmt: str, model: nn.Module, x: torch.Tensor, meta: dict[str, Any],
                  atol: float) -> tuple[bytes, float, bool]:
    """The exported file's bytes (metadata included), the parity difference at ``x``, and
    whether the spatial axes are dynamic (module docstring)."""
    dynamic = True
    # exported from a batch of one and checked on a batch of two: the batch axis is dynamic
    data = _serialise(fmt, model, x[:1], dynamic)
    if not _spatial_probe_ok(fmt, data, model, x, atol):
        dynamic = False
        if fmt == "onnx":  # TorchScript has no fixed axes to declare
            data = _serialise(fmt, model, x[:1], dynamic)
    diff = _max_diff(_runner(fmt, data), model, x)
    meta["dynamic_spatial"] = dynamic
    meta["parity_max_abs_diff"] = diff
    return _with_metadata(fmt, data, meta), diff, dynamic


def export_bytes(
    checkpoint: str | os.PathLike, format: str = "onnx", *, atol: float = PARITY_ATOL
) -> tuple[bytes, ExportReport]:
    """:func:`export_checkpoint` without writing: the exported file's bytes and its report
    (``path`` is the checkpoint's). ``medimg predict --backend onnxruntime`` runs a
    checkpoint this way, parity-checked like a file export.

    Raises:
        As :func:`export_checkpoint`.
    """
    fmt = str(format).lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unsupported export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}",
                          cli_hint="use --format onnx or --format torchscript")
    ckpt = load_checkpoint(checkpoint)
    meta = export_metadata(ckpt, checkpoint)
    model = build_model(ckpt).float().eval()
    roi = [int(r) for r in meta["inference"]["roi_size"]]
    x = torch.randn((2, meta["in_channels"], *roi), generator=torch.Generator().manual_seed(0))
    try:
        data, diff, dynamic = _export_bytes(fmt, model, x, meta, atol)
    except (MissingDependencyError, CheckpointError):
        raise
    except Exception as exc:
        raise CheckpointError(
            f"cannot export the network '{meta['model']['name']}' of '{checkpoint}' to {fmt}: {exception_reason(exc)}",
            cli_hint="try the other --format (onnx or torchscript)",
        ) from exc
    if not np.isfinite(diff) or diff >= atol:
        raise CheckpointError(
            f"parity check failed exporting '{checkpoint}' to {fmt}: the exported network's logits differ from "
            f"torch's by up to {diff:.3g} (limit {atol:g}) on a random input of shape {tuple(x.shape)}",
            hint="export to the other format (onnx or torchscript), or predict with the torch backend",
            cli_hint="try the other --format (onnx or torchscript), or predict with --backend torch; the exported "
            "network would not predict as the checkpoint does",
        )
    return data, ExportReport(Path(checkpoint), fmt, diff, tuple(x.shape), dynamic, meta)


def export_checkpoint(
    checkpoint: str | os.PathLike,
    path: str | os.PathLike,
    format: str = "onnx",
    *,
    atol: float = PARITY_ATOL,
) -> ExportReport:
    """Export the network of a medimg checkpoint, checked for parity (module docstring).

    Args:
        checkpoint: a medimg checkpoint (``best.pt`` / ``last.pt``).
        path: the file to write (``.onnx``, ``.pt``...); written atomically, parent
            folders created; nothing is written when the export fails.
        format: ``"onnx"`` or ``"torchscript"``.
        atol: the largest accepted absolute logit difference (float32).

    Returns:
        An :class:`ExportReport`.

    Raises:
        ConfigError: an unknown ``format``, or ``path`` is a folder.
        CheckpointError: not a medimg checkpoint (see :func:`load_checkpoint`), the
            network does not export, or the exported network differs by ``atol`` or more.
        MissingDependencyError: ONNX without the ``onnx`` / ``onnxruntime`` packages.
        ImageWriteError: ``path`` cannot be written.
    """
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"export destination '{out}' is a folder; expected a file name",
                          hint=f"give a file path such as '{out / 'model.onnx'}'",
                          cli_hint=f"give a file as OUT, e.g. {out / 'model.onnx'}")
    data, report = export_bytes(checkpoint, format, atol=atol)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        why = ("a folder on its path is a file" if isinstance(exc, (FileExistsError, NotADirectoryError))
               else (exc.strerror or exception_reason(exc)).lower())
        raise ImageWriteError(f"cannot write the exported model to '{out}': {why}",
                              hint="choose a folder you can write to") from exc
    return ExportReport(out, report.format, report.max_abs_diff, report.input_shape, report.dynamic_spatial,
                        report.metadata)


def _metadata_json(text: str | bytes | None, path: Path) -> dict[str, Any]:
    """Parse and check the stored metadata of ``path`` (None: there is none)."""
    how = "export the medimg checkpoint it came from with export_checkpoint"
    cli_how = "export the medimg checkpoint it came from with `medimg export CHECKPOINT --format onnx OUT`"
    if not text:
        raise CheckpointError(
            f"'{path}' holds no medimg prediction settings (no '{METADATA_KEY}' metadata): it was not "
            "written by medimg's export",
            hint=how,
            cli_hint=cli_how,
        )
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"'{path}': its medimg metadata is not valid JSON ({exc})", hint=how,
                              cli_hint=cli_how) from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"'{path}': its medimg metadata is not a medimg export description", hint=how,
                              cli_hint=cli_how)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise CheckpointError(
            f"'{path}' was exported with format_version {version!r}; this medimg reads up to {EXPORT_VERSION}",
            hint="upgrade medimg (pip install -U medimg)",
        )
    return meta


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored in an exported ONNX or TorchScript file (module docstring).

    ONNX metadata is read with onnxruntime (or ``onnx`` where onnxruntime is absent).

    Raises:
        CheckpointError: the file is missing or unreadable, or holds no medimg metadata.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"exported model not found: '{p}'")
    with open(p, "rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    try:
        if is_zip:  # a TorchScript archive
            extra = {f"{METADATA_KEY}.json": ""}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
            return _metadata_json(extra[f"{METADATA_KEY}.json"], p)
        ort = _need("onnxruntime", "running an ONNX model",
                    "pip install 'medimg[onnx]', or predict with the medimg checkpoint (.pt) and --backend torch")
        session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    except CheckpointError:
        raise
    except MissingDependencyError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"cannot read '{p}' as an ONNX or TorchScript model: {exception_reason(exc).splitlines()[0][:200]}",
            hint="give a file written by medimg's export (or a medimg checkpoint)",
        ) from exc
    return _metadata_json(text, p)
