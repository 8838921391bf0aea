"""The fit loop's callbacks: each one alone (fake clocks, no training), then through ``train``."""

from __future__ import annotations

import csv

import pytest
import torch
from test_train import _cfg  # this folder is on sys.path (pytest rootdir import)

from medimg.engine import (
    BestModelCheckpoint,
    Callback,
    EarlyStopping,
    FitState,
    History,
    StopAgreement,
    TimeBudget,
    Trainer,
    train,
)
from medimg.engine.callbacks import improves
from medimg.engine.distributed import DistInfo


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _epoch(state: FitState, callbacks, epoch: int, metrics=None) -> None:
    """Drive the hooks of one epoch the way the loop does (without training)."""
    state.begin_epoch(epoch)
    state.row = {"epoch": epoch, "train_loss": 1.0 / epoch, "lr": 0.1}
    for c in callbacks:
        c.on_train_epoch_end(state)
    if metrics is not None:
        state.metrics = dict(metrics)
        state.row.update({f"val_{k}": v for k, v in metrics.items()})
        for c in callbacks:
            c.on_validation_end(state, state.metrics)
    state.row["seconds"] = 0.5
    state.history.append(state.row)
    for c in callbacks:
        c.on_epoch_end(state)


def test_improves_both_directions():
    assert improves(0.5, None) and improves(0.6, 0.5) and not improves(0.5, 0.5) and not improves(0.4, 0.5)
    assert improves(3.0, 4.0, "min") and not improves(4.0, 3.0, "min") and not improves(float("nan"), 0.5)


def test_request_stop_keeps_first_reason():
    state = FitState(max_epochs=3, iterations_per_epoch=2)
    assert not state.stop_requested
    state.request_stop("patience")
    state.request_stop("max_minutes")
    assert state.stop_requested and state.stop_reason == "patience"


@pytest.mark.parametrize("mode, values, best_epochs", [
    ("max", [0.5, 0.7, 0.6], [1, 2]),
    ("min", [5.0, 7.0, 4.0], [1, 3]),  # e.g. hd95: lower is better
])
def test_best_model_checkpoint_writes_best_and_last(mode, values, best_epochs):
    saved = []
    cb = BestModelCheckpoint(lambda name, epoch, m, best: saved.append((name, epoch, best)), "hd95", mode)
    state = FitState(max_epochs=3, iterations_per_epoch=1)
    for epoch, v in enumerate(values, start=1):
        _epoch(state, [cb], epoch, {"hd95": v})
    assert [e for name, e, _ in saved if name == "best.pt"] == best_epochs
    assert [e for name, e, _ in saved if name == "last.pt"] == [1, 2, 3]
    assert cb.best_epoch == best_epochs[-1] and cb.best == values[best_epochs[-1] - 1]


def test_best_model_without_validation_is_the_latest():
    saved = []
    cb = BestModelCheckpoint(lambda name, epoch, m, best: saved.append((name, epoch, best)), validates=False)
    state = FitState(max_epochs=2, iterations_per_epoch=1)
    _epoch(state, [cb], 1)
    _epoch(state, [cb], 2)
    assert saved == [("best.pt", 1, None), ("last.pt", 1, None), ("best.pt", 2, None), ("last.pt", 2, None)]
    assert cb.best_epoch == 2 and cb.best is None


def test_early_stopping_counts_validations_without_improvement():
    cb = EarlyStopping(patience=2, monitor="dice")
    state = FitState(max_epochs=9, iterations_per_epoch=1)
    _epoch(state, [cb], 1, {"dice": 0.5})
    _epoch(state, [cb], 2, {"dice": 0.6})
    _epoch(state, [cb], 3, {"dice": 0.6})
    _epoch(state, [cb], 4)  # no validation this epoch: the count stays
    assert not state.stop_requested and cb.since_best == 1
    _epoch(state, [cb], 5, {"dice": 0.55})
    assert state.stop_reason == "patience" and state.epoch == 5


def test_time_budget_stops_at_the_step_past_the_budget():
    clock = FakeClock()
    cb = TimeBudget(1.0, clock=clock)
    state = FitState(max_epochs=3, iterations_per_epoch=4)
    cb.on_fit_start(state)
    state.begin_epoch(1)
    for step in range(1, 3):
        state.step = step
        clock.now += 20.0
        cb.on_step_end(state)
    assert not state.stop_requested  # 40 s of 60
    state.step, clock.now = 3, clock.now + 30.0
    cb.on_step_end(state)
    assert state.stop_reason == "max_minutes"


def test_time_budget_at_epoch_end_validates_then_stops_unless_last():
    clock = FakeClock()
    cb = TimeBudget(1.0, clock=clock)
    state = FitState(max_epochs=2, iterations_per_epoch=1)
    cb.on_fit_start(state)
    _epoch(state, [cb], 1)
    assert not state.stop_requested and not state.validate_now
    clock.now += 61.0
    state.begin_epoch(2)
    state.step = 1
    cb.on_step_end(state)  # the last step of the last epoch: nothing cut short
    cb.on_train_epoch_end(state)
    cb.on_epoch_end(state)
    assert state.validate_now and not state.stop_requested  # reported as max_epochs

    state = FitState(max_epochs=3, iterations_per_epoch=1)
    cb.on_fit_start(state)
    clock.now += 61.0
    _epoch(state, [cb], 1)
    assert state.validate_now and state.stop_reason == "max_minutes"


def test_history_writes_csv_and_curve(tmp_path):
    cb = History(tmp_path, "hd95", log=lambda text: None)
    state = FitState(max_epochs=2, iterations_per_epoch=1)
    _epoch(state, [cb], 1, {"hd95": 7.5})
    _epoch(state, [cb], 2)
    rows = list(csv.DictReader((tmp_path / "history.csv").read_text().splitlines()))
    assert list(rows[0]) == ["epoch", "train_loss", "lr", "val_hd95", "seconds"]
    assert [r["val_hd95"] for r in rows] == ["7.5", ""]
    cb.on_fit_end(state)
    assert (tmp_path / "training_curve.png").stat().st_size > 0


def test_stop_agreement_is_a_no_op_in_one_process():
    cb = StopAgreement(DistInfo(), torch.device("cpu"))
    state = FitState(max_epochs=2, iterations_per_epoch=1)
    cb.on_epoch_end(state)
    assert not state.stop_requested
    state.request_stop("patience")
    cb.on_step_end(state)
    assert state.stop_reason == "patience"


class Recorder(Callback):
    """Records the hooks called; stops with its own reason at ``stop_at`` (hook, epoch)."""

    def __init__(self, stop_at: tuple[str, int] | None = None) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.stop_at = stop_at

    def _rec(self, hook: str, state: FitState) -> None:
        self.calls.append((hook, state.epoch, state.step))
        if self.stop_at == (hook, state.epoch):
            state.request_stop("recorder")

    def on_fit_start(self, state):
        self._rec("fit_start", state)

    def on_step_end(self, state):
        self._rec("step", state)

    def on_train_epoch_end(self, state):
        self._rec("train_epoch_end", state)

    def on_validation_end(self, state, metrics):
        assert "dice" in metrics and state.row["val_dice"] == metrics["dice"]
        self._rec("validation", state)

    def on_epoch_end(self, state):
        assert state.history[-1] is state.row and "seconds" in state.row
        self._rec("epoch_end", state)

    def on_fit_end(self, state):
        self._rec("fit_end", state)


@pytest.fixture()
def with_callbacks(monkeypatch):
    """``train`` with extra callbacks given to ``Trainer.fit``."""
    extra: list[Callback] = []
    fit = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self, callbacks=(): fit(self, callbacks=[*callbacks, *extra]))
    return extra


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn"), 3, 1, 1, shape=(24, 24, 16), seed=3)


def test_loop_calls_hooks_in_order(tiny_data, tmp_path, with_callbacks):
    rec = Recorder()
    with_callbacks.append(rec)
    result = train(_cfg(tiny_data, max_epochs=2, iterations_per_epoch=2, val_every=2), output_dir=tmp_path, progress=False)
    assert rec.calls == [
        ("fit_start", 0, 0),
        ("step", 1, 1), ("step", 1, 2), ("train_epoch_end", 1, 2), ("epoch_end", 1, 2),
        ("step", 2, 1), ("step", 2, 2), ("train_epoch_end", 2, 2), ("validation", 2, 2), ("epoch_end", 2, 2),
        ("fit_end", 2, 2),
    ]
    assert result.stopped_because == "max_epochs" and result.best_epoch == 2


def test_a_callback_can_stop_the_run(tiny_data, tmp_path, with_callbacks):
    with_callbacks.append(Recorder(stop_at=("epoch_end", 1)))
    result = train(_cfg(tiny_data, max_epochs=3), output_dir=tmp_path, progress=False)
    assert result.stopped_because == "recorder" and result.epochs_run == 1 and len(result.history) == 1


def test_time_budget_stops_within_an_epoch(tiny_data, tmp_path, with_callbacks):
    """Past the budget after the first step: the epoch ends there, is validated, and last.pt is written."""
    rec = Recorder()
    with_callbacks.append(rec)
    run = tmp_path / "run"
    result = train(_cfg(tiny_data, max_epochs=1, iterations_per_epoch=3, max_minutes=1e-9), output_dir=run, progress=False)
    assert result.stopped_because == "max_minutes" and result.epochs_run == 1
    assert [c for c in rec.calls if c[0] == "step"] == [("step", 1, 1)]
    assert ("validation", 1, 1) in rec.calls and "val_dice" in result.history[0]
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["training"]["epoch"] == 1 and last["optimizer_state"] is not None
    rows = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1"]
    assert (run / "best.pt").is_file() and (run / "training_curve.png").is_file()


def test_ema_batch_norm_statistics_are_recomputed_with_the_averaged_weights(tmp_path):
    """With trainer.ema the saved batch-norm statistics are the plain average over the
    epoch's batches (recomputed, as for SWA), not an average of running statistics."""
    import torch
    from torch import nn

    from medimg.core.spec import InferenceSpec
    from medimg.engine import Trainer

    g = torch.Generator().manual_seed(0)
    batches = [{"image": torch.randn(8, 4, generator=g) * 3 + k, "label": torch.randint(0, 2, (8,), generator=g)}
               for k in range(4)]
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2))
    spec = InferenceSpec(task="classification", roi_size=[4], label_names=["a", "b"], in_channels=4)
    trainer = Trainer(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), lambda e: batches,
                      4, [], spec, {"name": "toy", "in_channels": 4, "out_channels": 2}, tmp_path,
                      torch.device("cpu"), max_epochs=1, ema=0.5, metrics=["auc"], select_by="auc",
                      progress=False, log=lambda s: None)
    trainer.fit()
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["state_dict"]
    expected = torch.stack([b["image"].mean(0) for b in batches]).mean(0)
    assert torch.allclose(saved["0.running_mean"], expected, atol=1e-5)
    assert not torch.allclose(model[0].running_mean, expected, atol=1e-3)  # the raw model's momentum average
