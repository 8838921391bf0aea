"""``medimg calibrate RUN_DIR`` on a toy classifier trained for one epoch: T fitted on the
validation split and stored in best.pt, the report before/after, a re-run that replaces T,
``medimg predict`` then emitting softmax(logits / T), and the errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax

from medimg.engine import train
from medimg.inference import Predictor, save_checkpoint
from medimg.metrics.classification.temperature import fit_temperature
from medimg.models import create_model
from tests.conftest import run_cli as run
from tests.engine.test_classification import config, make_npz


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A 1-epoch toy run whose validation labels are partly flipped (so no T separates them
    perfectly and the fit has an interior optimum)."""
    tmp = tmp_path_factory.mktemp("calibrate")
    npz = make_npz(tmp / "toy.npz", n=(32, 40, 12))
    arrays = dict(np.load(npz))
    arrays["val_labels"][::4] = 1 - arrays["val_labels"][::4]
    np.savez(npz, **arrays)
    train(config(npz, max_epochs=1), tmp / "run", progress=False)
    return tmp / "run"


def _predict(run_dir: Path, out: Path) -> tuple[np.ndarray, list[str]]:
    res = run("predict", run_dir / "best.pt", run_dir.parent / "toy.npz", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    return np.array([[float(r["prob_normal"]), float(r["prob_lesion"])] for r in rows]), [r["predicted"] for r in rows]


def test_calibrate_stores_t_and_predict_uses_it(run_dir: Path):
    raw = Predictor.from_checkpoint(run_dir / "best.pt", "cpu")
    threshold_before = raw.spec.threshold
    test_images = torch.from_numpy(np.load(run_dir.parent / "toy.npz")["test_images"][:, None])
    z_test = raw.classify_logits(test_images)[0].numpy()
    val = np.load(run_dir.parent / "toy.npz")
    z_val = raw.classify_logits(torch.from_numpy(val["val_images"][:, None]))[0].numpy()
    expected_t = fit_temperature(z_val, val["val_labels"][:, 0])
    before, decided_before = _predict(run_dir, run_dir.parent / "pred_before")

    res = run("calibrate", run_dir, "--device", "cpu", "--bootstrap", "50")
    assert res.exit_code == 0, res.output
    assert f"temperature {expected_t:.4f} fitted on 40 validation cases" in res.output
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    t = ckpt["inference"]["temperature"]
    assert t == pytest.approx(expected_t, rel=1e-4) and t != pytest.approx(1.0, abs=1e-3)
    # the binary threshold is chosen again on the calibrated probabilities: same decisions
    assert ckpt["inference"]["threshold"] != pytest.approx(threshold_before)
    assert ckpt["calibration"]["uncalibrated_threshold"] == pytest.approx(threshold_before)
    assert "validation decisions changed by calibration: 0" in res.output
    report = json.loads((run_dir / "calibration" / "calibration.json").read_text())
    assert report["temperature"] == pytest.approx(t) and report["n_cases"] == 40
    assert report["after"]["nll"]["value"] <= report["before"]["nll"]["value"]
    assert report["before"]["ece"]["ci_low"] is not None
    rows = list(csv.DictReader(open(run_dir / "calibration" / "metrics.csv")))
    assert {(r["stage"], r["metric"]) for r in rows} == {(s, m) for s in ("before", "after") for m in ("ece", "brier", "nll")}
    assert (run_dir / "calibration" / "reliability_diagram.png").stat().st_size > 10_000

    after, decided_after = _predict(run_dir, run_dir.parent / "pred_after")
    assert decided_after == decided_before
    assert np.allclose(before, softmax(z_test, axis=1), atol=2e-6)
    assert np.allclose(after, softmax(z_test / t, axis=1), atol=2e-6)
    assert not np.allclose(after, before, atol=1e-3)

    # a second run fits on the raw logits again: the same T, not T squared
    res = run("calibrate", run_dir, "--device", "cpu", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert f"replaces {t:.4f}" in res.output
    ckpt2 = torch.load(run_dir / "best.pt", weights_only=True)
    assert ckpt2["inference"]["temperature"] == pytest.approx(t, rel=1e-6)
    assert ckpt2["inference"]["threshold"] == pytest.approx(ckpt["inference"]["threshold"])


def test_segmentation_run_is_refused(tmp_path: Path):
    params = {"in_channels": 1, "out_channels": 2, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}
    save_checkpoint(tmp_path / "seg" / "best.pt", create_model("unet", **params), model_name="unet",
                    model_params=params, label_names=["background", "organ"])
    res = run("calibrate", tmp_path / "seg", "--device", "cpu")
    assert res.exit_code == 1
    assert "is a segmentation model; temperature scaling is available for classifiers only" in res.output
    assert "Traceback" not in res.output


def test_missing_run_folder_and_best_pt(tmp_path: Path):
    res = run("calibrate", tmp_path / "nope")
    assert res.exit_code == 1 and "run folder" in res.output and "does not exist" in res.output
    (tmp_path / "empty").mkdir()
    res = run("calibrate", tmp_path / "empty", "--device", "cpu")
    assert res.exit_code == 1 and "has no best.pt" in res.output
