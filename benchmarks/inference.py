#!/usr/bin/env python
"""Sliding-window inference: medimg ``sliding_window`` vs MONAI ``sliding_window_inference``.

Same network, same single-channel volume, roi 96^3, overlap 0.5 (the same tiles in
both), Gaussian blending with sigma = roi / 8, raw blended logits out, under
``torch.inference_mode``. Cases:

- ``unet16-128`` on 128^3 (2 x 2 x 2 tiles): MONAI UNet 16-32-64-128, two residual units
  (1.19 M parameters, random weights, eval mode): the network dominates the time;
- ``conv1x1x1 (window bookkeeping)`` on 128^3: a 1x1x1 convolution, nearly free, so the
  time is that of cutting, batching, weighting and accumulating the tiles;
- ``unet16-128`` on a CT-sized 256x256x160 volume (5 x 5 x 3 = 75 tiles), the size issue 8
  asks about; full runs only (``--quick`` leaves it out: it takes minutes per tool), with
  at most 3 timed rounds.

Tools, in each case:

- ``medimg``: :func:`medimg.inference.sliding_window` at its default ``sw_batch_size`` on
  the network as :class:`~medimg.inference.Predictor` runs it on CPU: a copy made by
  :func:`~medimg.inference.layer_tuning.tune_convolutions`, whose convolutions each run
  in the fastest of their equivalent forms. The copy is made, and its layers timed on
  the first tile batch, inside every timed round: the cost of tuning is in the figure;
- ``medimg_untuned``: the same on the network as given (``tune_layers: false``);
- ``monai``: ``sliding_window_inference`` at its default ``sw_batch_size=1`` (what a user
  gets without tuning);
- ``monai_sw2``, ``monai_sw4``, ``monai_sw8``: the same at 2, 4 and 8 tiles per forward
  pass;
- ``monai_best``: a copy of the fastest of the four MONAI rows of the case (its note says
  which; the JSON's ``monai_best`` too), so that ``monai_best/medimg`` compares medimg with
  MONAI at its best tile batch size, measured in the same run.

Whole-network channels-last layout (network and tiles in ``torch.channels_last_3d``) was
timed here before layer tuning: 0.794 s either way on the 128^3 case, for medimg and for
MONAI at 4 tiles per pass. Per layer it pays for some layers and costs for others
(``--layers`` prints each layer's timed forms), which is what tuning picks up.

MONAI gets medimg's weight map (``roi_weight_map``; MONAI's own Gaussian is the same
function up to a constant factor), so the outputs are the same computation. ``agrees``:
largest absolute difference from medimg's output below 1e-4. Timing, peak memory, table
and JSON come from ``benchmarks/_common.py``.

    python benchmarks/inference.py [--quick] [--json PATH] [--repeats N]
    python benchmarks/inference.py --layers    # per-layer forms of the UNet, and its time per batch
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Tool, parse_args, report, run_case  # noqa: E402

SIZE = 128
CT_SHAPE = (256, 256, 160)
ROI = (96, 96, 96)
OVERLAP = 0.5
MONAI_BATCHES = (1, 2, 4, 8)
TOLERANCE = 1e-4


def _monai_name(bs: int) -> str:
    return "monai" if bs == 1 else f"monai_sw{bs}"


def _case(label: str, model: torch.nn.Module, vol: torch.Tensor, repeats: int) -> list:
    """Time medimg and MONAI at each tile batch size on one network; add ``monai_best``."""
    from monai.inferers import sliding_window_inference

    from medimg.inference import gaussian_importance, sliding_window
    from medimg.inference.layer_tuning import tune_convolutions

    weight = gaussian_importance(ROI)
    medimg_bs = inspect.signature(sliding_window).parameters["sw_batch_size"].default

    def medimg() -> torch.Tensor:
        # what Predictor runs on CPU: a tuned copy, made (and its layers timed) in every round
        with torch.inference_mode():
            return sliding_window(vol, tune_convolutions(model), ROI, overlap=OVERLAP, sw_batch_size=medimg_bs,
                                  blend="gaussian")

    reference = medimg()

    def monai(bs: int):
        def run() -> torch.Tensor:
            with torch.inference_mode():
                out = sliding_window_inference(vol[None], ROI, bs, model, overlap=OVERLAP, mode="gaussian",
                                               roi_weight_map=weight)
            return torch.as_tensor(out)[0]

        return run

    def agrees(out: torch.Tensor) -> bool:
        return out.shape == reference.shape and float((out - reference).abs().max()) < TOLERANCE

    size = f"{SIZE}^3" if tuple(vol.shape[1:]) == (SIZE,) * 3 else "x".join(map(str, vol.shape[1:]))
    case = f"{label} {size} roi96 overlap{OVERLAP} gaussian, {torch.get_num_threads()} threads"
    tools = [Tool("medimg", medimg, None, peer=False,
                  note=f"sliding_window, default sw_batch_size {medimg_bs}, tuned layers (tuning timed)")]
    for bs in MONAI_BATCHES:
        tools.append(Tool(_monai_name(bs), monai(bs), agrees, note=f"sliding_window_inference, sw_batch_size {bs}"
                          + (" (its default)" if bs == 1 else "")))

    def medimg_untuned() -> torch.Tensor:
        with torch.inference_mode():
            return sliding_window(vol, model, ROI, overlap=OVERLAP, sw_batch_size=medimg_bs, blend="gaussian")

    tools.append(Tool("medimg_untuned", medimg_untuned, agrees, peer=False,
                      note="sliding_window on the network as given (tune_layers: false)"))
    results = run_case(case, tools, repeats)
    monai_rows = [r for r in results if r.tool in {_monai_name(bs) for bs in MONAI_BATCHES}]  # contiguous only
    best = min(monai_rows, key=lambda r: r.seconds)
    results.append(dataclasses.replace(best, tool="monai_best", note=f"the fastest MONAI row of this case: {best.tool}"))
    return results


def _layers(model: torch.nn.Module, batch: int = 4) -> int:
    """``--layers``: tune ``model`` on ``batch`` random tiles of the roi, print each layer's
    timed forms and the choice, then the network's time per batch untuned and tuned
    (fastest of 3 calls each, alternating)."""
    import time

    from medimg.inference.layer_tuning import TunedConv, tune_convolutions

    x = torch.randn(batch, 1, *ROI)
    tuned = tune_convolutions(model)
    layers = [m for m in tuned.modules() if isinstance(m, TunedConv)]
    with torch.inference_mode():
        for _ in range(2 * max(len(m._runs) for m in layers)):  # through the tuning phase
            tuned(x)
        print(f"{'layer':52} {'input':>22}  form timings (ms)")
        for m in layers:
            (shape, timed), = m.timings.items()
            shown = ", ".join(f"{k} {1e3 * v:.1f}" + (" *" if k == m.choices[shape] else "") for k, v in timed.items())
            print(f"{type(m.layer).__name__ + str(tuple(m.layer.weight.shape[:2])):52} {str(shape):>22}  {shown}")
        best = {"untuned": float("inf"), "tuned": float("inf")}
        for _ in range(3):
            for name, net in (("untuned", model), ("tuned", tuned)):
                start = time.perf_counter()
                net(x)
                best[name] = min(best[name], time.perf_counter() - start)
    print(f"network, {batch} tiles of {ROI}, {torch.get_num_threads()} threads: untuned {best['untuned']:.3f} s, "
          f"tuned {best['tuned']:.3f} s (* = the form kept; weight shapes are (out, in) for convolutions, "
          "(in, out) for transposed ones)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, extra=lambda ap: ap.add_argument(
        "--layers", action="store_true", help="only the per-layer forms of the UNet, tuned on 4 tiles"))
    from medimg.models import create_model

    torch.manual_seed(0)
    unet = create_model("unet", in_channels=1, out_channels=2, num_res_units=2).eval()
    if args.layers:
        return _layers(unet)
    pointwise = torch.nn.Conv3d(1, 2, kernel_size=1).eval()
    vol = torch.randn(1, SIZE, SIZE, SIZE)
    results = _case("unet16-128", unet, vol, args.repeats)
    results += _case("conv1x1x1 (window bookkeeping)", pointwise, vol, args.repeats)
    if not args.quick:
        results += _case("unet16-128", unet, torch.randn(1, *CT_SHAPE), min(args.repeats, 3))
    best = {r.case: r.note.rsplit(": ", 1)[-1] for r in results if r.tool == "monai_best"}
    report("inference", "Sliding-window inference: medimg vs MONAI", results, args.json, packages=("torch", "monai"),
           extra={"monai_best": best})
    return 0 if all(r.agrees for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
