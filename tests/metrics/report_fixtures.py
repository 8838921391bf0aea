"""Tiny synthetic segmentation studies with scans, for the report tests."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from medimg.core import make_affine

SPACING = (1.0, 1.2, 2.0)
AFFINE = make_affine(SPACING, origin=(-12.0, -14.0, -8.0))


def _ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def make_study(root: Path, n: int = 5, shape=(24, 24, 12), missing_pred: int | None = None) -> dict[str, Path]:
    """``pred/``, ``ref/`` and ``images/`` folders of ``n`` cases ``case1``...: an organ
    (label 1) holding a lesion (label 2), the prediction shifted by a case-dependent amount
    (``case1`` best, the last worst), the scan a bright blob plus noise. ``missing_pred``:
    that case has no prediction file."""
    dirs = {k: root / k for k in ("pred", "ref", "images")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centre = np.array(shape) / 2
    for i in range(1, n + 1):
        ref = _ball(shape, centre, 7).astype(np.uint8)
        ref[_ball(shape, centre + (2, 0, 0), 2.5)] = 2
        shift = np.array((i - 1, (i - 1) // 2, 0))
        pred = _ball(shape, centre + shift, 7).astype(np.uint8)
        pred[_ball(shape, centre + shift + (2, 0, 0), 2.5)] = 2
        scan = (100 * _ball(shape, centre, 9) + 40 * (ref == 2) + rng.normal(0, 10, shape)).astype(np.float32)
        nib.save(nib.Nifti1Image(ref, AFFINE), str(dirs["ref"] / f"case{i}.nii.gz"))
        nib.save(nib.Nifti1Image(scan, AFFINE), str(dirs["images"] / f"case{i}.nii.gz"))
        if i != missing_pred:
            nib.save(nib.Nifti1Image(pred, AFFINE), str(dirs["pred"] / f"case{i}.nii.gz"))
    (dirs["pred"] / "labels.json").write_text(json.dumps({"0": "background", "1": "organ", "2": "lesion"}))
    return dirs
