"""report.html / report.md of an evaluation: self-contained, every figure, the worst cases
drawn on their scans, what was left out; opened in headless Chromium."""

from __future__ import annotations

import base64
import csv
import io
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from medimg.core import make_affine
from medimg.metrics import evaluate_classification, evaluate_folders
from medimg.metrics.overlays import worst_cases
from tests.browser import images_loaded, screenshot
from tests.metrics.report_fixtures import AFFINE, make_study

pytest.importorskip("matplotlib")


def _embedded_pngs(html: str) -> list[PILImage.Image]:
    return [PILImage.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.fixture(scope="module")
def seg_report(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("seg")
    dirs = make_study(tmp_path, n=6, missing_pred=4)
    out = tmp_path / "out"
    report = evaluate_folders(dirs["pred"], dirs["ref"], out, metrics=["dice", "hd95"], bootstrap=50,
                              images=dirs["images"], worst_cases=3)
    return report, out, dirs


def test_segmentation_report_is_self_contained_with_every_figure(seg_report):
    report, out, _ = seg_report
    html = (out / "report.html").read_text()
    assert "<script" not in html and "<link" not in html and "http://" not in html and "https://" not in html
    assert not re.search(r'src="(?!data:image/png;base64,)', html)  # nothing loaded from a path or the web
    pngs = _embedded_pngs(html)
    assert len(pngs) == 5  # the Dice and HD95 box plots + 3 worst cases
    assert all(p.format == "PNG" and p.size[0] > 100 for p in pngs)
    # the summary with flagged intervals (5 cases < 10), and the missing case left out
    assert "unreliable (n=5)" in html and "What was left out" in html
    assert "case4" in html.split("<h2>What was left out")[1]
    assert "Incomplete" in html


def test_segmentation_markdown_links_the_pngs_relatively(seg_report):
    report, out, _ = seg_report
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == ["dice_boxplot.png", "hd95_boxplot.png", *(f"overlays/{p.name}" for p in sorted(
        (report.paths[k] for k in report.paths if k.startswith("overlay_")), key=lambda p: p.name))]
    assert all((out / link).is_file() for link in links)
    assert "| organ | dice |" in md and "| organ | hd95 (mm) |" in md and "⚠" in md


def test_worst_cases_are_the_lowest_dice(seg_report):
    report, out, _ = seg_report
    per_case = {}
    for r in report.rows:
        if r["metric"] == "dice":
            per_case.setdefault(r["case_id"], []).append(r["value"])
    expected = sorted(per_case, key=lambda c: np.mean(per_case[c]))[:3]
    assert [c for c, _, _ in worst_cases(report, 3)] == expected == ["case6", "case5", "case3"]
    html = (out / "report.html").read_text()
    section = html.split("Worst cases")[1]
    assert [m for m in re.findall(r"<td>(case\d)</td>", section)] == expected


def _one_slice_error(tmp_path: Path, affine: np.ndarray, k: int):
    """Prediction equal to the reference except a blob on voxel slice ``k`` of axis 2."""
    shape = (16, 16, 10)
    ref = np.zeros(shape, np.uint8)
    ref[4:12, 4:12, 2:8] = 1
    pred = ref.copy()
    pred[2:6, 9:14, k] = 1
    pred[6:9, 5:8, k] = 0
    scan = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    for d, a in (("pred", pred), ("ref", ref), ("images", scan)):
        (tmp_path / d).mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(a, affine), str(tmp_path / d / "c1.nii.gz"))
    return evaluate_folders(tmp_path / "pred", tmp_path / "ref", tmp_path / "out", metrics=["dice"], bootstrap=0,
                            images=tmp_path / "images", worst_cases=1)


def test_overlay_shows_the_axial_slice_with_most_errors(tmp_path: Path):
    report = _one_slice_error(tmp_path, AFFINE, k=6)
    assert report.paths["overlay_1"].is_file()
    html = (tmp_path / "out" / "report.html").read_text()
    assert "axial slice 7 of 10" in html  # 1-based, inferior to superior


def test_overlay_slice_is_axial_whatever_the_voxel_order(tmp_path: Path):
    # voxel axis 2 runs superior -> inferior here: voxel slice 6 is RAS slice 10 - 1 - 6 = 3
    flipped = make_affine((1.0, 1.0, 2.0)) @ np.diag([1.0, 1.0, -1.0, 1.0])
    report = _one_slice_error(tmp_path, flipped, k=6)
    assert "overlay_1" in report.paths
    assert "axial slice 4 of 10" in (tmp_path / "out" / "report.html").read_text()


def test_missing_or_misplaced_scan_is_listed_not_fatal(tmp_path: Path):
    dirs = make_study(tmp_path, n=3)
    (dirs["images"] / "case3.nii.gz").unlink()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), AFFINE), str(dirs["images"] / "case2.nii.gz"))
    report = evaluate_folders(dirs["pred"], dirs["ref"], tmp_path / "out", metrics=["dice"], bootstrap=0,
                              images=dirs["images"], worst_cases=3)
    assert report.all_ok  # the scores are complete; only pictures are missing
    html = (tmp_path / "out" / "report.html").read_text()
    left_out = html.split("<h2>What was left out")[1]
    assert "overlay of case3 not drawn: no scan for case &#x27;case3&#x27;" in left_out
    assert "overlay of case2 not drawn" in left_out and "(8, 8, 8)" in left_out
    assert len(_embedded_pngs(html)) == 2  # box plot + case1


def _classification_files(tmp_path: Path, n: int = 40, extra: bool = True) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(1)
    y = np.arange(n) % 2
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    preds, labels, meta = tmp_path / "predictions.csv", tmp_path / "labels.csv", tmp_path / "meta.csv"
    with preds.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "prob_normal", "prob_lesion"])
        w.writerows([f"c{i}", 1 - p[i], p[i]] for i in range(n))
        if extra:
            w.writerow(["orphan", 0.5, 0.5])
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", "label"], *([f"c{i}", ["normal", "lesion"][y[i]]] for i in range(n))])
    with meta.open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", "site"], *([f"c{i}", "A" if i < n - 6 else "B"] for i in range(n))])
    return preds, labels, meta


def test_classification_report_has_roc_reliability_confusion_and_subgroups(tmp_path: Path):
    preds, labels, meta = _classification_files(tmp_path)
    out = tmp_path / "out"
    report = evaluate_classification(preds, labels, out, bootstrap=50, metadata=meta, subgroups=["site"])
    html = (out / "report.html").read_text()
    assert "<script" not in html
    assert len(_embedded_pngs(html)) == 3  # ROC, reliability, confusion matrix
    assert "Subgroups by site" in html and "fewer than 10 cases: no interval" in html
    assert "orphan" in html.split("<h2>What was left out")[1]
    md = (out / "report.md").read_text()
    assert set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)) == {"roc_curve.png", "reliability_diagram.png",
                                                              "confusion_matrix.png"}
    assert report.paths["report_html"] == out / "report.html"


def test_classification_flags_intervals_of_few_cases(tmp_path: Path):
    preds, labels, _ = _classification_files(tmp_path, n=16, extra=False)
    evaluate_classification(preds, labels, tmp_path / "out", bootstrap=50)
    html = (tmp_path / "out" / "report.html").read_text()
    # sensitivity is a fraction of the 8 positives: its interval is flagged; the AUC's (16 cases) is not
    row = re.search(r"<tr><td>sensitivity</td>.*?</tr>", html).group(0)
    assert "unreliable (n=8)" in row and 'class="warn"' in row
    row = re.search(r"<tr><td>auc</td>.*?</tr>", html).group(0)
    assert "unreliable" not in row


def test_reports_render_in_headless_chromium(seg_report, tmp_path: Path, chromium: str):
    _, out, _ = seg_report
    n, loaded, dom = images_loaded(chromium, out / "report.html", tmp_path / "browser")
    assert (n, loaded) == (5, 5)  # Dice and HD95 box plots, 3 worst cases
    assert "Segmentation evaluation" in dom
    preds, labels, _ = _classification_files(tmp_path)
    evaluate_classification(preds, labels, tmp_path / "cls_out", bootstrap=20)
    assert images_loaded(chromium, tmp_path / "cls_out" / "report.html", tmp_path / "browser2")[:2] == (3, 3)
    # a screenshot a person would see: not blank
    shot = screenshot(chromium, out / "report.html", tmp_path / "shot.png")
    arr = np.asarray(PILImage.open(shot).convert("L"), dtype=np.float32)
    assert arr.shape[0] > 500 and arr.std() > 10


def test_report_opens_from_a_copied_folder(seg_report, tmp_path: Path):
    """Self-contained: the HTML alone, moved elsewhere, still holds every figure."""
    _, out, _ = seg_report
    lone = tmp_path / "elsewhere" / "report.html"
    lone.parent.mkdir()
    shutil.copy(out / "report.html", lone)
    assert len(_embedded_pngs(lone.read_text())) == 5


@pytest.mark.slow
def test_worst_case_overlay_on_real_brats_scans(tmp_path: Path, shared_data: Path):
    """BraTS 2013 (LPS, 240x240x155): the prediction is the reference shifted 4 voxels in
    one case; the scans are the case folders' FLAIR, picked by --image-name."""
    root = shared_data / "seg" / "brats6" / "test"
    cases = sorted(p for p in root.iterdir() if p.is_dir())
    if not cases:
        pytest.skip(f"no BraTS cases under {root}")
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for k, case in enumerate(cases):
        ref = nib.load(str(case / "OTMultiClass.nii.gz"))
        arr = np.asanyarray(ref.dataobj).astype(np.uint8)
        pred = np.roll(arr, 4 * (k + 1), axis=0)
        nib.save(nib.Nifti1Image(pred, ref.affine), str(pred_dir / f"{case.name}.nii.gz"))
    out = tmp_path / "out"
    report = evaluate_folders(pred_dir, root, out, metrics=["dice"], bootstrap=20, ref_name="OTMultiClass.nii.gz",
                              images=root, image_name="Flair_subtrMeanDivStd.nii.gz", worst_cases=2)
    assert report.all_ok
    html = (out / "report.html").read_text()
    assert len(_embedded_pngs(html)) == 3 and "not drawn" not in html
    worst = worst_cases(report, 1)[0][0]
    assert worst == cases[-1].name  # the larger shift
    assert (out / "overlays" / f"worst_1_{worst}.png").is_file()


def test_multiclass_summary_has_a_column_per_class(tmp_path: Path):
    rng = np.random.default_rng(0)
    n, names = 30, ["a", "b", "c"]
    y = np.arange(n) % 3
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 2.0
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    with (tmp_path / "p.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", *(f"prob_{c}" for c in names)], *([f"c{i}", *p[i]] for i in range(n))])
    with (tmp_path / "l.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", "label"], *([f"c{i}", names[y[i]]] for i in range(n))])
    report = evaluate_classification(tmp_path / "p.csv", tmp_path / "l.csv", tmp_path / "out", bootstrap=20)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| metric | overall | a | b | c |" in md
    auc_a = report.values[("auc", "a")]
    row = next(line for line in md.splitlines() if line.startswith("| auc |"))
    assert f"{auc_a:.4f}" in row.split("|")[3]
    # sensitivity of class a is a fraction of its 10 cases: not flagged; 10 is the threshold
    assert "(n=10)" in next(line for line in md.splitlines() if line.startswith("| sensitivity |"))
    assert "dot is the operating point" not in md


def test_one_pair_with_one_scan_file(tmp_path: Path):
    d = make_study(tmp_path, n=2)
    report = evaluate_folders(d["pred"] / "case2.nii.gz", d["ref"] / "case2.nii.gz", tmp_path / "out",
                              metrics=["dice"], bootstrap=0, images=d["images"] / "case1.nii.gz", worst_cases=3)
    assert "overlay_1" in report.paths and "not drawn" not in (tmp_path / "out" / "report.html").read_text()
