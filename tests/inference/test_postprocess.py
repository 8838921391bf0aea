"""Per-class post-processing: largest connected component, minimum size in mL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medimg.core import ConfigError, Image, make_affine
from medimg.core.spec import InferenceSpec, PostprocessSpec
from medimg.inference import Predictor, predict_folder
from medimg.inference.postprocess import (
    parse_class_list,
    parse_class_sizes,
    postprocess_labels,
    voxel_volume_ml,
)
from medimg.io import read_image, write_image


def _mask() -> Image:
    """Class 1: blobs of 27 and 8 voxels; class 2: blobs of 12 and 2 voxels; 2 mm voxels (0.008 mL)."""
    m = np.zeros((20, 20, 10), np.uint8)
    m[1:4, 1:4, 1:4] = 1  # 27 voxels = 0.216 mL
    m[10:12, 10:12, 1:3] = 1  # 8 voxels = 0.064 mL
    m[15:18, 1:3, 5:7] = 2  # 12 voxels = 0.096 mL
    m[1, 15, 8:10] = 2  # 2 voxels = 0.016 mL
    return Image(torch.from_numpy(m)[None], make_affine((2.0, 2.0, 2.0)), kind="label")


def _counts(image: Image) -> dict[int, int]:
    values, counts = np.unique(image.numpy(), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def test_voxel_volume_in_ml():
    assert voxel_volume_ml(_mask()) == pytest.approx(0.008)
    assert voxel_volume_ml(Image(torch.zeros(1, 4, 4), make_affine((0.5, 0.5)))) == pytest.approx(0.25 / 1000)


def test_keep_largest_and_min_size_per_class():
    m = _mask()
    assert _counts(m) == {0: 4000 - 49, 1: 35, 2: 14}
    largest = postprocess_labels(m, PostprocessSpec(keep_largest=[1]))
    assert _counts(largest) == {0: 4000 - 49 + 8, 1: 27, 2: 14}
    assert largest.spatial_shape == m.spatial_shape and np.allclose(largest.affine, m.affine)
    assert largest.data.dtype == m.data.dtype and largest.kind == "label"
    # 0.05 mL removes class 2's 2-voxel blob (0.016 mL), not its 12-voxel one (0.096 mL)
    small = postprocess_labels(m, PostprocessSpec(min_size_ml={2: 0.05}))
    assert _counts(small) == {0: 4000 - 49 + 2, 1: 35, 2: 12}
    # a size above every component of the class removes the class
    both = postprocess_labels(m, PostprocessSpec(keep_largest=[2], min_size_ml={1: 0.3}))
    assert _counts(both) == {0: 4000 - 12, 2: 12}
    assert postprocess_labels(m, PostprocessSpec()) is m and postprocess_labels(m, None) is m


def test_postprocess_spec_is_validated():
    with pytest.raises(ValueError, match="not foreground classes"):
        PostprocessSpec(keep_largest=[0])
    with pytest.raises(ValueError, match="must be volumes in mL >= 0"):
        PostprocessSpec(min_size_ml={1: -1.0})
    spec = InferenceSpec(label_names=["bg", "tumour"])
    with pytest.raises(ConfigError, match=r"postprocess names class values \[3\] but the model has classes 0..1"):
        spec.with_updates(postprocess={"keep_largest": [3]})
    assert spec.with_updates(postprocess={"min_size_ml": {1: 0.5}}).postprocess.min_size_ml == {1: 0.5}


def test_postprocess_in_an_experiment_config():
    from medimg.core.spec import ExperimentConfig

    cfg = ExperimentConfig.model_validate({
        "data": {"root": "data", "images": ["img.nii.gz"], "label": "seg.nii.gz", "label_names": ["bg", "a", "b"]},
        "model": {"name": "unet"},
        "inference": {"roi_size": [16, 16, 16], "postprocess": {"keep_largest": [1, 2], "min_size_ml": {2: 0.5}}},
    })
    spec = cfg.inference_spec(in_channels=1)
    assert spec.postprocess.keep_largest == [1, 2] and spec.postprocess.min_size_ml == {2: 0.5}
    with pytest.raises(ValueError, match=r"inference.postprocess names class values \[3\] but data.label_names"):
        ExperimentConfig.model_validate({
            "data": {"root": "data", "images": ["img.nii.gz"], "label": "seg.nii.gz", "label_names": ["bg", "a", "b"]},
            "model": {"name": "unet"}, "inference": {"postprocess": {"min_size_ml": {3: 1.0}}},
        })


def test_cli_style_values():
    assert parse_class_list("1,2") == [1, 2] and parse_class_sizes("1=0.5, 2=3") == {1: 0.5, 2: 3.0}
    with pytest.raises(ValueError, match="--keep-largest 'x': expected class values"):
        parse_class_list("x")
    with pytest.raises(ValueError, match="--min-size '1:0.5': expected CLASS=ML pairs"):
        parse_class_sizes("1:0.5")


class _Threshold(nn.Module):
    """Logits of class 1 where the intensity is above 0.5: the label map is the bright voxels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.full_like(x, 0.5), x], dim=1) * 10


def test_predict_folder_applies_the_spec_s_postprocess(tmp_path):
    image = _mask()
    write_image(Image(image.data.float().clamp(max=1.0), image.affine), tmp_path / "case.nii.gz")
    pred = Predictor(_Threshold(), InferenceSpec(roi_size=[8, 8, 8], label_names=["bg", "fg"], in_channels=1),
                     device="cpu")
    predict_folder(pred, tmp_path / "case.nii.gz", tmp_path / "raw", progress=False)
    assert _counts(read_image(tmp_path / "raw" / "case.nii.gz"))[1] == 49  # every blob
    predict_folder(pred, tmp_path / "case.nii.gz", tmp_path / "post", progress=False,
                   postprocess={"keep_largest": [1]})
    assert _counts(read_image(tmp_path / "post" / "case.nii.gz"))[1] == 27  # the largest blob only
