"""Per-layer tuning of a network's convolutions for CPU inference.

On CPU, PyTorch runs every 2D/3D convolution through oneDNN in the tensor's memory
layout, and the fastest way to run a given layer depends on its channel counts and input
size in ways no fixed rule captures on every CPU. Profiling MONAI's UNet 16-128 (two
residual units, 2 classes) on 4 tiles of 96^3 on a 2-core Intel Xeon, by layer:

- the last 2 -> 2 channel 3x3x3 convolution on 96^3 is faster in ``channels_last_3d``
  (conversions in and out included) than in the default (NCDHW) layout, while the first
  1 -> 16 convolution is slower channels-last;
- the last transposed convolution (32 -> 2 channels, stride 2) is faster as the equivalent
  *sub-pixel* convolution: one ordinary convolution with ``stride**nd`` times the output
  channels over the input grid, whose outputs are interleaved into the strided output
  (every output voxel of a strided transposed convolution is a plain convolution of the
  input with the subset of kernel taps of its phase), while for the 192 -> 32 transposed
  convolution on 12^3 the sub-pixel form is slower.

``python benchmarks/inference.py --layers`` prints each layer's timed forms and the choice,
and the network's time per batch untuned and tuned.

:func:`tune_convolutions` therefore wraps each ``Conv2d``/``Conv3d``/``ConvTranspose2d``/
``ConvTranspose3d`` of a copy of the network in a :class:`TunedConv` that, when it first
sees inputs of a given shape, runs its forms in turn (one per call: no input is computed
twice), times each and keeps the fastest for that shape from then on (six calls for a
transposed convolution, four for a convolution; a 256x256x160 CT at roi 96^3, overlap
0.5 and 4 tiles per pass makes 19). The forms compute the same function;
outputs differ from the plain layer's by float rounding only (about 1e-6 relative).
:class:`~medimg.inference.Predictor` runs its network this way on CPU (``tune_layers``);
CUDA keeps the plain network (cuDNN has its own algorithm search). ``benchmarks/inference.py``
measures the effect on whole volumes, tuning included, against MONAI.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CHANNELS_LAST", "CONVOLUTIONS", "SubPixelConvTranspose", "TunedConv", "tune_convolutions"]

#: The layers whose layout and form are tuned (here, and in training by ``medimg.engine.layout``).
CONVOLUTIONS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
#: Channels-last memory format by number of spatial axes.
CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


class SubPixelConvTranspose(nn.Module):
    """A transposed convolution computed as one ordinary convolution plus an interleave.

    Along an axis with stride ``s``, kernel ``k`` and padding ``p``, output ``o`` with
    ``o + p = m * s + r`` (phase ``r`` in ``[0, s)``) is
    ``sum_j x[m - j] * w[r + j * s]``: a convolution of the input with ``J = ceil(k / s)``
    taps of the kernel. All phases of all axes become ``s**nd`` groups of output
    channels of one convolution over the (padded) input grid; each group is then written
    to its strided positions of the output. Same function as ``layer`` (groups 1, dilation
    1, zero padding), made from a copy of its weights.
    """

    def __init__(self, layer: nn.ConvTranspose2d | nn.ConvTranspose3d) -> None:
        super().__init__()
        if layer.groups != 1 or any(d != 1 for d in layer.dilation) or layer.padding_mode != "zeros":
            raise ValueError("SubPixelConvTranspose needs groups=1, dilation=1 and zero padding")
        nd = layer.weight.ndim - 2
        self.nd = nd
        self.stride = tuple(int(s) for s in layer.stride)
        self.padding = tuple(int(p) for p in layer.padding)
        self.output_padding = tuple(int(p) for p in layer.output_padding)
        self.kernel = tuple(int(k) for k in layer.kernel_size)
        self.taps = tuple(math.ceil(k / s) for k, s in zip(self.kernel, self.stride))
        self.phases = list(itertools.product(*[range(s) for s in self.stride]))
        cin, cout = layer.weight.shape[:2]
        self.out_channels = int(cout)
        w = layer.weight.detach().transpose(0, 1)  # (cout, cin, *kernel)
        weight = w.new_zeros((len(self.phases), cout, cin) + self.taps)
        for i, r in enumerate(self.phases):
            for t in itertools.product(*[range(j) for j in self.taps]):
                k = tuple(r[a] + (self.taps[a] - 1 - t[a]) * self.stride[a] for a in range(nd))
                if all(k[a] < self.kernel[a] for a in range(nd)):
                    weight[(i, slice(None), slice(None)) + t] = w[(slice(None), slice(None)) + k]
        self.register_buffer("weight", weight.reshape((len(self.phases) * cout, cin) + self.taps))
        bias = None if layer.bias is None else layer.bias.detach().repeat(len(self.phases))
        self.register_buffer("bias", bias)
        self._conv = F.conv2d if nd == 2 else F.conv3d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd, s, p = self.nd, self.stride, self.padding
        size_in = x.shape[2:]
        size_out = [
            (n - 1) * s[a] - 2 * p[a] + self.kernel[a] + self.output_padding[a] for a, n in enumerate(size_in)
        ]
        # J - 1 zeros before the input; after it, enough for the last output's phase
        before = [j - 1 for j in self.taps]
        after = [max(0, (size_out[a] - 1 + p[a]) // s[a] - size_in[a] + 1) for a in range(nd)]
        if before == after:
            z = self._conv(x, self.weight, self.bias, padding=tuple(before))
        else:
            pads: list[int] = []
            for a in reversed(range(nd)):
                pads += [before[a], after[a]]
            z = self._conv(F.pad(x, pads), self.weight, self.bias)
        z = z.view((x.shape[0], len(self.phases), self.out_channels) + tuple(z.shape[2:]))
        out = x.new_empty((x.shape[0], self.out_channels) + tuple(size_out))
        for i, r in enumerate(self.phases):
            dst: list[slice] = [slice(None), slice(None)]
            src: list = [slice(None), i, slice(None)]
            for a in range(nd):
                first = (r[a] - p[a]) % s[a]  # first output index of this phase
                m0 = (first + p[a] - r[a]) // s[a]
                n = len(range(first, size_out[a], s[a]))
                dst.append(slice(first, size_out[a], s[a]))
                src.append(slice(m0, m0 + n))
            out[tuple(dst)] = z[tuple(src)]
        return out


class TunedConv(nn.Module):
    """A convolution that runs in whichever of its equivalent forms was fastest on inputs
    of the shape at hand: the layer itself (``default``), a channels-last copy
    (``channels_last``: inputs converted in, outputs converted back) and, for a strided
    transposed convolution, :class:`SubPixelConvTranspose` (``sub_pixel``).

    The first ``2 * forms`` calls with a given input shape run the forms in turn (see
    :meth:`forward`); ``choices`` then maps that shape without its batch size to the
    fastest form's name, used for every later call of that shape.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        nd = layer.weight.ndim - 2
        layout = CHANNELS_LAST[nd]
        self.channels_last = copy.deepcopy(layer).to(memory_format=layout)
        self._layout = layout
        self.sub_pixel: nn.Module | None = None
        if (
            isinstance(layer, (nn.ConvTranspose2d, nn.ConvTranspose3d))
            and layer.groups == 1
            and all(d == 1 for d in layer.dilation)
            and layer.padding_mode == "zeros"
            and any(s > 1 for s in layer.stride)
        ):
            self.sub_pixel = SubPixelConvTranspose(layer)
        self.choices: dict[tuple[int, ...], str] = {}
        #: per decided shape (batch size aside), the timed call of each form, in seconds
        self.timings: dict[tuple[int, ...], dict[str, float]] = {}
        self._trials: dict[tuple[int, ...], list[tuple[str, float]]] = {}
        self._runs = self._forms()

    def _forms(self) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        forms: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "default": self.layer,
            "channels_last": self._run_channels_last,
        }
        if self.sub_pixel is not None:
            forms["sub_pixel"] = self.sub_pixel
        return forms

    def _run_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        return self.channels_last(x.contiguous(memory_format=self._layout)).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[1:])
        name = self.choices.get(key)
        forms = self._runs
        if name is not None:
            return forms[name](x)
        # Not decided yet for this shape: each call runs one form, in turn, so no input is
        # ever computed twice. A form's first call (which builds oneDNN's kernels for the
        # shape, and the network's very first call, which warms up the allocator) is not
        # timed; its second is. After two calls of every form, the fastest is kept.
        names = list(forms)
        trials = self._trials.setdefault(tuple(x.shape), [])
        form = names[len(trials) % len(names)]
        start = time.perf_counter()
        y = forms[form](x)
        trials.append((form, time.perf_counter() - start))
        if len(trials) == 2 * len(names):
            timed = dict(trials[len(names):])
            self.choices[key] = min(timed, key=timed.__getitem__)
            self.timings[key] = timed
            for shape in [k for k in self._trials if k[1:] == key]:  # every batch size of this shape
                del self._trials[shape]
        return y


def tune_convolutions(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose 2D/3D convolutions and transposed convolutions are
    :class:`TunedConv` layers (for inference on CPU; ``model`` itself is not changed).
    A model without such layers (a TorchScript or ONNX network among them) is returned
    as it is, not copied."""
    if isinstance(model, torch.jit.ScriptModule) or not any(isinstance(m, CONVOLUTIONS) for m in model.modules()):
        return model
    tuned = copy.deepcopy(model)
    if isinstance(tuned, CONVOLUTIONS):
        return TunedConv(tuned)
    for module in list(tuned.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, CONVOLUTIONS):
                setattr(module, name, TunedConv(child))
    return tuned
