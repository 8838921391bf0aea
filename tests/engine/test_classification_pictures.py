"""Classification from 2D pictures: a manifest naming PNG files and a folder per class
(``root/<split>/<class>/<x>.png``) train through ``train(config)`` and learn. The pictures
come in two sizes, as real ones do: the ``resize`` preprocessing step gives them one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from medimg.core.spec import ExperimentConfig
from medimg.engine import train

SPLITS = {"train": 40, "validation": 16, "test": 16}


def _picture(path: Path, bright: bool, rng: np.random.Generator, size: int = 16) -> None:
    """A grey picture: a class 'bright' picture is lighter, most in the middle."""
    x = rng.normal(60, 15, size=(size, size))
    if bright:
        x += 40
        x[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += 80
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.clip(x, 0, 255).astype(np.uint8), mode="L").save(path)


def _config(data: dict) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "experiment": {"task": "classification", "seed": 0},
            "data": {**data, "class_names": ["dark", "bright"]},
            "preprocess": [{"name": "resize", "size": [16, 16]}],  # 8-bit pictures arrive in [0, 1]
            "model": {"name": "resnet18", "small_input": True},
            "optimizer": {"name": "adamw", "lr": 1e-3},
            "trainer": {"max_epochs": 2, "batch_size": 4, "device": "cpu"},
        }
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _check_run(run: Path, n_test: int) -> None:
    summary = json.loads((run / "test" / "summary.json").read_text())
    assert summary["n_cases"] == n_test and summary["metrics"]["auc"]["value"] > 0.8  # chance: 0.5
    rows = _rows(run / "test" / "predictions.csv")
    labels = {r["case_id"]: r for r in _rows(run / "test" / "labels.csv")}
    assert len(rows) == n_test and set(labels) == {r["case_id"] for r in rows}
    history = _rows(run / "history.csv")
    assert max(float(h["val_auc"]) for h in history) > 0.8  # no learning: 0.5


@pytest.mark.slow
@pytest.mark.parametrize("source", ["manifest", "root"])
def test_png_manifest_and_class_folders_train(tmp_path: Path, source: str):
    rng = np.random.default_rng(0)
    rows = []
    for split, n in SPLITS.items():
        for i in range(n):
            cls = ["dark", "bright"][i % 2]
            rel = f"{split}/{cls}/x{i}.png"
            _picture(tmp_path / "pics" / rel, cls == "bright", rng, size=16 if i % 3 else 24)
            rows.append([f"{split}_{i}", rel, cls, split])
    if source == "manifest":
        with open(tmp_path / "pics" / "cases.csv", "w", newline="") as f:
            csv.writer(f).writerows([["case_id", "image", "label", "split"], *rows])
        data = {"manifest": str(tmp_path / "pics" / "cases.csv"), "images": ["image"]}
    else:
        data = {"root": str(tmp_path / "pics")}
    result = train(_config(data), tmp_path / "run", progress=False)
    assert result.best_checkpoint is not None and result.best_metric > 0.8
    _check_run(tmp_path / "run", SPLITS["test"])
    if source == "manifest":  # prediction takes a folder of pictures, or one picture
        from medimg.inference import predict_folder

        report = predict_folder(result.best_checkpoint, tmp_path / "pics" / "test" / "bright", tmp_path / "out", progress=False)
        rows = _rows(tmp_path / "out" / "predictions.csv")
        assert report.all_ok and len(rows) == SPLITS["test"] // 2 and rows[0]["case_id"] == "x1"
        # the decisions follow the stored threshold; the run's own test rows give the same probabilities
        assert all((float(r["prob_bright"]) >= float(r["threshold"])) == (r["predicted"] == "bright") for r in rows)
        scored = {r["case_id"]: r for r in _rows(tmp_path / "run" / "test" / "predictions.csv")}
        assert all(abs(float(r["prob_bright"]) - float(scored[f"test_{r['case_id'][1:]}"]["prob_bright"])) < 1e-5
                   for r in rows)
        report = predict_folder(result.best_checkpoint, tmp_path / "pics" / "test" / "dark" / "x0.png", tmp_path / "one", progress=False)
        assert report.ok == ["x0"]
