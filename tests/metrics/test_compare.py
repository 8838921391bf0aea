"""Paired comparison: the bootstrap interval, DeLong against the direct placement sums,
``medimg compare`` end to end on tiny segmentation folders and classification CSVs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medimg.metrics.compare import paired_bootstrap_ci, paired_difference
from medimg.metrics.delong import delong_test, placements
from tests.conftest import run_cli as run


# ----------------------------------------------------------------------------- statistics
def test_paired_bootstrap_ci_contains_the_true_difference():
    """B = A + 0.05 + noise on 200 cases whose A values vary far more than the noise: the
    paired interval holds 0.05 and is much narrower than an unpaired one would be."""
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 0.95, 200)
    b = a + 0.05 + rng.normal(0, 0.02, 200)
    lo, hi = paired_bootstrap_ci(a, b, 2000, seed=3)
    assert lo < 0.05 < hi
    assert hi - lo < 0.02  # unpaired: ~0.07 wide, the spread of the A values
    s = paired_difference(a, b, n_boot=500)
    assert s["diff"] == pytest.approx(float(np.mean(b - a)))
    assert s["p_value"] < 1e-10 and s["reliable"]
    assert paired_difference(a, b, n_boot=500, seed=7) == paired_difference(a, b, n_boot=500, seed=7)


def test_paired_difference_leaves_out_non_finite_pairs_and_flags_small_n():
    s = paired_difference([0.5, np.nan, 0.7, 1.0], [0.6, 0.9, np.inf, 1.0], n_boot=100)
    assert (s["n"], s["n_excluded"]) == (2, 2)
    assert s["diff"] == pytest.approx(0.05)
    assert not s["reliable"]
    assert paired_difference([1, 2], [1, 2])["p_value"] is None  # no difference at all


def _direct_placements(t, s):
    x, y = s[t], s[~t]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def test_delong_placements_and_covariance_equal_direct_computation():
    rng = np.random.default_rng(0)
    t = rng.random(30) < 0.4
    a = np.round(rng.random(30) + t * 0.5, 1)  # rounded: ties within and across groups
    b = np.round(rng.random(30) + t * 0.8, 1)
    for s in (a, b):
        v10, v01 = placements(t, s)
        d10, d01 = _direct_placements(t, s)
        np.testing.assert_allclose(v10, d10)
        np.testing.assert_allclose(v01, d01)
    # DeLong's covariance from the direct placements, by its definition
    d = [_direct_placements(t, s) for s in (a, b)]
    m, n = t.sum(), (~t).sum()
    cov = np.cov(np.stack([d[0][0], d[1][0]])) / m + np.cov(np.stack([d[0][1], d[1][1]])) / n
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    res = delong_test(t, a, b)
    assert res["auc_a"] == pytest.approx(d[0][0].mean()) and res["auc_b"] == pytest.approx(d[1][0].mean())
    assert res["se"] == pytest.approx(se)
    from scipy.stats import norm

    assert res["p"] == pytest.approx(2 * norm.sf(abs(res["diff"] / se)))
    assert delong_test(t, a, a)["p"] is None  # same model: no variance of the difference
    with pytest.raises(ValueError, match="positive and negative"):
        delong_test(np.ones(4, bool), a[:4], b[:4])


# ----------------------------------------------------------------------------- segmentation
def _save(path: Path, arr: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), np.eye(4)), str(path))


def _box(shape, lo, hi):
    m = np.zeros(shape, np.uint8)
    m[lo:hi, lo:hi, 4:12] = 1
    return m


@pytest.fixture
def seg_study(tmp_path):
    a, b, r = (tmp_path / x for x in ("a", "b", "ref"))
    for d in (a, b, r):
        d.mkdir()
    for i in range(4):
        _save(r / f"case{i}.nii.gz", _box((20, 20, 16), 4, 14))
        _save(a / f"case{i}.nii.gz", _box((20, 20, 16), 4 + 1 + i % 2, 14))  # A: worse
        _save(b / f"case{i}.nii.gz", _box((20, 20, 16), 4, 14 - (i == 3)))  # B: better
    _save(a / "case9.nii.gz", _box((20, 20, 16), 4, 14))  # A only, no reference
    return a, b, r


def test_compare_segmentation_cli_end_to_end(seg_study, tmp_path):
    a, b, r = seg_study
    out = tmp_path / "out"
    res = run("compare", a, b, r, "-o", out, "--metrics", "dice,hd95,lesion_f1", "--bootstrap", "200")
    assert res.exit_code == 1, res.output  # case9 left out
    assert "left out case9" in res.output and "no reference" in res.output
    rows = {(r["metric"], r["class"]): r for r in csv.DictReader((out / "compare.csv").open())}
    dice = rows[("dice", "label_1")]
    assert int(dice["n"]) == 4 and float(dice["diff"]) > 0 and float(dice["mean_b"]) > float(dice["mean_a"])
    assert dice["test"] == "wilcoxon" and dice["reliable"] == "False"
    assert float(rows[("lesion_f1", "label_1")]["diff"]) == 0.0
    js = json.loads((out / "compare.json").read_text())
    assert js["cases"] == ["case0", "case1", "case2", "case3"] and "case9" in js["left_out"]


def test_compare_no_common_cases_is_one_clear_line(seg_study, tmp_path):
    a, b, r = seg_study
    other = tmp_path / "other"
    other.mkdir()
    _save(other / "x1.nii.gz", _box((20, 20, 16), 4, 14))
    res = run("compare", a, other, r)
    assert res.exit_code != 0
    err = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and str(a) in err[0] and str(other) in err[0] and "no case" in err[0]
    assert "Traceback" not in res.output


# ----------------------------------------------------------------------------- classification
def _csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_compare_classification_cli_end_to_end(tmp_path):
    rng = np.random.default_rng(4)
    n = 60
    y = rng.random(n) < 0.5
    pa = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, n), 0, 1)
    pb = np.clip(0.5 + (y - 0.5) * 0.9 + rng.normal(0, 0.15, n), 0, 1)
    ids = [f"c{i}" for i in range(n)]
    la = _csv(tmp_path / "labels.csv", ["case_id", "label"], [[c, int(v)] for c, v in zip(ids, y)])
    fa = _csv(tmp_path / "a.csv", ["case_id", "prob_neg", "prob_pos"], [[c, 1 - p, p] for c, p in zip(ids, pa)])
    fb = _csv(tmp_path / "b.csv", ["case_id", "prob_neg", "prob_pos"],
              [[c, 1 - p, p] for c, p in zip(ids[:-1], pb[:-1])])  # B lacks the last case
    out = tmp_path / "out"
    res = run("compare", fa, fb, la, "-o", out, "--bootstrap", "300")
    assert res.exit_code == 1, res.output
    js = json.loads((out / "compare.json").read_text())
    assert js["left_out"] == {"c59": "no prediction in 'b.csv'"}
    auc = next(r for r in js["rows"] if r["metric"] == "auc")
    keep = slice(0, n - 1)
    ref = delong_test(y[keep], pa[keep], pb[keep])
    assert auc["diff"] == pytest.approx(ref["diff"]) and auc["p_value"] == pytest.approx(ref["p"])
    assert auc["test"] == "delong" and auc["ci_low"] < auc["diff"] < auc["ci_high"] and auc["diff"] > 0
    acc = next(r for r in js["rows"] if r["metric"] == "accuracy")
    assert acc["n"] == n - 1 and acc["test"] == "wilcoxon"


def test_compare_classification_errors(tmp_path):
    la = _csv(tmp_path / "labels.csv", ["case_id", "label"], [["c1", 1], ["c2", 0]])
    fa = _csv(tmp_path / "a.csv", ["case_id", "prob_neg", "prob_pos"], [["x1", 0.2, 0.8]])
    res = run("compare", fa, fa, la)
    assert res.exit_code != 0 and "no case is in all of" in res.output and "a.csv" in res.output
    res = run("compare", fa, tmp_path / "b_folder", la)
    assert res.exit_code != 0 and "all be CSV files" in res.output
    res = run("compare", fa, tmp_path / "gone.csv", la)
    assert res.exit_code == 1 and f"PRED_B '{tmp_path / 'gone.csv'}' does not exist" in res.output
    res = run("compare", fa, fa, la, "--workers", 2)
    assert res.exit_code == 2 and "--workers applies to segmentation label maps only" in res.output
