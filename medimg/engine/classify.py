"""Classification through the same ``train(config)``: whole-image batches, the same Trainer
loop and callbacks, classification metrics on validation, a binary operating threshold
chosen on validation and stored in the checkpoint, and the best checkpoint scored on the
test split (``RUN_DIR/test``) by :func:`medimg.metrics.evaluate_classification`.

:func:`fit_classification` is what :func:`medimg.engine.train` runs when
``experiment.task`` is ``classification``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import ConfigError, DataError
from ..core.spec import ExperimentConfig, InferenceSpec
from ..data.classification import ClassificationData, ClassificationSplit, load_classification
from ..data.cls_loader import ClassificationDataset, check_two_classes, classification_loader
from ..data.folds import apply_fold_classification, fold_split_file
from ..inference.classify import task_of, write_class_predictions
from ..inference.predictor import Predictor
from ..losses import LOSSES
from ..metrics.classification import (
    choose_threshold,
    classification_metrics,
    evaluate_classification,
)
from ..models import MODELS
from ..transforms.build import build_transforms
from .callbacks import training_info
from .distributed import DistInfo
from .optim import OPTIMIZERS, build_scheduler
from .selection import LOSS
from .tracking import tracking_callbacks
from .trainer import Trainer, TrainResult

__all__ = ["TEST_DIR", "ClassificationTrainer", "evaluate_test_split", "fit_classification", "predict_split"]

#: The run folder's subfolder for the test split's predictions and scores.
TEST_DIR = "test"

#: Images per forward pass when predicting a whole split.
_CHUNK = 256


def predict_split(predictor: Predictor, images: torch.Tensor) -> np.ndarray:
    """Class probabilities ``(N, K)`` of preprocessed images ``(N, C, *spatial)``."""
    out = [predictor.classify_batch(images[i : i + _CHUNK]) for i in range(0, len(images), _CHUNK)]
    return torch.cat(out).numpy() if out else np.zeros((0, predictor.num_classes or 0))


def operating_threshold(rule: str | float, target_sensitivity: float | None, y: np.ndarray,
                        probs: np.ndarray) -> float:
    """The binary operating threshold by the config's rule (``evaluation.threshold`` and
    ``evaluation.target_sensitivity``), chosen on validation targets ``y`` and
    probabilities ``probs`` ``(n, 2)``; a fixed number is returned as it is."""
    if not isinstance(rule, str):
        return float(rule)
    method = rule if target_sensitivity is None else "sensitivity"
    choice = choose_threshold(y, probs[:, 1], method, target_sensitivity or 0.9, split="validation")
    return float(min(max(choice.threshold, 0.0), 1.0))


class ClassificationTrainer(Trainer):
    """The :class:`Trainer` with classification validation.

    Validation predicts the whole validation split with the :class:`Predictor` (what
    ``medimg predict`` runs), chooses the binary operating threshold on it (Youden's J,
    or the highest threshold reaching ``target_sensitivity``), stores it in the spec
    saved with every checkpoint, and scores the split with
    :func:`medimg.metrics.classification.classification_metrics` at that threshold.

    Args:
        val_split: the validation images and targets (None or empty: no validation).
        target_sensitivity: ``evaluation.target_sensitivity``.
        threshold_rule: ``evaluation.threshold``.
        *args, **kwargs: as for :class:`Trainer` (``val_samples`` is not used).
    """

    def __init__(self, *args: Any, val_split: ClassificationSplit | None = None,
                 target_sensitivity: float | None = None, threshold_rule: str | float = "youden",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threshold_rule = threshold_rule
        self.val_split = val_split
        self.val_samples = [val_split] if val_split is not None and len(val_split) else []
        self.target_sensitivity = target_sensitivity

    def _threshold(self, y: np.ndarray, probs: np.ndarray, task: str) -> float | None:
        """The binary operating threshold chosen on validation (None for other tasks)."""
        if task != "binary":
            return None
        return operating_threshold(self.threshold_rule, self.target_sensitivity, y, probs)

    def _validation_loss(self, probs: np.ndarray, y: torch.Tensor) -> float:
        """The training loss on the validation predictions (logits from the probabilities)."""
        p = torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7)
        logits = torch.logit(p) if self.spec.multilabel else torch.log(p)
        with torch.no_grad():
            return float(self.loss_fn(logits.to(self.device), y.to(self.device)))

    def _validate(self) -> dict[str, float]:
        """Score the current weights on the validation split (rank 0)."""
        assert self.val_split is not None
        self.eval_model.eval()
        probs = predict_split(self._predictor(), self.val_split.images)
        y = self.val_split.targets.numpy()
        task = task_of(len(self.label_names), self.spec.multilabel)
        threshold = self._threshold(y, probs, task)
        if threshold is not None:
            self.spec = self.spec.with_updates(threshold=threshold)
        names = [m for m in self.metrics if m != LOSS]
        scores = classification_metrics(
            y, probs, task=task, threshold=0.5 if threshold is None else threshold, metrics=names, split="validation"
        )
        if LOSS in self.metrics:
            scores[LOSS] = self._validation_loss(probs, self.val_split.targets)
        if threshold is not None:
            scores["threshold"] = threshold
        return scores


def _labels_csv(path: Path, split: ClassificationSplit, class_names: Sequence[str], multilabel: bool) -> Path:
    """A label CSV of ``split`` as :func:`evaluate_classification` reads it."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        if multilabel:
            w.writerow(["case_id", *class_names])
            for cid, t in zip(split.case_ids, split.targets.tolist()):
                w.writerow([cid, *(round(v) for v in t)])
        else:
            w.writerow(["case_id", "label"])
            for cid, t in zip(split.case_ids, split.targets.tolist()):
                w.writerow([cid, class_names[int(t)]])
    return path


def evaluate_test_split(checkpoint: Path, split: ClassificationSplit, out_dir: Path,
                        device: torch.device, seed: int = 0) -> dict[str, Any]:
    """Predict ``split`` with ``checkpoint`` and score it: ``out_dir/predictions.csv``,
    ``labels.csv``, ``metrics.csv``, ``summary.json`` (and the figures).

    Returns:
        The summary (``summary.json``'s content).
    """
    predictor = Predictor.from_checkpoint(checkpoint, device)
    names = list(predictor.label_names or [])
    probs = predict_split(predictor, split.images)
    out_dir.mkdir(parents=True, exist_ok=True)
    preds = write_class_predictions(
        out_dir / "predictions.csv", split.case_ids, probs, names, predictor.spec.threshold, predictor.spec.multilabel
    )
    labels = _labels_csv(out_dir / "labels.csv", split, names, predictor.spec.multilabel)
    evaluate_classification(preds, labels, out_dir, seed=seed)
    return json.loads((out_dir / "summary.json").read_text())


def _model_params(cfg: ExperimentConfig, data: ClassificationData) -> dict[str, Any]:
    """The model's kwargs with ``in_channels``, ``out_channels``, ``spatial_dims`` from the data.

    Raises:
        ConfigError: a value given in the config contradicts the data.
    """
    params = dict(cfg.model.params)
    derived = {
        "in_channels": (data.in_channels, "the images have"),
        "out_channels": (len(data.class_names), "the data has classes:"),
        "spatial_dims": (data.spatial_dims, "the images are"),
    }
    for key, (value, what) in derived.items():
        given = params.setdefault(key, value)
        if given != value:
            detail = f"{what} {', '.join(data.class_names)}" if key == "out_channels" else f"{what} {value}"
            raise ConfigError(
                f"model.{key} is {given} but {detail} ({data.source})",
                hint=f"remove model.{key} (it is derived from the data) or make them agree",
            )
    return params


def _spec(cfg: ExperimentConfig, data: ClassificationData, in_channels: int) -> InferenceSpec:
    """What prediction needs: preprocessing, class names, image size (``roi_size``), TTA."""
    shape = list(data.splits["train"].images.shape[2:])
    return InferenceSpec(
        roi_size=shape,
        tta_flips=[a for a in cfg.inference.tta_flips if a < len(shape)],
        task="classification",
        preprocess=[s.model_dump() for s in cfg.preprocess],
        image_keys=list(cfg.data.images),
        in_channels=in_channels,
        label_names=list(data.class_names),
        multilabel=data.multilabel,
    )


def _load(cfg: ExperimentConfig, config_path: Any) -> ClassificationData:
    """The data, preprocessed; the validation split checked to have every class when
    the AUC is computed on it."""
    base_dir = Path(config_path).absolute().parent if config_path else Path.cwd()
    preprocess = build_transforms(cfg.preprocess, "preprocess", deterministic=True) if cfg.preprocess else None
    data = load_classification(cfg.data, base_dir, preprocess)
    split_file = fold_split_file(cfg.data, base_dir)
    if split_file is not None:
        data = apply_fold_classification(data, split_file, cfg.data.fold)
    val = data.splits.get("validation")
    wants_auc = "auc" in [*cfg.evaluation.metrics, cfg.evaluation.select_by]
    if val is not None and len(val) and wants_auc:
        check_two_classes(val, data.class_names, data.split_names.get("validation", "validation"), data.source)
    return data


def _components(cfg: ExperimentConfig, params: dict[str, Any], device: torch.device, iterations: int) -> tuple[Any, Any, Any, Any]:
    """Model, loss, optimizer and scheduler, each built from its spec."""
    model = MODELS.build({"name": cfg.model.name, **params}, key="model").to(device)
    loss_fn = LOSSES.build(cfg.loss, key="loss")
    optimizer = OPTIMIZERS.build(cfg.optimizer, model.parameters(), key="optimizer")
    scheduler = build_scheduler(cfg.scheduler, optimizer, cfg.trainer.max_epochs, iterations)
    return model, loss_fn, optimizer, scheduler


def _batches(cfg: ExperimentConfig, data: ClassificationData, dist: DistInfo, device: torch.device) -> tuple[Any, int]:
    """The epoch -> batches callable and the number of batches per epoch."""
    tr = cfg.trainer
    train = data.splits["train"]
    augment = build_transforms(cfg.augment, "augment") if cfg.augment else None
    dataset = ClassificationDataset(train, augment, seed=cfg.experiment.seed)
    per_rank = max(1, len(train) // dist.world_size)
    if tr.iterations_per_epoch:
        per_rank = tr.iterations_per_epoch * tr.batch_size
    make = classification_loader(
        dataset, tr.batch_size, balanced=cfg.data.balanced_sampling, num_workers=cfg.data.num_workers,
        rank=dist.rank, world_size=dist.world_size, pin_memory=device.type == "cuda", samples=per_rank,
    )
    iterations = per_rank // tr.batch_size if per_rank > tr.batch_size else 1
    return make, iterations


def fit_classification(cfg: ExperimentConfig, config_path: str | os.PathLike | None, run_dir: Path,
                       device: torch.device, dist: DistInfo, progress: bool,
                       resume: dict[str, Any] | None = None) -> TrainResult:
    """Load the data, build the components, fit, and score the best checkpoint on the test split.

    ``resume``: a loaded ``last.pt`` to continue from (:meth:`Trainer.resume_from`).

    Raises:
        DataError: bad data (see :func:`medimg.data.classification.load_classification`),
            or a validation split on which the AUC is undefined.
        ConfigError: a component that does not build, or model keys that contradict the data.
    """
    tr = cfg.trainer
    data = _load(cfg, config_path)
    params = _model_params(cfg, data)
    batches, iterations = _batches(cfg, data, dist, device)
    model, loss_fn, optimizer, scheduler = _components(cfg, params, device, iterations)
    trainer = ClassificationTrainer(
        model, loss_fn, optimizer, batches, iterations, [], _spec(cfg, data, params["in_channels"]),
        {"name": cfg.model.name, **params}, run_dir, device,
        scheduler=scheduler, max_epochs=tr.max_epochs, val_every=tr.val_every, patience=tr.patience,
        max_minutes=tr.max_minutes, grad_clip=tr.grad_clip, accumulate=tr.accumulate, ema=tr.ema, metrics=cfg.evaluation.metrics,
        select_by=cfg.evaluation.select_by, amp=tr.amp, channels_last=tr.channels_last, dist=dist, progress=progress,
        data_info={"source": data.source, "class_names": data.class_names, **_split_counts(data)},
        training_info=training_info(cfg),
        val_split=data.splits.get("validation"), target_sensitivity=cfg.evaluation.target_sensitivity,
        threshold_rule=cfg.evaluation.threshold,
    )
    if dist.is_main and progress:
        sizes = ", ".join(f"{len(s)} {name}" for name, s in data.splits.items())
        trainer.log(f"training {cfg.model.name} on {device}: {sizes} cases, classes {data.class_names} -> {run_dir}")
    if resume is not None:
        trainer.resume_from(resume, str(run_dir / "last.pt"))
    result = trainer.fit(tracking_callbacks(trainer, tr.tensorboard))
    test = data.splits.get("test")
    checkpoint = result.best_checkpoint or result.last_checkpoint
    if dist.is_main and cfg.evaluation.test and test is not None and len(test) and checkpoint is not None:
        result.test_summary = _score_test(trainer, checkpoint, test, run_dir, device, cfg.experiment.seed)
    return result


def _score_test(trainer: Trainer, checkpoint: Path, test: ClassificationSplit, run_dir: Path,
                device: torch.device, seed: int) -> dict[str, Any] | None:
    """Score the test split and log its AUC and accuracy (a problem is logged, not raised:
    the trained model stays usable)."""
    try:
        summary = evaluate_test_split(checkpoint, test, run_dir / TEST_DIR, device, seed)
    except DataError as exc:
        trainer.log(f"test split not scored: {exc}")
        return None
    metrics = summary.get("metrics", summary)
    parts = []
    for name in ("auc", "accuracy"):
        value = metrics.get(name) if isinstance(metrics, dict) else None
        if isinstance(value, dict):
            value = value.get("value")
        if isinstance(value, (int, float)) and not math.isnan(value):
            parts.append(f"{name} {value:.4f}")
    trainer.log(f"test ({len(test)} cases, {checkpoint.name}): {', '.join(parts)} -> {run_dir / TEST_DIR}")
    return summary


def _split_counts(data: Any) -> dict[str, Any]:
    """Cases per split, and per class (multi-label: cases holding each label), for the
    checkpoint's ``data`` entry (what ``medimg card`` reports)."""
    counts, per_class = {}, {}
    for name, split in data.splits.items():
        counts[name] = len(split)
        t = split.targets
        if data.multilabel:
            totals = t.reshape(len(split), -1).sum(0)
        else:
            totals = torch.bincount(t.long().flatten(), minlength=len(data.class_names))
        per_class[name] = {c: int(v) for c, v in zip(data.class_names, totals.tolist())}
    return {"split_counts": counts, "class_counts": per_class}
