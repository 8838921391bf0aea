"""``medimg card RUN_DIR``: MODEL_CARD.md from a 1-epoch toy classifier run: data per split,
config hash, versions, test metrics with CIs, subgroups, calibration, author TODOs."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from medimg.engine import train
from tests.conftest import run_cli as run
from tests.engine.test_classification import config, make_npz


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("card")
    npz = make_npz(tmp / "toy.npz", n=(16, 8, 12))
    train(config(npz, max_epochs=1), tmp / "run", progress=False)
    return tmp / "run"


def _copy(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    return dest


def test_card_of_a_run_with_test_results(toy_run: Path, tmp_path: Path):
    run_dir = _copy(toy_run, tmp_path / "run")
    res = run("card", run_dir)
    assert res.exit_code == 0, res.output
    text = (run_dir / "MODEL_CARD.md").read_text()
    # data per split and class, from best.pt; the source from the config
    assert "| train | 16 | 8 | 8 |" in text and "| validation | 8 | 4 | 4 |" in text and "| test | 12 | 6 | 6 |" in text
    assert "toy.npz" in text
    # the config hash is the file's SHA-256; versions from environment.json
    sha = hashlib.sha256((run_dir / "config.resolved.yaml").read_bytes()).hexdigest()
    assert f"sha256 {sha}" in text
    env = json.loads((run_dir / "environment.json").read_text())
    assert f"| torch | {env['versions']['torch']} |" in text
    # test metrics with their intervals, as summary.json has them; sensitivity of 6 positives flagged
    summary = json.loads((run_dir / "test" / "summary.json").read_text())
    auc = summary["metrics"]["auc"]
    assert f"| overall | auc | {auc['value']:.4f} |" in text
    sens = re.search(r"\| overall \| sensitivity \|.*", text).group(0)
    assert "unreliable (n=6)" in sens
    assert "On 12 test case(s)" in text
    # the author's sections, marked
    for title in ("Intended use", "Limitations", "Ethical considerations"):
        section = text.split(f"## {title}")[1].split("\n## ")[0]
        assert "<!-- AUTHOR" in section and "TODO (author):" in section
    assert "Not calibrated" in text
    assert "sections marked TODO" in res.output.replace("section(s) marked TODO", "sections marked TODO")


def test_card_of_a_run_without_test_results(toy_run: Path, tmp_path: Path):
    run_dir = _copy(toy_run, tmp_path / "run")
    shutil.rmtree(run_dir / "test")
    res = run("card", run_dir, "-o", tmp_path / "card.md")
    assert res.exit_code == 0, res.output
    text = (tmp_path / "card.md").read_text()
    assert "**No test results.**" in text and "| overall | auc" not in text
    assert "NO test results" in res.output
    assert not (run_dir / "MODEL_CARD.md").exists()


def test_card_with_calibration(toy_run: Path, tmp_path: Path):
    run_dir = _copy(toy_run, tmp_path / "run")
    assert run("calibrate", run_dir, "--device", "cpu", "--bootstrap", "20").exit_code == 0
    cal = json.loads((run_dir / "calibration" / "calibration.json").read_text())
    assert run("card", run_dir).exit_code == 0
    text = (run_dir / "MODEL_CARD.md").read_text()
    section = text.split("## Calibration")[1].split("\n## ")[0]
    assert f"T = {cal['temperature']:.4f}" in section
    assert re.search(r"\| ece \| [0-9.]+ .*\| [0-9.]+ ", section)
    assert f"temperature | {cal['temperature']:.4f}" in text  # stored in best.pt too


def test_card_with_a_subgroup_evaluation(toy_run: Path, tmp_path: Path):
    run_dir = _copy(toy_run, tmp_path / "run")
    meta = tmp_path / "meta.csv"
    with (run_dir / "test" / "labels.csv").open() as f:
        ids = [r["case_id"] for r in csv.DictReader(f)]
    with meta.open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", "site"], *([c, "A" if i % 2 else "B"] for i, c in enumerate(ids))])
    ev = tmp_path / "eval"
    res = run("evaluate", run_dir / "test" / "predictions.csv", run_dir / "test" / "labels.csv", "-o", ev,
              "--metadata", meta, "--subgroup", "site", "--bootstrap", "20")
    assert res.exit_code == 0, res.output  # small groups are reported (no interval), not an error
    assert run("card", run_dir, "--evaluation", ev).exit_code == 0
    text = (run_dir / "MODEL_CARD.md").read_text()
    sub = text.split("### Subgroups")[1].split("\n## ")[0]
    assert "By `site`:" in sub and "| A | auc |" in sub and "| B | auc |" in sub


def test_card_errors(tmp_path: Path):
    res = run("card", tmp_path / "nope")
    assert res.exit_code == 1 and "run folder" in res.output and "nope" in res.output
    (tmp_path / "empty").mkdir()
    res = run("card", tmp_path / "empty")
    assert res.exit_code == 1 and "best.pt" in res.output
    res = run("card", tmp_path / "empty", "--evaluation", tmp_path)
    assert res.exit_code == 1 and "--evaluation" in res.output and "summary.json" in res.output


def test_card_of_a_segmentation_run(tmp_path: Path):
    """A segmentation run folder (best.pt's plain-data entries, the resolved config, the test
    split scored by evaluate): its per-class metrics and the case left out reach the card."""
    import torch
    import yaml

    from medimg.metrics import evaluate_folders
    from tests.metrics.report_fixtures import make_study

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"format": "medimg-checkpoint", "format_version": 1, "in_channels": 1, "out_channels": 3,
                "label_names": ["background", "organ", "lesion"], "preprocess": [{"name": "orient"}],
                "model": {"name": "unet", "params": {"channels": [8, 16]}},
                "inference": {"task": "segmentation", "label_names": ["background", "organ", "lesion"],
                              "roi_size": [32, 32, 16], "preprocess": [{"name": "orient"}]},
                "data": {"split_counts": {"train": 20, "validation": 4, "test": 5}},
                "training": {"experiment": "organs", "epoch": 7, "max_epochs": 10, "metric_name": "dice", "metric": 0.8},
                "state_dict": {}}, run_dir / "best.pt")
    (run_dir / "config.resolved.yaml").write_text(yaml.safe_dump({"data": {"root": "/data/organs", "label_map": {1: 1, 2: 2}}}))
    d = make_study(tmp_path / "study", n=5, missing_pred=3)
    evaluate_folders(d["pred"], d["ref"], run_dir / "test", metrics=["dice"], bootstrap=20)
    res = run("card", run_dir)
    assert res.exit_code == 0, res.output
    text = (run_dir / "MODEL_CARD.md").read_text()
    assert text.startswith("# Model card: organs")
    assert "| train | 20 |" in text and "root: `/data/organs`" in text
    assert re.search(r"\| organ \| dice \| [0-9.]+ \| ⚠ \[.*unreliable \(n=4\) \| 4 \|", text)
    assert "missing_pred: 1 (case3)" in text
    assert "Not applicable (segmentation" in text
    assert "No history.csv recorded." in text and "not recorded" in text  # no environment.json either
