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


def _schema_problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, check_paths=False, check_components=False)
    return {key: msg for _, key, msg in info.value.problems}


def test_classification_data_keys_in_a_segmentation_config(write):
    path = write(
        """
        data: {npz: x.npz, images: [image]}
        model: {name: unet}
        """
    )
    assert list(_schema_problems(path).values()) == [
        "data.npz is for classification but experiment.task is segmentation; "
        "set experiment.task: classification or remove data.npz"
    ]


def test_two_data_sources_and_label_columns_without_matching_names(write):
    path = write(
        """
        experiment: {task: classification}
        data: {npz: x.npz, root: data}
        model: {name: resnet18}
        """
    )
    assert _schema_problems(path)["data"] == (
        "give exactly one of 'manifest' (a CSV file) or 'root' (a folder of splits) or 'npz' "
        "(classification arrays) (found root and npz)"
    )
    path = write(
        """
        experiment: {task: classification}
        data: {manifest: m.csv, images: [path], label_columns: [a, b], class_names: [a]}
        model: {name: resnet18}
        """
    )
    assert list(_schema_problems(path).values()) == [
        "data.label_columns has 2 columns but data.class_names 1 names; give one class name per label column"
    ]


def test_classification_metric_names_are_checked(write):
    path = write(
        """
        experiment: {task: classification}
        data: {npz: x.npz}
        model: {name: resnet18}
        evaluation: {metrics: [auc, acuracy], select_by: dice}
        """
    )
    problems = _problems(path)
    assert problems["evaluation.metrics[1]"] == "unknown classification metric 'acuracy'; did you mean 'accuracy' or 'auc'?"
    assert problems["evaluation.select_by"].startswith("unknown classification metric 'dice'; ")
