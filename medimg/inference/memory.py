"""How much memory a case will need, estimated before the network runs, and the check
that fails a case which cannot fit (the batch goes on with the next one).

The estimate (:func:`estimate_peak_bytes`) adds up the arrays the prediction of one
case holds at its peak, in bytes, with ``b`` the bytes of the blending dtype (float32: 4):

- ``S`` voxels of the source grid and ``P`` of the preprocessed grid (each spatial axis
  at least the roi: MONAI pads shorter axes), ``C`` input channels, ``K`` classes, ``R``
  voxels of one tile (the roi), ``B`` tiles per forward pass (``sw_batch_size``),
  ``T`` = 1 with flip TTA, else 0, ``A`` bytes of network activations per tile voxel;
- held throughout: the source as float (``b C S``) and the preprocessed input (``b C P``);
- sliding window: the output buffer MONAI accumulates the weighted tile outputs into and
  its weight map (``b (K + 1) P``); with TTA also the flipped input and the accumulator of
  the passes (``b (C + K) P T``); the tiles in flight (``B R (2 b (C + K) + A)``);
- inversion to the source grid, after the sliding window has freed its tiles: the
  preprocessed probabilities (``b K P``), inverted a few classes (``k``, 4) at a time with
  the running maximum, the sum of the classes, the background and the labels
  (``b S (2 k + 3) + 9 S``); with
  ``--save-probabilities`` all classes at once instead (``b S 2 K + 9 S``);

so ``peak = b C (S + P) + max(sliding window, inversion)``. ``A`` is measured once per
predictor: the network runs on one tile on PyTorch's ``meta`` device (shapes only, no
arithmetic, no memory) while module hooks track which outputs are still alive, and the
largest sum seen, times 1.5 for the work buffers inside the modules, is ``A R``; a
network that cannot run on ``meta`` (an ONNX session) gets 64 float32 channels per voxel.

``tests/inference/test_memory.py`` checks the estimate against the peak RSS measured on
CPU for three case sizes (within 2x). docs/performance.md gives the figures of a
14-class CT-sized case.

On CPU the memory available is ``psutil.virtual_memory().available``; on CUDA the GPU's
free memory (``torch.cuda.mem_get_info``) is compared with the part of the estimate that
lives on the GPU (preprocessed input and sliding window; the inversion runs on the CPU).
``max_memory_gb`` (``--max-memory GB``) replaces the figure measured.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..core.errors import InsufficientMemoryError

__all__ = [
    "CaseSize",
    "activation_bytes_per_voxel",
    "available_bytes",
    "check_case_memory",
    "estimate_peak_bytes",
]

#: classes inverted to the source grid at a time on the label path
INVERT_CLASS_CHUNK = 4
#: activation bytes per tile voxel for a network the meta-device probe cannot run
DEFAULT_ACTIVATION_BYTES = 64 * 4
#: allowance for the work buffers inside modules, on top of the live module outputs
ACTIVATION_SLACK = 1.5
GB = 1024**3


@dataclass(frozen=True)
class CaseSize:
    """What the estimate of one case depends on (see the module doc for the formula).

    Attributes:
        source_shape, pre_shape: spatial shapes of the source and preprocessed grids.
        in_channels, num_classes: ``C`` and ``K``.
        roi: tile shape; sw_batch_size: ``B``; tta: flip TTA on (``T``).
        activation_bytes: ``A``, network activation bytes per tile voxel.
        save_probabilities: all classes inverted at once (``--save-probabilities``).
        dtype_bytes: ``b``, bytes per value of the blended outputs (float32: 4).
    """

    source_shape: tuple[int, ...]
    pre_shape: tuple[int, ...]
    in_channels: int
    num_classes: int
    roi: tuple[int, ...]
    sw_batch_size: int
    tta: bool
    activation_bytes: float
    save_probabilities: bool = False
    dtype_bytes: int = 4


def _parts(c: CaseSize) -> tuple[float, float, float]:
    """(held throughout, sliding window phase, inversion phase), in bytes."""
    b, C, K, t = c.dtype_bytes, c.in_channels, c.num_classes, int(c.tta)
    S = math.prod(c.source_shape)
    P = math.prod(max(n, r) for n, r in zip(c.pre_shape, c.roi))
    R = math.prod(c.roi)
    held = b * C * (S + P)
    window = b * (K + 1) * P + b * (C + K) * P * t + c.sw_batch_size * R * (2 * b * (C + K) + c.activation_bytes)
    k = K if c.save_probabilities else min(K, INVERT_CLASS_CHUNK)
    inversion = b * K * P + b * S * (2 * k + (0 if c.save_probabilities else 3)) + 9 * S
    return held, window, inversion


def estimate_peak_bytes(case: CaseSize, device: str = "cpu") -> int:
    """Estimated peak bytes of predicting one case (module doc); on ``device="cuda"`` the
    part held on the GPU only (preprocessed input and sliding window)."""
    held, window, inversion = _parts(case)
    if device == "cuda":
        b, P = case.dtype_bytes, math.prod(max(n, r) for n, r in zip(case.pre_shape, case.roi))
        return int(b * case.in_channels * P + window)
    return int(held + max(window, inversion))


def activation_bytes_per_voxel(model: nn.Module, in_channels: int, roi: Sequence[int]) -> float:
    """``A``: the largest sum of live module outputs of one forward pass on one tile, per
    tile voxel, times :data:`ACTIVATION_SLACK`; run on the ``meta`` device (no arithmetic,
    no memory). :data:`DEFAULT_ACTIVATION_BYTES` where the network cannot run there."""
    try:
        meta = copy.deepcopy(model).to("meta")
    except Exception:  # noqa: BLE001 - any network that does not move: the default
        return float(DEFAULT_ACTIVATION_BYTES)
    live = {"now": 0, "peak": 0}

    def freed(n: int) -> None:
        live["now"] -= n

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        outs = output if isinstance(output, (tuple, list)) else [output]
        for t in outs:
            if not isinstance(t, torch.Tensor) or t._base is not None or getattr(t, "_medimg_seen", False):
                continue
            t._medimg_seen = True  # an identity module hands the same tensor on: count it once
            n = t.numel() * t.element_size()
            live["now"] += n
            live["peak"] = max(live["peak"], live["now"])
            weakref.finalize(t, freed, n)

    handles = [m.register_forward_hook(hook) for m in meta.modules()]
    try:
        with torch.inference_mode():
            meta(torch.empty((1, in_channels, *roi), device="meta"))
    except Exception:  # noqa: BLE001 - an op without a meta kernel: the default
        return float(DEFAULT_ACTIVATION_BYTES)
    finally:
        for h in handles:
            h.remove()
    if live["peak"] <= 0:
        return float(DEFAULT_ACTIVATION_BYTES)
    return ACTIVATION_SLACK * live["peak"] / math.prod(roi)


def available_bytes(device: torch.device, max_memory_gb: float | None = None) -> int:
    """Memory a case may use: ``max_memory_gb`` when given, else what the system reports
    free (CPU: ``psutil.virtual_memory().available``; CUDA: ``torch.cuda.mem_get_info``)."""
    if max_memory_gb is not None:
        return int(float(max_memory_gb) * GB)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= 0.1 * GB else f"{n / 1024**2:.0f} MB"


def _fixes(case: CaseSize, device: torch.device) -> list[str]:
    """The command-line settings that lower the estimate, each with the estimate it gives."""
    dev = "cuda" if device.type == "cuda" else "cpu"
    fixes: list[str] = []
    if case.sw_batch_size > 1:
        fixes.append(f"--sw-batch-size 1 ({_gb(estimate_peak_bytes(replace(case, sw_batch_size=1), dev))})")
    if case.tta:
        fixes.append(f"--no-tta ({_gb(estimate_peak_bytes(replace(case, tta=False), dev))})")
    if case.save_probabilities:
        fixes.append(f"no --save-probabilities ({_gb(estimate_peak_bytes(replace(case, save_probabilities=False), dev))})")
    half = tuple(max(16, (r // 2) // 16 * 16) for r in case.roi)
    if half != case.roi:
        fixes.append(f"--roi-size {','.join(map(str, half))} ({_gb(estimate_peak_bytes(replace(case, roi=half), dev))})")
    if len(fixes) > 1:
        least = replace(case, roi=half, sw_batch_size=1, tta=False, save_probabilities=False)
        fixes.append(f"all of these ({_gb(estimate_peak_bytes(least, dev))})")
    if dev == "cuda":
        import psutil

        cpu = estimate_peak_bytes(case, "cpu")
        fixes.append(f"--device cpu ({_gb(cpu)}, {_gb(psutil.virtual_memory().available)} free there)")
    fixes.append(f"--max-memory {estimate_peak_bytes(case, dev) / GB:.2f} (GB) if that much is really free")
    return fixes


def check_case_memory(case: CaseSize, device: torch.device, case_id: str | None = None,
                      max_memory_gb: float | None = None) -> int:
    """The case's estimate, or :class:`InsufficientMemoryError` (one line: the estimate,
    the memory available and the settings that would make it fit) when it exceeds the
    memory available (:func:`available_bytes`)."""
    dev = "cuda" if device.type == "cuda" else "cpu"
    need = estimate_peak_bytes(case, dev)
    limit = available_bytes(device, max_memory_gb)
    if need <= limit:
        return need
    where = "allowed (--max-memory)" if max_memory_gb is not None else ("free on the GPU" if dev == "cuda" else "available")
    shape = "x".join(map(str, case.pre_shape))
    raise InsufficientMemoryError(
        f"case '{case_id or '?'}' needs about {_gb(need)} ({case.num_classes} classes on {shape} preprocessed "
        f"voxels, roi {'x'.join(map(str, case.roi))}, {case.sw_batch_size} tiles per pass"
        f"{', flip TTA' if case.tta else ''}) but {_gb(limit)} is {where} on {device}; "
        f"to fit, try: {', '.join(_fixes(case, device))}",
        hint="lower sw_batch_size or roi_size, tta_flips=[], device='cpu', or pass max_memory_gb",
    )
