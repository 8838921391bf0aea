"""The demo end to end (reduced size) and its packaged config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_packaged_demo_config_is_the_repository_one():
    from medimg.demo import demo_config_path

    assert demo_config_path().read_text() == (REPO / "configs" / "demo.yaml").read_text(), (
        "medimg/configs/demo.yaml (shipped in the wheel) and configs/demo.yaml must stay identical"
    )


def test_demo_config_loads():
    from medimg.config import load_config
    from medimg.demo import demo_config_path

    cfg = load_config(demo_config_path(), ["data.root=/tmp"])
    assert cfg.model.name == "unet" and cfg.trainer.max_minutes == 2.0
    assert cfg.inference.sw_batch_size >= 2  # batch 1 is the slow conv3d path on CPU


@pytest.mark.slow
def test_demo_end_to_end_reduced(tmp_path):
    from medimg.demo import run_demo

    result = run_demo(
        tmp_path / "demo",
        minutes=5.0,  # a safety net only: max_epochs ends it
        cases=(3, 1, 2),
        shape=(32, 32, 16),
        overrides=["trainer.max_epochs=2", "trainer.iterations_per_epoch=3", "trainer.val_every=1"],
        progress=False,
    )
    out = tmp_path / "demo"
    assert result.epochs == 2 and not result.failed
    for p in ("run/best.pt", "run/last.pt", "run/history.csv", "eval/metrics.csv", "eval/summary.json",
              "predictions/labels.json", "predictions/predictions.csv"):
        assert (out / p).is_file(), p
    assert sorted(f.name for f in (out / "predictions").glob("*.nii.gz")) == ["case_004.nii.gz", "case_005.nii.gz"]
    assert 0.0 <= result.mean_dice <= 1.0
    assert set(result.dice_per_class) == {"ellipsoid", "sphere"}
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert "ellipsoid" in json.dumps(summary)
    text = result.format()
    assert "mean test Dice" in text and len(text.splitlines()) < 25  # one screen


@pytest.mark.slow
def test_demo_reaches_its_target(tmp_path):
    """The README's promise: `medimg demo` as shipped (default data, config and budget)
    gives mean test Dice > 0.9 on its synthetic cases."""
    from medimg.demo import run_demo

    result = run_demo(tmp_path / "demo", progress=False)
    assert not result.failed
    assert result.mean_dice > 0.9, result.format()
