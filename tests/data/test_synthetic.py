"""The demo's synthetic data: what makes it need learning (decoys, texture, bias field)."""

from __future__ import annotations

import numpy as np
import pytest

from medimg.data import synthetic


@pytest.mark.parametrize("shape", [(48, 48, 32), (24, 24, 16), (16, 16, 16)])
def test_every_case_has_both_classes(shape):
    rng = np.random.default_rng(0)
    for _ in range(8):
        t1, t2, label = synthetic._case(shape, rng)
        assert t1.shape == t2.shape == label.shape == shape and t1.dtype == np.float32
        assert set(np.unique(label).tolist()) == {0, 1, 2}


def _cases_and_layouts(n: int, seed: int, monkeypatch, **constants):
    """``n`` synthetic cases and the (body, label, decoy) masks each was drawn from, with
    the generator's module constants set as given."""
    for k, v in constants.items():
        monkeypatch.setattr(synthetic, k, v)
    layout, layouts = synthetic._layout, []

    def keep(shape, rng):
        layouts.append(layout(shape, rng))
        return layouts[-1]

    monkeypatch.setattr(synthetic, "_layout", keep)
    rng = np.random.default_rng(seed)
    cases = [synthetic._case((48, 48, 32), rng) for _ in range(n)]
    monkeypatch.setattr(synthetic, "_layout", layout)
    return cases, layouts


def test_decoys_are_real_and_apart():
    rng = np.random.default_rng(1)
    for _ in range(4):
        body, label, decoy = synthetic._layout((48, 48, 32), rng)
        assert (decoy > 0).sum() > 0.4 * (label > 0).sum()  # a real share of look-alikes
        assert not ((decoy > 0) & (label > 0)).any() and not ((decoy > 0) & ~body).any()
        assert {1, 2} <= set(np.unique(decoy).tolist())  # look-alikes of both classes


@pytest.mark.parametrize("bias", [0.0, None])
def test_decoys_look_like_the_class_they_mimic(monkeypatch, bias):
    """Per class and channel, decoy voxels have the labelled voxels' mean intensity, and
    (before the bias field, which varies most near the middle where the labelled objects
    sit) their spread: only texture and context tell them apart."""
    constants = {} if bias is None else {"_BIAS": bias}
    cases, layouts = _cases_and_layouts(6, 2, monkeypatch, **constants)
    for k in (1, 2):
        for c in range(2):
            lab = np.concatenate([case[c][lay[1] == k] for case, lay in zip(cases, layouts)])
            dec = np.concatenate([case[c][lay[2] == k] for case, lay in zip(cases, layouts)])
            assert abs(lab.mean() - dec.mean()) < 0.05 * lab.mean(), (k, c, lab.mean(), dec.mean())
            if bias is not None:
                assert abs(lab.std() - dec.std()) < 0.05 * lab.std(), (k, c, lab.std(), dec.std())


def test_texture_tells_labelled_objects_from_decoys(monkeypatch):
    """What a CNN can learn: neighbouring voxels differ far more inside labelled objects
    (white texture) than inside decoys (smooth texture)."""
    (case, *_), ((_, label, decoy), *_) = _cases_and_layouts(1, 3, monkeypatch)
    step = np.abs(np.diff(case[0], axis=0))
    inner_label = (label[1:] > 0) & (label[:-1] > 0)
    inner_decoy = (decoy[1:] > 0) & (decoy[:-1] > 0)
    assert step[inner_label].mean() > 2 * step[inner_decoy].mean()


def test_bias_field_is_smooth_and_bounded():
    f = synthetic._bias_field((48, 48, 32), np.random.default_rng(4))
    assert f.shape == (48, 48, 32)
    assert f.max() - f.min() > 0.2  # a real field, not a constant
    assert 1 - 1.5 * synthetic._BIAS < f.min() and f.max() < 1 + 1.5 * synthetic._BIAS
    assert np.abs(np.diff(f, axis=0)).max() < 0.05  # smooth: a few percent per voxel at most
