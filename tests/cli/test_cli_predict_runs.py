"""`medimg predict` at scale: --overwrite, --shard, --keep-largest, --min-size, --min-probability, the log."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import run_cli as run


@pytest.fixture
def setup(tmp_path: Path):
    import torch

    from medimg.inference import save_checkpoint
    from medimg.models import create_model

    params = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "m.pt", create_model("unet", **params), model_name="unet", model_params=params,
        label_names=["bg", "a", "b"], preprocess=[], inference={"roi_size": [16, 16, 16], "sw_batch_size": 2},
    )
    inp = tmp_path / "in"
    inp.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        nib.save(nib.Nifti1Image(rng.normal(size=(18, 16, 12)).astype(np.float32), np.eye(4)), str(inp / f"c{i}.nii.gz"))
    (inp / "notes.txt").write_text("x")
    return ckpt, inp


def _log(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_rerun_skips_and_overwrite_redoes(setup, tmp_path: Path):
    ckpt, inp = setup
    out = tmp_path / "out"
    res = run("predict", ckpt, inp, out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "predicted 3 of 3 cases" in res.output and "(1 skipped)" in res.output and "notes.txt" in res.output
    res = run("predict", ckpt, inp, out, "--device", "cpu")
    assert res.exit_code == 0 and "predicted 0 of 0 cases" in res.output and "(4 skipped)" in res.output
    assert "already predicted; --overwrite to redo" in res.output
    res = run("predict", ckpt, inp, out, "--device", "cpu", "--overwrite")
    assert res.exit_code == 0 and "predicted 3 of 3 cases" in res.output
    statuses = [r["status"] for r in _log(out / "predict_log.csv")]
    assert statuses.count("ok") == 6 and statuses.count("skipped") == 1 + 4 + 1


def test_shard_option(setup, tmp_path: Path):
    ckpt, inp = setup
    out = tmp_path / "out"
    res = run("predict", ckpt, inp, out, "--device", "cpu", "--shard", "1/2")
    assert res.exit_code == 0, res.output
    rows = _log(out / "predict_log.shard-1-of-2.csv")
    assert sorted((r["case_id"], r["status"]) for r in rows) == [("c1", "ok"), ("notes.txt", "skipped")]
    assert not (out / "predict_log.csv").exists() and sorted(p.name for p in out.glob("c*")) == ["c1.nii.gz"]
    for bad, why in [("2/2", "shard index must be 0..N-1"), ("half", "expected i/N"), ("1/0", "shard index")]:
        res = run("predict", ckpt, inp, out, "--device", "cpu", "--shard", bad)
        assert res.exit_code == 2 and "--shard" in res.output and why in res.output, res.output
        assert "Traceback" not in res.output


def test_postprocess_options(setup, tmp_path: Path):
    ckpt, inp = setup
    res = run("predict", ckpt, inp, tmp_path / "out", "--device", "cpu", "--keep-largest", "1,2", "--min-size", "1=0.5")
    assert res.exit_code == 0, res.output
    from scipy import ndimage

    for i in range(3):
        lab = np.asarray(nib.load(str(tmp_path / "out" / f"c{i}.nii.gz")).dataobj)
        for cls in (1, 2):
            assert ndimage.label(lab == cls)[1] <= 1  # one component per class at most
    res = run("predict", ckpt, inp, tmp_path / "o2", "--device", "cpu", "--min-size", "1:0.5")
    assert res.exit_code == 2 and "expected CLASS=ML pairs" in res.output
    res = run("predict", ckpt, inp, tmp_path / "o4", "--device", "cpu", "--min-probability", "1=1.5")
    assert res.exit_code == 2 and "each probability must lie strictly between 0 and 1, got 1=1.5" in res.output
    res = run("predict", ckpt, inp, tmp_path / "o5", "--device", "cpu", "--min-probability", "3=0.8")
    assert res.exit_code == 2 and "--min-probability" in res.output and "[3] are not foreground classes" in res.output
    res = run("predict", ckpt, inp, tmp_path / "o3", "--device", "cpu", "--keep-largest", "5")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "error: invalid value for --keep-largest: class value(s) [5] are not foreground classes of this model; use 1..2 (1=a, 2=b)" in res.output


def test_min_probability_option_and_the_checkpoint_s_rule(setup, tmp_path: Path):
    import shutil

    from medimg.core.spec import PostprocessSpec
    from medimg.engine.postlearn import store_postprocess

    ckpt, inp = setup
    res = run("predict", ckpt, inp, tmp_path / "raw", "--device", "cpu", "--save-probabilities")
    assert res.exit_code == 0, res.output
    probs = np.load(tmp_path / "raw" / "c0.probabilities.npz")["probabilities"]
    top, arg = probs.max(0), probs.argmax(0)
    t = round(float(np.median(top[arg == 1])), 3)  # a minimum that drops about half of class 1
    expected = np.where((arg == 1) & (top < t), 0, arg)
    near = np.abs(top - t) < 1e-5  # the label path and the saved probabilities may round apart there

    def labels(name: str) -> np.ndarray:
        return np.asarray(nib.load(str(tmp_path / name / "c0.nii.gz")).dataobj)

    res = run("predict", ckpt, inp, tmp_path / "opt", "--device", "cpu", "--min-probability", f"1={t}")
    assert res.exit_code == 0, res.output
    assert np.array_equal(labels("raw"), arg)
    assert int(((arg == 1) & (expected == 0)).sum()) > 10  # the rule removes voxels: the test can fail
    assert np.array_equal(labels("opt")[~near], expected[~near])
    # stored in the checkpoint: applied by default, left out by --no-postprocess
    stored = tmp_path / "stored.pt"
    shutil.copy2(ckpt, stored)
    store_postprocess(stored, PostprocessSpec(min_probability={1: t}))
    for name, extra in (("st", []), ("st_off", ["--no-postprocess"])):
        res = run("predict", stored, inp, tmp_path / name, "--device", "cpu", *extra)
        assert res.exit_code == 0, res.output
    assert np.array_equal(labels("st")[~near], expected[~near]) and np.array_equal(labels("st_off"), arg)


def test_failed_case_points_to_the_log(setup, tmp_path: Path):
    ckpt, inp = setup
    (inp / "c1.nii.gz").write_bytes(b"broken")
    res = run("predict", ckpt, inp, tmp_path / "out", "--device", "cpu")
    assert res.exit_code == 1 and "1 case(s) failed; see" in res.output and "predict_log.csv" in res.output
