"""The memory layout of the convolution weights during training (``trainer.channels_last``).

A convolution runs on the same numbers in either layout of its weight: the default one
(channels before the spatial axes) or channels-last (channels innermost). Which is faster
depends on the network, the input size and the machine. On this project's 2-core CPU,
one training step of the benchmark's 3D UNet (two 64^3 patches, Adam) took 0.208 s with
the default layout and 0.157 s with channels-last weights, while a 2D ResNet-18 on a
batch of 128 images of 28 px took 0.535 s and 0.617 s (``benchmarks/train.py --steps 48``
and ``benchmarks/train_cls.py`` print these): no layout is right for every run.

:class:`LayoutTuner` therefore decides by timing the run's own training steps, none of
them wasted: the first optimizer steps run with the default layout, the next ones with
channels-last weights (the first step of each layout warms it up and is not counted),
and the rest of the run keeps the faster layout. Only the weights of plain
``Conv2d``/``Conv3d``/``ConvTranspose2d``/``ConvTranspose3d`` layers change layout (a
subclass with its own ``forward`` may reshape its weight, so it is left alone), with
their gradients and optimizer state; outputs agree up to float rounding.

A choice is remembered for the rest of the process, keyed by the convolution layers, the
batch shape, the device, the threads and the precision: another run of the same network
on the same batches in this process (the folds of ``medimg cv``, a notebook's second
run) starts in that layout without timing again.

Under ``auto`` the timed choice is skipped (the default layout kept) where runs must
repeat bit for bit (``trainer.deterministic``) and in a distributed run, whose processes
must all hold the same layout; ``true`` or ``false`` fixes the layout. Elsewhere ``auto``
makes the exact numbers of a seeded run depend on the choice (a timing) and on whether it
was remembered (the trial steps run in both layouts): results agree between runs up to
float rounding, not bit for bit. A choice made is stored in the resume state, so a
resumed run continues in it (one saved during the trial times again). Channels-last weights
that run out of memory in a trial step are dropped for the default layout and the step is
run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Literal

import torch
from torch import nn

from ..inference.layer_tuning import CHANNELS_LAST, CONVOLUTIONS
from .failures import is_out_of_memory

__all__ = ["LAYOUTS", "LayoutTuner", "set_conv_layout"]

LAYOUTS = ("default", "channels_last")
#: Optimizer steps of each layout in the timed choice: the first warms up, the rest are timed.
STEPS_PER_LAYOUT = 3
#: Layouts chosen in this process, by :meth:`LayoutTuner._make_key`.
_CHOSEN: dict[tuple, str] = {}


def _conv_weights(model: nn.Module) -> Iterator[nn.Parameter]:
    """The weights of the plain 2D/3D convolutions of ``model`` (own ``forward`` excluded)."""
    for module in model.modules():
        base = next((c for c in CONVOLUTIONS if isinstance(module, c)), None)
        if base is not None and type(module).forward is base.forward and module.weight.dim() in (4, 5):
            yield module.weight


def set_conv_layout(model: nn.Module, layout: str, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Put the convolution weights of ``model`` (their gradients and the optimizer's
    per-weight state too) in ``layout`` (``"default"`` or ``"channels_last"``), in place:
    the parameters stay the same objects. Returns how many weights were converted."""
    count = 0
    for weight in _conv_weights(model):
        fmt = torch.contiguous_format if layout == "default" else CHANNELS_LAST[weight.dim() - 2]
        weight.data = weight.data.contiguous(memory_format=fmt)
        if weight.grad is not None:
            weight.grad = weight.grad.contiguous(memory_format=fmt)
        state = optimizer.state.get(weight) if optimizer is not None else None
        for key, value in (state or {}).items():
            if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                state[key] = value.contiguous(memory_format=fmt)
        count += 1
    return count


class LayoutTuner:
    """Runs the training steps in the faster layout of the convolution weights.

    Args:
        model: the network being trained (before any DDP wrapper).
        optimizer: its optimizer (its per-weight state follows the weights).
        mode: ``"auto"`` (timed choice), ``True`` (channels-last), ``False`` (default).
        device: the training device (CUDA steps are synchronised while timed).
        fixed: keep the default layout under ``"auto"`` (deterministic or distributed runs).
        log: where the decision is reported.
        context: what else decides the speed of a step (the autocast dtype), part of the
            key a choice is remembered under.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, mode: bool | Literal["auto"],
                 device: torch.device, *, fixed: bool = False, log: Callable[[str], None] | None = None,
                 context: Hashable = None) -> None:
        self.model, self.optimizer, self.device, self._log = model, optimizer, device, log
        self._context = context
        self._key: tuple | None = None
        self.mode = mode
        self.layout: str | None = None  # decided layout; None while timing
        self.timings: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        self._plan = [name for name in LAYOUTS for _ in range(STEPS_PER_LAYOUT)]
        self._group = -1  # optimizer-step group being run (index into the plan)
        self._group_seconds = 0.0
        self._warm_up = True  # the group being run is its layout's first (not timed)
        if mode is True:
            self._decide("channels_last")
        elif mode is False or fixed or next(_conv_weights(model), None) is None:
            self.layout = "default"

    def _decide(self, layout: str) -> None:
        self.layout = layout
        set_conv_layout(self.model, layout, self.optimizer)

    def load(self, layout: Any) -> None:
        """After a resume: continue in the layout the run had chosen (``"auto"``), and put
        the loaded optimizer state in the weights' layout."""
        if self.mode == "auto" and self.layout is None and layout in LAYOUTS:
            self._decide(layout)
        elif self.layout is not None:
            set_conv_layout(self.model, self.layout, self.optimizer)

    def run(self, step: Callable[..., float], batch: Any, *, update: bool, group_start: bool) -> float:
        """``step(batch, update=update)``, timed while the layout is being chosen.

        ``group_start``: the batch begins an optimizer-step group (gradient accumulation
        groups several batches); layouts change only there.
        """
        if self.layout is not None:
            return step(batch, update=update)
        if self._key is None:
            self._key = self._make_key(batch)
            if self._key in _CHOSEN:
                self._decide(_CHOSEN[self._key])
                self._report("as timed earlier in this process for this network and batch shape")
                return step(batch, update=update)
        if group_start:
            self._group += 1
            self._group_seconds = 0.0
            if self._group == len(self._plan):
                return self._finish(step, batch, update)
            self._warm_up = self._group == 0 or self._plan[self._group] != self._plan[self._group - 1]
            if self._warm_up:  # a layout's first group: change to it, and leave the group untimed
                set_conv_layout(self.model, self._plan[self._group], self.optimizer)
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        try:
            value = step(batch, update=update)
        except RuntimeError as exc:
            if not self._fallback(exc, group_start):
                raise
            return step(batch, update=update)
        if cuda:
            torch.cuda.synchronize(self.device)
        self._group_seconds += time.perf_counter() - t0
        if update and not self._warm_up:
            self.timings[self._plan[self._group]].append(self._group_seconds)
        return value

    def _fallback(self, exc: RuntimeError, group_start: bool) -> bool:
        """Out of memory in a channels-last trial step that began its group (no gradients
        of earlier batches to keep): settle on the default layout, to run the step again."""
        if not (group_start and self._plan[self._group] == "channels_last" and is_out_of_memory(exc)):
            return False
        self._decide("default")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self._report("channels-last weights ran out of memory in their trial step")
        return True

    def _make_key(self, batch: Any) -> tuple:
        image = batch.get("image") if isinstance(batch, Mapping) else None
        convs = tuple((type(m).__name__, tuple(m.weight.shape), m.stride, m.padding, m.dilation, m.groups)
                      for m in self.model.modules() if isinstance(m, CONVOLUTIONS))
        return (str(self.device), torch.get_num_threads(), self._context, convs,
                tuple(getattr(image, "shape", ())), str(getattr(image, "dtype", "")))

    def _report(self, why: str) -> None:
        if self._log is not None:
            self._log(f"convolution weights: {self.layout.replace('_', '-')} layout, {why}")

    def _finish(self, step: Callable[..., float], batch: Any, update: bool) -> float:
        best = {name: min(times) for name, times in self.timings.items() if times}
        layout = min(best, key=best.get) if len(best) == len(LAYOUTS) else "default"
        self._decide(layout)
        if len(best) == len(LAYOUTS):
            _CHOSEN[self._key] = layout
            self._report("the faster per step (" + ", ".join(f"{n} {sec:.3f} s" for n, sec in best.items()) + ")")
        return step(batch, update=update)
