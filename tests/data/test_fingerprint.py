"""Data set fingerprints (``medimg.data.fingerprint``) on tiny synthetic folders and npz files:
per-case statistics, data set medians, warnings for odd cases, refusals for bad sets."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medimg.core.errors import DataError
from medimg.data.fingerprint import discover, fingerprint


def write_case(root: Path, split: str, cid: str, *, shape=(20, 18, 16), spacing=(1.0, 1.0, 2.0), channels=2,
               blobs=2, background=0.0, flip=False, label_shape=None, ct=False, seed=0) -> Path:
    """A case folder: ``t1.nii.gz`` (and ``t2.nii.gz``) and ``seg.nii.gz`` with ``blobs``
    separate cubes of class 1 (and one of class 2 when blobs > 1)."""
    rng = np.random.default_rng(seed)
    folder = root / split / cid
    folder.mkdir(parents=True)
    affine = np.diag([*spacing, 1.0])
    if flip:
        affine[0, 0] = -affine[0, 0]
    lab = np.zeros(shape, np.uint8)
    for b in range(blobs):
        lab[2 + 6 * b:5 + 6 * b, 3:7, 3:7] = 1
    if blobs > 1:
        lab[12:15, 10:14, 8:12] = 2
    body = np.zeros(shape, bool)
    body[1:-1, 1:-1, 1:-1] = True
    for c, name in enumerate(["t1", "t2"][:channels]):
        img = np.where(body, rng.normal(100 + 10 * c, 5, shape), background).astype(np.float32)
        if ct:
            img = np.where(body, rng.normal(40, 20, shape), -1000.0).astype(np.float32)
        img[lab > 0] += 50
        nib.save(nib.Nifti1Image(img, affine), str(folder / f"{name}.nii.gz"))
    lshape = label_shape or shape
    nib.save(nib.Nifti1Image(np.resize(lab, lshape).astype(np.uint8), affine), str(folder / "seg.nii.gz"))
    return folder


def seg_set(root: Path, n_train=3, **kw) -> Path:
    for i in range(n_train):
        write_case(root, "train", f"c{i}", seed=i, **kw)
    write_case(root, "validation", "v0", seed=9, **kw)
    return root


def test_segmentation_folder_statistics(tmp_path):
    root = seg_set(tmp_path / "ds")
    task, data = discover(root)
    assert task == "segmentation"
    assert data["images"] == ["t1.nii.gz", "t2.nii.gz"] and data["label"] == "seg.nii.gz"
    seen = []
    fp = fingerprint(root, progress=lambda d, n: seen.append((d, n)), workers=2)
    assert seen[-1] == (4, 4)
    assert fp["errors"] == [] and fp["warnings"] == []
    assert fp["median_spacing"] == [1.0, 1.0, 2.0] and fp["anisotropy"] == 2.0
    assert fp["median_shape"] == [20.0, 18.0, 16.0]
    assert fp["median_body_shape"] == [18.0, 16.0, 14.0]
    assert fp["background"] == 0.0 and fp["ct_like"] is False
    case = fp["cases"][0]
    assert case["axcodes"] == "RAS" and case["channels"] == 2
    assert case["label"]["components"] == {"1": 2, "2": 1}
    assert case["label"]["voxels"]["1"] == 2 * 3 * 4 * 4
    assert case["foreground"] == "label > 0"
    # inside the label the first channel is ~150 (100 + 50), not the body's ~100
    assert 140 < case["intensity"][0]["p50"] < 160
    assert set(fp["class_frequency"]) == {"0", "1", "2"}
    assert "_samples" not in case


def test_ct_is_detected_and_measured_over_the_body(tmp_path):
    fp = fingerprint(seg_set(tmp_path / "ct", channels=1, ct=True), workers=1)
    assert fp["ct_like"] is True and fp["modality"] == "CT"
    assert fp["cases"][0]["foreground"].startswith("body")
    assert fp["intensity"][0]["p0_5"] > -500  # air left out


def test_odd_cases_are_warned_and_grid_mismatch_skipped(tmp_path):
    root = seg_set(tmp_path / "ds", n_train=4)
    write_case(root, "train", "odd_spacing", spacing=(4.0, 4.0, 8.0))
    write_case(root, "train", "odd_orient", flip=True)
    write_case(root, "train", "bad_grid", label_shape=(10, 10, 10))
    fp = fingerprint(root, workers=2)
    text = "\n".join(fp["warnings"])
    assert "case bad_grid (train): image and label grids disagree" in text and "(skipped)" in text
    assert "case odd_spacing: spacing [4.0, 4.0, 8.0] (RAS order) is over 3x off the median" in text
    assert "case odd_orient: orientation LAS, most cases RAS" in text
    assert fp["num_usable"] == fp["num_cases"] - 1


def test_refusals_name_the_cases(tmp_path):
    root = seg_set(tmp_path / "mixed")
    flat = root / "train" / "flat"
    flat.mkdir()
    for name in ("t1", "t2"):
        nib.save(nib.Nifti1Image(np.ones((20, 18), np.float32), np.eye(4)), str(flat / f"{name}.nii.gz"))
    nib.save(nib.Nifti1Image(np.ones((20, 18), np.uint8), np.eye(4)), str(flat / "seg.nii.gz"))
    fp = fingerprint(root, workers=1)
    assert fp["errors"] == ["mixed dimensionality: most cases are 3D but flat (2D) are not"]
    empty = seg_set(tmp_path / "empty", blobs=0)
    fp = fingerprint(empty, workers=1)
    assert fp["errors"] == ["no foreground in any label map: every case's label is all background (0)"]


def test_inconsistent_channels_refused(tmp_path):
    root = tmp_path / "ds"
    write_case(root, "train", "a")
    write_case(root, "train", "b")
    four_d = root / "train" / "b" / "t2.nii.gz"
    img = nib.load(str(four_d))
    nib.save(nib.Nifti1Image(np.stack([img.get_fdata()] * 2, -1).astype(np.float32), img.affine), str(four_d))
    fp = fingerprint(root, workers=1)
    assert fp["errors"] == ["inconsistent channel counts: most cases have 2 but b (3 channels)"] or \
        fp["errors"] == ["inconsistent channel counts: most cases have 3 but a (2 channels)"]


def test_single_case_is_warned(tmp_path):
    root = tmp_path / "one"
    write_case(root, "train", "only")
    fp = fingerprint(root, workers=1)
    assert any("a single usable case (only)" in w for w in fp["warnings"])


def test_classification_npz_balance(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 30), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.random((n, 12, 12)).astype(np.float32)
        arrays[f"{split}_labels"] = (np.arange(n) % 3 == 0).astype(int)[:, None]
    np.savez(tmp_path / "toy.npz", **arrays)
    fp = fingerprint(tmp_path / "toy.npz")
    assert fp["task"] == "classification" and fp["spatial_dims"] == 2 and fp["shape"] == [12, 12]
    assert fp["splits"]["train"]["classes"] == {"0": 20, "1": 10}
    assert fp["imbalance"] == 2.0


def test_unknown_layout_is_a_clear_error(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="has no 'train' split folder"):
        discover(tmp_path / "x")
    with pytest.raises(DataError, match="not found"):
        discover(tmp_path / "missing")


def test_axes_are_compared_in_ras_order(tmp_path):
    """A case stored slices-first (axes z, y, x) is the same grid as the others once
    reoriented: its spacing is not an outlier, its orientation is."""
    root = seg_set(tmp_path / "ds")
    folder = write_case(root, "train", "zyx")
    for f in folder.glob("*.nii.gz"):
        img = nib.load(str(f))
        data = np.asarray(img.dataobj).transpose(2, 1, 0)
        affine = np.zeros((4, 4))
        affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = 2.0, 1.0, 1.0, 1.0
        nib.save(nib.Nifti1Image(data, affine), str(f))
    fp = fingerprint(root, workers=1)
    case = next(c for c in fp["cases"] if c["case_id"] == "zyx")
    assert case["shape"] == [16, 18, 20] and case["ras_shape"] == [20, 18, 16] and case["ras_spacing"] == [1.0, 1.0, 2.0]
    assert fp["median_spacing"] == [1.0, 1.0, 2.0] and fp["median_shape"] == [20.0, 18.0, 16.0]
    assert [w for w in fp["warnings"] if "zyx" in w] == ["case zyx: orientation SAR, most cases RAS (warned; plans reorient)"]


def test_segmentation_manifest(tmp_path):
    root = seg_set(tmp_path / "ds")
    rows = ["case_id,t1,t2,label,split,patient_id"]
    for split, folder in (("train", "train"), ("validation", "validation")):
        for case in sorted((root / folder).iterdir()):
            rel = case.relative_to(root)
            rows.append(f"{case.name},{rel}/t1.nii.gz,{rel}/t2.nii.gz,{rel}/seg.nii.gz,{split},p{case.name}")
    (root / "cases.csv").write_text("\n".join(rows) + "\n")
    task, data = discover(root / "cases.csv")
    assert task == "segmentation" and data["images"] == ["t1", "t2"] and data["label"] == "label"
    fp = fingerprint(root / "cases.csv", workers=1)
    assert fp["num_usable"] == 4 and fp["splits"] == {"train": 3, "validation": 1}
