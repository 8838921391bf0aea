"""``medimg evaluate ... --output-dir OUT [--images DIR]``: report.html and report.md beside
the metrics, the worst cases drawn on the scans, and the usage errors of the new options."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli as run
from tests.metrics.report_fixtures import make_study

pytest.importorskip("matplotlib")


def test_evaluate_writes_the_report_with_worst_cases(tmp_path: Path):
    d = make_study(tmp_path, n=4, missing_pred=2)
    out = tmp_path / "out"
    res = run("evaluate", d["pred"], d["ref"], "-o", out, "--images", d["images"], "--worst-cases", "2",
              "--metrics", "dice", "--bootstrap", "20")
    assert res.exit_code == 1  # case2 has no prediction: the report is written and says so
    assert "1 case(s) without a prediction" in res.output
    html = (out / "report.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 3  # box plot + 2 worst cases
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["worst_1_case4.png", "worst_2_case3.png"]
    assert "case2" in html.split("<h2>What was left out")[1]
    assert "](overlays/worst_1_case4.png)" in (out / "report.md").read_text()
    assert "wrote report_html" in res.output


def test_evaluate_without_images_still_writes_the_report(tmp_path: Path):
    d = make_study(tmp_path, n=3)
    res = run("evaluate", d["pred"], d["ref"], "-o", tmp_path / "out", "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Worst cases" not in html and "Per-case values by class" in html


def test_images_options_usage_errors(tmp_path: Path):
    d = make_study(tmp_path, n=2)
    res = run("evaluate", d["pred"], d["ref"], "--images", d["images"])
    assert res.exit_code == 2 and "--output-dir" in res.output
    res = run("evaluate", d["pred"], d["ref"], "-o", tmp_path / "o", "--images", tmp_path / "nope")
    assert res.exit_code != 0 and "images folder" in res.output and "nope" in res.output
    assert not (tmp_path / "o" / "metrics.csv").exists()  # refused before any work
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("case_id,prob_a,prob_b\n")
    res = run("evaluate", csv_file, csv_file, "--images", d["images"])
    assert res.exit_code == 2 and "--images applies to segmentation" in res.output
