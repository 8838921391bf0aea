"""Post-processing learned on the validation cases, as nnU-Net decides it.

After a segmentation run has picked ``best.pt``, its validation predictions (those of the
best epoch, kept by :class:`BestValidationPredictions`, or predicted once more with
``best.pt`` when they are not at hand, e.g. after a resume) are cleaned up with each
candidate rule of :func:`candidate_rules`, one foreground class at a time:

- ``none``: the prediction as it is;
- ``min_size_ml=T`` for T in :data:`MIN_SIZE_CANDIDATES_ML` (0.1, 0.5, 1 mL): connected
  components of the class under T mL become background;
- ``keep_largest``: only the largest component of the class is kept;
- each of these after ``min_probability=P`` for P in :data:`MIN_PROBABILITY_CANDIDATES`
  (0.6 to 0.9): a voxel keeps the class only where the class's probability reaches P, else
  it becomes background. A network trained on few cases, with a Dice loss and patches
  drawn around the foreground, often labels a rim of low-probability voxels around what
  the references hold (over-segmentation); validation decides whether a stricter rule
  pays. Tried where the validation probabilities are at hand: the trainer keeps each
  case's foreground voxels under 0.9 (the largest candidate), not the whole maps.

A class's Dice depends only on that class's voxels, so the classes are decided
independently. A rule is kept only where it raises the class's mean validation Dice over
the cases above that of ``none`` (a tie keeps ``none``; between equal rules the one that
removes less, earlier in the list, wins: every rule without a minimum probability comes
before those with one). Dice is validation's (``history.csv``): a class
absent from both prediction and reference scores 1. nnU-Net also tries the largest
component of all foreground classes merged; for a single foreground class that is
``keep_largest`` itself, and for several it is not something ``inference.postprocess``
can express, so it is not tried.

The decision goes into ``best.pt``'s ``inference.postprocess`` (``medimg predict`` and the
run's test-split scoring apply it without options) and ``RUN_DIR/postprocess.json``
records every rule tried with its validation Dice. Components and rules are those of
:mod:`medimg.inference.postprocess`, so what is measured here is what prediction does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError, exception_reason
from ..core.plain import to_plain
from ..core.sample import Sample
from ..core.spec import ExperimentConfig, PostprocessSpec
from ..inference.checkpoint import inference_spec, load_checkpoint
from ..inference.postprocess import (
    apply_min_probability,
    kept_components,
    label_components,
    voxel_volume_ml,
)
from ..inference.predictor import Predictor
from ..inference.runlog import atomic_path
from .callbacks import Callback, FitState
from .validation import MAX_MIN_PROBABILITY, validation_metrics

__all__ = [
    "MIN_PROBABILITY_CANDIDATES",
    "MIN_SIZE_CANDIDATES_ML",
    "POSTPROCESS_FILE",
    "BestValidationPredictions",
    "candidate_rules",
    "learn_postprocess",
    "learn_run_postprocess",
    "store_postprocess",
    "will_learn",
]

#: The run folder's record of the post-processing learned (or why none was).
POSTPROCESS_FILE = "postprocess.json"
#: Component sizes (mL) tried as ``min_size_ml`` for each class.
MIN_SIZE_CANDIDATES_ML = (0.1, 0.5, 1.0)
#: Class probabilities tried as ``min_probability`` for each class.
MIN_PROBABILITY_CANDIDATES = (0.6, 0.7, 0.8, MAX_MIN_PROBABILITY)

#: One validation case: ``(case_id, predicted label map, reference label map, voxel mL)``,
#: both maps ``(*spatial)`` class values on the reference's grid.
ValidationCase = tuple[str, np.ndarray, np.ndarray, float]
#: One validation case's foreground voxels of low probability: ``(flat indices, probabilities)``
#: (:func:`~medimg.inference.postprocess.low_probability_voxels`).
LowProbability = tuple[np.ndarray, np.ndarray]


def candidate_rules(cls: int, sizes_ml: Sequence[float] = MIN_SIZE_CANDIDATES_ML,
                    probabilities: Sequence[float] = ()) -> list[tuple[str, PostprocessSpec]]:
    """The rules tried for class ``cls``, named, least removal first: ``none``, then
    ``min_size_ml=T`` for each size (ascending), then ``keep_largest``; then, for each
    minimum probability P (ascending), ``min_probability=P`` alone and before each of those."""
    components = [
        ("none", PostprocessSpec()),
        *((f"min_size_ml={t:g}", PostprocessSpec(min_size_ml={cls: float(t)})) for t in sorted(sizes_ml)),
        ("keep_largest", PostprocessSpec(keep_largest=[cls])),
    ]
    with_probability = [
        (f"min_probability={p:g}" + ("" if name == "none" else f"+{name}"),
         rule.model_copy(update={"min_probability": {cls: float(p)}}))
        for p in sorted(probabilities) for name, rule in components
    ]
    return components + with_probability


def _below_minimum(pred: np.ndarray, low: Mapping[str, LowProbability] | None, case_id: str, cls: int,
                   minimum: float | None) -> np.ndarray:
    """Case ``case_id``'s ``pred`` with class ``cls`` set to background where its probability
    is under ``minimum`` (``pred`` itself for None): :func:`apply_min_probability` on the
    kept low-probability voxels, the only ones it can change."""
    if minimum is None or low is None:
        return pred
    idx, prob = low[case_id]
    out = pred.copy()
    flat = out.reshape(-1)
    flat[idx] = apply_min_probability(torch.from_numpy(flat[idx]), torch.from_numpy(prob), {cls: minimum}).numpy()
    return out


@dataclass
class _ClassView:
    """One case seen by one class: its predicted components and their overlap with the reference."""

    sizes: np.ndarray  # voxels of each predicted component
    hits: np.ndarray  # reference voxels of the class inside each component
    ref: int  # reference voxels of the class
    voxel_ml: float

    def dice(self, keep: np.ndarray) -> float:
        """Dice of the class when only the components ``keep`` are kept (1 when both are empty)."""
        den = int(self.sizes[keep].sum()) + self.ref
        return 1.0 if den == 0 else 2.0 * float(self.hits[keep].sum()) / den


def _view(pred: np.ndarray, ref: np.ndarray, cls: int, voxel_ml: float) -> _ClassView:
    comps, sizes = label_components(pred == cls)
    in_ref = ref == cls
    hits = np.bincount(comps[in_ref].ravel(), minlength=len(sizes) + 1)[1:]
    return _ClassView(sizes, hits, int(in_ref.sum()), voxel_ml)


def learn_postprocess(
    cases: Sequence[ValidationCase],
    label_names: Sequence[str],
    sizes_ml: Sequence[float] = MIN_SIZE_CANDIDATES_ML,
    low_probability: Mapping[str, LowProbability] | None = None,
    probabilities: Sequence[float] = MIN_PROBABILITY_CANDIDATES,
) -> tuple[PostprocessSpec, dict[str, Any]]:
    """Choose each foreground class's rule on ``cases`` (module docstring).

    Args:
        cases: the validation cases' raw predictions and references (:data:`ValidationCase`).
        label_names: class names, background first (classes 1.. are decided).
        sizes_ml: the ``min_size_ml`` sizes tried.
        low_probability: case id -> its foreground voxels of probability under the largest
            of ``probabilities``; without it (or without a case in it) no minimum
            probability is tried.
        probabilities: the ``min_probability`` values tried.

    Returns:
        ``(spec, record)``: the chosen rules, and per class name ``{"class", "chosen",
        "dice_before", "dice_after", "tried": {rule: mean Dice}}`` with the means over the
        foreground classes before and after.

    Raises:
        DataError: a prediction and its reference differ in shape.
    """
    for case_id, pred, ref, _ in cases:
        if pred.shape != ref.shape:
            raise DataError(f"validation case '{case_id}': prediction grid {tuple(pred.shape)} differs from its "
                            f"label's {tuple(ref.shape)}", hint="predict the case on its label's grid")
    if low_probability is not None and probabilities and max(probabilities) > MAX_MIN_PROBABILITY:
        raise ValueError(f"minimum probabilities up to {MAX_MIN_PROBABILITY} can be learned, got {max(probabilities)}")
    if low_probability is None or any(c[0] not in low_probability for c in cases):
        probabilities = ()
    keep_largest: list[int] = []
    min_size: dict[int, float] = {}
    min_probability: dict[int, float] = {}
    classes: dict[str, Any] = {}
    for cls in range(1, len(label_names)):
        rules = candidate_rules(cls, sizes_ml, probabilities)
        views: dict[float | None, list[_ClassView]] = {}
        tried = {}
        for name, rule in rules:
            minimum = rule.min_probability.get(cls)
            if minimum not in views:
                views[minimum] = [_view(_below_minimum(pred, low_probability, i, cls, minimum), ref, cls, ml)
                                  for i, pred, ref, ml in cases]
            tried[name] = float(np.mean([v.dice(kept_components(v.sizes, v.voxel_ml, cls, rule))
                                         for v in views[minimum]]))
        best = max(tried, key=lambda name: tried[name])  # the first of equal ones: "none", then less removal
        chosen = best if tried[best] > tried["none"] else "none"
        rule = dict(rules)[chosen]
        keep_largest += rule.keep_largest
        min_size.update(rule.min_size_ml)
        min_probability.update(rule.min_probability)
        classes[str(label_names[cls])] = {
            "class": cls, "chosen": chosen, "dice_before": tried["none"], "dice_after": tried[chosen], "tried": tried,
        }
    spec = PostprocessSpec(keep_largest=keep_largest, min_size_ml=min_size, min_probability=min_probability)
    before = [c["dice_before"] for c in classes.values()]
    after = [c["dice_after"] for c in classes.values()]
    record = {
        "candidates": [name for name, _ in candidate_rules(1, sizes_ml, probabilities)],
        "classes": classes,
        "mean_dice_before": float(np.mean(before)) if before else None,
        "mean_dice_after": float(np.mean(after)) if after else None,
    }
    return spec, record


class BestValidationPredictions(Callback):
    """Keeps the validation label maps of the epoch ``best.pt`` holds (rank 0), from the
    trainer's ``val_predictions`` (and, with ``low_probability``, the voxels of
    ``val_uncertain``, which the trainer then collects), so that post-processing is
    learned without predicting the validation cases again. Nothing of it goes into checkpoints: a resumed run whose
    best epoch came before the resume predicts them once more with ``best.pt``.

    Attributes:
        epoch: the epoch of :attr:`predictions` (None before any best validation).
        predictions: case id -> label map tensor.
    """

    def __init__(self, trainer: Any, low_probability: bool = True) -> None:
        self.trainer = trainer
        trainer.keep_low_probability = low_probability  # what a minimum probability is learned from
        self.epoch: int | None = None
        self.predictions: dict[str, torch.Tensor] | None = None
        self.low_probability: dict[str, LowProbability] | None = None
        self._validated: int | None = None

    def on_validation_end(self, state: FitState, metrics: Mapping[str, float]) -> None:
        self._validated = state.epoch

    def on_epoch_end(self, state: FitState) -> None:
        best = self.trainer._best_model()
        if best is not None and best.best_epoch == state.epoch == self._validated:
            self.epoch, self.predictions = state.epoch, getattr(self.trainer, "val_predictions", None)
            self.low_probability = getattr(self.trainer, "val_uncertain", None)


def _validation_cases(
    checkpoint: Path, samples: Sequence[Sample], keeper: BestValidationPredictions | None, device: torch.device
) -> tuple[list[ValidationCase], dict[str, LowProbability], str]:
    """The cases' raw predictions and low-probability voxels (the ``keeper``'s when it has
    them all, else predicted with ``checkpoint``) with their references; and where the
    predictions came from."""
    ids = [str(s.case_id) for s in samples]
    kept = keeper.predictions if keeper is not None and keeper.epoch is not None else None
    low = keeper.low_probability if keeper is not None and keeper.epoch is not None else None
    if kept is not None and low is not None and all(i in kept and i in low for i in ids):
        preds, source = {i: kept[i].numpy() for i in ids}, "validation of the best epoch"
    else:
        again: dict[str, torch.Tensor] = {}
        low = {}
        validation_metrics(Predictor.from_checkpoint(checkpoint, device), samples, metrics=(),
                           predictions=again, uncertain=low)  # what validation keeps, with best.pt
        preds, source = {i: again[i].numpy() for i in ids}, f"predicted again with {checkpoint.name}"
    cases = [(i, preds[i], s["label"].data[0].cpu().numpy(), voxel_volume_ml(s["label"])) for i, s in zip(ids, samples)]
    return cases, low, source


def store_postprocess(checkpoint: str | Path, spec: PostprocessSpec) -> None:
    """Write ``spec`` as ``checkpoint``'s ``inference.postprocess``, atomically.

    Raises:
        CheckpointError: the checkpoint cannot be read, or the spec names classes it lacks.
    """
    payload = load_checkpoint(checkpoint)
    payload["inference"] = {**payload["inference"], "postprocess": to_plain(spec)}
    inference_spec(payload, checkpoint)  # still a spec prediction can read
    with atomic_path(checkpoint) as tmp:
        torch.save(payload, tmp)


def _describe(record: Mapping[str, Any]) -> str:
    changes = [f"{name}: {c['chosen']} (Dice {c['dice_before']:.4f} -> {c['dice_after']:.4f})"
               for name, c in record["classes"].items() if c["chosen"] != "none"]
    return "; ".join(changes) if changes else "none (no rule raises a class's validation Dice)"


def _write(run_dir: Path, record: Mapping[str, Any]) -> Path:
    path = run_dir / POSTPROCESS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_plain(dict(record)), indent=2))
    return path


def will_learn(cfg: ExperimentConfig) -> bool:
    """Whether :func:`learn_run_postprocess` learns anything for ``cfg`` (it is on, and the
    config does not give ``inference.postprocess`` itself)."""
    return bool(cfg.evaluation.learn_postprocess and not cfg.inference.postprocess.classes)


def learn_run_postprocess(
    cfg: ExperimentConfig,
    run_dir: Path,
    checkpoint: Path | None,
    samples: Sequence[Sample],
    keeper: BestValidationPredictions | None,
    device: torch.device,
    log: Callable[[str], None],
) -> dict[str, Any] | None:
    """Learn the post-processing of a finished segmentation run and store it in ``checkpoint``.

    Does nothing with ``evaluation.learn_postprocess: false``. Writes
    ``RUN_DIR/postprocess.json`` (``learned``: false with the ``reason`` where the config
    gives ``inference.postprocess``, there is no ``best.pt`` or fewer than 2 validation
    cases; a failure is logged and recorded, not raised: the model stays usable).

    Returns:
        ``postprocess.json``'s content (None with ``learn_postprocess: false``).
    """
    if not cfg.evaluation.learn_postprocess:
        return None
    given = cfg.inference.postprocess
    reason = (
        "the config sets inference.postprocess (kept as given)" if given.classes
        else "no best.pt" if checkpoint is None
        else f"{len(samples)} validation case(s); learning needs at least 2" if len(samples) < 2
        else None
    )
    record: dict[str, Any] = {"learned": False, "reason": reason, "postprocess": to_plain(given)}
    if reason is None:
        assert checkpoint is not None
        try:
            cases, low, source = _validation_cases(checkpoint, samples, keeper, device)
            spec, learned = learn_postprocess(cases, cfg.data.label_names, low_probability=low)
            store_postprocess(checkpoint, spec)
        except (DataError, ValueError, OSError, RuntimeError) as exc:
            reason = record["reason"] = f"failed: {exception_reason(exc)}"
        else:
            record = {
                "learned": True, "reason": None, "postprocess": to_plain(spec), "checkpoint": checkpoint.name,
                "validation_cases": [c[0] for c in cases], "predictions": source, **learned,
            }
            log(f"post-processing learned on {len(cases)} validation cases ({source}): {_describe(learned)}")
    if reason is not None:
        log(f"post-processing not learned: {reason}")
    _write(run_dir, record)
    return record
