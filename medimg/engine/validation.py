"""Whole-case validation of a segmentation network: what :class:`~medimg.engine.Trainer`
scores after each validation epoch, with the :class:`~medimg.inference.Predictor` that
``medimg predict`` uses (what is measured is what ships)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..core.errors import ConfigError
from ..core.sample import Sample
from ..inference.postprocess import low_probability_voxels
from ..inference.predictor import Predictor
from ..metrics import METRICS
from .selection import LOSS

__all__ = ["MAX_MIN_PROBABILITY", "validation_metrics"]

#: Probabilities above this are never kept for learning ``postprocess.min_probability``
#: (the largest candidate minimum of :mod:`medimg.engine.postlearn`).
MAX_MIN_PROBABILITY = 0.9


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean leaving NaN out (inf stays: a class missed entirely is the worst value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, quietly
        return np.nanmean(values, axis=axis)


def validation_metrics(
    predictor: Predictor,
    samples: Sequence[Sample],
    label_names: Sequence[str] | None = None,
    metrics: Sequence[str] = ("dice", "jaccard"),
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    predictions: dict[str, torch.Tensor] | None = None,
    uncertain: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, float]:
    """Predict each sample whole and score it against its ``"label"`` on the native grid.

    Each metric comes from :data:`medimg.metrics.METRICS`, computed with the label's voxel
    spacing (distances in mm, volumes in ml).

    Args:
        predictor: the predictor (the same code path as ``medimg predict``).
        samples: whole cases with ``"image"`` and ``"label"`` on their own grid.
        label_names: class names, background first (default: the predictor's).
        metrics: registered metric names, and ``"loss"`` for ``loss_fn`` on the predicted
            probabilities (their log as logits: a softmax loss sees the same probabilities).
        loss_fn: the training loss, ``loss(logits (B,K,...), label (B,1,...))``.
        predictions: when given, filled with each case's predicted label map (case id ->
            ``(*spatial)`` uint8 tensor on the CPU, on the label's grid, before any
            post-processing), e.g. to learn post-processing without predicting again.
        uncertain: when given, filled with each case's foreground voxels of probability
            under :data:`~medimg.engine.postlearn.MAX_MIN_PROBABILITY`
            (:func:`~medimg.inference.postprocess.low_probability_voxels`), what learning
            a class's minimum probability needs.

    Returns:
        For each metric ``m``: ``m`` (mean over foreground classes of each class's mean
        over cases) and ``m_<class name>`` per foreground class; ``loss`` (mean over
        cases) when asked. NaN values (e.g. ``hd95`` where a class is absent from both
        prediction and reference) are left out of the means; a class absent from both
        scores Dice 1 (nothing to find, nothing found).

    Raises:
        ConfigError: ``"loss"`` asked for without ``loss_fn``.
    """
    names = [m.lower() for m in dict.fromkeys(metrics)]
    want_loss = LOSS in names
    names = [m for m in names if m != LOSS]
    if want_loss and loss_fn is None:
        raise ConfigError("the validation loss needs the training loss function (loss_fn)")
    labels = list(label_names or predictor.label_names or [])
    if not labels:
        labels = [f"class_{i}" for i in range(predictor.num_classes or 2)]
    k = len(labels)
    per_case: dict[str, list[np.ndarray]] = {m: [] for m in names}
    losses: list[float] = []
    for s in samples:
        probs = predictor.predict_probabilities(s, case_id=s.case_id).data
        top, pred = torch.max(probs, 0)  # argmax's indices (the first maximum), with the values
        if predictions is not None:
            predictions[str(s.case_id)] = pred.to(torch.uint8 if k <= 256 else torch.int16).cpu()
        if uncertain is not None:
            uncertain[str(s.case_id)] = low_probability_voxels(pred, top, MAX_MIN_PROBABILITY)
        ref_image = s["label"]
        ref = ref_image.data[0]
        for m in names:
            per_case[m].append(METRICS.get(m)(pred, ref, k, spacing=ref_image.spacing)[1:])
        if want_loss:
            logits = torch.log(probs.clamp_min(1e-8))[None]
            with torch.no_grad():
                losses.append(float(loss_fn(logits, ref[None, None].long())))  # type: ignore[misc]
    out: dict[str, float] = {}
    for m in names:
        per_class = _nanmean(np.stack(per_case[m]), axis=0) if per_case[m] else np.full(k - 1, np.nan)
        out[m] = float(_nanmean(per_class)) if len(per_class) else math.nan
        for name, v in zip(labels[1:], per_class):
            out[f"{m}_{name}"] = float(v)
    if want_loss:
        out[LOSS] = float(np.mean(losses)) if losses else math.nan
    return out
