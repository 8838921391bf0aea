"""predict_folder: layouts, outputs on each input's grid, one bad case does not stop the rest."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from medimg.core import DataError, Image, make_affine
from medimg.inference import find_cases, predict_folder
from medimg.io import read_image, write_image
from tests.conftest import tiny_unet_checkpoint

PREPROCESS = [{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [2.0, 2.0, 2.0]}]


def _checkpoint(path, in_channels=1, images=("img.nii.gz",), label_map=None):
    return tiny_unet_checkpoint(path, in_channels=in_channels, preprocess=PREPROCESS,
                                inference={"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
                                data={"images": list(images), "label_map": label_map})


def _image(shape, spacing, seed, direction=None) -> Image:
    g = torch.Generator().manual_seed(seed)
    return Image(torch.rand((1, *shape), generator=g), make_affine(spacing, (seed, -seed, 3.0), direction))


def test_folder_with_a_corrupt_file(tmp_path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    src = tmp_path / "in"
    src.mkdir()
    inputs = {
        "a": _image((20, 18, 10), (1.0, 1.2, 3.0), 1, np.diag([-1.0, -1.0, 1.0])),
        "b": _image((15, 22, 9), (0.9, 0.9, 2.5), 2),
    }
    for cid, im in inputs.items():
        write_image(im, src / f"{cid}.nii.gz")
    (src / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    report = predict_folder(ckpt, src, out, device="cpu", progress=False)
    assert sorted(report.ok) == ["a", "b"]
    assert [c for c, _ in report.failed] == ["broken"]
    why = report.failed[0][1]  # says why, in words (no Python class name)
    assert why.startswith("cannot read NIfTI") and "broken.nii.gz" in why and "corrupt gzip data" in why
    assert "ImageReadError" not in why
    assert not report.all_ok
    for cid, im in inputs.items():
        lab = read_image(out / f"{cid}.nii.gz")
        assert lab.spatial_shape == im.spatial_shape
        assert np.allclose(lab.affine, im.affine, atol=1e-5)
        assert set(np.unique(lab.numpy()).tolist()) <= {0, 1}
    assert not (out / "broken.nii.gz").exists()
    assert json.loads((out / "labels.json").read_text()) == {"0": "background", "1": "lesion"}
    with open(out / "predict_log.csv", newline="") as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert rows["a"]["status"] == "ok" and float(rows["a"]["seconds"]) > 0
    assert rows["a"]["input"] == str(src / "a.nii.gz") and rows["a"]["device"] == "cpu"
    assert rows["a"]["precision"] == "fp32" and len(rows["a"]["checkpoint_sha256"]) == 64
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"] == why
    # the text file is accounted for, not silently dropped
    assert rows["notes.txt"]["status"] == "skipped" and "not an image" in rows["notes.txt"]["error"]
    assert report.skipped == [("notes.txt", rows["notes.txt"]["error"])]
    assert not (out / "predictions.csv").exists()


def test_the_training_label_map_travels_with_the_predictions(tmp_path):
    """evaluate applies the label map the model was trained with (issue 6 §7)."""
    from medimg.metrics.labels import read_prediction_labels

    ckpt = _checkpoint(tmp_path / "m.pt", label_map={1: 1, 2: 1, 4: 1})
    write_image(_image((12, 12, 8), (1.0, 1.0, 2.0), 3), tmp_path / "a.nii.gz")
    predict_folder(ckpt, tmp_path / "a.nii.gz", tmp_path / "out", device="cpu", progress=False)
    assert json.loads((tmp_path / "out" / "label_map.json").read_text()) == {"1": 1, "2": 1, "4": 1}
    recorded = read_prediction_labels(tmp_path / "out")
    assert recorded.label_map == {1: 1, 2: 1, 4: 1}
    assert recorded.names == {0: "background", 1: "lesion"}


def test_single_file_input(tmp_path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    f = tmp_path / "case_7.nii"
    write_image(_image((16, 16, 16), (1.0, 1.0, 1.0), 7), f)
    report = predict_folder(ckpt, f, tmp_path / "out", device="cpu", progress=False)
    assert report.ok == ["case_7"] and (tmp_path / "out" / "case_7.nii.gz").is_file()


def test_case_folders_for_a_multichannel_model(tmp_path):
    keys = ["flair.nii.gz", "t1c.nii.gz"]
    ckpt = _checkpoint(tmp_path / "m.pt", in_channels=2, images=keys)
    root = tmp_path / "test"
    for i, cid in enumerate(["p1", "p2", "p3"]):
        d = root / cid
        d.mkdir(parents=True)
        im = _image((18, 18, 12), (1.0, 1.0, 1.5), i)
        write_image(im, d / keys[0])
        if cid != "p3":  # p3 lacks its second channel
            write_image(im.new(im.data * 2), d / keys[1])
        write_image(im.new(torch.zeros_like(im.data, dtype=torch.uint8), kind="label"), d / "seg.nii.gz")
    report = predict_folder(ckpt, root, tmp_path / "out", device="cpu", progress=False)
    assert report.ok == ["p1", "p2"]
    assert report.failed[0][0] == "p3" and "t1c.nii.gz" in report.failed[0][1]
    lab = read_image(tmp_path / "out" / "p1.nii.gz")
    assert lab.spatial_shape == (18, 18, 12)


def test_find_cases_errors(tmp_path):
    with pytest.raises(DataError, match="prediction input not found"):
        find_cases(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no cases found in .*empty") as exc:
        find_cases(tmp_path / "empty", ["flair.nii.gz", "t1c.nii.gz"], 2)
    assert "2 channel(s) named" in str(exc.value) and exc.value.hint.endswith("; give a split folder such as data/test")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DataError, match="is not a NIfTI file"):
        find_cases(tmp_path / "x.txt")


def test_wrong_channel_count_is_a_failed_case(tmp_path):
    keys = ["flair.nii.gz", "t1c.nii.gz"]
    ckpt = _checkpoint(tmp_path / "m.pt", in_channels=2, images=keys)
    src = tmp_path / "flat"
    src.mkdir()
    write_image(_image((16, 16, 16), (1.0, 1.0, 1.0), 0), src / "single.nii.gz")
    report = predict_folder(ckpt, src, tmp_path / "out", device="cpu", progress=False)
    assert report.ok == [] and "expects 2 input channel(s)" in report.failed[0][1]


def test_dicom_inputs_for_a_single_channel_model(tmp_path, shared_data):
    """Issue 3: `predict` takes DICOM series folders (and files) like `read_image` does."""
    import shutil

    series = shared_data / "dicom" / "torchio_ct"
    if not series.is_dir():
        pytest.skip(f"shared DICOM series absent: {series}")
    ckpt = _checkpoint(tmp_path / "m.pt")
    tree = tmp_path / "tree"
    shutil.copytree(series, tree / "s1")
    shutil.copytree(series, tree / "s2")
    (tree / "empty").mkdir()
    assert [c for c, _ in find_cases(series)] == ["torchio_ct"]
    assert [c for c, _ in find_cases(tree)] == ["s1", "s2"]
    assert [c for c, _ in find_cases(series / "IMG0001.dcm")] == ["IMG0001"]
    # a multi-channel model needs a pattern per channel to take a DICOM study
    (case,) = find_cases(series, ["img.nii.gz", "t2.nii.gz"], 2)
    assert not case.ok and "--channel img='PATTERN' --channel t2='PATTERN'" in case.problem
    report = predict_folder(ckpt, tree, tmp_path / "out", device="cpu", progress=False)
    assert sorted(report.ok) == ["s1", "s2"] and report.all_ok
    src = read_image(series)
    lab = read_image(tmp_path / "out" / "s1.nii.gz")
    assert lab.spatial_shape == src.spatial_shape
    assert np.allclose(lab.affine, src.affine, atol=1e-4)


def test_predict_folder_never_changes_the_predictor_it_is_given(tmp_path):
    import inspect

    from medimg.inference import Predictor

    assert "input" not in inspect.signature(predict_folder).parameters
    pred = Predictor.from_checkpoint(_checkpoint(tmp_path / "m.pt"), device="cpu")
    spec, device = pred.spec, pred.device
    f = tmp_path / "c.nii.gz"
    write_image(_image((16, 16, 16), (1.0, 1.0, 1.0), 3), f)
    report = predict_folder(pred, f, tmp_path / "out", progress=False, overlap=0.5, tta_flips=[0], sw_batch_size=1)
    assert report.ok == ["c"]
    assert pred.spec is spec and pred.overlap == 0.25 and pred.tta_flips == [] and pred.device == device
    with pytest.raises(TypeError, match="unknown inference override"):
        predict_folder(pred, f, tmp_path / "out", progress=False, overlapp=0.5)
