"""Batched augmentation: the same transforms as the per-item path, applied to whole batches."""

import numpy as np
import pytest
import torch

from medimg.core.image import Image
from medimg.core.sample import Sample
from medimg.transforms import RandomAffine, RandomCrop, RandomFlip, RandomIntensity
from medimg.transforms import functional as Fn
from medimg.transforms.batch import BatchAugment, batch_supported


def _centroid(x: torch.Tensor) -> np.ndarray:
    """Intensity centroid (row, col) of a (H, W) image."""
    grid = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in x.shape], indexing="ij")
    w = x.double()
    return np.array([float((g * w).sum() / w.sum()) for g in grid])


def _blob(n: int = 32) -> torch.Tensor:
    x = torch.zeros(1, n, n)
    x[0, 12:18, 10:14] = 1.0
    return x


def test_supported_steps_only():
    assert batch_supported([RandomFlip(axes=[0]), RandomAffine(), RandomIntensity()])
    assert not batch_supported([RandomCrop([8, 8])])
    assert not batch_supported([RandomFlip(axes=[0], keys=["image"])])
    with pytest.raises(ValueError, match="random_crop"):
        BatchAugment([RandomCrop([8, 8])])


def test_flip_probability_one_and_zero():
    x = torch.randn(4, 1, 6, 5)
    assert torch.equal(BatchAugment([RandomFlip(axes=[1], prob=1.0)])(x), x.flip(3))
    assert torch.equal(BatchAugment([RandomFlip(axes=[0, 1], prob=0.0)])(x), x)


def test_flip_draws_per_item():
    x = torch.randn(64, 1, 4, 4)
    y = BatchAugment([RandomFlip(axes=[0], prob=0.5)])(x, torch.Generator().manual_seed(0))
    flipped = [bool(torch.equal(y[i], x[i].flip(1))) for i in range(64)]
    assert 10 < sum(flipped) < 54  # some items flipped, some not


def test_affine_matches_per_item_warp_of_the_same_theta():
    t = RandomAffine(degrees=20, scale=(0.8, 1.2), translate=0.1, prob=1.0)
    x = torch.rand(5, 2, 20, 24)
    thetas = t._batch_thetas(5, [20, 24], [1.0, 1.0], torch.Generator().manual_seed(3))
    y = t.apply_batch(x, torch.Generator().manual_seed(3))
    for i in range(5):
        ref = Fn.warp_affine(x[i], thetas[i])
        assert torch.allclose(y[i], ref, atol=1e-5)
    assert not torch.allclose(y[0], y[1])  # each item its own draw


@pytest.mark.parametrize("path", ["item", "batch"])
def test_translate_moves_the_content_by_the_drawn_fraction(path):
    t = RandomAffine(degrees=0, scale=(1.0, 1.0), translate=0.2, prob=1.0)
    x = _blob()
    if path == "item":
        sample = Sample(images={"image": Image(x)}, case_id="c")
        params = t.make_params(sample, torch.Generator().manual_seed(1))
        y = t.apply(sample, params)["image"].data[0]
        shift = np.array(params["shift"])
    else:
        g = torch.Generator().manual_seed(1)
        thetas = t._batch_thetas(1, [32, 32], [1.0, 1.0], torch.Generator().manual_seed(1))
        y = t.apply_batch(x[None], g)[0, 0]
        shift = -thetas[0, :, 2].numpy() / 2.0  # theta's translation is -2 * shift (no rotation, scale 1)
    assert np.abs(shift).max() > 0.02
    moved = _centroid(y) - _centroid(x[0])
    np.testing.assert_allclose(moved, shift * 32, atol=0.3)


def test_intensity_scale_shift_is_exact_and_gamma_keeps_range():
    x = torch.rand(3, 1, 8, 8)
    t = RandomIntensity(scale=(2.0, 2.0), shift=(0.5, 0.5), prob_scale_shift=1.0, prob_gamma=0.0, prob_noise=0.0)
    assert torch.allclose(BatchAugment([t])(x), x * 2 + 0.5)
    g = RandomIntensity(gamma=(2.0, 2.0), prob_scale_shift=0.0, prob_gamma=1.0, prob_noise=0.0)
    y = BatchAugment([g])(x)
    for i in range(3):
        lo, hi = x[i].min(), x[i].max()
        assert torch.allclose(y[i], lo + (hi - lo) * ((x[i] - lo) / (hi - lo)) ** 2, atol=1e-6)


def test_same_seed_same_batch_3d():
    aug = BatchAugment([RandomFlip(axes=[0, 1, 2]), RandomAffine(degrees=10, prob=0.8), RandomIntensity()])
    x = torch.rand(4, 1, 8, 8, 8)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape


@pytest.mark.parametrize("path", ["item", "batch"])
def test_affine_nearest_keeps_a_binary_image_binary(path):
    x = torch.zeros(1, 16, 16, 16)
    x[0, 4:11, 5:12, 3:9] = 1.0
    values = {}
    for interpolation in ("linear", "nearest"):
        t = RandomAffine(degrees=20, scale=(0.9, 1.1), translate=0.1, prob=1.0, interpolation=interpolation)
        if path == "item":
            sample = Sample(images={"image": Image(x)}, case_id="c")
            y = t.apply(sample, t.make_params(sample, torch.Generator().manual_seed(2)))["image"].data
        else:
            y = t.apply_batch(x[None], torch.Generator().manual_seed(2))[0]
        values[interpolation] = torch.unique(y)
    assert set(values["nearest"].tolist()) == {0.0, 1.0}
    assert len(values["linear"]) > 2  # linear blurs the edges: the option is what keeps it binary


def test_affine_rejects_an_unknown_interpolation():
    with pytest.raises(Exception, match="interpolation must be linear or nearest"):
        RandomAffine(interpolation="cubic")
