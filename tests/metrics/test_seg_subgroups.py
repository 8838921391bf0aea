"""Subgroups of a segmentation evaluation: per-group values are the means of the group's
cases, the gap is the difference of the extreme groups with an interval, small and
one-valued groups are reported, through the classification analysis's code."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from medimg.metrics import evaluate_folders
from medimg.metrics.seg_subgroups import per_case_table
from tests.metrics.report_fixtures import make_study

N = 22


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("segsub")
    dirs = make_study(root, n=N)  # case1 best ... case22 worst (prediction shifted further)
    meta = root / "meta.csv"
    with meta.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "period", "site", "scanner"])
        for i in range(1, N + 1):
            w.writerow([f"case{i}", "early" if i <= N // 2 else "late", "A", "X" if i <= 3 else "Y"])
    out = root / "out"
    report = evaluate_folders(dirs["pred"], dirs["ref"], out, metrics=["dice", "hd95"], bootstrap=200,
                              metadata=meta, subgroups=["period", "site", "scanner"])
    return report, out


def _rows(report, attribute: str, kind: str) -> dict:
    return {(r["group"], r["metric"]): r for r in report.subgroups.rows
            if r["attribute"] == attribute and r["kind"] == kind}


def test_group_values_are_the_means_of_the_groups_cases(evaluated):
    report, _ = evaluated
    groups = _rows(report, "period", "group")
    for g, cases in (("early", range(1, 12)), ("late", range(12, N + 1))):
        for label in ("organ", "lesion"):
            vals = [v for c, v in report.values(label, "dice").items() if int(c[4:]) in cases]
            row = groups[(g, f"dice_{label}")]
            assert row["value"] == pytest.approx(np.mean(vals)) and row["n"] == 11
            assert row["ci_low"] <= row["value"] <= row["ci_high"]
        if g == "early":  # cases that differ: a real interval
            assert groups[(g, "dice_organ")]["ci_low"] < groups[(g, "dice_organ")]["ci_high"]
        # the plain name is the per-case mean over classes
        both = [np.mean([report.values(lab, "dice")[f"case{i}"] for lab in ("organ", "lesion")]) for i in cases]
        assert groups[(g, "dice")]["value"] == pytest.approx(np.mean(both))


def test_the_gap_is_the_worse_group_with_an_interval_away_from_zero(evaluated):
    report, _ = evaluated
    groups, gaps = _rows(report, "period", "group"), {m: r for (_, m), r in _rows(report, "period", "gap").items()}
    gap = gaps["dice_organ"]
    assert gap["group"] == "early - late"
    assert gap["value"] == pytest.approx(groups[("early", "dice_organ")]["value"]
                                         - groups[("late", "dice_organ")]["value"])
    assert gap["ci_low"] > 0.1 and gap["n"] == N
    # distances: the late group's values are larger (and non-finite ones are left out of the means)
    assert gaps["hd95_organ"]["group"] == "late - early"


def test_small_and_one_valued_groups_are_reported_not_hidden(evaluated):
    report, out = evaluated
    small = _rows(report, "scanner", "group")[("X", "dice_organ")]
    assert small["n"] == 3 and math.isnan(small["ci_low"]) and "fewer than 10 cases: no interval" in small["note"]
    gap = _rows(report, "scanner", "gap")[("", "dice_organ")]
    assert "fewer than two groups with 10+ cases" in gap["note"] and "left out: X" in gap["note"]
    assert any("subgroup column 'site' holds one value only ('A')" in p for p in report.subgroups.problems)
    assert not report.all_ok and "holds one value only" in report.problems()
    # written: subgroups.csv, summary.json's _subgroups, the report's tables
    with (out / "subgroups.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["attribute"] for r in rows} == {"period", "scanner"}
    js = json.loads((out / "summary.json").read_text())
    assert js["_subgroups"]["attributes"]["period"]["groups"]["early"]["n"] == 11
    html = (out / "report.html").read_text()
    assert "Subgroups by period" in html and "Subgroups by scanner" in html and "holds one value only" in html


def test_per_case_table_names():
    rows = [{"case_id": c, "label": lab, "metric": "dice", "value": v}
            for c, lab, v in (("a", "x", 1.0), ("a", "y", 0.5), ("b", "x", 0.0), ("b", "y", math.inf))]
    t = per_case_table(rows, ["a", "b"], ["x", "y"], ["dice"])
    assert list(t) == ["dice_x", "dice_y", "dice"]
    assert t["dice"][0] == 0.75 and math.isinf(t["dice"][1])
    one = per_case_table([r for r in rows if r["label"] == "x"], ["a", "b"], ["x"], ["dice"])
    assert list(one) == ["dice"] and list(one["dice"]) == [1.0, 0.0]
