"""``medimg split``, ``medimg train --fold`` and ``medimg cv``: happy paths and one-line errors."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli as run


def _manifest(path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "patient_id", "label", "split"])
        for i in range(24):
            w.writerow([f"c{i}", f"p{i // 2}", "ab"[i % 2] if i % 3 else "c", "test" if i >= 20 else "train"])
    return path


def test_split_writes_grouped_stratified_folds(tmp_path):
    out = tmp_path / "splits.csv"
    res = run("split", _manifest(tmp_path / "m.csv"), "--folds", "5", "--group-by", "patient_id",
              "--stratify", "label", "--seed", "3", "-o", out)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["case_id", "fold", "patient_id", "label"]
    assert len(rows) == 20  # the 4 test cases stay out
    folds_of = {}
    for r in rows:
        folds_of.setdefault(r["patient_id"], set()).add(r["fold"])
    assert all(len(f) == 1 for f in folds_of.values())
    assert sorted({r["fold"] for r in rows}) == ["0", "1", "2", "3", "4"]
    assert "fold 4" in res.output


def test_split_errors_are_one_line(tmp_path):
    m = _manifest(tmp_path / "m.csv")
    res = run("split", m, "--group-by", "patient", "-o", tmp_path / "s.csv")
    assert res.exit_code == 1
    assert "error: --group-by patient: " in res.output and "columns: case_id, patient_id, label, split" in res.output
    assert "Traceback" not in res.output
    res = run("split", m, "--stratify", "grade", "-o", tmp_path / "s.csv")
    assert "error: --stratify grade: " in res.output and "has no column 'grade'" in res.output
    res = run("split", m, "--folds", "30", "-o", tmp_path / "s.csv")
    assert "cannot make 30 folds of 20 cases" in res.output and "--folds between 2 and 20" in res.output
    res = run("split", tmp_path / "nothing.csv", "-o", tmp_path / "s.csv")
    assert "not found" in res.output


@pytest.fixture
def npz_config(tmp_path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", 12), ("val", 6), ("test", 4)):
        y = np.arange(n) % 2
        x = rng.normal(size=(n, 8, 8, 8)).astype(np.float32)
        x[y == 1, 2:6, 2:6, 2:6] += 2
        arrays[f"{prefix}_images"], arrays[f"{prefix}_labels"] = x, y[:, None]
    np.savez(tmp_path / "toy.npz", **arrays)
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent("""
        experiment: {name: toy, task: classification}
        data: {npz: toy.npz, class_names: [normal, lesion], split_file: splits.csv}
        model: {name: cnn3d, channels: [4], dropout: 0.0}
        trainer: {max_epochs: 1, batch_size: 6, device: cpu}
        evaluation: {test: false}
    """))
    return path


def test_split_then_train_a_fold_then_cv(npz_config, tmp_path):
    res = run("split", tmp_path / "toy.npz", "--folds", "3", "--stratify", "label", "-o", tmp_path / "splits.csv")
    assert res.exit_code == 0, res.output
    ids = [r["case_id"] for r in csv.DictReader(open(tmp_path / "splits.csv"))]
    assert ids[:2] == ["train_0", "train_1"] and ids[-1] == "val_5" and len(ids) == 18
    res = run("train", npz_config, "--fold", "2", "-o", tmp_path / "f2")
    assert res.exit_code == 0, res.output
    assert "fold: 2" in (tmp_path / "f2" / "config.resolved.yaml").read_text()
    res = run("train", npz_config, "--fold", "3", "-o", tmp_path / "f3")
    assert res.exit_code == 1 and "data.fold is 3 but split file" in res.output
    assert "hint: use --fold between 0 and 2" in res.output
    res = run("cv", npz_config, "-o", tmp_path / "cv", "--folds", "0,1")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "cv" / "cv_summary.json").read_text())
    assert [f["fold"] for f in doc["folds"]] == [0, 1] and "t-based" in res.output


def test_fold_and_cv_need_a_split_file(npz_config, tmp_path):
    text = npz_config.read_text().replace(", split_file: splits.csv", "")
    plain = tmp_path / "plain.yaml"
    plain.write_text(text)
    res = run("train", plain, "--fold", "1")
    assert res.exit_code == 2 and "--fold 1 needs data.split_file" in res.output and "medimg split" in res.output
    res = run("cv", plain)
    assert res.exit_code == 2 and "data.split_file is not set" in res.output
