"""Case- and folder-level evaluation: rows, CSV/JSON outputs, matching, failures, geometry."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medimg.core import GeometryError, Image, make_affine
from medimg.metrics import (
    CSV_COLUMNS,
    compute_case_metrics,
    compute_metrics,
    evaluate_folders,
    find_cases,
)

SPACING = (1.0, 1.5, 2.0)
AFFINE = make_affine(SPACING, origin=(-10.0, 5.0, 0.0))


def _read(path: Path) -> Image:
    """A plain nibabel reader, so these tests exercise the evaluation logic on its own."""
    img = nib.load(str(path))
    return Image(np.asanyarray(img.dataobj)[None], img.affine, kind="label", meta={"path": str(path)})


def _save(path: Path, arr: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), affine), str(path))
    return path


def _ball(shape, centre, radius, value=1, out=None):
    grid = np.indices(shape)
    d2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
    out = np.zeros(shape, np.uint8) if out is None else out
    out[d2 <= radius**2] = value
    return out


def _pair(seed: int, shape=(24, 24, 16)):
    """(pred, ref) two-class label maps that differ a little, depending on ``seed``."""
    rng = np.random.default_rng(seed)
    ref = _ball(shape, (12, 12, 8), 6)
    _ball(shape, (12, 12, 8), 2.5, value=2, out=ref)
    shift = rng.integers(-2, 3, 3)
    pred = _ball(shape, np.array([12, 12, 8]) + shift, 6 + rng.integers(-1, 2))
    _ball(shape, np.array([12, 12, 8]) + shift, 2.5, value=2, out=pred)
    return pred, ref


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path]:
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    for i in range(1, 5):
        pred, ref = _pair(i)
        _save(pred_dir / f"case{i}.nii.gz", pred)
        _save(ref_dir / f"case{i}.nii.gz", ref)
    (pred_dir / "labels.json").write_text(json.dumps({"0": "background", "1": "organ", "2": "lesion"}))
    return pred_dir, ref_dir


def test_compute_case_metrics_rows_and_values():
    pred, ref = _pair(1)
    rows = compute_case_metrics(
        Image(pred[None], AFFINE, "label"), Image(ref[None], AFFINE, "label"),
        ["background", "organ", "lesion"], ["dice", "hd95"], case_id="c1",
    )
    assert [(r["label"], r["metric"]) for r in rows] == [
        ("organ", "dice"), ("organ", "hd95"), ("lesion", "dice"), ("lesion", "hd95")]
    assert all(r["case_id"] == "c1" for r in rows)
    direct = compute_metrics(pred, ref, [1, 2], ["dice", "hd95"], spacing=SPACING)
    assert rows[0]["value"] == direct[1]["dice"]
    assert rows[3]["value"] == direct[2]["hd95"]  # in mm, from the affine's spacing
    # without names: label_<k>; probabilities are argmaxed
    probs = np.stack([pred == c for c in range(3)]).astype(np.float32)
    rows2 = compute_case_metrics(Image(probs, AFFINE, "probabilities"), Image(ref[None], AFFINE, "label"),
                                 metrics=["dice"], case_id="c1")
    assert [r["label"] for r in rows2] == ["label_1", "label_2"]
    assert rows2[0]["value"] == rows[0]["value"]


def test_grid_mismatch_error_names_files_and_difference():
    a = Image(np.zeros((1, 8, 8, 8), np.uint8), AFFINE, "label", meta={"path": "/p/case7.nii.gz"})
    b = Image(np.zeros((1, 8, 8, 9), np.uint8), AFFINE, "label", meta={"path": "/r/case7.nii.gz"})
    with pytest.raises(GeometryError, match=r"'/p/case7.nii.gz' and reference '/r/case7.nii.gz'.*"
                                            r"shape \(8, 8, 8\) vs \(8, 8, 9\)"):
        compute_case_metrics(a, b)
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.5
    c = Image(np.zeros((1, 8, 8, 8), np.uint8), shifted, "label", meta={"path": "/r/case7.nii.gz"})
    with pytest.raises(GeometryError, match=r"affines differ by up to 0.5 mm.*origin \(-10, 5, 0\) vs \(-9.5, 5, 0\)"):
        compute_case_metrics(a, c)
    tiny = AFFINE.copy()
    tiny[0, 3] += 5e-4  # within the 1e-3 mm tolerance (float32 headers)
    compute_case_metrics(a, Image(np.zeros((1, 8, 8, 8), np.uint8), tiny, "label"))


def test_non_label_inputs_are_rejected():
    ref = Image(np.zeros((1, 4, 4, 4), np.uint8), AFFINE, "label")
    soft = Image(np.full((1, 4, 4, 4), 0.3, np.float32), AFFINE, "intensity", meta={"path": "x.nii"})
    with pytest.raises(ValueError, match="prediction 'x.nii' holds non-integer values"):
        compute_case_metrics(soft, ref)
    multi = Image(np.zeros((2, 4, 4, 4), np.uint8), AFFINE, "label", meta={"path": "y.nii"})
    with pytest.raises(ValueError, match=r"'y.nii' has 2 channels \(shape \(2, 4, 4, 4\)\); expected a label map") as err:
        compute_case_metrics(multi, ref)
    assert "kind=" not in err.value.message and "one channel per class" in err.value.cli_hint


def test_evaluate_folders_happy_path(study, tmp_path):
    pred_dir, ref_dir = study
    out = tmp_path / "out"
    rep = evaluate_folders(pred_dir, ref_dir, out, metrics=["dice", "hd95", "nsd"], bootstrap=200,
                           reader=_read)
    assert rep.cases == ["case1", "case2", "case3", "case4"]
    assert not rep.failed and not rep.missing_pred and not rep.missing_ref
    assert rep.label_names == {1: "organ", 2: "lesion"}  # from PRED_DIR/labels.json
    with open(out / "metrics.csv", newline="") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == CSV_COLUMNS == ("case_id", "label", "metric", "value")
        body = list(reader)
    assert len(body) == 4 * 2 * 3
    # the CSV holds the same numbers as scoring one case directly
    pred, ref = _pair(3)
    direct = compute_metrics(pred, ref, [2], ["nsd"], spacing=SPACING)[2]["nsd"]
    assert [float(r[3]) for r in body if r[:3] == ["case3", "lesion", "nsd"]] == [direct]

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"organ", "lesion", "_class_mean", "_cases", "_settings"}
    s = summary["organ"]["dice"]
    assert set(s) >= {"mean", "std", "median", "n", "ci_low", "ci_high"}
    vals = [float(r[3]) for r in body if r[1:3] == ["organ", "dice"]]
    assert s["n"] == 4 and s["mean"] == pytest.approx(np.mean(vals))
    assert s["std"] == pytest.approx(np.std(vals, ddof=1)) and s["median"] == pytest.approx(np.median(vals))
    assert min(vals) <= s["ci_low"] <= s["mean"] <= s["ci_high"] <= max(vals)
    assert summary["_cases"] == {"n_matched": 4, "n_evaluated": 4, "missing_pred": [], "missing_ref": [],
                                 "failed": {}, "missing_pred_scored_as_empty": False}
    assert summary["_settings"]["metrics"]["nsd"] == {"tolerance_mm": 2.0}
    assert (out / "dice_boxplot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rep.paths["metrics_csv"] == out / "metrics.csv"
    text = rep.format()
    assert "organ:" in text and "4 evaluated" in text

    # bootstrap intervals are reproducible with the seed (seed sensitivity: bootstrap tests)
    again = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=200, reader=_read)
    assert again.summary["organ"]["dice"] == summary["organ"]["dice"]
    assert not again.paths  # nothing written without output_dir


def test_missing_and_failed_cases_are_reported(study, tmp_path):
    pred_dir, ref_dir = study
    (pred_dir / "case4.nii.gz").unlink()  # a missed case
    _save(pred_dir / "extra.nii.gz", _pair(9)[0])  # a prediction without reference
    (pred_dir / "case2.nii.gz").write_bytes(b"not a nifti file")  # unreadable
    _save(pred_dir / "case3.nii.gz", _pair(3)[0], make_affine((1.0, 1.0, 1.0)))  # wrong grid
    rep = evaluate_folders(pred_dir, ref_dir, tmp_path / "out", metrics=["dice", "hd"], reader=_read)
    assert rep.cases == ["case1"]
    assert rep.missing_pred == ["case4"] and rep.missing_ref == ["extra"]
    assert set(rep.failed) == {"case2", "case3"}
    assert "case2.nii.gz" in rep.failed["case2"]
    assert "affines differ" in rep.failed["case3"], rep.failed
    assert "are not on the same grid" in rep.failed["case3"] and "GeometryError" not in rep.failed["case3"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["_cases"]["missing_pred"] == ["case4"]
    assert summary["_cases"]["missing_ref"] == ["extra"]
    assert set(summary["_cases"]["failed"]) == {"case2", "case3"}
    assert summary["organ"]["dice"]["n"] == 1

    # scoring missed cases as empty predictions: Dice 0, HD inf (kept in the CSV, not in means)
    rep = evaluate_folders(pred_dir, ref_dir, tmp_path / "out2", metrics=["dice", "hd"],
                           missing_pred="empty", reader=_read)
    assert rep.values("organ", "dice")["case4"] == 0.0
    assert rep.values("organ", "hd")["case4"] == math.inf
    hd = rep.summary["organ"]["hd"]
    assert hd["n"] == 1 and hd["n_excluded"] == 1
    assert "case4,organ,hd,inf" in (tmp_path / "out2" / "metrics.csv").read_text()
    json.loads((tmp_path / "out2" / "summary.json").read_text())  # valid JSON, no NaN/inf


def test_case_folders_label_map_and_absent_classes(tmp_path):
    """BraTS-like layout: REF/<case>/OTMultiClass.nii.gz beside brainmask.nii.gz."""
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    shape = (20, 20, 12)
    for i, cid in enumerate(["pat1", "pat2"]):
        ref = _ball(shape, (10, 10, 6), 5, value=2)  # oedema
        _ball(shape, (10, 10, 6), 2, value=4 - i, out=ref)  # enhancing / non-enhancing core
        _save(ref_dir / cid / "OTMultiClass.nii.gz", ref)
        _save(ref_dir / cid / "brainmask.nii.gz", np.ones(shape))
        _save(ref_dir / cid / "Flair.nii.gz", np.zeros(shape))
        _save(pred_dir / f"{cid}.nii.gz", _ball(shape, (10, 10, 6), 5))
    files, problems = find_cases(ref_dir)
    assert {k: v.name for k, v in files.items()} == {"pat1": "OTMultiClass.nii.gz", "pat2": "OTMultiClass.nii.gz"}
    assert not problems
    whole = {1: 1, 2: 1, 3: 1, 4: 1}
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], label_map=whole, label_names=["bg", "tumour"],
                           reader=_read)
    assert rep.values("tumour", "dice") == {"pat1": 1.0, "pat2": 1.0}
    # without the map, each reference class is scored; a class absent from a case (3 in
    # pat1, 4 in pat2) still gets a row, with the both-empty value
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice", "hd"], reader=_read)
    assert [rep.label_names[c] for c in sorted(rep.label_names)] == ["label_1", "label_2", "label_3", "label_4"]
    assert rep.values("label_3", "dice") == {"pat1": 1.0, "pat2": 0.0}
    assert math.isnan(rep.values("label_3", "hd")["pat1"]) and rep.values("label_3", "hd")["pat2"] == math.inf
    assert rep.summary["label_4"]["dice"]["n"] == 2

    # an ambiguous folder fails that case, with the candidates and how to fix it
    _save(ref_dir / "pat2" / "seg_v2.nii.gz", np.zeros(shape))
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], reader=_read)
    assert "pat2" in rep.failed and "OTMultiClass.nii.gz, seg_v2.nii.gz" in rep.failed["pat2"]
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], ref_name="OTMultiClass.nii.gz", reader=_read)
    assert not rep.failed and rep.cases == ["pat1", "pat2"]
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], ref_name="label.nii.gz", reader=_read)
    assert "no file 'label.nii.gz'" in rep.failed["pat1"]


def test_bad_arguments(study, tmp_path):
    pred_dir, ref_dir = study
    with pytest.raises(LookupError, match="did you mean 'dice'"):
        evaluate_folders(pred_dir, ref_dir, metrics=["dise"], reader=_read)
    with pytest.raises(ValueError, match="not a folder"):
        evaluate_folders(tmp_path / "nope", ref_dir, reader=_read)
    with pytest.raises(ValueError, match="missing_pred must be"):
        evaluate_folders(pred_dir, ref_dir, missing_pred="zero", reader=_read)
    (pred_dir / "labels.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="labels.json.*expected a JSON object"):
        evaluate_folders(pred_dir, ref_dir, reader=_read)


def test_default_reader_and_spleen_fixed_point_end_to_end(tmp_path):
    """medimg.io.read_image path: the spleen pair scored through folders gives the fixed point."""
    import shutil

    from tests.conftest import shared_path

    auto = shared_path("metrics", "spleen1_label_auto.nii.gz")
    gt = shared_path("metrics", "spleen1_label_gt.nii.gz")
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref" / "spleen1").mkdir(parents=True)
    shutil.copy(auto, tmp_path / "pred" / "spleen1.nii.gz")
    shutil.copy(gt, tmp_path / "ref" / "spleen1" / "label.nii.gz")
    rep = evaluate_folders(tmp_path / "pred", tmp_path / "ref", metrics=["dice", "jaccard", "hd95", "assd", "nsd"],
                           label_names={1: "spleen"}, bootstrap=10)
    assert not rep.failed, rep.failed
    got = {m: v["spleen1"] for m in ("dice", "jaccard", "hd95", "assd", "nsd") for v in [rep.values("spleen", m)]}
    assert got == pytest.approx({"dice": 0.88689, "jaccard": 0.79677, "hd95": 9.298, "assd": 1.523, "nsd": 0.7710},
                                abs=1e-3)
    assert rep.files["spleen1"][1].name == "label.nii.gz"  # auto-detected in the case folder


def test_label_map_unlisted_values_become_background(tmp_path):
    """Same rule as data.label_map: a reference value the map does not list is scored as 0."""
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    shape = (16, 16, 8)
    ref = _ball(shape, (8, 8, 4), 5, value=2)
    _ball(shape, (8, 8, 4), 2, value=4, out=ref)  # unlisted below -> background
    _save(ref_dir / "c1.nii.gz", ref)
    pred = _ball(shape, (8, 8, 4), 5)
    pred[_ball(shape, (8, 8, 4), 2) > 0] = 0
    _save(pred_dir / "c1.nii.gz", pred)
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], label_map={2: 1}, reader=_read)
    assert rep.values("label_1", "dice") == {"c1": 1.0}


def test_a_failed_case_carries_its_errors_hint_in_the_callers_terms(tmp_path):
    from medimg.core.errors import ImageReadError
    from medimg.metrics.scoring import CaseJob, score_all

    def unreadable(path):
        raise ImageReadError(f"'{path}' is truncated", hint="read_image(path, strict=False)",
                             cli_hint="convert it again with `medimg convert`")

    job = CaseJob("c1", tmp_path / "p.nii.gz", tmp_path / "r.nii.gz")
    kw = dict(label_map=None, names={1: "fg"}, metrics=["dice"], params={}, empty_score=1.0, surface="monai",
              reader=unreadable)
    (py,) = score_all([job], **kw)
    (cli,) = score_all([job], interface="cli", **kw)
    assert py.error.endswith("is truncated; read_image(path, strict=False)")
    assert cli.error.endswith("is truncated; convert it again with `medimg convert`")
