"""The classification plan (``medimg plan`` on an npz, a manifest or class folders).

Rules:

- **Model**: 2D images: ResNet-18 (torchvision's); with a small-input stem (3x3 stride-1
  convolution, max-pool kept) when the smaller side is at most 64 pixels. 3D: the compact
  ``cnn3d`` (16-32-64-128 channels, dropout 0.3), as the hand-written MedMNIST recipes.
- **Batch**: 128 (2D) or 32 (3D), halved while the activation estimate
  (``B * voxels * 64 maps * 4 bytes * 8`` for the small-input stem) is over ``--memory``.
- **Augmentation, loss, optimiser, schedule, TTA**: the hand recipes': 2D: random affine
  (10 degrees, scale 0.9-1.1, shift 0.1, every image), label smoothing 0.1, AdamW 2e-3
  with weight decay 5e-4, one-cycle, a moving average of the weights (``ema: 0.98``), flip
  TTA over columns; 3D: flips over every axis,
  AdamW 1e-3, cosine, flip TTA over every axis.
- **Class balance**: a class-balanced sampler when the largest training class is over 5
  times the smallest.
- **Epochs**: a timed probe of the planned step gives seconds per step; an epoch costs
  ``ceil(train / B)`` steps plus validation (a forward pass is about a third of a step,
  times the TTA passes). ``trainer.max_minutes`` is 80 % of ``--minutes``; the epochs are
  what fits in it, at most 40. Under one epoch: the plan is refused.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.errors import DataError
from .plan_rules import Plan, PlanOptions, default_memory_gb
from .probe import ProbeResult, probe_step

__all__ = ["build_classification", "MAX_EPOCHS"]

MAX_EPOCHS = 40


def _recipe(fp: dict[str, Any], opts: PlanOptions) -> dict[str, Any]:
    two_d = fp["spatial_dims"] == 2
    if two_d:
        small = min(fp["shape"]) <= 64
        model = {"name": "resnet18", "small_input": small, "max_pool": True}
        augment = [{"name": "random_affine", "degrees": 10, "scale": [0.9, 1.1], "translate": 0.1, "prob": 1.0}]
        loss = {"name": "ce_cls", "label_smoothing": 0.1}
        optimizer = {"name": "adamw", "lr": 0.002, "weight_decay": 0.0005}
        scheduler = {"name": "onecycle", "pct_start": 0.15}
        tta = [1]
    else:
        model = {"name": "cnn3d", "channels": [16, 32, 64, 128], "dropout": 0.3}
        augment = [{"name": "random_flip", "axes": [0, 1, 2], "prob": 0.5}]
        loss = {"name": "ce_cls"}
        optimizer = {"name": "adamw", "lr": 0.001, "weight_decay": 0.0001}
        scheduler = {"name": "cosine"}
        tta = [0, 1, 2]
    return {
        "experiment": {"name": "planned", "task": "classification", "seed": 0, "output_dir": "runs/{name}"},
        "data": {},
        "augment": augment, "model": model, "loss": loss, "optimizer": optimizer, "scheduler": scheduler,
        "trainer": {"device": opts.device, **({"ema": 0.98} if two_d else {})},
        "inference": {"tta_flips": tta},
        "evaluation": {"metrics": ["auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity"], "select_by": "auc"},
    }


def _batch(fp: dict[str, Any], opts: PlanOptions) -> tuple[int, float]:
    budget = opts.memory if opts.memory is not None else default_memory_gb(opts.device)
    batch = 128 if fp["spatial_dims"] == 2 else 32
    voxels = math.prod(fp["shape"])
    while batch > 2 and batch * voxels * 64 * 4 * 8 / 2**30 > budget:
        batch //= 2
    return batch, budget


def _epochs(plan: Plan, fp: dict[str, Any], opts: PlanOptions, probe: ProbeResult, batch: int) -> dict[str, Any]:
    n_train = fp["splits"]["train"]["cases"]
    n_val = fp["splits"].get("validation", {}).get("cases", 0)
    tta = 1 + len(plan.config["inference"]["tta_flips"])
    step = probe.seconds_per_step
    epoch_s = math.ceil(n_train / batch) * step + math.ceil(n_val / batch) * step / 3 * tta
    max_minutes = round(0.8 * opts.minutes, 2)
    epochs = int(max_minutes * 60 // epoch_s)
    if epochs < 1:
        raise DataError(
            f"--minutes {opts.minutes:g} is too short for one epoch: an epoch of {n_train} training and {n_val} "
            f"validation images takes about {epoch_s:.0f} s ({step:.3f} s per measured step of {batch}) (plan refused)",
            hint=f"give --minutes {math.ceil(epoch_s / 48)} or more")
    epochs = min(MAX_EPOCHS, epochs)
    plan.decide("trainer.max_minutes", max_minutes, f"80% of --minutes {opts.minutes:g} (the rest: start-up, test scoring)")
    plan.decide("trainer.max_epochs", epochs, f"{max_minutes:g} min / {epoch_s:.1f} s per epoch (measured "
                f"{step:.3f} s per step, {math.ceil(n_train / batch)} steps + validation), at most {MAX_EPOCHS}")
    return {"max_epochs": epochs, "max_minutes": max_minutes}


def build_classification(fp: dict[str, Any], data: dict[str, Any], opts: PlanOptions) -> Plan:
    """The classification plan of fingerprint ``fp`` for ``opts`` (module docstring)."""
    plan = Plan(config=_recipe(fp, opts))
    cfg = plan.config
    cfg["data"] = {k: v for k, v in data.items() if k in ("npz", "manifest", "root")}
    if "npz" not in data:
        cfg["data"].update(images=list(data["images"]) if data.get("images") else ["image"])
        if data.get("label"):
            cfg["data"]["label"] = data["label"]
    if data.get("splits") and data["splits"] != {"train": "train", "validation": "validation", "test": "test"}:
        cfg["data"]["splits"] = dict(data["splits"])
    two_d = fp["spatial_dims"] == 2
    plan.decide("model", cfg["model"]["name"], (f"2D {fp['shape']} images: ResNet-18" + (", small-input stem (side <= 64)" if cfg["model"].get("small_input") else ""))
                if two_d else f"3D {fp['shape']} volumes: the compact cnn3d of the hand recipe")
    if two_d:
        plan.decide("trainer.ema", 0.98, "a moving average of the weights, as the 2D hand recipe (steadier than the raw weights)")
    plan.decide("augment", cfg["augment"][0]["name"], "the hand recipe's: " + ("random affine on every image" if two_d else "flips over every axis"))
    if fp.get("imbalance", 1.0) > 5:
        cfg["data"]["balanced_sampling"] = plan.decide("data.balanced_sampling", True, f"largest class {fp['imbalance']:.1f}x the smallest (> 5)")
    else:
        plan.decide("data.balanced_sampling", False, f"class imbalance {fp.get('imbalance', 1.0):.1f}x <= 5: plain sampling")
    batch, budget = _batch(fp, opts)
    plan.decide("trainer.batch_size", batch, f"{128 if two_d else 32} ({'2D' if two_d else '3D'}), halved while over {budget:.1f} GB")
    cfg["trainer"]["batch_size"] = batch
    if opts.probe_steps > 0:
        probe = probe_step({k: v for k, v in cfg["model"].items()}, cfg["loss"], cfg["optimizer"], batch_size=batch,
                           in_channels=fp["channels"], out_channels=max(2, len(fp["class_names"])), size=fp["shape"],
                           task="classification", device=opts.device, steps=opts.probe_steps)
    else:
        probe = ProbeResult(0.05, 0, None)
    plan.probe = probe
    if probe.contention():
        plan.warnings.append(probe.contention())
    plan.decide("probe", round(probe.seconds_per_step, 4), f"{probe.seconds_per_step:.3f} s per step over {probe.steps} timed steps on {opts.device} ({probe.layout.replace('_', '-')} convolution weights, the faster)"
                if probe.steps else "probe skipped (--probe-steps 0): 0.05 s per step assumed")
    cfg["trainer"].update(_epochs(plan, fp, opts, probe, batch))
    return plan
