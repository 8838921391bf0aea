"""Segmentation metrics, medimg vs MONAI, side by side in one process.

Cases:
  * ``synthetic256``: a 256^3 pair with 3 foreground classes (ellipsoids of different
    sizes, shifted and resized in the prediction, plus a few false-positive blobs),
    spacing 0.8 x 0.8 x 1.5 mm: Dice + HD95 + NSD@2mm.
  * ``dice256``: Dice alone on the same pair.
  * ``spleen``: the shared spleen pair (512x512x65, 0.684x0.684x5 mm):
    Dice + HD95 + ASSD + NSD@2mm (skipped if ``../shared/data`` is absent).

MONAI is timed with its one-hot conversion (the label maps have to become one-hot
float tensors for its metrics) and, separately, the conversion alone. Each tool runs once
to warm up, then ``--repeats`` times; the median is reported. ``agrees`` is True when
every value matches medimg's within 1e-3 (absolute).

Usage:
    python benchmarks/metrics_seg.py [--quick] [--json PATH]

The timing harness is local to this file (``benchmarks/_common.py`` did not exist when it
was written); the JSON follows ARCHITECTURE.md §5. ``peak_mb`` is null: numpy and torch
allocations cannot be told apart per tool inside one process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medimg.metrics import compute_metrics, dice_per_class  # noqa: E402

SHARED = Path(os.environ.get("MEDIMG_SHARED_DATA", REPO.parent / "shared" / "data"))


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _machine() -> dict[str, Any]:
    import monai
    import scipy

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "monai": monai.__version__,
        "device": "cpu",
    }


def _ellipsoid(shape, centre, radii, value, out):
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    d = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii))
    out[d <= 1.0] = value


def synthetic_pair(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pred, ref) uint8 label maps of ``size^3`` with classes 1 (large), 2, 3 (small)."""
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    s = size / 256
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    objects = [  # class, centre, radii (voxels at 256^3)
        (1, (128, 120, 130), (70, 55, 60)),
        (2, (70, 180, 100), (30, 25, 35)),
        (3, (180, 190, 170), (12, 10, 14)),
    ]
    for c, centre, radii in objects:
        _ellipsoid(shape, [x * s for x in centre], [r * s for r in radii], c, ref)
        shift = rng.uniform(-3, 3, 3) * s
        scale = rng.uniform(0.9, 1.1, 3)
        _ellipsoid(shape, [x * s + d for x, d in zip(centre, shift)], [r * s * k for r, k in zip(radii, scale)], c, pred)
    for _ in range(4):  # false positives far away: they drive the Hausdorff distances
        c = int(rng.integers(1, 4))
        _ellipsoid(shape, rng.uniform(10, size - 10, 3), rng.uniform(2, 5, 3) * s, c, pred)
    return pred, ref


def _onehot(lab: np.ndarray, k: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(lab)).long()
    return torch.nn.functional.one_hot(t, k).permute(3, 0, 1, 2)[None].float()


def _monai(pred: np.ndarray, ref: np.ndarray, k: int, spacing, metrics: list[str]) -> dict[str, list[float]]:
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDiceMetric, SurfaceDistanceMetric

    P, R = _onehot(pred, k), _onehot(ref, k)
    out: dict[str, list[float]] = {}
    sp = list(spacing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "dice" in metrics:
            out["dice"] = DiceMetric(include_background=False)(P, R)[0].tolist()
        if "hd95" in metrics:
            out["hd95"] = HausdorffDistanceMetric(percentile=95)(P, R, spacing=sp)[0].tolist()
        if "assd" in metrics:
            out["assd"] = SurfaceDistanceMetric(symmetric=True)(P, R, spacing=sp)[0].tolist()
        if "nsd" in metrics:
            out["nsd"] = SurfaceDiceMetric([2.0] * (k - 1))(P, R, spacing=sp)[0].tolist()
    return out


def _medimg(pred, ref, k, spacing, metrics) -> dict[str, list[float]]:
    vals = compute_metrics(pred, ref, list(range(1, k)), metrics, spacing=spacing)
    return {m: [vals[c][m] for c in range(1, k)] for m in metrics}


def _agree(a: dict[str, list[float]], b: dict[str, list[float]], tol: float = 1e-3) -> bool:
    return all(abs(x - y) <= tol for m in a for x, y in zip(a[m], b[m]))


def run(quick: bool) -> dict[str, Any]:
    repeats = 1 if quick else 3
    size = 128 if quick else 256
    results: list[dict[str, Any]] = []
    ratios: dict[str, float] = {}
    values: dict[str, Any] = {}
    cases: list[tuple[str, np.ndarray, np.ndarray, int, tuple[float, ...], list[str]]] = []

    pred, ref = synthetic_pair(size)
    syn_spacing = (0.8, 0.8, 1.5)
    cases.append((f"synthetic{size}", pred, ref, 4, syn_spacing, ["dice", "hd95", "nsd"]))
    if (SHARED / "metrics" / "spleen1_label_gt.nii.gz").exists():
        from medimg.io import read_image

        a = read_image(SHARED / "metrics" / "spleen1_label_auto.nii.gz", kind="label")
        g = read_image(SHARED / "metrics" / "spleen1_label_gt.nii.gz", kind="label")
        cases.append(("spleen", a.numpy()[0], g.numpy()[0], 2, a.spacing, ["dice", "hd95", "assd", "nsd"]))
    else:
        print(f"spleen case skipped: {SHARED} not found", file=sys.stderr)

    # Dice alone: one bincount vs MONAI DiceMetric (one-hot timed separately).
    from monai.metrics import DiceMetric

    t_med, d_med = _time(lambda: dice_per_class(pred, ref, 4)[1:].tolist(), repeats)
    t_hot, (P, R) = _time(lambda: (_onehot(pred, 4), _onehot(ref, 4)), repeats)
    t_mon, d_mon = _time(lambda: DiceMetric(include_background=False)(P, R)[0].tolist(), repeats)
    ok = _agree({"dice": d_med}, {"dice": d_mon})
    case = f"dice{size}"
    results += [
        {"case": case, "tool": "medimg", "seconds": t_med, "peak_mb": None, "agrees": True},
        {"case": case, "tool": "monai", "seconds": t_mon, "peak_mb": None, "agrees": ok},
        {"case": case, "tool": "monai+onehot", "seconds": t_mon + t_hot, "peak_mb": None, "agrees": ok},
    ]
    ratios[f"{case}: monai/medimg"] = t_mon / t_med
    ratios[f"{case}: monai+onehot/medimg"] = (t_mon + t_hot) / t_med
    values[case] = {"medimg": {"dice": d_med}, "monai": {"dice": d_mon}}
    del P, R

    for name, p, r, k, spacing, metrics in cases:
        t_med, v_med = _time(lambda: _medimg(p, r, k, spacing, metrics), repeats)
        t_hot, _ = _time(lambda: (_onehot(p, k), _onehot(r, k)), repeats)
        t_mon, v_mon = _time(lambda: _monai(p, r, k, spacing, metrics), repeats)  # includes one-hot
        ok = _agree(v_med, v_mon)
        label = f"{name} ({'+'.join(metrics)})"
        results += [
            {"case": label, "tool": "medimg", "seconds": t_med, "peak_mb": None, "agrees": True},
            {"case": label, "tool": "monai+onehot", "seconds": t_mon, "peak_mb": None, "agrees": ok},
            {"case": label, "tool": "onehot-only", "seconds": t_hot, "peak_mb": None, "agrees": True},
        ]
        ratios[f"{label}: monai+onehot/medimg"] = t_mon / t_med
        values[label] = {"medimg": v_med, "monai": v_mon}

    return {
        "benchmark": "metrics_seg",
        "machine": _machine(),
        "repeats": repeats,
        "results": results,
        "ratios": ratios,
        "values": values,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128^3 synthetic pair, 1 repeat")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    out = run(args.quick)
    print(f"{'case':<44} {'tool':<14} {'seconds':>9}  agrees")
    for r in out["results"]:
        print(f"{r['case']:<44} {r['tool']:<14} {r['seconds']:>9.3f}  {r['agrees']}")
    for k, v in out["ratios"].items():
        print(f"{k:<60} {v:6.1f}x")
    for case, v in out["values"].items():
        print(f"{case}: medimg {json.dumps(v['medimg'])}\n{'':>{len(case)}}  monai  {json.dumps(v['monai'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r["agrees"] for r in out["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
