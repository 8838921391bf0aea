"""The networks and schedulers of the best recipes in ``train(config)``: DynUNet with deep
supervision end to end, reduce-on-plateau stepping on the validation score (and resuming),
and the config errors of the new components."""

from __future__ import annotations

import pytest
import torch

from medimg.config import check_components
from medimg.config.schema import ExperimentConfig
from medimg.core.errors import ConfigError
from medimg.engine import SCHEDULERS, load_checkpoint, train
from medimg.engine.callbacks import FitState, MetricScheduler
from medimg.engine.optim import scheduler_callbacks, steps_on_metric, steps_per_epoch


@pytest.fixture(scope="module")
def data32(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn32"), 2, 1, 0, shape=(32, 32, 24), seed=5)


def _cfg(root, model: dict, scheduler: dict | None = None, select_by: str = "dice", max_epochs: int = 2,
         optimizer: dict | None = None, loss: dict | None = None) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "experiment": {"name": "nets", "seed": 2},
            "data": {"root": str(root), "images": ["t1.nii.gz", "t2.nii.gz"], "label": "label.nii.gz",
                     "label_names": ["background", "ellipsoid", "sphere"]},
            "preprocess": [{"name": "normalize_intensity"}],
            "augment": [{"name": "random_crop", "roi_size": [32, 32, 16], "pos_fraction": 0.5}],
            "model": model,
            "optimizer": optimizer or {"name": "sgd", "lr": 0.01},
            "loss": loss or {"name": "dice_ce"},
            "scheduler": scheduler or {"name": "poly"},
            "evaluation": {"select_by": select_by, "test": False},
            "trainer": {"max_epochs": max_epochs, "iterations_per_epoch": 2, "batch_size": 2, "device": "cpu",
                        "num_threads": 1},
            "inference": {"roi_size": [32, 32, 16], "overlap": 0.25, "sw_batch_size": 2},
        }
    )


DYNUNET = {"name": "dynunet", "deep_supervision": True, "filters": [4, 8, 16, 32]}


def test_dynunet_deep_supervision_trains_through_train(data32, tmp_path, monkeypatch):
    import medimg.losses.multiscale as ms

    seen: list[int] = []
    split = ms.split_outputs

    def spy(logits, label):
        outputs = split(logits, label)
        seen.append(0 if outputs is None else len(outputs))
        return outputs

    monkeypatch.setattr(ms, "split_outputs", spy)
    # select_by loss: validation scores the loss too, on the evaluation-mode (single) output
    result = train(_cfg(data32, DYNUNET, select_by="loss"), output_dir=tmp_path / "run", progress=False)
    assert result.epochs_run == 2
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)
    assert "val_dice" in result.history[-1] and "val_loss" in result.history[-1]
    # training steps saw 3 outputs (levels 32x32x16 -> 4 levels, all but the coarsest decoder
    # level); validation (evaluation mode) one output
    assert seen.count(3) == 4 and 0 in seen
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    params = ckpt["model"]["params"]
    assert params["roi_size"] == [32, 32, 16] and params["deep_supervision"] is True  # the derived patch is stored
    from medimg.inference import Predictor

    predictor = Predictor.from_checkpoint(tmp_path / "run" / "best.pt", device="cpu")
    assert not predictor.model.training
    # export traces the evaluation-mode network: one output, parity checked
    from medimg.inference.export import export_checkpoint

    report = export_checkpoint(tmp_path / "run" / "best.pt", tmp_path / "dynunet.pt", "torchscript")
    assert report.max_abs_diff < 1e-4


def test_plateau_lowers_lr_when_the_score_stalls_and_resumes(data32, tmp_path):
    # threshold 10: no validation can improve on the first one, so with patience 0 every later
    # validation halves the lr
    plateau = {"name": "plateau", "factor": 0.5, "patience": 0, "threshold": 10.0}
    model = {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0}
    run = tmp_path / "run"
    result = train(_cfg(data32, model, plateau), output_dir=run, progress=False)
    assert [h["lr"] for h in result.history] == pytest.approx([0.01, 0.005])
    state = torch.load(run / "last.pt", weights_only=True)["resume"]["scheduler"]
    assert state["num_bad_epochs"] == 0 and state["best"] is not None  # reduced, then reset
    # resumed for a third epoch: the scheduler's best score is restored, so it halves again
    # (a fresh scheduler would take epoch 3 as its first, better-than-nothing score)
    more = train(_cfg(data32, model, plateau, max_epochs=3), output_dir=run, progress=False, resume=run,
                 allow_config_change=True)
    assert [h["lr"] for h in more.history] == pytest.approx([0.01, 0.005, 0.0025])


@pytest.mark.parametrize(("mode", "scores", "reduced"), [
    ("max", [0.5, 0.6, 0.7], False), ("max", [0.5, 0.5, 0.5], True),
    ("min", [3.0, 2.0, 1.0], False), ("min", [1.0, 2.0, 3.0], True),
])
def test_metric_scheduler_follows_the_direction_of_select_by(mode, scores, reduced):
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = SCHEDULERS.build({"name": "plateau", "patience": 1, "factor": 0.1}, opt)
    assert steps_on_metric(sched) and not steps_per_epoch(sched)
    (cb,) = scheduler_callbacks(sched, "val", mode)
    assert isinstance(cb, MetricScheduler)
    state = FitState(3, 1)
    for epoch, score in enumerate(scores, 1):
        state.begin_epoch(epoch)
        state.row = {"lr": opt.param_groups[0]["lr"]}
        cb.on_validation_end(state, {"val": score})
    assert (opt.param_groups[0]["lr"] < 1.0) is reduced
    assert state.row["lr"] == opt.param_groups[0]["lr"]  # history shows the next epoch's lr


def test_per_epoch_schedulers_get_no_metric_callback():
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    assert scheduler_callbacks(SCHEDULERS.build({"name": "poly"}, opt), "dice", "max") == []
    assert scheduler_callbacks(None, "dice", "max") == [] and not steps_per_epoch(None)


def test_plateau_bad_values_say_what_to_change(data32):
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    with pytest.raises(ConfigError, match="factor must be between 0 and 1, got 2"):
        SCHEDULERS.build({"name": "plateau", "factor": 2.0}, opt, key="scheduler")


def _problems(cfg: ExperimentConfig) -> dict[str, str]:
    return {".".join(str(k) for k in path): msg for path, msg in check_components(cfg)}


def test_config_check_accepts_the_new_names_and_rejects_bad_params(data32):
    ds = {"name": "deep_supervision", "loss": {"name": "tversky", "alpha": 0.4}, "weights": [0.6, 0.4, 0.0]}
    assert _problems(_cfg(data32, {**DYNUNET, "res_block": True}, {"name": "plateau", "patience": 3}, loss=ds)) == {}
    for model in ({"name": "swin_unetr", "feature_size": 24}, {"name": "attention_unet", "channels": [8, 16]}):
        assert _problems(_cfg(data32, model, loss={"name": "generalized_dice", "w_type": "simple"})) == {}
    bad = _cfg(data32, {"name": "dynunet", "deep_supervison": True}, {"name": "plateau", "patiense": 3},
               loss={"name": "tversky", "alpha": "high"})
    problems = _problems(bad)
    assert set(problems) == {"model.deep_supervison", "scheduler.patiense", "loss.alpha"}, problems
    assert "did you mean 'deep_supervision'" in problems["model.deep_supervison"]
    assert "did you mean 'patience'" in problems["scheduler.patiense"]
    assert problems["loss.alpha"] == "expected float, got 'high'"


def _plateau_worker(rank: int, world: int, port: int, root: str, out: str, results) -> None:
    import os

    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    plateau = {"name": "plateau", "factor": 0.5, "patience": 0, "threshold": 10.0}
    model = {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0}
    res = train(_cfg(root, model, plateau, max_epochs=3), output_dir=out, progress=False)
    results.put((rank, [h["lr"] for h in res.history]))


@pytest.mark.slow
def test_plateau_lr_reaches_every_rank(tmp_path):
    """Only rank 0 validates; its reduced lr is broadcast, so rank 1 trains epoch 3 with it."""
    import socket

    import torch.multiprocessing as mp

    from medimg.data import make_synthetic_segmentation

    root = make_synthetic_segmentation(tmp_path / "syn", 2, 1, 0, shape=(32, 32, 24), seed=5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_plateau_worker, args=(r, 2, port, str(root), str(tmp_path / "run"), q))
             for r in range(2)]
    for p in procs:
        p.start()
    got = dict(q.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got[0] == pytest.approx([0.01, 0.005, 0.0025])  # rank 0: the lr after each validation
    assert got[1] == pytest.approx([0.01, 0.01, 0.005])  # rank 1: the lr it trained each epoch with
