"""Reading the two CSV files of a classification evaluation, with errors that name the line.

The formats are given in :mod:`medimg.metrics.classification.evaluate`. Every problem is
one :class:`~medimg.core.errors.DataError` naming the file, the line (as an editor counts
it, the header being line 1) or the column, what was expected, what was found, and the fix.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...core.errors import DataError

__all__ = [
    "CASE_ID",
    "LABEL",
    "PREDICTED",
    "PROB_PREFIX",
    "SPLIT",
    "THRESHOLD",
    "LabelsTable",
    "PredictionsTable",
    "read_labels",
    "read_predictions",
]

CASE_ID = "case_id"
PROB_PREFIX = "prob_"
PREDICTED = "predicted"
THRESHOLD = "threshold"
LABEL = "label"
SPLIT = "split"
#: Separator of the label names in a multi-label ``predicted`` cell.
LABEL_SEPARATOR = ";"
_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


@dataclass
class _Csv:
    """A CSV file read whole: each column's stripped cells, and each row's line number."""

    path: Path
    header: list[str]
    columns: dict[str, list[str]]
    lines: list[int]

    def cell(self, i: int, column: str) -> str:
        return self.columns[column][i] if column in self.columns else ""

    def where(self, i: int, column: str | None = None) -> str:
        col = f", column '{column}'" if column else ""
        cid = self.cell(i, CASE_ID)
        return (
            f"{self.path.name} line {self.lines[i]}" + (f" (case_id '{cid}')" if cid else "") + col
        )


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and their line numbers (blank lines skipped; one field per column)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows: list[list[str]] = []
        lines: list[int] = []
        for fields in reader:
            if len(fields) != len(header):
                if not any(x.strip() for x in fields):
                    continue  # blank line
                raise DataError(
                    f"{path.name} line {reader.line_num} has {len(fields)} fields but the header has "
                    f"{len(header)} ({', '.join(header)}); give every row one value per column"
                )
            rows.append(fields)
            lines.append(reader.line_num)
    return header, rows, lines


def _read_csv(path: str | Path, what: str, fix: str) -> _Csv:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file '{path}' does not exist", hint=fix)
    header, rows, lines = _read_rows(path)
    if CASE_ID not in header:
        raise DataError(
            f"{what} file '{path}' has no '{CASE_ID}' column (columns: {', '.join(header) or 'none'})",
            hint=f"name the column of case ids '{CASE_ID}' in the header line",
        )
    if not rows:
        raise DataError(f"{what} file '{path}' has a header but no case")
    columns = {h: [x.strip() for x in col] for h, col in zip(header, zip(*rows))}
    table = _Csv(path, header, columns, lines)
    _check_ids(table)
    return table


def _check_ids(t: _Csv) -> None:
    ids = t.columns[CASE_ID]
    if len(set(ids)) == len(ids) and all(ids):
        return
    seen: dict[str, int] = {}
    for i, cid in enumerate(ids):
        if not cid:
            raise DataError(f"{t.where(i, CASE_ID)} is empty; every row needs its case id")
        if cid in seen:
            raise DataError(
                f"{t.path.name} lines {t.lines[seen[cid]]} and {t.lines[i]} both have case_id '{cid}'; "
                "list each case once"
            )
        seen[cid] = i


@dataclass
class PredictionsTable:
    """A predictions CSV: ``probs[i, k]`` is the probability of ``classes[k]`` for
    ``case_ids[i]``; ``predicted`` the raw ``predicted`` cells (None without that column);
    ``thresholds`` the ``threshold`` / ``threshold_<class>`` columns found, by name."""

    path: Path
    case_ids: list[str]
    classes: list[str]
    probs: np.ndarray
    predicted: list[str] | None
    thresholds: dict[str, np.ndarray] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)


def _numbers(t: _Csv, column: str, what: str, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """A column as float64, each value checked to lie in ``[low, high]``."""
    cells = t.columns[column]
    try:
        v = np.array(cells, dtype=np.float64)
    except ValueError:  # find the first cell that is not a number
        v = np.array([_float_or_nan(x) for x in cells])
    bad = ~((v >= low) & (v <= high))  # also NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{t.where(i, column)}: {cells[i]!r} is not {what} in [{low:g}, {high:g}]; write the number"
        )
    return v


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_predictions(path: str | Path) -> PredictionsTable:
    """Read a predictions CSV (``case_id``, ``prob_<class>``..., optional ``predicted``,
    ``threshold``).

    Raises:
        DataError: missing file or column, fewer than two ``prob_`` columns, a cell that
            is not a probability, a duplicate or empty case id.
    """
    t = _read_csv(path, "predictions", "give the predictions.csv that `medimg predict` writes")
    prob_cols = [h for h in t.header if h.startswith(PROB_PREFIX) and len(h) > len(PROB_PREFIX)]
    if len(prob_cols) < 2:
        raise DataError(
            f"predictions file '{t.path}' has {len(prob_cols)} '{PROB_PREFIX}<class>' column(s) "
            f"(columns: {', '.join(t.header)}); expected one per class, at least two",
            hint="write one probability column per class, e.g. prob_normal,prob_pneumonia "
            "(binary tasks too: the second is the positive class)",
        )
    probs = np.stack([_numbers(t, c, "a probability") for c in prob_cols], axis=1)
    thresholds = {
        c: _numbers(t, c, "a threshold")
        for c in t.header
        if c == THRESHOLD or c.startswith(THRESHOLD + "_")
    }
    predicted = list(t.columns[PREDICTED]) if PREDICTED in t.header else None
    return PredictionsTable(
        t.path,
        list(t.columns[CASE_ID]),
        [c[len(PROB_PREFIX) :] for c in prob_cols],
        probs,
        predicted,
        thresholds,
        list(t.lines),
    )


@dataclass
class LabelsTable:
    """A label CSV or manifest, read for the classes of the predictions.

    ``y[case_id]`` is the class index (single-label) or a 0/1 vector over the classes
    (multi-label); ``columns`` the label column(s) read; ``note`` how the labels were read.
    """

    path: Path
    multilabel: bool
    y: dict[str, np.ndarray | int]
    columns: list[str]
    note: str = ""
    splits: dict[str, str] = field(default_factory=dict)


def _label_columns(t: _Csv, classes: list[str], label_column: str | None) -> tuple[bool, list[str]]:
    """``(multilabel, columns)``: the given column; else ``label``; else one per class."""
    if label_column is not None:
        if label_column not in t.header:
            raise DataError(
                f"labels file '{t.path}' has no column '{label_column}' (columns: {', '.join(t.header)})",
                hint="name an existing column as the label column",
                cli_hint="give --label-column an existing column",
            )
        return False, [label_column]
    if LABEL in t.header:
        return False, [LABEL]
    if all(c in t.header for c in classes):
        return True, list(classes)
    others = [
        h for h in t.header if h not in (CASE_ID, SPLIT, "patient_id") and not h.startswith("image")
    ]
    guess = (
        f"; if the labels are in '{others[0]}', name it as the label column"
        if len(others) == 1
        else ""
    )
    raise DataError(
        f"labels file '{t.path}' has no '{LABEL}' column and no column per class "
        f"({', '.join(classes)}, from the prob_ columns of the predictions); columns found: "
        f"{', '.join(t.header)}{guess}",
        hint="add a 'label' column holding each case's class, one 0/1 column per class for "
        "multi-label tasks, or name the label column (label_column=...)",
        cli_hint="add a 'label' column holding each case's class, one 0/1 column per class for "
        "multi-label tasks, or name the label column with --label-column",
    )


def _single_labels(
    t: _Csv, rows: list[int], column: str, classes: list[str], source: str
) -> tuple[list[int], str]:
    """Class indices of one label column: class names, or else indices 0..K-1."""
    names = {c: k for k, c in enumerate(classes)}
    texts = [t.cell(i, column) for i in rows]
    for i, text in zip(rows, texts):
        if not text:
            raise DataError(
                f"{t.where(i, column)} is empty; give every case its class (or leave it out of both files)"
            )
    if all(x in names for x in texts):
        return [names[x] for x in texts], ""
    as_index = [_index(x, len(classes)) for x in texts]
    if all(v is not None for v in as_index):
        return [int(v) for v in as_index], (  # type: ignore[arg-type]
            f"labels in '{column}' read as class indices 0..{len(classes) - 1} in the order of the "
            f"prob_ columns ({', '.join(classes)})"
        )
    bad = next(i for i, x, v in zip(rows, texts, as_index) if x not in names and v is None)
    raise DataError(
        f"{t.where(bad, column)}: {t.cell(bad, column)!r} is not one of the declared classes "
        f"{', '.join(classes)} (the prob_ columns of {source}), nor a class index 0..{len(classes) - 1}",
        hint="correct the label, or predict with a model that has this class",
    )


def _index(text: str, k: int) -> int | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return int(v) if v.is_integer() and 0 <= v < k else None


def _multi_labels(t: _Csv, rows: list[int], columns: list[str]) -> list[np.ndarray]:
    out = []
    for i in rows:
        vec = np.zeros(len(columns), dtype=np.int64)
        for k, col in enumerate(columns):
            text = t.cell(i, col).lower()
            if text not in _TRUE | _FALSE:
                raise DataError(
                    f"{t.where(i, col)}: {t.cell(i, col)!r} is not 0 or 1; a multi-label file "
                    "holds one 0/1 column per class, 1 where the case has it"
                )
            vec[k] = text in _TRUE
        out.append(vec)
    return out


def read_labels(
    path: str | Path,
    classes: list[str],
    *,
    label_column: str | None = None,
    split: str | None = None,
    source: str = "the predictions",
) -> LabelsTable:
    """Read a label CSV or manifest for the given ``classes``.

    Args:
        path: CSV with ``case_id`` and a ``label`` column (or ``label_column``), or one
            0/1 column per class (multi-label). Other columns are ignored.
        classes: the class names, from the predictions' ``prob_`` columns.
        label_column: the single-label column's name (default ``label``).
        split: keep only the rows whose ``split`` column holds this value.
        source: how errors name the predictions file.

    Raises:
        DataError: missing file or column, a label that is not a declared class, an empty
            label, a split column that is missing or holds no such split.
    """
    t = _read_csv(path, "labels", "give a CSV with a case_id and a label column, or a manifest")
    multilabel, columns = _label_columns(t, classes, label_column)
    rows = list(range(len(t.lines)))
    if split is not None:
        rows = _split_rows(t, split)
    splits = (
        {t.cell(i, CASE_ID): t.cell(i, SPLIT) for i in range(len(t.lines))}
        if SPLIT in t.header
        else {}
    )
    ids = [t.cell(i, CASE_ID) for i in rows]
    if multilabel:
        return LabelsTable(
            t.path, True, dict(zip(ids, _multi_labels(t, rows, columns))), columns, splits=splits
        )
    values, note = _single_labels(t, rows, columns[0], classes, source)
    return LabelsTable(t.path, False, dict(zip(ids, values)), columns, note, splits)


def _split_rows(t: _Csv, split: str) -> list[int]:
    if SPLIT not in t.header:
        raise DataError(
            f"labels file '{t.path}' has no '{SPLIT}' column to choose split '{split}' from "
            f"(columns: {', '.join(t.header)})",
            hint="leave the split out to use every row, or give a manifest with a split column",
            cli_hint="leave --split out to use every row, or give a manifest with a split column",
        )
    rows = [i for i in range(len(t.lines)) if t.cell(i, SPLIT) == split]
    if not rows:
        found = sorted({t.cell(i, SPLIT) for i in range(len(t.lines))})
        raise DataError(
            f"labels file '{t.path}' has no row of split '{split}' (splits found: {', '.join(found)})",
            hint="choose one of the splits found",
        )
    return rows
