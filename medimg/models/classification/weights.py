"""Start a network from a local weights file: everything that fits, by name and shape.

Nothing is downloaded. The file is read with ``torch.load(weights_only=True)`` (plain
tensors only, so a file from elsewhere runs no code). It may hold a bare state dict
(``torch.save(model.state_dict(), path)``, as torchvision and MONAI publish theirs) or a
mapping that keeps one under ``state_dict``, ``model_state_dict``, ``model`` or
``state`` (a medimg checkpoint, most training scripts' checkpoints). A ``module.``
prefix (DataParallel / DDP) or ``_orig_mod.`` prefix (``torch.compile``) is removed.

A tensor loads when the model has a parameter or buffer of the same name and shape;
the others are skipped and reported: typically the classifier head (another number of
classes) and the first convolution (another number of input channels, or the
small-image stem). What is not loaded keeps the fresh initialisation the factory gave it.
A file that fits less than half of the model's weight values is refused: it was saved
from another architecture.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...core.errors import CheckpointError, exception_reason

__all__ = ["WeightsReport", "load_weights", "read_state_dict"]

log = logging.getLogger("medimg.models")

#: Keys under which a checkpoint keeps the model's state dict, in the order tried.
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "state")
_PREFIXES = ("module.", "_orig_mod.")
#: Below this fraction of the model's weight values found in the file, the file is taken
#: for another architecture. A new head or first convolution is far less than half.
_MIN_FRACTION = 0.5
_HINT = ("set the model's 'weights' to a file saved with torch.save(model.state_dict(), PATH), "
         "or leave it out to start from random weights")


@dataclass(frozen=True)
class WeightsReport:
    """What :func:`load_weights` did.

    Attributes:
        path: the file read.
        loaded: model keys set from the file.
        skipped: ``(key, reason)`` for each tensor of the file not used.
        initialised: model keys the file did not set (they keep their initial values).
    """

    path: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)

    def summary(self, limit: int = 8) -> str:
        """One line: counts, then the first ``limit`` skipped keys (with their reasons) and
        model keys left at their initial values."""
        text = (f"weights '{self.path}': {len(self.loaded)} tensors loaded, "
                f"{len(self.skipped)} skipped, {len(self.initialised)} left at their initial values")
        if self.skipped:
            text += "; skipped: " + _first([f"{k} ({why})" for k, why in self.skipped], limit)
        if self.initialised:
            text += "; initial: " + _first(self.initialised, limit)
        return text


def _first(items: list[str], limit: int) -> str:
    """``a, b, c and 4 more``."""
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _find_state_dict(obj: Any, path: Path, model_name: str) -> dict[str, torch.Tensor]:
    """The state dict inside what ``torch.load`` returned, prefixes removed."""
    state = obj if _is_state_dict(obj) else None
    if state is None and isinstance(obj, Mapping):
        state = next((obj[k] for k in _NESTED_KEYS if _is_state_dict(obj.get(k))), None)
    if state is None:
        found = f"a mapping with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"model '{model_name}': weights file '{path}' holds no state dict "
            f"(a mapping of parameter names to tensors); found {found}",
            hint=_HINT,
        )
    out = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _why_unreadable(exc: Exception, path: Path) -> str:
    """Why ``torch.load(weights_only=True)`` failed on ``path``, in words (torch's own
    messages speak of pickles, zip archives and the ``weights_only`` default)."""
    import pickle

    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as err:
        return exception_reason(err)
    if not head or isinstance(exc, EOFError):
        return "the file is empty or ends early (truncated)"
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        return "it was not written by torch.save"
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
        return "it holds Python objects besides tensors, which medimg does not load (they could run code)"
    if "zip archive" in str(exc):
        return "the archive is damaged or truncated"
    return exception_reason(exc)[:200]


def read_state_dict(path: str | os.PathLike[str], *, model_name: str = "model") -> dict[str, torch.Tensor]:
    """The state dict in the local file ``path``, on the CPU.

    Raises:
        CheckpointError: the file is missing, unreadable, or holds no state dict.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(
            f"model '{model_name}': weights file '{p}' does not exist"
            + (" (it is a folder)" if p.is_dir() else "")
            + "; weights are only read from a local file, never downloaded",
            hint=_HINT,
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (truncated, not a torch file, pickled classes: one message)
        reason = _why_unreadable(exc, p)
        raise CheckpointError(
            f"model '{model_name}': weights file '{p}' cannot be read as PyTorch tensors ({reason})",
            hint=_HINT,
        ) from None
    return _find_state_dict(obj, p, model_name)


def load_weights(model: nn.Module, path: str | os.PathLike[str], *, model_name: str = "model") -> WeightsReport:
    """Set the parameters and buffers of ``model`` that a local weights file has, by name
    and shape; log and return what was skipped.

    Args:
        model: the freshly built network (changed in place).
        path: a local file (see the module documentation for what it may hold).
        model_name: the registered name, for messages.

    Returns:
        The :class:`WeightsReport`; a warning is logged on ``medimg.models`` when any
        tensor was skipped or left at its initial value.

    Raises:
        CheckpointError: the file is missing or unreadable, holds no state dict, or
            fits less than half of the model's weight values (another architecture).
    """
    state = read_state_dict(path, model_name=model_name)
    own = model.state_dict()
    loaded, skipped = [], []
    for key, value in state.items():
        if key not in own:
            skipped.append((key, "not in this model"))
        elif tuple(own[key].shape) != tuple(value.shape):
            skipped.append((key, f"shape {tuple(value.shape)} in the file, {tuple(own[key].shape)} in the model"))
        else:
            loaded.append(key)
    total = sum(v.numel() for v in own.values())
    fitting = sum(own[k].numel() for k in loaded)
    if fitting < _MIN_FRACTION * total:
        raise CheckpointError(
            f"model '{model_name}': only {100 * fitting / max(total, 1):.0f}% of the model's weights "
            f"match weights file '{path}' by name and shape (file keys like {list(state)[:3]}, "
            f"model keys like {list(own)[:3]}); it was saved from another architecture",
            hint="use weights saved from the same model (any number of classes or input channels)",
        )
    model.load_state_dict({k: state[k] for k in loaded}, strict=False)
    done = set(loaded)
    report = WeightsReport(str(path), loaded, skipped, [k for k in own if k not in done])
    if report.skipped or report.initialised:
        log.warning("model '%s': %s", model_name, report.summary())
    else:
        log.info("model '%s': %s", model_name, report.summary())
    return report
