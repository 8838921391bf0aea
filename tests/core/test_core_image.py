"""medimg.core.Image: construction, validation, geometry properties, immutability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medimg.core import KINDS, Image, make_affine


def test_numpy_fortran_view_is_kept():
    arr = np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))[None]
    img = Image(arr)
    assert img.data.dtype == torch.int16
    assert np.shares_memory(img.numpy(), arr)  # wrapped, not copied
    assert img.data.stride()[1:] == (1, 2, 6)  # x fastest, as in the Fortran array


def test_negative_strides_are_copied():
    arr = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)[:, ::-1]
    img = Image(arr)
    np.testing.assert_array_equal(img.numpy(), arr)


@pytest.mark.parametrize("src,dst", [(np.uint16, torch.int32), (np.uint32, torch.int64)])
def test_unsigned_widened(src, dst):
    arr = np.array([[[[0, np.iinfo(src).max]]]], dtype=src)
    img = Image(arr)
    assert img.dtype == dst and int(img.data.max()) == np.iinfo(src).max


def test_rejects_bad_ndim_kind_affine():
    with pytest.raises(ValueError, match=r"channel-first .* got 2D shape \(4, 4\).*data\[None\]"):
        Image(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="kind must be one of"):
        Image(torch.zeros(1, 2, 2, 2), kind="mask")
    with pytest.raises(ValueError, match="4x4"):
        Image(torch.zeros(1, 2, 2, 2), affine=np.eye(3))
    with pytest.raises(ValueError, match="finite"):
        Image(torch.zeros(1, 2, 2, 2), affine=np.full((4, 4), np.nan))
    with pytest.raises(TypeError, match="torch.Tensor or numpy array"):
        Image([[[[0]]]])
    assert KINDS == ("intensity", "label", "probabilities")


def test_geometry_properties():
    direction = np.array([[-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])
    aff = make_affine((0.7, 0.8, 2.5), (10.0, -20.0, 30.0), direction)
    img = Image(torch.zeros(2, 5, 6, 7), aff, kind="probabilities")
    assert img.spatial_ndim == 3 and img.num_channels == 2
    assert img.spatial_shape == (5, 6, 7) and img.shape == (2, 5, 6, 7)
    assert img.spacing == pytest.approx((0.7, 0.8, 2.5))
    assert img.origin == (10.0, -20.0, 30.0)
    np.testing.assert_allclose(img.direction, direction)
    assert img.axcodes == ("L", "P", "S")
    assert "spacing=(0.7, 0.8, 2.5) mm" in repr(img) and "axcodes=LPS" in repr(img)


def test_2d_image():
    img = Image(torch.zeros(1, 4, 5), make_affine((0.5, 0.25)))
    assert img.spatial_ndim == 2 and img.spacing == (0.5, 0.25) and img.axcodes == ("R", "A")


def test_affine_and_meta_are_copies():
    aff = np.eye(4)
    meta = {"source": "x"}
    img = Image(torch.zeros(1, 2, 2, 2), aff, meta=meta)
    aff[0, 0] = 5.0
    meta["source"] = "y"
    assert img.affine[0, 0] == 1.0 and img.meta["source"] == "x"


def test_new_clone_to_same_grid():
    img = Image(torch.ones(1, 3, 3, 3), make_affine((2, 2, 2)), kind="label", meta={"a": [1]})
    n = img.new(kind="intensity")
    assert n.kind == "intensity" and n.data is img.data and np.array_equal(n.affine, img.affine)
    c = img.clone()
    c.data[0, 0, 0, 0] = 5
    c.meta["a"].append(2)
    assert img.data[0, 0, 0, 0] == 1 and img.meta["a"] == [1]
    assert img.to(torch.float64).dtype == torch.float64 and img.dtype == torch.float32
    assert img.same_grid(c)
    assert not img.same_grid(img.new(affine=make_affine((2, 2, 2.1))))
    assert not img.same_grid(Image(torch.ones(1, 3, 3, 4), img.affine))
