"""A segmentation run ends by scoring best.pt on the test split into RUN_DIR/test."""

from __future__ import annotations

import csv
import json

import pytest

from medimg.config.schema import ExperimentConfig
from medimg.engine import train
from medimg.engine.testsplit import mean_dice
from medimg.inference import predict_folder
from medimg.metrics import evaluate_folders


@pytest.fixture(scope="module")
def split_data(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn"), 2, 1, 2, shape=(20, 20, 16), seed=5)


def _cfg(root, **evaluation) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "experiment": {"name": "tiny", "seed": 2},
            "data": {
                "root": str(root),
                "images": ["t1.nii.gz", "t2.nii.gz"],
                "label": "label.nii.gz",
                "label_names": ["background", "ellipsoid", "sphere"],
            },
            "preprocess": [{"name": "normalize_intensity"}],
            "augment": [{"name": "random_crop", "roi_size": [16, 16, 16], "pos_fraction": 0.5}],
            "model": {"name": "unet", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "trainer": {"max_epochs": 1, "iterations_per_epoch": 1, "batch_size": 2, "device": "cpu"},
            "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2},
            "evaluation": {"metrics": ["dice"], **evaluation},
        }
    )


def test_run_scores_best_checkpoint_on_test_split(split_data, tmp_path):
    run = tmp_path / "run"
    result = train(_cfg(split_data), output_dir=run, progress=False)
    test = run / "test"
    assert (test / "metrics.csv").is_file() and (test / "summary.json").is_file()
    summary = json.loads((test / "summary.json").read_text())
    assert result.test_summary == summary
    assert summary["_cases"]["n_evaluated"] == 2 and summary["_cases"]["prediction_failed"] == {}
    ids = {r["case_id"] for r in csv.DictReader(open(test / "metrics.csv"))}
    assert len(ids) == 2

    # the same numbers as `medimg predict` then `medimg evaluate` on the test folder
    pred = tmp_path / "pred"
    predict_folder(result.best_checkpoint, split_data / "test", pred, device="cpu", progress=False)
    ev = evaluate_folders(pred, split_data / "test", tmp_path / "eval", metrics=["dice"], ref_name="label.nii.gz",
                          seed=2)
    theirs = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert mean_dice(summary) == pytest.approx(mean_dice(theirs), abs=1e-9)
    assert mean_dice(summary) is not None
    for label in ("ellipsoid", "sphere"):
        assert summary[label]["dice"]["mean"] == pytest.approx(theirs[label]["dice"]["mean"], abs=1e-9)
    by_case = {(r["case_id"], r["label"]): float(r["value"]) for r in ev.rows if r["metric"] == "dice"}
    ours = {(r["case_id"], r["label"]): float(r["value"]) for r in csv.DictReader(open(test / "metrics.csv"))
            if r["metric"] == "dice"}
    assert ours == pytest.approx(by_case)


def test_evaluation_test_false_writes_nothing(split_data, tmp_path):
    run = tmp_path / "run"
    result = train(_cfg(split_data, test=False), output_dir=run, progress=False)
    assert result.test_summary is None and not (run / "test").exists()


def test_no_test_split_writes_nothing(split_data, tmp_path, capsys):
    cfg = _cfg(split_data)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"splits": {"train": "train", "validation": "validation"}})})
    run = tmp_path / "run"
    result = train(cfg, output_dir=run, progress=True)
    assert result.test_summary is None and not (run / "test").exists()
    assert "test split not scored: the data has no test split" in capsys.readouterr().err


def test_manifest_test_split_reports_a_failed_case(split_data, tmp_path):
    """Labels listed in a manifest (anywhere on disk) are scored; a test case whose image
    cannot be read is reported in the summary and scored as an empty prediction."""
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file")
    rows = []
    for split in ("train", "validation", "test"):
        for case in sorted(p for p in (split_data / split).iterdir() if p.is_dir()):
            t1 = bad if split == "test" and not rows[-1]["split"] == "test" else case / "t1.nii.gz"
            rows.append({"case_id": case.name, "t1.nii.gz": t1, "t2.nii.gz": case / "t2.nii.gz",
                         "label.nii.gz": case / "label.nii.gz", "split": split})
    manifest = tmp_path / "cases.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cfg = _cfg(split_data)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"root": None, "manifest": manifest})})
    result = train(cfg, output_dir=tmp_path / "run", progress=False)
    summary = result.test_summary
    failed_case = next(r["case_id"] for r in rows if r["t1.nii.gz"] == bad)
    assert list(summary["_cases"]["prediction_failed"]) == [failed_case]
    assert summary["_cases"]["n_evaluated"] == 2 and summary["_cases"]["missing_pred"] == [failed_case]
    dice = [float(r["value"]) for r in csv.DictReader(open(tmp_path / "run" / "test" / "metrics.csv"))
            if r["case_id"] == failed_case and r["metric"] == "dice"]
    assert dice and all(v == 0.0 for v in dice)
