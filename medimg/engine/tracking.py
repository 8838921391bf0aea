"""Experiment tracking: TensorBoard event files written by a :class:`Callback`.

``trainer.tensorboard: true`` adds :class:`TensorBoardLogger` to a run; it writes to
``RUN_DIR/tensorboard`` (``tensorboard --logdir RUN_DIR``):

- ``train/loss_step`` and ``train/lr_step`` after every training step (x: the global step);
- ``train/loss``, ``train/lr``, ``train/data_wait`` (the fraction of the epoch's training
  time spent waiting for batches) and ``val/<metric>`` for each validation metric after
  every epoch (x: the epoch);
- for segmentation, after every validation, ``val_images/<case>``: one slice of each of the
  first :data:`IMAGE_CASES` validation cases (the slice with the most reference foreground),
  as three panels: the image, the reference over it, the prediction over it.

The callback needs the ``tensorboard`` extra (``pip install 'medimg[tensorboard]'``);
without it :func:`tensorboard_callback` logs one line and returns None, and the run goes on.
``history.csv`` and ``training_curve.png`` are written either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.sample import Sample
from .callbacks import Callback, FitState

__all__ = ["IMAGE_CASES", "TENSORBOARD_DIR", "TensorBoardLogger", "overlay_slice", "segmentation_images",
           "tensorboard_callback", "tracking_callbacks"]

#: The run folder's subfolder for the event files.
TENSORBOARD_DIR = "tensorboard"
#: Validation cases drawn as images after each validation (segmentation).
IMAGE_CASES = 2

#: Overlay colours of classes 1, 2, ... (RGB in [0, 1]); background stays the image.
_COLOURS = np.array([[1.0, 0.2, 0.2], [0.2, 0.9, 0.2], [0.3, 0.5, 1.0], [1.0, 0.9, 0.2], [0.9, 0.3, 0.9], [0.2, 0.9, 0.9]])

Images = Callable[[FitState], Sequence[tuple[str, np.ndarray]]]

_warned = False


class TensorBoardLogger(Callback):
    """Writes loss, learning rate, data-wait fraction, validation metrics and (optionally)
    images to TensorBoard event files in ``log_dir`` (module docstring).

    Args:
        log_dir: the event files' folder (created).
        images: ``images(state) -> [(tag, (H, W, 3) uint8), ...]`` called after each
            validation (e.g. :func:`segmentation_images`); None: no images.
        lr: ``lr() -> float``, the current learning rate (for ``train/lr_step``); None: not logged.
        writer: a ``SummaryWriter``-like object (tests); default: TensorBoard's.
    """

    def __init__(self, log_dir: str | Path, images: Images | None = None,
                 lr: Callable[[], float] | None = None, writer: Any = None) -> None:
        self.log_dir = Path(log_dir)
        self.images = images
        self.lr = lr
        self.writer = writer

    def on_fit_start(self, state: FitState) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            self.writer.add_scalar(tag, float(value), step)

    def on_step_end(self, state: FitState) -> None:
        step = (state.epoch - 1) * state.iterations_per_epoch + state.step
        self._scalar("train/loss_step", state.loss, step)
        if self.lr is not None:
            self._scalar("train/lr_step", self.lr(), step)

    def on_validation_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        if self.images is None:
            return
        for tag, image in self.images(state):
            self.writer.add_image(f"val_images/{tag}", image, state.epoch, dataformats="HWC")

    def on_epoch_end(self, state: FitState) -> None:
        row = state.row
        for key in ("train_loss", "lr", "data_wait"):
            self._scalar(f"train/{key.removeprefix('train_')}", row.get(key), state.epoch)
        for name, value in state.metrics.items():
            self._scalar(f"val/{name}", value, state.epoch)
        self.writer.flush()

    def on_fit_end(self, state: FitState) -> None:
        if self.writer is not None:
            self.writer.close()


def _normalised(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, [1, 99]) if x.size else (0.0, 1.0)
    return np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x, dtype=float)


def overlay_slice(image: np.ndarray, reference: np.ndarray, prediction: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Three panels side by side, ``(H, 3 W, 3)`` uint8: the 2D ``image`` (grey, 1st-99th
    percentile window), the ``reference`` label map over it, the ``prediction`` over it."""
    grey = np.repeat(_normalised(image.astype(float))[..., None], 3, axis=-1)
    panels = [grey]
    for labels in (reference, prediction):
        rgb = grey.copy()
        for value in np.unique(labels):
            if value <= 0:
                continue
            mask = labels == value
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * _COLOURS[(int(value) - 1) % len(_COLOURS)]
        panels.append(rgb)
    gap = np.ones((grey.shape[0], 2, 3))
    out = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    return (out * 255).round().astype(np.uint8)


def _case_slice(sample: Sample, pred: torch.Tensor) -> np.ndarray:
    """The overlay of the slice (last axis) with the most reference foreground (2D: the image)."""
    image = sample["image"].data[0].float().numpy()
    ref = sample["label"].data[0].numpy()
    p = pred.numpy()
    if image.ndim == 3:
        k = int(np.argmax((ref > 0).reshape(-1, ref.shape[-1]).sum(0))) if (ref > 0).any() else ref.shape[-1] // 2
        image, ref, p = image[..., k], ref[..., k], p[..., k]
    # rows = second axis, top = anterior/superior: the radiological-ish view of RAS arrays
    return overlay_slice(np.rot90(image), np.rot90(ref), np.rot90(p))


def segmentation_images(predictor: Callable[[], Any], samples: Sequence[Sample], cases: int = IMAGE_CASES) -> Images:
    """``images(state)`` for :class:`TensorBoardLogger`: the first ``cases`` validation
    samples predicted whole with ``predictor()`` (the trainer's current weights), one slice each."""

    def images(state: FitState) -> list[tuple[str, np.ndarray]]:
        out = []
        pred = predictor()
        for s in list(samples)[:cases]:
            probs = pred.predict_probabilities(s, case_id=s.case_id).data
            out.append((str(s.case_id), _case_slice(s, probs.argmax(0))))
        return out

    return images


def tensorboard_callback(run_dir: str | Path, log: Callable[[str], None], images: Images | None = None,
                         lr: Callable[[], float] | None = None) -> TensorBoardLogger | None:
    """A :class:`TensorBoardLogger` writing to ``run_dir/tensorboard``, or None (said once
    per process through ``log``) when TensorBoard is not installed."""
    global _warned
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        if not _warned:
            log("trainer.tensorboard: skipped, TensorBoard is not installed (pip install 'medimg[tensorboard]')")
            _warned = True
        return None
    return TensorBoardLogger(Path(run_dir) / TENSORBOARD_DIR, images, lr)


def tracking_callbacks(trainer: Any, enabled: bool, images: bool = False) -> list[Callback]:
    """The tracking callbacks of a run (``trainer.tensorboard``): a
    :class:`TensorBoardLogger` on rank 0 when ``enabled`` and TensorBoard is installed,
    drawing validation slices when ``images`` (segmentation) and there are validation cases."""
    if not enabled or not trainer.dist.is_main:
        return []
    draw = segmentation_images(trainer._predictor, trainer.val_samples) if images and trainer.val_samples else None
    cb = tensorboard_callback(trainer.run_dir, trainer.log, draw, lr=lambda: float(trainer.optimizer.param_groups[0]["lr"]))
    return [cb] if cb is not None else []
