"""The one-line errors a training step can end in: a NaN or infinite loss, and running out
of memory.

Out of memory (a CUDA ``OutOfMemoryError``, or CPU's allocator refusing) becomes an
:class:`~medimg.core.errors.InsufficientMemoryError` that says where it happened, what the
step holds and what the device has, and which config keys lower it:

- the batch: ``B x C x spatial`` and its float32 size;
- weights, gradients and optimizer state: counted from the model's parameters and the
  optimizer's state tensors (before the first step, Adam's two moments per parameter);
- activations, for networks given by ``channels`` (UNet, DynUNet with ``filters``...): the
  planner's documented estimate (:func:`medimg.engine.step_memory.memory_gb`), which is rough
  (within about 2x of measured peaks on CPU);
- what the device has: free GPU memory, or the RAM available to the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..core.errors import InsufficientMemoryError, TrainingError
from .step_memory import memory_gb

__all__ = ["is_out_of_memory", "non_finite_error", "out_of_memory_error"]

_CPU_OOM = ("can't allocate memory", "not enough memory", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CUDA or CPU)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc).lower() for s in _CPU_OOM)


def _cases(batch: Mapping[str, Any]) -> str:
    ids = [str(c) for c in (batch.get("case_id") or [])]
    return (", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")) or "unnamed"


def non_finite_error(exc: Exception, epoch: int, step: int, batch: Mapping[str, Any], saved: bool) -> TrainingError:
    """A NaN or infinite loss at ``epoch``, ``step`` (1-based), naming the batch's cases."""
    done = f"; last.pt holds epoch {epoch - 1}" if epoch > 1 and saved else ""
    return TrainingError(
        f"{exc} at epoch {epoch}, step {step} (batch cases: {_cases(batch)}){done}",
        hint="lower the learning rate (optimizer.lr), clip gradients (trainer.grad_clip: 1.0), turn "
        "off trainer.amp, or check those cases for NaN or infinite voxels",
    )


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f} GB"


def _state_bytes(net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Weights + gradients + optimizer state (2 moments per parameter before Adam's first step)."""
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if torch.is_tensor(t))
    if not state and isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        state = 2 * weights
    return 2 * weights + state


def _activation_bytes(model_params: Mapping[str, Any], image: torch.Tensor, amp: bool) -> float | None:
    """The planner's activation estimate for a network given by ``channels``, else None."""
    widths = model_params.get("channels") or model_params.get("filters")
    if not isinstance(widths, Sequence) or not widths or image.ndim < 4:
        return None
    gb = memory_gb(int(image.shape[0]), [int(s) for s in image.shape[2:]], int(widths[0]), len(widths), amp)
    return gb * 2**30


def _available(device: torch.device) -> str:
    try:
        if device.type == "cuda":
            free, total = torch.cuda.mem_get_info(device)
            return f"{_gb(free)} free of {_gb(total)} on {device}"
        import psutil

        return f"{_gb(psutil.virtual_memory().available)} of RAM available"
    except Exception:  # noqa: BLE001  what the device has is a courtesy, never a second error
        return "unknown free memory"


def out_of_memory_error(exc: BaseException, *, epoch: int, step: int, batch: Mapping[str, Any],
                        net: torch.nn.Module, optimizer: torch.optim.Optimizer, model_params: Mapping[str, Any],
                        device: torch.device, amp: bool) -> InsufficientMemoryError:
    """Running out of memory in a training step: the estimate, what is free, the keys to lower."""
    image = batch.get("image")
    parts = []
    if torch.is_tensor(image):
        parts.append(f"batch {' x '.join(str(s) for s in image.shape)} ({_gb(image.numel() * 4)})")
    parts.append(f"weights, gradients and optimizer state {_gb(_state_bytes(net, optimizer))}")
    act = _activation_bytes(model_params, image, amp) if torch.is_tensor(image) else None
    if act is not None:
        parts.append(f"activations about {_gb(act)} (rough estimate)")
    return InsufficientMemoryError(
        f"out of memory on {device} at epoch {epoch}, step {step} (batch cases: {_cases(batch)}): "
        f"{'; '.join(parts)}; {_available(device)}",
        hint="lower trainer.batch_size, the patch (random_crop roi_size in augment, and inference.roi_size), "
        "or model.channels; or set trainer.amp: bf16 (CPU, CUDA) or fp16 (CUDA)",
    )
