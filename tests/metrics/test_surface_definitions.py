"""Surface distances by MONAI's definition (default) and the surface-distance package's,
each checked against its own library on the shared spleen pair; empty-mask conventions."""

import math
import warnings

import numpy as np
import pytest

from medimg.metrics import compute_metrics
from tests.conftest import shared_path


def _spleen():
    nib = pytest.importorskip("nibabel")
    auto = nib.load(str(shared_path("metrics", "spleen1_label_auto.nii.gz")))
    gt = nib.load(str(shared_path("metrics", "spleen1_label_gt.nii.gz")))
    spacing = tuple(float(z) for z in auto.header.get_zooms())
    return np.asarray(auto.dataobj).astype(np.uint8), np.asarray(gt.dataobj).astype(np.uint8), spacing


@pytest.mark.slow
def test_monai_definition_equals_monai_on_spleen():
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    pred, ref, spacing = _spleen()
    ours = compute_metrics(pred, ref, [1], ["hd95", "assd", "nsd"], spacing=spacing, surface="monai")[1]
    box = tuple(slice(max(int(i.min()) - 2, 0), int(i.max()) + 3) for i in np.nonzero(pred | ref))  # same surfaces
    P = torch.from_numpy(np.stack([pred[box] == 0, pred[box] == 1])[None].astype(np.float32))
    R = torch.from_numpy(np.stack([ref[box] == 0, ref[box] == 1])[None].astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = {
            "hd95": float(compute_hausdorff_distance(P, R, percentile=95, spacing=list(spacing))),
            "assd": float(compute_average_surface_distance(P, R, symmetric=True, spacing=list(spacing))),
            "nsd": float(compute_surface_dice(P, R, [2.0], spacing=list(spacing))),
        }
    for m in theirs:
        assert ours[m] == pytest.approx(theirs[m], rel=1e-5), m
    assert ours["hd95"] == pytest.approx(9.298, abs=1e-3)
    assert ours["assd"] == pytest.approx(1.523, abs=1e-3)
    assert ours["nsd"] == pytest.approx(0.7710, abs=1e-4)


def test_deepmind_definition_equals_the_package_on_spleen():
    sd = pytest.importorskip("surface_distance", reason="surface-distance (medimg[surface]) not installed")
    pred, ref, spacing = _spleen()
    ours = compute_metrics(pred, ref, [1], ["hd", "hd95", "assd", "nsd"], spacing=spacing, surface="deepmind")[1]
    d = sd.compute_surface_distances(ref.astype(bool), pred.astype(bool), spacing)
    assert ours["hd95"] == pytest.approx(sd.compute_robust_hausdorff(d, 95), rel=1e-6)
    assert ours["hd"] == pytest.approx(sd.compute_robust_hausdorff(d, 100), rel=1e-6)
    assert ours["nsd"] == pytest.approx(sd.compute_surface_dice_at_tolerance(d, 2.0), rel=1e-6)
    to_pred, to_ref = sd.compute_average_surface_distance(d)  # the two directed area-weighted means
    assert min(to_pred, to_ref) < ours["assd"] < max(to_pred, to_ref)
    a_r, a_p = d["surfel_areas_gt"].sum(), d["surfel_areas_pred"].sum()
    assert ours["assd"] == pytest.approx((to_pred * a_r + to_ref * a_p) / (a_r + a_p), rel=1e-6)
    monai = compute_metrics(pred, ref, [1], ["hd95"], spacing=spacing)[1]
    assert abs(ours["hd95"] - monai["hd95"]) > 0.1  # the definitions do differ


@pytest.mark.parametrize("surface", ["monai", "deepmind"])
def test_empty_conventions_both_definitions(surface):
    if surface == "deepmind":
        pytest.importorskip("surface_distance")
    z = np.zeros((6, 6, 6), np.uint8)
    one = z.copy()
    one[2:4, 2:4, 2:4] = 1
    names = ["dice", "hd95", "assd", "nsd"]
    both = compute_metrics(z, z, [1], names, surface=surface, empty_score=math.nan)[1]
    assert all(math.isnan(both[m]) for m in names)
    assert compute_metrics(z, z, [1], names, surface=surface)[1]["dice"] == 1.0
    single = compute_metrics(one, z, [1], names, surface=surface)[1]
    assert single["dice"] == 0 and single["nsd"] == 0
    assert single["hd95"] == math.inf and single["assd"] == math.inf


def test_unknown_surface_definition():
    z = np.zeros((3, 3), np.uint8)
    with pytest.raises(ValueError, match="monai, deepmind"):
        compute_metrics(z, z, [1], ["hd95"], surface="medpy")


def test_config_evaluation_conventions():
    from pydantic import ValidationError

    from medimg.core.spec import EvaluationSection

    sec = EvaluationSection(empty_score=float("nan"), surface_distance="deepmind")
    assert math.isnan(sec.empty_score) and sec.surface_distance == "deepmind"
    assert EvaluationSection().surface_distance == "monai" and EvaluationSection().empty_score == 1.0
    with pytest.raises(ValidationError, match="monai"):
        EvaluationSection(surface_distance="medpy")


def test_cli_empty_and_surface_options(tmp_path):
    import nibabel as nib
    from typer.testing import CliRunner

    from medimg.cli import app

    for d in ("p", "r"):
        (tmp_path / d).mkdir()
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[2:5, 2:5, 2:5] = 1
    nib.save(nib.Nifti1Image(lab, np.eye(4)), str(tmp_path / "p" / "c1.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros_like(lab), np.eye(4)), str(tmp_path / "p" / "c2.nii.gz"))
    nib.save(nib.Nifti1Image(lab, np.eye(4)), str(tmp_path / "r" / "c1.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros_like(lab), np.eye(4)), str(tmp_path / "r" / "c2.nii.gz"))
    args = ["evaluate", str(tmp_path / "p"), str(tmp_path / "r"), "--metrics", "dice", "--bootstrap", "0"]
    out = tmp_path / "o"
    res = CliRunner().invoke(app, [*args, "--empty", "nan", "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = (out / "metrics.csv").read_text()
    assert "c2" in rows and "nan" in rows.lower()
    res = CliRunner().invoke(app, [*args, "--empty", "2"])
    assert res.exit_code == 2 and "--empty" in res.output
    res = CliRunner().invoke(app, [*args, "--surface-distance", "medpy"])
    assert res.exit_code == 2 and "monai, deepmind" in res.output
