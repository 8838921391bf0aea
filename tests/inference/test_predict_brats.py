"""Real data: the BraTS config finds its cases; a 2-channel model predicts brats6/test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import shared_path

REPO = Path(__file__).resolve().parents[2]


def test_brats_config_finds_its_cases():
    shared_path("seg", "brats6")
    from medimg.config import load_config
    from medimg.data import load_cases

    cfg = load_config(REPO / "configs" / "brats6_unet.yaml")
    cases = load_cases(cfg.data)
    assert {k: len(v) for k, v in cases.items()} == {"train": 2, "validation": 2, "test": 2}
    assert cfg.inference.sw_batch_size >= 2 and max(cfg.inference.roi_size) <= 96


@pytest.mark.slow
def test_multichannel_prediction_on_brats_test_grid(tmp_path):
    test_dir = shared_path("seg", "brats6", "test")
    from medimg.config import load_config
    from medimg.inference import predict_folder, save_checkpoint
    from medimg.io import read_image
    from medimg.models import create_model

    cfg = load_config(REPO / "configs" / "brats6_unet.yaml")
    params = {"in_channels": 2, "out_channels": 2, "spatial_dims": 3, "channels": [4, 8], "strides": [2]}
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "m.pt", create_model("unet", **params), model_name="unet", model_params=params,
        label_names=cfg.data.label_names, preprocess=[{"name": s.name, **s.params} for s in cfg.preprocess],
        inference={"roi_size": [64, 64, 64], "overlap": 0.0, "sw_batch_size": 4},
        data={"images": list(cfg.data.images)},
    )
    report = predict_folder(ckpt, test_dir, tmp_path / "out", device="cpu", progress=False)
    assert sorted(report.ok) == sorted(d.name for d in test_dir.iterdir() if d.is_dir()) and not report.failed
    for case in report.ok:
        src = read_image(test_dir / case / cfg.data.images[0])
        lab = read_image(tmp_path / "out" / f"{case}.nii.gz")
        assert lab.spatial_shape == src.spatial_shape == (240, 240, 155)
        assert np.allclose(lab.affine, src.affine, atol=1e-5) and "".join(lab.axcodes) == "".join(src.axcodes)
