"""``medimg evaluate`` / ``compare`` on DICOM SEG files, DICOM mask series and manifests,
with ``--workers`` and segmentation ``--subgroup``; errors one line in the options' terms."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("highdicom", reason="highdicom (medimg[dicom-seg]) writes the SEGs of these tests")
from tests.conftest import run_cli as run  # noqa: E402
from tests.metrics.seg_inputs import make_study  # noqa: E402


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_study(tmp_path_factory.mktemp("cli_inputs"), n=3)


def _metrics(out: Path) -> list[tuple[str, str, str, float]]:
    with (out / "metrics.csv").open() as f:
        return [(r["case_id"], r["label"], r["metric"], round(float(r["value"]), 5)) for r in csv.DictReader(f)]


def test_seg_predictions_against_a_manifest_with_workers(study, tmp_path):
    res = run("evaluate", study["pred_nii"], study["ref_nii"], "-o", tmp_path / "nii", "--workers", "1",
              "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    res = run("evaluate", study["pred_seg"], study["manifest"], "-o", tmp_path / "seg", "--workers", "2",
              "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert "3 evaluated" in res.output
    assert _metrics(tmp_path / "seg") == _metrics(tmp_path / "nii")
    for m in ("dice", "hd95", "assd", "nsd", "volume_ml"):  # a box plot per metric
        assert (tmp_path / "seg" / f"{m}_boxplot.png").is_file()


def test_mask_series_references(study, tmp_path):
    res = run("evaluate", study["pred_nii"], study["ref_series"], "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert "3 evaluated" in res.output


def test_two_segs_without_images_fail_with_one_line_each(study):
    res = run("evaluate", study["pred_seg"], study["ref_seg"], "--metrics", "dice", "--bootstrap", "0")
    assert res.exit_code == 1
    assert "error: 3 case(s) failed" in res.output
    assert (f"failed case1: case 'case1': the reference '{study['ref_seg'] / 'case1.seg.dcm'}' is a DICOM SEG and "
            "so is the prediction; a SEG is placed on its source series' grid: give the scans with --images") in res.output
    res = run("evaluate", study["pred_seg"], study["ref_seg"], "--metrics", "dice", "--bootstrap", "0",
              "--images", study["scans"], "-o", study["scans"].parent / "both_seg")
    assert res.exit_code == 0, res.output


def test_segmentation_subgroups_on_the_command_line(study, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("case_id,sex,site\ncase1,F,A\ncase2,M,A\ncase3,F,A\n")
    res = run("evaluate", study["pred_nii"], study["ref_nii"], "-o", tmp_path / "out", "--metrics", "dice",
              "--bootstrap", "20", "--metadata", meta, "--subgroup", "sex,site")
    assert res.exit_code == 1
    assert "subgroups by 'sex':" in res.output and "fewer than 10 cases: no interval" in res.output
    assert ("error: subgroup column 'site' holds one value only ('A') over the 3 cases: there is no other group "
            "to compare with; leave it out of the subgroups") in res.output
    assert (tmp_path / "out" / "subgroups.csv").is_file()
    res = run("evaluate", study["pred_nii"], study["ref_nii"], "--metrics", "dice", "--metadata", meta,
              "--subgroup", "sexx")
    assert res.exit_code == 1 and "subgroup column 'sexx' is not in metadata file 'meta.csv'" in res.output


def test_compare_reads_the_same_inputs(study, tmp_path):
    res = run("compare", study["pred_nii"], study["pred_seg"], study["manifest"], "--metrics", "dice",
              "--bootstrap", "20", "-o", tmp_path)
    assert res.exit_code == 0, res.output
    with (tmp_path / "compare.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["diff"]) == pytest.approx(0.0, abs=1e-9) and r["n"] == "3" for r in rows)
