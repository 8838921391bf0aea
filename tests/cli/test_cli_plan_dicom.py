"""``medimg fingerprint`` and ``medimg plan`` on a tree of DICOM studies with ``--channel``
patterns: one case per study, the DICOM modality, a skipped study with its reason, the plan
refused without ``--labels`` and, with them, a manifest of the studies that trains."""

from __future__ import annotations

import csv
import json

from medimg.config import load_config
from tests.conftest import run_cli as run
from tests.data.test_fingerprint_dicom import mr_study, write_label

CHANNELS = ["--channel", "flair=*FLAIR*", "--channel", "t1c='*T1*C*'"]


def tree(tmp_path):
    root = tmp_path / "studies"
    mr_study(root, "s1", seed=0)
    mr_study(root, "s2", seed=10)
    mr_study(root, "s3", seed=20, descriptions=("AX FLAIR", "SAG T1 POST C", "AX T1 POST C"))
    return root


def test_fingerprint_study_tree(tmp_path):
    root = tree(tmp_path)
    r = run("fingerprint", root, *CHANNELS, "-o", tmp_path / "fp.json")
    assert r.exit_code == 0, r.output
    fp = json.loads((tmp_path / "fp.json").read_text())
    assert [c["case_id"] for c in fp["cases"]] == ["s1", "s2", "s3"] and fp["num_usable"] == 2
    assert [c.get("modality") for c in fp["cases"]] == ["MR", "MR", None] and fp["modality"] == "MR"
    assert len(fp["intensity"]) == 2 and fp["intensity"][1]["p50"] > 4 * fp["intensity"][0]["p50"]
    assert "channels 2 (flair='*FLAIR*', t1c='*T1*C*'), labels None, modality MR (DICOM Modality tag)" in r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("warning: case s3"))
    assert "pattern '*T1*C*' matches 2 series" in line and line.endswith("(skipped)")
    assert "warning: no label maps" in r.output


def test_plan_study_tree_without_labels_is_refused_in_one_line(tmp_path):
    root = tree(tmp_path)
    r = run("plan", root, *CHANNELS, "-o", tmp_path / "cfg.yaml", "--device", "cpu", "--probe-steps", "0")
    assert r.exit_code != 0
    assert "a study tree has no label maps" in r.output and "--labels DIR" in r.output
    assert not (tmp_path / "cfg.yaml").exists()


def test_plan_study_tree_with_labels_trains(tmp_path):
    from medimg.engine import train

    root, labels = tree(tmp_path), tmp_path / "labels"
    for sid in ("s1", "s2"):
        write_label(labels, sid, root / sid / "series1")
    out = tmp_path / "cfg" / "plan.yaml"
    r = run("plan", root, *CHANNELS, "--labels", labels, "-o", out, "--device", "cpu", "--probe-steps", "0", "--explain")
    assert r.exit_code == 0, r.output
    assert "preprocess.normalize_intensity = {name: normalize_intensity, corner_background: true}: MR (from the DICOM Modality tag)" in r.output
    assert "case s3 (train)" in r.output  # still listed as skipped in the plan's warnings
    rows = list(csv.DictReader(open(tmp_path / "cfg" / "plan_cases.csv")))
    assert sorted(r_["case_id"] for r_ in rows) == ["s1", "s2"]
    cfg = load_config(out, ["trainer.max_epochs=1", "trainer.iterations_per_epoch=1", "evaluation.test=false",
                            "model.channels=[4, 8]", "model.strides=[2]"])
    assert cfg.data.manifest == (tmp_path / "cfg" / "plan_cases.csv").resolve()
    assert cfg.data.images == ["flair", "t1c"] and cfg.data.label == "label"
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.best_checkpoint.is_file()


def test_plan_study_tree_with_dicom_seg_labels_trains_from_the_seg(tmp_path):
    from medimg.engine import train
    from tests.data.test_fingerprint_dicom import write_seg_and_nifti

    root, labels = tree(tmp_path), tmp_path / "segs"
    for sid in ("s1", "s2"):
        write_seg_and_nifti(labels, None, sid, root / sid / "series1")
    out = tmp_path / "cfg" / "plan.yaml"
    r = run("plan", root, *CHANNELS, "--labels", labels, "-o", out, "--device", "cpu", "--probe-steps", "0")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "cfg" / "plan_cases.csv")))
    assert sorted(r_["label"] for r_ in rows) == ["../segs/s1.seg.dcm", "../segs/s2.seg.dcm"]
    with open(tmp_path / "cfg" / "plan_cases.csv", "a", newline="") as fh:  # s1 again, as a test case
        csv.writer(fh).writerow(["s1_test", rows[0]["flair"], rows[0]["t1c"], "../segs/s1.seg.dcm", "test"])
    cfg = load_config(out, ["trainer.max_epochs=1", "trainer.iterations_per_epoch=1", "evaluation.test=true",
                            "model.channels=[4, 8]", "model.strides=[2]"])
    assert len(cfg.data.label_names) == 3  # background and the SEG's two segments
    result = train(cfg, tmp_path / "run", progress=False)
    assert result.best_checkpoint.is_file()
    # the test split's SEG reference is scored on the prediction's grid
    assert (tmp_path / "run" / "test" / "references" / "s1_test.seg.dcm").exists()
    cases = result.test_summary["_cases"]
    assert cases["n_evaluated"] == 1 and cases["failed"] == {}


def test_labels_help_names_dicom_seg_files():
    r = run("plan", "--help")
    assert "<study id>.seg.dcm" in " ".join(r.output.replace("│", " ").split())
