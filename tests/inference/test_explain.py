"""Grad-CAM explanations: the map points at the evidence, lands on the input's grid, and
is written as readable files; wrong models and layers are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medimg.core import ConfigError, Image, TransformError
from medimg.core.affine import make_affine
from medimg.inference.explain import explain_image, grad_cam, grad_cam_scores, heatmap_files
from medimg.io import read_image
from medimg.models import MODELS
from medimg.transforms import Compose, Orient, RandomFlip, SpatialPad


def blob_batch(n: int, size: int, nd: int, seed: int, positive_only: bool = False):
    """Noise images; class 1 has a bright Gaussian blob at a random place (class 0 none).

    Returns images ``(n, 1, *size)``, classes ``(n,)`` and blob centres ``(n, nd)``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 1) + (size,) * nd, generator=g) * 0.3
    y = torch.ones(n, dtype=torch.long) if positive_only else torch.randint(0, 2, (n,), generator=g)
    centres = torch.randint(3, size - 3, (n, nd), generator=g).float()
    grids = torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * nd, indexing="ij")
    for i in range(n):
        if y[i]:
            d2 = sum((gr - c) ** 2 for gr, c in zip(grids, centres[i]))
            x[i, 0] += 2.0 * torch.exp(-d2 / (2 * 1.5**2))
    return x, y, centres


def train(model: nn.Module, size: int, nd: int, steps: int, lr: float = 3e-3) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()
    for step in range(steps):
        x, y, _ = blob_batch(16, size, nd, seed=100 + step)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class TinyCNN2d(nn.Module):
    """A small 2D classifier (a registered ResNet trains too slowly for a fast test)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(16, 2)
        self.cam_layer = "features"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def model_2d() -> nn.Module:
    torch.manual_seed(0)  # the initial weights too: they must not depend on the tests run before
    return train(TinyCNN2d(), 32, 2, steps=120)


@pytest.fixture(scope="module")
def model_3d() -> nn.Module:
    torch.manual_seed(0)
    net = MODELS.build({"name": "cnn3d", "in_channels": 1, "out_channels": 2, "spatial_dims": 3,
                        "channels": [8, 16, 32], "dropout": 0.0})
    return train(net, 16, 3, steps=30, lr=1e-3)


def _peak_distances(heat: torch.Tensor, centres: torch.Tensor) -> list[float]:
    out = []
    for h, c in zip(heat, centres):
        peak = np.unravel_index(int(h.argmax()), h.shape)
        out.append(float(np.linalg.norm(np.array(peak) - c.numpy())))
    return out


@pytest.mark.parametrize("nd", [2, 3])
def test_heat_map_maximum_is_at_the_blob(nd, model_2d, model_3d):
    model = model_2d if nd == 2 else model_3d
    size = 32 if nd == 2 else 16
    x, _, centres = blob_batch(8, size, nd, seed=7, positive_only=True)
    with torch.no_grad():
        assert (model(x).argmax(1) == 1).float().mean() >= 0.75, "the model did not learn the task"
    heat = grad_cam(model, x, target_class=1)
    assert heat.shape == (8,) + (size,) * nd
    assert float(heat.min()) == 0.0 and float(heat.amax(dim=tuple(range(1, nd + 1))).min()) == 1.0
    dist = _peak_distances(heat, centres)
    # the blob is 1.5 px wide; the map's maximum lies within a few pixels of its centre
    assert np.median(dist) <= 3.0, dist
    assert sum(d <= 4.5 for d in dist) >= 6, dist


def test_model_is_left_unchanged(model_2d):
    before = {k: v.clone() for k, v in model_2d.state_dict().items()}
    x, _, _ = blob_batch(2, 32, 2, seed=3)
    result = grad_cam_scores(model_2d, x)
    assert result.layer == "features" and len(result.target) == 2
    assert all(torch.equal(before[k], v) for k, v in model_2d.state_dict().items())
    assert all(not m._forward_hooks and not m._backward_hooks for m in model_2d.modules())
    assert model_2d.features[-1].inplace  # MONAI turns it off on its own copy only


def _png_pixels(path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


def test_explain_2d_writes_overlay(tmp_path, model_2d):
    pytest.importorskip("matplotlib")
    x, _, centres = blob_batch(1, 32, 2, seed=11, positive_only=True)
    image = Image(x[0], make_affine((0.5, 0.5)), meta={"case_id": "chest1"})
    expl = explain_image(model_2d, image, tmp_path, class_names=["normal", "blob"])
    assert expl.class_name == "blob" and expl.target == 1 and expl.probability > 0.5
    assert expl.heatmap.shape == (1, 32, 32) and expl.heatmap.kind == "probabilities"
    assert [p.name for p in expl.files] == heatmap_files("chest1", 2) == ["chest1_gradcam.png"]
    pixels = _png_pixels(expl.files[0])
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 300
    assert pixels[..., :3].reshape(-1, 3).std(axis=0).min() > 0.05  # not one colour


def test_explain_3d_nifti_on_input_grid(tmp_path, model_3d):
    pytest.importorskip("matplotlib")
    x, _, centres = blob_batch(1, 16, 3, seed=5, positive_only=True)
    # stored L-P-S with 2 mm voxels and 14^3: Orient and SpatialPad change the grid, and the
    # heat map must come back onto this one
    data = torch.flip(x[0], dims=(1, 2))[:, 1:15, 1:15, 1:15]
    centre = np.array([15 - centres[0, 0], 15 - centres[0, 1], centres[0, 2]]) - 1
    affine = make_affine((2.0, 2.0, 2.0), (10.0, -4.0, 7.0), np.diag([-1.0, -1.0, 1.0]))
    image = Image(data, affine)
    pre = Compose([Orient("RAS"), SpatialPad(16)])
    expl = explain_image(model_3d, image, tmp_path, preprocess=pre, case_id="vol")
    assert [p.name for p in expl.files] == ["vol_gradcam.nii.gz", "vol_gradcam.png"]
    back = read_image(expl.files[0])
    assert back.spatial_shape == (14, 14, 14) and back.same_grid(image)
    np.testing.assert_allclose(back.affine, image.affine, atol=1e-6)
    heat = back.data[0]
    assert float(heat.max()) == pytest.approx(1.0, abs=1e-6) and float(heat.min()) >= 0.0
    peak = np.array(np.unravel_index(int(heat.argmax()), heat.shape))
    assert np.linalg.norm(peak - centre) <= 3.0, (peak, centre)
    pixels = _png_pixels(expl.files[1])
    assert pixels.shape[1] >= 1000 and pixels[..., :3].reshape(-1, 3).std(axis=0).min() > 0.05


def test_explain_accepts_plain_preprocessing_specs(model_3d):
    x, _, _ = blob_batch(1, 16, 3, seed=9, positive_only=True)
    image = Image(x[0, :, :, :, 1:15], make_affine((1.0, 1.0, 1.0)))
    expl = explain_image(model_3d, image, None, preprocess=[{"name": "spatial_pad", "size": 16}])
    assert expl.heatmap.spatial_shape == (16, 16, 14) and expl.files == []


def test_explain_2d_through_padding_comes_back_to_the_input_grid(model_2d):
    x, _, centres = blob_batch(1, 32, 2, seed=13, positive_only=True)
    image = Image(x[0, :, 1:31, 2:30], make_affine((0.7, 0.7), (4.0, 9.0)))
    expl = explain_image(model_2d, image, None, preprocess=[{"name": "spatial_pad", "size": 32}])
    assert expl.heatmap.spatial_shape == (30, 28) and expl.heatmap.same_grid(image)
    peak = np.unravel_index(int(expl.heatmap.data[0].argmax()), (30, 28))
    assert np.linalg.norm(np.array(peak) - (centres[0].numpy() - [1, 2])) <= 3.0


def test_random_preprocessing_is_refused(model_3d):
    image = Image(torch.zeros(1, 16, 16, 16))
    with pytest.raises(TransformError, match="random_flip.*deterministic"):
        explain_image(model_3d, image, None, preprocess=Compose([RandomFlip()]))


def test_segmentation_model_is_refused():
    seg = MODELS.build({"name": "basic_unet", "in_channels": 1, "out_channels": 2, "spatial_dims": 2,
                        "features": [4, 4, 8, 8, 16, 4]})
    with pytest.raises(ConfigError, match="explains classification models") as info:
        grad_cam(seg, torch.zeros(1, 1, 32, 32), layer="conv_0")
    assert "\n" not in info.value.message


def test_unknown_layer_lists_valid_names(model_2d):
    with pytest.raises(ConfigError) as info:
        grad_cam(model_2d, torch.zeros(1, 1, 32, 32), layer="layer9")
    msg = info.value.message
    assert "\n" not in msg and "layer 'layer9'" in msg and "features, features.0" in msg and "fc" in msg
    assert info.value.hint_for("cli") == "give --layer with one of these names"


def test_layer_without_spatial_axes_is_refused(model_2d):
    with pytest.raises(ConfigError, match="layer 'fc'.*without the input's 2 spatial axes"):
        grad_cam(model_2d, torch.zeros(1, 1, 32, 32), layer="fc")


def test_target_class_out_of_range(model_2d):
    with pytest.raises(ConfigError, match="target class 5 does not exist.*classes 0..1"):
        grad_cam(model_2d, torch.zeros(1, 1, 32, 32), target_class=5)


@pytest.mark.parametrize("name,nd", [
    ("resnet18", 2),
    pytest.param("densenet121", 2, marks=pytest.mark.slow),
    pytest.param("densenet121_3d", 3, marks=pytest.mark.slow),
])
def test_registered_models_default_layer(name, nd):
    """Every classifier's cam_layer works, DenseNet's too (its in-place ReLU follows the layer)."""
    params = {"small_input": True} if name == "resnet18" else {}
    model = MODELS.build({"name": name, "in_channels": 1, "out_channels": 3, "spatial_dims": nd, **params})
    heat = grad_cam(model, torch.rand((1, 1) + (32,) * nd))
    assert heat.shape == (1,) + (32,) * nd and float(heat.max()) <= 1.0
