"""Kernels: separable resampling equals trilinear; flips keep memory layout; pad/crop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medimg.transforms import functional as Fn


@pytest.mark.parametrize("shape", [(15, 40, 7), (60, 10, 25), (30, 20, 10), (1, 5, 3)])
def test_resample_equals_trilinear(shape):
    x = torch.randn(2, 30, 20, 10)
    ref = F.interpolate(x[None], size=shape, mode="trilinear", align_corners=False)[0]
    assert torch.allclose(Fn.resample_to_shape(x, shape), ref, atol=1e-5)
    xf = x.permute(0, 3, 2, 1).contiguous().permute(0, 3, 2, 1)  # Fortran-ordered view
    out = Fn.resample_to_shape(xf, shape)
    assert torch.allclose(out, ref, atol=1e-5)
    if min(shape) > 1:
        assert Fn.memory_order(out) == (2, 1, 0)  # layout kept


def test_resample_nearest_and_2d():
    lab = torch.randint(0, 5, (1, 30, 20, 10))
    ref = F.interpolate(lab[None].float(), size=(12, 33, 10), mode="nearest-exact")[0].long()
    out = Fn.resample_to_shape(lab, (12, 33, 10), "nearest")
    assert out.dtype == torch.int64 and torch.equal(out, ref)
    assert Fn.resample_to_shape(lab.to(torch.uint8), (12, 33, 10), "nearest").dtype == torch.uint8
    x2 = torch.randn(3, 17, 9)
    ref2 = F.interpolate(x2[None], size=(8, 20), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(Fn.resample_to_shape(x2, (8, 20)), ref2, atol=1e-5)
    with pytest.raises(ValueError, match="unknown interpolation mode 'cubic'"):
        Fn.resample_to_shape(x2, (8, 20), "cubic")
    with pytest.raises(ValueError, match="has 3 axes"):
        Fn.resample_to_shape(x2, (8, 20, 3))


def test_flip_reorient_pad_crop():
    x = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert torch.equal(Fn.flip(x, [0, 2]), torch.flip(x, [1, 3]))
    xf = x.permute(0, 3, 2, 1).contiguous().permute(0, 3, 2, 1)
    assert torch.equal(Fn.flip(xf, [1]), torch.flip(x, [2]))
    r = Fn.reorient(x, (2, 0, 1), (True, False, False))
    assert r.shape == (2, 5, 3, 4) and torch.equal(r, torch.flip(x.permute(0, 3, 1, 2), [1]))
    p = Fn.pad(x.float(), [1, 0, 2], [0, 3, 1], value=[1.0, 0.0])
    assert p.shape == (2, 4, 7, 8) and p[0, 0, 0, 0] == 1 and p[1, 0, 0, 0] == 0
    assert torch.equal(Fn.crop(p, [1, 0, 2], [4, 4, 7]), x.float())
    with pytest.raises(ValueError, match="outside spatial shape"):
        Fn.crop(x, [0, 0, 0], [4, 4, 5])


def test_foreground_bbox_and_fill():
    m = torch.zeros(10, 8, 6, dtype=torch.bool)
    m[2:5, 3, 1:2] = True
    assert Fn.foreground_bbox(m, 1) == ([1, 2, 0], [6, 5, 3])
    assert Fn.foreground_bbox(torch.zeros(3, 3, 3, dtype=torch.bool)) is None
    p = torch.tensor([[0.2, 0.0], [0.3, 0.0]]).reshape(2, 2, 1)
    q = Fn.fill_missing_background(p)
    assert torch.allclose(q.sum(0), torch.ones(2, 1)) and q[0, 1, 0] == 1


def test_intensity_kernels():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0]]).reshape(1, 2, 2)
    stats = Fn.channel_stats(x, nonzero=True)
    assert stats[0][0] == pytest.approx(2.0)
    z = Fn.zscore(x, stats, nonzero=True)
    assert z[0, 0, 0] == 0 and z[0, 1, 1] > 0
    s = Fn.scale_range(torch.tensor([[-2000.0, 0.0, 2000.0]]), -1000, 1000, 0, 1, clip=True)
    assert s.tolist() == [[0.0, 0.5, 1.0]]
    g = Fn.adjust_gamma(torch.tensor([[-1.0, 0.0, 1.0]]), 2.0)
    assert g.tolist() == [[-1.0, -0.5, 1.0]]
    assert Fn.map_values(torch.tensor([0, 1, 2, 4]), {1: 1, 4: 2}).tolist() == [0, 1, 0, 2]
