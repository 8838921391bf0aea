#!/usr/bin/env python
"""Batch prediction end to end: medimg ``predict_folder`` vs a plain MONAI pipeline.

Input: a folder of 10 CT-sized synthetic cases, 256x256x160 int16 ``.nii.gz`` (``--quick``:
3 cases of 128x128x80), generated once into ``.bench/predict_folder/`` and reused. Each case
is a CT-like body with two organs, stored LPS (as DICOM converts to) with a random origin
and a spacing drawn per case from 0.75 / 0.9375 mm in-plane and 1.5 / 2.25 mm between
slices: spacings whose 1.5 mm grid covers the field of view exactly, so medimg (which keeps
the field of view) and MONAI's ``Spacingd(scale_extent=True)`` resample onto the very same
grid and the label maps can be compared voxel by voxel.

Both tools run the same random-weight MONAI UNet (8-16-32-64, one residual unit, 3
classes) and the same steps, with the same torch threads, writing one label map per case:

- read the ``.nii.gz``; orient to RAS; resample to 1.5 mm (linear); window [-1000, 1000] HU
  to [0, 1] (clipped);
- sliding window, roi 96^3, overlap 0.5, Gaussian blending; softmax;
- the probabilities taken back to the input's grid (inverse of the preprocessing), argmax,
  written as ``<case>.nii.gz`` (uint8) on the input's grid.

Tools:

- ``medimg``: :func:`medimg.inference.predict_folder` on a checkpoint holding that network
  and preprocessing (``overwrite=True``: every round predicts every case; its log and
  atomic writes included; it reads the next case while the current one computes);
- ``monai_sw2``, ``monai_sw8``: ``LoadImaged`` + ``EnsureChannelFirstd`` + ``Orientationd`` +
  ``Spacingd`` + ``ScaleIntensityRanged``, ``sliding_window_inference`` at 2 and at 8
  tiles per forward pass (the fastest of 1, 2, 4, 8 in ``benchmarks/inference.py`` on its
  CT-sized and its 128^3 case), then ``Activationsd(softmax)`` + ``Invertd`` +
  ``AsDiscreted(argmax)`` + ``SaveImaged``, one case after the other, as MONAI's tutorials
  write it;
- ``monai``: a copy of the faster of those two rows (its note says which): MONAI at its
  best tile batch, measured in the same run;
- ``monai_default``: the identical MONAI pipeline with ``sliding_window_inference`` at its
  default ``sw_batch_size`` (1 tile per forward pass), as ``benchmarks/inference.py``'s
  ``monai`` row runs it (a plain MONAI pipeline with MONAI's defaults).

``seconds`` is the time of the whole folder; the JSON's ``cases_per_minute`` gives the
rate of each. Peak memory is measured during the first timed run of each tool (after the
warm-up run, which checks agreement), so a full run predicts the folder twice per tool.
``agrees``: every label map of a MONAI row has medimg's shape and affine (within
1e-4 mm) and at least 99.9% of its voxels equal medimg's (``agreement`` in the JSON gives
the fraction of equal voxels per MONAI row; MONAI resamples with ``grid_sample`` and medimg along each
axis, so a few voxels at near-ties of the argmax may differ). Timing, table and JSON come
from ``benchmarks/_common.py``.

    python benchmarks/predict_folder.py [--quick] [--json PATH] [--repeats N]

Without ``--repeats``: 1 timed round (each round predicts the whole folder with each tool).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import BENCH_DIR, Tool, parse_args, peak_rss_mb, report, run_case  # noqa: E402

ROI = (96, 96, 96)
OVERLAP = 0.5
SPACING = 1.5
WINDOW = (-1000.0, 1000.0)
MONAI_SW = (2, 8)  # MONAI's fastest tile batches in benchmarks/inference.py (256x256x160 and 128^3)
MONAI_SW_DEFAULT = 1  # sliding_window_inference's default sw_batch_size
MODEL = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "channels": [8, 16, 32, 64],
         "strides": [2, 2, 2], "num_res_units": 1}
MIN_AGREEMENT = 0.999


def make_cases(folder: Path, n: int, shape: tuple[int, int, int]) -> list[Path]:
    """``n`` CT-like int16 cases in ``folder`` (kept when already there)."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in range(n):
        path = folder / f"ct{c:02d}.nii.gz"
        paths.append(path)
        if path.is_file():
            continue
        rng = np.random.default_rng(c)
        sx = float(rng.choice([0.75, 0.9375]))
        sz = float(rng.choice([1.5, 2.25]))
        i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
        u, v, w = i / shape[0], j / shape[1], k / shape[2]
        body = ((u - 0.5) / 0.42) ** 2 + ((v - 0.5) / 0.36) ** 2 <= 1.0
        liver = ((u - 0.35) / 0.15) ** 2 + ((v - 0.45) / 0.12) ** 2 + ((w - 0.5) / 0.3) ** 2 <= 1.0
        kidney = ((u - 0.68) / 0.07) ** 2 + ((v - 0.6) / 0.06) ** 2 + ((w - 0.45) / 0.12) ** 2 <= 1.0
        img = np.full(shape, -1000.0, dtype=np.float32)
        img[np.broadcast_to(body, shape)] = 30.0
        img[liver & body] = 110.0
        img[kidney & body] = 180.0
        img += rng.normal(0.0, 25.0, shape).astype(np.float32)
        affine = np.diag([-sx, -sx, sz, 1.0])  # LPS voxel axes
        affine[:3, 3] = rng.uniform(-200.0, 200.0, 3)
        tmp = path.with_name(".tmp-" + path.name)
        nib.save(nib.Nifti1Image(img.astype(np.int16), affine), str(tmp))
        tmp.replace(path)
    return paths


def make_checkpoint(path: Path) -> Path:
    """The random-weight UNet with the preprocessing both tools run."""
    from medimg.inference import save_checkpoint
    from medimg.models import create_model

    torch.manual_seed(0)
    save_checkpoint(
        path, create_model("unet", **MODEL), model_name="unet", model_params=MODEL,
        label_names=["background", "liver", "kidney"],
        preprocess=[{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [SPACING] * 3},
                    {"name": "scale_intensity_range", "a_min": WINDOW[0], "a_max": WINDOW[1], "b_min": 0.0,
                     "b_max": 1.0, "clip": True}],
        inference={"roi_size": list(ROI), "overlap": OVERLAP, "blend": "gaussian", "tta_flips": []},
        data={"images": ["image.nii.gz"]},
    )
    return path


def monai_pipeline(ckpt: Path, cases: list[Path], out: Path, sw_batch_size: int = MONAI_SW[0]):
    """The same prediction written with MONAI's dictionary transforms, one case at a time,
    ``sw_batch_size`` tiles per forward pass."""
    from monai.inferers import sliding_window_inference
    from monai.transforms import (
        Activationsd,
        AsDiscreted,
        Compose,
        EnsureChannelFirstd,
        Invertd,
        LoadImaged,
        Orientationd,
        SaveImaged,
        ScaleIntensityRanged,
        Spacingd,
    )

    from medimg.inference import build_model, load_checkpoint

    model = build_model(load_checkpoint(ckpt)).eval()  # the same weights
    pre = Compose([
        LoadImaged(keys="image"),
        EnsureChannelFirstd(keys="image"),
        Orientationd(keys="image", axcodes="RAS"),
        Spacingd(keys="image", pixdim=[SPACING] * 3, mode="bilinear", scale_extent=True),
        ScaleIntensityRanged(keys="image", a_min=WINDOW[0], a_max=WINDOW[1], b_min=0.0, b_max=1.0, clip=True),
    ])
    post = Compose([
        Activationsd(keys="pred", softmax=True),
        Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=False, to_tensor=True),
        AsDiscreted(keys="pred", argmax=True),
        SaveImaged(keys="pred", output_dir=str(out), output_postfix="", separate_folder=False,
                   output_dtype=np.uint8, resample=False, print_log=False),
    ])

    def run() -> Path:
        for path in cases:
            d = pre({"image": str(path)})
            with torch.no_grad():
                d["pred"] = sliding_window_inference(d["image"][None], ROI, sw_batch_size, model, overlap=OVERLAP,
                                                     mode="gaussian")[0]
            post(d)
        return out

    return run


def _labels(folder: Path, case: str):
    import nibabel as nib

    matches = sorted(folder.glob(f"{case}*.nii.gz"))
    if not matches:
        raise FileNotFoundError(f"no label map for {case} in {folder}")
    im = nib.load(str(matches[0]))
    return np.asarray(im.dataobj).reshape(im.shape[:3]), im.affine


def agreement(ref: Path, other: Path, cases: list[Path]) -> float:
    """Fraction of equal voxels over all cases (0 where a grid differs)."""
    equal = total = 0
    for path in cases:
        case = path.name.removesuffix(".nii.gz")
        a, aff_a = _labels(ref, case)
        b, aff_b = _labels(other, case)
        if a.shape != b.shape or not np.allclose(aff_a, aff_b, atol=1e-4):
            return 0.0
        equal += int((a == b).sum())
        total += a.size
    return equal / total


def _peak_on_second_call(name: str, fn, peaks: dict):
    """``fn``, whose second call (run_case's first timed round, after the warm-up) also
    measures its peak memory (the kernel's high-water mark: no cost to the timing)."""
    calls = [0]

    def run():
        calls[0] += 1
        if calls[0] != 2:
            return fn()
        out: list = []
        peaks[name] = peak_rss_mb(lambda: out.append(fn()))
        return out[0]

    return run


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(__doc__.splitlines()[0], argv)
    if "--repeats" not in argv:
        args.repeats = 1  # each round predicts the whole folder with each tool
    from medimg.inference import predict_folder

    warnings.filterwarnings("ignore")  # MONAI's deprecation notices
    n, shape = (3, (128, 128, 80)) if args.quick else (10, (256, 256, 160))
    root = BENCH_DIR / "predict_folder"
    cases = make_cases(root / f"ct{shape[0]}x{shape[1]}x{shape[2]}", n, shape)
    ckpt = make_checkpoint(root / "unet8-64.pt")
    out_medimg = root / "out_medimg"

    def medimg() -> Path:
        report_ = predict_folder(ckpt, cases[0].parent, out_medimg, device="cpu", progress=False, overwrite=True)
        if report_.failed:
            raise RuntimeError(f"medimg failed: {report_.failed}")
        return out_medimg

    agreed: dict[str, float] = {}

    def check(name: str):
        def run(out: Path) -> bool:
            agreed[name] = agreement(out_medimg, out, cases)
            return agreed[name] >= MIN_AGREEMENT

        return run

    def monai_tool(name: str, sw: int) -> Tool:
        return Tool(name, monai_pipeline(ckpt, cases, root / f"out_{name}", sw), check(name),
                    note=f"LoadImaged..Spacingd, sliding_window_inference sw_batch_size {sw}, Invertd, SaveImaged")

    label = f"{n} CT {'x'.join(map(str, shape))} int16, roi96 overlap{OVERLAP}, {torch.get_num_threads()} threads"
    tools = [
        Tool("medimg", medimg, None, peer=False, note="predict_folder"),
        *[monai_tool(f"monai_sw{sw}", sw) for sw in MONAI_SW],
        monai_tool("monai_default", MONAI_SW_DEFAULT),
    ]
    peaks: dict[str, float | None] = {}
    tools = [Tool(t.name, _peak_on_second_call(t.name, t.fn, peaks), t.check, t.peer, t.note) for t in tools]
    results = run_case(label, tools, args.repeats, memory=False)
    for r in results:
        r.peak_mb = peaks.get(r.tool)
    best = min((r for r in results if r.tool in {f"monai_sw{sw}" for sw in MONAI_SW}), key=lambda r: r.seconds)
    results.append(dataclasses.replace(best, tool="monai", note=f"MONAI at its best tile batch in this run: {best.tool}"))
    agreed["monai"] = agreed[best.tool]
    rates = {r.tool: round(60.0 * n / r.seconds, 2) for r in results}
    shown = ", ".join(f"{k} {v:.6f}" for k, v in agreed.items())
    print(f"cases per minute: {rates}; label agreement with medimg: {shown}")
    report("predict_folder", "Batch prediction end to end: medimg predict_folder vs a MONAI pipeline", results,
           args.json, packages=("torch", "monai", "nibabel"),
           extra={"cases_per_minute": rates, "agreement": agreed, "cases": n, "shape": list(shape)})
    return 0 if all(r.agrees for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
