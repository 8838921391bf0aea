"""The layout of the convolution weights in training (``trainer.channels_last``): the
conversion, the timed choice on the run's own steps, the fixed cases and resume."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import torch
from test_budget import _cls  # this folder is on sys.path (pytest rootdir import)
from test_classification import make_npz
from torch import nn

from medimg.core.errors import ConfigError
from medimg.core.spec import InferenceSpec, TrainerSection
from medimg.engine import Trainer, train
from medimg.engine import probe as probe_module
from medimg.engine.probe import ProbeResult, probe_step
from medimg.engine.resume import check_resume_config
from medimg.engine import layout as layout_module
from medimg.engine.layout import STEPS_PER_LAYOUT, LayoutTuner, set_conv_layout


@pytest.fixture(autouse=True)
def _not_deterministic():
    """These tests choose layouts; a deterministic run before them must not fix the layout."""
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    layout_module._CHOSEN.clear()  # each test times its own choice
    yield
    torch.use_deterministic_algorithms(was, warn_only=True)
    layout_module._CHOSEN.clear()


class OwnForwardConv(nn.Conv3d):
    """A convolution subclass with its own forward (it may reshape its weight)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv3d(x, self.weight.view(self.weight.shape), self.bias)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), OwnForwardConv(4, 4, 1),
                         nn.ConvTranspose3d(4, 2, 2, stride=2), nn.Conv2d(2, 2, 3))


def _is_channels_last(w: torch.Tensor) -> bool:
    """Channels-last strides (the layers here have more than one input channel, so the two layouts differ)."""
    fmt = torch.channels_last_3d if w.dim() == 5 else torch.channels_last
    return w.is_contiguous(memory_format=fmt) and not w.is_contiguous()


def test_set_conv_layout_converts_weights_grads_and_optimizer_state_in_place():
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net[:4](torch.randn(1, 2, 4, 4, 4)).sum().backward()
    opt.step()
    params = list(net.parameters())
    before = [p.detach().clone() for p in params]
    assert set_conv_layout(net, "channels_last", opt) == 3  # the subclass with its own forward is left alone
    assert list(net.parameters()) == params  # the same objects: the optimizer still holds them
    for layer in (net[0], net[3], net[4]):
        assert _is_channels_last(layer.weight)
    assert _is_channels_last(net[0].weight.grad)
    assert all(_is_channels_last(opt.state[net[0].weight][k]) for k in ("exp_avg", "exp_avg_sq"))
    assert net[2].weight.is_contiguous() and net[0].bias.is_contiguous()
    assert all(torch.equal(p, b) for p, b in zip(params, before))  # same numbers
    set_conv_layout(net, "default", opt)
    assert net[0].weight.is_contiguous() and opt.state[net[0].weight]["exp_avg"].is_contiguous()


def _fake_step(net: nn.Module, slow: str, calls: list[str]):
    """A training step that is slow in the ``slow`` layout (sleeps), recording the layout it ran in."""

    def step(batch, update: bool) -> float:
        layout = "channels_last" if _is_channels_last(net[0].weight) else "default"
        calls.append(layout)
        if layout == slow:
            time.sleep(0.05)
        return 0.0

    return step


@pytest.mark.parametrize("slow, chosen", [("default", "channels_last"), ("channels_last", "default")])
def test_auto_times_the_run_own_steps_and_keeps_the_faster_layout(slow, chosen):
    net = _net()
    logged: list[str] = []
    tuner = LayoutTuner(net, torch.optim.SGD(net.parameters(), lr=0.1), "auto", torch.device("cpu"), log=logged.append)
    calls: list[str] = []
    step = _fake_step(net, slow, calls)
    for _ in range(2 * STEPS_PER_LAYOUT + 3):
        tuner.run(step, None, update=True, group_start=True)
    n = STEPS_PER_LAYOUT
    assert calls[:2 * n] == ["default"] * n + ["channels_last"] * n  # every trial step is a real step
    assert calls[2 * n:] == [chosen] * 3
    assert tuner.layout == chosen
    assert all(len(t) == n - 1 for t in tuner.timings.values())  # the first step of each layout is not timed
    assert len(logged) == 1 and chosen.replace("_", "-") in logged[0]


def test_a_choice_is_reused_in_the_process_for_the_same_network_and_batch_shape():
    batch = {"image": torch.zeros(2, 2, 4, 4, 4)}
    logged: list[str] = []

    def tuner_run(net, batch, calls):
        tuner = LayoutTuner(net, torch.optim.SGD(net.parameters(), lr=0.1), "auto", torch.device("cpu"),
                            log=logged.append)
        step = _fake_step(net, "default", calls)
        for _ in range(2 * STEPS_PER_LAYOUT + 1):
            tuner.run(step, batch, update=True, group_start=True)
        return tuner

    first = tuner_run(_net(), batch, [])
    assert first.layout == "channels_last" and all(first.timings.values())
    calls: list[str] = []
    again = tuner_run(_net(), batch, calls)  # a new run: same layers, same batches
    assert set(calls) == {"channels_last"} and not any(again.timings.values())
    assert "earlier in this process" in logged[-1]
    calls.clear()
    other = tuner_run(_net(), {"image": torch.zeros(4, 2, 4, 4, 4)}, calls)  # another batch shape: timed again
    assert calls[0] == "default" and all(other.timings.values())


def test_auto_changes_layout_only_between_accumulation_groups():
    net = _net()
    tuner = LayoutTuner(net, torch.optim.SGD(net.parameters(), lr=0.1), "auto", torch.device("cpu"))
    calls: list[str] = []
    step = _fake_step(net, "default", calls)
    for i in range(2 * (2 * STEPS_PER_LAYOUT + 1)):  # groups of 2 batches
        tuner.run(step, None, update=i % 2 == 1, group_start=i % 2 == 0)
    assert all(calls[i] == calls[i + 1] for i in range(0, len(calls), 2))
    assert tuner.layout == "channels_last"


@pytest.mark.parametrize("mode, fixed, layout", [(True, False, "channels_last"), (False, False, "default"),
                                                 ("auto", True, "default")])
def test_fixed_layouts_are_applied_at_once_and_never_timed(mode, fixed, layout):
    net = _net()
    tuner = LayoutTuner(net, torch.optim.SGD(net.parameters(), lr=0.1), mode, torch.device("cpu"), fixed=fixed)
    assert tuner.layout == layout
    assert _is_channels_last(net[0].weight) == (layout == "channels_last")
    calls: list[str] = []
    for _ in range(2 * STEPS_PER_LAYOUT + 1):
        tuner.run(_fake_step(net, "default", calls), None, update=True, group_start=True)
    assert set(calls) == {layout} and not any(tuner.timings.values())


def _seg_trainer(model: nn.Module, tmp: Path, **kwargs) -> Trainer:
    g = torch.Generator().manual_seed(0)
    batches = [{"image": torch.randn(2, 2, 8, 8, 8, generator=g), "label": torch.randint(0, 2, (2, 1, 8, 8, 8), generator=g),
                "case_id": ["a", "b"]} for _ in range(2 * STEPS_PER_LAYOUT + 2)]

    def loss(logits, label):
        return nn.functional.cross_entropy(logits, label[:, 0].long())

    spec = InferenceSpec(roi_size=[8, 8, 8], label_names=["background", "fg"], in_channels=2)
    return Trainer(model, loss, torch.optim.Adam(model.parameters(), lr=1e-2), lambda e: iter(batches), len(batches),
                   [], spec, {"name": "probe", "in_channels": 2, "out_channels": 2}, tmp, torch.device("cpu"),
                   max_epochs=1, select_by="loss", metrics=["loss"], progress=False, log=lambda s: None, **kwargs)


def _seg_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 2, 3, padding=1))


def test_training_in_either_layout_reaches_the_same_weights(tmp_path: Path):
    weights = {}
    for mode in (False, True, "auto"):
        model = _seg_net()
        trainer = _seg_trainer(model, tmp_path / str(mode), channels_last=mode)
        trainer.fit()
        weights[mode] = [p.detach().contiguous() for p in model.parameters()]
        assert trainer.layout.layout in ("default", "channels_last")
    for mode in (True, "auto"):
        for a, b in zip(weights[False], weights[mode]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # float rounding only


def test_the_chosen_layout_is_resumed(tmp_path: Path):
    model = _seg_net()
    first = _seg_trainer(model, tmp_path / "run")
    first.fit()
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["resume"]["layout"] == first.layout.layout
    forced = copy.deepcopy(ckpt)
    forced["resume"]["layout"] = "channels_last"
    again = _seg_trainer(_seg_net(), tmp_path / "again")
    again.resume_from(forced)
    assert again.layout.layout == "channels_last" and _is_channels_last(again.model[0].weight)


def test_deterministic_runs_keep_the_default_layout(tmp_path: Path):
    torch.use_deterministic_algorithms(True, warn_only=True)
    trainer = _seg_trainer(_seg_net(), tmp_path)
    assert trainer.layout.layout == "default"


def test_the_config_key_takes_auto_or_a_boolean():
    assert TrainerSection().channels_last == "auto"
    assert TrainerSection(channels_last=True).channels_last is True
    with pytest.raises((ConfigError, ValueError), match="channels_last"):
        TrainerSection(channels_last="fast")


def test_channels_last_out_of_memory_in_its_trial_falls_back_to_the_default_layout():
    net = _net()
    logged: list[str] = []
    tuner = LayoutTuner(net, torch.optim.SGD(net.parameters(), lr=0.1), "auto", torch.device("cpu"), log=logged.append)
    calls: list[str] = []

    def step(batch, update: bool) -> float:
        layout = "channels_last" if _is_channels_last(net[0].weight) else "default"
        calls.append(layout)
        if layout == "channels_last":
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 1 GB")
        return 0.0

    for _ in range(STEPS_PER_LAYOUT + 2):
        tuner.run(step, None, update=True, group_start=True)
    n = STEPS_PER_LAYOUT
    assert calls == ["default"] * n + ["channels_last", "default", "default"]  # the failed step ran again
    assert tuner.layout == "default" and "ran out of memory" in logged[-1]


def test_an_error_that_is_not_out_of_memory_is_raised():
    net = _net()
    tuner = LayoutTuner(net, torch.optim.SGD(net.parameters(), lr=0.1), "auto", torch.device("cpu"))

    def step(batch, update: bool) -> float:
        if _is_channels_last(net[0].weight):
            raise RuntimeError("shape mismatch")
        return 0.0

    with pytest.raises(RuntimeError, match="shape mismatch"):
        for _ in range(STEPS_PER_LAYOUT + 1):
            tuner.run(step, None, update=True, group_start=True)


def test_the_probe_keeps_the_layout_that_fits(monkeypatch):
    def fake(net, loss_fn, opt, x, y, dtype, dev, steps, warmup):
        if _is_channels_last(next(m.weight for m in net.modules() if isinstance(m, nn.Conv3d) and m.in_channels > 1)):
            return ProbeResult(float("nan"), 0, None, fits=False)
        return ProbeResult(0.5, steps, None)

    monkeypatch.setattr(probe_module, "_time_steps", fake)
    result = probe_step({"name": "unet", "channels": [4, 8], "strides": [2]}, {"name": "dice_ce"},
                        {"name": "adam", "lr": 1e-3}, batch_size=1, in_channels=2, out_channels=2, size=[8, 8, 8],
                        task="segmentation")
    assert result.fits and result.layout == "default" and result.seconds_per_step == 0.5


def test_a_classification_run_honours_the_config_key_and_resumes_across_it(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    run = tmp_path / "run"
    train(_cls_config(npz, channels_last=True), run, progress=False)
    ckpt = torch.load(run / "last.pt", weights_only=False)
    assert ckpt["resume"]["layout"] == "channels_last"
    # the layout is float rounding only: a resume may change it without --allow-config-change
    assert check_resume_config(run, _cls_config(npz, channels_last=False)) == [("trainer.channels_last", True, False)]


def test_train_leaves_the_deterministic_setting_as_it_found_it(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    train(_cls_config(npz, deterministic=True), tmp_path / "run", progress=False)
    assert not torch.are_deterministic_algorithms_enabled()


def _cls_config(npz: Path, **trainer):
    """test_budget's classification config, one epoch, not deterministic unless asked."""
    return _cls(npz, **{"max_epochs": 1, "deterministic": False, **trainer})


def test_a_run_written_before_a_key_existed_resumes_without_a_difference(tmp_path: Path):
    import yaml

    from medimg.core.errors import ConfigError
    from medimg.engine.resume import RESOLVED_CONFIG

    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    run = tmp_path / "run"
    train(_cls_config(npz), run, progress=False)
    resolved = run / RESOLVED_CONFIG
    old = yaml.safe_load(resolved.read_text())
    # as a run started before inference.postprocess.min_probability existed wrote it
    del old["inference"]["postprocess"]["min_probability"]
    resolved.write_text(yaml.safe_dump(old))
    assert check_resume_config(run, _cls_config(npz)) == []
    # a real change is still refused, and an old file the schema no longer takes is compared as written
    old["inference"]["postprocess"]["min_size_ml"] = {1: 0.5}
    resolved.write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match=r"inference.postprocess.min_size_ml.1: 0.5 -> .<absent>."):
        check_resume_config(run, _cls_config(npz))
    old["inference"]["retired_key"] = 1
    resolved.write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match=r"inference.retired_key: 1 -> '<absent>'"):
        check_resume_config(run, _cls_config(npz))
