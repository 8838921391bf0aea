"""Classification through ``train(config)``: npz -> best.pt (with the validation threshold)
-> predictions.csv -> evaluate, on an easy synthetic task where learning must show."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medimg.core.spec import ExperimentConfig
from medimg.engine import train
from medimg.inference import Predictor
from medimg.metrics.classification import auc, evaluate_classification


def make_npz(path: Path, shape=(8, 8, 8), n=(48, 24, 24), seed=0) -> Path:
    """Class 1 holds a bright cube in the centre; class 0 is noise only."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, count in zip(("train", "val", "test"), n):
        y = np.arange(count) % 2
        x = rng.normal(0.0, 0.3, size=(count, *shape)).astype(np.float32)
        c = tuple(slice(s // 4, 3 * s // 4) for s in shape)
        x[(y == 1,) + c] += 1.5
        arrays[f"{prefix}_images"] = x
        arrays[f"{prefix}_labels"] = y[:, None]
    np.savez(path, **arrays)
    return path


def config(npz: Path, **trainer) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "experiment": {"task": "classification", "seed": 0},
            "data": {"npz": str(npz), "class_names": ["normal", "lesion"]},
            "model": {"name": "cnn3d", "channels": [8, 16], "dropout": 0.0},
            "optimizer": {"name": "adamw", "lr": 3e-3},
            "trainer": {"max_epochs": 4, "batch_size": 8, "device": "cpu", **trainer},
        }
    )


@pytest.mark.slow
def test_train_predict_evaluate_end_to_end(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz")
    result = train(config(npz), tmp_path / "run", progress=False)
    assert result.best_checkpoint is not None and result.best_checkpoint.exists()
    assert result.best_metric > 0.9  # AUC on validation; chance is 0.5
    ckpt = torch.load(result.best_checkpoint, weights_only=True)
    assert ckpt["inference"]["task"] == "classification"
    assert 0.0 < ckpt["inference"]["threshold"] < 1.0  # chosen on validation
    # the run ends by scoring the test split
    summary = json.loads((tmp_path / "run" / "test" / "summary.json").read_text())
    text = json.dumps(summary)
    assert "auc" in text and "accuracy" in text
    rows = list(csv.DictReader(open(tmp_path / "run" / "test" / "predictions.csv")))
    assert len(rows) == 24
    assert set(rows[0]) == {"case_id", "prob_normal", "prob_lesion", "predicted", "threshold"}
    y = np.arange(24) % 2
    p = np.array([float(r["prob_lesion"]) for r in rows])
    assert auc(y, p) > 0.9
    # the Predictor gives class probabilities of one image
    pred = Predictor.from_checkpoint(result.best_checkpoint, "cpu")
    x = np.load(npz)["test_images"][1]
    from medimg.core import Image

    proba = pred.predict_proba(Image(torch.from_numpy(x)[None]))
    assert proba.shape == (2,) and abs(float(proba.sum()) - 1.0) < 1e-5
    report = evaluate_classification(tmp_path / "run" / "test" / "predictions.csv", tmp_path / "run" / "test" / "labels.csv")
    assert report.all_ok


def test_select_by_a_classification_metric_and_target_sensitivity(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    cfg = config(npz, max_epochs=1)
    cfg.evaluation.select_by = "balanced_accuracy"
    cfg.evaluation.target_sensitivity = 1.0
    result = train(cfg, tmp_path / "run", progress=False)
    history = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert "val_balanced_accuracy" in history[0] and "val_threshold" in history[0]
    ckpt = torch.load(result.best_checkpoint, weights_only=True)
    assert ckpt["inference"]["threshold"] == pytest.approx(float(history[-1]["val_threshold"]))
    assert float(history[-1]["val_sensitivity"]) == 1.0  # at the stored threshold
    assert (tmp_path / "run" / "test" / "metrics.csv").exists()
    assert result.test_summary is not None and "auc" in json.dumps(result.test_summary)


def test_a_fixed_threshold_is_stored_whatever_validation_says(tmp_path: Path):
    cfg = config(make_npz(tmp_path / "toy.npz", n=(16, 8, 8)), max_epochs=1)
    cfg.evaluation.threshold = 0.3
    result = train(cfg, tmp_path / "run", progress=False)
    assert torch.load(result.best_checkpoint, weights_only=True)["inference"]["threshold"] == pytest.approx(0.3)
    rows = list(csv.DictReader(open(tmp_path / "run" / "test" / "predictions.csv")))
    assert [float(r["threshold"]) for r in rows] == pytest.approx([0.3] * len(rows))
    assert all((float(r["prob_lesion"]) >= 0.3) == (r["predicted"] == "lesion") for r in rows)


def test_threshold_rule_errors_name_the_key(tmp_path: Path):
    from medimg.config import load_config
    from medimg.core.errors import ConfigError

    def load(evaluation: str) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("experiment: {task: classification}\ndata: {npz: x.npz}\nmodel: {name: cnn3d}\n"
                        f"evaluation: {evaluation}\n")
        load_config(path, check_paths=False)

    with pytest.raises(ConfigError, match="evaluation +threshold must be 'youden', 'accuracy' or a number in \\(0, 1\\), got 1.5"):
        load("{threshold: 1.5}")
    with pytest.raises(ConfigError, match="either target_sensitivity .* or threshold"):
        load("{threshold: accuracy, target_sensitivity: 0.9}")
    with pytest.raises(ConfigError, match="evaluation.threshold"):
        load("{threshold: f1}")


def test_8_bit_pictures_are_scaled_alike_from_npz_and_from_png(tmp_path: Path):
    """A model trained on a uint8 npz predicts the same picture saved as PNG the same way."""
    from PIL import Image as PILImage

    rng = np.random.default_rng(3)
    arrays = {}
    for prefix, count in (("train", 16), ("val", 8), ("test", 4)):
        y = np.arange(count) % 2
        x = rng.integers(0, 120, size=(count, 12, 12)).astype(np.uint8)
        x[y == 1, 3:9, 3:9] = 250
        arrays[f"{prefix}_images"], arrays[f"{prefix}_labels"] = x, y[:, None]
    np.savez(tmp_path / "pics.npz", **arrays)
    cfg = config(tmp_path / "pics.npz", max_epochs=1)
    cfg.model = type(cfg.model).model_validate({"name": "resnet18", "small_input": True})
    result = train(cfg, tmp_path / "run", progress=False)
    for i, pic in enumerate(arrays["test_images"]):
        PILImage.fromarray(pic).save(tmp_path / f"test_{i}.png")
    pred = Predictor.from_checkpoint(result.best_checkpoint, "cpu")
    from_png = np.stack([pred.predict_proba(str(tmp_path / f"test_{i}.png")).numpy() for i in range(4)])
    rows = list(csv.DictReader(open(tmp_path / "run" / "test" / "predictions.csv")))
    from_npz = np.array([[float(r["prob_normal"]), float(r["prob_lesion"])] for r in rows])
    assert np.allclose(from_png, from_npz, atol=1e-5)


def test_evaluation_test_false_skips_the_test_split(tmp_path: Path):
    cfg = config(make_npz(tmp_path / "toy.npz", n=(16, 8, 8)), max_epochs=1)
    cfg.evaluation.test = False
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.test_summary is None and not (tmp_path / "run" / "test").exists()


def test_predict_folder_writes_class_probabilities_and_goes_on_past_a_bad_case(tmp_path: Path):
    from medimg.core import Image
    from medimg.inference import predict_folder
    from medimg.io import write_image

    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    result = train(config(npz, max_epochs=1), tmp_path / "run", progress=False)
    report = predict_folder(result.best_checkpoint, npz, tmp_path / "npz_out", progress=False)
    rows = list(csv.DictReader(open(tmp_path / "npz_out" / "predictions.csv")))
    assert [r["case_id"] for r in rows][:2] == ["test_0", "test_1"] and len(rows) == 8
    assert report.all_ok and rows[0]["predicted"] in ("normal", "lesion")
    folder = tmp_path / "cases"
    folder.mkdir()
    write_image(Image(torch.from_numpy(np.load(npz)["test_images"][1])[None]), folder / "a.nii.gz")
    write_image(Image(torch.zeros(1, 8, 8)), folder / "flat.nii.gz")  # 2D: the model is 3D
    report = predict_folder(result.best_checkpoint, folder, tmp_path / "out", progress=False)
    assert report.ok == ["a"] and [c for c, _ in report.failed] == ["flat"]
    assert "trained on 3D images" in report.failed[0][1]
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert [r["case_id"] for r in rows] == ["a"]
    assert abs(float(rows[0]["prob_normal"]) + float(rows[0]["prob_lesion"]) - 1.0) < 1e-4
    with open(tmp_path / "out" / "predict_log.csv", newline="") as fh:
        log = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert log["flat"]["status"] == "failed" and log["flat"]["error"] == report.failed[0][1]
    assert log["a"]["status"] == "ok" and not (tmp_path / "out" / "failures.csv").exists()
    # a re-run keeps a's row and does not predict it again
    again = predict_folder(result.best_checkpoint, folder, tmp_path / "out", progress=False)
    assert again.ok == [] and again.skipped == [("a", "already predicted; --overwrite to redo")]
    with open(tmp_path / "out" / "predictions.csv", newline="") as fh:
        assert [r["case_id"] for r in csv.DictReader(fh)] == ["a"]
    from medimg.core import ConfigError

    with pytest.raises(ConfigError, match="classification model: it gives class probabilities"):
        Predictor.from_checkpoint(result.best_checkpoint, "cpu").predict(folder / "a.nii.gz")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
def test_multiclass_and_multilabel_runs_score_the_test_split(tmp_path: Path, kind: str):
    rng = np.random.default_rng(1)
    arrays = {}
    for prefix, n in (("train", 18), ("val", 9), ("test", 9)):
        arrays[f"{prefix}_images"] = rng.normal(size=(n, 8, 8, 8)).astype(np.float32)
        if kind == "multiclass":
            arrays[f"{prefix}_labels"] = (np.arange(n) % 3)[:, None]
        else:
            arrays[f"{prefix}_labels"] = np.stack([np.arange(n) % 2, (np.arange(n) // 2) % 2], axis=1)
    np.savez(tmp_path / "toy.npz", **arrays)
    cfg = config(tmp_path / "toy.npz", max_epochs=1)
    cfg.data.class_names = ["a", "b", "c"] if kind == "multiclass" else ["x", "y"]
    if kind == "multilabel":
        cfg.loss = cfg.loss.model_validate({"name": "bce_cls"})
    result = train(cfg, tmp_path / "run", progress=False)
    ckpt = torch.load(result.best_checkpoint, weights_only=True)
    assert ckpt["inference"]["threshold"] is None  # chosen for binary tasks only
    assert ckpt["inference"]["multilabel"] is (kind == "multilabel")
    summary = json.loads((tmp_path / "run" / "test" / "summary.json").read_text())
    assert summary["task"] == kind and summary["n_cases"] == 9


def test_batched_augmentation_onecycle_and_data_wait_in_history(tmp_path: Path):
    """Batched augmentation (flip + affine) and a per-step one-cycle schedule: the lr
    follows the step count, and history.csv reports the data-wait fraction."""
    npz = make_npz(tmp_path / "toy.npz", n=(32, 8, 8))
    cfg = config(npz, max_epochs=2)
    cfg = ExperimentConfig.model_validate(
        {**cfg.model_dump(), "augment": [{"name": "random_flip", "axes": [0, 1, 2]},
                                         {"name": "random_affine", "degrees": 10, "translate": 0.1, "prob": 1.0}],
         "scheduler": {"name": "onecycle", "pct_start": 0.5}}
    )
    result = train(cfg, tmp_path / "run", progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert len(rows) == 2
    waits = [float(r["data_wait"]) for r in rows]
    assert all(0.0 < w < 1.0 for w in waits)  # measured: some wait, never all of the time
    lrs = [float(r["lr"]) for r in rows]
    # one-cycle over 2 epochs x 4 steps with pct_start 0.5: peak after epoch 1, near 0 after epoch 2
    assert lrs[0] == pytest.approx(3e-3, rel=0.1)
    assert lrs[1] < 3e-3 / 25
    assert result.epochs_run == 2
