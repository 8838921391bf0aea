"""``medimg export`` and ``medimg predict --backend onnxruntime``: results and one-line errors."""

from __future__ import annotations

import csv
import sys
import typing
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'medimg[onnx]') is not installed")

from medimg.cli.export import ExportFormat
from medimg.cli.predict import Backend
from medimg.core.spec import InferenceSpec
from medimg.inference import export as export_module
from medimg.inference import save_checkpoint
from medimg.inference.export import EXPORT_FORMATS
from medimg.inference.onnx_backend import BACKENDS
from medimg.models import create_model
from tests.conftest import run_cli as run

SEG = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}
CLS = {"in_channels": 1, "out_channels": 2, "spatial_dims": 3, "channels": [4, 8], "dropout": 0.0}


def _ckpt(path: Path, name: str, params: dict, spec: InferenceSpec) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(path, create_model(name, **params), model_name=name, model_params=params, spec=spec)


@pytest.fixture
def seg_ckpt(tmp_path: Path) -> Path:
    import medimg.transforms.spatial  # noqa: F401  (registers orient/resample)

    spec = InferenceSpec(roi_size=[16, 16, 16], sw_batch_size=2, overlap=0.5, label_names=["bg", "a", "b"],
                         preprocess=[{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [2, 2, 2]}])
    return _ckpt(tmp_path / "seg.pt", "unet", SEG, spec)


def _cases(folder: Path, n: int = 2, shape=(20, 24, 13)) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.array([[0.0, -1.5, 0, 10], [1.2, 0, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    for i in range(n):
        nib.save(nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), affine), str(folder / f"c{i}.nii.gz"))
    return folder


def test_cli_choices_are_the_library_names():
    assert typing.get_args(ExportFormat) == EXPORT_FORMATS
    assert typing.get_args(Backend) == BACKENDS


@pytest.mark.parametrize("fmt, name", [("onnx", "model.onnx"), ("torchscript", "model.ts")])
def test_export_writes_and_reports_parity(seg_ckpt, tmp_path, fmt, name):
    res = run("export", seg_ckpt, "--format", fmt, tmp_path / "out" / name)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / name).is_file()
    assert f"({fmt}; batch dynamic, spatial size dynamic); parity: max |logit difference|" in res.output
    assert "< 1e-4 on input (2, 1, 16, 16, 16)" in res.output


def test_export_errors_are_one_line(seg_ckpt, tmp_path, monkeypatch):
    res = run("export", seg_ckpt, "--format", "keras", tmp_path / "m.h5")
    assert res.exit_code == 2 and "error: invalid value for '--format' / '-f': 'keras' is not one of" in res.output
    bare = tmp_path / "bare.pt"
    torch.save(create_model("unet", **SEG).state_dict(), bare)
    res = run("export", bare, tmp_path / "m.onnx")
    assert res.exit_code == 1 and res.output.startswith(f"error: '{bare}' is not a medimg checkpoint")
    assert "hint: a bare state_dict or another tool's checkpoint" in res.output and "Traceback" not in res.output
    res = run("export", tmp_path / "none.pt", tmp_path / "m.onnx")
    assert res.exit_code == 1 and "not found" in res.output
    (tmp_path / "folder").mkdir()
    res = run("export", seg_ckpt, tmp_path / "folder")
    assert res.exit_code == 2 and f"error: export destination '{tmp_path / 'folder'}' is a folder" in res.output
    assert f"hint: give a file as OUT, e.g. {tmp_path / 'folder' / 'model.onnx'}" in res.output
    (tmp_path / "a_file").write_text("not a folder")  # unwritable as a parent, even for root
    res = run("export", seg_ckpt, tmp_path / "a_file" / "m.onnx")
    assert res.exit_code == 1 and f"error: cannot write the exported model to '{tmp_path / 'a_file' / 'm.onnx'}'" \
        in res.output and "': a folder on its path is a file\nhint: choose a folder you can write to" in res.output

    real = export_module._runner

    def off_by_a_bit(fmt, data):
        exported = real(fmt, data)
        return lambda x: exported(x) + 1e-3

    monkeypatch.setattr(export_module, "_runner", off_by_a_bit)
    res = run("export", seg_ckpt, tmp_path / "m.onnx")
    assert res.exit_code == 1 and "error: parity check failed exporting" in res.output
    assert "differ from torch's by up to 0.001 (limit 0.0001)" in res.output and not (tmp_path / "m.onnx").exists()
    assert "hint: try the other --format (onnx or torchscript)" in res.output


def _read_nifti(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def test_predict_with_onnxruntime_equals_torch(seg_ckpt, tmp_path):
    inp = _cases(tmp_path / "in")
    assert run("export", seg_ckpt, tmp_path / "m.onnx").exit_code == 0
    res = run("predict", seg_ckpt, inp, tmp_path / "torch", "--device", "cpu", "--tta")
    assert res.exit_code == 0, res.output
    res = run("predict", tmp_path / "m.onnx", inp, tmp_path / "ort", "--device", "cpu", "--tta")
    assert res.exit_code == 0, res.output
    res = run("predict", seg_ckpt, inp, tmp_path / "ort2", "--backend", "onnxruntime", "--device", "cpu")
    assert res.exit_code == 0, res.output
    for case in ("c0", "c1"):
        ref = nib.load(str(tmp_path / "torch" / f"{case}.nii.gz"))
        got = nib.load(str(tmp_path / "ort" / f"{case}.nii.gz"))
        assert got.shape == ref.shape == (20, 24, 13) and np.allclose(got.affine, ref.affine)
        assert np.array_equal(_read_nifti(tmp_path / "ort" / f"{case}.nii.gz"), np.asarray(ref.dataobj))
        assert (tmp_path / "ort2" / f"{case}.nii.gz").is_file()
    assert (tmp_path / "ort" / "labels.json").read_text() == (tmp_path / "torch" / "labels.json").read_text()


def test_predict_classifier_with_onnxruntime_equals_torch(tmp_path):
    spec = InferenceSpec(task="classification", roi_size=[12, 12, 12], label_names=["no", "yes"], threshold=0.4)
    ckpt = _ckpt(tmp_path / "cls.pt", "cnn3d", CLS, spec)
    inp = _cases(tmp_path / "in", n=3, shape=(12, 12, 12))
    assert run("export", ckpt, tmp_path / "cls.onnx").exit_code == 0
    assert run("predict", ckpt, inp, tmp_path / "torch", "--device", "cpu").exit_code == 0
    res = run("predict", tmp_path / "cls.onnx", inp, tmp_path / "ort", "--backend", "onnxruntime")
    assert res.exit_code == 0, res.output

    def rows(folder: Path) -> list[dict]:
        with open(folder / "predictions.csv", newline="") as fh:
            return list(csv.DictReader(fh))

    ref, got = rows(tmp_path / "torch"), rows(tmp_path / "ort")
    assert [r["case_id"] for r in got] == [r["case_id"] for r in ref] and len(got) == 3
    for a, b in zip(ref, got):
        assert abs(float(a["prob_yes"]) - float(b["prob_yes"])) < 1e-4 and a["predicted"] == b["predicted"]
        assert b["threshold"] == "0.400000"


def test_predict_backend_errors_are_one_line(seg_ckpt, tmp_path, monkeypatch):
    inp = _cases(tmp_path / "in", n=1)
    assert run("export", seg_ckpt, tmp_path / "m.onnx").exit_code == 0
    res = run("predict", tmp_path / "m.onnx", inp, tmp_path / "o", "--backend", "torch")
    assert res.exit_code == 2 and "is an ONNX model, which the torch backend cannot run" in res.output
    assert "hint: use --backend onnxruntime (or leave --backend out)" in res.output
    res = run("predict", seg_ckpt, inp, tmp_path / "o", "--backend", "tensorrt")
    assert res.exit_code == 2 and "'tensorrt' is not one of 'torch', 'onnxruntime'" in res.output
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(export_module.onnx_bytes(create_model("unet", **SEG).eval(), torch.zeros(1, 1, 16, 16, 16)))
    res = run("predict", plain, inp, tmp_path / "o")
    assert res.exit_code == 1 and res.output.startswith(f"error: '{plain}' holds no medimg prediction settings")
    assert "hint: export the medimg checkpoint it came from with `medimg export CHECKPOINT --format onnx OUT`" \
        in res.output
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    res = run("predict", tmp_path / "m.onnx", inp, tmp_path / "o")
    expected = ("error: the onnxruntime backend needs the optional package 'onnxruntime', which is not installed\n"
                "hint: pip install 'medimg[onnx]', or predict a medimg checkpoint (.pt) with --backend torch\n")
    assert res.exit_code == 1 and res.output == expected
    res = run("predict", seg_ckpt, inp, tmp_path / "o", "--backend", "onnxruntime")
    assert res.exit_code == 1 and res.output == expected
