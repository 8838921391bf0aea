"""Every registered model builds and runs a forward pass with the right output shape."""

from __future__ import annotations

import pytest
import torch

from medimg.core.errors import ConfigError, UnknownComponentError
from medimg.models import MODELS, create_model, model_summary, model_task

# smallest input each model accepts (divisible by its total down-sampling; the bottleneck
# keeps more than one voxel for instance norm)
SIZES = {"unet": 16, "basic_unet": 32, "segresnet": 16, "dynunet": 16, "attention_unet": 16, "swin_unetr": 64}
# parameters that keep a model tiny (dynunet: its levels derived from the 16-voxel patch)
TINY = {"dynunet": lambda dims: {"roi_size": [16] * dims, "filters": [4, 8, 16]},
        "swin_unetr": lambda dims: {"feature_size": 12, "depths": [1, 1, 1, 1]}}
# the classification networks have their own loop (test_classification_models.py)
SEGMENTATION = [n for n in MODELS.list() if model_task(n) == "segmentation"]


def test_public_api():
    import medimg.models as m

    assert set(m.__all__) == {"MODELS", "create_model", "model_summary", "TASKS", "model_task",
                              "WeightsReport", "load_weights"}


@pytest.mark.parametrize("name", SEGMENTATION)
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_every_model_forward(name, spatial_dims):
    size = SIZES.get(name, 32)
    torch.manual_seed(0)
    tiny = TINY[name](spatial_dims) if name in TINY else {}
    model = create_model(name, in_channels=2, out_channels=3, spatial_dims=spatial_dims, **tiny)
    x = torch.randn(2, 2, *([size] * spatial_dims))
    with torch.no_grad():
        y = model.eval()(x)
    assert y.shape == (2, 3, *([size] * spatial_dims))
    assert torch.isfinite(y).all()
    info = model_summary(model)
    assert info["parameters"] > 0 and info["trainable"] == info["parameters"]


def test_registry_covers_documented_models():
    assert {"unet", "basic_unet", "segresnet", "dynunet", "attention_unet", "swin_unetr"} <= set(MODELS.list())


def test_unet_defaults_are_the_documented_ones():
    # 16-32-64-128 residual UNet: 0.6 M parameters with one residual unit per block,
    # 1.19 M with two (the variant docs/performance.md times)
    n1 = model_summary(create_model("unet", in_channels=1, out_channels=2))["parameters"]
    n2 = model_summary(create_model("unet", in_channels=1, out_channels=2, num_res_units=2))["parameters"]
    assert 0.55e6 < n1 < 0.65e6
    assert 1.15e6 < n2 < 1.25e6


def test_unknown_model_suggests_close_name():
    with pytest.raises(UnknownComponentError) as exc:
        create_model("unett")
    assert "did you mean 'unet'" in str(exc.value)


def test_unknown_parameter_is_named_with_suggestion():
    with pytest.raises(ConfigError) as exc:
        create_model("unet", in_channels=1, out_channels=2, chanels=(8, 16))
    msg = str(exc.value)
    assert "'chanels'" in msg and "did you mean 'channels'" in msg


def test_unet_strides_length_checked():
    with pytest.raises(ConfigError, match=r"strides must have one value fewer than channels \(2\), got 1"):
        create_model("unet", channels=(8, 16, 32), strides=(2,))
