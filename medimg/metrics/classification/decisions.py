"""Which class each case was predicted: the ``predicted`` column, or the probabilities at
the operating threshold, and where that threshold came from.

The model's own decision is what a study reports, so the ``predicted`` column is scored
where it exists; a threshold given to the evaluation replaces it (the cases are decided
again from the probabilities). Disagreements between ``predicted`` and the probabilities
at the stored threshold are counted in a warning: they mean the two columns were not
written together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...core.errors import DataError
from .inputs import LABEL_SEPARATOR, PREDICTED, PROB_PREFIX, THRESHOLD, PredictionsTable
from .tasks import Prepared, decide, thresholds_for

__all__ = ["decisions"]


def decisions(
    preds: PredictionsTable, rows: list[int], prep: Prepared, threshold: float | None
) -> tuple[np.ndarray, dict[str, Any] | None, list[str], list[str]]:
    """``(y_pred, threshold_info, notes, warnings)`` for the scored ``rows``.

    ``threshold_info`` is ``{"value": t, "source": ...}`` (multi-label: ``value`` per
    label), None for multi-class (the argmax decides).

    Raises:
        DataError: a threshold given for a multi-class task; a stored threshold that
            differs between cases; a ``predicted`` value that is not a class.
    """
    notes: list[str] = []
    if prep.task == "multiclass":
        if threshold is not None:
            raise DataError(
                f"a threshold applies to binary and multi-label tasks; '{preds.path.name}' has "
                f"{len(preds.classes)} classes, each case decided by its highest probability",
                hint="leave the threshold out",
                cli_hint="leave --threshold out",
            )
        info = None
        t: Any = 0.5
    else:
        t, info = _threshold(preds, rows, prep, threshold)
        if threshold is None and info["source"] == "default":
            notes.append("no threshold given or stored in the predictions: cases decided at 0.5")
    from_probs = decide(prep, t)
    if preds.predicted is None or threshold is not None:
        if preds.predicted is not None:
            notes.append(
                f"decided at the given threshold {threshold}; the '{PREDICTED}' column is not scored"
            )
        return from_probs, info, notes, []
    y_pred = _read_predicted(preds, rows, prep)
    return y_pred, info, notes, _disagreements(preds, rows, prep, y_pred, from_probs)


def _constant(preds: PredictionsTable, column: str, rows: list[int]) -> float:
    v = preds.thresholds[column][rows]
    if np.any(v != v[0]):
        k = int(np.flatnonzero(v != v[0])[0])
        raise DataError(
            f"{preds.path.name}: column '{column}' holds different values ({v[0]:g} on line "
            f"{preds.lines[rows[0]]}, {v[k]:g} on line {preds.lines[rows[k]]}); the predictions of one "
            "model share one operating threshold",
            hint="score the predictions of each model (threshold) separately, or give one threshold",
        )
    return float(v[0])


def _threshold(
    preds: PredictionsTable, rows: list[int], prep: Prepared, given: float | None
) -> tuple[Any, dict[str, Any]]:
    """The threshold (one, or one per label) and where it came from."""
    if given is not None:
        return float(thresholds_for(prep, given)), {"value": float(given), "source": "given"}
    per_label = [f"{THRESHOLD}_{c}" for c in preds.classes]
    if prep.task == "multilabel" and all(c in preds.thresholds for c in per_label):
        t = np.array([_constant(preds, c, rows) for c in per_label])
        value: Any = dict(zip(preds.classes, t.tolist()))
        return t, {"value": value, "source": f"{preds.path.name} columns {THRESHOLD}_<label>"}
    if THRESHOLD in preds.thresholds:
        t1 = _constant(preds, THRESHOLD, rows)
        value = t1 if prep.task == "binary" else {c: t1 for c in preds.classes}
        return t1, {"value": value, "source": f"{preds.path.name} column {THRESHOLD}"}
    value = 0.5 if prep.task == "binary" else {c: 0.5 for c in preds.classes}
    return 0.5, {"value": value, "source": "default"}


def _read_predicted(preds: PredictionsTable, rows: list[int], prep: Prepared) -> np.ndarray:
    """The ``predicted`` column as labels in the layout of ``prep.y``."""
    names = {c: k for k, c in enumerate(preds.classes)}
    assert preds.predicted is not None
    if prep.task == "multilabel":
        out = np.zeros((len(rows), len(names)), dtype=np.int64)
        for j, i in enumerate(rows):
            for part in filter(
                None, (x.strip() for x in preds.predicted[i].split(LABEL_SEPARATOR))
            ):
                out[j, _class_index(preds, i, part, names)] = 1
        return out
    y = np.array([_class_index(preds, i, preds.predicted[i], names) for i in rows], dtype=np.int64)
    return y


def _class_index(preds: PredictionsTable, i: int, text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    found = f"{text!r} is not" if text else "is empty, not"
    raise DataError(
        f"{preds.path.name} line {preds.lines[i]} (case_id '{preds.case_ids[i]}'), column '{PREDICTED}': "
        f"{found} one of the classes of its {PROB_PREFIX} columns ({', '.join(preds.classes)})",
        hint=f"write a class named by a {PROB_PREFIX} column (multi-label: names joined by "
        f"'{LABEL_SEPARATOR}'), or drop the '{PREDICTED}' column to decide from the probabilities",
    )


def _disagreements(
    preds: PredictionsTable,
    rows: list[int],
    prep: Prepared,
    y_pred: np.ndarray,
    from_probs: np.ndarray,
) -> list[str]:
    differ = np.flatnonzero((y_pred != from_probs).reshape(len(rows), -1).any(axis=1))
    if differ.size == 0:
        return []
    rule = "the highest probability" if prep.task == "multiclass" else "prob >= threshold"
    example = preds.case_ids[rows[int(differ[0])]]
    return [
        (
            f"{differ.size} case(s) (e.g. '{example}') have a '{PREDICTED}' value other than {rule} "
            f"gives; the '{PREDICTED}' column is scored"
        )
    ]
