"""Fingerprints of trees of DICOM studies (``medimg.data.fingerprint`` with channel
patterns): one case per study, per-channel statistics, the DICOM modality, skipped studies
with their reason, labels per study id, and the plan's normalisation following the modality."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medimg.core.errors import DataError
from medimg.data.fingerprint import fingerprint
from medimg.data.fingerprint_dicom import write_study_manifest
from tests.io.dicom_study import write_dicom_series

SHAPE = (10, 12, 6)  # cols, rows, slices
PATTERNS = {"flair": "*FLAIR*", "t1c": "*T1*C*"}


def _body(level: float, background: float, seed: int) -> np.ndarray:
    """``(slices, rows, cols)`` values: ``level`` +- noise inside a box, ``background`` outside."""
    cols, rows, n = SHAPE
    rng = np.random.default_rng(seed)
    v = np.full((n, rows, cols), background, dtype=np.float64)
    v[1:-1, 2:-2, 2:-2] = level + rng.integers(-20, 20, size=(n - 2, rows - 4, cols - 2 - 2))
    return v


def mr_study(root: Path, sid: str, *, seed: int = 0, descriptions=("AX FLAIR", "AX T1 POST C")) -> Path:
    """A study ``root/sid`` with one series per description (own folders): FLAIR around 100,
    T1 post-contrast around 500, zero background."""
    uid = f"1.2.826.0.1.3680043.8.498.{seed + 1}"
    for n, desc in enumerate(descriptions, start=1):
        level = 500 if "T1" in desc else 100
        write_dicom_series(root / sid / f"series{n}", desc, study_uid=uid, number=n, shape=SHAPE,
                           values=_body(level, 0, seed + n))
    return root / sid


def ct_study(root: Path, sid: str, *, seed: int = 0) -> Path:
    """A CT study: one series, air (-1000 HU) around a soft-tissue box (about 40 HU)."""
    uid = f"1.2.826.0.1.3680043.8.499.{seed + 1}"
    write_dicom_series(root / sid / "ct", "CT ABDOMEN", study_uid=uid, number=1, shape=SHAPE, modality="CT",
                       values=_body(1064, 24, seed), intercept=-1024)
    return root / sid


def write_label(labels: Path, sid: str, series_folder: Path) -> None:
    """``labels/<sid>.nii.gz``: a small cube of class 1 on the grid of the (first) series
    in ``series_folder``."""
    from medimg.io.dicom import find_series, read_series

    image = read_series(find_series(series_folder).series[0])
    lab = np.zeros(image.spatial_shape, np.uint8)
    lab[3:6, 4:7, 2:4] = 1
    labels.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(lab, np.asarray(image.affine, dtype=np.float64)), str(labels / f"{sid}.nii.gz"))


@pytest.fixture
def mr_tree(tmp_path):
    root = tmp_path / "studies"
    mr_study(root, "s1", seed=0)
    mr_study(root, "s2", seed=10)
    mr_study(root, "s3", seed=20, descriptions=("AX FLAIR", "AX T2"))  # no T1 C: skipped
    return root


def test_study_tree_fingerprint_one_case_per_study(mr_tree):
    fp = fingerprint(mr_tree, channels=PATTERNS, workers=1)
    assert fp["task"] == "segmentation" and fp["labelled"] is False
    assert fp["data"]["images"] == ["flair", "t1c"] and fp["data"]["channels"] == PATTERNS
    assert [c["case_id"] for c in fp["cases"]] == ["s1", "s2", "s3"]
    assert fp["num_cases"] == 3 and fp["num_usable"] == 2 and fp["errors"] == []
    s1 = fp["cases"][0]
    assert s1["modality"] == "MR" and s1["channel_modalities"] == ["MR", "MR"] and s1["ct_like"] is False
    assert [s["description"] for s in s1["series"]] == ["AX FLAIR", "AX T1 POST C"]
    assert s1["series"][0]["folder"].endswith("series1") and s1["channels"] == 2
    assert s1["shape"] == [10, 12, 6] and s1["spacing"] == [1.0, 1.0, 2.0]
    assert fp["modality"] == "MR" and fp["modality_source"] == "DICOM Modality tag"
    # per-channel statistics over the nonzero voxels: FLAIR ~100, T1 C ~500
    assert 80 < fp["intensity"][0]["p50"] < 120 and 480 < fp["intensity"][1]["p50"] < 520
    assert 80 < s1["intensity"][0]["mean"] < 120 and 480 < s1["intensity"][1]["mean"] < 520
    # the study whose pattern matches nothing is skipped with the reason, the run goes on
    s3 = next(c for c in fp["cases"] if c["case_id"] == "s3")
    assert "pattern '*T1*C*' matches no series" in s3["problem"] and "'AX T2'" in s3["problem"]
    assert any(w.startswith("case s3 (train):") and w.endswith("(skipped)") for w in fp["warnings"])
    assert any("no label maps" in w and "--labels" in w for w in fp["warnings"])


def test_a_pattern_matching_two_series_skips_the_study(tmp_path):
    root = tmp_path / "studies"
    mr_study(root, "s1")
    mr_study(root, "s2", seed=5, descriptions=("AX FLAIR", "AX T1 POST C", "COR T1 POST C"))
    fp = fingerprint(root, channels=PATTERNS, workers=1)
    s2 = next(c for c in fp["cases"] if c["case_id"] == "s2")
    assert "matches 2 series" in s2["problem"]
    assert fp["num_usable"] == 1


def test_ct_modality_from_dicom_and_ct_normalisation(tmp_path):
    from medimg.engine.plan import PlanOptions, make_plan

    root, labels = tmp_path / "ct", tmp_path / "labels"
    for i, sid in enumerate(["p1", "p2", "p3"]):
        ct_study(root, sid, seed=i)
        write_label(labels, sid, root / sid / "ct")
    fp = fingerprint(root, channels={"ct": "*CT*"}, labels=labels, workers=1)
    assert fp["errors"] == [] and fp["labelled"] is True
    assert fp["modality"] == "CT" and fp["ct_like"] is True and fp["modality_source"] == "DICOM Modality tag"
    assert fp["cases"][0]["foreground"].startswith("body")
    # HU: the body box is about 40 HU (1064 - 1024 + noise), not the stored values
    assert 20 < fp["intensity"][0]["p50"] < 60
    assert fp["class_frequency"].keys() == {"0", "1"}
    write_study_manifest(fp, tmp_path / "cfg_cases.csv")
    plan = make_plan(fp, PlanOptions(device="cpu", minutes=30, probe_steps=0))
    names = [p["name"] for p in plan.config["preprocess"]]
    assert "scale_intensity_range" in names and "normalize_intensity" not in names
    rule = next(d.rule for d in plan.decisions if d.key == "preprocess.scale_intensity_range")
    assert rule.startswith("CT (from the DICOM Modality tag)")


def test_mr_plan_is_per_image_zscore_and_needs_labels(mr_tree, tmp_path):
    from medimg.engine.plan import PlanOptions, make_plan

    fp = fingerprint(mr_tree, channels=PATTERNS, workers=1)
    with pytest.raises(DataError, match="a study tree has no label maps") as info:
        make_plan(fp, PlanOptions(device="cpu", minutes=30, probe_steps=0))
    assert "--labels DIR" in info.value.hint
    labels = tmp_path / "labels"
    for sid in ("s1", "s2"):
        write_label(labels, sid, mr_tree / sid / "series1")
    fp = fingerprint(mr_tree, channels=PATTERNS, labels=labels, workers=1)
    assert fp["num_usable"] == 2 and fp["cases"][0]["label"]["components"] == {"1": 1}
    manifest = tmp_path / "out" / "cfg_cases.csv"
    assert write_study_manifest(fp, manifest) == []
    rows = list(csv.DictReader(open(manifest)))
    assert {r["case_id"] for r in rows} == {"s1", "s2"} and {r["split"] for r in rows} == {"train", "validation"}
    assert (manifest.parent / rows[0]["flair"]).is_dir() and (manifest.parent / rows[0]["label"]).is_file()
    plan = make_plan(fp, PlanOptions(device="cpu", minutes=30, probe_steps=0))
    pre = {p["name"]: p for p in plan.config["preprocess"]}
    assert pre["normalize_intensity"]["corner_background"] is True and "scale_intensity_range" not in pre
    assert plan.config["data"]["images"] == ["flair", "t1c"] and plan.config["data"]["label"] == "label"
    rule = next(d.rule for d in plan.decisions if d.key == "preprocess.normalize_intensity")
    assert rule.startswith("MR (from the DICOM Modality tag)")


def test_a_study_without_its_label_map_is_skipped(mr_tree, tmp_path):
    labels = tmp_path / "labels"
    write_label(labels, "s1", mr_tree / "s1" / "series1")
    write_label(labels, "zz", mr_tree / "s1" / "series1")
    fp = fingerprint(mr_tree, channels=PATTERNS, labels=labels, workers=1)
    s2 = next(c for c in fp["cases"] if c["case_id"] == "s2")
    assert s2["problem"] == f"no label map s2.nii.gz (or DICOM SEG s2.seg.dcm) in --labels {labels}"
    assert any("zz.nii.gz" in w and "names no study" in w for w in fp["warnings"])


def test_inconsistent_channel_counts_name_the_studies(mr_tree):
    """s2's FLAIR series holds two volumes at the same positions (two time points), so s2
    has 3 channels where s1 has 2: one error line naming s2, and the plan refuses."""
    import pydicom

    from medimg.engine.plan import PlanOptions, make_plan

    folder = mr_tree / "s2" / "series1"
    first = sorted(folder.iterdir())
    write_dicom_series(folder, "AX FLAIR", study_uid="1.2.826.0.1.3680043.8.498.11", number=1, shape=SHAPE,
                       values=_body(300, 0, 3), prefix="second")
    series_uid = pydicom.dcmread(first[0]).SeriesInstanceUID
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = series_uid
        ds.TemporalPositionIdentifier = 2 if f.name.startswith("second") else 1
        ds.save_as(f)
    fp = fingerprint(mr_tree, channels=PATTERNS, workers=1)
    assert fp["errors"] == ["inconsistent channel counts: most cases have 2 but s2 (3 channels)"]
    with pytest.raises(DataError, match=r"inconsistent channel counts: .* s2 \(3 channels\)"):
        make_plan(fp, PlanOptions(device="cpu", minutes=30, probe_steps=0))


def test_real_ct_series_as_two_studies(tmp_path):
    """The shared data's CT series (torchio_ct) copied into two studies, each with a soft
    tissue and a lung series: modality CT from the tag, statistics over the body in HU."""
    from tests.conftest import shared_path
    from tests.io.dicom_study import copy_series_into_study

    series = shared_path("dicom", "torchio_ct")
    root = tmp_path / "studies"
    for s, study in enumerate(("a", "b"), start=1):
        for n, desc in enumerate(("CT soft tissue", "CT lung"), start=1):
            copy_series_into_study(series, root / study / f"s{n}", study_uid=f"1.2.826.7.{s}", description=desc, number=n)
    fp = fingerprint(root, channels={"soft": "*soft*", "lung": "*lung"}, workers=1)
    assert fp["errors"] == [] and fp["num_usable"] == 2 and fp["channels"] == 2
    assert fp["modality"] == "CT" and fp["ct_like"] is True and fp["modality_source"] == "DICOM Modality tag"
    assert [c["channel_modalities"] for c in fp["cases"]] == [["CT", "CT"], ["CT", "CT"]]
    body = fp["intensity"][0]
    assert body["min"] > -500 and -300 < body["p50"] < 300  # the body (> -500 HU), in HU


def test_series_sharing_a_folder_cannot_go_into_the_manifest(tmp_path):
    """All files of a study in one folder: the fingerprint works (series chosen by
    description), but training reads one series per folder, so the plan refuses them."""
    root, labels = tmp_path / "studies", tmp_path / "labels"
    for i, sid in enumerate(("s1", "s2")):
        uid = f"1.2.826.0.1.3680043.8.497.{i + 1}"
        for n, desc in enumerate(("AX FLAIR", "AX T1 POST C"), start=1):
            write_dicom_series(root / sid, desc, study_uid=uid, number=n, shape=SHAPE, values=_body(100 * n, 0, n))
    for sid in ("s1", "s2"):
        write_label(labels, sid, root / sid)
    fp = fingerprint(root, channels=PATTERNS, labels=labels, workers=1)
    assert fp["num_usable"] == 2 and fp["cases"][0]["series"][0]["folder"] is None
    with pytest.raises(DataError, match="no usable labelled study whose series each have their own folder"):
        write_study_manifest(fp, tmp_path / "cases.csv")


# --- DICOM SEG labels (--labels DIR/<study id>.seg.dcm) ------------------------------------


def _two_class_label(image) -> np.ndarray:
    lab = np.zeros(image.spatial_shape, np.uint8)
    lab[3:6, 4:7, 2:4] = 1
    lab[6:9, 1:3, 1:5] = 2
    return lab


def write_seg_and_nifti(seg_dir: Path, nii_dir: Path | None, sid: str, series_folder: Path) -> np.ndarray:
    """``seg_dir/<sid>.seg.dcm`` (medimg's own SEG writer, made on ``series_folder``) and,
    with ``nii_dir``, the same two-class label as ``nii_dir/<sid>.nii.gz``; returns it."""
    from medimg.core.image import Image
    from medimg.io.dicom import find_series, read_series
    from medimg.io.dicom_seg import write_dicom_seg

    image = read_series(find_series(series_folder).series[0])
    lab = _two_class_label(image)
    seg_dir.mkdir(parents=True, exist_ok=True)
    write_dicom_seg(Image(lab[None], image.affine, kind="label"), seg_dir / f"{sid}.seg.dcm",
                    source=series_folder, label_names=["background", "lesion", "edema"])
    if nii_dir is not None:
        nii_dir.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(lab, np.asarray(image.affine, dtype=np.float64)), str(nii_dir / f"{sid}.nii.gz"))
    return lab


def test_seg_labels_fingerprint_like_the_equivalent_nifti(mr_tree, tmp_path):
    segs, niis = tmp_path / "segs", tmp_path / "niis"
    for sid in ("s1", "s2"):
        write_seg_and_nifti(segs, niis, sid, mr_tree / sid / "series1")
    fp_seg = fingerprint(mr_tree, channels=PATTERNS, labels=segs, workers=1)
    fp_nii = fingerprint(mr_tree, channels=PATTERNS, labels=niis, workers=1)
    assert fp_seg["labelled"] is True and fp_seg["num_usable"] == 2 and fp_seg["errors"] == []
    assert set(fp_seg["class_frequency"]) == {"0", "1", "2"}
    assert fp_seg["class_frequency"] == fp_nii["class_frequency"]
    for a, b in zip(fp_seg["cases"][:2], fp_nii["cases"][:2]):
        assert a["label"] == b["label"] and a["label"]["voxels"]["2"] == 3 * 2 * 4
    assert fp_seg["cases"][0]["label_path"].endswith("s1.seg.dcm")


def _misfit_seg(labels: Path, sid: str, study_uid: str, tmp_path: Path) -> None:
    """A SEG for study ``sid`` made on another series of its frame of reference, with
    half the in-plane spacing: its frames do not lie on the study's grid."""
    other = tmp_path / "elsewhere" / sid
    write_dicom_series(other, "AX FLAIR HIRES", study_uid=study_uid, number=9, shape=SHAPE, spacing=(0.5, 0.5, 2.0))
    write_seg_and_nifti(labels, None, sid, other)


def test_a_seg_made_on_another_series_skips_its_study_with_the_reason(mr_tree, tmp_path):
    segs = tmp_path / "segs"
    write_seg_and_nifti(segs, None, "s1", mr_tree / "s1" / "series1")
    _misfit_seg(segs, "s2", "1.2.826.0.1.3680043.8.498.11", tmp_path)  # mr_study(seed=10)'s StudyInstanceUID
    fp = fingerprint(mr_tree, channels=PATTERNS, labels=segs, workers=1)
    s1, s2 = fp["cases"][0], fp["cases"][1]
    assert s1["problem"] is None and fp["num_usable"] == 1
    assert s2["problem"].startswith(f"label DICOM SEG '{segs / 's2.seg.dcm'}' does not lie on the grid of the "
                                    "first channel (series #1 'AX FLAIR') (shape 10x12x6, spacing 1, 1, 2 mm)")
    assert "not resampled" in s2["problem"] and "\n" not in s2["problem"]
    assert any(w.startswith("case s2 (train): label DICOM SEG") and w.endswith("(skipped)") for w in fp["warnings"])


def test_a_study_with_both_a_nifti_and_a_seg_label_is_skipped(mr_tree, tmp_path):
    labels = tmp_path / "labels"
    for sid in ("s1", "s2"):
        write_seg_and_nifti(labels, labels if sid == "s2" else None, sid, mr_tree / sid / "series1")
    fp = fingerprint(mr_tree, channels=PATTERNS, labels=labels, workers=1)
    assert fp["cases"][0]["problem"] is None
    assert fp["cases"][1]["problem"] == f"--labels {labels} holds s2.nii.gz and s2.seg.dcm for this study; keep one"


def test_the_planned_manifest_lists_the_seg_and_training_reads_it_on_the_first_grid(mr_tree, tmp_path):
    from medimg.core.errors import GeometryError
    from medimg.core.spec import DataSection
    from medimg.data import load_cases, load_sample

    segs = tmp_path / "segs"
    labs = {sid: write_seg_and_nifti(segs, None, sid, mr_tree / sid / "series1") for sid in ("s1", "s2")}
    fp = fingerprint(mr_tree, channels=PATTERNS, labels=segs, workers=1)
    manifest = tmp_path / "out" / "cfg_cases.csv"
    write_study_manifest(fp, manifest)
    rows = list(csv.DictReader(open(manifest)))
    assert sorted(r["label"] for r in rows) == ["../segs/s1.seg.dcm", "../segs/s2.seg.dcm"]
    section = DataSection(manifest=manifest, images=["flair", "t1c"], label="label",
                          label_names=["background", "lesion", "edema"])
    records = {r.case_id: r for recs in load_cases(section).values() for r in recs}
    for sid, lab in labs.items():
        s = load_sample(records[sid], section)
        assert s.images["label"].spatial_shape == s.images["image"].spatial_shape
        assert np.array_equal(s.images["label"].data[0].numpy(), lab)
    # a SEG made on another series: one line naming the case (the manifest row) and the file
    _misfit_seg(segs, "s2", "1.2.826.0.1.3680043.8.498.11", tmp_path)
    with pytest.raises(GeometryError) as info:
        load_sample(records["s2"], section)
    msg = info.value.message
    assert msg.startswith(f"case 's2' (label column): DICOM SEG '{records['s2'].label_path}' does not lie on the "
                          f"grid of its first image '{records['s2'].image_paths[0]}'") and "\n" not in msg
