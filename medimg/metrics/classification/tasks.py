"""The three classification tasks, the checks of their inputs, and the one decision rule.

A task is named by what one case's label is:

* ``"binary"``: one of two classes. ``y_true`` ``(n,)`` holds 0 (negative) or 1
  (positive); ``probs`` is ``(n,)`` (probability of the positive class), ``(n, 1)`` or
  ``(n, 2)`` (softmax over both classes; column 1 is the positive class).
* ``"multiclass"``: one of ``K >= 3`` classes. ``y_true`` ``(n,)`` holds class indices
  ``0..K-1``; ``probs`` is ``(n, K)``.
* ``"multilabel"``: any subset of ``L`` labels. ``y_true`` ``(n, L)`` holds 0/1 per label;
  ``probs`` is ``(n, L)`` (one independent probability per label).

Without ``task`` it is inferred from the shapes as above (2-D ``y_true`` means
multi-label). The decision rule is :func:`predict_labels`: positive when the probability
is **at or above** the threshold (``p >= threshold``), and for multi-class the class of
highest probability (the first of equal maxima). Training, prediction and evaluation all
use it, so an operating threshold means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.errors import DataError

__all__ = ["TASKS", "Prepared", "predict_labels", "prepare", "where"]

#: The classification tasks, by name.
TASKS = ("binary", "multiclass", "multilabel")


@dataclass(frozen=True)
class Prepared:
    """Checked inputs of one task, in the one layout the metrics use.

    Attributes:
        task: one of :data:`TASKS`.
        y: binary ``(n,)`` int 0/1; multi-class ``(n,)`` int class index; multi-label
            ``(n, L)`` int 0/1.
        scores: binary ``(n,)`` probability of the positive class; otherwise ``(n, K)``
            / ``(n, L)`` float64.
        num_classes: 2 (binary), ``K`` or ``L``.
    """

    task: str
    y: np.ndarray
    scores: np.ndarray
    num_classes: int

    @property
    def n(self) -> int:
        """Number of cases."""
        return int(self.y.shape[0])

    def one_vs_rest(self) -> tuple[np.ndarray, np.ndarray]:
        """``(truth, scores)``, each ``(n, C)``: one column per class scored one-vs-rest
        (binary: the positive class only, ``C = 1``)."""
        if self.task == "binary":
            return self.y[:, None].astype(bool), self.scores[:, None]
        if self.task == "multiclass":
            return self.y[:, None] == np.arange(self.num_classes)[None, :], self.scores
        return self.y.astype(bool), self.scores


def where(split: str | None) -> str:
    """How an error names the data: ``"the validation split"`` or ``"the given labels"``."""
    return f"the {split} split" if split else "the given labels"


def _as_array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_probs(p: np.ndarray) -> np.ndarray:
    if not np.issubdtype(p.dtype, np.number) and p.dtype != np.bool_:
        raise DataError(f"probs must be numbers, got dtype {p.dtype}")
    p = p.astype(np.float64, copy=False)
    bad = ~np.isfinite(p) | (p < 0.0) | (p > 1.0)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"probs must be probabilities in [0, 1]; row {row} holds {p[row].tolist()}",
            hint="apply softmax (one class per case) or sigmoid (multi-label) to the model's logits first",
        )
    return p


def _check_labels(y: np.ndarray, k: int, what: str) -> np.ndarray:
    if y.dtype == np.bool_:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or (y.size and not np.array_equal(y, np.round(y))):
        raise DataError(f"y_true must hold whole numbers ({what}); got dtype {y.dtype}")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= k)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(f"y_true must hold {what}; row {row} holds {y[row].tolist()}")
    return y


def _infer_task(y: np.ndarray, p: np.ndarray) -> str:
    if y.ndim == 2:
        return "multilabel"
    if p.ndim == 1 or p.shape[1] <= 2:
        return "binary"
    return "multiclass"


def prepare(y_true: Any, probs: Any, task: str | None = None) -> Prepared:
    """Check ``y_true`` and ``probs`` (module docstring) and bring them to one layout.

    Raises:
        DataError: unknown task, shapes that disagree, labels out of range, or
            probabilities outside ``[0, 1]`` (NaN included).
    """
    y = _as_array(y_true, "y_true")
    p = _check_probs(_as_array(probs, "probs"))
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if y.ndim not in (1, 2) or p.ndim not in (1, 2):
        raise DataError(f"y_true and probs must be 1-D or 2-D; got shapes {y.shape} and {p.shape}")
    if y.shape[0] != p.shape[0]:
        raise DataError(
            f"y_true has {y.shape[0]} cases but probs has {p.shape[0]}; give one row per case"
        )
    if y.shape[0] == 0:
        raise DataError("no cases: y_true and probs are empty")
    task = task or _infer_task(y, p)
    if task == "binary":
        return _prepare_binary(y, p)
    if p.ndim != 2:
        raise DataError(f"{task} probs must be (n, classes); got shape {p.shape}")
    if task == "multiclass":
        if y.ndim != 1:
            raise DataError(f"multiclass y_true must be (n,) class indices; got shape {y.shape}")
        k = p.shape[1]
        return Prepared("multiclass", _check_labels(y, k, f"class indices 0..{k - 1}"), p, k)
    if y.shape != p.shape:
        raise DataError(
            f"multilabel y_true and probs must have the same shape (n, labels); got {y.shape} and {p.shape}"
        )
    return Prepared("multilabel", _check_labels(y, 2, "0 or 1 per label"), p, p.shape[1])


def _prepare_binary(y: np.ndarray, p: np.ndarray) -> Prepared:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"binary y_true must be (n,) of 0/1; got shape {y.shape}")
    if p.ndim == 2:
        if p.shape[1] not in (1, 2):
            raise DataError(f"binary probs must be (n,), (n, 1) or (n, 2); got shape {p.shape}")
        p = p[:, -1]  # (n, 2): column 1 is the positive class
    return Prepared("binary", _check_labels(y, 2, "0 (negative) or 1 (positive)"), p, 2)


def thresholds_for(prep: Prepared, threshold: float | Any) -> np.ndarray:
    """The threshold as an array that broadcasts over ``prep.scores`` (checked in [0, 1])."""
    t = np.asarray(threshold, dtype=np.float64)
    if prep.task == "multilabel" and t.ndim == 1 and t.shape[0] != prep.num_classes:
        raise DataError(
            f"threshold has {t.shape[0]} values for {prep.num_classes} labels; give one per label or one for all"
        )
    if t.ndim > 1 or (t.ndim == 1 and prep.task != "multilabel"):
        raise DataError(
            f"threshold must be one number{' or one per label' if prep.task == 'multilabel' else ''}; got {t.tolist()}"
        )
    if not np.all((t >= 0.0) & (t <= 1.0)):
        raise DataError(f"threshold must lie in [0, 1]; got {t.tolist()}")
    return t


def predict_labels(probs: Any, task: str | None = None, threshold: float | Any = 0.5) -> np.ndarray:
    """The predicted labels: ``p >= threshold`` (binary, multi-label; ``threshold`` may be
    one per label) or the argmax (multi-class, first of equal maxima; ``threshold`` unused).

    Args:
        probs: as in the module docstring.
        task: one of :data:`TASKS`; inferred from the shape of ``probs`` when None
            (``(n,)``, ``(n, 1)``, ``(n, 2)``: binary; wider: multi-class; multi-label
            must be named).

    Returns:
        binary and multi-class ``(n,)`` int64; multi-label ``(n, L)`` int64 0/1.
    """
    p = _check_probs(_as_array(probs, "probs"))
    dummy = np.zeros(p.shape if task == "multilabel" else p.shape[:1], dtype=np.int64)
    prep = prepare(dummy, p, task)
    return decide(prep, threshold)


def decide(prep: Prepared, threshold: float | Any = 0.5) -> np.ndarray:
    """:func:`predict_labels` on checked inputs."""
    if prep.task == "multiclass":
        return np.argmax(prep.scores, axis=1).astype(np.int64)
    return (prep.scores >= thresholds_for(prep, threshold)).astype(np.int64)
