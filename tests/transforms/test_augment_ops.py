"""The nnU-Net-style augmentations and MR artefacts: 2D and 3D, replay, seeds, prob, labels,
one_of weights, one-line errors, and building from a config's ``augment`` list."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from medimg.core import ConfigError, Image, Sample, TransformError, make_affine
from medimg.transforms import (
    TRANSFORMS,
    OneOf,
    RandomElastic,
    RandomFlip,
    build_transforms,
    invert_history,
)
from medimg.transforms import functional as Fn

INTENSITY_OPS = ["random_noise", "random_blur", "random_brightness", "random_contrast", "random_gamma",
                 "random_low_resolution", "random_bias_field", "random_motion", "random_ghosting"]
SPATIAL_OPS = ["random_elastic"]
ALL_OPS = INTENSITY_OPS + SPATIAL_OPS
#: params that make each op change the image visibly whenever it applies
STRONG = {"random_noise": {"std": [0.2, 0.3]}, "random_low_resolution": {"zoom": [0.3, 0.5]},
          "random_elastic": {"max_displacement": 2.0, "degrees": 10.0, "prob_affine": 1.0},
          "random_ghosting": {"intensity": [0.8, 1.0]}, "random_brightness": {"factor": [1.3, 1.5]},
          "random_contrast": {"factor": [1.5, 2.0]}, "random_gamma": {"gamma": [1.5, 2.0]},
          "random_blur": {"sigma": [1.0, 1.5]}}


def make_sample(nd: int) -> Sample:
    shape = (20, 18, 12) if nd == 3 else (24, 20)
    g = torch.meshgrid(*[torch.linspace(0, 1, n) for n in shape], indexing="ij")
    img = torch.stack([torch.sin(4 * g[0]) + torch.cos(3 * g[1]) + g[-1] ** 2, g[0] * 2 - 1])
    lab = torch.zeros(1, *shape, dtype=torch.uint8)
    lab[(0, *[slice(n // 4, 3 * n // 4) for n in shape])] = 1
    lab[(0, *[slice(n // 3, n // 2) for n in shape])] = 2
    aff = make_affine((1.0, 1.5, 2.0), (5.0, -3.0, 1.0), np.eye(3)) if nd == 3 else np.diag([1.0, 1.5, 1.0, 1.0])
    return Sample({"image": Image(img, aff, "intensity"), "label": Image(lab, aff, "label")}, case_id="c1")


def build(name: str, **params):
    return TRANSFORMS.build({"name": name, **STRONG.get(name, {}), "prob": 1.0, **params})


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered():
    assert set(ALL_OPS) | {"one_of"} <= set(TRANSFORMS.list())


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("name", ALL_OPS)
def test_apply_replay_seed_and_labels(name: str, nd: int):
    s = make_sample(nd)
    t = build(name)
    out = t(s, gen(1))
    img, lab = out["image"], out["label"]
    assert img.data.shape == s["image"].data.shape and img.data.is_floating_point()
    assert np.allclose(img.affine, s["image"].affine)
    assert (img.data - s["image"].data).abs().max() > 1e-3, "the op changed nothing"
    rec = out.history[-1]
    assert rec.name == name and rec.spatial == (name in SPATIAL_OPS)
    json.dumps(rec.params)  # plain data
    # the deterministic twin: the recorded params give the same output, without a generator
    again = t.apply(s, json.loads(json.dumps(rec.params)))
    assert torch.equal(again["image"].data, img.data) and torch.equal(again["label"].data, lab.data)
    # seeded reproducibility, and a different seed draws differently
    assert torch.equal(t(s, gen(1))["image"].data, img.data)
    assert not torch.equal(t(s, gen(2))["image"].data, img.data)
    # labels: integer dtype and values kept; intensity ops leave them untouched
    assert lab.data.dtype == torch.uint8 and set(lab.data.unique().tolist()) <= {0, 1, 2}
    if name in INTENSITY_OPS:
        assert lab is s["label"] or torch.equal(lab.data, s["label"].data)
    else:
        assert not torch.equal(lab.data, s["label"].data)


@pytest.mark.parametrize("name", ALL_OPS)
def test_prob_zero_is_identity(name: str):
    s = make_sample(3)
    out = build(name, prob=0.0, **({"prob_affine": 0.0} if name == "random_elastic" else {}))(s, gen(0))
    for k in ("image", "label"):
        assert torch.equal(out[k].data, s[k].data)
    assert out.history[-1].name == name


def test_prob_is_a_probability():
    hits = [build("random_noise", prob=0.3)(make_sample(2), gen(i)).history[-1].params["applied"] for i in range(200)]
    assert 0.2 < sum(hits) / 200 < 0.4


@pytest.mark.parametrize("nd", [2, 3])
def test_elastic_inverts_and_keeps_probabilities(nd: int):
    s = make_sample(nd)
    t = RandomElastic(max_displacement=1.0, degrees=8.0, scale=(0.9, 1.1), prob=1.0, prob_affine=1.0)
    out = t(s, gen(3))
    back = invert_history(out["image"], out.history)
    inner = (slice(None), *[slice(4, -4)] * nd)
    moved = (out["image"].data - s["image"].data)[inner].abs().max()
    err = (back.data - s["image"].data)[inner].abs().max()
    assert err < 0.15 * moved
    probs = torch.cat([1 - s["image"].data[1:].clamp(0, 1), s["image"].data[1:].clamp(0, 1)])
    warped = t.apply_image(Image(probs, s["image"].affine, "probabilities"), out.history[-1].params)
    assert torch.allclose(warped.data.sum(0), torch.ones(()), atol=1e-5)


def test_elastic_grid_is_affine_grid_plus_field():
    theta = torch.tensor([[1.1, 0.1, 0.0, 0.05], [0.0, 0.9, 0.0, 0.0], [0.0, 0.0, 1.0, -0.1]], dtype=torch.float64)
    field = torch.rand(3, 4, 5, 3, dtype=torch.float64, generator=gen(0)) * 0.1
    grid = Fn.deformation_grid((9, 7, 5), theta, field)
    txyz = torch.cat([theta[:, :3].flip(0).flip(1), theta[:, 3:].flip(0)], 1)
    ref = torch.nn.functional.affine_grid(txyz.float()[None], [1, 1, 9, 7, 5], align_corners=False)
    ref = ref + Fn.upsample_field(field.float(), (9, 7, 5)).movedim(1, -1)
    assert torch.allclose(grid, ref, atol=1e-5)


def test_kernels():
    x = torch.rand(1, 16, 12, 9, generator=gen(0))
    ref = gaussian_filter(x[0].numpy(), [1.0, 0.8, 0.0], mode="nearest", truncate=3.0)
    assert np.abs(Fn.gaussian_blur(x, [1.0, 0.8, 0.0])[0].numpy() - ref).max() < 5e-3
    assert torch.allclose(Fn.ghosting(x, 4, 1, 0.0), x, atol=1e-5)
    assert not torch.allclose(Fn.ghosting(x, 4, 1, 1.0), x, atol=1e-2)
    identity = [torch.eye(3, 4).tolist()]
    assert torch.allclose(Fn.motion(x, identity, [0.5], 0), x, atol=1e-5)
    assert len(Fn.bias_field_terms(3, 3)) == 20 and len(Fn.bias_field_terms(3, 2)) == 10
    assert torch.allclose(Fn.bias_field((4, 5), [0.0] * 10, 3), torch.ones(4, 5))
    assert torch.equal(Fn.low_resolution(x, [16, 12, 9]), x)
    y = Fn.adjust_contrast(x, 2.0)
    assert y.min() >= x.min() and y.max() <= x.max() and y.std() > x.std()


def test_one_of_picks_by_weight_and_replays():
    s = make_sample(2)
    t = OneOf([{"name": "random_flip", "axes": [0], "prob": 1.0}, {"name": "random_noise", "prob": 1.0}],
              weights=[3, 1])
    picks = [t.make_params(s, gen(i))["index"] for i in range(400)]
    assert 0.67 < picks.count(0) / 400 < 0.83
    only = OneOf([{"name": "random_blur", "prob": 1.0}, {"name": "random_noise", "prob": 1.0}], weights=[0, 1])
    assert {only.make_params(s, gen(i))["name"] for i in range(20)} == {"random_noise"}
    # replay, and a spatial pick inverts through the history
    out = t(s, gen(5))
    rec = out.history[-1]
    assert rec.name == "one_of" and len(out.history) == 1
    assert torch.equal(t.apply(s, rec.params)["image"].data, out["image"].data)
    flipped = t.apply(s, {"applied": True, "index": 0, "name": "random_flip", "params": {"axes": [0]}})
    assert flipped.history[-1].spatial
    assert torch.equal(invert_history(flipped["label"], flipped.history).data, s["label"].data)
    none = OneOf([RandomFlip(axes=[0], prob=1.0)], prob=0.0)(s, gen(0))
    assert torch.equal(none["image"].data, s["image"].data) and not none.history[-1].spatial


@pytest.mark.parametrize(
    "spec, key, fix",
    [
        ({"name": "random_noise", "std": [0.2, 0.1]}, "std", "write std: [min, max] with min <= max"),
        ({"name": "random_gamma", "gamma": [0.0, 1.5]}, "gamma", "both > 0.0"),
        ({"name": "random_blur", "prob": 2}, "prob", "set prob to a number from 0"),
        ({"name": "random_low_resolution", "zoom": [0.5, 2.0]}, "zoom", "<= 1.0"),
        ({"name": "random_elastic", "num_control_points": 1}, "num_control_points", "at least 2"),
        ({"name": "random_ghosting", "intensity": [0.5, 1.5]}, "intensity", "<= 1.0"),
        ({"name": "one_of", "transforms": [{"name": "random_blur"}], "weights": [1, 2]}, "weights", "write weights"),
        ({"name": "one_of", "transforms": [{"name": "random_nois"}]}, "transforms[0]", "random_noise"),
    ],
)
def test_bad_params_one_clear_line(spec, key, fix):
    with pytest.raises(ConfigError) as err:
        build_transforms([spec], key="augment")
    text = str(err.value)
    first = text.splitlines()[0]  # the message is one line; the hint (the fix) follows it
    assert "augment[0]" in first and key in first and len(text.splitlines()) <= 2, text
    assert fix in text, text


def test_errors_in_python_name_the_transform():
    with pytest.raises(TransformError, match=r"random_contrast: factor is \[2.0, 1.0\], not a range; write factor: \[min, max\]"):
        TRANSFORMS.get("random_contrast")(factor=[2.0, 1.0])
    with pytest.raises(TransformError, match="axes \\[2\\] do not exist in a 2D image"):
        build("random_motion", axes=[2])(make_sample(2), gen(0))


AUGMENT_YAML = """
augment:
  - {name: random_elastic, max_displacement: 5.0, degrees: 15, scale: [0.85, 1.25], prob: 0.2, prob_affine: 0.2}
  - {name: random_noise, std: [0.0, 0.1], prob: 0.1}
  - {name: random_blur, sigma: [0.5, 1.0], prob: 0.2}
  - {name: random_brightness, factor: [0.75, 1.25], prob: 0.15}
  - {name: random_contrast, factor: [0.75, 1.25], prob: 0.15}
  - {name: random_low_resolution, zoom: [0.5, 1.0], prob: 0.25}
  - {name: random_gamma, gamma: [0.7, 1.5], invert: true, prob: 0.1}
  - {name: random_gamma, gamma: [0.7, 1.5], prob: 0.3}
  - {name: random_flip, axes: [0, 1, 2], prob: 0.5}
  - name: one_of
    weights: [1, 1, 1]
    prob: 0.3
    transforms:
      - {name: random_bias_field, prob: 1.0}
      - {name: random_motion, prob: 1.0}
      - {name: random_ghosting, prob: 1.0}
"""


def test_config_augment_builds_and_validates(tmp_path: Path):
    import yaml

    from tests.conftest import run_cli

    (tmp_path / "data").mkdir()
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(textwrap.dedent("""
        experiment: {name: aug}
        data: {root: data, images: [t1.nii.gz], label: label.nii.gz}
        model: {name: unet, channels: [8, 16], strides: [2]}
        inference: {roi_size: [32, 32, 32]}
        """) + AUGMENT_YAML)
    res = run_cli("config", "validate", cfg)
    assert res.exit_code == 0, res.output
    chain = build_transforms(yaml.safe_load(AUGMENT_YAML)["augment"], key="augment")
    out = chain(make_sample(3), gen(0))
    assert [r.name for r in out.history][:3] == ["random_elastic", "random_noise", "random_blur"]
    bad = cfg.read_text().replace("std: [0.0, 0.1]", "std: [0.3, 0.1]")
    cfg.write_text(bad)
    res = run_cli("config", "validate", cfg)
    assert res.exit_code == 2 and "augment[1].std" in res.output and "write std: [min, max]" in res.output
