"""Predictor: labels on the exact input grid, probabilities, TTA, inputs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medimg.core import GeometryError, Image, Sample, make_affine
from medimg.inference import Predictor, save_checkpoint
from medimg.models import create_model

PARAMS = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "channels": [4, 8], "strides": [2], "num_res_units": 0}
PREPROCESS = [{"name": "orient", "axcodes": "RAS"}, {"name": "resample", "spacing": [1.5, 1.5, 1.5]}]


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", **PARAMS)


def _lps_anisotropic(shape=(21, 26, 11), channels: int = 1) -> Image:
    """A non-RAS (L, P, S rotated) anisotropic image with an odd origin."""
    direction = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # i->P, j->L
    affine = make_affine((0.8, 1.3, 2.5), (12.3, -40.1, 7.7), direction)
    g = torch.Generator().manual_seed(1)
    return Image(torch.rand((channels, *shape), generator=g), affine)


def test_label_on_exact_input_grid_non_ras_anisotropic():
    import medimg.transforms.spatial  # noqa: F401  (registers orient/resample)

    image = _lps_anisotropic()
    assert "".join(image.axcodes) != "RAS"
    pred = Predictor(_tiny_model(), preprocess=PREPROCESS, roi_size=[16, 16, 16], sw_batch_size=2, device="cpu")
    label = pred.predict(image, case_id="c1")
    assert label.kind == "label"
    assert label.spatial_shape == image.spatial_shape and label.num_channels == 1
    assert np.array_equal(label.affine, image.affine)
    assert label.dtype == torch.uint8 and int(label.data.max()) < 3
    probs = pred.predict_probabilities(image)
    assert probs.kind == "probabilities" and probs.shape == (3, *image.spatial_shape)
    assert torch.allclose(probs.data.sum(0), torch.ones(image.spatial_shape), atol=1e-4)
    assert torch.equal(label.data[0], probs.data.argmax(0).to(torch.uint8))
    assert image.data.dtype == torch.float32 and image.affine[0, 1] == -1.3  # input untouched


def test_identity_preprocess_equals_model_softmax():
    model = _tiny_model().eval()
    image = Image(torch.randn(1, 16, 16, 16), make_affine((2.0, 2.0, 2.0)))
    pred = Predictor(model, roi_size=[16, 16, 16], device="cpu")
    with torch.no_grad():
        ref = torch.softmax(model(image.data[None]), 1)[0]
    assert torch.allclose(pred.predict_probabilities(image).data, ref, atol=1e-5)


def test_flip_tta_is_exact_for_symmetric_model_and_averages_otherwise():
    torch.manual_seed(0)
    pointwise = torch.nn.Conv3d(1, 2, 1)
    image = Image(torch.randn(1, 12, 12, 12))
    plain = Predictor(pointwise, roi_size=[12, 12, 12], device="cpu").predict_probabilities(image)
    tta = Predictor(pointwise, roi_size=[12, 12, 12], tta_flips=[0, 1, 2], device="cpu").predict_probabilities(image)
    assert torch.allclose(plain.data, tta.data, atol=1e-5)  # flip-equivariant model: same
    model = _tiny_model().eval()
    img = Image(torch.randn(1, 16, 16, 16))
    flipped = img.new(torch.flip(img.data, [1]))
    plain = Predictor(model, roi_size=[16, 16, 16], device="cpu")
    a = plain.predict_probabilities(img).data
    b = torch.flip(plain.predict_probabilities(flipped).data, [1])
    tta = Predictor(model, roi_size=[16, 16, 16], tta_flips=[0], device="cpu").predict_probabilities(img).data
    assert not torch.allclose(a, b, atol=1e-3)  # the UNet is not flip-equivariant...
    assert torch.allclose(tta, (a + b) / 2, atol=1e-5)  # ...so TTA is the mean of both passes


def test_channels_from_list_and_grid_check():
    params = dict(PARAMS, in_channels=2)
    torch.manual_seed(0)
    pred = Predictor(create_model("unet", **params), roi_size=[16, 16, 16], device="cpu", image_keys=["flair", "t1c"])
    a = _lps_anisotropic((16, 16, 16))
    b = a.new(torch.rand(1, 16, 16, 16))
    assert pred.predict([a, b]).spatial_shape == (16, 16, 16)
    moved = b.new(affine=b.affine + np.eye(4) * 0 + np.pad(np.ones((3, 1)), ((0, 1), (3, 0))))
    with pytest.raises(GeometryError, match="is not on the grid of the first channel"):
        pred.predict([a, moved])
    with pytest.raises(GeometryError, match=r"expects 2 input channel\(s\) \(flair, t1c\), got 1"):
        pred.predict(a)


def test_sample_input_and_2d():
    torch.manual_seed(0)
    model = create_model("unet", in_channels=1, out_channels=2, spatial_dims=2, channels=[4, 8], strides=[2])
    pred = Predictor(model, roi_size=[16, 16], device="cpu")
    img = Image(torch.randn(1, 30, 20), make_affine((0.5, 0.7)))
    label = pred.predict(Sample(images={"image": img, "label": img.new(kind="label")}, case_id="s"))
    assert label.spatial_shape == (30, 20) and np.array_equal(label.affine, img.affine)
    with pytest.raises(GeometryError, match=r"roi_size \[16, 16\] has 2 axes but case 'x' is 3D"):
        pred.predict(Image(torch.randn(1, 8, 8, 8)), case_id="x")


def test_from_checkpoint_with_overrides(tmp_path):
    import medimg.transforms.spatial  # noqa: F401

    p = tmp_path / "m.pt"
    model = _tiny_model()
    save_checkpoint(
        p, model, model_name="unet", model_params=PARAMS, label_names=["bg", "a", "b"],
        preprocess=PREPROCESS, inference={"roi_size": [32, 32, 32], "overlap": 0.5, "sw_batch_size": 2},
        data={"images": ["t1.nii.gz"]},
    )
    pred = Predictor.from_checkpoint(p, device="cpu", roi_size=[16, 16, 16], overlap=None)
    assert pred.roi_size == [16, 16, 16] and pred.overlap == 0.5 and pred.label_names == ["bg", "a", "b"]
    assert [t.name for t in pred.preprocess] == ["orient", "resample"]
    image = _lps_anisotropic()
    direct = Predictor(model, preprocess=PREPROCESS, roi_size=[16, 16, 16], overlap=0.5, device="cpu")
    assert torch.equal(pred.predict(image).data, direct.predict(image).data)
    with pytest.raises(TypeError, match="unknown inference override"):
        Predictor.from_checkpoint(p, device="cpu", roi=[8, 8, 8])


def test_random_transform_refused_in_preprocess():
    from medimg.core.errors import TransformError
    from medimg.transforms import TRANSFORMS

    random_names = [n for n in TRANSFORMS.list() if getattr(TRANSFORMS.get(n), "random", False)]
    if not random_names:
        pytest.skip("no random transform registered yet")
    with pytest.raises(TransformError, match="is a random transform"):
        Predictor(_tiny_model(), preprocess=[{"name": random_names[0]}], device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_matches_cpu():
    image = Image(torch.randn(1, 24, 24, 24))
    model = _tiny_model()
    cpu = Predictor(model, roi_size=[16, 16, 16], device="cpu").predict_probabilities(image)
    gpu = Predictor(_tiny_model(), roi_size=[16, 16, 16], device="cuda", amp="bf16").predict_probabilities(image)
    assert gpu.data.device.type == "cpu"
    assert (cpu.data.argmax(0) == gpu.data.argmax(0)).float().mean() > 0.95


def test_spec_or_keywords_build_the_same_predictor():
    from medimg.inference import InferenceSpec

    spec = InferenceSpec(preprocess=PREPROCESS, roi_size=[16, 16, 16], overlap=0.5, label_names=["bg", "a", "b"])
    model = _tiny_model()
    a = Predictor(model, spec, device="cpu")
    b = Predictor(model, preprocess=PREPROCESS, roi_size=[16, 16, 16], overlap=0.5, label_names=["bg", "a", "b"],
                  device="cpu")
    assert a.spec == b.spec and a.roi_size == [16, 16, 16] and a.label_names == ["bg", "a", "b"]
    c = Predictor(model, spec, device="cpu", overlap=0.0)  # keywords on top of a spec
    assert c.overlap == 0.0 and c.roi_size == [16, 16, 16] and spec.overlap == 0.5
    with pytest.raises(TypeError, match="unknown inference override"):
        Predictor(model, spec, device="cpu", overlp=0.1)


def test_with_options_leaves_the_original_alone():
    pred = Predictor(_tiny_model(), preprocess=PREPROCESS, roi_size=[16, 16, 16], device="cpu")
    before = pred.spec
    other = pred.with_options(overlap=0.5, tta_flips=[0, 1], sw_batch_size=None, device="cpu")
    assert other is not pred and other.model is pred.model  # the network is shared
    assert other.overlap == 0.5 and other.tta_flips == [0, 1] and other.sw_batch_size == pred.sw_batch_size
    assert pred.spec is before and pred.overlap == 0.25 and pred.tta_flips == []
    assert [t.name for t in other.preprocess] == ["orient", "resample"]
    with pytest.raises(AttributeError):
        pred.overlap = 0.9  # settings are read-only: change them with with_options
    with pytest.raises(TypeError, match="unknown inference override"):
        pred.with_options(tile=3)
