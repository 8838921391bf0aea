"""Subgroup analysis: per-group values equal the metrics of the group alone, a group made
deliberately worse shows as the gap (its interval away from 0), small and one-class
groups are listed with the reason, and metadata problems are reported, not raised."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medimg.metrics import subgroup_analysis
from medimg.metrics.classification import accuracy, auc, evaluate_classification, sensitivity
from medimg.metrics.classification.subgroups import metadata_groups


def _data(n: int = 600, seed: int = 0):
    """Binary task; site B's probabilities are much noisier (a worse model there)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    site = np.where(rng.random(n) < 0.3, "B", "A")
    noise = np.where(site == "B", 0.45, 0.12)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, noise), 0, 1)
    sex = rng.choice(["F", "M"], n)
    return y, p, site, sex


def _rows(report, attribute: str, kind: str) -> dict:
    return {(r["group"], r["metric"]): r for r in report.rows if r["attribute"] == attribute and r["kind"] == kind}


def test_group_values_are_the_metrics_of_the_group_alone():
    y, p, site, sex = _data()
    report = subgroup_analysis(y, p, {"site": site, "sex": sex}, bootstrap=100)
    groups = _rows(report, "site", "group")
    for g in ("A", "B"):
        m = site == g
        assert groups[(g, "auc")]["value"] == pytest.approx(auc(y[m], p[m]))
        assert groups[(g, "accuracy")]["value"] == pytest.approx(accuracy(y[m], p[m]))
        assert groups[(g, "fpr")]["value"] == pytest.approx(1 - groups[(g, "specificity")]["value"])
        assert groups[(g, "auc")]["n"] == int(m.sum())
        lo, hi = groups[(g, "auc")]["ci_low"], groups[(g, "auc")]["ci_high"]
        assert lo < groups[(g, "auc")]["value"] < hi
    assert report.problems == []


def test_the_worse_group_is_the_gap_with_an_interval_away_from_zero():
    y, p, site, sex = _data()
    report = subgroup_analysis(y, p, {"site": site, "sex": sex}, bootstrap=300)
    gaps = {r["metric"]: r for r in report.rows if r["attribute"] == "site" and r["kind"] == "gap"}
    a, b = site == "A", site == "B"
    assert gaps["accuracy"]["group"] == "A - B"
    assert gaps["accuracy"]["value"] == pytest.approx(accuracy(y[a], p[a]) - accuracy(y[b], p[b]))
    assert gaps["accuracy"]["ci_low"] > 0.05  # site B is clearly worse
    assert gaps["auc"]["ci_low"] > 0.0
    # fairness: equal opportunity is the TPR gap; equalised odds the larger of TPR / FPR gaps
    tpr_gap = abs(sensitivity(y[a], p[a]) - sensitivity(y[b], p[b]))
    assert gaps["equal_opportunity"]["value"] == pytest.approx(tpr_gap)
    assert gaps["equalized_odds"]["value"] == pytest.approx(max(tpr_gap, gaps["fpr"]["value"]))
    # sex was assigned at random: its accuracy gap's interval reaches 0
    sex_gap = {r["metric"]: r for r in report.rows if r["attribute"] == "sex" and r["kind"] == "gap"}
    assert sex_gap["accuracy"]["ci_low"] < 0.0 < sex_gap["accuracy"]["ci_high"]


def test_small_and_one_class_groups_are_listed_with_the_reason():
    y, p, _, _ = _data(200)
    tiny = np.where(np.arange(200) < 6, "rare", "common")
    negatives = np.where((y == 0) & (np.arange(200) % 2 == 0), "neg_only", "mixed")
    report = subgroup_analysis(y, p, {"tiny": tiny, "kind": negatives}, bootstrap=50)
    rare = _rows(report, "tiny", "group")[("rare", "accuracy")]
    assert rare["n"] == 6 and np.isfinite(rare["value"]) and np.isnan(rare["ci_low"])
    assert "fewer than 10 cases" in rare["note"]
    gap = _rows(report, "tiny", "gap")[("", "accuracy")]
    assert np.isnan(gap["value"]) and "left out: rare" in gap["note"]
    neg = _rows(report, "kind", "group")[("neg_only", "auc")]
    assert np.isnan(neg["value"]) and "one class only" in neg["note"]


def test_one_value_column_is_a_problem_not_an_exception():
    y, p, site, _ = _data(100)
    report = subgroup_analysis(y, p, {"site": site, "scanner": ["X"] * 100}, bootstrap=0)
    assert len(report.problems) == 1 and "'scanner' holds one value only ('X')" in report.problems[0]
    assert {r["attribute"] for r in report.rows} == {"site"}


def test_multiclass_has_no_fairness_rows():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 90)
    p = rng.dirichlet(np.ones(3), 90)
    report = subgroup_analysis(y, p, {"g": np.arange(90) % 2}, bootstrap=20)
    metrics = {r["metric"] for r in report.rows}
    assert "ece" in metrics and "equalized_odds" not in metrics and "fpr" not in metrics


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_metadata_problems_name_columns_and_cases(tmp_path: Path):
    meta = _write(tmp_path / "meta.csv", ["case_id", "sex", "site"], [["c0", "F", "A"], ["c1", "M", "B"]])
    groups, rows, problems = metadata_groups(meta, ["sex", "age_bin"], ["c0", "c1", "c2", "c3"])
    assert rows == [0, 1] and groups == {"sex": ["F", "M"]}
    assert "'age_bin' is not in metadata file 'meta.csv' (its columns: case_id, sex, site)" in problems[0]
    assert "2 of the 4 scored case(s) are not in metadata file 'meta.csv' (case_id c2, c3)" in problems[1]


def test_evaluation_writes_subgroups_csv_and_summary(tmp_path: Path):
    y, p, site, sex = _data(300)
    names = ["normal", "pneumonia"]
    preds = _write(tmp_path / "p.csv", ["case_id", "prob_normal", "prob_pneumonia"],
                   [[f"c{i}", 1 - p[i], p[i]] for i in range(300)])
    labels = _write(tmp_path / "l.csv", ["case_id", "label"], [[f"c{i}", names[y[i]]] for i in range(300)])
    meta = _write(tmp_path / "m.csv", ["case_id", "site", "sex"], [[f"c{i}", site[i], sex[i]] for i in range(300)])
    report = evaluate_classification(preds, labels, tmp_path / "out", metadata=meta, subgroups=["site", "sex"],
                                     bootstrap=50)
    assert report.all_ok
    rows = list(csv.DictReader(open(tmp_path / "out" / "subgroups.csv")))
    assert {r["attribute"] for r in rows} == {"site", "sex"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    site_a = summary["subgroups"]["attributes"]["site"]["groups"]["A"]
    assert site_a["n"] == int((site == "A").sum()) and site_a["metrics"]["auc"]["ci_low"] is not None
    assert summary["subgroups"]["attributes"]["site"]["gaps"]["accuracy"]["between"] == "A - B"
    # a missing column: reported, the rest still scored and written, not ok
    bad = evaluate_classification(preds, labels, tmp_path / "bad", metadata=meta, subgroups=["site", "age"],
                                  bootstrap=0)
    assert not bad.all_ok and "'age' is not in metadata file" in bad.problems()
    assert (tmp_path / "bad" / "metrics.csv").is_file() and (tmp_path / "bad" / "subgroups.csv").is_file()
