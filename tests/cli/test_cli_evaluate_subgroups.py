"""``medimg evaluate PRED.csv LABELS.csv --metadata META.csv --subgroup ...``: the
subgroup tables and files, and the errors (one line each, in the options' terms, exit 1,
the rest of the evaluation still written)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

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
    n = 120
    y = np.arange(n) % 2
    site = np.where(np.arange(n) % 3 == 0, "B", "A")
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, np.where(site == "B", 0.4, 0.1)), 0, 1)
    names = ["normal", "pneumonia"]
    preds = _write(tmp_path / "predictions.csv", ["case_id", "prob_normal", "prob_pneumonia"],
                   [[f"c{i}", 1 - p[i], p[i]] for i in range(n)])
    labels = _write(tmp_path / "labels.csv", ["case_id", "label"], [[f"c{i}", names[y[i]]] for i in range(n)])
    meta_rows = [[f"c{i}", "FM"[i % 2 == 0 and i % 4 == 0], site[i], "40-60", "same"] for i in range(n - 3)]
    meta = _write(tmp_path / "meta.csv", ["case_id", "sex", "site", "age_bin", "scanner"], meta_rows)
    return preds, labels, meta


def test_subgroups_are_reported_and_written(tmp_path, files):
    preds, labels, meta = files
    full = _write(tmp_path / "full.csv", ["case_id", "sex", "site"],
                  [[f"c{i}", "FM"[i % 4 == 0], "AB"[i % 3 == 0]] for i in range(120)])
    res = run("evaluate", preds, labels, "--metadata", full, "--subgroup", "sex,site", "--bootstrap", "100",
              "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "subgroups by 'site':" in res.output and "gap A - B" in res.output
    assert "equalized_odds" in res.output
    rows = list(csv.DictReader(open(tmp_path / "out" / "subgroups.csv")))
    assert {(r["attribute"], r["group"]) for r in rows if r["kind"] == "group"} == {
        ("sex", "F"), ("sex", "M"), ("site", "A"), ("site", "B")}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ok"] and summary["subgroups"]["attributes"]["site"]["groups"]["B"]["n"] == 40


def test_metadata_problems_exit_1_and_the_rest_is_written(tmp_path, files):
    preds, labels, meta = files
    res = run("evaluate", preds, labels, "--metadata", meta, "--subgroup", "sex,agebin,scanner",
              "--bootstrap", "0", "-o", tmp_path / "out")
    assert res.exit_code == 1
    err = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert any("'agebin' is not in metadata file 'meta.csv' (its columns: case_id, sex, site, age_bin, scanner)"
               in line for line in err), res.output
    assert any("'scanner' holds one value only ('same')" in line for line in err)
    assert any("3 of the 120 scored case(s) are not in metadata file 'meta.csv' (case_id c117, c118, c119)"
               in line for line in err)
    assert "Traceback" not in res.output
    assert (tmp_path / "out" / "metrics.csv").is_file() and (tmp_path / "out" / "subgroups.csv").is_file()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert not summary["ok"] and len(summary["subgroups"]["problems"]) == 3


def test_options_go_together(tmp_path, files):
    preds, labels, meta = files
    res = run("evaluate", preds, labels, "--subgroup", "sex")
    assert res.exit_code == 2 and "--subgroup needs --metadata" in res.output
    res = run("evaluate", preds, labels, "--metadata", meta)
    assert res.exit_code == 2 and "--metadata needs --subgroup" in res.output
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    res = run("evaluate", tmp_path / "p", tmp_path / "r", "--subgroup", "sex")  # segmentation: the same rule
    assert res.exit_code == 2 and "--subgroup needs --metadata" in res.output
