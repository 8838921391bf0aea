"""Preprocessing a CT, medimg vs MONAI (vs TorchIO when installed), side by side in one process.

Case: a 512x512x200 int16 CT-like volume at 0.7 x 0.7 x 2.5 mm in LPS orientation (as a
DICOM series converts to), held Fortran-ordered as a NIfTI reader returns it, plus a uint8
label. Pipeline: orient to RAS, resample to 1.5 mm isotropic (image linear, label
nearest), clip and scale the window [-1000, 1000] HU to [0, 1], crop to the foreground
(image > 0). ``--quick`` uses 256x256x100.

Tools:
  * ``medimg``: ``Orient`` + ``Resample`` + ``ScaleIntensityRange`` + ``CropForeground``
    on a Sample (history recorded, invertible).
  * ``monai``: ``Orientationd`` + ``Spacingd`` + ``ScaleIntensityRanged`` +
    ``CropForegroundd`` on a dictionary of MetaTensors (the same input data).
  * ``torchio``: skipped with a note where not importable (it is not a medimg dependency).
  * ``torch interpolate floor`` (no ratio): the same steps written directly with
    ``torch.flip`` + ``F.interpolate(trilinear)`` + clamp + a bounding-box crop, no
    bookkeeping: what a hand-written script costs.

Agreement (``agrees``): on the same output grid, image values within 0.02 (scaled units)
on 99.9% of voxels and labels equal on 99.5%. MONAI's Spacing keeps the spacing exact and
spans the corner voxel centres, medimg keeps the field of view (outer voxel edges), so
their grids can be shifted by a fraction of a voxel or differ by one voxel per axis;
then (affines not equal within 1e-3 mm) the check is in millimetres: shapes
within one voxel, origins within one voxel (1.5 mm), label volumes within 1%, image means
within 0.01.

Usage:
    python benchmarks/preprocess.py [--quick] [--json PATH] [--repeats N]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, Tool, parse_args, report, run_case  # noqa: E402

from medimg.core import Image, Sample, make_affine  # noqa: E402
from medimg.transforms import (  # noqa: E402
    Compose,
    CropForeground,
    Orient,
    Resample,
    ScaleIntensityRange,
)

SPACING = (0.7, 0.7, 2.5)
TARGET = 1.5


def make_ct(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT-like int16 (HU) and uint8 label, Fortran-ordered, and an LPS voxel -> RAS affine."""
    rng = np.random.default_rng(seed)
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    ci, cj = shape[0] / 2, shape[1] / 2
    body = ((i - ci) / (0.42 * shape[0])) ** 2 + ((j - cj) / (0.36 * shape[1])) ** 2 <= 1.0
    body = np.broadcast_to(body, shape)
    organ = ((i - 0.6 * shape[0]) / (0.12 * shape[0])) ** 2 + ((j - 0.45 * shape[1]) / (0.1 * shape[1])) ** 2 \
        + ((k - 0.5 * shape[2]) / (0.25 * shape[2])) ** 2 <= 1.0
    img = np.full(shape, -1000.0, dtype=np.float32)
    img[body] = 40.0
    img[organ & body] = 120.0
    img += rng.normal(0, 20, shape).astype(np.float32)
    ct = np.asfortranarray(img.astype(np.int16))
    label = np.asfortranarray((organ & body).astype(np.uint8))
    # DICOM LPS: voxel axes towards L, P, S (x and y flipped with respect to RAS)
    affine = make_affine(SPACING, (180.0, 180.0, -250.0), np.diag([-1.0, -1.0, 1.0]))
    return ct, label, affine


def medimg_tool(ct: np.ndarray, label: np.ndarray, affine: np.ndarray):
    pipeline = Compose([
        Orient("RAS"),
        Resample([TARGET] * 3),
        ScaleIntensityRange(-1000, 1000, 0.0, 1.0, clip=True),
        CropForeground(source="image", threshold=0.0),
    ])

    def run():
        s = Sample({"image": Image(ct[None], affine, "intensity"), "label": Image(label[None], affine, "label")})
        out = pipeline(s)
        return out["image"].data, out["label"].data, out["image"].affine

    return run


def monai_tool(ct: np.ndarray, label: np.ndarray, affine: np.ndarray):
    from monai.data import MetaTensor
    from monai.transforms import (
        Compose as MCompose,
    )
    from monai.transforms import (
        CropForegroundd,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
    )

    keys = ["image", "label"]
    pipeline = MCompose([
        Orientationd(keys=keys, axcodes="RAS"),
        Spacingd(keys=keys, pixdim=(TARGET,) * 3, mode=("bilinear", "nearest")),
        ScaleIntensityRanged(keys="image", a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
        CropForegroundd(keys=keys, source_key="image", allow_smaller=True),
    ])
    aff = torch.as_tensor(affine)

    def run():
        d = {
            "image": MetaTensor(torch.from_numpy(ct[None]), affine=aff.clone()),
            "label": MetaTensor(torch.from_numpy(label[None]), affine=aff.clone()),
        }
        out = pipeline(d)
        return out["image"].as_tensor(), out["label"].as_tensor(), np.asarray(out["image"].affine, dtype=np.float64)

    return run


def floor_tool(ct: np.ndarray, label: np.ndarray, affine: np.ndarray):
    """Direct torch: flip I, J (LPS -> RAS), trilinear / nearest resize, clamp, crop."""
    shape = ct.shape
    new = [max(1, round(n * s / TARGET)) for n, s in zip(shape, SPACING)]

    def run():
        x = torch.flip(torch.from_numpy(ct), (0, 1)).float()[None, None]
        lab = torch.flip(torch.from_numpy(label), (0, 1))[None, None]
        x = F.interpolate(x, size=new, mode="trilinear", align_corners=False)[0]
        lab = F.interpolate(lab, size=new, mode="nearest-exact")[0]
        x = ((x + 1000.0) / 2000.0).clamp_(0, 1)
        m = (x[0] > 0)
        box = []
        for ax in range(3):
            prof = torch.nonzero(m.amax(dim=[d for d in range(3) if d != ax])).flatten()
            box.append(slice(int(prof[0]), int(prof[-1]) + 1))
        return x[(slice(None), *box)], lab[(slice(None), *box)], None

    return run


def agrees_with(ref):
    ref_img, ref_lab, ref_aff = ref
    vox = TARGET**3

    def check(out) -> bool:
        img, lab, aff = out
        same_grid = aff is None or np.allclose(aff, ref_aff, atol=1e-3)
        if same_grid and tuple(img.shape) == tuple(ref_img.shape) and tuple(lab.shape) == tuple(ref_lab.shape):
            close = ((img.float() - ref_img.float()).abs() <= 0.02).float().mean().item()
            same = (lab.to(torch.int64) == ref_lab.to(torch.int64)).float().mean().item()
            print(f"    same grid: image values within 0.02: {close:.5f}; labels equal: {same:.5f}", file=sys.stderr)
            return close >= 0.999 and same >= 0.995
        # MONAI keeps the spacing exact and spans the corner voxel *centres*; medimg keeps
        # the field of view (voxel *edges*), so grids may differ by a voxel: compare in mm
        dshape = max(abs(a - b) for a, b in zip(img.shape[1:], ref_img.shape[1:]))
        dorigin = float(np.abs(aff[:3, 3] - ref_aff[:3, 3]).max()) if aff is not None else 0.0
        vol, ref_vol = float((lab > 0).sum()) * vox, float((ref_lab > 0).sum()) * vox
        dvol = abs(vol - ref_vol) / max(ref_vol, 1.0)
        dmean = abs(float(img.float().mean()) - float(ref_img.float().mean()))
        print(f"    grids differ: shape {tuple(img.shape)} vs medimg {tuple(ref_img.shape)}, origin "
              f"{dorigin:.3f} mm apart; label volume {dvol:.4%} apart; image mean {dmean:.4f} apart",
              file=sys.stderr)
        return dshape <= 1 and dorigin <= TARGET and dvol <= 0.01 and dmean <= 0.01

    return check


def main(argv=None) -> dict[str, float]:
    args = parse_args(__doc__.splitlines()[0], argv)
    shape = (256, 256, 100) if args.quick else (512, 512, 200)
    case = "x".join(map(str, shape)) + " LPS 0.7x0.7x2.5mm -> RAS 1.5mm"
    ct, label, affine = make_ct(shape)
    med = medimg_tool(ct, label, affine)
    ref = med()
    print(f"medimg output: image {tuple(ref[0].shape)} {ref[0].dtype}, label {tuple(ref[1].shape)} {ref[1].dtype}",
          file=sys.stderr)
    check = agrees_with(ref)
    tools = [Tool("medimg", med, None, peer=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tools.append(Tool("monai", monai_tool(ct, label, affine), check))
    notes = []
    try:
        import torchio  # noqa: F401

        notes.append("torchio importable but not wired in this benchmark")
    except ImportError:
        notes.append("torchio not installed: skipped (not a medimg dependency; docs/performance.md notes other tools at 4.08-5.45 s)")
        print("note: " + notes[-1], file=sys.stderr)
    tools.append(Tool("torch interpolate floor", floor_tool(ct, label, affine), check, peer=False,
                      note="hand-written flip + F.interpolate, no history"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results: list[Result] = run_case(case, tools, args.repeats)
    return report(
        "preprocess",
        "Preprocess CT: orient RAS, resample 1.5 mm, clip+scale, crop foreground",
        results,
        args.json,
        packages=["torch", "monai", "numpy"],
        extra={"notes": notes, "threads": torch.get_num_threads()},
    )


if __name__ == "__main__":
    main()
