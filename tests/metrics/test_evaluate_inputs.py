"""evaluate_folders on every input kind: DICOM SEG (placed on its source grid), DICOM mask
series, manifests; the worker pool equal to a serial run."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from medimg.core.image import Image
from medimg.io import read_image, write_image
from medimg.io.cases import find_cases
from medimg.metrics import evaluate_folders

pytest.importorskip("highdicom", reason="highdicom (medimg[dicom-seg]) writes the SEGs of these tests")
from tests.metrics.seg_inputs import make_study  # noqa: E402

METRICS = ["dice", "hd95", "assd"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_study(tmp_path_factory.mktemp("inputs"), n=3)


@pytest.fixture(scope="module")
def baseline(study):
    rep = evaluate_folders(study["pred_nii"], study["ref_nii"], metrics=METRICS, bootstrap=0)
    assert rep.all_ok and len(rep.rows) == 3 * 2 * 3
    assert len({r["value"] for r in rep.rows if r["metric"] == "dice"}) > 2  # the cases differ
    return rep


def _same(rep, base) -> None:
    assert rep.all_ok, rep.failed
    assert [(r["case_id"], r["label"], r["metric"]) for r in rep.rows] == [
        (r["case_id"], r["label"], r["metric"]) for r in base.rows]
    # NIfTI stores the affine in float32, DICOM in float64: distances agree to ~1e-7 mm
    np.testing.assert_allclose([r["value"] for r in rep.rows], [r["value"] for r in base.rows], rtol=1e-6)


def test_seg_files_are_cases_named_like_predict_writes_them(study):
    found = find_cases(study["pred_seg"], dicom=True, seg=True)
    assert [(c.case_id, c.paths[0].name) for c in found] == [
        ("case1", "case1.seg.dcm"), ("case2", "case2.seg.dcm"), ("case3", "case3.seg.dcm")]
    one = find_cases(study["pred_seg"] / "case2.seg.dcm", seg=True)
    assert [c.case_id for c in one] == ["case2"]


def test_read_image_places_a_seg_on_its_source(study):
    scan = read_image(study["scans"] / "case1")
    seg = read_image(study["pred_seg"] / "case1.seg.dcm", source=scan)
    nii = read_image(study["pred_nii"] / "case1.nii.gz")
    assert seg.spatial_shape == scan.spatial_shape and seg.same_grid(scan)
    assert np.array_equal(seg.data.numpy(), nii.data.numpy())


@pytest.mark.parametrize("pred,ref,images", [
    ("pred_seg", "ref_nii", None),      # predicted SEG placed on the reference's grid
    ("pred_nii", "ref_seg", None),      # reference SEG placed on the prediction's grid
    ("pred_seg", "ref_seg", "scans"),   # both SEG: placed on the scans (--images)
    ("pred_nii", "ref_series", None),   # a DICOM mask series per case folder
    ("pred_nii", "manifest", None),     # a manifest with a label column
    ("pred_seg", "manifest", None),
])
def test_every_input_kind_scores_like_nifti(study, baseline, pred, ref, images):
    rep = evaluate_folders(study[pred], study[ref], metrics=METRICS, bootstrap=0,
                           images=study[images] if images else None)
    _same(rep, baseline)


def test_one_seg_file_against_one_nifti_file(study, baseline):
    rep = evaluate_folders(study["pred_seg"] / "case2.seg.dcm", study["ref_nii"] / "case2.nii.gz",
                           metrics=METRICS, bootstrap=0)
    assert rep.cases == ["case2"]
    np.testing.assert_allclose([r["value"] for r in rep.rows],
                               [r["value"] for r in baseline.rows if r["case_id"] == "case2"], rtol=1e-6)


def test_two_segs_without_scans_fail_saying_to_give_images(study):
    rep = evaluate_folders(study["pred_seg"], study["ref_seg"], metrics=["dice"], bootstrap=0)
    assert not rep.all_ok and sorted(rep.failed) == ["case1", "case2", "case3"]
    assert "is a DICOM SEG and so is the prediction" in rep.failed["case1"]
    assert "give the scans with --images" in rep.failed["case1"]


def test_a_seg_off_the_reference_grid_is_a_clear_error_not_resampled(study, tmp_path):
    ref = read_image(study["ref_nii"] / "case1.nii.gz")
    shifted = np.array(ref.affine, dtype=np.float64)
    shifted[0, 3] += 5.0  # 5 mm: not a whole number of 0.8 mm voxels
    write_image(Image(ref.data, shifted, kind="label"), tmp_path / "case1.nii.gz")
    rep = evaluate_folders(study["pred_seg"] / "case1.seg.dcm", tmp_path / "case1.nii.gz", metrics=["dice"],
                           bootstrap=0)
    msg = rep.failed["case1"]
    assert not rep.cases and msg.startswith("case 'case1': DICOM SEG '")
    assert f"does not lie on the grid of the reference '{tmp_path / 'case1.nii.gz'}' (shape 12x10x6" in msg
    assert "give references on the grid of the series the SEG was made on" in msg


def test_manifest_problems_are_failed_cases(study, tmp_path):
    shutil.copytree(study["ref_nii"], tmp_path / "ref_nii")
    with (tmp_path / "refs.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", "mask"], ["case1", "ref_nii/case1.nii.gz"], ["case2", "nope.nii.gz"],
                                 ["case3", ""]])
    rep = evaluate_folders(study["pred_nii"], tmp_path / "refs.csv", metrics=["dice"], bootstrap=0,
                           label_column="mask")
    assert rep.cases == ["case1"]
    assert "refs.csv', line 3: '" in rep.failed["case2"] and "does not exist" in rep.failed["case2"]
    assert "empty 'mask' cell for case 'case3'" in rep.failed["case3"]
    from medimg.core.errors import DataError

    with pytest.raises(DataError, match=r"has no column 'label' \(columns: case_id, mask\)"):
        evaluate_folders(study["pred_nii"], tmp_path / "refs.csv", metrics=["dice"], bootstrap=0)


def test_workers_give_the_serial_results_in_order_with_failures(study, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(study["pred_nii"], pred)
    (pred / "case2.nii.gz").write_bytes(b"\x1f\x8b not a gzip stream")  # a case that fails
    serial = evaluate_folders(pred, study["ref_nii"], metrics=METRICS, bootstrap=50, workers=1)
    pooled = evaluate_folders(pred, study["ref_nii"], metrics=METRICS, bootstrap=50, workers=2)
    assert list(serial.failed) == list(pooled.failed) == ["case2"]
    assert serial.failed == pooled.failed
    assert serial.rows == pooled.rows and serial.summary == pooled.summary
    assert serial.cases == pooled.cases == ["case1", "case3"]


def test_real_ct_seg_prediction_on_a_flipped_nifti_reference(tmp_path):
    """TotalSegmentator's label map of the shared 20-slice CT (its j axis flipped against
    the DICOM order), reduced to three classes: a SEG written from a degraded copy, on the
    series, scores against the NIfTI reference exactly as the degraded copy as NIfTI does."""
    import nibabel as nib

    from medimg.io.dicom_seg import write_dicom_seg
    from tests.conftest import shared_path

    series = shared_path("dicom", "totalseg_ct_j2k", "series")
    nii = nib.load(shared_path("dicom", "totalseg_ct_j2k", "example_seg_dicom.nii.gz"))
    data = np.asarray(nii.dataobj).astype(np.uint8)
    keep = [int(v) for v in np.unique(data) if v][:3]
    ref = np.zeros_like(data)
    for new, old in enumerate(keep, start=1):
        ref[data == old] = new
    pred = ref.copy()
    pred[:, : pred.shape[1] // 3][pred[:, : pred.shape[1] // 3] == 1] = 0  # lose part of class 1
    for d in ("ref", "pred_nii", "pred_seg"):
        (tmp_path / d).mkdir()
    write_image(Image(ref[None], nii.affine, kind="label"), tmp_path / "ref" / "ct.nii.gz")
    label = Image(pred[None], nii.affine, kind="label")
    write_image(label, tmp_path / "pred_nii" / "ct.nii.gz")
    write_dicom_seg(label, tmp_path / "pred_seg" / "ct.seg.dcm", source=series, label_names=["bg", "a", "b", "c"])
    base = evaluate_folders(tmp_path / "pred_nii", tmp_path / "ref", metrics=METRICS, bootstrap=0)
    rep = evaluate_folders(tmp_path / "pred_seg", tmp_path / "ref", metrics=METRICS, bootstrap=0)
    _same(rep, base)
    assert base.values("label_1", "dice")["ct"] < 0.95 and base.values("label_2", "dice")["ct"] == 1.0
