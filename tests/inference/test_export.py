"""Export to ONNX / TorchScript with a parity check, and prediction through onnxruntime."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'medimg[onnx]') is not installed")

from medimg.core import CheckpointError, ConfigError, Image, MissingDependencyError, make_affine
from medimg.core.spec import InferenceSpec
from medimg.inference import Predictor, export_checkpoint, load_predictor, save_checkpoint
from medimg.inference import export as export_module
from medimg.inference.export import read_export_metadata
from medimg.inference.onnx_backend import OnnxNetwork
from medimg.models import create_model

UNET3D = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "channels": [4, 8], "strides": [2],
          "num_res_units": 1}
UNET2D = {"in_channels": 2, "out_channels": 2, "spatial_dims": 2, "channels": [4, 8], "strides": [2],
          "num_res_units": 1}
CNN3D = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "channels": [4, 8], "dropout": 0.0}
PREPROCESS = [{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.5, 1.5, 1.5]}]


def _save(path: Path, name: str, params: dict, spec: InferenceSpec) -> Path:
    torch.manual_seed(0)
    model = create_model(name, **params)
    return save_checkpoint(path, model, model_name=name, model_params=params, spec=spec)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    import medimg.transforms.spatial  # noqa: F401  (registers orient/resample)

    root = tmp_path_factory.mktemp("ckpts")
    return {
        "seg3d": _save(root / "seg3d.pt", "unet", UNET3D, InferenceSpec(
            roi_size=[16, 16, 16], sw_batch_size=3, overlap=0.5, tta_flips=[0, 2], preprocess=PREPROCESS,
            label_names=["background", "liver", "tumour"], label_map={1: 1, 2: 2}, in_channels=1)),
        "seg2d": _save(root / "seg2d.pt", "unet", UNET2D, InferenceSpec(
            roi_size=[32, 32], sw_batch_size=2, label_names=["background", "lesion"], in_channels=2)),
        "cls3d": _save(root / "cls3d.pt", "cnn3d", CNN3D, InferenceSpec(
            task="classification", roi_size=[16, 16, 16], tta_flips=[1], label_names=["a", "b", "c"],
            in_channels=1)),
    }


def _image3d(shape=(21, 26, 11)) -> Image:
    """Non-RAS, anisotropic, odd origin: preprocessing and its inversion both do work."""
    direction = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    affine = make_affine((0.8, 1.3, 2.5), (12.3, -40.1, 7.7), direction)
    return Image(torch.rand((1, *shape), generator=torch.Generator().manual_seed(1)), affine)


# ------------------------------------------------------------------------- export + parity
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("which", ["seg3d", "seg2d", "cls3d"])
def test_export_passes_parity_and_stores_the_spec(ckpts, tmp_path, which, fmt):
    out = tmp_path / f"{which}.{'onnx' if fmt == 'onnx' else 'ts'}"
    report = export_checkpoint(ckpts[which], out, fmt)
    assert report.path == out and out.is_file() and not (tmp_path / (out.name + ".tmp")).exists()
    assert report.format == fmt and report.max_abs_diff < 1e-4
    spec = Predictor.from_checkpoint(ckpts[which], "cpu").spec
    assert report.input_shape == (2, spec.in_channels, *spec.roi_size)
    meta = read_export_metadata(out)
    assert InferenceSpec.model_validate(meta["inference"]) == spec  # label_map keys back to int
    assert meta["model"]["name"] in ("unet", "cnn3d") and meta["parity_max_abs_diff"] == report.max_abs_diff
    assert meta["dynamic_spatial"] is True and report.dynamic_spatial


def _run_exported(path: Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    with torch.no_grad():
        return torch.jit.load(str(path))(x)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_network_takes_other_batch_and_spatial_sizes(ckpts, tmp_path, fmt):
    out = tmp_path / "m.bin"
    export_checkpoint(ckpts["seg3d"], out, fmt)
    ckpt_model = Predictor.from_checkpoint(ckpts["seg3d"], "cpu").model
    x = torch.randn(3, 1, 32, 16, 24, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = ckpt_model(x)
    got = _run_exported(out, fmt, x)
    assert got.shape == ref.shape and float((got - ref).abs().max()) < 1e-4


def test_fixed_spatial_size_where_the_network_refuses_others(ckpts, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "_spatial_probe_ok", lambda *a: False)
    report = export_checkpoint(ckpts["seg2d"], tmp_path / "m.onnx")
    assert report.dynamic_spatial is False and read_export_metadata(report.path)["dynamic_spatial"] is False
    import onnxruntime as ort

    shape = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    assert shape[1:] == [2, 32, 32] and not isinstance(shape[0], int)  # batch stays dynamic


def test_parity_failure_names_the_difference_and_writes_nothing(ckpts, tmp_path, monkeypatch):
    real = export_module._runner

    def off_by_a_bit(fmt, data):
        run = real(fmt, data)
        return lambda x: run(x) + 3e-3

    monkeypatch.setattr(export_module, "_runner", off_by_a_bit)
    out = tmp_path / "m.onnx"
    with pytest.raises(CheckpointError, match=r"parity check failed .* differ .* by up to 0\.003 \(limit 0\.0001\)"):
        export_checkpoint(ckpts["seg3d"], out, "onnx")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_errors(ckpts, tmp_path):
    with pytest.raises(ConfigError, match="unsupported export format 'keras'"):
        export_checkpoint(ckpts["seg3d"], tmp_path / "m.h5", "keras")
    bare = tmp_path / "bare.pt"
    torch.save(create_model("unet", **UNET3D).state_dict(), bare)
    with pytest.raises(CheckpointError, match="is not a medimg checkpoint"):
        export_checkpoint(bare, tmp_path / "m.onnx")


# ------------------------------------------------------------ prediction through onnxruntime
@pytest.fixture(scope="module")
def onnx_files(ckpts, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx")
    return {k: export_checkpoint(p, root / f"{k}.onnx").path for k, p in ckpts.items()}


def test_onnxruntime_segmentation_3d_equals_torch(ckpts, onnx_files):
    image = _image3d()
    torch_pred = Predictor.from_checkpoint(ckpts["seg3d"], "cpu")
    onnx_pred = load_predictor(onnx_files["seg3d"], device="cpu")
    assert isinstance(onnx_pred.model, OnnxNetwork) and onnx_pred.spec == torch_pred.spec
    a = torch_pred.predict_probabilities(image, "c1")
    b = onnx_pred.predict_probabilities(image, "c1")
    assert b.shape == (3, *image.spatial_shape) and np.array_equal(b.affine, image.affine)
    assert float((a.data - b.data).abs().max()) < 1e-4
    assert float((a.data - b.data).abs().max()) > 0  # really another runtime
    # overrides apply as for a checkpoint; a checkpoint exported on the fly runs the same way
    c = load_predictor(ckpts["seg3d"], "onnxruntime", "cpu", overlap=0.25)
    assert isinstance(c.model, OnnxNetwork) and c.overlap == 0.25
    d = torch_pred.with_options(overlap=0.25).predict_probabilities(image)
    assert float((c.predict_probabilities(image).data - d.data).abs().max()) < 1e-4


def test_onnxruntime_segmentation_2d_equals_torch(ckpts, onnx_files):
    image = Image(torch.randn(2, 45, 70, generator=torch.Generator().manual_seed(2)))
    a = Predictor.from_checkpoint(ckpts["seg2d"], "cpu").predict_probabilities(image)
    b = load_predictor(onnx_files["seg2d"], device="cpu").predict_probabilities(image)
    assert b.shape == (2, 45, 70) and float((a.data - b.data).abs().max()) < 1e-4


def test_onnxruntime_classification_equals_torch(ckpts, onnx_files):
    image = Image(torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(4)))
    torch_pred = Predictor.from_checkpoint(ckpts["cls3d"], "cpu")
    onnx_pred = load_predictor(onnx_files["cls3d"], device="cpu")
    a, b = torch_pred.predict_proba(image), onnx_pred.predict_proba(image)
    assert b.shape == (3,) and float((a - b).abs().max()) < 1e-4
    batch = torch.randn(5, 1, 16, 16, 16, generator=torch.Generator().manual_seed(5))
    assert float((torch_pred.classify_batch(batch) - onnx_pred.classify_batch(batch)).abs().max()) < 1e-4
    assert onnx_pred.num_classes == 3


def test_backend_errors(ckpts, onnx_files, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="is an ONNX model, which the torch backend cannot run"):
        load_predictor(onnx_files["seg3d"], "torch")
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        load_predictor(ckpts["seg3d"], "tensorrt")
    # an ONNX file that medimg did not write: no prediction settings in it
    model = create_model("unet", **UNET3D).eval()
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(export_module.onnx_bytes(model, torch.zeros(1, 1, 16, 16, 16)))
    with pytest.raises(CheckpointError, match="holds no medimg prediction settings") as info:
        load_predictor(plain)
    assert "medimg export CHECKPOINT --format onnx OUT" in info.value.hint_for("cli")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(CheckpointError, match="cannot read .* as an ONNX or TorchScript model"):
        load_predictor(garbage)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match="backend needs the optional package 'onnxruntime'") as info:
        load_predictor(ckpts["seg3d"], "onnxruntime", "cpu")
    assert "pip install 'medimg[onnx]'" in info.value.hint_for("cli")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_holds_its_metadata_inside(ckpts, tmp_path):
    out = export_checkpoint(ckpts["cls3d"], tmp_path / "m.ts", "torchscript").path
    extra = {"medimg.json": ""}
    module = torch.jit.load(io.BytesIO(out.read_bytes()), _extra_files=extra)
    assert b'"task": "classification"' in extra["medimg.json"]
    assert module(torch.zeros(2, 1, 16, 16, 16)).shape == (2, 3)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_file_predicts_as_the_checkpoint(ckpts, tmp_path):
    out = export_checkpoint(ckpts["seg3d"], tmp_path / "m.pt", "torchscript").path  # .pt: told apart by content
    pred = load_predictor(out, device="cpu")
    assert isinstance(pred.model, torch.jit.ScriptModule)
    image = _image3d((17, 20, 9))
    a = Predictor.from_checkpoint(ckpts["seg3d"], "cpu").predict_probabilities(image)
    assert float((pred.predict_probabilities(image).data - a.data).abs().max()) < 1e-4
    with pytest.raises(ConfigError, match="is a TorchScript model, which onnxruntime cannot run"):
        load_predictor(out, "onnxruntime")


def test_parity_failure_stops_an_onnxruntime_predictor_too(ckpts, monkeypatch):
    real = export_module._runner

    def scaled(fmt, data):
        exported = real(fmt, data)
        return lambda x: exported(x) * 1.1

    monkeypatch.setattr(export_module, "_runner", scaled)
    with pytest.raises(CheckpointError, match="parity check failed exporting"):
        load_predictor(ckpts["seg3d"], "onnxruntime", "cpu")


@pytest.mark.parametrize("affine", [False, True])
def test_axiswise_instance_norm_is_instance_norm(affine):
    from medimg.inference.export import AxiswiseInstanceNorm, for_onnx

    torch.manual_seed(0)
    norm = torch.nn.InstanceNorm3d(4, affine=affine, eps=1e-5)
    if affine:
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 4, 9, 12, 7) * 3 + 5
    with torch.no_grad():
        assert float((AxiswiseInstanceNorm(norm)(x) - norm(x)).abs().max()) < 1e-5
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), norm)
    rewritten = for_onnx(net)
    assert isinstance(rewritten[1], AxiswiseInstanceNorm) and isinstance(net[1], torch.nn.InstanceNorm3d)


@pytest.mark.slow
def test_onnx_parity_is_tight_for_the_default_unet_on_96_cubed_tiles(tmp_path):
    """onnxruntime's one-pass float32 instance norm put this network 8e-5 off torch (the
    limit is 1e-4); with the axis-wise means it is within 1e-5, spatial axes dynamic."""
    params = {"in_channels": 2, "out_channels": 2, "spatial_dims": 3}
    ckpt = _save(tmp_path / "unet.pt", "unet", params, InferenceSpec(roi_size=[96, 96, 96], label_names=["a", "b"]))
    report = export_checkpoint(ckpt, tmp_path / "unet.onnx")
    assert report.max_abs_diff < 2e-5 and report.dynamic_spatial
