"""Evaluate never scores one class against another quietly: label files, label maps, checks.

Issue 6 §7: predictions of a one-class model ("tumour") scored against BraTS references
{1, 2, 3, 4} without a label map gave Dice 0.015 (tumour vs necrosis) with no warning.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medimg.core import DataError, make_affine
from medimg.metrics import evaluate_folders, load_label_names
from medimg.metrics.labels import (
    LabelMismatchError,
    read_prediction_labels,
    suggest_label_map,
    write_prediction_labels,
)

from tests.conftest import shared_path

AFFINE = make_affine((1.0, 1.0, 2.0))
SHAPE = (16, 16, 8)


def _save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), AFFINE), str(path))
    return path


def _brats_like(value_outer: int = 2, value_inner: int = 4) -> np.ndarray:
    """Oedema (2) around enhancing tumour (4): whole tumour = the outer box."""
    ref = np.zeros(SHAPE, np.uint8)
    ref[3:13, 3:13, 2:6] = value_outer
    ref[6:10, 6:10, 3:5] = value_inner
    return ref


@pytest.fixture
def whole_tumour(tmp_path):
    """A one-class model's predictions (exactly the whole tumour) and BraTS-coded references."""
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    for cid in ("p1", "p2"):
        ref = _brats_like()
        _save(ref_dir / cid / "OTMultiClass.nii.gz", ref)
        _save(ref_dir / cid / "brainmask.nii.gz", np.ones(SHAPE))
        _save(pred_dir / f"{cid}.nii.gz", (ref > 0).astype(np.uint8))
    return pred_dir, ref_dir


def test_prediction_label_files_round_trip(tmp_path):
    path = write_prediction_labels(tmp_path, ["background", "tumour"], {"4": 1, "2": 1})
    assert json.loads(path.read_text()) == {"0": "background", "1": "tumour"}  # what predict writes
    assert json.loads((tmp_path / "label_map.json").read_text()) == {"2": 1, "4": 1}
    got = read_prediction_labels(tmp_path)
    assert got.names == {0: "background", 1: "tumour"} and got.label_map == {2: 1, 4: 1}
    assert load_label_names(tmp_path) == {0: "background", 1: "tumour"}
    write_prediction_labels(tmp_path, {0: "bg", 1: "organ", 2: "lesion"})  # a model without a map
    assert read_prediction_labels(tmp_path).label_map is None
    assert not (tmp_path / "label_map.json").exists()
    (tmp_path / "label_map.json").write_text('{"2": "one"}')
    with pytest.raises(DataError, match="label_map.json.*expected integer class values"):
        read_prediction_labels(tmp_path)
    assert read_prediction_labels(tmp_path / "none").names is None


def test_suggested_maps():
    assert suggest_label_map({0, 1, 2, 4}, {0, 1}) == {1: 1, 2: 1, 4: 1}
    assert suggest_label_map({0, 1, 2, 4}, {0, 1, 2, 3}) == {1: 1, 2: 2, 4: 3}
    assert suggest_label_map({0, 1, 2, 4}, {0, 1, 2}) == {1: "?", 2: "?", 4: "?"}
    assert suggest_label_map({0}, {0, 1}) is None


def test_reference_values_outside_the_classes_stop_with_both_sets_and_the_fix(whole_tumour):
    pred_dir, ref_dir = whole_tumour
    write_prediction_labels(pred_dir, ["background", "tumour"])  # as predict writes it
    with pytest.raises(LabelMismatchError) as exc:
        evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0)
    err = exc.value
    assert err.message.startswith("the references hold values 2, 4 that are no prediction class (first in case 'p1')")
    assert "reference values {0, 2, 4} in 2 case(s)" in err.message
    assert f"prediction classes {{0 (background), 1 (tumour)}} ('{pred_dir / 'labels.json'}')" in err.message
    assert err.suggestion == {2: 1, 4: 1}
    assert err.cli_hint == "pass --label-map 2:1,4:1 to score them as 'tumour'"
    assert err.hint == "pass label_map={2: 1, 4: 1} to score them as 'tumour'"
    # the suggested map fixes it: the whole tumour is exactly the prediction
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0, label_map=err.suggestion)
    assert rep.values("tumour", "dice") == {"p1": 1.0, "p2": 1.0} and rep.all_ok


def test_the_training_label_map_recorded_with_the_predictions_is_applied(whole_tumour, tmp_path):
    pred_dir, ref_dir = whole_tumour
    write_prediction_labels(pred_dir, ["background", "tumour"], {1: 1, 2: 1, 3: 1, 4: 1})
    rep = evaluate_folders(pred_dir, ref_dir, tmp_path / "eval", metrics=["dice"], bootstrap=0)
    assert rep.values("tumour", "dice") == {"p1": 1.0, "p2": 1.0}
    settings = json.loads((tmp_path / "eval" / "summary.json").read_text())["_settings"]
    assert settings["label_map"] == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert "label_map.json" in settings["label_map_from"]
    assert "reference labels mapped with 1:1,2:1,3:1,4:1 (the model's training label map" in rep.format()
    # a map given explicitly wins over the recorded one
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0, label_map={2: 1})
    assert rep.values("tumour", "dice")["p1"] == pytest.approx(2 * 368 / (400 + 368))  # 4 -> background


def test_named_classes_absent_from_every_reference_stop_unless_allowed(tmp_path):
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    ref = _brats_like(1, 1)
    _save(ref_dir / "c1.nii.gz", ref)
    _save(pred_dir / "c1.nii.gz", ref)
    write_prediction_labels(pred_dir, ["background", "organ", "lesion"])
    with pytest.raises(LabelMismatchError, match=r"prediction classes 2 \(lesion\) occur in no reference: "
                                                 r"reference values \{0, 1\} in 1 case\(s\)") as exc:
        evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0)
    assert "--allow-absent-classes" in exc.value.cli_hint
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0, allow_absent_classes=True)
    assert rep.values("organ", "dice") == {"c1": 1.0} and rep.values("lesion", "dice") == {"c1": 1.0}


def test_prediction_values_without_a_name_stop(tmp_path):
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    _save(ref_dir / "c1.nii.gz", _brats_like(1, 1))
    _save(pred_dir / "c1.nii.gz", _brats_like(1, 3))
    write_prediction_labels(pred_dir, ["background", "organ"])
    with pytest.raises(LabelMismatchError, match=r"the predictions hold values 3 that are not among their named "
                                                 r"classes \(first in case 'c1'\): prediction values \{0, 1, 3\}"):
        evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0)


def test_without_class_names_values_are_scored_with_a_warning(whole_tumour):
    pred_dir, ref_dir = whole_tumour
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0)
    assert sorted(rep.label_names.values()) == ["label_1", "label_2", "label_4"]
    assert rep.warnings == [
        "the predictions' classes are unknown (no labels.json, no label names): scored by value; reference "
        "values 2, 4 occur in no prediction (reference values {0, 2, 4}, prediction values {0, 1}); if the "
        "prediction's classes stand for them, map them (e.g. label map 2:1,4:1)"
    ]
    assert "warning: the predictions' classes are unknown" in rep.format()


def test_a_file_pair_and_incomplete_folders(whole_tumour, tmp_path):
    pred_dir, ref_dir = whole_tumour
    write_prediction_labels(pred_dir, ["background", "tumour"], {2: 1, 4: 1})
    # a file pair, whatever the names; labels.json and label_map.json beside the prediction apply
    rep = evaluate_folders(pred_dir / "p1.nii.gz", ref_dir / "p2" / "OTMultiClass.nii.gz", metrics=["dice"],
                           bootstrap=0)
    assert rep.cases == ["p1"] and rep.values("tumour", "dice") == {"p1": 1.0} and rep.all_ok
    assert rep.files["p1"] == (pred_dir / "p1.nii.gz", ref_dir / "p2" / "OTMultiClass.nii.gz")
    # a file against a folder: matched by case id
    rep = evaluate_folders(pred_dir / "p2.nii.gz", ref_dir, metrics=["dice"], bootstrap=0)
    assert rep.cases == ["p2"] and rep.missing_pred == ["p1"] and not rep.all_ok
    assert rep.problems() == "1 case(s) without a prediction; the summary covers the 1 case(s) scored"
    # a truncated prediction fails its case; the report says so and is not all_ok
    raw = (pred_dir / "p2.nii.gz").read_bytes()
    (pred_dir / "p2.nii.gz").write_bytes(raw[: len(raw) // 2])
    rep = evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0)
    assert rep.cases == ["p1"] and list(rep.failed) == ["p2"] and not rep.all_ok
    assert "failed p2:" in rep.format()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"prediction '.*notes.txt' is not a NIfTI file"):
        evaluate_folders(tmp_path / "notes.txt", ref_dir / "p1" / "OTMultiClass.nii.gz")


def test_progress_is_called_per_case(whole_tumour):
    pred_dir, ref_dir = whole_tumour
    calls = []
    evaluate_folders(pred_dir, ref_dir, metrics=["dice"], bootstrap=0, progress=lambda *a: calls.append(a))
    assert calls == [(1, 2, "p1"), (2, 2, "p2")]


def test_brats_references_against_a_one_class_model(tmp_path):
    """Real data: the issue's scenario on brats6/test (whole-tumour predictions = ref > 0)."""
    test_dir = shared_path("seg", "brats6", "test")
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for case in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        img = nib.load(str(case / "OTMultiClass.nii.gz"))
        whole = (np.asanyarray(img.dataobj) > 0).astype(np.uint8)
        nib.save(nib.Nifti1Image(whole, img.affine), str(pred_dir / f"{case.name}.nii.gz"))
    write_prediction_labels(pred_dir, ["background", "tumour"])
    with pytest.raises(LabelMismatchError) as exc:
        evaluate_folders(pred_dir, test_dir, metrics=["dice"], bootstrap=0)
    assert "reference values {0, 1, 2, 3, 4} in 2 case(s)" in exc.value.message
    assert exc.value.cli_hint == "pass --label-map 1:1,2:1,3:1,4:1 to score them as 'tumour'"
    write_prediction_labels(pred_dir, ["background", "tumour"], exc.value.suggestion)
    rep = evaluate_folders(pred_dir, test_dir, metrics=["dice", "volume_diff_ml"], bootstrap=0)
    assert rep.all_ok and rep.cases == ["brats_2013_pat0001_1", "brats_2013_pat0002_1"]
    assert rep.values("tumour", "dice") == {c: 1.0 for c in rep.cases}
    assert all(v == 0.0 and not math.isnan(v) for v in rep.values("tumour", "volume_diff_ml").values())
