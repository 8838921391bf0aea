"""``train(config)``: build every component from an experiment config and fit.

The registry-driven building lives here, in the engine, because this is where training
components meet; the config layer's :func:`~medimg.config.build_component` (signature
checks, config-located error messages) and :func:`~medimg.config.prepare_run_dir` are
imported *inside* :func:`train`, never at module level, so the engine does not depend on
the config layer at import time (layers: engine <- config <- cli).
"""

from __future__ import annotations

import inspect
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.errors import ConfigError, DataError
from ..inference.predictor import resolve_device
from .distributed import cleanup, setup
from .optim import SCHEDULERS
from .trainer import Trainer, TrainResult

if TYPE_CHECKING:  # pragma: no cover
    from ..config.schema import ExperimentConfig

__all__ = ["train", "seed_everything", "model_params_for"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False


def model_params_for(cfg: "ExperimentConfig") -> dict[str, Any]:
    """The model's kwargs with ``in_channels`` / ``out_channels`` / ``spatial_dims`` filled in.

    ``in_channels`` defaults to the number of ``data.images``, ``out_channels`` to the
    number of ``data.label_names``, ``spatial_dims`` to the length of
    ``inference.roi_size``. Values given in the config must agree.

    Raises:
        ConfigError: a given value contradicts the data section.
    """
    params = dict(cfg.model.params)
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


def _batches(loader: Any, patches: Any):
    """Epoch -> iterator of ``iterations`` batches (the patch stream is reseeded per epoch)."""

    def make(epoch: int):
        patches.set_epoch(epoch)
        return iter(loader)

    return make


def train(
    config: "ExperimentConfig",
    output_dir: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train a segmentation network as ``config`` describes.

    Steps: seed; pick the device (``trainer.device: auto`` -> CUDA when available);
    join torchrun's process group when ``WORLD_SIZE > 1``; create the run folder
    (``config.resolved.yaml``, ``environment.json``); find the cases; preprocess (cached)
    the training cases; draw ``iterations_per_epoch * batch_size`` augmented patches per
    epoch; fit with whole-volume validation; write ``best.pt``, ``last.pt``,
    ``history.csv`` and ``training_curve.png``.

    Args:
        config: the validated experiment config.
        output_dir: run folder (default: ``experiment.output_dir``).
        config_path: the YAML file it came from (copied into the run folder; relative data
            paths are resolved against its folder).
        progress: progress bar and per-epoch lines on stderr.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DataError: no training cases, or a validation case without a label.
        ConfigError: a component cannot be built from its spec.
    """
    from ..config.build import build_component, build_transforms
    from ..config.run import prepare_run_dir
    from ..data import CaseDataset, PatchDataset, collate, load_cases, load_sample
    from ..inference.checkpoint import to_plain

    cfg = config
    tr = cfg.trainer
    seed_everything(cfg.experiment.seed, tr.deterministic)
    threads_before = torch.get_num_threads()
    if tr.num_threads:
        torch.set_num_threads(tr.num_threads)  # restored on return: no lasting global change
    device = resolve_device(tr.device)
    dist, device = setup(device)
    try:
        run_dir = (
            prepare_run_dir(cfg, output_dir, config_path)
            if dist.is_main
            else Path(output_dir or cfg.experiment.output_dir.replace("{name}", cfg.experiment.name)).absolute()
        )
        base_dir = Path(config_path).absolute().parent if config_path else Path.cwd()
        splits = load_cases(cfg.data, base_dir)
        train_records = splits.get("train", [])
        if not train_records:
            raise DataError(
                f"no training cases found (data: {cfg.data.manifest or cfg.data.root}; "
                f"splits: {cfg.data.splits})",
                hint="check data.root / data.manifest and data.splits",
            )
        val_records = splits.get("validation", [])
        unlabelled = [r.case_id for r in val_records if r.label_path is None]
        if unlabelled:
            raise DataError(f"validation case(s) without a label: {unlabelled[:5]}")

        preprocess = build_transforms(cfg.preprocess, "preprocess")
        augment = build_transforms(cfg.augment, "augment")
        cases = CaseDataset(train_records, cfg.data, preprocess, cache=cfg.data.cache)
        if cfg.data.cache:
            cases.warm_cache()  # before workers fork: they share the pages
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

        params = model_params_for(cfg)
        model = build_component("models", {"name": cfg.model.name, **params}, "model").to(device)
        loss_fn = build_component("losses", cfg.loss, "loss")
        optimizer = build_component("optimizers", cfg.optimizer, "optimizer", model.parameters())
        scheduler = None
        if cfg.scheduler is not None and cfg.scheduler.name != "none":
            sched_spec = dict(cfg.scheduler.params)
            # a schedule's horizon defaults to the run's length
            if "max_epochs" in inspect.signature(SCHEDULERS.get(cfg.scheduler.name)).parameters:
                sched_spec.setdefault("max_epochs", tr.max_epochs)
            scheduler = build_component("schedulers", {"name": cfg.scheduler.name, **sched_spec}, "scheduler", optimizer)

        preprocess_specs = [{"name": s.name, **s.params} for s in cfg.preprocess]
        inference = to_plain(cfg.inference)
        label_names = list(cfg.data.label_names)
        predictor_kwargs = {
            "preprocess": preprocess_specs,
            "label_names": label_names,
            "roi_size": inference["roi_size"],
            "overlap": inference["overlap"],
            "sw_batch_size": inference["sw_batch_size"],
            "blend": inference["blend"],
            "tta_flips": inference["tta_flips"],
            "amp": tr.amp,
            "in_channels": params["in_channels"],
            "image_keys": list(cfg.data.images),
        }
        checkpoint_meta = {
            "model_name": cfg.model.name,
            "model_params": params,
            "label_names": label_names,
            "preprocess": preprocess_specs,
            "inference": inference,
            "data": {
                "images": list(cfg.data.images),
                "label": cfg.data.label,
                "label_map": to_plain(cfg.data.label_map),
                "label_names": label_names,
            },
            "training": {"experiment": cfg.experiment.name, "seed": cfg.experiment.seed, "max_epochs": tr.max_epochs},
        }
        trainer = Trainer(
            model,
            loss_fn,
            optimizer,
            _batches(loader, patches),
            iterations,
            val_samples,
            predictor_kwargs,
            checkpoint_meta,
            run_dir,
            device,
            scheduler=scheduler,
            max_epochs=tr.max_epochs,
            val_every=tr.val_every,
            patience=tr.patience,
            max_minutes=tr.max_minutes,
            grad_clip=tr.grad_clip,
            select_by=cfg.evaluation.select_by,
            amp=tr.amp,
            dist=dist,
            progress=progress,
        )
        if dist.is_main and progress:
            n = sum(p.numel() for p in model.parameters())
            trainer.log(
                f"training {cfg.model.name} ({n / 1e6:.2f} M parameters) on {device}: "
                f"{len(train_records)} train / {len(val_records)} validation cases, "
                f"{iterations} x batch {tr.batch_size} per epoch, up to {tr.max_epochs} epochs"
                + (f" or {tr.max_minutes} min" if tr.max_minutes else "")
                + f" -> {run_dir}"
            )
        return trainer.fit()
    finally:
        cleanup(dist)
        torch.set_num_threads(threads_before)
