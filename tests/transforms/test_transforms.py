"""Transform classes: shapes and affines, inverses, probabilities, replay, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medimg.core import Image, Sample, TransformError, UnknownComponentError, make_affine
from medimg.transforms import (
    TRANSFORMS,
    Compose,
    CropForeground,
    MapLabels,
    MonaiTransform,
    NormalizeIntensity,
    Orient,
    RandomAffine,
    RandomCrop,
    RandomFlip,
    RandomIntensity,
    Resample,
    Resize,
    ScaleIntensityRange,
    SpatialPad,
    build_compose,
    build_transform,
    invert_history,
)

SHAPE = (24, 20, 12)
SPACING = (1.0, 1.2, 3.0)
# voxel axes point L, P, S -> not RAS, with origin offset: orient must flip two axes
DIRECTION = np.diag([-1.0, -1.0, 1.0])


def smooth(shape=SHAPE) -> torch.Tensor:
    g = torch.meshgrid(*[torch.linspace(0, 1, n) for n in shape], indexing="ij")
    return torch.sin(3 * g[0]) + torch.cos(2 * g[1]) + g[2] ** 2


def make_sample(direction=DIRECTION, shape=SHAPE, spacing=SPACING) -> Sample:
    aff = make_affine(spacing, (10.0, -5.0, 3.0), direction)
    img = torch.stack([smooth(shape), 2 * smooth(shape) + 1])
    lab = torch.zeros(1, *shape, dtype=torch.uint8)
    lab[0, 6:14, 5:12, 3:8] = 1
    lab[0, 14:18, 8:12, 3:8] = 2
    return Sample(
        {"image": Image(img, aff, "intensity"), "label": Image(lab, aff, "label")}, case_id="c1"
    )


def world(image: Image, idx) -> np.ndarray:
    return image.affine @ np.array([*idx, 1.0])


def test_registry_has_all():
    assert {"orient", "resample", "normalize_intensity", "scale_intensity_range", "map_labels",
            "crop_foreground", "spatial_pad", "random_crop", "random_flip", "random_affine",
            "random_intensity", "monai"} <= set(TRANSFORMS.list())


def test_orient_world_positions_and_inverse():
    s = make_sample()
    out = Orient("RAS")(s)
    im, lab = out["image"], out["label"]
    assert im.axcodes == ("R", "A", "S") and im.spatial_shape == SHAPE
    # every voxel keeps its world position and value
    for idx in [(0, 0, 0), (5, 7, 3), (23, 19, 11)]:
        new_idx = np.linalg.solve(im.affine, world(s["image"], idx))[:3].round().astype(int)
        assert torch.equal(im.data[(slice(None), *new_idx)], s["image"].data[(slice(None), *idx)])
    assert lab.data.dtype == torch.uint8
    back = invert_history(lab, out.history)
    assert torch.equal(back.data, s["label"].data) and np.allclose(back.affine, s["label"].affine)
    # a permuted input: axes (S, L, P) -> RAS permutes too
    perm_dir = np.array([[0, -1.0, 0], [0, 0, -1.0], [1.0, 0, 0]])
    s2 = make_sample(perm_dir)
    o2 = Orient("RAS")(s2)
    assert o2["image"].axcodes == ("R", "A", "S") and o2["image"].spatial_shape == (20, 12, 24)
    assert np.allclose(invert_history(o2["image"], o2.history).affine, s2["image"].affine)
    assert torch.equal(invert_history(o2["image"], o2.history).data, s2["image"].data)


def test_orient_errors():
    with pytest.raises(TransformError, match="orient: invalid axcodes 'RRS'"):
        Orient("RRS")
    with pytest.raises(TransformError, match="invalid axcodes 'RASX'"):
        Orient("RASX")
    with pytest.raises(TransformError, match="'RA' have 2 letters but image of case 'c1' has 3"):
        Orient("RA")(make_sample())


def test_resample_shape_affine_and_roundtrip():
    s = make_sample(np.eye(3))
    t = Resample([2.0, 2.4, 1.5])
    out = t(s)
    im = out["image"]
    assert im.spatial_shape == (12, 10, 24)
    assert np.allclose(im.spacing, (2.0, 2.4, 1.5))
    # field of view kept: outer voxel edges in the same world place
    for old_corner, new_corner in [((-0.5, -0.5, -0.5), (-0.5, -0.5, -0.5)), ((23.5, 19.5, 11.5), (11.5, 9.5, 23.5))]:
        assert np.allclose(world(s["image"], old_corner), world(im, new_corner))
    assert out["label"].data.dtype == torch.uint8 and set(out["label"].data.unique().tolist()) == {0, 1, 2}
    back = invert_history(im, out.history)
    assert back.same_grid(s["image"])
    # smooth data survives down-and-up sampling (interior; edges extrapolate)
    err = (back.data - s["image"].data)[:, 2:-2, 2:-2, 2:-2].abs().max()
    assert err < 0.15
    # label, integer factor along the upsampled axis: nearest is exact where aligned
    t2 = Resample([None, 0, 1.0])
    o2 = t2(s)
    assert o2["label"].spatial_shape == (24, 20, 36)
    assert torch.equal(invert_history(o2["label"], o2.history).data, s["label"].data)


def test_resample_errors():
    with pytest.raises(TransformError, match=r"resample: spacing \[1.0, 1.0\] has 2 values but image of case 'c1' has 3 spatial axes"):
        Resample([1.0, 1.0])(make_sample())
    with pytest.raises(TransformError, match="non-positive value -1"):
        Resample([1.0, -1, 1.0])
    with pytest.raises(TransformError, match="one value per spatial axis"):
        Resample(1.5)


def test_resize_2d_keeps_the_field_of_view_and_inverts_to_each_shape():
    for shape in [(30, 20), (17, 41)]:
        img = Image(torch.rand(1, *shape), make_affine(spacing=(0.5, 0.7)))
        lab = Image(torch.randint(0, 3, (1, *shape), dtype=torch.uint8), img.affine.copy(), kind="label")
        out = Resize([16, 16])(Sample(images={"image": img, "label": lab}, case_id="p"))
        assert out["image"].spatial_shape == (16, 16) and out["label"].spatial_shape == (16, 16)
        assert np.allclose(out["image"].spacing, (0.5 * shape[0] / 16, 0.7 * shape[1] / 16))
        assert out["label"].data.dtype == torch.uint8 and set(out["label"].data.unique().tolist()) <= {0, 1, 2}
        # outer pixel edges stay in place
        first, last = np.array([-0.5, -0.5, 0, 1]), np.array([shape[0] - 0.5, shape[1] - 0.5, 0, 1])
        assert np.allclose(img.affine @ first, out["image"].affine @ first)
        assert np.allclose(img.affine @ last, out["image"].affine @ np.array([15.5, 15.5, 0, 1]))
        back = invert_history(out["image"], out.history)
        assert back.same_grid(img)
    assert Resize(8)(make_sample())["image"].spatial_shape == (8, 8, 8)


def test_resize_errors():
    with pytest.raises(TransformError, match=r"resize: size has 2 values \[8, 8\] but the image has 3 spatial axes"):
        Resize([8, 8])(make_sample())
    with pytest.raises(TransformError, match="resize: size must be positive whole numbers of voxels, got \\[8, 0\\]"):
        Resize([8, 0])
    assert build_transform({"name": "resize", "size": [4, 4]}).size == [4, 4]


def test_probabilities_inverted_sum_to_one():
    s = make_sample()
    pre = Compose([Orient("RAS"), Resample([1.5, 1.5, 1.5]), CropForeground("label", margin=2), SpatialPad([24, 24, 32])])
    out = pre(s)
    onehot = torch.nn.functional.one_hot(out["label"].data[0].long(), 3).permute(3, 0, 1, 2).float()
    probs = Image(0.8 * onehot + 0.2 / 3, out["label"].affine, "probabilities")
    back = invert_history(probs, out.history)
    assert back.same_grid(s["image"])
    assert torch.allclose(back.data.sum(0), torch.ones(SHAPE), atol=1e-5)
    assert (back.data >= 0).all()
    # argmax of the inverted probabilities recovers most of the label
    agree = (back.data.argmax(0) == s["label"].data[0].long()).float().mean()
    assert agree > 0.97


def test_invert_history_chain_returns_to_source_grid():
    s = make_sample()
    pre = build_compose([
        {"name": "orient", "axcodes": "RAS"},
        {"name": "resample", "spacing": [1.3, 1.3, 1.3]},
        {"name": "scale_intensity_range", "a_min": -2, "a_max": 4, "clip": True},
        {"name": "crop_foreground", "source": "image", "threshold": 0.3, "margin": 1},
        {"name": "spatial_pad", "size": [40, 40, 40]},
        {"name": "normalize_intensity"},
    ])
    out = pre(s)
    assert out["image"].spatial_shape == (40, 40, 40)
    json.dumps([r.to_dict() for r in out.history])  # plain data
    for key in ("image", "label"):
        back = invert_history(out[key], out.history)
        assert back.spatial_shape == SHAPE
        assert np.allclose(back.affine, s[key].affine, atol=1e-6)
    lab_back = invert_history(out["label"], out.history)
    assert (lab_back.data == s["label"].data).float().mean() > 0.97


def test_crop_foreground_and_pad():
    s = make_sample(np.eye(3))
    out = CropForeground("label", margin=[1, 0, 2])(s)
    assert out["label"].spatial_shape == (14, 7, 9)  # [5:19, 5:12, 1:10]
    assert np.allclose(world(out["label"], (0, 0, 0)), world(s["label"], (5, 5, 1)))
    assert torch.equal(out["label"].data, s["label"].data[:, 5:19, 5:12, 1:10])
    with pytest.raises(TransformError, match="no source image 'mask'"):
        CropForeground("mask")(s)
    with pytest.raises(TransformError, match="margin has 2 values"):
        CropForeground("label", margin=[1, 1])(s)
    empty = Sample({"image": Image(torch.zeros(1, 4, 4, 4))})
    assert CropForeground()(empty)["image"].spatial_shape == (4, 4, 4)
    p = SpatialPad([30, 20, 15])(s)
    assert p["image"].spatial_shape == (30, 20, 15)
    assert np.allclose(world(p["image"], (3, 0, 1)), world(s["image"], (0, 0, 0)))


def test_intensity_transforms():
    s = make_sample()
    out = NormalizeIntensity()(s)
    d = out["image"].data
    assert torch.allclose(d.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(d.std(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    assert torch.equal(out["label"].data, s["label"].data)  # labels untouched
    x = s["image"].data.clone()
    x[:, :5] = 0
    s_nz = s.replace({"image": s["image"].new(x)})
    o_nz = NormalizeIntensity(nonzero=True)(s_nz)["image"].data
    assert (o_nz[:, :5] == 0).all()
    fg = o_nz[0][x[0] != 0]
    assert abs(float(fg.mean())) < 1e-4
    sc = ScaleIntensityRange(-1, 4, 0, 1, clip=True)(s)["image"].data
    assert sc.min() >= 0 and sc.max() <= 1
    with pytest.raises(TransformError, match="a_min and a_max are both 1"):
        ScaleIntensityRange(1, 1)
    m = MapLabels({"1": 5, 2: 0})(s)["label"].data
    assert set(m.unique().tolist()) == {0, 5}
    with pytest.raises(TransformError, match="not intensity"):
        NormalizeIntensity(keys=["label"])(s)


def test_random_crop_foreground_oversampling():
    s = make_sample()
    t = RandomCrop([8, 8, 4], pos_fraction=1.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        out = t(s, g)
        assert out["image"].spatial_shape == (8, 8, 4)
        assert (out["label"].data > 0).any()
    # pos_fraction 0.5: the foreground-centred rate is close to 0.5
    t = RandomCrop([8, 8, 4], pos_fraction=0.5)
    g = torch.Generator().manual_seed(1)
    rate = np.mean([t.make_params(s, g)["foreground"] for _ in range(400)])
    assert 0.42 < rate < 0.58
    # smaller than the roi: padded, and invertible
    out = RandomCrop([32, 16, 16], pos_fraction=0.0)(s, torch.Generator().manual_seed(2))
    assert out["image"].spatial_shape == (32, 16, 16)
    back = invert_history(out["label"], out.history)
    assert back.same_grid(s["label"])
    inside = back.data != 0
    assert torch.equal(back.data[inside], s["label"].data[inside])
    with pytest.raises(TransformError, match="has no label image 'seg'"):
        RandomCrop([8, 8, 4], pos_fraction=1.0, label_key="seg")(s, g)
    with pytest.raises(TransformError, match="roi_size has 2 values"):
        RandomCrop([8, 8], pos_fraction=0.0)(s, g)


def test_seeded_reproducibility_and_replay():
    s = NormalizeIntensity()(make_sample(np.eye(3)))
    aug = Compose([
        RandomCrop([16, 16, 8], pos_fraction=0.5),
        RandomFlip([0, 1, 2], prob=0.5),
        RandomAffine(degrees=20, scale=(0.8, 1.2), prob=1.0),
        RandomIntensity(prob_scale_shift=1.0, prob_gamma=1.0, prob_noise=1.0),
    ])
    a = aug(s, torch.Generator().manual_seed(7))
    b = aug(s, torch.Generator().manual_seed(7))
    c = aug(s, torch.Generator().manual_seed(8))
    assert torch.equal(a["image"].data, b["image"].data) and torch.equal(a["label"].data, b["label"].data)
    assert not torch.equal(a["image"].data, c["image"].data)
    # replay each step from the recorded params (after a JSON round trip)
    history = json.loads(json.dumps([r.to_dict() for r in a.history]))
    replay = s
    for t, rec in zip(aug, history[-len(aug):]):
        assert rec["name"] == t.name
        replay = t.apply(replay, rec["params"])
    assert torch.equal(replay["image"].data, a["image"].data)
    assert torch.equal(replay["label"].data, a["label"].data)


def test_random_flip_and_affine_invert():
    s = make_sample(np.eye(3), shape=(20, 20, 20), spacing=(1.0, 1.0, 1.0))
    out = RandomFlip([0, 2], prob=1.0)(s, torch.Generator().manual_seed(0))
    assert torch.equal(out["image"].data, torch.flip(s["image"].data, [1, 3]))
    assert np.allclose(out["image"].affine, s["image"].affine)
    assert torch.equal(invert_history(out["image"], out.history[-1:]).data, s["image"].data)
    t = RandomAffine(degrees=[0, 0, 90], scale=(1.0, 1.0), prob=1.0)
    # exact 90 degree rotation about K maps the label onto its rotated copy
    p90 = {"theta": [[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], "angles": [0, 0, 90], "scale": 1.0}
    rot = t.apply(s, p90)
    assert torch.equal(rot["label"].data, torch.rot90(s["label"].data, 1, dims=(1, 2)))
    assert torch.equal(invert_history(rot["label"], rot.history[-1:]).data, s["label"].data)
    # random small rotation: image inverts to close to the original in the centre
    r = t(s, torch.Generator().manual_seed(3))
    back = invert_history(r["image"], r.history[-1:])
    assert (back.data - s["image"].data)[:, 6:14, 6:14, 6:14].abs().max() < 0.2
    probs = Image(torch.full((3, 20, 20, 20), 1 / 3), s["image"].affine, "probabilities")
    pw = RandomAffine(degrees=30, prob=1.0)(Sample({"p": probs}), torch.Generator().manual_seed(0))["p"]
    assert torch.allclose(pw.data.sum(0), torch.ones(20, 20, 20), atol=1e-5)


def test_monai_adapter():
    s = make_sample()
    t = MonaiTransform("RandGaussianNoise", prob=1.0, std=0.5)
    a = t(s, torch.Generator().manual_seed(0))
    b = t(s, torch.Generator().manual_seed(0))
    assert torch.equal(a["image"].data, b["image"].data)
    assert not torch.equal(a["image"].data, s["image"].data)
    assert torch.equal(a["label"].data, s["label"].data)
    assert type(a["image"].data) is torch.Tensor
    assert torch.equal(t.apply(s, a.history[-1].params)["image"].data, a["image"].data)
    assert a.history[-1].name == "monai" and not a.history[-1].spatial
    with pytest.raises(TransformError, match="'Spacing' is not a MONAI intensity transform; spatial"):
        MonaiTransform("Spacing", pixdim=(1, 1, 1))
    with pytest.raises(TransformError, match="is a dictionary transform"):
        MonaiTransform("RandGaussianNoised", keys=None)
    with pytest.raises(TransformError, match="'os' is not a transform class"):
        MonaiTransform("os")
    with pytest.raises(TransformError, match=r"cannot build RandGaussianNoise with \{'probb': 1\}: "
                       r"got an unexpected parameter 'probb'\n") as err:
        MonaiTransform("RandGaussianNoise", probb=1)
    assert err.value.hint.startswith("RandGaussianNoise takes: prob = 0.1, mean = 0.0, std = 0.1, dtype")


def test_build_errors():
    with pytest.raises(UnknownComponentError, match="did you mean 'resample'"):
        build_transform({"name": "resampel", "spacing": [1, 1, 1]})
    with pytest.raises(TransformError, match="resample: invalid arguments") as err:
        build_transform({"name": "resample", "spacingg": [1, 1, 1]})
    assert err.value.hint == "see `medimg list transforms resample` for its parameters"


def test_shape_mismatch_on_invert_is_explained():
    s = make_sample()
    out = Resample([2.0, 2.0, 2.0])(s)
    with pytest.raises(TransformError, match="resample: invert expects spatial shape"):
        invert_history(s["image"], out.history)


def test_2d_chain_inverts():
    aff = make_affine((0.5, 0.8), (3.0, 4.0), np.diag([-1.0, 1.0, 1.0]))
    x = torch.randn(1, 40, 30)
    lab = (x > 1).to(torch.uint8)
    s = Sample({"image": Image(x, aff), "label": Image(lab, aff, "label")}, case_id="xr")
    pre = Compose([Orient("RA"), Resample([1.0, 1.0]), SpatialPad([32, 32]), RandomCrop([16, 16], 0.5)])
    out = pre(s, torch.Generator().manual_seed(0))
    assert out["image"].spatial_shape == (16, 16) and out["image"].axcodes == ("R", "A")
    back = invert_history(out["label"], out.history)
    assert back.same_grid(s["label"])


def test_public_api_pinned():
    import medimg.transforms as T
    import medimg.transforms.functional as Fn

    assert set(T.__all__) == {
        "TRANSFORMS", "Compose", "Transform", "invert_history", "invert_image", "build_compose",
        "build_transform", "build_transforms", "functional", "Orient", "Resample", "Resize", "CropForeground", "SpatialPad",
        "NormalizeIntensity", "ScaleIntensityRange", "MapLabels", "RandomCrop", "RandomFlip",
        "RandomAffine", "RandomIntensity", "MonaiTransform", "RandomElastic", "RandomNoise", "RandomBlur",
        "RandomBrightness", "RandomContrast", "RandomGamma", "RandomLowResolution", "RandomBiasField",
        "RandomMotion", "RandomGhosting", "OneOf",
    }
    assert {"resample_to_shape", "reorient", "flip", "crop", "pad", "warp_affine", "zscore"} <= set(Fn.__all__)
    assert all(hasattr(T, n) for n in T.__all__) and all(hasattr(Fn, n) for n in Fn.__all__)


def _z_scored_before_skull_stripping(bgs=(-3.2, -5.6)) -> Image:
    """Two channels whose background is each channel's own constant (its minimum)."""
    rng = np.random.default_rng(0)
    x = np.empty((2, 12, 10, 8), np.float32)
    for c, bg in enumerate(bgs):
        x[c] = bg
        x[c, 3:9, 2:8, 2:6] = rng.normal(1.0 + c, 0.5, (6, 6, 4))
    return Image(torch.from_numpy(x))


def test_normalize_intensity_corner_background_uses_each_channels_own_background():
    from medimg.transforms import NormalizeIntensity

    sample = Sample(images={"image": _z_scored_before_skull_stripping()}, case_id="c")
    t = NormalizeIntensity(corner_background=True)
    params = t.make_params(sample)
    assert params["background"]["image"] == pytest.approx([-3.2, -5.6])
    out = t.apply(sample, params)["image"].data
    fg = out[:, 3:9, 2:8, 2:6]
    assert torch.allclose(fg.mean((1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(fg.std((1, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    assert float(out[:, 0].abs().max()) == 0.0  # the background is 0 afterwards
    whole = NormalizeIntensity().apply(sample, NormalizeIntensity().make_params(sample))["image"].data
    assert abs(float(whole[0, 3:9, 2:8, 2:6].mean())) > 0.5  # the whole-image z-score is off on the foreground
    with pytest.raises(TransformError, match="choose one of nonzero and corner_background"):
        NormalizeIntensity(nonzero=True, corner_background=True)


def test_crop_foreground_corner_background_crops_each_case_to_its_own_foreground():
    from medimg.transforms import CropForeground

    for bgs in [(-3.2, -5.6), (-2.7, -2.9)]:  # a single threshold of -3.16 would keep the second whole
        sample = Sample(images={"image": _z_scored_before_skull_stripping(bgs)}, case_id="c")
        t = CropForeground(corner_background=True)
        assert t.make_params(sample)["start"] == [3, 2, 2] and t.make_params(sample)["stop"] == [9, 8, 6]
    fixed = CropForeground(threshold=-3.16).make_params(sample)
    assert fixed["start"] == [0, 0, 0]
