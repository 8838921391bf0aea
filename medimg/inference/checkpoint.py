"""The medimg checkpoint: weights plus everything prediction needs, as plain data.

A checkpoint is one ``torch.save`` dict that loads with ``torch.load(path,
weights_only=True)`` (no pickled classes, so loading a file from elsewhere runs no code)::

    {
      "format": "medimg-checkpoint", "format_version": 1,
      "model": {"name": "unet", "params": {"in_channels": 2, "out_channels": 2, ...}},
      "inference": {                       # InferenceSpec.model_dump(): THE description
          "roi_size": [96, 96, 96], "overlap": 0.25, "sw_batch_size": 4, "blend": "gaussian",
          "tta_flips": [], "task": "segmentation",
          "preprocess": [{"name": "orient", "axcodes": "RAS"}, ...],
          "image_keys": ["flair.nii.gz", "t1c.nii.gz"], "in_channels": 2,
          "label_names": ["background", "tumour"], "label_map": {1: 1, 2: 1, 4: 1},
      },
      # views of the above, as format 1 has always had them (older readers use them):
      "in_channels": 2, "out_channels": 2, "spatial_dims": 3,
      "label_names": [...], "preprocess": [...],
      "data": {"images": [...], "label_map": {...}, "label_names": [...], "label": "seg.nii.gz"},
      "training": {"epoch": 12, "metric_name": "dice", "metric": 0.91, ...},
      "versions": {"medimg": "0.1.0", "torch": "2.14.1", "monai": "1.6.1"},
      "state_dict": {...tensors...},
      "optimizer_state": {...} | None,
      "resume": {...} | None,              # training checkpoints: what an exact resume needs
    }

The spec under ``"inference"`` is what :class:`~medimg.inference.Predictor` is rebuilt
from (:func:`inference_spec`). Checkpoints written before the spec existed keep only the
sliding-window settings there; their spec is assembled from the views, so they load too.

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
from pydantic import ValidationError
from torch import nn

from ..core.environment import CHECKPOINT_PACKAGES, package_versions
from ..core.errors import CheckpointError, MedimgError, exception_reason
from ..core.plain import to_plain
from ..core.spec import InferenceSection, InferenceSpec
from ..models import MODELS
from .runlog import atomic_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "save_checkpoint",
    "checkpoint_payload",
    "write_checkpoint",
    "load_checkpoint",
    "inference_spec",
    "build_model",
]

CHECKPOINT_FORMAT = "medimg-checkpoint"
CHECKPOINT_VERSION = 1
_REQUIRED = ("model", "in_channels", "out_channels", "label_names", "preprocess", "inference", "state_dict")


def _spec_from_parts(
    model_params: Mapping[str, Any],
    label_names: Sequence[str] | None,
    preprocess: Sequence[Any] | None,
    inference: Mapping[str, Any] | InferenceSection | None,
    data: Mapping[str, Any] | None,
) -> InferenceSpec:
    """An :class:`InferenceSpec` from the separate pieces of the keyword form."""
    window = to_plain(inference) if inference is not None else {}
    data = dict(data or {})
    try:
        return InferenceSpec.model_validate(
            {
                **window,
                "preprocess": to_plain(list(preprocess or [])),
                "image_keys": to_plain(data.get("images")),
                "in_channels": model_params.get("in_channels"),
                "label_names": list(label_names) if label_names is not None else None,
                "label_map": to_plain(data.get("label_map")),
            }
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CheckpointError(f"save_checkpoint: invalid prediction setting '{where}': {err['msg']}") from None


def _payload(
    model: nn.Module,
    model_name: str,
    params: dict[str, Any],
    spec: InferenceSpec,
    data: Mapping[str, Any] | None,
    from_parts: bool,
) -> dict[str, Any]:
    """The checkpoint dict but ``training`` and ``optimizer_state`` (module docstring)."""
    names = [str(n) for n in (spec.label_names or [])]
    if len(names) != int(params["out_channels"]):
        raise CheckpointError(
            f"save_checkpoint: {len(names)} label names {names} for a model with "
            f"out_channels={params['out_channels']}",
            hint="data.label_names needs one name per output class, background first",
        )
    plain = to_plain(spec)
    views = {"images": plain["image_keys"], "label_map": plain["label_map"], "label_names": names}
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model": {"name": model_name, "params": params},
        "inference": plain,
        "in_channels": int(params["in_channels"]),
        "out_channels": int(params["out_channels"]),
        "spatial_dims": int(params.get("spatial_dims", 3)),
        "label_names": names,
        "preprocess": plain["preprocess"],
        # the keyword form stores data as given; with a spec, data adds to the views
        "data": to_plain(dict(data)) if from_parts and data is not None else {**views, **to_plain(dict(data or {}))},
        "versions": package_versions(CHECKPOINT_PACKAGES),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    model_name: str,
    model_params: Mapping[str, Any],
    spec: InferenceSpec | None = None,
    label_names: Sequence[str] | None = None,
    preprocess: Sequence[Mapping[str, Any]] | None = None,
    inference: Mapping[str, Any] | InferenceSection | None = None,
    data: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    optimizer_state: Mapping[str, Any] | None = None,
    resume: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename).

    Give the prediction settings either as one ``spec`` (what training does), or, to wrap
    weights trained elsewhere, as ``label_names``, ``preprocess``, ``inference``
    (sliding-window settings) and ``data`` (``images``, ``label_map``).

    Args:
        path: destination ``.pt`` file; parent folders are created.
        model: the network (a DDP wrapper is unwrapped); its ``state_dict`` is saved on CPU.
        model_name: registered name in :data:`medimg.models.MODELS`.
        model_params: the keyword arguments that rebuild it with ``create_model``; must
            contain ``in_channels`` and ``out_channels``.
        spec: everything prediction needs (:class:`~medimg.core.spec.InferenceSpec`).
        label_names: class names, index = class value (0 = background).
        preprocess: deterministic preprocessing specs ``{"name": ..., **params}`` in order.
        inference: sliding-window settings (``roi_size``, ``overlap``, ``sw_batch_size``,
            ``blend``, ``tta_flips``).
        data: input description (``images``, ``label``, ``label_map``); stored as given
            under ``"data"``.
        training: epoch, metric and similar facts.
        optimizer_state: ``optimizer.state_dict()`` for resuming (optional).
        resume: the rest of what an exact resume needs (epoch, scheduler, scaler,
            callbacks, history, RNG states; :mod:`medimg.engine.resume`), plain data and
            tensors only.

    Returns:
        The path written.

    Raises:
        CheckpointError: ``model_params`` without ``in_channels`` / ``out_channels``, or
            label names that do not match ``out_channels``.
    """
    return write_checkpoint(
        checkpoint_payload(
            model, model_name=model_name, model_params=model_params, spec=spec, label_names=label_names,
            preprocess=preprocess, inference=inference, data=data, training=training,
            optimizer_state=optimizer_state, resume=resume,
        ),
        path,
    )


def checkpoint_payload(
    model: nn.Module,
    *,
    model_name: str,
    model_params: Mapping[str, Any],
    spec: InferenceSpec | None = None,
    label_names: Sequence[str] | None = None,
    preprocess: Sequence[Mapping[str, Any]] | None = None,
    inference: Mapping[str, Any] | InferenceSection | None = None,
    data: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    optimizer_state: Mapping[str, Any] | None = None,
    resume: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict :func:`save_checkpoint` writes (arguments as there, without
    ``path``); its tensors are the model's and optimizer's own where they live on the CPU
    (copy them before training goes on if the dict is written later).

    Raises:
        CheckpointError: as :func:`save_checkpoint`.
    """
    model = getattr(model, "module", model)  # DistributedDataParallel
    params = to_plain(dict(model_params))
    for key in ("in_channels", "out_channels"):
        if key not in params:
            raise CheckpointError(f"save_checkpoint: model_params must contain '{key}', got {sorted(params)}")
    from_parts = spec is None
    if spec is None:
        spec = _spec_from_parts(params, label_names, preprocess, inference, data)
    elif label_names is not None or preprocess is not None or inference is not None:
        raise TypeError("save_checkpoint: give either spec or label_names/preprocess/inference, not both")
    payload = _payload(model, str(model_name), params, spec, data, from_parts)
    payload["training"] = to_plain(dict(training or {}))
    payload["optimizer_state"] = optimizer_state
    payload["resume"] = dict(resume) if resume is not None else None
    return payload


def write_checkpoint(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` a checkpoint dict (:func:`checkpoint_payload`) atomically: to a hidden
    temporary name beside ``path`` (:func:`~medimg.inference.runlog.atomic_path`), renamed over
    it once complete, so a run killed mid-write never leaves a half-written file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(dict(payload), tmp)
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
            hint="give the best.pt or last.pt file of a training run folder (written by `medimg train`)",
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError...
        raise CheckpointError(
            f"cannot read checkpoint '{p}': {_unreadable_because(exc, p)}",
            hint="the file is corrupt or truncated, or not a medimg checkpoint (medimg loads only "
            "plain-data checkpoints); give one written by `medimg train` or save_checkpoint",
            cli_hint="the file is corrupt or truncated, or not a medimg checkpoint; give one written "
            "by `medimg train` (best.pt or last.pt in its run folder)",
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        if isinstance(ckpt, dict):
            found = f"entries {sorted(map(str, ckpt))[:8]}"
        else:
            found = "a single tensor" if torch.is_tensor(ckpt) else "no named entries"
        raise CheckpointError(
            f"'{p}' is not a medimg checkpoint: expected named entries with format "
            f"'{CHECKPOINT_FORMAT}', found {found}",
            hint="a bare state_dict or another tool's checkpoint cannot be used for prediction; "
            "train with medimg, or wrap the weights with save_checkpoint",
            cli_hint="a bare state_dict or another tool's checkpoint cannot be used for prediction; "
            "give a checkpoint written by `medimg train`",
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


def _first_mismatch(exc: Exception) -> str:
    """The first detail of torch's ``load_state_dict`` error ("size mismatch for ...",
    "Missing key(s) ..."), without its opening line (which names the Python class)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        lines = lines[1:]
    return lines[0] if lines else "the parameters differ"


def _unreadable_because(exc: Exception, path: Path) -> str:
    """Why ``torch.load`` could not read ``path``, in words (torch's own messages speak of
    pickles, zip archives and ``weights_only``, or say only "Invalid argument")."""
    import pickle

    if isinstance(exc, PermissionError):
        return exception_reason(exc)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as err:
        return exception_reason(err)
    if not head or isinstance(exc, EOFError):
        return "the file is empty or ends early (truncated)"
    if isinstance(exc, pickle.UnpicklingError) and "global" in str(exc).lower():  # a class to import
        return "it holds Python objects, not the plain data of a medimg checkpoint (another tool's file?)"
    if head == b"PK\x03\x04":  # torch.save's zip archive, cut short or damaged
        return "the file is damaged or truncated"
    return "not a checkpoint file, or damaged"


def inference_spec(ckpt: Mapping[str, Any], source: str | os.PathLike = "checkpoint") -> InferenceSpec:
    """The :class:`~medimg.core.spec.InferenceSpec` of a loaded checkpoint.

    Checkpoints written before the spec existed (only sliding-window settings under
    ``"inference"``) get theirs from the format's other entries (``preprocess``,
    ``label_names``, ``data``, ``in_channels``).

    Raises:
        CheckpointError: the stored settings are not a valid spec.
    """
    stored = dict(ckpt.get("inference") or {})
    if "preprocess" not in stored:  # written before the spec: assemble it from the views
        data = ckpt.get("data") or {}
        stored.update(
            preprocess=ckpt.get("preprocess", []),
            label_names=ckpt.get("label_names"),
            image_keys=data.get("images"),
            label_map=data.get("label_map"),
            in_channels=ckpt.get("in_channels"),
        )
    try:
        return InferenceSpec.model_validate(stored)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CheckpointError(
            f"checkpoint '{source}' holds prediction settings this medimg cannot read "
            f"(inference.{where}: {err['msg']}); retrain it with this medimg (`medimg train`), or "
            "re-save its weights with valid settings",
        ) from None


def build_model(ckpt: Mapping[str, Any], *, strict: bool = True) -> nn.Module:
    """Rebuild the network of a loaded checkpoint and load its weights (eval mode, CPU).

    Raises:
        CheckpointError: the model name is not registered or the weights do not fit.
    """
    name = ckpt["model"]["name"]
    try:
        model = MODELS.build({"name": name, **ckpt["model"]["params"]})
    except MedimgError as exc:
        raise CheckpointError(f"cannot rebuild the checkpoint's model '{name}': {exception_reason(exc)}") from exc
    try:
        model.load_state_dict(ckpt["state_dict"], strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(
            f"the checkpoint's weights do not fit model '{name}' with {ckpt['model']['params']}: "
            f"{_first_mismatch(exc)}"
        ) from exc
    return model.eval()


def model_out_channels(model: nn.Module) -> int | None:
    """Output channels of the last convolution, if any (None when unknown)."""
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose3d))]
    return int(convs[-1].out_channels) if convs else None


def model_in_channels(model: nn.Module) -> int | None:
    """Input channels of the first convolution, if any (None when unknown)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return int(m.in_channels)
    return None

