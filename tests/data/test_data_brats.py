"""Real data: one BraTS 2013 case through orient + resample + normalise, and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medimg.config.schema import DataSection
from medimg.data import CaseDataset, load_cases
from medimg.transforms import build_compose, invert_history
from tests.conftest import shared_path


@pytest.mark.slow
def test_brats_case_preprocess_and_invert():
    root = shared_path("seg", "brats6")
    data = DataSection(
        root=root,
        images=["Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"],
        label="OTMultiClass.nii.gz",
        label_names=["background", "necrosis", "oedema", "non-enhancing", "enhancing"],
    )
    cases = load_cases(data)
    assert [len(cases[s]) for s in ("train", "validation", "test")] == [2, 2, 2]
    pre = build_compose([
        {"name": "orient", "axcodes": "RAS"},
        {"name": "resample", "spacing": [1.5, 1.5, 1.5]},
        {"name": "normalize_intensity", "nonzero": True},
    ])
    ds = CaseDataset(cases["train"][:1], data, pre, cache=False)
    s = ds[0]
    im, lab = s["image"], s["label"]
    assert im.shape == (2, 160, 160, 103) and im.axcodes == ("R", "A", "S")
    assert np.allclose(im.spacing, (1.5, 1.5, 155 / 103), atol=1e-6)
    assert lab.kind == "label" and lab.data.max() <= 4 and (lab.data > 0).any()
    brain = im.data[0][im.data[0] != 0]
    assert abs(float(brain.mean())) < 1e-3 and abs(float(brain.std()) - 1) < 1e-2
    # back onto the source grid: shape and affine equal, label mostly equal
    back = invert_history(lab, s.history)
    assert list(back.spatial_shape) == s.meta["source_shape"] == [240, 240, 155]
    assert np.allclose(back.affine, s.meta["source_affine"], atol=1e-6)
    from medimg.io import read_image

    src = read_image(cases["train"][0].label_path, kind="label")
    fg = src.data > 0
    agree = (back.data.long() == src.data.long())[fg].float().mean()
    assert agree > 0.85  # 1 mm -> 1.5 mm -> 1 mm nearest round trip on small tumour parts
    probs = torch.nn.functional.one_hot(lab.data[0].long(), 5).permute(3, 0, 1, 2).float()
    from medimg.core import Image

    pb = invert_history(Image(probs, lab.affine, "probabilities"), s.history)
    assert torch.allclose(pb.data.sum(0), torch.ones(240, 240, 155), atol=1e-5)
    dice_fg = 2 * ((pb.data.argmax(0) > 0) & fg[0]).sum() / ((pb.data.argmax(0) > 0).sum() + fg.sum())
    assert dice_fg > 0.95
