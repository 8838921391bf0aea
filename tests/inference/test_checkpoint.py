"""Checkpoints: plain data loadable with weights_only=True, round trip, clear errors."""

from __future__ import annotations

import pytest
import torch

from medimg.core.errors import CheckpointError
from medimg.inference import build_model, load_checkpoint, save_checkpoint
from medimg.models import create_model

PARAMS = {"in_channels": 2, "out_channels": 3, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}


def _save(path, **kw):
    torch.manual_seed(0)
    model = create_model("unet", **PARAMS)
    args = dict(
        model_name="unet",
        model_params=PARAMS,
        label_names=["background", "oedema", "tumour"],
        preprocess=[{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.0, 1.0, 1.0]}],
        inference={"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
        data={"images": ["flair.nii.gz", "t1c.nii.gz"], "label": "seg.nii.gz", "label_map": {1: 1, 2: 2, 4: 2}},
        training={"epoch": 3, "metric_name": "dice", "metric": 0.5},
    )
    args.update(kw)
    save_checkpoint(path, model, **args)
    return model


def test_round_trip_weights_only(tmp_path):
    p = tmp_path / "sub" / "best.pt"
    model = _save(p)
    raw = torch.load(p, weights_only=True)  # plain data only: no pickled classes
    assert raw["format"] == "medimg-checkpoint" and raw["format_version"] == 1
    assert raw["model"] == {"name": "unet", "params": PARAMS}
    assert raw["in_channels"] == 2 and raw["out_channels"] == 3 and raw["spatial_dims"] == 3
    assert raw["label_names"] == ["background", "oedema", "tumour"]
    assert raw["preprocess"][1] == {"name": "resample", "spacing": [1.0, 1.0, 1.0]}
    assert raw["data"]["label_map"] == {1: 1, 2: 2, 4: 2}
    assert {"medimg", "torch", "monai"} <= set(raw["versions"])
    ckpt = load_checkpoint(p)
    rebuilt = build_model(ckpt)
    x = torch.randn(2, 2, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), rebuilt(x))
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # atomic write left nothing behind


def test_config_objects_become_plain(tmp_path):
    from pathlib import Path

    from medimg.config.schema import InferenceSection

    p = tmp_path / "c.pt"
    _save(p, inference=InferenceSection(roi_size=[16, 16, 16]), data={"root": Path("/x"), "images": ("a",)})
    raw = torch.load(p, weights_only=True)
    assert raw["inference"]["roi_size"] == [16, 16, 16] and raw["data"] == {"root": "/x", "images": ["a"]}


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: '.*nope.pt'"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="it is a folder"):
        load_checkpoint(tmp_path)


def test_corrupt_and_truncated(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad.pt") as exc:
        load_checkpoint(bad)
    assert "corrupt or truncated" in str(exc.value)
    assert "bad.pt': not a checkpoint file, or damaged" in exc.value.message  # words, no Python class name
    assert "Error" not in exc.value.message and "`medimg train`" in exc.value.cli_hint
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt': the file is empty or ends early"):
        load_checkpoint(empty)
    good = tmp_path / "good.pt"
    _save(good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*cut.pt': the file is damaged or truncated"):
        load_checkpoint(cut)


def test_foreign_files(tmp_path):
    sd = tmp_path / "state_dict.pt"
    torch.save(create_model("unet", **PARAMS).state_dict(), sd)
    with pytest.raises(CheckpointError, match="is not a medimg checkpoint") as exc:
        load_checkpoint(sd)
    assert "bare state_dict" in str(exc.value)
    assert "save_checkpoint" not in exc.value.cli_hint and "`medimg train`" in exc.value.cli_hint
    assert "found entries ['" in exc.value.message
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="is not a medimg checkpoint: .* found a single tensor"):
        load_checkpoint(tensor)

    from pathlib import PurePosixPath

    pk = tmp_path / "pickled.pt"  # a pickled class instance: refused by weights_only loading
    torch.save({"format": "medimg-checkpoint", "format_version": 1, "obj": PurePosixPath("x")}, pk)
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*: it holds Python objects, not the plain data"):
        load_checkpoint(pk)


def test_newer_version_and_missing_entries(tmp_path):
    p = tmp_path / "a.pt"
    _save(p)
    raw = torch.load(p, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match="format_version 99; this medimg reads up to 1"):
        load_checkpoint(p)
    raw["format_version"] = 1
    del raw["preprocess"]
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match=r"lacks required entries \['preprocess'\]"):
        load_checkpoint(p)


def test_weights_that_do_not_fit(tmp_path):
    p = tmp_path / "a.pt"
    _save(p)
    ckpt = load_checkpoint(p)
    ckpt["model"]["params"]["channels"] = [8, 16]
    with pytest.raises(CheckpointError, match="weights do not fit model 'unet'") as exc:
        build_model(ckpt)
    assert "size mismatch for" in exc.value.message or "Missing key(s)" in exc.value.message
    assert "Error(s) in loading state_dict" not in exc.value.message


def test_label_names_must_match_classes(tmp_path):
    with pytest.raises(CheckpointError, match="2 label names"):
        _save(tmp_path / "a.pt", label_names=["background", "x"])


def test_public_api():
    import medimg
    import medimg.inference as m

    assert set(m.__all__) == {
        "Predictor", "InferenceSpec", "predict_folder", "BatchReport", "find_cases", "save_checkpoint",
        "load_checkpoint", "build_model", "resolve_device", "sliding_window", "gaussian_importance",
        "tile_starts", "export_checkpoint", "ExportReport", "load_predictor",
    }
    assert medimg.Predictor is m.Predictor and medimg.predict_folder is m.predict_folder


def test_checkpoint_stores_the_inference_spec(tmp_path):
    from medimg.core.plain import to_plain
    from medimg.inference import InferenceSpec, Predictor
    from medimg.inference.checkpoint import inference_spec

    spec = InferenceSpec(
        preprocess=[{"name": "orient", "axcodes": "RAS"}], roi_size=[16, 16, 16], tta_flips=[2],
        image_keys=["flair.nii.gz", "t1c.nii.gz"], in_channels=2, label_names=["background", "oedema", "tumour"],
        label_map={1: 1, 4: 2},
    )
    p = tmp_path / "s.pt"
    save_checkpoint(p, create_model("unet", **PARAMS), model_name="unet", model_params=PARAMS, spec=spec,
                    data={"label": "seg.nii.gz"})
    raw = torch.load(p, weights_only=True)
    assert raw["inference"] == to_plain(spec)
    assert raw["data"] == {"images": ["flair.nii.gz", "t1c.nii.gz"], "label_map": {1: 1, 4: 2},
                           "label_names": ["background", "oedema", "tumour"], "label": "seg.nii.gz"}
    assert raw["preprocess"] == [{"name": "orient", "axcodes": "RAS"}] and raw["label_names"] == spec.label_names
    assert inference_spec(load_checkpoint(p)) == spec
    assert Predictor.from_checkpoint(p, device="cpu").spec == spec
    with pytest.raises(TypeError, match="either spec or"):
        save_checkpoint(p, create_model("unet", **PARAMS), model_name="unet", model_params=PARAMS, spec=spec,
                        label_names=["a", "b", "c"])


def _old_layout(path):
    """A checkpoint as medimg wrote it before the inference spec (plain dicts, by hand)."""
    torch.manual_seed(0)
    model = create_model("unet", **PARAMS)
    torch.save(
        {
            "format": "medimg-checkpoint", "format_version": 1,
            "model": {"name": "unet", "params": PARAMS},
            "in_channels": 2, "out_channels": 3, "spatial_dims": 3,
            "label_names": ["background", "oedema", "tumour"],
            "data": {"images": ["flair.nii.gz", "t1c.nii.gz"], "label": "seg.nii.gz", "label_map": {1: 1, 4: 2},
                     "label_names": ["background", "oedema", "tumour"]},
            "preprocess": [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}],
            "inference": {"roi_size": [16, 16, 16], "overlap": 0.5, "sw_batch_size": 2, "blend": "gaussian",
                          "tta_flips": []},
            "training": {"epoch": 3}, "versions": {"medimg": "0.1.0"},
            "state_dict": model.state_dict(), "optimizer_state": None,
        },
        path,
    )


def test_checkpoints_written_before_the_spec_still_load(tmp_path):
    from medimg.inference import Predictor

    p = tmp_path / "old.pt"
    _old_layout(p)
    pred = Predictor.from_checkpoint(p, device="cpu")
    assert pred.roi_size == [16, 16, 16] and pred.overlap == 0.5 and pred.sw_batch_size == 2
    assert [t.name for t in pred.preprocess] == ["orient", "normalize_intensity"]
    assert pred.image_keys == ["flair.nii.gz", "t1c.nii.gz"] and pred.in_channels == 2
    assert pred.label_names == ["background", "oedema", "tumour"] and pred.spec.label_map == {1: 1, 4: 2}

    raw = torch.load(p, weights_only=True)
    raw["inference"]["overlap"] = 3  # unreadable settings: one line saying what to do
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match=r"prediction settings this medimg cannot read \(inference.overlap") as exc:
        Predictor.from_checkpoint(p, device="cpu")
    assert "retrain it" in str(exc.value) and "\n" not in str(exc.value)


def test_cuda_device_without_cuda_says_what_to_use_in_both_interfaces(monkeypatch):
    from medimg.core.errors import ConfigError
    from medimg.inference import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device 'cuda:0' requested but CUDA is not available") as exc:
        resolve_device("cuda:0")
    assert exc.value.hint == "use device 'auto' or 'cpu' (in a config: trainer.device)"
    assert "`--device auto` for `medimg predict`" in exc.value.cli_hint
    assert "`--set trainer.device=auto`" in exc.value.cli_hint
