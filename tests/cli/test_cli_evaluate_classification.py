"""``medimg evaluate PREDICTIONS.csv LABELS.csv``: a classifier scored from the command
line; errors in the terms of its options, no tracebacks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medimg.metrics.classification import auc
from tests.conftest import run_cli as run


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path: Path):
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    names = ["normal", "pneumonia"]
    preds = _write(tmp_path / "predictions.csv", ["case_id", "prob_normal", "prob_pneumonia", "predicted", "threshold"],
                   [[f"c{i}", 1 - p[i], p[i], names[int(p[i] >= 0.5)], 0.5] for i in range(40)])
    labels = _write(tmp_path / "manifest.csv", ["case_id", "image", "label", "split"],
                    [[f"c{i}", f"c{i}.png", names[y[i]], "test"] for i in range(40)] + [["t1", "t1.png", "normal", "train"]])
    return preds, labels, auc(y, p)


def test_two_csv_files_are_a_classification(tmp_path, files):
    preds, labels, expected_auc = files
    res = run("evaluate", preds, labels, "--split", "test", "--bootstrap", "100", "-o", tmp_path / "eval")
    assert res.exit_code == 0, res.output
    assert "binary, positive class 'pneumonia'; 40 cases; threshold 0.5" in res.output
    assert f"auc                overall         {expected_auc:.4f}" in res.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["metrics"]["auc"]["value"] == pytest.approx(expected_auc)
    for name in ("metrics.csv", "roc_curve.png", "confusion_matrix.png", "confusion_matrix.csv"):
        assert (tmp_path / "eval" / name).is_file()


def test_unmatched_case_exits_1_and_names_it(files):
    preds, labels, _ = files
    res = run("evaluate", preds, labels, "--bootstrap", "0")
    assert res.exit_code == 1
    assert "without a prediction: t1" in res.output
    assert "error: 1 labelled case(s) without a prediction" in res.output
    assert "choose split 'test' to score it alone" in res.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--label-column", "dx"], "give --label-column an existing column"),
        (["--split", "val"], "has no row of split 'val' (splits found: test, train)"),
        (["--metrics", "auc,dice"], "unknown classification metric name(s): 'dice'"),
        (["--label-map", "1:1"], "--label-map applies to segmentation label maps only"),
    ],
)
def test_errors_in_the_terms_of_the_options(files, args, expected):
    preds, labels, _ = files
    res = run("evaluate", preds, labels, "--bootstrap", "0", *args)
    assert res.exit_code != 0
    assert expected in res.output and "Traceback" not in res.output


def test_one_class_split_says_which_and_what_to_do(tmp_path, files):
    preds, _, _ = files
    labels = _write(tmp_path / "one.csv", ["case_id", "label", "split"], [[f"c{i}", "normal", "test"] for i in range(40)])
    res = run("evaluate", preds, labels, "--split", "test")
    assert res.exit_code == 1
    assert "error: AUC is undefined on the test split: no case is 'pneumonia' (40 cases)" in res.output
    assert "hint: give that split cases of both kinds, or leave auc out, e.g. --metrics accuracy" in res.output


def test_a_csv_with_a_folder_is_refused(tmp_path, files):
    preds, _, _ = files
    res = run("evaluate", preds, tmp_path)
    assert res.exit_code == 1
    assert f"a classification is scored from two CSV files, but '{tmp_path}' is not a .csv file" in res.output


def test_classification_options_are_refused_for_label_maps(tmp_path):
    res = run("evaluate", tmp_path, tmp_path, "--split", "test")
    assert res.exit_code == 2 and "--split applies to classification (two CSV files) only" in res.output
