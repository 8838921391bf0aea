"""Lesion-wise metrics on synthetic masks whose lesions are known."""

import math

import numpy as np
import pytest

from medimg.metrics import METRICS, compute_metrics, match_lesions

LESION = ["lesion_sensitivity", "lesion_precision", "lesion_f1", "lesion_dice", "lesion_fp", "lesion_fn"]


def _two_lesions_one_missed_one_fp():
    ref = np.zeros((40, 40, 40), np.uint8)
    pred = np.zeros_like(ref)
    ref[5:15, 5:15, 5:15] = 1  # lesion A, 1000 voxels: found, 700 voxels shared
    ref[25:30, 25:30, 25:30] = 1  # lesion B: missed
    pred[5:15, 5:15, 8:18] = 1
    pred[30:35, 2:7, 30:35] = 1  # a false positive
    return pred, ref


def test_two_lesions_one_missed_one_false_positive():
    pred, ref = _two_lesions_one_missed_one_fp()
    m = match_lesions(pred, ref)
    assert (m.n_ref, m.n_pred, m.tp, m.fn, m.fp) == (2, 2, 1, 1, 1)
    assert m.dice == pytest.approx([0.7, 0.0])  # 2*700 / (1000 + 1000), then the missed one
    v = compute_metrics(pred, ref, [1], LESION + ["lesion_hd95"])[1]
    assert v["lesion_sensitivity"] == 0.5
    assert v["lesion_precision"] == 0.5
    assert v["lesion_f1"] == pytest.approx(2 * 1 / (2 + 1 + 1))
    assert v["lesion_dice"] == pytest.approx(0.7 / 3)  # the FP adds a 0 entry
    assert (v["lesion_fp"], v["lesion_fn"]) == (1, 1)
    hd_a = compute_metrics(pred * (np.arange(40)[None, None, :] < 20), ref * (np.arange(40)[:, None, None] < 20),
                           [1], ["hd95"])[1]["hd95"]
    diag = math.sqrt(3) * 40
    assert v["lesion_hd95"] == pytest.approx((hd_a + 2 * diag) / 3)


def test_min_overlap_min_size_and_connectivity():
    pred, ref = _two_lesions_one_missed_one_fp()
    # 70% of lesion A covered: detected at 0.7, missed at 0.8
    assert match_lesions(pred, ref, min_overlap=0.7).tp == 1
    assert match_lesions(pred, ref, min_overlap=0.8).tp == 0
    # lesion B and the FP have 125 voxels: a 126-voxel minimum removes both
    m = match_lesions(pred, ref, min_voxels=126)
    assert (m.n_ref, m.n_pred, m.fp, m.fn) == (1, 1, 0, 0)
    assert match_lesions(pred, ref, spacing=(1, 1, 1), min_ml=0.126).n_ref == 1
    # two voxels touching by a corner: one lesion at connectivity 3, two at 1
    diag = np.zeros((4, 4, 4), bool)
    diag[1, 1, 1] = diag[2, 2, 2] = True
    assert match_lesions(diag, diag, connectivity=3).n_ref == 1
    assert match_lesions(diag, diag, connectivity=1).n_ref == 2
    with pytest.raises(ValueError, match="connectivity"):
        match_lesions(diag, diag, connectivity=4)


def test_empty_conventions():
    z = np.zeros((8, 8, 8), np.uint8)
    one = z.copy()
    one[2:4, 2:4, 2:4] = 1
    both = compute_metrics(z, z, [1], LESION + ["lesion_hd95"], empty_score=1.0)[1]
    assert both["lesion_f1"] == 1.0 and both["lesion_dice"] == 1.0 and both["lesion_fp"] == 0
    assert math.isnan(both["lesion_hd95"])
    fp_only = compute_metrics(one, z, [1], LESION)[1]
    assert math.isnan(fp_only["lesion_sensitivity"]) and fp_only["lesion_precision"] == 0
    assert fp_only["lesion_dice"] == 0 and fp_only["lesion_fp"] == 1
    missed = compute_metrics(z, one, [1], LESION)[1]
    assert math.isnan(missed["lesion_precision"]) and missed["lesion_sensitivity"] == 0


def test_registered_with_parameters():
    assert "lesion_f1" in METRICS.list()
    pred, ref = _two_lesions_one_missed_one_fp()
    v = compute_metrics(pred, ref, [1], ["lesion_f1"], metric_params={"lesion_f1": {"min_voxels": 126}})[1]
    assert v["lesion_f1"] == 1.0
    with pytest.raises(ValueError, match="no parameter"):
        compute_metrics(pred, ref, [1], ["lesion_f1"], metric_params={"lesion_f1": {"min_size": 3}})


def test_foreground_box_grows_by_one_voxel_and_clips():
    from medimg.metrics.surface import foreground_box

    m = np.zeros((6, 5), bool)
    assert foreground_box(m) is None
    m[0, 2] = m[3, 3] = True
    assert foreground_box(m) == (slice(0, 5), slice(1, 5))
    m[5, 4] = True
    assert foreground_box(m) == (slice(0, 6), slice(1, 5))
