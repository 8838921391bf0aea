"""Training with DataLoader workers started by the spawn method (macOS' and Windows' default,
and what CUDA users pick): the patch dataset, its cases, transforms and collate reach fresh
worker interpreters by pickling, and batches come back the same as without workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = """
import json, multiprocessing, sys
from medimg.core.spec import ExperimentConfig
from medimg.engine import train

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn", force=True)
    cfg, out = json.loads(sys.argv[1]), sys.argv[2]
    result = train(ExperimentConfig.model_validate(cfg), output_dir=out, progress=False)
    print(json.dumps({"start_method": multiprocessing.get_start_method(), "loss": result.history[-1]["train_loss"]}))
"""


def _cfg(root: Path, workers: int, cache: str, cache_dir: Path) -> dict:
    return {
        "experiment": {"name": "spawn", "seed": 1},
        "data": {"root": str(root), "images": ["t1.nii.gz", "t2.nii.gz"], "label": "label.nii.gz",
                 "label_names": ["background", "ellipsoid", "sphere"], "num_workers": workers,
                 "cache": cache, "cache_dir": str(cache_dir)},
        "preprocess": [{"name": "orient", "axcodes": "RAS"}, {"name": "normalize_intensity"}],
        "augment": [{"name": "random_crop", "roi_size": [16, 16, 16], "pos_fraction": 0.5},
                    {"name": "random_flip", "axes": [0, 1, 2], "prob": 0.5}],
        "model": {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "evaluation": {"test": False},
        "trainer": {"max_epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "device": "cpu",
                    "deterministic": True, "num_threads": 1},
        "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
    }


def _run(script: Path, cfg: dict, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, str(script), json.dumps(cfg), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_training_with_spawned_workers(tmp_path: Path, cache: str):
    from medimg.data import make_synthetic_segmentation

    root = make_synthetic_segmentation(tmp_path / "syn", 2, 1, 0, shape=(24, 24, 16), seed=3)
    script = tmp_path / "train_spawn.py"
    script.write_text(_SCRIPT)
    spawned = _run(script, _cfg(root, 1, cache, tmp_path / "cache"), tmp_path / "w1")
    assert spawned["start_method"] == "spawn"
    inline = _run(script, _cfg(root, 0, cache, tmp_path / "cache"), tmp_path / "w0")
    assert spawned["loss"] == inline["loss"]  # the batches are a function of (seed, epoch, index)
    assert (tmp_path / "w1" / "last.pt").is_file()
