"""Prediction with an exported ONNX model through the same :class:`Predictor` path.

:class:`OnnxNetwork` is a network callable backed by an onnxruntime ``InferenceSession``;
the :class:`Predictor` it is given does everything else exactly as with the torch module:
preprocessing, sliding window, flip TTA, inversion to the source grid, classification.
:func:`load_predictor` builds a predictor from a medimg checkpoint or from an ONNX or
TorchScript file written by :func:`~medimg.inference.export.export_checkpoint` (with the
:class:`~medimg.core.spec.InferenceSpec` stored inside it), for one of the :data:`BACKENDS`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import (
    CheckpointError,
    ConfigError,
    GeometryError,
    MissingDependencyError,
    require,
)
from ..core.spec import InferenceSpec
from .export import export_bytes, read_export_metadata
from .predictor import Predictor, resolve_device

__all__ = ["BACKENDS", "OnnxNetwork", "load_predictor", "onnx_session"]

#: Where a predictor's network runs (``medimg predict --backend``).
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")


def _onnxruntime() -> Any:
    """The onnxruntime module, or a :class:`MissingDependencyError` saying how to get it."""
    try:
        return require("onnxruntime", "onnx", "the onnxruntime backend")
    except MissingDependencyError as exc:
        raise exc.reworded("pip install 'medimg[onnx]', or predict a medimg checkpoint (.pt) with --backend torch")


def onnx_session(model: str | os.PathLike | bytes, device: str | torch.device = "cpu") -> Any:
    """An onnxruntime ``InferenceSession`` on ``model`` (a path or serialised bytes):
    CUDA where ``device`` is a CUDA device and onnxruntime has it, else CPU.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
    """
    ort = _onnxruntime()
    providers = ["CPUExecutionProvider"]
    if resolve_device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=providers)


class OnnxNetwork(nn.Module):
    """An onnxruntime session as a network: ``(B, C, *spatial)`` -> logits, float32.

    It holds no parameters, so a :class:`Predictor` moving it to a device moves nothing;
    inputs are copied to the CPU for onnxruntime and outputs come back on the input's
    device. Copies (``copy.deepcopy``, as :meth:`Predictor.with_options` makes for another
    device) share the session, which onnxruntime allows to run concurrently.

    Args:
        session: an onnxruntime ``InferenceSession`` with one input.
        in_channels: the model's input channels (for messages).
    """

    def __init__(self, session: Any, in_channels: int | None = None) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.input_shape = list(session.get_inputs()[0].shape)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fixed = [d for d in self.input_shape[2:] if isinstance(d, int)]
        if len(fixed) == x.ndim - 2 and list(x.shape[2:]) != fixed:
            raise GeometryError(
                f"this ONNX model was exported for inputs of spatial size {tuple(fixed)} only, got "
                f"{tuple(x.shape[2:])}",
                hint="resize the images to that size in the preprocessing, or predict with the checkpoint",
            )
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(out).to(x.device)

    def __deepcopy__(self, memo: dict) -> OnnxNetwork:
        return OnnxNetwork(self.session, self.in_channels)

    def extra_repr(self) -> str:
        return f"input={self.input_name}{self.input_shape}"


def _is_zip(path: Path) -> bool:
    """torch.save and TorchScript files are zip archives; ONNX is a protocol buffer."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip holding compiled ``code/`` (a checkpoint holds only data)."""
    import zipfile

    if not _is_zip(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any("/code/" in name for name in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _torchscript_predictor(path: Path, device: str | torch.device, overrides: dict[str, Any]) -> Predictor:
    """A predictor running the exported TorchScript model at ``path``."""
    import warnings

    meta = read_export_metadata(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        module = torch.jit.load(str(path), map_location="cpu")
    return _assemble(module, _stored_spec(meta, path), meta, path, device, overrides)


def _stored_spec(meta: dict[str, Any], path: Path) -> InferenceSpec:
    try:
        return InferenceSpec.model_validate(meta["inference"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"'{path}': its stored prediction settings cannot be read ({exc})",
                              hint="export the checkpoint again with this medimg") from None


def _onnx_predictor(path: Path, device: str | torch.device, overrides: dict[str, Any]) -> Predictor:
    """A predictor running the exported ONNX model at ``path``."""
    _onnxruntime()
    meta = read_export_metadata(path)
    spec = _stored_spec(meta, path)
    return _assemble(OnnxNetwork(onnx_session(path, device), meta.get("in_channels")), spec, meta, path,
                     device, overrides)


def _checkpoint_via_onnx(path: Path, device: str | torch.device, overrides: dict[str, Any]) -> Predictor:
    """A predictor running a medimg checkpoint's network exported to ONNX in memory
    (parity-checked as ``medimg export`` checks it)."""
    _onnxruntime()
    data, report = export_bytes(path, "onnx")
    meta = report.metadata
    spec = InferenceSpec.model_validate(meta["inference"])
    return _assemble(OnnxNetwork(onnx_session(data, device), meta["in_channels"]), spec, meta, path, device,
                     overrides)


def _assemble(network: nn.Module, spec: InferenceSpec, meta: dict[str, Any], path: Path,
              device: str | torch.device, overrides: dict[str, Any]) -> Predictor:
    amp = overrides.pop("amp", False)
    spec = spec.with_updates(**overrides)
    dims = int(meta.get("spatial_dims", len(spec.roi_size)))
    if len(spec.roi_size) != dims:
        raise CheckpointError(f"'{path}': roi_size {spec.roi_size} has {len(spec.roi_size)} values for a "
                              f"{dims}D model")
    pred = Predictor(network, spec, device=device, amp=amp)
    pred.checkpoint = {k: v for k, v in meta.items() if k != "inference"}
    return pred


def load_predictor(
    path: str | os.PathLike, backend: str | None = None, device: str | torch.device = "auto", **overrides: Any
) -> Predictor:
    """A :class:`Predictor` from a medimg checkpoint or an exported ONNX model.

    Args:
        path: a medimg checkpoint (``.pt``), or an ONNX or TorchScript file written by
            :func:`~medimg.inference.export.export_checkpoint`.
        backend: ``"torch"`` (a checkpoint or a TorchScript file) or ``"onnxruntime"``
            (an ONNX file, or a checkpoint exported to ONNX in memory, parity-checked);
            None: ``onnxruntime`` for an ONNX file, else ``torch``.
        device: as for :meth:`Predictor.from_checkpoint`; onnxruntime runs on CUDA only
            where its CUDA build is installed, else on the CPU.
        **overrides: settings replacing the stored ones (``overlap``, ``tta_flips``...);
            None values are ignored.

    Raises:
        ConfigError: an unknown backend, an ONNX file with ``backend="torch"`` or a
            TorchScript file with ``backend="onnxruntime"``.
        CheckpointError: a file that is neither a medimg checkpoint nor an ONNX model with
            medimg metadata.
        MissingDependencyError: the onnxruntime backend without onnxruntime installed.
    """
    p = Path(path)
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}",
                          cli_hint="use --backend torch or --backend onnxruntime")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    # an ONNX file: named .onnx, or any file but a zip archive for the onnxruntime backend
    onnx_file = p.is_file() and (p.suffix.lower() == ".onnx" or (backend == "onnxruntime" and not _is_zip(p)))
    if onnx_file and backend == "torch":
        raise ConfigError(
            f"'{p}' is an ONNX model, which the torch backend cannot run",
            hint="use backend='onnxruntime', or give the medimg checkpoint (.pt)",
            cli_hint="use --backend onnxruntime (or leave --backend out), or give the medimg checkpoint (.pt)",
        )
    if onnx_file:
        return _onnx_predictor(p, device, overrides)
    if p.is_file() and _is_torchscript(p):
        if backend == "onnxruntime":
            raise ConfigError(
                f"'{p}' is a TorchScript model, which onnxruntime cannot run",
                hint="use backend='torch', or export the checkpoint to ONNX",
                cli_hint="use --backend torch (or leave --backend out), or `medimg export CHECKPOINT --format onnx OUT`",
            )
        return _torchscript_predictor(p, device, overrides)
    if backend == "onnxruntime":
        return _checkpoint_via_onnx(p, device, overrides)
    return Predictor.from_checkpoint(p, device, **overrides)
