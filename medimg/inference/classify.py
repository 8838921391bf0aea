"""Classification prediction: whole-image probabilities, decisions and ``predictions.csv``.

A classifier sees the whole preprocessed image (no sliding window); flip test-time
augmentation averages the probabilities of the flipped inputs. Probabilities are the
softmax of the logits, or one sigmoid per label for a multi-label model, after dividing
the logits by the spec's ``temperature`` where ``medimg calibrate`` stored one. Decisions follow
:func:`medimg.metrics.classification.predict_labels` (``p >= threshold`` for binary and
multi-label, the argmax for multi-class), so that training, prediction and evaluation
decide alike. The CSV is the format :func:`medimg.metrics.evaluate_classification` reads.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..metrics.classification import predict_labels

__all__ = ["class_logits", "class_probabilities", "decide_classes", "task_of", "write_class_predictions"]


def _flip_combos(nd: int, tta_flips: Sequence[int]) -> list[tuple[int, ...]]:
    bad = [a for a in tta_flips if not 0 <= a < nd]
    if bad:
        raise ValueError(f"tta_flips axes {bad} out of range for {nd} spatial axes (0..{nd - 1})")
    combos: list[tuple[int, ...]] = [()]
    for r in range(1, len(set(tta_flips)) + 1):
        combos += list(itertools.combinations(sorted(set(tta_flips)), r))
    return combos


def class_logits(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tta_flips: Sequence[int] = ()
) -> torch.Tensor:
    """Logits ``(P, B, K)`` of preprocessed images ``x`` ``(B, C, *spatial)``, one row per
    test-time-augmentation pass (``P = 1`` without ``tta_flips``; the unflipped pass first)."""
    combos = _flip_combos(x.ndim - 2, tta_flips)
    return torch.stack([forward(torch.flip(x, [a + 2 for a in c]) if c else x).float() for c in combos])


def class_probabilities(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tta_flips: Sequence[int] = (),
    multilabel: bool = False,
    temperature: float | None = None,
) -> torch.Tensor:
    """Probabilities ``(B, K)`` for preprocessed images ``x`` ``(B, C, *spatial)``.

    Args:
        forward: the network, ``(B, C, *spatial) -> (B, K)`` logits.
        tta_flips: spatial axes (0-based) whose flips, alone and combined, are averaged.
        multilabel: sigmoid per label instead of a softmax over classes.
        temperature: each pass's logits are divided by it first (temperature scaling,
            ``medimg calibrate``); None: 1.
    """
    total = None
    combos = _flip_combos(x.ndim - 2, tta_flips)
    for combo in combos:
        xi = torch.flip(x, [a + 2 for a in combo]) if combo else x
        logits = forward(xi).float()
        if temperature is not None:
            logits = logits / float(temperature)
        probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(combos)


def task_of(num_classes: int, multilabel: bool) -> str:
    """``binary``, ``multiclass`` or ``multilabel``."""
    return "multilabel" if multilabel else ("binary" if num_classes == 2 else "multiclass")


def decide_classes(probs: np.ndarray, class_names: Sequence[str], threshold: float | None, multilabel: bool) -> list[str]:
    """The ``predicted`` column: a class name, or the labels present joined by ``;``."""
    task = task_of(len(class_names), multilabel)
    labels = predict_labels(probs, task, 0.5 if threshold is None else threshold)
    if multilabel:
        return [";".join(n for n, v in zip(class_names, row) if v) for row in labels]
    return [class_names[i] for i in labels.tolist()]


def write_class_predictions(
    path: str | Path,
    case_ids: Sequence[str],
    probs: np.ndarray,
    class_names: Sequence[str],
    threshold: float | None = None,
    multilabel: bool = False,
) -> Path:
    """Write ``predictions.csv``: ``case_id``, ``prob_<class>``..., ``predicted`` and, for
    binary and multi-label models, ``threshold``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    predicted = decide_classes(probs, class_names, threshold, multilabel) if len(case_ids) else []
    with_threshold = multilabel or len(class_names) == 2
    header = ["case_id", *(f"prob_{c}" for c in class_names), "predicted"] + (["threshold"] if with_threshold else [])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for cid, p, pred in zip(case_ids, probs, predicted):
            row = [cid, *(f"{float(v):.6f}" for v in p), pred]
            if with_threshold:
                row.append(f"{0.5 if threshold is None else threshold:.6f}")
            w.writerow(row)
    return path
