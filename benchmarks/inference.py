#!/usr/bin/env python
"""Sliding-window inference: medimg Predictor vs MONAI ``sliding_window_inference``.

Same network (MONAI UNet 16-32-64-128, two residual units: 1.19 M parameters, random
weights, eval mode, the one PERFORMANCE.md times), same 128^3 single-channel volume, roi
96^3, overlap 0.25, Gaussian blending, softmax probabilities out. Peers:

- ``monai``: ``sliding_window_inference`` with its default ``sw_batch_size=1`` (what a
  user gets without tuning);
- ``monai_sw4``: the same with ``sw_batch_size=4`` (medimg's default), to show where the
  difference comes from: tile batching (PyTorch's CPU conv3d takes the slow
  ``slow_conv3d`` path at batch 1, PERFORMANCE.md), not the window bookkeeping.

``agrees``: argmax equal on >= 99.9% of voxels and probabilities within 1e-3 of medimg's.
Timing, memory, table and JSON come from ``benchmarks/_common.py`` (ARCHITECTURE.md §5).

    python benchmarks/inference.py [--quick] [--json PATH] [--repeats N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Tool, parse_args, report, run_case  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    from monai.inferers import sliding_window_inference

    from medimg.core import Image
    from medimg.inference import Predictor
    from medimg.models import create_model

    size = 128  # the volume of PERFORMANCE.md; --quick only lowers the repeats
    torch.manual_seed(0)
    model = create_model("unet", in_channels=1, out_channels=2, num_res_units=2).eval()
    vol = torch.randn(1, size, size, size)
    image = Image(vol)
    roi = (96, 96, 96)
    predictor = Predictor(model, roi_size=roi, overlap=0.25, sw_batch_size=4, blend="gaussian", device="cpu")
    reference = predictor.predict_probabilities(image).data

    def monai(bs: int):
        def run() -> torch.Tensor:
            with torch.inference_mode():
                out = sliding_window_inference(vol[None], roi, bs, model, overlap=0.25, mode="gaussian")
            return torch.softmax(torch.as_tensor(out)[0], 0)

        return run

    def agrees(out: torch.Tensor) -> bool:
        same = float((out.argmax(0) == reference.argmax(0)).float().mean())
        return same >= 0.999 and float((out - reference).abs().max()) < 1e-3

    case = f"unet16-128 {size}^3 roi96 overlap0.25 gaussian, {torch.get_num_threads()} threads"
    results = run_case(case, [
        Tool("medimg", lambda: predictor.predict_probabilities(image).data, None, peer=False,
             note="Predictor, sw_batch_size 4"),
        Tool("monai", monai(1), agrees, note="sliding_window_inference, default sw_batch_size 1"),
        Tool("monai_sw4", monai(4), agrees, note="sliding_window_inference, sw_batch_size 4"),
    ], args.repeats)
    report("inference", "Sliding-window inference: medimg vs MONAI", results, args.json, packages=("torch", "monai"))
    return 0 if all(r.agrees for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
