"""medimg.core.affine: spacing/axcodes, LPS<->RAS, reorientation keeps world positions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medimg.core import (
    affines_close,
    axcodes_from_affine,
    lps_to_ras,
    make_affine,
    orientation_transform,
    ras_to_lps,
    reoriented_affine,
    scaled_affine,
    spacing_from_affine,
)


def _rot(axis, angle):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _world(aff, idx):
    return (aff @ np.append(np.asarray(idx, float), 1.0))[:3]


def test_lps_ras_roundtrip():
    aff = make_affine((0.7, 0.7, 2.5), (1.0, 2.0, 3.0))
    ras = lps_to_ras(aff)
    assert ras[0, 3] == -1.0 and ras[1, 3] == -2.0 and ras[2, 3] == 3.0
    np.testing.assert_array_equal(ras_to_lps(ras), aff)


def test_axcodes_oblique_45_degrees_unique():
    d = _rot([0, 0, 1], np.pi / 4)  # x and y axes at exactly 45 degrees
    codes = axcodes_from_affine(make_affine((1, 1, 1), (0, 0, 0), d))
    assert len(set(codes)) == 3 and codes[2] == "S"


@pytest.mark.parametrize("target", ["RAS", "LPS", "PIR", "SLA"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orientation_transform_keeps_world_positions(target, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(3)
    signs = rng.choice([-1.0, 1.0], 3)
    direction = np.eye(3)[:, perm] * signs
    direction = _rot(rng.normal(size=3), 0.2) @ direction  # slightly oblique
    aff = make_affine(rng.uniform(0.5, 3, 3), rng.normal(0, 50, 3), direction)
    shape = (5, 6, 7)
    p, f = orientation_transform(aff, target)
    new_aff = reoriented_affine(aff, shape, p, f)
    assert axcodes_from_affine(new_aff) == tuple(target)
    data = np.arange(np.prod(shape)).reshape(shape)
    new = np.transpose(data, p)
    for ax, flip in enumerate(f):
        if flip:
            new = np.flip(new, ax)
    # every voxel keeps its value and its world position
    for new_idx in itertools.product(*(range(s) for s in new.shape)):
        old_idx = np.unravel_index(np.flatnonzero(data == new[new_idx])[0], shape)
        np.testing.assert_allclose(_world(new_aff, new_idx), _world(aff, old_idx), atol=1e-9)


def test_orientation_transform_rejects_bad_target():
    with pytest.raises(ValueError, match="invalid target axis codes 'RRS'"):
        orientation_transform(np.eye(4), "RRS")
    with pytest.raises(ValueError, match="need 3 letters"):
        orientation_transform(np.eye(4), "RA")


def test_scaled_affine_edges_and_centres():
    aff = make_affine((1.0, 1.0, 1.0))
    half = scaled_affine(aff, (10, 10, 10), (5, 5, 5))
    assert spacing_from_affine(half) == (2.0, 2.0, 2.0)
    # align_corners=False: the outer voxel edge stays at -0.5
    np.testing.assert_allclose(_world(half, (-0.5, -0.5, -0.5)), [-0.5] * 3)
    corners = scaled_affine(aff, (10, 10, 10), (4, 4, 4), align_corners=True)
    np.testing.assert_allclose(_world(corners, (3, 3, 3)), [9, 9, 9])


def test_affines_close():
    a = make_affine((1, 1, 1))
    assert affines_close(a, a + 5e-4) and not affines_close(a, a + 2e-3)
