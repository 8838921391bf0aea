"""The segmentation plan: the rules of :mod:`medimg.engine.plan_rules` put together into a
config, with the patch shrunk and the step probed again where the device asks for it."""

from __future__ import annotations

import math
from typing import Any

from .plan_rules import (
    CPU_MAX_PATCH,
    MIN_CPU_ITERATIONS,
    VALIDATIONS,
    Plan,
    PlanOptions,
    _network,
    _preprocess,
    _probe,
    _schedule,
    _shape_after,
    _validation_seconds,
    default_memory_gb,
    memory_gb,
    target_spacing,
)

__all__ = ["build_segmentation"]


def _labels(fp: dict[str, Any]) -> tuple[list[str], dict[int, int] | None]:
    values = sorted(int(v) for v in fp["class_frequency"]) or [0, 1]
    if 0 not in values:
        values = [0, *values]
    names = ["background"] + [f"class_{v}" for v in values[1:]]
    consecutive = values == list(range(len(values)))
    return names, (None if consecutive else {v: i for i, v in enumerate(values) if v})


def _augment(plan: Plan, fp: dict[str, Any], patch: list[int]) -> list[dict[str, Any]]:
    label_fraction = fp.get("label_fraction", 0.0)
    pos = 0.67 if label_fraction < 0.05 else 0.33
    plan.decide("augment.random_crop.pos_fraction", pos,
                f"foreground is {label_fraction:.1%} of the median case ({'<' if pos > 0.5 else '>='} 5%)")
    axes = [0] if fp["spatial_dims"] == 3 else [1]
    n_train = fp.get("num_train", 0)
    medium = n_train < 100
    probs = (0.5, 0.3, 0.15) if medium else (0.3, 0.15, 0.1)
    plan.decide("augment.random_intensity", "medium" if medium else "light",
                f"{n_train} training cases ({'<' if medium else '>='} 100): {'medium' if medium else 'light'} intensity augmentation")
    plan.decide("augment.random_flip", axes, "left-right mirror only: the other axes of oriented anatomy have a direction")
    plan.decide("augment.random_affine", "rotation 15 deg, scale 0.85-1.15, p 0.3",
                "always: rotation and scaling, as nnU-Net's default augmentation has them")
    return [
        {"name": "random_crop", "roi_size": patch, "pos_fraction": pos},
        {"name": "random_flip", "axes": axes, "prob": 0.5},
        {"name": "random_affine", "degrees": 15, "scale": [0.85, 1.15], "prob": 0.3},
        {"name": "random_intensity", "prob_scale_shift": probs[0], "prob_gamma": probs[1], "prob_noise": probs[2]},
    ]


def _config(fp: dict[str, Any], data: dict[str, Any], pre: list[dict[str, Any]], patch: list[int], depth: int,
            base: int, batch: int, opts: PlanOptions) -> dict[str, Any]:
    cuda = opts.device.startswith("cuda")
    names, label_map = _labels(fp)
    section = {k: data[k] for k in ("root", "manifest") if k in data}
    section.update(images=list(data["images"]), label=data["label"], label_names=names)
    if label_map:
        section["label_map"] = label_map
    splits = data.get("splits")
    if splits and splits != {"train": "train", "validation": "validation", "test": "test"}:
        section["splits"] = dict(splits)
    section["cache"] = "memory"
    return {
        "experiment": {"name": "planned", "task": "segmentation", "seed": 0, "output_dir": "runs/{name}"},
        "data": section,
        "preprocess": pre,
        "augment": [],
        "model": {"name": "unet", "channels": [min(320, base * 2**lv) for lv in range(depth + 1)],
                  "strides": [2] * depth, "num_res_units": 2},
        "loss": {"name": "dice_ce"},
        "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.0001},
        "scheduler": {"name": "cosine"},
        "trainer": {"batch_size": batch, "device": opts.device, "amp": cuda},
        "inference": {"roi_size": patch, "overlap": 0.5 if cuda else 0.25, "sw_batch_size": 4, "blend": "gaussian"},
        "evaluation": {"metrics": ["dice", "hd95"], "select_by": "dice"},
    }


def _budget(plan: Plan, opts: PlanOptions) -> float:
    if opts.memory is not None:
        return plan.decide("memory budget", opts.memory, f"--memory {opts.memory:g} GB")
    value = round(default_memory_gb(opts.device), 1)
    rule = "85% of the GPU's memory" if opts.device.startswith("cuda") else "a quarter of the RAM, at most 8 GB"
    return plan.decide("memory budget", value, f"default: {rule}")


def build_segmentation(fp: dict[str, Any], data: dict[str, Any], opts: PlanOptions) -> Plan:
    """The segmentation plan of fingerprint ``fp`` (its ``data`` keys) for ``opts``."""
    plan = Plan(config={})
    cuda = opts.device.startswith("cuda")
    spacing, rule = target_spacing(fp)
    plan.decide("target spacing", spacing, rule)
    budget = _budget(plan, opts)
    pre = _preprocess(plan, fp, spacing, rule)
    shape = _shape_after(fp, spacing, any(p["name"] == "crop_foreground" for p in pre))
    cap = (CPU_MAX_PATCH if fp["spatial_dims"] == 3 else 512**2) if not cuda else 10**9
    for attempt in range(3):
        patch, depth, base, batch = _network(plan, fp, shape, opts, budget, cap, cuda)
        cfg = _config(fp, data, pre, patch, depth, base, batch, opts)
        probe = _probe(plan, cfg, patch, batch, fp, opts)
        too_big = not probe.fits or (probe.peak_memory_gb is not None and probe.peak_memory_gb > budget)
        step = probe.seconds_per_step
        val_s = _validation_seconds(fp, shape, patch, step if probe.fits else 1.0, batch, cfg["inference"]["overlap"])
        few = not cuda and (0.8 * opts.minutes * 60 - VALIDATIONS * val_s) / step < MIN_CPU_ITERATIONS
        if attempt < 2 and min(patch) > 32 and (too_big or few):
            plan.warnings.append(f"patch {patch}: {'out of memory' if too_big else f'{step:.2f} s per step leaves under {MIN_CPU_ITERATIONS} iterations'}; shrinking it (0.8 per axis) and probing again")
            cap = int(math.prod(patch) * 0.512)
            continue
        break
    plan.probe = probe
    if probe.contention():
        plan.warnings.append(probe.contention())
    mem = memory_gb(batch, patch, base, depth, cuda)
    plan.decide("inference.roi_size", patch, f"largest patch of the median {'cropped ' if len(pre) > 2 else ''}case's "
                f"aspect {[round(s) for s in shape]} under {'96^3 voxels (CPU) and ' if not cuda else ''}{budget:g} GB: "
                f"estimated {mem:.2f} GB at batch {batch}, {base} base channels")
    plan.decide("model.channels", cfg["model"]["channels"], f"{depth} stride-2 levels keep the coarsest map >= 4 voxels "
                f"on the smallest patch axis; {base} base channels ({'CUDA' if cuda else 'CPU'}), doubling per level")
    plan.decide("trainer.batch_size", batch, "2: the least for a stable step" + (", raised while it fits the memory" if cuda else " (batch 1 hits PyTorch's slow CPU conv3d path)"))
    measured = f"{probe.seconds_per_step:.2f} s per step over {probe.steps} timed steps on {opts.device} ({probe.layout.replace('_', '-')} convolution weights, the faster)" if probe.steps else "probe skipped (--probe-steps 0): 1 s per step assumed"
    plan.decide("probe", round(probe.seconds_per_step, 3), measured + (f", peak {probe.peak_memory_gb:.2f} GB" if probe.peak_memory_gb else ""))
    cfg["augment"] = _augment(plan, fp, patch)
    cfg["trainer"].update(_schedule(plan, fp, opts, step, val_s, batch))
    plan.decide("inference.overlap", cfg["inference"]["overlap"], "sliding window over the patch size; overlap 0.25 on CPU "
                "(time), 0.5 on CUDA (nnU-Net); post-processing left to validation (none planned)")
    plan.config = cfg
    return plan
