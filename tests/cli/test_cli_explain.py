"""``medimg explain CHECKPOINT INPUT OUT``: Grad-CAM files per case from a classification
checkpoint; errors in the terms of its options, a bad case reported and the rest done."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from medimg.core import Image
from medimg.core.affine import make_affine
from medimg.core.spec import InferenceSpec
from medimg.inference import save_checkpoint
from medimg.io import read_image, write_image
from medimg.models import MODELS
from tests.conftest import run_cli as run


def _checkpoint(path: Path, name: str, task: str, **params) -> Path:
    torch.manual_seed(0)
    params = {"in_channels": 1, "out_channels": 2, "spatial_dims": 3, **params}
    model = MODELS.build({"name": name, **params})
    spec = InferenceSpec(task=task, label_names=["absent", "present"], roi_size=[16, 16, 16],
                         preprocess=[{"name": "spatial_pad", "size": 16}])
    return save_checkpoint(path, model, model_name=name, model_params=params, spec=spec)


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    rng = np.random.default_rng(0)
    affine = make_affine((1.5, 1.5, 2.0), (3.0, -2.0, 5.0))
    for i in range(2):
        write_image(Image(rng.normal(size=(1, 14, 15, 12)).astype(np.float32), affine), folder / f"c{i}.nii.gz")
    (folder / "broken.nii.gz").write_bytes(b"not a nifti file")
    return folder


def test_explain_writes_files_per_case_and_reports_the_bad_one(tmp_path, cases):
    pytest.importorskip("matplotlib")
    ckpt = _checkpoint(tmp_path / "cls.pt", "cnn3d", "classification", channels=[4, 8])
    out = tmp_path / "out"
    res = run("explain", ckpt, cases, out, "--device", "cpu")
    assert res.exit_code == 1, res.output
    assert "explained 2 of 3 cases" in res.output and "broken" in res.output
    assert "Traceback" not in res.output
    for case in ("c0", "c1"):
        heat = read_image(out / f"{case}_gradcam.nii.gz")
        assert heat.spatial_shape == (14, 15, 12)
        assert heat.same_grid(read_image(cases / f"{case}.nii.gz"))
        assert (out / f"{case}_gradcam.png").stat().st_size > 10_000
    with open(out / "explanations.csv") as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert rows["c0"]["status"] == "ok" and rows["c0"]["explained_class"] in ("absent", "present")
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]


def test_explain_unknown_layer_names_the_option(tmp_path, cases):
    ckpt = _checkpoint(tmp_path / "cls.pt", "cnn3d", "classification", channels=[4, 8])
    res = run("explain", ckpt, cases, tmp_path / "out", "--layer", "layer4", "--device", "cpu")
    assert res.exit_code == 2, res.output
    assert "layer 'layer4' is not a layer" in res.output and "features.1" in res.output
    assert "--layer" in res.output and "Traceback" not in res.output


def test_explain_refuses_a_segmentation_checkpoint(tmp_path, cases):
    ckpt = _checkpoint(tmp_path / "seg.pt", "basic_unet", "segmentation", features=[4, 4, 8, 8, 16, 4])
    res = run("explain", ckpt, cases, tmp_path / "out", "--device", "cpu")
    assert res.exit_code != 0
    assert "segmentation model" in res.output and "classification checkpoint" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("option,expected", [
    (["--layer", "fc"], "layer 'fc' outputs (1, 2), without the input's 3 spatial axes"),
    (["--target-class", "4"], "target class 4 does not exist: the model has 2 output(s)"),
])
def test_explain_option_wrong_for_the_model_stops_with_usage_error(tmp_path, cases, option, expected):
    ckpt = _checkpoint(tmp_path / "cls.pt", "cnn3d", "classification", channels=[4, 8])
    res = run("explain", ckpt, cases, tmp_path / "out", *option, "--device", "cpu")
    assert res.exit_code == 2, res.output
    assert expected in res.output and option[0] in res.output and "Traceback" not in res.output
