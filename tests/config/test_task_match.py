"""``experiment.task`` and the model / loss it names must agree (issue 7: a classification
config must never train a segmentation network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medimg.config import load_config
from medimg.core import ConfigError


def _problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, check_paths=False)
    return {key: msg for _, key, msg in info.value.problems}


def test_classification_with_a_segmentation_model_and_loss_is_refused(write):
    path = write(
        """
        experiment: {task: classification}
        data: {manifest: cases.csv, images: [image], label: label}
        model: {name: unet}
        loss: {name: dice_ce}
        """
    )
    problems = _problems(path)
    assert problems["model.name"] == (
        "model 'unet' is a segmentation model but experiment.task is classification; "
        "use a classification model (see `medimg list models`) or set experiment.task: segmentation"
    )
    assert problems["loss.name"] == (
        "loss 'dice_ce' is a segmentation loss but experiment.task is classification; "
        "use a classification loss (ce_cls, bce_cls, focal_cls) or set experiment.task: segmentation"
    )


def test_segmentation_with_a_classifier_is_refused(write):
    path = write(
        """
        data: {root: data, images: [t1.nii.gz], label: seg.nii.gz}
        model: {name: resnet18}
        loss: {name: ce_cls}
        """
    )
    problems = _problems(path)
    assert problems["model.name"].startswith(
        "model 'resnet18' is a classification model but experiment.task is segmentation;"
    )
    assert problems["loss.name"].startswith(
        "loss 'ce_cls' is a classification loss but experiment.task is segmentation;"
    )


def test_classification_defaults_are_classification_components(write):
    path = write(
        """
        experiment: {task: classification}
        data: {npz: x.npz}
        model: {name: resnet18, small_input: true}
        """
    )
    cfg = load_config(path, check_paths=False)
    assert cfg.loss.name == "ce_cls"
    assert cfg.evaluation.select_by == "auc"
    assert "auc" in cfg.evaluation.metrics and "accuracy" in cfg.evaluation.metrics
