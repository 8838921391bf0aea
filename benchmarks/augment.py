"""A typical 3D training augmentation chain, medimg vs MONAI vs TorchIO, in one process.

Case: a 1-channel 128^3 float32 image (smooth structure plus noise, 1 mm voxels) and a
uint8 label with classes 0, 1, 2. Chain, every step applied (``prob`` 1) except the flips
(0.5 per axis), so every tool does the same work each call:

  rotation (up to 15 degrees per axis) and zoom (0.85..1.25) combined with an elastic
  deformation (image linear, label nearest, zeros outside) -> Gaussian noise (std up to
  0.1) -> Gaussian blur (sigma 0.5..1 voxel) -> gamma (0.7..1.5) -> mirroring on each axis.

Tools (each one's strongest simple form):
  * ``medimg``: ``RandomElastic`` (rotation, zoom and a 7^3 control-point field in one
    ``grid_sample``) + ``RandomNoise`` + ``RandomBlur`` + ``RandomGamma`` + ``RandomFlip``
    on a Sample, every draw recorded in its history.
  * ``monai``: ``Rand3DElasticd`` (its rotation and zoom in the same resampling; sigma 5..8,
    magnitude 100..200 as in MONAI's 3D examples) + ``RandGaussianNoised`` +
    ``RandGaussianSmoothd`` + ``RandAdjustContrastd`` + ``RandFlipd`` x 3, with
    ``set_track_meta(False)`` (plain tensors: MONAI's fastest mode).
  * ``torchio``: ``RandomAffineElasticDeformation`` (affine and elastic in one SimpleITK
    resampling, 7 control points, 7.5 mm) + ``RandomNoise`` + ``RandomBlur`` +
    ``RandomGamma`` + ``RandomFlip``; skipped with a note where torchio is not installed
    (``pip install 'medimg[bench]'``).

Every tool runs with the same ``torch.set_num_threads(--threads)`` (and SimpleITK's
global thread count set alike); a timed call augments ``--samples`` samples, each with
new random draws. ``agrees``: the output has the input's shape, a finite image and a
label of the input's classes (the draws differ between tools, so values cannot match).
Reported: seconds per call and samples per second; a ratio above 1 means medimg is faster.

Usage:
    python benchmarks/augment.py [--quick] [--json PATH] [--repeats N] [--size N] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Tool, parse_args, report, run_case  # noqa: E402

from medimg.core import Image, Sample  # noqa: E402
from medimg.transforms import (  # noqa: E402
    Compose,
    RandomBlur,
    RandomElastic,
    RandomFlip,
    RandomGamma,
    RandomNoise,
)

DEGREES, SCALE, MAX_MM, POINTS = 15.0, (0.85, 1.25), 7.5, 7
NOISE_STD, BLUR_SIGMA, GAMMA = 0.1, (0.5, 1.0), (0.7, 1.5)


def make_input(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, n, n, n)`` float32 image in about [0, 1] and uint8 label with classes 0, 1, 2."""
    g = torch.Generator().manual_seed(seed)
    ax = torch.linspace(-1, 1, n)
    i, j, k = torch.meshgrid(ax, ax, ax, indexing="ij")
    r = (i**2 + (j / 0.8) ** 2 + (k / 0.9) ** 2).sqrt()
    img = (0.6 * (r < 0.7).float() + 0.3 * (r < 0.35).float() + 0.05 * torch.sin(6 * i) * torch.cos(4 * k))
    img = img + 0.02 * torch.randn(img.shape, generator=g)
    label = (r < 0.7).to(torch.uint8) + (r < 0.35).to(torch.uint8)
    return img[None].contiguous(), label[None].contiguous()


def medimg_tool(img: torch.Tensor, lab: torch.Tensor, samples: int):
    chain = Compose([
        RandomElastic(max_displacement=MAX_MM, num_control_points=POINTS, degrees=DEGREES, scale=SCALE,
                      prob=1.0, prob_affine=1.0),
        RandomNoise(std=(0.0, NOISE_STD), prob=1.0),
        RandomBlur(sigma=BLUR_SIGMA, prob=1.0),
        RandomGamma(gamma=GAMMA, prob=1.0),
        RandomFlip(axes=(0, 1, 2), prob=0.5),
    ])
    gen = torch.Generator().manual_seed(0)
    aff = np.eye(4)

    def run():
        outs = []
        for _ in range(samples):
            s = Sample({"image": Image(img, aff, "intensity"), "label": Image(lab, aff, "label")})
            out = chain(s, gen)
            outs.append((out["image"].data, out["label"].data))
        return outs

    return run


def monai_tool(img: torch.Tensor, lab: torch.Tensor, samples: int):
    from monai.data import set_track_meta
    from monai.transforms import (
        Compose as MCompose,
    )
    from monai.transforms import (
        Rand3DElasticd,
        RandAdjustContrastd,
        RandFlipd,
        RandGaussianNoised,
        RandGaussianSmoothd,
    )

    keys = ["image", "label"]
    rad = float(np.deg2rad(DEGREES))
    chain = MCompose([
        Rand3DElasticd(keys=keys, sigma_range=(5, 8), magnitude_range=(100, 200), prob=1.0,
                       rotate_range=(rad, rad, rad), scale_range=[(SCALE[0] - 1, SCALE[1] - 1)] * 3,
                       mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandGaussianNoised(keys="image", std=NOISE_STD, prob=1.0),
        RandGaussianSmoothd(keys="image", sigma_x=BLUR_SIGMA, sigma_y=BLUR_SIGMA, sigma_z=BLUR_SIGMA, prob=1.0),
        RandAdjustContrastd(keys="image", gamma=GAMMA, prob=1.0),
        *[RandFlipd(keys=keys, spatial_axis=a, prob=0.5) for a in range(3)],
    ])
    chain.set_random_state(0)

    def run():
        set_track_meta(False)
        try:
            outs = []
            for _ in range(samples):
                out = chain({"image": img, "label": lab})
                outs.append((torch.as_tensor(out["image"]), torch.as_tensor(out["label"])))
            return outs
        finally:
            set_track_meta(True)

    return run


def torchio_tool(img: torch.Tensor, lab: torch.Tensor, samples: int):
    import torchio as tio

    chain = tio.Compose([
        tio.RandomAffineElasticDeformation(
            affine_kwargs={"scales": SCALE, "degrees": DEGREES, "default_pad_value": 0},
            elastic_kwargs={"num_control_points": POINTS, "max_displacement": MAX_MM},
        ),
        tio.RandomNoise(std=(0.0, NOISE_STD)),
        tio.RandomBlur(std=BLUR_SIGMA),
        tio.RandomGamma(log_gamma=(float(np.log(GAMMA[0])), float(np.log(GAMMA[1])))),
        tio.RandomFlip(axes=(0, 1, 2), flip_probability=0.5),
    ])
    torch.manual_seed(0)  # torchio draws from torch's global generator

    def run():
        outs = []
        for _ in range(samples):
            subject = tio.Subject(image=tio.ScalarImage(tensor=img), label=tio.LabelMap(tensor=lab))
            out = chain(subject)
            outs.append((out["image"].data, out["label"].data))
        return outs

    return run


def check_for(img: torch.Tensor, lab: torch.Tensor):
    classes = set(lab.unique().tolist())

    def check(outs) -> bool:
        return all(
            tuple(o_img.shape) == tuple(img.shape) and tuple(o_lab.shape) == tuple(lab.shape)
            and bool(torch.isfinite(torch.as_tensor(o_img)).all())
            and set(torch.as_tensor(o_lab).unique().tolist()) <= classes
            for o_img, o_lab in outs
        )

    return check


def _extra_args(argv) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--size", type=int, default=None, help="edge of the cubic image (default 128, 64 with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="torch (and SimpleITK) threads for every tool (default 1)")
    ap.add_argument("--samples", type=int, default=4, help="samples augmented per timed call (default 4)")
    return ap.parse_known_args(argv)


def main(argv=None) -> dict[str, float]:
    extra, rest = _extra_args(sys.argv[1:] if argv is None else argv)
    args = parse_args(__doc__.splitlines()[0], rest)
    n = extra.size or (64 if args.quick else 128)
    torch.set_num_threads(extra.threads)
    img, lab = make_input(n)
    case = f"{n}^3 float32 + label: affine+elastic, noise, blur, gamma, flip ({extra.samples} samples/call)"
    check = check_for(img, lab)
    tools = [Tool("medimg", medimg_tool(img, lab, extra.samples), check, peer=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tools.append(Tool("monai", monai_tool(img, lab, extra.samples), check))
    notes = []
    try:
        import SimpleITK as sitk
        import torchio  # noqa: F401

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(extra.threads)
        tools.append(Tool("torchio", torchio_tool(img, lab, extra.samples), check))
    except ImportError as exc:
        notes.append(f"torchio skipped ({exc}); install it with pip install 'medimg[bench]'")
        print("note: " + notes[-1], file=sys.stderr)
    # medimg's own check is against the input, like the peers'
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_case(case, tools, args.repeats)
    rates = {r.tool: round(extra.samples / r.seconds, 3) for r in results}
    for tool, rate in rates.items():
        print(f"  {tool:<8} {rate:8.2f} samples/s", file=sys.stderr)
    return report(
        "augment",
        f"3D training augmentation chain, {n}^3 (samples/s: " + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()) + ")",
        results,
        args.json,
        packages=["torch", "monai", "torchio", "SimpleITK", "numpy"],
        extra={"notes": notes, "threads": extra.threads, "samples_per_call": extra.samples,
               "samples_per_second": rates},
    )


if __name__ == "__main__":
    main()
