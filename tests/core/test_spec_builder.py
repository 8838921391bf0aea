"""The typed specs (defaults in one place), plain data, and the one signature-checked builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medimg.core import ConfigError, Registry, UnknownComponentError
from medimg.core.builder import build_component, check_spec
from medimg.core.plain import to_plain
from medimg.core.spec import ComponentSpec, ExperimentConfig, InferenceSection, InferenceSpec


def _config(**extra) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "data": {"root": "/d", "images": ["t1.nii.gz", "t2.nii.gz"], "label_names": ["bg", "a", "b"],
                     "label_map": {4: 2, 1: 1}},
            "preprocess": [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}],
            "model": {"name": "unet"},
            "inference": {"roi_size": [32, 32, 16], "overlap": 0.5, "tta_flips": [0]},
            **extra,
        }
    )


def test_inference_defaults_live_in_one_place():
    window = InferenceSection().model_dump()
    assert {k: v for k, v in InferenceSpec().model_dump().items() if k in window} == window
    assert window == {"roi_size": [96, 96, 96], "overlap": 0.25, "sw_batch_size": 4, "blend": "gaussian",
                      "tta_flips": [], "channels": None, "postprocess": {"keep_largest": [], "min_size_ml": {}, "min_probability": {}},
                      "tune_layers": True}


def test_inference_channels_are_checked_against_the_images_and_reach_the_spec():
    spec = _config(inference={"channels": {"t1": "*T1*", "t2.nii.gz": "*T2*"}}).inference_spec()
    assert spec.channels == {"t1": "*T1*", "t2.nii.gz": "*T2*"}
    with pytest.raises(ValueError, match=r"inference.channels names 'flair', which is not an input channel; "
                                         r"the channels \(data.images\) are: t1, t2"):
        _config(inference={"channels": {"flair": "*FLAIR*"}})


def test_config_produces_the_inference_spec():
    spec = _config(experiment={"task": "segmentation"}).inference_spec()
    assert spec.roi_size == [32, 32, 16] and spec.overlap == 0.5 and spec.tta_flips == [0]
    assert spec.sw_batch_size == 4 and spec.blend == "gaussian"  # defaults from the section
    assert [s.name for s in spec.preprocess] == ["orient", "normalize_intensity"]
    assert spec.preprocess[0].params == {"axcodes": "RAS"}
    assert spec.image_keys == ["t1.nii.gz", "t2.nii.gz"] and spec.in_channels == 2
    assert spec.label_names == ["bg", "a", "b"] and spec.label_map == {4: 2, 1: 1}
    assert spec.task == "segmentation"
    assert _config().inference_spec(in_channels=4).in_channels == 4
    # plain data that validates back to the same spec
    plain = to_plain(spec)
    assert plain["label_map"] == {4: 2, 1: 1} and plain["preprocess"][0] == {"name": "orient", "axcodes": "RAS"}
    assert InferenceSpec.model_validate(plain) == spec


def test_with_updates_validates():
    spec = InferenceSpec(roi_size=[16, 16, 16])
    assert spec.with_updates(overlap=0.5, tta_flips=None).overlap == 0.5
    assert spec.overlap == 0.25  # unchanged
    with pytest.raises(TypeError, match=r"unknown inference override\(s\) \['roi'\]"):
        spec.with_updates(roi=[8, 8, 8])
    with pytest.raises(ConfigError, match="invalid inference setting overlap=1.5"):
        spec.with_updates(overlap=1.5)
    with pytest.raises(ConfigError, match=r"tta_flips axes \[3\] out of range for 3 spatial axes"):
        spec.with_updates(tta_flips=[0, 3])


def test_to_plain():
    out = to_plain({"p": Path("/x"), "t": (1, 2), 4: np.float32(0.5), "n": np.int64(3), "b": np.bool_(True),
                    "spec": ComponentSpec(name="orient", axcodes="RAS")})
    assert out == {"p": "/x", "t": [1, 2], 4: 0.5, "n": 3, "b": True, "spec": {"name": "orient", "axcodes": "RAS"}}
    assert type(out[4]) is float and type(out["n"]) is int and type(out["b"]) is bool
    with pytest.raises(TypeError, match="cannot store ndarray"):
        to_plain(np.zeros(3))


def _registry() -> Registry:
    reg: Registry = Registry("models")

    @reg.register("tiny")
    def tiny(in_channels: int, channels: tuple[int, int] = (4, 8), dropout: float = 0.0) -> dict:
        if dropout > 0.9:
            raise ValueError(f"dropout {dropout} leaves nothing to learn")
        return {"in_channels": in_channels, "channels": channels}

    return reg


def test_registry_build_checks_the_signature():
    reg = _registry()
    assert reg.build({"name": "tiny", "in_channels": 2}) == {"in_channels": 2, "channels": (4, 8)}
    assert reg.build(ComponentSpec(name="TINY", in_channels=1, channels=[2, 3]))["channels"] == [2, 3]
    # a Python call: the registry's lookup error, and one sentence naming the parameters
    with pytest.raises(UnknownComponentError, match="did you mean 'tiny'"):
        reg.build({"name": "tinny"})
    with pytest.raises(ConfigError) as info:
        reg.build({"name": "tiny", "in_channels": 1, "chanels": [1, 2]})
    assert str(info.value).startswith("model 'tiny' could not be built: 'chanels': unknown key; "
                                      "did you mean 'channels' or 'in_channels'?")
    with pytest.raises(ConfigError, match="model 'tiny' could not be built with .*leaves nothing to learn"):
        reg.build({"name": "tiny", "in_channels": 1, "dropout": 0.95})
    # a config key: every problem is a row located at it
    with pytest.raises(ConfigError) as info:
        reg.build({"name": "tiny", "channels": [1, 2, 3]}, key="model")
    assert info.value.problems == [
        ("", "model.in_channels", "required key is missing (model 'tiny' needs it)"),
        ("", "model.channels", "expected 2 values, got 3"),
    ]
    with pytest.raises(ConfigError, match=r"unknown model 'tinny'; did you mean 'tiny'\? \(see `medimg list models`\)"):
        reg.build({"name": "tinny"}, key="model")


def test_leading_arguments_and_random_components():
    reg: Registry = Registry("optimizers")

    @reg.register("sgd")
    def sgd(params, lr: float = 0.1) -> tuple:
        return ("sgd", params, lr)

    assert reg.build({"name": "sgd", "lr": 0.5}, ["w"], key="optimizer") == ("sgd", ["w"], 0.5)
    assert check_spec(reg, {"name": "sgd"}, leading=1) == []

    transforms: Registry = Registry("transforms")

    @transforms.register("jitter")
    class Jitter:
        random = True

    with pytest.raises(ConfigError, match="random augmentation; move it to 'augment'"):
        build_component(transforms, {"name": "jitter"}, key="preprocess[0]", random_ok=False)
    assert isinstance(build_component(transforms, {"name": "jitter"}), Jitter)


def test_a_spec_needs_a_name():
    with pytest.raises(ConfigError, match="needs a 'name'"):
        _registry().build({"in_channels": 1})
