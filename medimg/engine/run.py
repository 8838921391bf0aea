"""``train(config)``: build every component from an experiment config and fit.

Every component is built by its registry's signature-checked builder
(:meth:`medimg.core.Registry.build`), with errors located at the config key that names it;
preprocessing is built by :func:`medimg.transforms.build_transforms`, the same function the
:class:`~medimg.inference.Predictor` uses, from the same specs the checkpoint stores.
The engine takes the typed :class:`~medimg.core.spec.ExperimentConfig`; reading YAML is
the config layer's business (layers: engine <- config <- cli).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import ConfigError, DataError, exception_reason
from ..core.sample import Sample
from ..core.spec import ExperimentConfig
from ..data import (
    CaseDataset,
    CaseRecord,
    PatchDataset,
    apply_fold,
    collate,
    load_cases,
    load_sample,
)
from ..data.folds import fold_split_file
from ..inference.predictor import resolve_device
from ..losses import LOSSES
from ..models import MODELS
from ..models.registry import with_roi_size
from ..transforms.build import build_transforms
from .callbacks import training_info
from .distributed import DistInfo, cleanup, setup
from .optim import OPTIMIZERS, build_scheduler
from .postlearn import BestValidationPredictions, learn_run_postprocess, will_learn
from .resume import check_resume_config, load_resume_checkpoint
from .rundir import prepare_run_dir, run_dir_for
from .testsplit import TEST_DIR, evaluate_segmentation_test, mean_dice
from .tracking import tracking_callbacks
from .trainer import Trainer, TrainResult, amp_dtype

__all__ = ["train", "seed_everything", "model_params_for", "training_info"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy and torch; ask torch for deterministic kernels, or not (a run
    after a deterministic one in the same process is not left deterministic)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if deterministic:
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False


def model_params_for(cfg: ExperimentConfig) -> dict[str, Any]:
    """The model's kwargs with ``in_channels`` / ``out_channels`` / ``spatial_dims`` filled in.

    ``in_channels`` defaults to the number of ``data.images``, ``out_channels`` to the
    number of ``data.label_names``, ``spatial_dims`` to the length of
    ``inference.roi_size``. Values given in the config must agree. A model that takes a
    ``roi_size`` (``dynunet``) gets ``inference.roi_size``, the training patch, unless given.

    Raises:
        ConfigError: a given value contradicts the data section.
    """
    params = with_roi_size(cfg.model.name, cfg.model.params, cfg.inference.roi_size)
    derived = {
        "in_channels": len(cfg.data.images),
        "out_channels": len(cfg.data.label_names),
        "spatial_dims": len(cfg.inference.roi_size),
    }
    for key, value in derived.items():
        given = params.setdefault(key, value)
        if key == "in_channels" and given != value:
            # a multi-channel file may hold several channels; trust an explicit value
            continue
        if given != value:
            raise ConfigError(
                f"model.{key} is {given} but the config implies {value} "
                f"({'data.label_names has ' + str(value) + ' names' if key == 'out_channels' else 'inference.roi_size has ' + str(value) + ' values'})",
                hint=f"remove model.{key} (it is derived) or make them agree",
            )
    return params


@dataclass
class _Data:
    """The cases of a run: training patches and whole validation cases."""

    train_records: list[CaseRecord]
    val_records: list[CaseRecord]
    loader: Any
    patches: PatchDataset
    iterations: int
    val_samples: list[Sample]
    test_records: list[CaseRecord] = field(default_factory=list)

    def batches(self):
        """Epoch -> iterator of ``iterations`` batches (the patch stream is reseeded per epoch)."""

        def make(epoch: int):
            self.patches.set_epoch(epoch)
            return iter(self.loader)

        return make


def _find_cases(cfg: ExperimentConfig, config_path: str | os.PathLike | None) -> dict[str, list[CaseRecord]]:
    base_dir = Path(config_path).absolute().parent if config_path else Path.cwd()
    splits = load_cases(cfg.data, base_dir)
    split_file = fold_split_file(cfg.data, base_dir)
    if split_file is not None:
        source = f"data.{'manifest' if cfg.data.manifest is not None else 'root'} {cfg.data.manifest or cfg.data.root}"
        splits = apply_fold(splits, split_file, cfg.data.fold, source)
    if not splits.get("train"):
        raise DataError(
            f"no training cases found (data: {cfg.data.manifest or cfg.data.root}; "
            f"splits: {cfg.data.splits})",
            hint="check data.root / data.manifest and data.splits",
        )
    unlabelled = [r.case_id for r in splits.get("validation", []) if r.label_path is None]
    if unlabelled:
        raise DataError(f"validation case(s) without a label: {unlabelled[:5]}")
    return splits


def _data(cfg: ExperimentConfig, config_path: Any, dist: DistInfo, device: torch.device) -> _Data:
    """Find the cases, preprocess (and cache) the training ones, set up the patch stream."""
    tr = cfg.trainer
    splits = _find_cases(cfg, config_path)
    train_records, val_records = splits["train"], splits.get("validation", [])
    preprocess = build_transforms(cfg.preprocess, "preprocess", deterministic=True)
    augment = build_transforms(cfg.augment, "augment")
    cases = CaseDataset(train_records, cfg.data, preprocess, cache=cfg.data.cache, cache_dir=cfg.data.cache_dir,
                        preprocess_spec=cfg.preprocess)
    cases.warm_cache()  # before workers fork: they share the pages (space checked first)
    iterations = tr.iterations_per_epoch or max(1, len(train_records) // tr.batch_size)
    patches = PatchDataset(
        cases, augment, samples_per_epoch=iterations * tr.batch_size, seed=cfg.experiment.seed * 1000 + dist.rank
    )
    loader = torch.utils.data.DataLoader(
        patches,
        batch_size=tr.batch_size,
        shuffle=False,  # PatchDataset already draws at random, seeded per (epoch, index)
        num_workers=cfg.data.num_workers,
        collate_fn=collate,
        drop_last=False,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    val_samples = [load_sample(r, cfg.data) for r in val_records] if dist.is_main else []
    return _Data(train_records, val_records, loader, patches, iterations, val_samples, splits.get("test", []))


def _trainer(cfg: ExperimentConfig, data: _Data, run_dir: Path, device: torch.device, dist: DistInfo, progress: bool) -> Trainer:
    """Build the model, loss, optimizer and scheduler from their specs; the Trainer."""
    tr = cfg.trainer
    params = model_params_for(cfg)
    model = MODELS.build({"name": cfg.model.name, **params}, key="model").to(device)
    loss_fn = LOSSES.build(cfg.loss, key="loss")
    optimizer = OPTIMIZERS.build(cfg.optimizer, model.parameters(), key="optimizer")
    scheduler = build_scheduler(cfg.scheduler, optimizer, tr.max_epochs, data.iterations)
    return Trainer(
        model,
        loss_fn,
        optimizer,
        data.batches(),
        data.iterations,
        data.val_samples,
        cfg.inference_spec(in_channels=params["in_channels"]),
        {"name": cfg.model.name, **params},
        run_dir,
        device,
        scheduler=scheduler,
        max_epochs=tr.max_epochs,
        val_every=tr.val_every,
        patience=tr.patience,
        max_minutes=tr.max_minutes,
        grad_clip=tr.grad_clip,
        accumulate=tr.accumulate, ema=tr.ema,
        metrics=cfg.evaluation.metrics,
        select_by=cfg.evaluation.select_by,
        amp=tr.amp,
        channels_last=tr.channels_last,
        dist=dist,
        progress=progress,
        data_info={"label": cfg.data.label, "split_counts": {"train": len(data.train_records),
                   "validation": len(data.val_records), "test": len(data.test_records)}},
        training_info=training_info(cfg),
    )


def _log_start(cfg: ExperimentConfig, data: _Data, trainer: Trainer, device: torch.device, run_dir: Path) -> None:
    tr = cfg.trainer
    n = sum(p.numel() for p in trainer.model.parameters())
    trainer.log(
        f"training {cfg.model.name} ({n / 1e6:.2f} M parameters) on {device}: "
        f"{len(data.train_records)} train / {len(data.val_records)} validation cases, "
        f"{data.iterations} x batch {tr.batch_size} per epoch, up to {tr.max_epochs} epochs"
        + (f" or {tr.max_minutes} min" if tr.max_minutes else "")
        + f" -> {run_dir}"
    )


def _resume_checks(cfg: ExperimentConfig, resume: Any, output_dir: Any, allow_change: bool) -> dict[str, Any] | None:
    """For a resumed run: its ``last.pt`` and the config check, before any work (None
    without ``resume``)."""
    if resume is None:
        return None
    run_dir = Path(resume).expanduser().absolute()
    if output_dir is not None and Path(output_dir).expanduser().absolute() != run_dir:
        raise ConfigError(
            f"resume folder '{run_dir}' and output folder '{output_dir}' differ: a resumed run "
            "writes into the folder it resumes",
            hint="leave output_dir out when resuming",
            cli_hint="leave --output-dir out when resuming (--resume names the run folder)",
        )
    ckpt = load_resume_checkpoint(run_dir)
    check_resume_config(run_dir, cfg, allow_change)
    return ckpt


def _score_test(cfg: ExperimentConfig, test: list[CaseRecord], result: TrainResult, trainer: Trainer,
                device: torch.device) -> dict[str, Any] | None:
    """Score the best checkpoint on the labelled test cases into ``RUN_DIR/test`` and log
    the mean Dice; None (said in the log) when there is nothing to score or
    ``evaluation.test`` is false. A problem is logged, not raised: the model stays usable."""
    labelled = [r for r in test if r.label_path is not None]
    checkpoint = result.best_checkpoint or result.last_checkpoint
    if not cfg.evaluation.test:  # the user's choice: nothing to say
        return None
    if not labelled or checkpoint is None:
        why = "the data has no test split" if not test else "its cases have no label" if not labelled else "no checkpoint"
        trainer.log(f"test split not scored: {why}")
        return None
    if len(labelled) < len(test):
        trainer.log(f"test split: {len(test) - len(labelled)} case(s) without a label are not scored")
    out_dir = result.run_dir / TEST_DIR
    try:
        summary = evaluate_segmentation_test(checkpoint, labelled, out_dir, cfg, device)
    except (DataError, ValueError, OSError, RuntimeError) as exc:
        trainer.log(f"test split not scored: {exception_reason(exc)}")
        return None
    dice = mean_dice(summary)
    failed = summary.get("_cases", {}).get("prediction_failed", {})
    trainer.log(
        f"test ({len(labelled)} cases, {checkpoint.name}): "
        + (f"mean Dice {dice:.4f}" if dice is not None else "scored")
        + (f", {len(failed)} failed (scored as empty): {', '.join(failed)}" if failed else "")
        + f" -> {out_dir}"
    )
    return summary


def _fit(trainer: Trainer, tensorboard: bool, learn: bool) -> tuple[TrainResult, BestValidationPredictions]:
    """Fit with the tracking callbacks and one keeping the best epoch's validation predictions
    (with their low-probability voxels where post-processing will be learned: ``learn``)."""
    keeper = BestValidationPredictions(trainer, low_probability=learn)
    return trainer.fit([*tracking_callbacks(trainer, tensorboard, images=True), keeper]), keeper


def _finish(cfg: ExperimentConfig, data: _Data, result: TrainResult, trainer: Trainer,
            keeper: BestValidationPredictions, device: torch.device) -> None:
    """Rank 0, after training: learn the post-processing on the validation cases into
    ``best.pt``, then score the test split with it (it predicts through ``best.pt``)."""
    learn_run_postprocess(cfg, result.run_dir, result.best_checkpoint, data.val_samples, keeper, device, trainer.log)
    result.test_summary = _score_test(cfg, data.test_records, result, trainer, device)


def _restore_globals(threads: int, deterministic: bool) -> None:
    """Leave torch's thread count and deterministic setting as :func:`train` found them."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def train(
    config: ExperimentConfig,
    output_dir: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    resume: str | os.PathLike | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """Train a segmentation network (or a classifier: ``experiment.task: classification``,
    :func:`medimg.engine.classify.fit_classification`) as ``config`` describes.

    Steps: seed; pick the device (``trainer.device: auto`` -> CUDA when available);
    join torchrun's process group when ``WORLD_SIZE > 1``; create the run folder
    (``config.resolved.yaml``, ``environment.json``); find the cases; preprocess (cached)
    the training cases; draw ``iterations_per_epoch * batch_size`` augmented patches per
    epoch; fit with whole-volume validation; write ``best.pt``, ``last.pt``,
    ``history.csv`` and ``training_curve.png``; then (rank 0) learn the post-processing
    on validation into ``best.pt`` (:mod:`medimg.engine.postlearn`) and score it on the
    labelled test cases into ``RUN_DIR/test`` (:mod:`medimg.engine.testsplit`). Folds:
    ``data.split_file`` + ``data.fold`` (:mod:`medimg.data.folds`); TensorBoard:
    ``trainer.tensorboard`` (:mod:`medimg.engine.tracking`).

    Args:
        config: the validated experiment config.
        output_dir: run folder (default: ``experiment.output_dir``).
        config_path: the YAML file it came from (copied into the run folder; relative data
            paths are resolved against its folder).
        progress: progress bar and per-epoch lines on stderr.
        resume: a run folder whose ``last.pt`` to continue from, after its last completed
            epoch (:mod:`medimg.engine.resume`); it is the run folder (``output_dir``, if
            given, must be the same folder). With ``trainer.deterministic`` the weights
            end equal to those of an uninterrupted run.
        allow_config_change: resume even where ``config`` differs from the folder's
            ``config.resolved.yaml`` in keys that can change the result (without it only
            ``trainer.max_minutes``, ``trainer.num_threads``, ``data.num_workers``, ``data.cache``,
            ``data.cache_dir``, ``trainer.tensorboard`` and ``experiment.output_dir`` may differ).

    Returns:
        A :class:`TrainResult`.

    Raises:
        DataError: no training cases, a validation case without a label, a bad split file.
        ConfigError: a component cannot be built from its spec, ``evaluation.select_by``
            is not a validation metric, CUDA (``trainer.device: cuda``, ``trainer.amp:
            fp16``) asked for where there is none, or a resumed run's config differs.
        CheckpointError: ``resume`` has no readable ``last.pt``.
        TrainingError: the training loss became NaN or infinite.
    """
    cfg = config
    tr = cfg.trainer
    device = resolve_device(tr.device)  # before any work: CUDA asked for where there is none
    amp_dtype(tr.amp, device)
    ckpt = _resume_checks(cfg, resume, output_dir, allow_config_change)
    if resume is not None:
        output_dir = Path(resume)
    threads_before, deterministic_before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    seed_everything(cfg.experiment.seed, tr.deterministic)
    if tr.num_threads:
        torch.set_num_threads(tr.num_threads)  # restored on return: no lasting global change
    dist, device = setup(device)
    try:
        run_dir = prepare_run_dir(cfg, output_dir, config_path, resumed=ckpt is not None) if dist.is_main else run_dir_for(cfg, output_dir)
        if cfg.experiment.task == "classification":
            from .classify import fit_classification

            return fit_classification(cfg, config_path, run_dir, device, dist, progress, resume=ckpt)
        data = _data(cfg, config_path, dist, device)
        trainer = _trainer(cfg, data, run_dir, device, dist, progress)
        if ckpt is not None:
            trainer.resume_from(ckpt, str(run_dir / "last.pt"))
        if dist.is_main and progress:
            _log_start(cfg, data, trainer, device, run_dir)
        result, keeper = _fit(trainer, tr.tensorboard, will_learn(cfg))
        if dist.is_main:
            _finish(cfg, data, result, trainer, keeper, device)
        return result
    finally:
        cleanup(dist)
        _restore_globals(threads_before, deterministic_before)
