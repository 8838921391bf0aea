"""select_by: one grammar for `config validate` and training, scored through the metrics
registry, in the registry's direction (hd95 and loss: lower is better)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from medimg.core import ConfigError, Image, Sample, make_affine
from medimg.core.spec import InferenceSpec
from medimg.engine import Trainer, train, validation_metrics
from medimg.engine.selection import parse_select_by, select_by_problem
from medimg.losses import create_loss

NAMES = ["background", "ellipsoid", "sphere"]


def test_grammar_and_direction():
    assert parse_select_by("dice", NAMES).mode == "max"
    hd = parse_select_by("hd95", NAMES)
    assert (hd.metric, hd.class_name, hd.mode, hd.key) == ("hd95", None, "min", "hd95")
    one = parse_select_by("dice_sphere", NAMES)
    assert (one.metric, one.class_name, one.mode) == ("dice", "sphere", "max")
    assert parse_select_by("volume_diff_ml_ellipsoid", NAMES).metric == "volume_diff_ml"
    assert parse_select_by("loss", NAMES).mode == "min"
    assert select_by_problem("nsd_ellipsoid", NAMES) is None
    assert select_by_problem("dice_tumour", NAMES) == (
        "'dice_tumour' is metric 'dice' of class 'tumour', but the foreground classes "
        "(data.label_names) are ellipsoid, sphere"
    )
    assert select_by_problem("dcie", NAMES) == "unknown metric 'dcie'; did you mean 'dice'?"
    with pytest.raises(ConfigError, match="select_by 'hd96' is not a validation metric: unknown metric 'hd96'"):
        parse_select_by("hd96", NAMES)


def _case(shift: int) -> tuple[Sample, torch.Tensor]:
    """A label cube at 2 x 1 x 1 mm and one-hot probabilities shifted ``shift`` voxels along I."""
    ref = torch.zeros(1, 12, 10, 10, dtype=torch.uint8)
    ref[0, 3:8, 3:7, 3:7] = 1
    pred = torch.roll(ref, shift, dims=1)
    probs = torch.nn.functional.one_hot(pred[0].long(), 2).movedim(-1, 0).float()
    affine = make_affine((2.0, 1.0, 1.0))
    sample = Sample({"image": Image(torch.zeros(1, 12, 10, 10), affine),
                     "label": Image(ref, affine, kind="label")}, case_id=f"s{shift}")
    return sample, probs


class _Fixed:
    """Stands in for a Predictor: the prepared probabilities of each case."""

    label_names = ["background", "cube"]
    num_classes = 2

    def __init__(self, probs: dict[str, torch.Tensor]) -> None:
        self.probs = probs

    def predict_probabilities(self, sample, case_id=None):
        return Image(self.probs[sample.case_id], sample["label"].affine, kind="probabilities")


def test_validation_metrics_use_the_registry_with_spacing():
    (a, pa), (b, pb) = _case(0), _case(1)
    pred = _Fixed({a.case_id: pa, b.case_id: pb})
    m = validation_metrics(pred, [a, b], metrics=["dice", "hd95", "loss"], loss_fn=create_loss("ce"))
    assert m["hd95_cube"] == pytest.approx(1.0)  # (0 + 2 mm: one voxel along the 2 mm axis) / 2 cases
    assert m["hd95"] == m["hd95_cube"]
    assert m["dice"] == pytest.approx((1.0 + 2 * 64 / 160) / 2)  # 5x4x4 cube, 4 of 5 slices overlap
    perfect = validation_metrics(pred, [a], metrics=["loss"], loss_fn=create_loss("ce"))["loss"]
    assert perfect < 1e-3 < m["loss"]  # the shifted case costs
    with pytest.raises(ConfigError, match="needs the training loss function"):
        validation_metrics(pred, [a], metrics=["loss"])


def _trainer(tmp_path, select_by: str, metrics=("dice",)) -> Trainer:
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 2, 1)
    batch = {"image": torch.randn(2, 1, 8, 8, 8), "label": torch.randint(0, 2, (2, 1, 8, 8, 8))}
    sample, _ = _case(0)
    return Trainer(
        model, create_loss("ce"), torch.optim.SGD(model.parameters(), lr=0.01), lambda epoch: [batch], 1, [sample],
        InferenceSpec(roi_size=[8, 8, 8], label_names=["background", "cube"]),
        {"name": "unet", "in_channels": 1, "out_channels": 2}, tmp_path, torch.device("cpu"),
        max_epochs=4, metrics=metrics, select_by=select_by, progress=False,
    )


@pytest.mark.parametrize(
    "select_by, values, best_epoch",
    [("hd95", [5.0, 2.0, 3.0, 2.5], 2), ("dice", [0.2, 0.6, 0.4, 0.6], 2), ("loss", [0.9, 0.7, 0.3, 0.5], 3),
     ("hd95_cube", [np.inf, 4.0, 1.0, 1.0], 3)],
)
def test_best_model_follows_the_metric_direction(tmp_path, monkeypatch, select_by, values, best_epoch):
    import medimg.engine.trainer as trainer_module

    scripted = iter(values)

    def fake(predictor, samples, label_names=None, metrics=(), **kwargs):
        v = next(scripted)
        return {"dice": 0.5, select_by: v}

    monkeypatch.setattr(trainer_module, "validation_metrics", fake)
    result = _trainer(tmp_path, select_by).fit()
    assert result.best_epoch == best_epoch and result.best_metric == values[best_epoch - 1]
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert ckpt["training"]["epoch"] == best_epoch and ckpt["training"]["metric_name"] == select_by


def test_trainer_computes_what_select_by_needs(tmp_path):
    t = _trainer(tmp_path, "hd95_cube", metrics=["dice"])
    assert t.metrics == ["dice", "hd95"] and t.select_mode == "min"
    with pytest.raises(ConfigError, match="select_by 'dice_tumour' is not a validation metric"):
        _trainer(tmp_path, "dice_tumour")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from medimg.data import make_synthetic_segmentation

    return make_synthetic_segmentation(tmp_path_factory.mktemp("syn"), 3, 1, 1, shape=(24, 24, 16), seed=3)


def _config_file(tmp_path, root, select_by: str):
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"""
experiment: {{name: tiny, seed: 1}}
data: {{root: {root}, images: [t1.nii.gz, t2.nii.gz], label: label.nii.gz,
        label_names: [background, ellipsoid, sphere]}}
preprocess: [{{name: orient, axcodes: RAS}}, {{name: normalize_intensity}}]
augment: [{{name: random_crop, roi_size: [16, 16, 16], pos_fraction: 0.5}}]
model: {{name: unet, channels: [4, 8], strides: [2], num_res_units: 0}}
optimizer: {{name: adamw, lr: 0.01}}
trainer: {{max_epochs: 2, iterations_per_epoch: 2, batch_size: 2, device: cpu}}
inference: {{roi_size: [16, 16, 16], sw_batch_size: 2}}
evaluation: {{metrics: [dice, hd95], select_by: {select_by}}}
"""
    )
    return path


def test_what_validates_trains(tiny_data, tmp_path):
    """dice_<class> and hd95 pass `config validate` and train, selecting in their direction."""
    from medimg.config import load_config

    with pytest.raises(ConfigError) as info:
        load_config(_config_file(tmp_path, tiny_data, "dice_tumour"))
    [(loc, key, msg)] = info.value.problems
    assert key == "evaluation.select_by" and "foreground classes (data.label_names) are ellipsoid, sphere" in msg
    for select_by in ("dice_sphere", "hd95"):
        cfg = load_config(_config_file(tmp_path, tiny_data, select_by))
        result = train(cfg, output_dir=tmp_path / select_by, progress=False)
        rows = list(csv.DictReader(open(tmp_path / select_by / "history.csv")))
        assert {"val_dice", "val_hd95", "val_hd95_sphere", "val_dice_sphere"} <= set(rows[0])
        values = [row[f"val_{select_by}"] for row in result.history]
        best = min(values) if select_by == "hd95" else max(values)
        assert result.best_metric == pytest.approx(best) and values[result.best_epoch - 1] == pytest.approx(best)
        assert torch.load(result.best_checkpoint, weights_only=True)["training"]["metric_name"] == select_by
