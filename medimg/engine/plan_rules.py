"""Rules of ``medimg plan`` (:mod:`medimg.engine.plan`): a config derived from a data set's fingerprint, for the device and the
minutes at hand, by the rules below (nnU-Net's, sized for the hardware actually there).

Segmentation
------------
- **Target spacing**: the data set's median spacing per axis. Anisotropic data (largest
  over smallest median spacing > 3): the coarse axis takes the 10th percentile of the
  cases' spacings on it instead (nnU-Net's rule: fewer interpolated slices).
  Resampling (``resample``) is planned only when some case is more than 5 % off it.
- **Orientation**: every case is reoriented to RAS (``orient``).
- **Cropping**: CT: to the body (> -500 HU); others, when under 75 % of the median case
  differs from its constant background (the value all corners share): to the voxels
  differing from each image's own corner value (``corner_background``: images z-scored
  before skull stripping have a different background in every case and channel, so no
  single threshold fits them all), or to the voxels above 0 when some case has no
  constant background; both with a margin of 8 voxels.
- **Normalisation**, chosen by the modality (the DICOM Modality tag where the cases are
  DICOM, else CT when the intensities reach air, below -500 HU): CT: clip to the data
  set's foreground percentiles 0.5 and 99.5 and z-score with the foreground mean and std (one ``scale_intensity_range``); others:
  per-image z-score over the voxels differing from each image's own constant background,
  the background set to 0 (``normalize_intensity``, ``corner_background: true``; planned
  before any resampling, whose interpolation would blur the exact background value), or
  over the nonzero voxels (``nonzero: true``) when some case has no constant background.
- **Network**: MONAI's residual U-Net, 2 residual units. Depth: as many stride-2 levels
  as keep the coarsest feature map at least 4 voxels on the patch's smallest axis
  (at most 4). Width: 16 base channels on CPU, 32 on CUDA, doubling per level, at most
  320; 8 when even a 32-voxel patch does not fit the memory at 16.
- **Memory of a step** (the patch-size constraint; :mod:`medimg.engine.step_memory`):
  activations kept for the backward pass, ``bytes = B * P * c0 * K * sum_l (2^l / 8^l) * b``,
  with B the batch, P the patch voxels, c0 the base channels, K = 12 feature maps per voxel and channel at a level, b = 4 bytes
  (2 with AMP). K is calibrated on CPU: one step of the 16-32-64-128 U-Net (2 residual
  units, 2 input channels, batch 2) raised the peak resident memory by 0.37, 0.49 and
  0.97 GB at 48^3, 64^3 and 96^3 patches, against 0.21, 0.50 and 1.68 GB by the formula;
  it errs large where it matters (big patches).
  The budget is ``--memory`` (default: CPU a quarter of the RAM, at most 8 GB; CUDA 85 %
  of the GPU's memory). On CUDA the probe measures the real peak and the patch shrinks if
  it is over.
- **Patch size**: the median cropped, resampled case shape, shrunk keeping its aspect until
  it fits the memory and, on CPU, 96^3 voxels (a larger patch makes a 2-core step take
  over 5 s); each axis a multiple of 2^depth. 2D: the same, capped at 512^2.
- **Batch**: 2 (the least for instance-norm statistics; on CPU batch 1 hits PyTorch's slow
  conv3d path); on CUDA, larger while it fits the memory, at most 8.
- **Foreground oversampling**: patches centred on a labelled voxel with probability 0.67
  when the foreground is under 5 % of the voxels, else 0.33 (nnU-Net).
- **Augmentation**: random patch crop; left-right mirror only (RAS axis 0), as the other
  axes of oriented anatomy have a direction; rotation (15 degrees) and scaling
  (0.85-1.15) with probability 0.3, always, as nnU-Net's default augmentation has them
  (BraTS6, seed 0: test Dice 0.842 with them, 0.792 without); intensity scale, shift and gamma: "medium"
  (probabilities 0.5/0.3) under 100 training cases, "light" (0.3/0.15) above.
- **Time**: a timed probe of the planned step (:mod:`medimg.engine.probe`) gives seconds
  per iteration. ``trainer.max_minutes`` is 80 % of ``--minutes`` (the rest: start-up,
  the last validation and test scoring); validation time is estimated from the probe
  (sliding-window tiles of the validation cases, forward about a third of a step, per
  image) for 10 validations, and the rest buys iterations: 40 epochs of
  ``ceil(iterations / 40)`` iterations (fewer epochs when there are under 40 iterations).
  When fewer than ``ceil(training cases / batch)`` iterations fit, the plan is refused.
  On CPU, a plan with under 150 iterations shrinks the patch (0.8 per axis, twice at
  most) and probes again.
- **Sliding window**: roi = patch, overlap 0.25 on CPU and 0.5 on CUDA, 4 tiles per
  forward pass, Gaussian blending. Post-processing is left to validation (none planned).

Classification rules are in :mod:`medimg.engine.plan_cls`. Each decision is recorded as a
:class:`Decision` (key, value, rule), which ``medimg plan`` writes as a YAML comment and
``--explain`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import DataError
from .probe import ProbeResult, probe_step
from .step_memory import ACTIVATION_MAPS, memory_gb  # noqa: F401  (the rules' estimate, used by plan_seg)

__all__ = ["Decision", "Plan", "PlanOptions", "memory_gb", "target_spacing", "default_memory_gb"]

CPU_MAX_PATCH = 96**3
MIN_CPU_ITERATIONS = 150
EPOCHS = 40
VALIDATIONS = 10


@dataclass
class Decision:
    """One planned value: the config key, the value and the rule (one line)."""

    key: str
    value: Any
    rule: str


@dataclass
class PlanOptions:
    """What the plan is for: ``device`` (cpu/cuda), ``minutes``, ``memory`` (GB, None:
    default), ``probe_steps`` (timed steps; 0 skips the probe and assumes 1 s per step,
    for tests only)."""

    device: str = "cpu"
    minutes: float = 30.0
    memory: float | None = None
    probe_steps: int = 3


@dataclass
class Plan:
    """The planned config (plain data), the decisions behind it and the warnings."""

    config: dict[str, Any]
    decisions: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    probe: ProbeResult | None = None

    def decide(self, key: str, value: Any, rule: str) -> Any:
        self.decisions.append(Decision(key, value, rule))
        return value


def default_memory_gb(device: str) -> float:
    """The memory budget of ``--memory``'s default (see the module docstring)."""
    if device.startswith("cuda"):
        import torch

        return 0.85 * torch.cuda.get_device_properties(0).total_memory / 2**30
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return min(8.0, total / 4)


def target_spacing(fp: dict[str, Any]) -> tuple[list[float], str]:
    """The target spacing and the rule that chose it."""
    median = [float(s) for s in fp["median_spacing"]]
    if fp["anisotropy"] <= 3:
        return median, f"median spacing of the cases (anisotropy {fp['anisotropy']:.2f} <= 3)"
    axis = int(np.argmax(median))
    p10 = float(np.percentile([s[axis] for s in fp["spacings"]], 10))
    out = list(median)
    out[axis] = round(p10, 4)
    return out, (f"median spacing; anisotropy {fp['anisotropy']:.2f} > 3, so coarse axis {axis} takes the 10th "
                 f"percentile of the cases' spacings ({p10:.3g} mm) as nnU-Net does")


def _depth(patch: list[int]) -> int:
    return max(1, min(4, int(math.floor(math.log2(max(min(patch), 8) / 4)))))


def _round_patch(patch: list[float]) -> tuple[list[int], int]:
    depth = _depth([int(p) for p in patch])
    div = 2**depth
    return [max(div, int(p // div) * div) for p in patch], depth


def _fit_patch(shape: list[float], base: int, batch: int, budget: float, cap: int, amp: bool) -> tuple[list[int], int]:
    """The largest patch of ``shape``'s aspect under ``cap`` voxels and ``budget`` GB."""
    scale = min(1.0, (cap / math.prod(shape)) ** (1 / len(shape)))
    while True:
        patch, depth = _round_patch([s * scale for s in shape])
        if memory_gb(batch, patch, base, depth, amp) <= budget or max(patch) <= 2**depth:
            return patch, depth
        scale *= 0.9


def _preprocess(plan: Plan, fp: dict[str, Any], spacing: list[float], spacing_rule: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if fp["spatial_dims"] == 3:
        steps.append(plan.decide("preprocess.orient", {"name": "orient", "axcodes": "RAS"},
                                 f"reorient every case to RAS (most cases are {fp['axcodes']})"))
    bg = fp.get("background")  # None unless every case's first channel has a constant background
    own_bg = not fp["ct_like"] and bg is not None
    if fp["ct_like"]:
        steps.append(plan.decide("preprocess.crop_foreground",
                                 {"name": "crop_foreground", "source": "image", "threshold": -500.0, "margin": 8},
                                 "CT: crop to the body (> -500 HU), margin 8 voxels"))
    elif fp.get("nonzero_fraction", 1.0) < 0.75:
        if own_bg:
            steps.append(plan.decide("preprocess.crop_foreground",
                                     {"name": "crop_foreground", "source": "image", "corner_background": True, "margin": 8},
                                     f"only {fp['nonzero_fraction']:.0%} of the median case differs from its constant "
                                     f"background (the largest over the cases: {float(bg):.4g}): crop to the voxels differing "
                                     "from each image's own corner value (it may differ between cases and channels; a channel "
                                     "without one: the voxels above 0), margin 8"))
        else:
            steps.append(plan.decide("preprocess.crop_foreground",
                                     {"name": "crop_foreground", "source": "image", "threshold": 0.0, "margin": 8},
                                     f"only {fp['nonzero_fraction']:.0%} of the median case is nonzero and not every case "
                                     "has a constant background: crop to the voxels above 0, margin 8"))
    norm = _normalisation(plan, fp, own_bg)
    if own_bg:
        steps.append(norm)  # before any resampling: interpolation would blur the exact background value
    off = [s for s in fp["spacings"] if any(abs(a - b) > 0.05 * b for a, b in zip(s, spacing))]
    if off:
        steps.append(plan.decide("preprocess.resample", {"name": "resample", "spacing": spacing},
                                 f"{spacing_rule}; {len(off)} case(s) are more than 5% off it"))
    else:
        plan.decide("preprocess.resample", None, f"no resampling: every case is within 5% of {spacing} ({spacing_rule})")
    if not own_bg:
        steps.append(norm)
    return steps


def _normalisation(plan: Plan, fp: dict[str, Any], own_bg: bool) -> dict[str, Any]:
    if fp["ct_like"]:
        st = fp["intensity"][0]
        std = max(st["std"], 1e-6)
        lo, hi = round(st["p0_5"], 2), round(st["p99_5"], 2)
        return plan.decide(
            "preprocess.scale_intensity_range",
            {"name": "scale_intensity_range", "a_min": lo, "a_max": hi, "b_min": round((lo - st["mean"]) / std, 4),
             "b_max": round((hi - st["mean"]) / std, 4), "clip": True},
            f"CT ({_modality_source(fp)}): clip to the foreground percentiles 0.5/99.5 [{lo}, {hi}] and z-score with the data set's "
            f"foreground mean {st['mean']:.4g} and std {std:.4g}")
    if own_bg:
        return plan.decide("preprocess.normalize_intensity", {"name": "normalize_intensity", "corner_background": True},
                           f"{fp['modality']} ({_modality_source(fp)}): per-image z-score over the foreground, the voxels "
                           "differing from each image's own constant background (its corner value, which may differ "
                           "between cases and channels); the background set to 0; before any resampling")
    return plan.decide("preprocess.normalize_intensity", {"name": "normalize_intensity", "nonzero": True},
                       f"{fp['modality']} ({_modality_source(fp)}): per-image z-score over the nonzero voxels (the foreground)")


def _modality_source(fp: dict[str, Any]) -> str:
    """Where the modality came from, for the rule text."""
    return "from the DICOM Modality tag" if fp.get("modality_source") == "DICOM Modality tag" else "judged from the intensities"


def _shape_after(fp: dict[str, Any], spacing: list[float], cropped: bool) -> list[float]:
    shape = fp["median_body_shape"] if cropped else fp["median_shape"]
    return [float(n) * s / t + (16 if cropped else 0) for n, s, t in zip(shape, fp["median_spacing"], spacing)]


def _network(plan: Plan, fp: dict[str, Any], shape: list[float], opts: PlanOptions, budget: float,
             cap: int, amp: bool) -> tuple[list[int], int, int, int]:
    cuda = opts.device.startswith("cuda")
    base, batch = (32 if cuda else 16), 2
    patch, depth = _fit_patch(shape, base, batch, budget, cap, amp)
    if memory_gb(batch, patch, base, depth, amp) > budget or min(patch) < 32:
        base = 8
        patch, depth = _fit_patch(shape, base, batch, budget, cap, amp)
    if memory_gb(batch, patch, base, depth, amp) > budget:
        raise DataError(f"no patch fits {budget:.1f} GB: even {patch} at batch 2 and 8 base channels needs "
                        f"{memory_gb(batch, patch, base, depth, amp):.1f} GB",
                        hint="give more memory with --memory GB, or plan for another device with --device")
    while cuda and batch < 8 and memory_gb(batch + 1, patch, base, depth, amp) <= budget:
        batch += 1
    return patch, depth, base, batch


def _probe(plan: Plan, cfg: dict[str, Any], patch: list[int], batch: int, fp: dict[str, Any], opts: PlanOptions) -> ProbeResult:
    if opts.probe_steps <= 0:
        return ProbeResult(1.0, 0, None)
    return probe_step(cfg["model"], cfg["loss"], cfg["optimizer"], batch_size=batch, in_channels=fp["channels"],
                      out_channels=len(cfg["data"]["label_names"]), size=patch, task="segmentation",
                      device=opts.device, amp=cfg["trainer"]["amp"], steps=opts.probe_steps)


def _validation_seconds(fp: dict[str, Any], shape: list[float], patch: list[int], step: float, batch: int, overlap: float) -> float:
    tiles = math.prod(max(1, math.ceil((s - p) / (p * (1 - overlap))) + 1) for s, p in zip(shape, patch))
    n_val = max(1, fp["splits"].get("validation", 0))
    return n_val * tiles * step / batch / 3


def _schedule(plan: Plan, fp: dict[str, Any], opts: PlanOptions, step: float, val_s: float, batch: int) -> dict[str, Any]:
    max_minutes = round(0.8 * opts.minutes, 2)
    train_s = max_minutes * 60 - VALIDATIONS * val_s
    iterations = int(train_s // step) if train_s > 0 else 0
    need = max(1, math.ceil(fp.get("num_train", 1) / batch))
    if iterations < need:
        raise DataError(
            f"--minutes {opts.minutes:g} is too short for one epoch: a step takes {step:.2f} s and {VALIDATIONS} "
            f"validations about {VALIDATIONS * val_s:.0f} s, leaving {iterations} iterations of the {need} "
            f"one pass over the {fp.get('num_train', 1)} training cases needs (plan refused)",
            hint=f"give more --minutes (at least about {math.ceil((need * step + VALIDATIONS * val_s) / 48)}), or a smaller --memory")
    ipe = max(1, math.ceil(iterations / EPOCHS))
    epochs = max(1, iterations // ipe)
    t = {"max_epochs": epochs, "iterations_per_epoch": ipe, "val_every": max(1, round(epochs / VALIDATIONS)),
         "max_minutes": max_minutes}
    plan.decide("trainer.max_minutes", max_minutes, f"80% of --minutes {opts.minutes:g} (the rest: start-up, test scoring)")
    plan.decide("trainer.max_epochs", epochs, f"{iterations} iterations fit: ({max_minutes:g} min - {VALIDATIONS} validations "
                f"x {val_s:.0f} s) / {step:.2f} s per measured step; {EPOCHS} epochs of {ipe}")
    plan.decide("trainer.iterations_per_epoch", ipe, f"ceil({iterations} iterations / {EPOCHS} epochs)")
    plan.decide("trainer.val_every", t["val_every"], f"about {VALIDATIONS} validations in the run")
    return t
