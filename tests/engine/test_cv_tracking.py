"""Training on a fold, cross-validation summaries, TensorBoard tracking, the curve's title."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_classification import (
    config as cls_config,  # this folder is on sys.path (pytest rootdir import)
)
from test_classification import make_npz
from test_train import _cfg as seg_cfg

from medimg.core.errors import ConfigError, DataError
from medimg.core.spec import ExperimentConfig
from medimg.data import write_split_file
from medimg.engine import callbacks as callbacks_module
from medimg.engine import cross_validate, tracking, train
from medimg.engine.callbacks import FitState, History
from medimg.engine.cv import pooled_summary
from medimg.engine.tracking import TensorBoardLogger, overlay_slice, tensorboard_callback


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn"), 4, 2, 1, shape=(24, 24, 16), seed=3)


def _seg_fold_cfg(root: Path, split_file: Path, fold: int | None, **trainer) -> ExperimentConfig:
    cfg = seg_cfg(root, max_epochs=1, iterations_per_epoch=1, **trainer)
    data = cfg.data.model_copy(update={"split_file": split_file, "fold": fold})
    return cfg.model_copy(update={"data": data, "evaluation": cfg.evaluation.model_copy(update={"test": False})})


def test_train_on_a_fold_validates_on_its_cases_and_logs_to_tensorboard(seg_data, tmp_path, monkeypatch):
    titles: list[str] = []
    monkeypatch.setattr(callbacks_module, "plot_history", lambda h, m, out, title="": titles.append(title))
    ids = ["case_000", "case_001", "case_002", "case_003", "case_004", "case_005"]
    split_file = write_split_file(tmp_path / "s.csv", ids, [0, 1, 2, 1, 0, 2])
    run = tmp_path / "run"
    result = train(_seg_fold_cfg(seg_data, split_file, 1, tensorboard=True), output_dir=run, progress=False)
    assert torch.load(run / "best.pt", weights_only=True)["training"]["fold"] == 1
    assert titles == ["tiny (fold 1)"]  # the curve's title: the experiment's name and fold
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    # the validation slices are drawn from fold 1's cases: the fold is the validation split
    assert sorted(tags["images"]) == ["val_images/case_001", "val_images/case_003"]
    assert {"train/loss_step", "train/lr_step", "train/loss", "train/lr", "train/data_wait", "val/dice",
            "val/dice_sphere"} <= set(tags["scalars"])
    assert events.Scalars("val/dice")[0].value == pytest.approx(result.history[0]["val_dice"], rel=1e-5)
    image = events.Images("val_images/case_001")[0]
    assert (image.width, image.height) == (3 * 24 + 4, 24)  # three panels of the 24 x 24 slice


def test_fold_errors(seg_data, tmp_path):
    ids = ["case_000", "case_001", "case_002", "case_003", "case_004", "case_005"]
    split_file = write_split_file(tmp_path / "s.csv", ids, [0, 1, 2, 1, 0, 2])
    with pytest.raises(DataError, match="data.fold is 3 but split file .*s.csv has folds 0..2"):
        train(_seg_fold_cfg(seg_data, split_file, 3), output_dir=tmp_path / "r3", progress=False)
    with pytest.raises(ConfigError, match="data.split_file is set .* but not data.fold") as e:
        train(_seg_fold_cfg(seg_data, split_file, None), output_dir=tmp_path / "rn", progress=False)
    assert "medimg cv" in e.value.cli_hint
    other = write_split_file(tmp_path / "o.csv", [*ids, "case_099"], [0, 1, 2, 1, 0, 2, 1])
    with pytest.raises(DataError, match=r"names 1 case\(s\) \['case_099'\] that data.root .* does not have"):
        train(_seg_fold_cfg(seg_data, other, 0), output_dir=tmp_path / "ro", progress=False)
    with pytest.raises(ValueError, match="fold 1 is given but no split_file"):
        ExperimentConfig.model_validate({**seg_cfg(seg_data).model_dump(), "data": {
            **seg_cfg(seg_data).data.model_dump(), "fold": 1}})


def test_cross_validate_classification_writes_per_fold_and_pooled_summary(tmp_path):
    npz = make_npz(tmp_path / "toy.npz", n=(18, 9, 6))
    ids = [f"train_{i}" for i in range(18)] + [f"val_{i}" for i in range(9)]
    labels = [i % 2 for i in range(18)] + [i % 2 for i in range(9)]
    from medimg.data import assign_folds

    split_file = write_split_file(tmp_path / "s.csv", ids, assign_folds(ids, 3, strata=[str(y) for y in labels]))
    cfg = cls_config(npz, max_epochs=1)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"split_file": split_file}),
                                 "evaluation": cfg.evaluation.model_copy(update={"test": False})})
    result = cross_validate(cfg, tmp_path / "cv", progress=False)
    assert [f.fold for f in result.folds] == [0, 1, 2]
    for k in range(3):
        ckpt = torch.load(tmp_path / "cv" / f"fold_{k}" / "best.pt", weights_only=True)
        assert ckpt["training"]["fold"] == k
    rows = list(csv.DictReader(open(tmp_path / "cv" / "cv_summary.csv")))
    assert [r["fold"] for r in rows] == ["0", "1", "2", "pooled"]
    values = [float(r[f"best_{result.metric}"]) for r in rows[:3]]
    doc = json.loads((tmp_path / "cv" / "cv_summary.json").read_text())
    assert doc["pooled"]["mean"] == pytest.approx(np.mean(values), rel=1e-5)
    assert doc["pooled"]["ci_method"].startswith("t-based")
    assert float(rows[3]["ci_low"]) <= np.mean(values) <= float(rows[3]["ci_high"])
    with pytest.raises(ConfigError, match=r"fold\(s\) \[5\] out of range"):
        cross_validate(cfg, tmp_path / "cv2", folds=[5], progress=False)


def test_pooled_summary_is_the_t_interval():
    s = pooled_summary([0.8, 0.82, 0.78, 0.85, 0.75])
    # mean 0.8, sd 0.0381..., t(0.975, 4) = 2.776
    assert s["mean"] == pytest.approx(0.8)
    assert s["ci_high"] - s["mean"] == pytest.approx(2.7764 * np.std([0.8, 0.82, 0.78, 0.85, 0.75], ddof=1) / math.sqrt(5), rel=1e-3)
    assert math.isnan(pooled_summary([0.7])["ci_low"])


class _Writer:
    def __init__(self):
        self.scalars: list[tuple[str, float, int]] = []
        self.images: list[tuple[str, tuple, int]] = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_image(self, tag, image, step, dataformats):
        self.images.append((tag, image.shape, step))

    def flush(self):
        pass

    def close(self):
        pass


def test_tensorboard_logger_steps_and_epochs():
    writer = _Writer()
    image = np.zeros((4, 14, 3), np.uint8)
    cb = TensorBoardLogger("unused", images=lambda state: [("c1", image)], lr=lambda: 0.5, writer=writer)
    state = FitState(max_epochs=2, iterations_per_epoch=3)
    cb.on_fit_start(state)
    state.begin_epoch(2)
    state.step, state.loss = 2, 0.25
    cb.on_step_end(state)
    state.row = {"epoch": 2, "train_loss": 0.3, "lr": 0.5, "data_wait": 0.1}
    state.metrics = {"dice": 0.7, "hd95": math.nan}
    cb.on_validation_end(state, state.metrics)
    cb.on_epoch_end(state)
    assert ("train/loss_step", 0.25, 5) in writer.scalars and ("train/lr_step", 0.5, 5) in writer.scalars
    assert {("train/loss", 0.3, 2), ("train/data_wait", 0.1, 2), ("val/dice", 0.7, 2)} <= set(writer.scalars)
    assert not any(tag == "val/hd95" for tag, _, _ in writer.scalars)  # NaN is not logged
    assert writer.images == [("val_images/c1", (4, 14, 3), 2)]


def test_tensorboard_missing_is_said_once(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    monkeypatch.setattr(tracking, "_warned", False)
    said: list[str] = []
    assert tensorboard_callback("run", said.append) is None
    assert tensorboard_callback("run", said.append) is None
    assert len(said) == 1 and "pip install 'medimg[tensorboard]'" in said[0]


def test_overlay_panels_colour_reference_and_prediction():
    image = np.linspace(0, 1, 36).reshape(6, 6)
    ref = np.zeros((6, 6), int)
    ref[1:3, 1:3] = 1
    pred = np.zeros((6, 6), int)
    pred[3:5, 3:5] = 2
    out = overlay_slice(image, ref, pred)
    assert out.shape == (6, 3 * 6 + 4, 3) and out.dtype == np.uint8
    grey, refp, predp = out[:, :6], out[:, 8:14], out[:, 16:22]
    assert (grey[..., 0] == grey[..., 1]).all()  # the image panel is grey
    assert refp[1, 1, 0] > refp[1, 1, 2] and (refp[4, 4] == grey[4, 4]).all()  # class 1 reddish, rest untouched
    assert predp[4, 4, 1] > predp[4, 4, 0] and (predp[1, 1] == grey[1, 1]).all()  # class 2 greenish


def test_curve_title_is_the_experiment_name(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(callbacks_module, "plot_history", lambda h, m, out, title="": seen.setdefault("title", title))
    state = FitState(max_epochs=1, iterations_per_epoch=1)
    state.history = [{"epoch": 1, "train_loss": 1.0}]
    History(tmp_path / "runs" / "x", title="brats whole tumour (fold 2)").on_fit_end(state)
    assert seen["title"] == "brats whole tumour (fold 2)"
