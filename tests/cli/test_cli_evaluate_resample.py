"""``medimg evaluate --resample-to reference``: a prediction on another grid than its
reference fails the case naming both grids and the option; with the option it is
resampled onto the reference (nearest neighbour) and scored."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.conftest import run_cli as run


def _pair(tmp: Path) -> tuple[Path, Path]:
    """A 16^3 reference at 1 mm and the same blob predicted on an 8^3 grid at 2 mm (the same
    field of view: outer voxel edges coincide)."""
    ref = np.zeros((16, 16, 16), np.uint8)
    ref[4:12, 4:12, 6:10] = 1
    coarse = ref.reshape(8, 2, 8, 2, 8, 2).max(axis=(1, 3, 5))
    coarse[0, 0, 0] = 1  # a stray voxel: 8 reference voxels of false positive once resampled
    a_ref = np.diag([1.0, 1.0, 1.0, 1.0])
    a_pred = np.diag([2.0, 2.0, 2.0, 1.0])
    a_pred[:3, 3] = 0.5  # 2 mm voxel centres half a millimetre in: the same outer edges
    nib.save(nib.Nifti1Image(ref, a_ref), tmp / "ref.nii.gz")
    nib.save(nib.Nifti1Image(coarse, a_pred), tmp / "pred.nii.gz")
    return tmp / "pred.nii.gz", tmp / "ref.nii.gz"


def test_other_grid_fails_naming_the_option_then_resamples_with_it(tmp_path: Path):
    pred, ref = _pair(tmp_path)
    res = run("evaluate", pred, ref, "-o", tmp_path / "plain", "--bootstrap", "0", "--workers", "1")
    assert res.exit_code == 1
    assert "not on the same grid: shape (8, 8, 8) vs (16, 16, 16)" in res.output
    assert "--resample-to reference" in res.output
    res = run("evaluate", pred, ref, "-o", tmp_path / "out", "--bootstrap", "0", "--workers", "1",
              "--resample-to", "reference")
    assert res.exit_code == 0, res.output
    rows = {r["metric"]: float(r["value"]) for r in csv.DictReader(open(tmp_path / "out" / "metrics.csv"))}
    # 256 true voxels all found; 8 false positive: Dice = 2 * 256 / (264 + 256)
    assert abs(rows["dice"] - 512 / 520) < 1e-9


def test_resample_to_takes_reference_only(tmp_path: Path):
    pred, ref = _pair(tmp_path)
    res = run("evaluate", pred, ref, "-o", tmp_path / "x", "--resample-to", "prediction")
    assert res.exit_code == 2 and "--resample-to" in res.output and "expected 'reference'" in res.output
