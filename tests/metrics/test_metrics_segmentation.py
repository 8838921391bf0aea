"""Functional segmentation metrics: hand-computed values, known geometry, MONAI equality."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from medimg.core import UnknownComponentError
from medimg.metrics import (
    METRICS,
    assd_per_class,
    compute_metrics,
    confusion_counts,
    confusion_matrix,
    dice_per_class,
    hausdorff_per_class,
    jaccard_per_class,
    nsd_per_class,
    surface_points,
)

from tests.conftest import shared_path

# pred/ref of six voxels, three classes; counts worked out by hand:
#   class 0: TP 2 (voxels 0, 5), FP 0, FN 1 (voxel 4)   -> Dice 4/5, Jaccard 2/3
#   class 1: TP 1 (voxel 1), FP 1 (voxel 2), FN 0       -> Dice 2/3, Jaccard 1/2
#   class 2: TP 1 (voxel 3), FP 1 (voxel 4), FN 1 (2)  -> Dice 1/2, Jaccard 1/3
PRED = np.array([0, 1, 1, 2, 2, 0], dtype=np.uint8)
REF = np.array([0, 1, 2, 2, 0, 0], dtype=np.uint8)


def test_confusion_matrix_by_hand():
    m = confusion_matrix(PRED, REF, 3)
    expected = np.array([[2, 0, 1], [0, 1, 0], [0, 1, 1]])  # rows ref, columns pred
    np.testing.assert_array_equal(m, expected)
    c = confusion_counts(PRED, REF, 3)
    np.testing.assert_array_equal(c.tp, [2, 1, 1])
    np.testing.assert_array_equal(c.fp, [0, 1, 1])
    np.testing.assert_array_equal(c.fn, [1, 0, 1])
    np.testing.assert_array_equal(c.tn, [3, 4, 3])


def test_dice_and_jaccard_by_hand():
    np.testing.assert_allclose(dice_per_class(PRED, REF, 3), [4 / 5, 2 / 3, 1 / 2])
    np.testing.assert_allclose(jaccard_per_class(PRED, REF, 3), [2 / 3, 1 / 2, 1 / 3])


def test_dice_accepts_torch_bool_fortran_and_any_shape():
    expected = dice_per_class(PRED, REF, 3)
    np.testing.assert_allclose(dice_per_class(torch.from_numpy(PRED), torch.from_numpy(REF), 3), expected)
    np.testing.assert_allclose(
        dice_per_class(torch.from_numpy(PRED).long().reshape(2, 3), torch.from_numpy(REF).reshape(2, 3), 3),
        expected,
    )
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, (7, 8, 9)).astype(np.int16)
    b = rng.integers(0, 4, (7, 8, 9)).astype(np.int16)
    np.testing.assert_allclose(
        dice_per_class(np.asfortranarray(a), np.asfortranarray(b), 4), dice_per_class(a, b, 4)
    )
    m = a == 1
    r = b == 1
    assert dice_per_class(m, r, 2)[1] == pytest.approx(2 * (m & r).sum() / (m.sum() + r.sum()))
    # Many classes take the wide code path (K*K > 256): same answer as class by class.
    x = rng.integers(0, 40, (20, 20, 5))
    y = rng.integers(0, 40, (20, 20, 5))
    d = dice_per_class(x, y, 40)
    for c in (0, 7, 39):
        ref = 2 * ((x == c) & (y == c)).sum() / ((x == c).sum() + (y == c).sum())
        assert d[c] == pytest.approx(ref)


def test_dice_empty_conventions():
    zeros = np.zeros((4, 4), np.uint8)
    one = zeros.copy()
    one[1, 1] = 1
    assert dice_per_class(zeros, zeros, 2)[1] == 1.0  # both empty: perfect by default
    assert math.isnan(dice_per_class(zeros, zeros, 2, empty_score=float("nan"))[1])
    assert dice_per_class(zeros, one, 2)[1] == 0.0
    assert dice_per_class(one, zeros, 2)[1] == 0.0
    assert jaccard_per_class(one, zeros, 2)[1] == 0.0


def test_bad_inputs_have_clear_errors():
    with pytest.raises(ValueError, match=r"label 3 outside 0..2 \(num_classes=3\)"):
        dice_per_class(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="same shape.*pred \\(2,\\) and ref \\(3,\\)"):
        dice_per_class(np.array([0, 1]), np.array([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="negative label -1"):
        dice_per_class(np.array([0, -1]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="not whole numbers.*argmax"):
        dice_per_class(np.array([0.2, 0.9]), np.array([0, 1]), 2)
    # whole-number floats (label maps stored as float NIfTI) are fine
    assert dice_per_class(np.array([0.0, 1.0]), np.array([0, 1]), 2)[1] == 1.0


def _cube(shape, lo, hi):
    a = np.zeros(shape, np.uint8)
    a[tuple(slice(l, h) for l, h in zip(lo, hi))] = 1
    return a


def test_surface_points_are_face_boundary_voxels():
    cube = _cube((7, 7, 7), (1, 1, 1), (6, 6, 6))  # 5^3 cube: 125 - 3^3 interior = 98
    pts = surface_points(cube, [1])[1]
    assert len(pts) == 98
    # A mask touching the array border: border voxels count as surface (outside = other).
    full = np.ones((3, 3, 3), np.uint8)
    assert len(surface_points(full, [1])[1]) == 26
    sp = surface_points(cube, [1], spacing=(0.5, 1.0, 2.0))[1]
    np.testing.assert_allclose(sp.min(axis=0), [0.5, 1.0, 2.0])
    np.testing.assert_allclose(sp.max(axis=0), [2.5, 5.0, 10.0])


@pytest.mark.parametrize("axis,k", [(0, 3), (2, 2), (1, 4)])
def test_offset_cubes_hausdorff_is_offset_times_spacing(axis, k):
    spacing = (0.5, 1.0, 2.0)
    shape = (24, 24, 24)
    lo = [4, 4, 4]
    hi = [12, 12, 12]
    a = _cube(shape, lo, hi)
    lo[axis] += k
    hi[axis] += k
    b = _cube(shape, lo, hi)
    hd = hausdorff_per_class(a, b, 2, spacing)
    assert math.isnan(hd[0])  # background is not scored
    assert hd[1] == pytest.approx(k * spacing[axis])
    assert hausdorff_per_class(b, a, 2, spacing)[1] == pytest.approx(k * spacing[axis])
    assert hausdorff_per_class(a, b, 2, spacing, percentile=95)[1] <= hd[1]
    assert hausdorff_per_class(a, a, 2, spacing)[1] == 0.0
    assert assd_per_class(a, a, 2, spacing)[1] == 0.0
    assert nsd_per_class(a, b, 2, spacing, tolerance_mm=k * spacing[axis])[1] == 1.0
    assert nsd_per_class(a, b, 2, spacing, tolerance_mm=k * spacing[axis] - 1e-6)[1] < 1.0


def test_empty_mask_distance_conventions():
    a = _cube((10, 10, 10), (2, 2, 2), (5, 5, 5))
    z = np.zeros_like(a)
    out = compute_metrics(a, z, [1], ["dice", "hd", "hd95", "assd", "nsd", "precision", "recall"])[1]
    assert out["dice"] == 0 and out["nsd"] == 0
    assert out["hd"] == math.inf and out["hd95"] == math.inf and out["assd"] == math.inf
    assert out["precision"] == 0 and math.isnan(out["recall"])
    out = compute_metrics(z, a, [1], ["hd", "assd", "nsd", "precision", "recall"])[1]
    assert out["hd"] == math.inf and out["assd"] == math.inf and out["nsd"] == 0
    assert math.isnan(out["precision"]) and out["recall"] == 0
    out = compute_metrics(z, z, [1], ["dice", "hd", "hd95", "assd", "nsd", "volume_ml"])[1]
    assert out["dice"] == 1.0 and out["nsd"] == 1.0 and out["volume_ml"] == 0.0
    assert all(math.isnan(out[m]) for m in ("hd", "hd95", "assd"))
    out = compute_metrics(z, z, [1], ["dice", "nsd"], empty_score=float("nan"))[1]
    assert math.isnan(out["dice"]) and math.isnan(out["nsd"])


def test_volumes_use_spacing():
    pred = _cube((10, 10, 10), (0, 0, 0), (8, 8, 8))  # 512 voxels
    ref = _cube((10, 10, 10), (0, 0, 0), (8, 8, 4))  # 256 voxels
    out = compute_metrics(pred, ref, [1], ["volume_ml", "volume_ref_ml", "volume_diff_ml"],
                          spacing=(0.5, 1.0, 2.0))[1]  # 1 mm^3 per voxel
    assert out == pytest.approx({"volume_ml": 0.512, "volume_ref_ml": 0.256, "volume_diff_ml": 0.256})


def test_registry_names_params_and_errors():
    for name in ("dice", "jaccard", "precision", "recall", "hd95", "hd", "assd", "nsd",
                 "volume_ml", "volume_diff_ml"):
        assert name in METRICS
    assert METRICS.get("nsd").defaults == {"tolerance_mm": 2.0}
    with pytest.raises(UnknownComponentError, match="did you mean 'hd95'"):
        METRICS.get("hd59")
    a = _cube((20, 20, 20), (4, 4, 4), (12, 12, 12))
    b = _cube((20, 20, 20), (5, 4, 4), (13, 12, 12))
    tight = compute_metrics(a, b, [1], ["nsd"], metric_params={"nsd": {"tolerance_mm": 0.5}})[1]["nsd"]
    loose = compute_metrics(a, b, [1], ["nsd"], metric_params={"nsd": {"tolerance_mm": 1.0}})[1]["nsd"]
    assert tight < loose == 1.0
    # registry entries are callable per class: index 0 (background) NaN
    by_call = METRICS.get("nsd")(a, b, 2, tolerance_mm=0.5)
    assert math.isnan(by_call[0]) and by_call[1] == tight
    np.testing.assert_allclose(METRICS.get("dice")(a, b, 2)[1:], dice_per_class(a, b, 2)[1:])
    with pytest.raises(ValueError, match="metric 'nsd' has no parameter.*tolerance"):
        compute_metrics(a, b, [1], ["nsd"], metric_params={"nsd": {"tol": 1.0}})
    with pytest.raises(ValueError, match="spacing must have 3 values"):
        compute_metrics(a, b, [1], ["hd"], spacing=(1.0, 1.0))


def _blobs(shape, seed, num_classes=3):
    """A random-ish multi-class label map: smoothed noise thresholded into classes."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal(shape), 2.0)
    lab = np.zeros(shape, np.uint8)
    edges = np.quantile(noise, np.linspace(0.55, 0.95, num_classes))
    for c, t in enumerate(edges[:-1], start=1):
        lab[noise > t] = c
    return lab


def _onehot(lab, k):
    return torch.from_numpy(np.stack([lab == c for c in range(k)])[None].astype(np.float32))


@pytest.mark.parametrize("shape,spacing", [((40, 36, 30), (0.8, 1.1, 2.5)), ((64, 50), (0.7, 1.3))])
def test_equal_to_monai(shape, spacing):
    """Same values as MONAI 1.6.1 (1e-4) on random-ish multi-class pairs, borders included."""
    monai_metrics = pytest.importorskip("monai.metrics")
    k = 4
    pred = _blobs(shape, 0, 3)
    ref = _blobs(shape, 1, 3)
    pred[(0,) * len(shape)] = 2  # a class touching the array's corner: border convention
    pred[(slice(3, 6),) * len(shape)] = 3  # a class in pred only: Dice 0, HD/ASSD inf, NSD 0
    ours = compute_metrics(pred, ref, [1, 2, 3], ["dice", "hd", "hd95", "assd", "nsd"], spacing=spacing,
                           metric_params={"nsd": {"tolerance_mm": 1.5}})
    P, R = _onehot(pred, k), _onehot(ref, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = {
            # ignore_empty=False: MONAI's default gives NaN wherever the reference is empty,
            # even for a false-positive class; medimg's convention is 0 there (documented)
            "dice": monai_metrics.compute_dice(P, R, include_background=False, ignore_empty=False)[0],
            "hd": monai_metrics.compute_hausdorff_distance(P, R, spacing=list(spacing))[0],
            "hd95": monai_metrics.compute_hausdorff_distance(P, R, percentile=95, spacing=list(spacing))[0],
            "assd": monai_metrics.compute_average_surface_distance(P, R, symmetric=True, spacing=list(spacing))[0],
            "nsd": monai_metrics.compute_surface_dice(P, R, [1.5] * (k - 1), spacing=list(spacing))[0],
        }
    for m, vals in theirs.items():
        for i, c in enumerate((1, 2, 3)):
            if (m, c) == ("hd95", 3):  # MONAI: torch.quantile of all-inf distances is NaN
                assert math.isnan(float(vals[i])) and ours[c][m] == math.inf
                continue
            assert ours[c][m] == pytest.approx(float(vals[i]), abs=1e-4, rel=1e-5), (m, c)
    assert ours[3]["hd"] == math.inf and ours[3]["dice"] == 0.0


def test_spleen_fixed_point():
    """Dice/Jaccard from the spleen fixed point in docs/performance.md; HD95, ASSD, NSD@2mm as MONAI 1.6.1 gives them."""
    nib = pytest.importorskip("nibabel")
    auto = nib.load(str(shared_path("metrics", "spleen1_label_auto.nii.gz")))
    gt = nib.load(str(shared_path("metrics", "spleen1_label_gt.nii.gz")))
    spacing = [float(z) for z in auto.header.get_zooms()]
    out = compute_metrics(np.asanyarray(auto.dataobj), np.asanyarray(gt.dataobj), [1],
                          ["dice", "jaccard", "hd95", "assd", "nsd"], spacing=spacing)[1]
    assert out["dice"] == pytest.approx(0.88689, abs=1e-5)
    assert out["jaccard"] == pytest.approx(0.79677, abs=1e-5)
    assert out["hd95"] == pytest.approx(9.298, abs=1e-3)
    assert out["assd"] == pytest.approx(1.523, abs=1e-3)
    assert out["nsd"] == pytest.approx(0.7710, abs=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dice_on_gpu_tensors_matches_cpu():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, (2, 30, 30, 30))
    b = rng.integers(0, 4, (2, 30, 30, 30))
    gpu = dice_per_class(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda(), 4)
    np.testing.assert_allclose(gpu, dice_per_class(a, b, 4))
    with pytest.raises(ValueError, match="outside 0..3"):
        dice_per_class(torch.from_numpy(a).cuda() + 1, torch.from_numpy(b).cuda(), 4)
