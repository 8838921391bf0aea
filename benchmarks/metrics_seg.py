"""Segmentation metrics, medimg vs MONAI, side by side in one process.

Cases:
  * ``synthetic256``: a 256^3 pair with 3 foreground classes (ellipsoids of different
    sizes, shifted and resized in the prediction, plus a few false-positive blobs),
    spacing 0.8 x 0.8 x 1.5 mm: Dice + HD95 + NSD@2mm.
  * ``dice256``: Dice alone on the same pair.
  * ``spleen``: the shared spleen pair (512x512x65, 0.684x0.684x5 mm):
    Dice + HD95 + ASSD + NSD@2mm (skipped if ``../shared/data`` is absent).
  * ``folder``: a folder of ``--cases`` (default 40) CT-sized pairs (512x512x96, 0.8 x 0.8
    x 2.5 mm, 3 classes; ``--quick``: 4 pairs of 128x128x32), generated once into a
    temporary folder as ``pred/<case>.nii.gz`` and ``ref/<case>.nii.gz``. ``medimg`` is
    :func:`medimg.metrics.evaluate_folders`, what ``medimg evaluate PRED REF`` runs
    (reading, Dice + HD95 + ASSD + NSD@2mm per case and class, 1000-resample bootstrap
    intervals), with its default ``--workers`` (every core this process may use);
    ``monai`` reads each pair with MONAI's ``LoadImage`` and scores it with its metric
    classes in a loop, one case after another. ``agrees``: every case's and class's value
    equal to medimg's within 1e-3. At most 3 timed rounds (``--repeats`` caps it) and no
    memory column: the workers' memory is not the parent's RSS. ``--folder-only`` runs
    this case alone.

MONAI is timed with its one-hot conversion (the label maps have to become one-hot
float tensors for its metrics) and, separately, the conversion alone. Each tool runs once
to warm up, then ``--repeats`` times; the median is reported. ``agrees`` is True when
every value matches medimg's within 1e-3 (absolute).

Usage:
    python benchmarks/metrics_seg.py [--quick] [--json PATH] [--repeats N] [--cases N] [--folder-only]

Timing, memory, table and JSON come from ``benchmarks/_common.py`` (docs/architecture.md §5):
runs in an order shuffled each round after a warm-up, medians, peak RSS added per tool. The JSON also holds
every tool's values (``"values"``) so agreement can be checked by eye.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, Tool, parse_args, report, run_case  # noqa: E402

from medimg.metrics import compute_metrics, dice_per_class  # noqa: E402

SHARED = Path(os.environ.get("MEDIMG_SHARED_DATA", REPO.parent / "shared" / "data"))


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
    from monai.metrics import (
        DiceMetric,
        HausdorffDistanceMetric,
        SurfaceDiceMetric,
        SurfaceDistanceMetric,
    )

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
    return set(a) == set(b) and all(
        len(a[m]) == len(b[m]) and all(abs(x - y) <= tol for x, y in zip(a[m], b[m])) for m in a
    )


def _dice_case(pred: np.ndarray, ref: np.ndarray, size: int, values: dict[str, Any], repeats: int) -> list[Result]:
    """Dice alone: one bincount vs MONAI DiceMetric on one-hot tensors made beforehand
    (a function, so the one-hot tensors are freed when it returns)."""
    from monai.metrics import DiceMetric

    P, R = _onehot(pred, 4), _onehot(ref, 4)
    d_med = dice_per_class(pred, ref, 4)[1:].tolist()
    values[f"dice{size}"] = {"medimg": {"dice": d_med},
                             "monai": {"dice": DiceMetric(include_background=False)(P, R)[0].tolist()}}
    return run_case(f"dice{size}", [
        Tool("medimg", lambda: dice_per_class(pred, ref, 4), None, peer=False),
        Tool("monai", lambda: DiceMetric(include_background=False)(P, R)[0].tolist(),
             lambda out: _agree({"dice": out}, {"dice": d_med}), note="one-hot given, not timed"),
    ], repeats)


FOLDER_METRICS = ["dice", "hd95", "assd", "nsd"]


def _box_ellipsoid(out: np.ndarray, centre, radii, value: int) -> None:
    """Paint an ellipsoid into ``out``, computed within its bounding box only."""
    lo = [max(0, int(np.floor(c - r))) for c, r in zip(centre, radii)]
    hi = [min(s, int(np.ceil(c + r)) + 1) for s, c, r in zip(out.shape, centre, radii)]
    if any(h <= l for l, h in zip(lo, hi)):  # noqa: E741
        return
    grids = np.ogrid[tuple(slice(l, h) for l, h in zip(lo, hi))]  # noqa: E741
    d = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii))
    out[tuple(slice(l, h) for l, h in zip(lo, hi))][d <= 1.0] = value  # noqa: E741


def ct_pair(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pred, ref) of a CT-sized volume: an organ (1), a smaller organ (2) and a lesion
    (3), the prediction shifted and resized, plus two false-positive blobs."""
    rng = np.random.default_rng(seed)
    s = np.array(shape, float) / (512, 512, 96)
    ref, pred = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    objects = [(1, (256, 240, 48), (110, 80, 30)), (2, (150, 330, 40), (45, 40, 18)), (3, (300, 250, 50), (14, 12, 6))]
    for c, centre, radii in objects:
        jitter = rng.uniform(-12, 12, 3) * s
        cen, rad = np.array(centre) * s + jitter, np.array(radii) * s
        _box_ellipsoid(ref, cen, rad, c)
        _box_ellipsoid(pred, cen + rng.uniform(-3, 3, 3) * s, rad * rng.uniform(0.9, 1.1, 3), c)
    for _ in range(2):
        _box_ellipsoid(pred, rng.uniform(0.1, 0.9, 3) * np.array(shape), rng.uniform(3, 6, 3) * s,
                       int(rng.integers(1, 4)))
    return pred, ref


def make_folder(root: Path, n: int, shape: tuple[int, int, int], spacing=(0.8, 0.8, 2.5)) -> tuple[Path, Path]:
    """``root/pred`` and ``root/ref``: ``n`` pairs ``case_<i>.nii.gz``."""
    from medimg.core import Image, make_affine
    from medimg.io import write_image

    affine = make_affine(spacing)
    pred_dir, ref_dir = root / "pred", root / "ref"
    pred_dir.mkdir(parents=True)
    ref_dir.mkdir(parents=True)
    for i in range(n):
        pred, ref = ct_pair(shape, seed=1000 + i)
        for lab, d in ((pred, pred_dir), (ref, ref_dir)):
            write_image(Image(lab[None], affine, kind="label"), d / f"case_{i:03d}.nii.gz")
    return pred_dir, ref_dir


def _monai_folder(pred_dir: Path, ref_dir: Path, k: int) -> dict[str, dict[str, list[float]]]:
    """MONAI's loop: read each pair with LoadImage, score it with its metric classes."""
    from monai.transforms import LoadImage

    load = LoadImage(image_only=True)
    out = {}
    for p in sorted(pred_dir.glob("*.nii.gz")):
        cid = p.name[: -len(".nii.gz")]
        pred, ref = load(str(p)), load(str(ref_dir / p.name))
        spacing = [float(x) for x in pred.pixdim[:3]]
        out[cid] = _monai(np.asarray(pred, np.uint8), np.asarray(ref, np.uint8), k, spacing, FOLDER_METRICS)
    return out


def _medimg_folder(pred_dir: Path, ref_dir: Path) -> Any:
    from medimg.metrics import evaluate_folders

    return evaluate_folders(pred_dir, ref_dir, metrics=FOLDER_METRICS, workers=None)


def _folder_agrees(report: Any, monai: dict[str, dict[str, list[float]]], k: int, tol: float = 1e-3) -> bool:
    if not report.all_ok or sorted(report.cases) != sorted(monai):
        return False
    labels = [report.label_names[c] for c in range(1, k)]
    mine = {cid: {m: [next(r["value"] for r in report.rows if r["case_id"] == cid and r["label"] == lab
                           and r["metric"] == m) for lab in labels] for m in FOLDER_METRICS} for cid in report.cases}
    return all(_agree(mine[cid], monai[cid], tol) for cid in monai)


def folder_case(args: Any) -> list[Result]:
    """The ``folder`` case (module docstring)."""
    import tempfile

    from medimg.metrics.scoring import default_workers

    n = 4 if args.quick and args.cases is None else (args.cases or 40)
    shape = (128, 128, 32) if args.quick else (512, 512, 96)
    with tempfile.TemporaryDirectory(prefix="medimg_bench_folder_") as tmp:
        print(f"  writing {n} pairs of {shape} into {tmp}", file=sys.stderr, flush=True)
        pred_dir, ref_dir = make_folder(Path(tmp), n, shape)
        case = f"folder {n} x {'x'.join(map(str, shape))} dice+hd95+assd+nsd"
        mine = _medimg_folder(pred_dir, ref_dir)  # the values MONAI's are checked against
        tools = [
            Tool("medimg", lambda: _medimg_folder(pred_dir, ref_dir), None, peer=False,
                 note=f"evaluate_folders, {default_workers()} workers"),
            Tool("monai", lambda: _monai_folder(pred_dir, ref_dir, 4),
                 lambda out: _folder_agrees(mine, out, 4),
                 note="LoadImage + metric classes, case by case"),
        ]
        return run_case(case, tools, max(1, min(args.repeats, 3)), memory=False)


def _extra_args(ap: Any) -> None:
    ap.add_argument("--cases", type=int, default=None, help="pairs in the folder case (default 40; 4 with --quick)")
    ap.add_argument("--folder-only", action="store_true", help="run the folder case alone")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, _extra_args)
    size = 128 if args.quick else 256
    values: dict[str, Any] = {}
    results: list[Result] = []
    if args.folder_only:
        results += folder_case(args)
        report("metrics_seg", "Segmentation metrics: medimg vs MONAI", results, args.json,
               packages=("monai", "scipy"), extra={"values": values})
        return 0 if all(r.agrees for r in results) else 1

    def tools_for(case: str, p, r, k, spacing, metrics) -> list[Tool]:
        ref_vals = _medimg(p, r, k, spacing, metrics)
        mon_vals = _monai(p, r, k, spacing, metrics)
        values[case] = {"medimg": ref_vals, "monai": mon_vals}
        check = lambda out: _agree(out, ref_vals)  # noqa: E731
        return [
            Tool("medimg", lambda: _medimg(p, r, k, spacing, metrics), None, peer=False),
            Tool("monai", lambda: _monai(p, r, k, spacing, metrics), check,
                 note="incl. one-hot conversion"),
            Tool("one-hot only", lambda: (_onehot(p, k), _onehot(r, k)), None, peer=False,
                 note="the conversion MONAI needs, alone"),
        ]

    pred, ref = synthetic_pair(size)
    results += _dice_case(pred, ref, size, values, args.repeats)

    metrics = ["dice", "hd95", "nsd"]
    case = f"synthetic{size} dice+hd95+nsd"
    results += run_case(case, tools_for(case, pred, ref, 4, (0.8, 0.8, 1.5), metrics), args.repeats)

    if (SHARED / "metrics" / "spleen1_label_gt.nii.gz").exists():
        from medimg.io import read_image

        a = read_image(SHARED / "metrics" / "spleen1_label_auto.nii.gz", kind="label")
        g = read_image(SHARED / "metrics" / "spleen1_label_gt.nii.gz", kind="label")
        case = "spleen dice+hd95+assd+nsd"
        tools = tools_for(case, a.numpy()[0], g.numpy()[0], 2, a.spacing, ["dice", "hd95", "assd", "nsd"])
        results += run_case(case, tools, args.repeats)
    else:
        print(f"spleen case skipped: {SHARED} not found", file=sys.stderr)
    results += folder_case(args)

    report("metrics_seg", "Segmentation metrics: medimg vs MONAI", results, args.json,
           packages=("monai", "scipy"), extra={"values": values})
    for case, v in values.items():
        print(f"{case}:\n  medimg {json.dumps(v['medimg'])}\n  monai  {json.dumps(v['monai'])}")
    return 0 if all(r.agrees for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
