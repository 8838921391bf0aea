"""DynUNet (nnU-Net levels from the patch, deep supervision), Attention U-Net and SwinUNETR
parameters and their errors."""

from __future__ import annotations

import sys

import pytest
import torch

from medimg.core.errors import ConfigError, MissingDependencyError
from medimg.models import create_model
from medimg.models.dynunet import dynunet_levels
from medimg.models.registry import with_roi_size


def test_levels_follow_nnunet_rules():
    kernels, strides = dynunet_levels([128, 128, 128])
    assert strides == [[1, 1, 1]] + [[2, 2, 2]] * 5  # five halvings down to 4 voxels
    assert kernels == [[3, 3, 3]] * 6
    # an axis stops halving at 4 voxels (or when odd); the others go on
    assert dynunet_levels([32, 64, 16])[1] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 1], [1, 2, 1]]
    assert dynunet_levels([20, 20])[1] == [[1, 1], [2, 2], [2, 2]]  # 20 -> 10 -> 5 (odd: stop)


def test_derived_from_roi_size_and_deep_supervision_outputs():
    model = create_model("dynunet", in_channels=1, out_channels=3, spatial_dims=3, roi_size=[32, 32, 16],
                         filters=[4, 8, 16, 32], deep_supervision=True)
    assert [list(s) for s in model.strides] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 1]]
    x = torch.randn(2, 1, 32, 32, 16)
    out = model.train()(x)
    assert out.shape == (2, 3, 3, 32, 32, 16)  # full resolution + 2 coarser levels (4 levels - 2)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 3, 32, 32, 16)  # evaluation: full resolution only
    # without deep supervision a training forward is the plain logits
    plain = create_model("dynunet", in_channels=1, out_channels=3, roi_size=[32, 32, 16], filters=[4, 8, 16, 32])
    assert plain.train()(x).shape == (2, 3, 32, 32, 16)


def test_instance_norm_is_affine_as_in_nnunet():
    model = create_model("dynunet", roi_size=[16, 16, 16], filters=[4, 8, 16])
    norms = [m for m in model.modules() if isinstance(m, torch.nn.InstanceNorm3d)]
    assert norms and all(m.affine for m in norms)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"roi_size": [18, 18, 18], "kernel_size": [3, 3, 3], "strides": [1, 2, 2]},
         r"inference.roi_size \[18, 18, 18\] is not divisible by the total down-sampling \[4, 4, 4\]"),
        ({"strides": [1, 2, 2]}, "give both model.kernel_size and model.strides, or neither"),
        ({"kernel_size": [3, 3], "strides": [1, 2, 2]}, "kernel_size has 2 levels but strides has 3"),
        ({"roi_size": [16, 16, 16], "filters": [4, 8]}, "filters has 2 values but the network has 3 levels"),
        ({"roi_size": [8, 8, 8], "deep_supervision": True}, "deep_supervision needs at least 3 levels, got 2"),
        ({"roi_size": [32, 32, 32], "deep_supervision": True, "deep_supr_num": 3},
         "deep_supr_num must be between 1 and 2 for 4 levels, got 3"),
        ({"roi_size": [16, 16]}, "roi_size has 2 values but spatial_dims is 3"),
    ],
)
def test_dynunet_errors_say_what_to_change(params, message):
    with pytest.raises(ConfigError, match=message):
        create_model("dynunet", **params)


def test_with_roi_size_fills_only_models_that_take_it():
    assert with_roi_size("dynunet", {"name": "dynunet"}, (16, 16, 8))["roi_size"] == [16, 16, 8]
    assert with_roi_size("dynunet", {"roi_size": [8, 8, 8]}, (16, 16, 8))["roi_size"] == [8, 8, 8]
    assert "roi_size" not in with_roi_size("unet", {"channels": [4, 8]}, (16, 16, 8))


def test_attention_unet_strides_checked():
    with pytest.raises(ConfigError, match=r"'attention_unet': strides must have one value fewer than channels \(2\)"):
        create_model("attention_unet", channels=[8, 16, 32], strides=[2])


def test_swin_unetr_feature_size_checked():
    with pytest.raises(ConfigError, match="feature_size must be a multiple of 12, got 16"):
        create_model("swin_unetr", feature_size=16)


def test_swin_unetr_without_einops_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "einops", None)  # import einops -> ImportError
    with pytest.raises(MissingDependencyError) as exc:
        create_model("swin_unetr")
    assert "model 'swin_unetr' needs the optional package 'einops'" in str(exc.value)
    assert exc.value.hint == "pip install 'medimg[swin]'"
