"""Exact resume: a run killed with SIGKILL mid-epoch, resumed from its last.pt, ends with
the very weights of an uninterrupted run; and the refusals of a bad resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_classification import make_npz  # this folder is on sys.path (pytest rootdir import)

from medimg.core.errors import CheckpointError, ConfigError
from medimg.core.spec import ExperimentConfig
from medimg.engine import train
from medimg.engine.resume import config_differences

# Run in a subprocess: train with a callback that, at epoch 2's first step, waits until epoch
# 1's last.pt is on disk (checkpoints are written in the background), then drops a marker file
# and sleeps, so the parent can SIGKILL it there.
_SCRIPT = """
import json, sys, time
from pathlib import Path
from medimg.core.spec import ExperimentConfig
from medimg.engine import Trainer, train
from medimg.engine.callbacks import Callback

cfg_dict, run, marker = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

class Pause(Callback):
    def __init__(self, trainer):
        self.trainer = trainer

    def on_step_end(self, state):
        if state.epoch == 2 and state.step == 1:
            self.trainer.checkpoints.wait()
            marker.write_text("mid-epoch 2")
            time.sleep(600)

fit = Trainer.fit
Trainer.fit = lambda self, callbacks=(): fit(self, callbacks=[*callbacks, Pause(self)])
train(ExperimentConfig.model_validate(cfg_dict), output_dir=run, progress=False)
"""


def _cls_config(npz: Path) -> dict:
    return {
        "experiment": {"task": "classification", "seed": 3},
        "data": {"npz": str(npz), "class_names": ["normal", "lesion"]},
        "augment": [{"name": "random_flip", "axes": [0, 1, 2], "prob": 0.5}],
        "model": {"name": "cnn3d", "channels": [4, 8], "dropout": 0.3},  # dropout: the RNG matters
        "optimizer": {"name": "adamw", "lr": 3e-3},
        "scheduler": {"name": "cosine"},
        "evaluation": {"test": False},
        "trainer": {"max_epochs": 3, "batch_size": 8, "device": "cpu", "deterministic": True,
                    "num_threads": 1, "patience": 5},
    }


def _seg_config(root: Path) -> dict:
    return {
        "experiment": {"name": "tiny", "seed": 1},
        "data": {"root": str(root), "images": ["t1.nii.gz", "t2.nii.gz"], "label": "label.nii.gz",
                 "label_names": ["background", "ellipsoid", "sphere"]},
        "preprocess": [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}],
        "augment": [{"name": "random_crop", "roi_size": [16, 16, 16], "pos_fraction": 0.5}],
        "model": {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0, "dropout": 0.2},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "scheduler": {"name": "cosine"},
        "evaluation": {"test": False},
        "trainer": {"max_epochs": 3, "iterations_per_epoch": 2, "batch_size": 2, "device": "cpu",
                    "deterministic": True, "num_threads": 1},
        "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
    }


def _kill_mid_epoch_2(cfg: dict, run: Path, tmp_path: Path) -> None:
    """Start the run in a subprocess and SIGKILL it during epoch 2 (epoch 1's last.pt written)."""
    marker = tmp_path / "marker"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps(cfg), str(run), str(marker)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not marker.exists():  # no timed assert: wait for the marker or the process's end
            if proc.poll() is not None:
                pytest.fail(f"the training subprocess ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        assert (run / "last.pt").is_file()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(run / "last.pt", weights_only=True)["resume"]["epoch"] == 1


def _assert_same_run(ref: Path, resumed: Path) -> None:
    a, b = (torch.load(p / "last.pt", weights_only=True) for p in (ref, resumed))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["resume"]["epoch"] == b["resume"]["epoch"] == 3
    rows = lambda c: [(r["epoch"], r["train_loss"], r.get("val_loss")) for r in c["resume"]["history"]]  # noqa: E731
    assert rows(a) == rows(b)
    assert a["resume"]["callbacks"] == b["resume"]["callbacks"]  # best metric and epoch, patience
    if a["resume"].get("raw_state_dict") is not None:  # ema: the saved weights are the average
        raw_a, raw_b = a["resume"]["raw_state_dict"], b["resume"]["raw_state_dict"]
        assert all(torch.equal(raw_a[k], raw_b[k]) for k in raw_a)
        assert not all(torch.equal(raw_a[k], a["state_dict"][k]) for k in raw_a)
    assert (resumed / "history.csv").read_text().count("\n") == 4  # header + 3 epochs


@pytest.mark.parametrize("ema", [None, 0.9])
def test_classification_killed_mid_epoch_resumes_exactly(tmp_path: Path, ema):
    npz = make_npz(tmp_path / "toy.npz", n=(32, 16, 8))
    cfg = _cls_config(npz)
    cfg["trainer"]["ema"] = ema
    ref = train(ExperimentConfig.model_validate(cfg), tmp_path / "ref", progress=False)
    assert ref.epochs_run == 3
    run = tmp_path / "run"
    _kill_mid_epoch_2(cfg, run, tmp_path)
    result = train(ExperimentConfig.model_validate(cfg), resume=run, progress=False)
    assert result.epochs_run == 3 and len(result.history) == 3
    assert result.best_epoch == ref.best_epoch and result.best_metric == ref.best_metric
    _assert_same_run(tmp_path / "ref", run)
    assert (run / "environment.json").is_file() and (run / "environment.resumed.json").is_file()


@pytest.mark.slow
def test_segmentation_killed_mid_epoch_resumes_exactly(tmp_path: Path):
    from medimg.data import make_synthetic_segmentation

    root = make_synthetic_segmentation(tmp_path / "syn", 3, 1, 1, shape=(24, 24, 16), seed=3)
    cfg = _seg_config(root)
    train(ExperimentConfig.model_validate(cfg), tmp_path / "ref", progress=False)
    run = tmp_path / "run"
    _kill_mid_epoch_2(cfg, run, tmp_path)
    train(ExperimentConfig.model_validate(cfg), resume=run, progress=False)
    _assert_same_run(tmp_path / "ref", run)


# -- refusals ------------------------------------------------------------------------------
@pytest.fixture
def finished_run(tmp_path: Path) -> tuple[dict, Path]:
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    cfg = _cls_config(npz)
    cfg["trainer"]["max_epochs"] = 1
    run = tmp_path / "run"
    train(ExperimentConfig.model_validate(cfg), run, progress=False)
    return cfg, run


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def test_resume_refuses_a_changed_config_and_names_the_keys(finished_run):
    cfg, run = finished_run
    before = _snapshot(run)
    cfg["optimizer"]["lr"] = 1e-2
    cfg["trainer"]["max_epochs"] = 2
    with pytest.raises(ConfigError) as err:
        train(ExperimentConfig.model_validate(cfg), resume=run, progress=False)
    text = str(err.value)
    assert "optimizer.lr: 0.003 -> 0.01" in text and "trainer.max_epochs: 1 -> 2" in text
    assert "config.resolved.yaml" in text and len(err.value.message.splitlines()) == 1
    assert "--allow-config-change" in (err.value.cli_hint or "")
    assert _snapshot(run) == before  # the run folder keeps what was written
    # told to, it continues with the new values: one more epoch
    result = train(ExperimentConfig.model_validate(cfg), resume=run, allow_config_change=True, progress=False)
    assert result.epochs_run == 2 and [r["epoch"] for r in result.history] == [1, 2]


def test_resume_allows_result_neutral_keys(finished_run):
    cfg, run = finished_run
    cfg["trainer"]["max_minutes"] = 30.0
    cfg["trainer"]["num_threads"] = 2
    result = train(ExperimentConfig.model_validate(cfg), resume=run, progress=False)
    assert result.epochs_run == 1 and len(result.history) == 1  # nothing left to train


def test_resume_of_a_damaged_last_pt(finished_run):
    cfg, run = finished_run
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    before = _snapshot(run)
    with pytest.raises(CheckpointError) as err:
        train(ExperimentConfig.model_validate(cfg), resume=run, progress=False)
    assert str(run / "last.pt") in err.value.message and "truncated" in err.value.message
    assert "best.pt" in err.value.hint and len(err.value.message.splitlines()) == 1
    assert _snapshot(run) == before


def test_resume_of_a_folder_without_last_pt(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    run = tmp_path / "empty"
    run.mkdir()
    with pytest.raises(CheckpointError, match="has no last.pt") as err:
        train(ExperimentConfig.model_validate(_cls_config(npz)), resume=run, progress=False)
    assert "--resume" in err.value.cli_hint and str(run) in err.value.message
    assert list(run.iterdir()) == []
    with pytest.raises(CheckpointError, match="does not exist"):
        train(ExperimentConfig.model_validate(_cls_config(npz)), resume=tmp_path / "nowhere", progress=False)


def test_resume_from_another_experiments_folder(finished_run, tmp_path: Path):
    cfg, run = finished_run
    other = json.loads(json.dumps(cfg))
    other["model"]["channels"] = [8, 16]
    other["experiment"]["seed"] = 9
    with pytest.raises(ConfigError) as err:
        train(ExperimentConfig.model_validate(other), resume=run, progress=False)
    assert "model.channels: [4, 8] -> [8, 16]" in str(err.value) and "experiment.seed: 3 -> 9" in str(err.value)
    # forced, the weights that do not fit are refused in one line, naming the file
    with pytest.raises(CheckpointError, match="last.pt") as err:
        train(ExperimentConfig.model_validate(other), resume=run, allow_config_change=True, progress=False)
    assert len(err.value.message.splitlines()) == 1


def test_config_differences_are_dotted_paths():
    old = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    new = {"a": {"b": 2, "c": [1, 2]}, "e": 1}
    assert config_differences(old, new) == [("a.b", 1, 2), ("d", "x", "<absent>"), ("e", "<absent>", 1)]


def test_cli_resume(tmp_path: Path):
    from tests.conftest import run_cli as medimg

    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"experiment: {{task: classification, seed: 0}}\n"
        f"data: {{npz: {npz.name}, class_names: [normal, lesion]}}\n"
        "model: {name: cnn3d, channels: [4, 8]}\n"
        "evaluation: {test: false}\n"
        "trainer: {max_epochs: 1, batch_size: 8, device: cpu}\n"
    )
    run = tmp_path / "run"
    assert medimg("train", cfg, "--output-dir", run).exit_code == 0
    res = medimg("train", cfg, "--resume", run, "--set", "trainer.max_epochs=2")
    assert res.exit_code != 0 and "trainer.max_epochs: 1 -> 2" in res.output and "--allow-config-change" in res.output
    res = medimg("train", cfg, "--resume", run, "--set", "trainer.max_epochs=2", "--allow-config-change")
    assert res.exit_code == 0, res.output
    assert torch.load(run / "last.pt", weights_only=True)["resume"]["epoch"] == 2
    res = medimg("train", cfg, "--resume", tmp_path / "nowhere")
    assert res.exit_code != 0 and "does not exist" in res.output and "Traceback" not in res.output
    res = medimg("train", cfg, "--allow-config-change")
    assert res.exit_code != 0 and "--resume" in res.output
