#!/usr/bin/env python
"""Sliding-window inference: medimg Predictor vs MONAI ``sliding_window_inference``.

Same network (MONAI UNet 16-32-64-128, two residual units: 1.19 M parameters, random
weights, eval mode), same 128^3 single-channel volume, roi 96^3, overlap 0.25, Gaussian
blending, softmax probabilities out. Peers:

- ``monai`` : ``sliding_window_inference`` with its default ``sw_batch_size=1`` (what
  a user gets without tuning), ``mode="gaussian"``;
- ``monai_sw4``: the same with ``sw_batch_size=4`` (medimg's default), to show where the
  difference comes from (tile batching: PyTorch's CPU conv3d falls back to the slow
  ``slow_conv3d`` kernel at batch 1, PERFORMANCE.md).

Runs alternate between tools after a warm-up; the median of ``--repeats`` runs is
reported. ``agrees`` compares each peer's argmax with medimg's (>= 99.9% equal voxels)
and the probabilities (max |diff| < 1e-3).

    python benchmarks/inference.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--json", nargs="?", const="-", default=None, help="write results as JSON (to PATH, or stdout)")
    p.add_argument("--size", type=int, default=128, help="volume edge, voxels")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    repeats = a.repeats or (3 if a.quick else 5)

    import monai
    from monai.inferers import sliding_window_inference

    import medimg
    from medimg.core import Image
    from medimg.inference import Predictor
    from medimg.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", in_channels=1, out_channels=2, num_res_units=2).eval()
    vol = torch.randn(1, a.size, a.size, a.size)
    image = Image(vol)
    roi = (96, 96, 96)
    predictor = Predictor(model, roi_size=roi, overlap=0.25, sw_batch_size=4, blend="gaussian", device="cpu")

    def run_medimg() -> torch.Tensor:
        return predictor.predict_probabilities(image).data

    def run_monai(bs: int):
        def f() -> torch.Tensor:
            with torch.inference_mode():
                out = sliding_window_inference(vol[None], roi, bs, model, overlap=0.25, mode="gaussian")
            return torch.softmax(torch.as_tensor(out)[0], 0)
        return f

    tools = {"medimg": run_medimg, "monai": run_monai(1), "monai_sw4": run_monai(4)}
    outputs = {name: fn() for name, fn in tools.items()}  # warm-up, and the outputs compared
    times: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(repeats):
        for name, fn in tools.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    ref = outputs["medimg"]
    results = []
    for name in tools:
        out = outputs[name]
        same = float((out.argmax(0) == ref.argmax(0)).float().mean())
        maxdiff = float((out - ref).abs().max())
        results.append({
            "case": f"unet16-128 {a.size}^3 roi96 ov0.25 gaussian",
            "tool": name,
            "seconds": statistics.median(times[name]),
            "all_seconds": times[name],
            "peak_mb": _peak_mb(),
            "agrees": bool(same >= 0.999 and maxdiff < 1e-3),
            "argmax_equal_fraction": same,
            "max_abs_prob_diff": maxdiff,
        })
    med = {r["tool"]: r["seconds"] for r in results}
    report = {
        "benchmark": "inference",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": "cpu",
            "torch": str(torch.__version__),
            "monai": str(monai.__version__),
            "medimg": str(medimg.__version__),
        },
        "results": results,
        "ratios": {f"{peer}/medimg": med[peer] / med["medimg"] for peer in med if peer != "medimg"},
    }
    print(f"{'tool':<11} {'median s':>9}  {'agrees':>6}  runs")
    for r in results:
        print(f"{r['tool']:<11} {r['seconds']:9.3f}  {str(r['agrees']):>6}  {', '.join(f'{t:.2f}' for t in r['all_seconds'])}")
    for k, v in report["ratios"].items():
        print(f"{k}: {v:.2f}x (above 1: medimg faster)")
    if a.json == "-":
        print(json.dumps(report, indent=2))
    elif a.json:
        Path(a.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
