"""Sliding window: tiling, blending, equivalence with a whole-volume forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from medimg.inference import gaussian_importance, sliding_window, tile_starts


@pytest.mark.parametrize("size,roi,overlap", [(128, 96, 0.25), (160, 96, 0.25), (160, 96, 0.5), (96, 96, 0.5), (50, 96, 0.25), (100, 32, 0.0)])
def test_tile_starts_cover_and_count(size, roi, overlap):
    starts = tile_starts(size, roi, overlap)
    expected_n = 1 if size <= roi else math.ceil((size - roi) / round(roi * (1 - overlap))) + 1
    assert len(starts) == expected_n  # the window count of docs/performance.md
    assert starts[0] == 0
    if size > roi:
        assert starts[-1] == size - roi
        assert all(b - a <= roi for a, b in zip(starts, starts[1:]))  # no gaps


def test_gaussian_peak_and_floor():
    w = gaussian_importance([9, 9, 9])
    assert w.shape == (9, 9, 9)
    assert float(w[4, 4, 4]) == pytest.approx(1.0)
    assert float(w.min()) > 0


def _pointwise_model(c_in: int = 2, k: int = 3, dims: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    conv = torch.nn.Conv3d if dims == 3 else torch.nn.Conv2d
    return conv(c_in, k, kernel_size=1).eval()


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize("sw_batch_size", [1, 3])
def test_pointwise_model_equals_whole_volume(blend, sw_batch_size):
    # a 1x1x1 convolution is translation-equivariant and has no context, so any tiling,
    # padding and blending must reproduce the whole-volume output
    model = _pointwise_model()
    x = torch.randn(2, 37, 20, 45)
    with torch.no_grad():
        ref = model(x[None])[0]
        out = sliding_window(x, model, [16, 24, 16], overlap=0.4, sw_batch_size=sw_batch_size, blend=blend)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)


def test_one_tile_equals_forward_for_a_real_unet():
    from medimg.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", in_channels=1, out_channels=2, channels=(4, 8), strides=(2,)).eval()
    x = torch.randn(1, 16, 16, 16)
    with torch.no_grad():
        ref = model(x[None])[0]
        out = sliding_window(x, model, [16, 16, 16], overlap=0.25)
    assert torch.allclose(out, ref, atol=1e-5)


def test_2d_and_padding():
    model = _pointwise_model(1, 2, dims=2)
    x = torch.randn(1, 10, 50)
    with torch.no_grad():
        out = sliding_window(x, model, [16, 16], overlap=0.25)
        ref = model(x[None])[0]
    assert out.shape == (2, 10, 50)
    assert torch.allclose(out, ref, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="roi_size .* has 2 axes; the input has 3"):
        sliding_window(torch.zeros(1, 8, 8, 8), lambda b: b, [8, 8])
    with pytest.raises(ValueError, match="blend must be"):
        sliding_window(torch.zeros(1, 8, 8, 8), lambda b: b, [8, 8, 8], blend="median")


@pytest.mark.parametrize("size,roi,overlap", [(160, 96, 0.5), (161, 96, 0.25), (37, 16, 0.4), (50, 96, 0.25), (100, 10, 0.25)])
def test_tile_starts_are_monais(size, roi, overlap):
    """tile_starts says where sliding_window (MONAI's loop) puts its tiles."""
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    padded = max(size, roi)
    interval = _get_scan_interval((padded,), (roi,), 1, (overlap,))
    theirs = [s[0].start for s in dense_patch_slices((padded,), (roi,), interval)]
    assert tile_starts(size, roi, overlap) == theirs


def _blend_by_hand(x, model, roi, overlap, weight):
    """The definition of sliding_window: a weighted mean over the tiles at tile_starts."""
    import itertools

    out = norm = None
    for corner in itertools.product(*[tile_starts(n, r, overlap) for n, r in zip(x.shape[1:], roi)]):
        s = tuple(slice(c, c + r) for c, r in zip(corner, roi))
        y = model(x[(slice(None), *s)][None])[0]
        if out is None:
            out, norm = torch.zeros((y.shape[0], *x.shape[1:])), torch.zeros(x.shape[1:])
        out[(slice(None), *s)] += y * weight
        norm[s] += weight
    return out / norm


@pytest.mark.parametrize("sw_batch_size", [1, 4])
def test_real_unet_is_the_weighted_mean_of_its_tiles(sw_batch_size):
    """Context-dependent network, uneven tiling: the output is the Gaussian-weighted mean
    (medimg's weight map, sigma = roi / 8) of the tiles placed by tile_starts."""
    from medimg.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", in_channels=2, out_channels=3, channels=(4, 8), strides=(2,)).eval()
    x = torch.randn(2, 40, 27, 16)
    roi = [16, 16, 16]
    with torch.no_grad():
        ref = _blend_by_hand(x, model, roi, 0.5, gaussian_importance(roi))
        out = sliding_window(x, model, roi, overlap=0.5, sw_batch_size=sw_batch_size)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=1e-5)


def test_tiles_are_batched():
    sizes = []

    def model(batch):
        sizes.append(batch.shape[0])
        return batch[:, :1] * 2

    x = torch.randn(1, 40, 40, 16)
    with torch.no_grad():
        sliding_window(x, model, [16, 16, 16], overlap=0.0, sw_batch_size=4)  # 3 x 3 x 1 tiles
    assert sizes == [4, 4, 1]


@pytest.mark.parametrize("sw_batch_size", [1, 2])
def test_input_left_untouched_by_a_predictor_returning_its_batch(sw_batch_size):
    x = torch.randn(1, 20, 20, 20)
    before = x.clone()
    with torch.no_grad():
        out = sliding_window(x, lambda b: b, [16, 16, 16], overlap=0.5, sw_batch_size=sw_batch_size)
    assert torch.equal(x, before)
    assert torch.allclose(out, x, atol=1e-6)


def test_overlap_error_names_the_parameter():
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1.0"):
        sliding_window(torch.zeros(1, 8, 8, 8), lambda b: b, [8, 8, 8], overlap=1.0)
