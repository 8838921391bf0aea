"""A timed probe of one training step: the planned model, loss and optimizer on random
data of the planned input size (``medimg plan``).

The step is the trainer's (:meth:`medimg.engine.trainer.Trainer._train_step`): forward,
loss, backward, optimizer step, under autocast when AMP is planned. ``warmup`` steps are
run first and not timed (allocator warm-up, cuDNN autotuning); the result is the median of
``steps`` timed steps. With ``layout="auto"`` (training's ``trainer.channels_last``
default) this is done in both layouts of the convolution weights
(:mod:`medimg.engine.layout`) and the faster is reported, as training will keep it. On CUDA the peak allocated memory is measured too, and an
out-of-memory step is reported as such (``fits=False``) rather than raised.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..losses import LOSSES
from ..models import MODELS
from ..models.registry import with_roi_size
from .layout import LAYOUTS, set_conv_layout
from .optim import OPTIMIZERS
from .trainer import amp_dtype

__all__ = ["ProbeResult", "probe_step"]


@dataclass(frozen=True)
class ProbeResult:
    """What the probe measured.

    Attributes:
        seconds_per_step: median wall time of one timed step (NaN when it did not fit).
        steps: timed steps.
        peak_memory_gb: CUDA peak allocated memory of a step; None on other devices.
        fits: False when the step ran out of device memory.
        cpu_seconds_per_step: CPU time of this process per step, all threads together.
        threads: torch's intra-op threads during the probe.
        layout: the layout of the convolution weights timed (the faster of the two with ``"auto"``).
    """

    seconds_per_step: float
    steps: int
    peak_memory_gb: float | None
    fits: bool = True
    cpu_seconds_per_step: float | None = None
    threads: int = 1
    layout: str = "default"

    def contention(self) -> str | None:
        """A warning when, on CPU, the step got under half the CPU time its threads could
        use (other processes were running): the measured time, and the plan, are then
        conservative."""
        if not self.steps or self.cpu_seconds_per_step is None:
            return None
        share = self.cpu_seconds_per_step / (self.seconds_per_step * self.threads)
        if share >= 0.5:
            return None
        return (f"the CPU was busy during the probe: a step got {share:.0%} of {self.threads} thread(s) "
                f"({self.seconds_per_step:.2f} s wall, {self.cpu_seconds_per_step:.2f} s CPU); the plan fits "
                "the machine as it was, re-plan when it is quiet for a longer schedule")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe_step(model: dict[str, Any], loss: dict[str, Any], optimizer: dict[str, Any], *, batch_size: int,
               in_channels: int, out_channels: int, size: list[int], task: str, device: str = "cpu",
               amp: bool | str = False, steps: int = 3, warmup: int = 1, seed: int = 0,
               layout: str = "auto") -> ProbeResult:
    """Time ``steps`` training steps of ``model`` on random ``(batch_size, in_channels,
    *size)`` inputs (labels of ``out_channels`` classes, per voxel for segmentation).

    Args:
        model, loss, optimizer: component specs ``{name, **params}`` as in the config
            (``in_channels``, ``out_channels`` and ``spatial_dims`` are filled in).
        task: ``segmentation`` or ``classification``.
        layout: ``"default"``, ``"channels_last"`` or ``"auto"`` (both, the faster kept).
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    net = MODELS.build({**with_roi_size(model["name"], model, size), "in_channels": in_channels,
                        "out_channels": out_channels, "spatial_dims": len(size)}).to(dev).train()
    loss_fn = LOSSES.build(loss).to(dev)
    opt = OPTIMIZERS.build(optimizer, net.parameters())
    dtype = amp_dtype(amp, dev)
    x = torch.randn((batch_size, in_channels, *size), generator=gen).to(dev)
    shape = (batch_size, 1, *size) if task == "segmentation" else (batch_size,)
    y = torch.randint(0, out_channels, shape, generator=gen).to(dev)
    results = []
    for form in (LAYOUTS if layout == "auto" else (layout,)):
        set_conv_layout(net, form, opt)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)  # each layout's own peak
        results.append(ProbeResult(**{**_time_steps(net, loss_fn, opt, x, y, dtype, dev, steps, warmup).__dict__,
                                      "layout": form}))
    fitting = [r for r in results if r.fits]  # a layout that runs out of memory is not the one training keeps
    return min(fitting, key=lambda r: r.seconds_per_step) if fitting else results[0]


def _time_steps(net, loss_fn, opt, x, y, dtype, dev, steps: int, warmup: int) -> ProbeResult:
    """``warmup`` untimed then ``steps`` timed training steps."""
    times, cpu = [], []
    try:
        for i in range(warmup + max(1, steps)):
            _sync(dev)
            t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                logits = net(x)
            value = loss_fn(logits.float(), y)
            value.backward()
            opt.step()
            _sync(dev)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return ProbeResult(float("nan"), 0, None, fits=False)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    cpu_s = statistics.median(cpu) if dev.type == "cpu" else None
    return ProbeResult(statistics.median(times), len(times), peak, True, cpu_s, torch.get_num_threads())
