"""``medimg fingerprint`` and ``medimg plan`` on tiny synthetic data sets: the planned YAML is
an ordinary config (loaded by ``medimg.config``), each planned value carries its reason,
``--explain`` prints the decisions, ``--set`` overrides, and bad data sets are refused with
the cases named."""

from __future__ import annotations

import json

import numpy as np
import yaml

from medimg.config import load_config
from medimg.engine.plan_rules import memory_gb, target_spacing
from tests.conftest import run_cli as run
from tests.data.test_fingerprint import seg_set


def test_fingerprint_writes_json(tmp_path):
    root = seg_set(tmp_path / "ds")
    r = run("fingerprint", root, "-o", tmp_path / "fp.json")
    assert r.exit_code == 0, r.output
    fp = json.loads((tmp_path / "fp.json").read_text())
    assert fp["task"] == "segmentation" and len(fp["cases"]) == 4
    assert "median spacing 1x1x2 mm" in r.output


def test_plan_segmentation_is_a_valid_commented_config(tmp_path):
    root = seg_set(tmp_path / "ds")
    out = tmp_path / "cfg" / "plan.yaml"
    r = run("plan", root, "--output", out, "--device", "cpu", "--minutes", "5", "--probe-steps", "1", "--explain")
    assert r.exit_code == 0, r.output
    cfg = load_config(out)
    assert cfg.experiment.task == "segmentation" and cfg.data.root == root.resolve()
    assert cfg.data.images == ["t1.nii.gz", "t2.nii.gz"] and cfg.data.label == "seg.nii.gz"
    assert cfg.data.label_names == ["background", "class_1", "class_2"]
    roi = cfg.inference.roi_size
    assert all(r_ % 2 ** len(cfg.model.params["strides"]) == 0 for r_ in roi)
    assert cfg.augment[0].name == "random_crop" and cfg.augment[0].params["roi_size"] == roi
    # rotation and scaling always, as nnU-Net's default augmentation
    assert [a.name for a in cfg.augment] == ["random_crop", "random_flip", "random_affine", "random_intensity"]
    assert cfg.augment[2].params == {"degrees": 15, "scale": [0.85, 1.15], "prob": 0.3}
    assert [p.name for p in cfg.preprocess] == ["orient", "crop_foreground", "normalize_intensity"]
    assert cfg.preprocess[2].params["corner_background"] is True  # constant background (0): z-score inside the foreground
    assert cfg.trainer.max_minutes == 4.0 and cfg.trainer.max_epochs >= 1
    text = out.read_text()
    assert "max_epochs:" in text and "per measured step" in text.split("max_epochs:")[1].splitlines()[0]
    assert "decisions:" in r.output and "inference.roi_size" in r.output and "probe =" in r.output


def test_plan_set_overrides_a_key(tmp_path):
    root = seg_set(tmp_path / "ds")
    out = tmp_path / "plan.yaml"
    r = run("plan", root, "-o", out, "--device", "cpu", "--probe-steps", "0",
            "--set", "trainer.batch_size=3", "--set", "data.label_map={1: 1, 2: 1}",
            "--set", "data.label_names=[background, lesion]")
    assert r.exit_code == 0, r.output
    cfg = load_config(out)
    assert cfg.trainer.batch_size == 3 and cfg.data.label_map == {1: 1, 2: 1}
    assert "set by --set" in out.read_text()


def test_plan_refuses_a_budget_below_one_epoch(tmp_path):
    root = seg_set(tmp_path / "ds")
    r = run("plan", root, "-o", tmp_path / "p.yaml", "--device", "cpu", "--minutes", "0.02", "--probe-steps", "0")
    assert r.exit_code == 1
    assert "--minutes 0.02 is too short for one epoch" in r.output and "plan refused" in r.output
    assert not (tmp_path / "p.yaml").exists()


def test_plan_refuses_labels_without_foreground(tmp_path):
    root = seg_set(tmp_path / "empty", blobs=0)
    r = run("plan", root, "-o", tmp_path / "p.yaml", "--device", "cpu", "--probe-steps", "0")
    assert r.exit_code == 1
    assert "no foreground in any label map" in r.output and "plan refused" in r.output


def test_plan_classification_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 12), ("test", 12)):
        arrays[f"{split}_images"] = rng.random((n, 16, 16)).astype(np.float32)
        arrays[f"{split}_labels"] = (np.arange(n) % 2)[:, None]
    np.savez(tmp_path / "toy.npz", **arrays)
    out = tmp_path / "cls.yaml"
    r = run("plan", tmp_path / "toy.npz", "-o", out, "--device", "cpu", "--minutes", "2", "--probe-steps", "1",
            "--memory", "0.05")
    assert r.exit_code == 0, r.output
    cfg = load_config(out)
    assert cfg.experiment.task == "classification" and cfg.model.name == "resnet18"
    assert cfg.model.params["small_input"] is True
    assert cfg.augment[0].name == "random_affine" and cfg.inference.tta_flips == [1]
    assert cfg.trainer.ema == 0.98
    assert cfg.trainer.batch_size < 128  # halved to fit --memory 0.05
    assert 1 <= cfg.trainer.max_epochs <= 40
    raw = yaml.safe_load(out.read_text())
    assert raw["data"]["npz"] == "toy.npz"


def test_rules():
    fp = {"median_spacing": [0.8, 0.8, 5.0], "anisotropy": 6.25,
          "spacings": [[0.8, 0.8, s] for s in (2.5, 3.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0)]}
    spacing, rule = target_spacing(fp)
    assert spacing[:2] == [0.8, 0.8] and spacing[2] == np.percentile([2.5, 3.0] + [5.0] * 7 + [6.0], 10)
    assert "10th percentile" in rule
    assert memory_gb(2, [96, 96, 96], 16, 3) > memory_gb(2, [64, 64, 64], 16, 3) * 3
    assert memory_gb(4, [64, 64, 64], 16, 3) == 2 * memory_gb(2, [64, 64, 64], 16, 3)


def test_probe_reports_a_busy_cpu():
    from medimg.engine.probe import ProbeResult

    busy = ProbeResult(2.0, 3, None, True, cpu_seconds_per_step=0.5, threads=2)
    assert "the CPU was busy during the probe: a step got 12% of 2 thread(s)" in busy.contention()
    assert ProbeResult(1.0, 3, None, True, cpu_seconds_per_step=1.8, threads=2).contention() is None


def test_committed_planned_configs_load():
    from tests.conftest import REPO

    planned = sorted((REPO / "configs" / "planned").glob("*.yaml"))
    assert [p.name for p in planned] == ["adrenalmnist3d_plan.yaml", "brats6_plan.yaml", "pneumoniamnist_plan.yaml"]
    for path in planned:
        cfg = load_config(path, check_paths=False)
        assert cfg.trainer.max_minutes is not None and cfg.experiment.name.endswith("_plan")


def test_planned_configs_train(tmp_path):
    """The planned config is one `medimg train` runs: one short epoch of each task."""
    from medimg.engine import train

    root = seg_set(tmp_path / "ds")
    out = tmp_path / "seg.yaml"
    assert run("plan", root, "-o", out, "--device", "cpu", "--probe-steps", "0").exit_code == 0
    cfg = load_config(out, ["trainer.max_epochs=1", "trainer.iterations_per_epoch=1", "evaluation.test=false",
                            "model.channels=[4, 8]", "model.strides=[2]"])
    result = train(cfg, tmp_path / "run_seg", progress=False)
    assert result.best_checkpoint.is_file()
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 16), ("val", 8), ("test", 8)):
        arrays[f"{split}_images"] = rng.random((n, 8, 8, 8)).astype(np.float32)
        arrays[f"{split}_labels"] = (np.arange(n) % 2)[:, None]
    np.savez(tmp_path / "toy3d.npz", **arrays)
    out = tmp_path / "cls.yaml"
    r = run("plan", tmp_path / "toy3d.npz", "-o", out, "--device", "cpu", "--probe-steps", "0")
    assert r.exit_code == 0, r.output
    cfg = load_config(out, ["trainer.max_epochs=1", "evaluation.test=false"])
    assert cfg.model.name == "cnn3d" and cfg.inference.tta_flips == [0, 1, 2]
    result = train(cfg, tmp_path / "run_cls", progress=False)
    assert result.best_checkpoint.is_file()


def test_plan_2d_segmentation(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(0)
    for split, ids in (("train", ["a", "b", "c"]), ("validation", ["d"])):
        for cid in ids:
            folder = tmp_path / "ds" / split / cid
            folder.mkdir(parents=True)
            lab = np.zeros((40, 36), np.uint8)
            lab[10:20, 8:16] = 1
            img = rng.normal(0, 1, (40, 36)).astype(np.float32) + 3 * lab
            nib.save(nib.Nifti1Image(img, np.diag([0.5, 0.5, 1, 1])), str(folder / "img.nii.gz"))
            nib.save(nib.Nifti1Image(lab, np.diag([0.5, 0.5, 1, 1])), str(folder / "mask_label.nii.gz"))
    out = tmp_path / "p.yaml"
    r = run("plan", tmp_path / "ds", "-o", out, "--device", "cpu", "--probe-steps", "1", "--minutes", "3")
    assert r.exit_code == 0, r.output
    cfg = load_config(out)
    assert len(cfg.inference.roi_size) == 2 and cfg.data.label == "mask_label.nii.gz"
    assert [p.name for p in cfg.preprocess] == ["normalize_intensity"]
    assert cfg.augment[1].params["axes"] == [1]


def test_plan_with_a_constant_nonzero_background_crops_and_normalises_per_image(tmp_path):
    root = seg_set(tmp_path / "ds", background=-3.0)
    out = tmp_path / "plan.yaml"
    r = run("plan", root, "-o", out, "--device", "cpu", "--probe-steps", "0")
    assert r.exit_code == 0, r.output
    cfg = load_config(out)
    crop, norm = cfg.preprocess[1], cfg.preprocess[2]
    assert crop.name == "crop_foreground" and crop.params.get("corner_background") is True
    assert "threshold" not in crop.params  # no single threshold: each case's own background
    assert norm.name == "normalize_intensity" and norm.params.get("corner_background") is True
    assert "each image's own corner value" in out.read_text()


def test_plan_normalises_against_the_own_background_before_resampling(tmp_path):
    from tests.data.test_fingerprint import write_case

    root = seg_set(tmp_path / "ds", background=-3.0)
    write_case(root, "train", "c9", spacing=(1.5, 1.5, 2.0), background=-3.0, seed=5)  # off the median spacing
    out = tmp_path / "plan.yaml"
    r = run("plan", root, "-o", out, "--device", "cpu", "--probe-steps", "0")
    assert r.exit_code == 0, r.output
    names = [p.name for p in load_config(out).preprocess]
    # interpolation would blur the exact background value the z-score masks by
    assert names == ["orient", "crop_foreground", "normalize_intensity", "resample"]
