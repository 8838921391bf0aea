"""A short training run on a tiny synthetic set: files written, checkpoints usable."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from medimg.config.schema import ExperimentConfig
from medimg.core.errors import ConfigError, DataError
from medimg.data import load_cases
from medimg.engine import (
    OPTIMIZERS,
    SCHEDULERS,
    TrainResult,
    load_checkpoint,
    model_params_for,
    train,
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn"), 3, 1, 1, shape=(24, 24, 16), seed=3)


def _cfg(root, **trainer) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "experiment": {"name": "tiny", "seed": 1},
            "data": {
                "root": str(root),
                "images": ["t1.nii.gz", "t2.nii.gz"],
                "label": "label.nii.gz",
                "label_names": ["background", "ellipsoid", "sphere"],
            },
            "preprocess": [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}],
            "augment": [{"name": "random_crop", "roi_size": [16, 16, 16], "pos_fraction": 0.5}],
            "model": {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "optimizer": {"name": "adamw", "lr": 0.01},
            "scheduler": {"name": "cosine"},
            "trainer": {"max_epochs": 2, "iterations_per_epoch": 2, "batch_size": 2, "device": "cpu", **trainer},
            "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
        }
    )


def test_short_train_writes_everything(tiny_data, tmp_path):
    run = tmp_path / "run"
    result = train(_cfg(tiny_data), output_dir=run, progress=False)
    assert isinstance(result, TrainResult)
    assert result.run_dir == run and result.epochs_run == 2 and result.epochs == 2
    assert result.stopped_because == "max_epochs"
    for name in ("best.pt", "last.pt", "history.csv", "training_curve.png", "config.resolved.yaml", "environment.json"):
        assert (run / name).is_file(), name
    assert result.best_checkpoint == run / "best.pt" and result.last_checkpoint == run / "last.pt"
    # best.pt holds the best validation Dice of the history (select_by dice: highest wins)
    assert result.best_metric == pytest.approx(max(h["val_dice"] for h in result.history if "val_dice" in h))

    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "val_dice", "val_dice_ellipsoid", "val_dice_sphere", "lr", "seconds"} <= set(rows[0])
    assert all(np.isfinite(float(r["train_loss"])) for r in rows)
    assert float(rows[1]["lr"]) < 0.01  # cosine schedule stepped

    raw = torch.load(run / "best.pt", weights_only=True)  # plain data
    assert raw["model"]["name"] == "unet"
    assert raw["model"]["params"]["in_channels"] == 2 and raw["model"]["params"]["out_channels"] == 3
    assert raw["label_names"] == ["background", "ellipsoid", "sphere"]
    assert raw["preprocess"] == [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}]
    assert raw["data"]["images"] == ["t1.nii.gz", "t2.nii.gz"]
    assert raw["training"]["metric_name"] == "dice"
    assert raw["training"]["metric"] == pytest.approx(result.best_metric)
    assert raw["optimizer_state"] is not None and raw["resume"]["epoch"] == raw["training"]["epoch"]  # resumable too
    last = load_checkpoint(run / "last.pt")
    assert last["training"]["epoch"] == 2 and last["optimizer_state"] is not None


def test_validation_is_the_predictor_path(tiny_data, tmp_path):
    """best.pt's recorded validation Dice is reproduced by predicting with best.pt."""
    from medimg.data import load_cases, load_sample
    from medimg.engine import validation_metrics
    from medimg.inference import Predictor

    cfg = _cfg(tiny_data, max_epochs=1)
    result = train(cfg, output_dir=tmp_path / "run", progress=False)
    val = [load_sample(r, cfg.data) for r in load_cases(cfg.data)["validation"]]
    metrics = validation_metrics(Predictor.from_checkpoint(result.best_checkpoint, device="cpu"), val, cfg.data.label_names)
    assert metrics["dice"] == pytest.approx(result.best_metric, abs=1e-9)


def test_short_training_beats_the_untrained_network(tiny_data, tmp_path):
    """Learning happened: 24 steps lift the validation Dice far above what the same
    network (same seed, so the same initial weights) scores without learning (lr 0)."""
    trained = train(_cfg(tiny_data, max_epochs=6, iterations_per_epoch=4), output_dir=tmp_path / "a", progress=False)
    cfg = _cfg(tiny_data, max_epochs=1)
    cfg.optimizer = {"name": "sgd", "lr": 0.0, "momentum": 0.0}
    untrained = train(cfg, output_dir=tmp_path / "b", progress=False)
    assert trained.best_metric > untrained.best_metric + 0.2, (trained.history, untrained.best_metric)


def test_seeded_runs_repeat(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, max_epochs=1)
    a = train(cfg, output_dir=tmp_path / "a", progress=False)
    b = train(cfg, output_dir=tmp_path / "b", progress=False)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    wa = torch.load(a.last_checkpoint, weights_only=True)["state_dict"]
    wb = torch.load(b.last_checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_patience_stops(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, max_epochs=6, patience=1)
    cfg.optimizer = {"name": "sgd", "lr": 0.0, "momentum": 0.0}  # nothing changes: no improvement
    result = train(cfg, output_dir=tmp_path / "run", progress=False)
    assert result.stopped_because == "patience" and result.epochs_run == 2 and result.best_epoch == 1


def test_bad_select_by_and_no_train_cases(tiny_data, tmp_path):
    cfg = _cfg(tiny_data)
    cfg.evaluation.select_by = "dice_tumour"
    with pytest.raises(ConfigError, match="select_by 'dice_tumour' is not a validation metric"):
        train(cfg, output_dir=tmp_path / "run", progress=False)
    cfg = _cfg(tiny_data)
    cfg.data.splits = {"train": "nope", "validation": "validation", "test": "test"}
    with pytest.raises(DataError):
        train(cfg, output_dir=tmp_path / "run2", progress=False)


def test_model_params_derived_and_checked(tiny_data):
    cfg = _cfg(tiny_data)
    p = model_params_for(cfg)
    assert p["in_channels"] == 2 and p["out_channels"] == 3 and p["spatial_dims"] == 3
    cfg.model = {"name": "unet", "out_channels": 2}
    with pytest.raises(ConfigError, match="model.out_channels is 2 but the config implies 3"):
        model_params_for(cfg)


def test_optimizers_and_schedulers_registries():
    model = torch.nn.Linear(2, 2)
    for name in OPTIMIZERS.list():
        opt = OPTIMIZERS.get(name)(model.parameters(), lr=0.1)
        assert opt.param_groups[0]["lr"] == 0.1
    # lr 1.0 after 3 epochs, each scheduler at its default parameters
    expected_after_3 = {
        "cosine": 0.5 * (1 + math.cos(math.pi * 3 / 100)),  # max_epochs 100
        "poly": (1 - 3 / 100) ** 0.9,  # max_epochs 100, power 0.9
        "step": 1.0,  # step_size 30
        "none": 1.0,
        "plateau": 1.0,  # patience 10: three validations of one score change nothing
        # one-cycle, 101 steps: cosine warm-up from lr / 25 to lr over 0.15 * 101 - 1 steps
        "onecycle": 0.04 + 0.96 * (1 - math.cos(math.pi * 3 / (0.15 * 101 - 1))) / 2,
    }
    for name in SCHEDULERS.list():
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        sched = SCHEDULERS.get(name)(opt)
        for _ in range(3):
            opt.step()
            sched.step(0.5) if name == "plateau" else sched.step()  # plateau steps on the score
        lr = opt.param_groups[0]["lr"]
        assert name in expected_after_3, f"add the lr that scheduler '{name}' gives after 3 epochs"
        assert lr == pytest.approx(expected_after_3[name], rel=1e-9)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    cos = SCHEDULERS.get("cosine")(opt, max_epochs=4)
    lrs = []
    for _ in range(4):
        opt.step()
        cos.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_public_api():
    import medimg.engine as m

    assert set(m.__all__) == {
        "train", "Trainer", "TrainResult", "OPTIMIZERS", "SCHEDULERS", "save_checkpoint", "load_checkpoint",
        "build_model", "validation_metrics", "seed_everything", "model_params_for", "DistInfo",
        "Callback", "FitState", "BestModelCheckpoint", "EarlyStopping", "TimeBudget", "History", "StopAgreement",
        "calibrate_run", "CalibrationResult", "cross_validate", "CVResult", "FoldResult", "TensorBoardLogger", "model_card",
    }
    assert {"adamw", "adam", "sgd"} <= set(OPTIMIZERS.list())
    assert {"cosine", "poly", "step", "none", "onecycle", "plateau"} <= set(SCHEDULERS.list())


def test_disk_cache_through_train(tiny_data, tmp_path, monkeypatch):
    """data.cache: disk writes one file per training case; a second run reads them, not the scans."""
    import medimg.data.loading as loading

    cfg = _cfg(tiny_data, max_epochs=1, iterations_per_epoch=1)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"cache": "disk", "cache_dir": tmp_path / "cache"})})
    train(cfg, output_dir=tmp_path / "a", progress=False)
    files = sorted((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 3  # the training cases
    read = []
    real = loading._read
    monkeypatch.setattr(loading, "_read", lambda path, kind: read.append(path) or real(path, kind))
    train(cfg, output_dir=tmp_path / "b", progress=False)
    train_files = {str(p) for r in load_cases(cfg.data)["train"] for p in [*r.image_paths, r.label_path]}
    assert read and not train_files & {str(p) for p in read}  # only validation cases are read
