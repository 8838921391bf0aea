"""Every registered classification network: builds, runs forward and backward at tiny
size, honours its options (small-image stem, dropout, local weights) and its docs."""

from __future__ import annotations

import logging

import pytest
import torch

from medimg.core.errors import CheckpointError, ConfigError, MedimgError, UnknownComponentError
from medimg.models import MODELS, create_model, load_weights, model_task

CLASSIFIERS = [n for n in MODELS.list() if model_task(n) == "classification"]
EXPECTED = {
    "resnet18", "resnet34", "resnet50", "densenet121", "efficientnet_b0", "convnext_tiny",
    "resnet10_3d", "resnet18_3d", "resnet34_3d", "resnet50_3d", "densenet121_3d", "cnn3d",
}
WITH_SMALL_STEM = sorted(EXPECTED - {"cnn3d"})
# side of the smallest input each standard stem takes (DenseNet-121 3D: 7x7x7 stride-2
# stem, max-pool and three transitions halve it five times)
SIZE = {"densenet121_3d": 32}


def _dims(name: str) -> int:
    return 3 if name == "cnn3d" or name.endswith("_3d") else 2


def _input(name: str, channels: int, side: int | None = None, batch: int = 2) -> torch.Tensor:
    d = _dims(name)
    side = side or SIZE.get(name, 32 if d == 2 else 16)
    return torch.randn(batch, channels, *([side] * d), generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Building a model never downloads: the hub's download functions fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model tried to download: {args[:1]}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_registry_has_the_documented_classifiers():
    assert set(CLASSIFIERS) == EXPECTED
    segmentation = {"unet", "basic_unet", "segresnet", "dynunet", "attention_unet", "swin_unetr"}
    assert {n for n in MODELS.list() if model_task(n) == "segmentation"} == segmentation


def test_model_task_unknown_name_suggests():
    with pytest.raises(UnknownComponentError, match="did you mean 'resnet18'"):
        model_task("resnet181")


def _forward_cases():
    """(name, in_channels, out_channels): 2D with 1 and 3 channels, 3D with 2; one logit
    (a binary task) in one case of each model."""
    for name in CLASSIFIERS:
        if _dims(name) == 2:
            yield name, 1, 3
            yield name, 3, 1
        else:
            yield name, 2, 3 if name != "cnn3d" else 1


@pytest.mark.parametrize("name, channels, classes", list(_forward_cases()))
def test_forward_backward_shape(name, channels, classes):
    torch.manual_seed(0)
    model = create_model(name, in_channels=channels, out_channels=classes)
    logits = model(_input(name, channels))
    assert logits.shape == (2, classes)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:1] + grads[-1:]), "first and last layers get gradients"
    assert grads[0].abs().sum() > 0 and grads[-1].abs().sum() > 0


def _cam_map_size(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Spatial size of the output of ``model.cam_layer`` (which must name a module)."""
    seen = []
    layer = model.get_submodule(model.cam_layer)
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen[0]


# over a few seconds of CPU each on a busy 2-core machine
HEAVY = {"resnet50", "densenet121", "convnext_tiny", "resnet34_3d", "resnet50_3d", "densenet121_3d"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in WITH_SMALL_STEM]
)
def test_small_input_stem_keeps_more_resolution(name):
    side = 32 if _dims(name) == 2 else 16
    x = _input(name, 1, side, batch=1)
    small = create_model(name, in_channels=1, out_channels=2, small_input=True)
    assert small.eval()(x).shape == (1, 2)
    standard_side = SIZE.get(name, side)
    standard = _cam_map_size(create_model(name, in_channels=1, out_channels=2), _input(name, 1, standard_side, 1))
    small_map = _cam_map_size(small, x)
    # the standard stems divide by 32, the small ones by 8 (EfficientNet: 16)
    factor = 16 if name == "efficientnet_b0" else 8
    assert small_map == (-(-side // factor),) * _dims(name)
    assert small_map[0] / side > standard[0] / standard_side


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "efficientnet_b0", "convnext_tiny"])
def test_small_input_runs_on_28_px(name):
    model = create_model(name, in_channels=1, out_channels=2, small_input=True).eval()
    with torch.no_grad():
        assert model(_input(name, 1, 28)).shape == (2, 2)


def test_max_pool_option_overrides_the_stem_default():
    x = _input("resnet18", 1, 32, 1)
    with_pool = create_model("resnet18", small_input=True, max_pool=True)
    assert _cam_map_size(with_pool, x) == (2, 2)  # 32 / 16
    without = create_model("resnet18", max_pool=False)
    assert _cam_map_size(without, x) == (2, 2)  # 7x7 stride-2 conv, no pool: 32 / 16
    assert isinstance(without.maxpool, torch.nn.Identity)


@pytest.mark.parametrize(
    "name", ["resnet18", "densenet121", "convnext_tiny", "resnet10_3d", "densenet121_3d", "cnn3d"]
)
def test_dropout_keeps_parameter_names(name):
    # one per way a head is built: weights saved without dropout load with it
    plain = create_model(name, dropout=0.0)
    dropped = create_model(name, dropout=0.5)
    assert list(plain.state_dict()) == list(dropped.state_dict())


@pytest.mark.parametrize("name", ["resnet18", "cnn3d"])
def test_dropout_active_in_training_only(name):
    model = create_model(name, dropout=0.5)
    x = _input(name, 1, batch=4)
    torch.manual_seed(1)
    assert not torch.allclose(model.train()(x), model(x)), "dropout is active in training"
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", ["resnet18", "densenet121_3d"])
def test_spatial_dims_mismatch_is_one_clear_line(name):
    wrong = 3 if _dims(name) == 2 else 2
    with pytest.raises(ConfigError) as exc:
        create_model(name, spatial_dims=wrong)
    err = exc.value
    assert "\n" not in err.message
    assert err.message == (
        f"model '{name}' is a {_dims(name)}D network: spatial_dims must be {_dims(name)}, got {wrong}"
    )
    assert ("resnet18_3d" if name == "resnet18" else "'densenet121'") in err.hint


def test_unknown_option_is_named_with_suggestion():
    with pytest.raises(ConfigError) as exc:
        create_model("resnet18", smal_input=True)
    assert "'smal_input'" in str(exc.value) and "did you mean 'small_input'" in str(exc.value)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"out_channels": 0}, "out_channels must be at least 1, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_head_values(params, match):
    with pytest.raises(ConfigError, match=match):
        create_model("resnet18", **params)


def test_cnn3d_options_checked_and_parameter_count():
    with pytest.raises(ConfigError, match=r"channels must be one or more positive widths, got \[\]"):
        create_model("cnn3d", channels=[])
    # the factory's own check, or the builder's check of the Literal annotation
    with pytest.raises(ConfigError, match=r"norm.* one of .*batch.*instance.*group.*, got 'layer'"):
        create_model("cnn3d", norm="layer")
    with pytest.raises(ConfigError, match=r"shortcut_type.*A.*B.*, got 'C'"):
        create_model("resnet10_3d", shortcut_type="C")
    n = sum(p.numel() for p in create_model("cnn3d").parameters())
    assert 0.85e6 < n < 0.92e6  # "about 0.9 M parameters with the defaults"
    model = create_model("cnn3d", channels=[8, 16], convs_per_block=1, norm="group").eval()
    assert model(_input("cnn3d", 1, 28)).shape == (2, 2)


# ------------------------------------------------------------------ local weights
def _save(model: torch.nn.Module, path, wrap=None) -> str:
    state = model.state_dict()
    torch.save(state if wrap is None else wrap(state), path)
    return str(path)


@pytest.mark.parametrize("name, head", [("resnet18", "fc"), ("cnn3d", "fc"), ("densenet121", "classifier")])
def test_weights_from_file_reinitialise_the_head(tmp_path, caplog, name, head):
    torch.manual_seed(0)
    source = create_model(name, in_channels=1, out_channels=3)
    path = _save(source, tmp_path / "three.pt")
    torch.manual_seed(1)
    fresh = create_model(name, in_channels=1, out_channels=2)
    with caplog.at_level(logging.WARNING, logger="medimg.models"):
        torch.manual_seed(1)
        model = create_model(name, in_channels=1, out_channels=2, weights=path)
    src, got, new = source.state_dict(), model.state_dict(), fresh.state_dict()
    for key in got:
        if key.startswith(f"{head}."):
            assert torch.equal(got[key], new[key]), f"{key}: the head keeps its fresh initialisation"
        else:
            assert torch.equal(got[key], src[key]), f"{key} comes from the file"
    assert f"{head}.weight (shape (3," in caplog.text and "skipped" in caplog.text


def test_weights_report_first_conv_for_other_channels(tmp_path):
    path = _save(create_model("resnet18", in_channels=3, out_channels=2), tmp_path / "rgb.pt")
    report = load_weights(create_model("resnet18", in_channels=1, out_channels=2), path, model_name="resnet18")
    assert [k for k, _ in report.skipped] == ["conv1.weight"]
    assert report.skipped[0][1] == "shape (64, 3, 7, 7) in the file, (64, 1, 7, 7) in the model"
    assert report.initialised == ["conv1.weight"]
    assert "layer1.0.conv1.weight" in report.loaded


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {"state_dict": s, "epoch": 3},  # a medimg or Lightning-style checkpoint
        lambda s: {f"module.{k}": v for k, v in s.items()},  # saved from DDP
    ],
    ids=["nested", "ddp_prefix"],
)
def test_weights_file_layouts(tmp_path, wrap):
    source = create_model("cnn3d", out_channels=2)
    path = _save(source, tmp_path / "w.pt", wrap)
    model = create_model("cnn3d", out_channels=2, weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_weights_file_errors(tmp_path):
    model = create_model("cnn3d")
    with pytest.raises(CheckpointError, match=r"weights file '.*nope.pt' does not exist.*never downloaded"):
        load_weights(model, tmp_path / "nope.pt", model_name="cnn3d")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError) as exc:
        load_weights(model, garbage, model_name="cnn3d")
    assert exc.value.message == (
        f"model 'cnn3d': weights file '{garbage}' cannot be read as PyTorch tensors (it was not written by torch.save)"
    )
    assert "\n" not in exc.value.message and "torch.save(model.state_dict()" in exc.value.hint
    torch.save({"fc.weight": torch.zeros(2, 128), "opt": torch.optim.SGD}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match=r"holds Python objects besides tensors, which medimg does not load"):
        load_weights(model, tmp_path / "pickled.pt")
    other = _save(create_model("resnet18"), tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match=r"only 0% of the model's weights match weights file .*another architecture"):
        load_weights(model, other)
    torch.save({"epoch": 3}, tmp_path / "no_state.pt")
    with pytest.raises(CheckpointError, match=r"holds no state dict .* found a mapping with keys \['epoch'\]"):
        load_weights(model, tmp_path / "no_state.pt")


def test_unreadable_weights_fail_the_build(tmp_path):
    with pytest.raises(MedimgError, match=r"weights file '.*nope.pt' does not exist"):
        create_model("cnn3d", weights=str(tmp_path / "nope.pt"))


# ------------------------------------------------------------------- documentation
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_docs_describe_every_option(name):
    from medimg.cli.listing import component_parameters, first_sentence

    factory = MODELS.get(name)
    assert factory.task == "classification"
    assert f"{_dims(name)}D" in first_sentence(factory.__doc__)  # says what it is
    params, open_ended = component_parameters(factory)
    assert not open_ended
    names = [p.name for p in params]
    assert names[:3] == ["in_channels", "out_channels", "spatial_dims"] and "weights" in names
    undocumented = [p.name for p in params if not p.description]
    assert not undocumented, f"{name}: Args does not describe {undocumented}"
