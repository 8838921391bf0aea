"""Components: registry names, signature checks, building, and load_config's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from medimg.config import (
    ComponentSpec,
    build_component,
    build_transforms,
    check_spec,
    load_config,
)
from medimg.core import ConfigError


def spec(name: str, **params) -> ComponentSpec:
    return ComponentSpec(name=name, **params)


def test_unknown_name_did_you_mean_and_known_list(regs):
    [(key, msg)] = check_spec(regs["models"], spec("tiny_nett"))
    assert key == ("name",)
    assert msg == "unknown model 'tiny_nett'; did you mean 'tiny_net'? (see `medimg list models`)"
    [(key, msg)] = check_spec(regs["losses"], spec("zzz"))
    assert msg == "unknown loss 'zzz'; known: dice_ce (see `medimg list losses`)"


def test_unknown_and_missing_kwargs(regs):
    problems = dict(check_spec(regs["models"], spec("tiny_net", num_clases=3)))
    assert problems[("num_clases",)] == "unknown key; did you mean 'num_classes'?"
    assert problems[("in_channels",)] == "required key is missing (model 'tiny_net' needs it)"
    problems = dict(check_spec(regs["models"], spec("tiny_net", in_channels=1, zzz=1)))
    assert problems[("zzz",)].startswith("unknown key; model 'tiny_net' takes: in_channels, num_classes")


def test_value_types_from_annotations(regs):
    problems = dict(
        check_spec(regs["models"], spec("tiny_net", in_channels="two", channels=[8, 16, 32], dropout=0.1))
    )
    assert problems[("in_channels",)] == "expected int, got 'two'"
    assert problems[("channels",)] == "expected 2 values, got 3"
    assert len(problems) == 2
    # YAML ints for floats, lists for tuples are fine
    assert check_spec(regs["models"], spec("tiny_net", in_channels=1, channels=[4, 8], dropout=0)) == []
    problems = dict(check_spec(regs["transforms"], spec("resample", spacing="1mm")))
    assert problems[("spacing",)].startswith("expected list[float], got '1mm'")  # config terms, not Sequence


def test_var_kwargs_accepts_anything(regs):
    assert check_spec(regs["models"], spec("wrapped", anything=1, spatial_dims=2)) == []
    assert dict(check_spec(regs["models"], spec("wrapped", spatial_dims="3d")))[("spatial_dims",)] == (
        "expected int, got '3d'"
    )


def test_leading_arguments_are_not_config_keys(regs):
    assert check_spec(regs["optimizers"], spec("adamw", lr=1e-3), leading=1) == []
    # without the leading convention, params would be a required key
    assert ("params",) in dict(check_spec(regs["optimizers"], spec("adamw"), leading=0))
    problems = dict(check_spec(regs["schedulers"], spec("cosine"), leading=1))
    assert problems == {("T_max",): "required key is missing (scheduler 'cosine' needs it)"}
    problems = dict(check_spec(regs["optimizers"], spec("adamw", params=[1]), leading=1))
    assert problems[("params",)].startswith("unknown key")


def test_random_transform_not_allowed_in_preprocess(regs):
    [(key, msg)] = check_spec(regs["transforms"], spec("random_flip"), random_ok=False)
    assert key == ("name",) and "random augmentation; move it to 'augment'" in msg
    assert check_spec(regs["transforms"], spec("random_flip"), random_ok=True) == []


def test_trial_build_reports_constructor_error_at_its_key(regs):
    [(key, msg)] = check_spec(regs["transforms"], spec("random_flip", prob=2.0), trial_build=True)
    assert key == ("prob",)
    assert msg == "random_flip: prob must be in [0, 1], got 2.0"


def test_build_component_calls_factory_with_leading_args(regs):
    assert build_component(regs["models"], spec("tiny_net", in_channels=3), "model") == {
        "in_channels": 3, "num_classes": 2, "channels": (8, 16),
    }
    opt = build_component(regs["optimizers"], {"name": "adamw", "lr": 0.1}, "optimizer", ["w"])
    assert opt == ("adamw", ["w"], 0.1, 0.01)
    assert build_component(regs["schedulers"], spec("cosine", T_max=5), "scheduler", opt)[2] == 5


def test_build_component_errors_name_the_key(regs):
    with pytest.raises(ConfigError) as info:
        build_component(regs["models"], spec("tiny_net", in_channels=1, num_clases=3), "model")
    text = str(info.value)
    assert text.startswith("cannot build model (model 'tiny_net'), 1 problem:")
    assert "model.num_clases   unknown key; did you mean 'num_classes'?" in text
    assert info.value.problems == [("", "model.num_clases", "unknown key; did you mean 'num_classes'?")]
    with pytest.raises(ConfigError, match=r"cannot build augment\[0\] \(transform 'random_flip'\): "
                       r"random_flip: prob must be in \[0, 1\]"):
        build_component(regs["transforms"], spec("random_flip", prob=-1.0), "augment[0]")
    with pytest.raises(ConfigError, match="unknown model 'unett'"):
        build_component(regs["models"], spec("unett"), "model")


def test_build_transforms_with_the_real_registry():
    from medimg.transforms import TRANSFORMS, Compose

    if "orient" not in TRANSFORMS or "resample" not in TRANSFORMS:
        pytest.fail("the real transforms registry lacks orient/resample")
    compose = build_transforms(
        [spec("orient", axcodes="RAS"), {"name": "resample", "spacing": [1.0, 1.0, 2.0]}], "preprocess"
    )
    assert isinstance(compose, Compose) and len(compose) == 2
    assert [type(t).name for t in compose] == ["orient", "resample"]
    with pytest.raises(ConfigError, match=r"preprocess\[1\]"):
        build_transforms([spec("orient"), spec("resample", spacin=[1, 1, 1])], "preprocess")


def test_load_config_checks_every_component(write, registries, tmp_path: Path):
    (tmp_path / "d").mkdir()
    path = write(
        """
        data: {root: d, images: [a]}
        preprocess:
          - name: random_flip
          - name: resampel
        augment:
          - name: random_flip
            prob: 3
        model:
          name: tiny_net
          in_channels: 1
          spatial_dims: 2
        loss: {name: dice_ce, lambda_cee: 1}
        optimizer: {name: adamw, lr: fast}
        scheduler: {name: cosine}
        inference: {roi_size: [64, 64, 64]}
        evaluation:
          metrics: [dice, hd59]
          select_by: dcie
        """
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = {key: (loc, msg) for loc, key, msg in info.value.problems}
    p = str(path)
    assert got["preprocess[0].name"][0] == f"{p}:3:5" and "move it to 'augment'" in got["preprocess[0].name"][1]
    assert got["preprocess[1].name"] == (f"{p}:4:5", "unknown transform 'resampel'; did you mean 'resample'? "
                                                     "(see `medimg list transforms`)")
    assert got["augment[0].prob"] == (f"{p}:7:5", "random_flip: prob must be in [0, 1], got 3")
    assert got["loss.lambda_cee"][1] == "unknown key; did you mean 'lambda_ce'?"
    assert got["optimizer.lr"][1] == "expected float, got 'fast'"
    assert got["scheduler.T_max"] == (f"{p}:14:1", "required key is missing (scheduler 'cosine' needs it)")
    assert got["inference.roi_size"][1] == (
        "expected 2 values (voxels for H, W; model.spatial_dims is 2), got 3"
    )
    assert got["evaluation.metrics[1]"] == (f"{p}:17:19", "unknown metric 'hd59'; did you mean 'hd95'?")
    assert got["evaluation.select_by"][1] == "unknown metric 'dcie'; did you mean 'dice'?"
    assert len(got) == 9


def test_components_checked_even_with_schema_errors(write, registries, tmp_path: Path):
    (tmp_path / "d").mkdir()
    path = write("data: {root: d, images: [a]}\nmodel: {name: tiny_net, in_channels: 1, num_clases: 3}\n"
                 "trainer: {max_epoch: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = [k for _, k, _ in info.value.problems]
    assert keys == ["model.num_clases", "trainer.max_epoch"]


def test_registry_not_importable_is_a_problem(write, regs, monkeypatch, tmp_path: Path):
    import medimg.config.components as build

    def fake(kind):
        if kind == "optimizers":
            raise ImportError("medimg.engine has no registry 'OPTIMIZERS'")
        return regs[kind]

    monkeypatch.setattr(build, "get_registry", fake)
    (tmp_path / "d").mkdir()
    path = write("data: {root: d, images: [a]}\nmodel: {name: tiny_net, in_channels: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [(loc, key, msg)] = info.value.problems
    assert key == "optimizer" and msg.startswith("cannot check: the optimizers registry could not be imported")
