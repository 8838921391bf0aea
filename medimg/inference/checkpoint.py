"""The medimg checkpoint: weights plus everything prediction needs, as plain data.

A checkpoint is one ``torch.save`` dict that loads with ``torch.load(path,
weights_only=True)`` (no pickled classes, so loading a file from elsewhere runs no code)::

    {
      "format": "medimg-checkpoint", "format_version": 1,
      "model": {"name": "unet", "params": {"in_channels": 2, "out_channels": 2, ...}},
      "in_channels": 2, "out_channels": 2, "spatial_dims": 3,
      "label_names": ["background", "tumour"],
      "data": {"images": ["flair.nii.gz", "t1c.nii.gz"], "label": "seg.nii.gz", "label_map": {...}},
      "preprocess": [{"name": "orient", "axcodes": "RAS"}, ...],   # the config's list
      "inference": {"roi_size": [96, 96, 96], "overlap": 0.25, "sw_batch_size": 4, ...},
      "training": {"epoch": 12, "metric_name": "dice", "metric": 0.91, ...},
      "versions": {"medimg": "0.1.0", "torch": "2.14.1", "monai": "1.6.1"},
      "state_dict": {...tensors...},
      "optimizer_state": {...} | None,
    }

It lives in the inference layer (the engine re-exports it) because prediction is what
needs to read it; the engine only writes it. This keeps the import graph one-way:
``engine -> inference``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "build_model",
    "to_plain",
]

CHECKPOINT_FORMAT = "medimg-checkpoint"
CHECKPOINT_VERSION = 1
_REQUIRED = ("model", "in_channels", "out_channels", "label_names", "preprocess", "inference", "state_dict")


def to_plain(value: Any) -> Any:
    """Convert config values (pydantic models, paths, tuples, numpy scalars) to plain data.

    The result holds only dict/list/str/int/float/bool/None, which
    ``torch.load(weights_only=True)`` accepts.
    """
    if hasattr(value, "model_dump"):
        return to_plain(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {(k if isinstance(k, (str, int)) else str(k)): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy / torch scalar
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} in a checkpoint as plain data")


def _versions() -> dict[str, str]:
    import monai

    import medimg

    # str(): torch.__version__ is a TorchVersion object, which weights_only loading refuses
    return {"medimg": str(medimg.__version__), "torch": str(torch.__version__), "monai": str(monai.__version__)}


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str,
    model_params: Mapping[str, Any],
    label_names: Sequence[str],
    preprocess: Sequence[Mapping[str, Any]],
    inference: Mapping[str, Any],
    data: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    optimizer_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename).

    Args:
        path: destination ``.pt`` file; parent folders are created.
        model: the network (a DDP wrapper is unwrapped); its ``state_dict`` is saved on CPU.
        model_name: registered name in :data:`medimg.models.MODELS`.
        model_params: the keyword arguments that rebuild it with ``create_model``; must
            contain ``in_channels`` and ``out_channels``.
        label_names: class names, index = class value (0 = background).
        preprocess: deterministic preprocessing specs ``{"name": ..., **params}`` in order.
        inference: sliding-window settings (``roi_size``, ``overlap``, ``sw_batch_size``,
            ``blend``, ``tta_flips``).
        data: input description (``images``, ``label``, ``label_map``).
        training: epoch, metric and similar facts.
        optimizer_state: ``optimizer.state_dict()`` for resuming (optional).

    Returns:
        The path written.
    """
    model = getattr(model, "module", model)  # DistributedDataParallel
    params = to_plain(dict(model_params))
    for key in ("in_channels", "out_channels"):
        if key not in params:
            raise CheckpointError(f"save_checkpoint: model_params must contain '{key}', got {sorted(params)}")
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model": {"name": str(model_name), "params": params},
        "in_channels": int(params["in_channels"]),
        "out_channels": int(params["out_channels"]),
        "spatial_dims": int(params.get("spatial_dims", 3)),
        "label_names": [str(n) for n in label_names],
        "data": to_plain(dict(data or {})),
        "preprocess": to_plain([dict(s) for s in preprocess]),
        "inference": to_plain(dict(inference)),
        "training": to_plain(dict(training or {})),
        "versions": _versions(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer_state,
    }
    if len(payload["label_names"]) != payload["out_channels"]:
        raise CheckpointError(
            f"save_checkpoint: {len(payload['label_names'])} label names "
            f"{payload['label_names']} for a model with out_channels={payload['out_channels']}",
            hint="data.label_names needs one name per output class, background first",
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, out)
    return out


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a medimg checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing, not a torch file, truncated, not a medimg
            checkpoint, of a newer format version, or lacks required entries.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"checkpoint not found: '{p}'" + (" (it is a folder)" if p.is_dir() else ""),
            hint="pass the best.pt or last.pt file of a training run folder",
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError...
        raise CheckpointError(
            f"cannot read checkpoint '{p}': {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="the file is corrupt or truncated, or not a file written by torch.save; "
            "medimg loads only plain-data checkpoints (weights_only=True)",
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = f"keys {sorted(ckpt)[:8]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"'{p}' is not a medimg checkpoint: expected a dict with format='{CHECKPOINT_FORMAT}', found {found}",
            hint="a bare state_dict or another tool's checkpoint cannot be used for prediction; "
            "train with medimg, or wrap the weights with medimg.engine.save_checkpoint",
        )
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint '{p}' has format_version {version!r}; this medimg reads up to {CHECKPOINT_VERSION}",
            hint="upgrade medimg (pip install -U medimg)",
        )
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint '{p}' lacks required entries {missing}")
    return ckpt


def build_model(ckpt: Mapping[str, Any], *, strict: bool = True) -> nn.Module:
    """Rebuild the network of a loaded checkpoint and load its weights (eval mode, CPU).

    Raises:
        CheckpointError: the model name is not registered or the weights do not fit.
    """
    from ..core.errors import MedimgError
    from ..models import create_model

    name = ckpt["model"]["name"]
    try:
        model = create_model(name, **ckpt["model"]["params"])
    except MedimgError as exc:
        raise CheckpointError(f"cannot rebuild the checkpoint's model '{name}': {exc}") from exc
    try:
        model.load_state_dict(ckpt["state_dict"], strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(
            f"the checkpoint's weights do not fit model '{name}' with {ckpt['model']['params']}: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    return model.eval()
