"""`medimg predict --channel NAME=PATTERN` and `--format dicom-seg` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("pydicom")

from medimg.core import Image, make_affine
from medimg.inference import save_checkpoint
from medimg.io import read_image, write_image
from medimg.models import create_model
from tests.conftest import run_cli, tiny_unet_checkpoint
from tests.io.dicom_study import write_dicom_series


def run(*args):
    return run_cli(*args, env={"COLUMNS": "300", "TERM": "dumb"})


def _checkpoint(path: Path) -> Path:
    return tiny_unet_checkpoint(path, in_channels=2, label_names=["background", "tumour"],
                                data={"images": ["Flair.nii.gz", "T1.nii.gz"]})


@pytest.fixture
def studies(tmp_path: Path) -> Path:
    root = tmp_path / "studies"
    for i, pat in enumerate(("p1", "p2")):
        uid = f"1.2.826.7.{i}"
        for n, desc in enumerate(("AX FLAIR", "T1 post", "ADC"), 1):
            write_dicom_series(root / pat / f"s{n}", desc, study_uid=uid, number=n, seed=n + 10 * i)
    return root


def test_predict_channels_by_pattern(tmp_path: Path, studies: Path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    out = tmp_path / "out"
    res = run("predict", ckpt, studies, out, "--device", "cpu", "--channel", "flair=*FLAIR*", "--channel", "T1='t1*'")
    assert res.exit_code == 0, res.output
    assert "predicted 2 of 2 cases" in res.output
    for pat in ("p1", "p2"):
        assert read_image(out / f"{pat}.nii.gz").spatial_shape == read_image(studies / pat / "s1").spatial_shape
    # no pattern for a multi-channel model: every study fails, saying what to pass
    res = run("predict", ckpt, studies, tmp_path / "o2", "--device", "cpu")
    assert res.exit_code == 1
    assert "pass --channel Flair='PATTERN' --channel T1='PATTERN'" in " ".join(res.output.split())


def test_predict_channel_usage_errors(tmp_path: Path, studies: Path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    res = run("predict", ckpt, studies, tmp_path / "o", "--device", "cpu", "--channel", "t2=*T2*")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "channel 't2' is not a channel of this model; its channels are: 'Flair', 'T1'" in " ".join(res.output.split())
    res = run("predict", ckpt, studies, tmp_path / "o", "--channel", "flair")
    assert res.exit_code == 2 and "is not NAME=PATTERN" in res.output
    assert not (tmp_path / "o").exists()


def test_predict_format_dicom_seg_refuses_a_nifti_case(tmp_path: Path):
    pytest.importorskip("highdicom")
    params = {"in_channels": 1, "out_channels": 2, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}
    ckpt = save_checkpoint(tmp_path / "m1.pt", create_model("unet", **params), model_name="unet", model_params=params,
                           label_names=["bg", "fg"], preprocess=[], inference={"roi_size": [8, 8, 8]})
    write_image(Image(torch.rand(1, 8, 8, 8), make_affine((1.0, 1.0, 1.0))), tmp_path / "in" / "c1.nii.gz")
    write_dicom_series(tmp_path / "in" / "ct", "CT", study_uid="1.2.826.8.1", number=1)
    res = run("predict", ckpt, tmp_path / "in", tmp_path / "out", "--device", "cpu", "--format", "dicom-seg")
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "predicted 1 of 2 cases" in text
    assert "its input" in text and "is not DICOM; predict it with --format nifti (the default)" in text
    assert (tmp_path / "out" / "ct.seg.dcm").is_file() and not (tmp_path / "out" / "c1.nii.gz").exists()
    res = run("predict", ckpt, tmp_path / "in", tmp_path / "out", "--format", "rtstruct")
    assert res.exit_code == 2
