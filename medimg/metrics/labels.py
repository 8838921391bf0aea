"""Label names and label maps: what a prediction's classes mean, and how references match them.

A prediction folder written by ``medimg predict`` describes its classes in two files,
read and written here (:func:`read_prediction_labels`, :func:`write_prediction_labels`):

* ``labels.json``: class value -> name, ``{"0": "background", "1": "tumour"}``;
* ``label_map.json`` (when the model was trained with ``data.label_map``): reference value
  -> class value, ``{"1": 1, "2": 1, "4": 1}``. Evaluation applies it to the references
  when no label map is given, so references are scored with the classes the model was
  trained on (values the map does not list become background, as in training).

:class:`LabelCheck` compares, over all cases, the reference values with the prediction's
named classes; where they disagree evaluation stops with a :class:`LabelMismatchError`
listing both sets and the label map that would fix it, instead of scoring one class
against another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError

__all__ = [
    "LABELS_FILE",
    "LABEL_MAP_FILE",
    "LabelCheck",
    "LabelMismatchError",
    "PredictionLabels",
    "apply_label_map",
    "format_label_map",
    "load_label_names",
    "present_labels",
    "read_prediction_labels",
    "suggest_label_map",
    "write_prediction_labels",
]

#: Class value -> name, in a prediction folder.
LABELS_FILE = "labels.json"
#: Reference value -> class value the model was trained with, in a prediction folder.
LABEL_MAP_FILE = "label_map.json"


# --------------------------------------------------------------------------------------
# The prediction folder's label files
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PredictionLabels:
    """What a prediction folder says about its classes.

    Attributes:
        names: ``{class value: name}`` from ``labels.json``, or None without one.
        label_map: ``{reference value: class value}`` from ``label_map.json``, or None.
        folder: the prediction folder.
    """

    names: dict[int, str] | None
    label_map: dict[int, int] | None
    folder: Path

    @property
    def names_path(self) -> Path:
        return self.folder / LABELS_FILE

    @property
    def label_map_path(self) -> Path:
        return self.folder / LABEL_MAP_FILE


def _read_int_keyed(path: Path, example: str) -> dict[int, str] | None:
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return {int(k): v for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise DataError(f"cannot read '{path}': {exc}; expected a JSON object like {example}") from exc


def read_prediction_labels(folder: str | Path) -> PredictionLabels:
    """The class names and label map recorded in a prediction folder (each None if absent).

    Raises:
        DataError: a file is there but is not a JSON object of the expected form.
    """
    folder = Path(folder)
    names = _read_int_keyed(folder / LABELS_FILE, '{"0": "background", "1": "tumour"}')
    raw_map = _read_int_keyed(folder / LABEL_MAP_FILE, '{"1": 1, "2": 1, "4": 1}')
    label_map = None
    if raw_map is not None:
        try:
            label_map = {k: int(v) for k, v in raw_map.items()}
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"cannot read '{folder / LABEL_MAP_FILE}': {exc}; expected integer class values "
                'like {"1": 1, "2": 1, "4": 1}'
            ) from exc
    return PredictionLabels(
        names={k: str(v) for k, v in names.items()} if names is not None else None,
        label_map=label_map,
        folder=folder,
    )


def write_prediction_labels(
    folder: str | Path,
    label_names: Sequence[str] | Mapping[int, str],
    label_map: Mapping[int | str, int] | None = None,
) -> Path:
    """Write ``labels.json`` (and ``label_map.json`` when a label map is given) into ``folder``.

    Args:
        folder: the prediction folder (created if needed).
        label_names: class names by value (a list, background first, or a mapping).
        label_map: the ``data.label_map`` the model was trained with (reference value ->
            class value), or None; an existing ``label_map.json`` is removed then, so the
            folder never describes another model's training.

    Returns:
        The path of ``labels.json``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = names_dict(label_names)
    path = folder / LABELS_FILE
    path.write_text(json.dumps({str(k): v for k, v in sorted(names.items())}, indent=2) + "\n")
    map_path = folder / LABEL_MAP_FILE
    if label_map:
        plain = {str(int(k)): int(v) for k, v in sorted(label_map.items(), key=lambda kv: int(kv[0]))}
        map_path.write_text(json.dumps(plain, indent=2) + "\n")
    elif map_path.is_file():
        map_path.unlink()
    return path


def load_label_names(pred_dir: str | Path) -> dict[int, str] | None:
    """Class names from ``PRED_DIR/labels.json`` (``{"0": "background", "1": "tumour"}``)."""
    return read_prediction_labels(pred_dir).names


# --------------------------------------------------------------------------------------
# Names, values, maps
# --------------------------------------------------------------------------------------
def names_dict(label_names: Sequence[str] | Mapping[int, str] | None) -> dict[int, str]:
    """``{class value: name}`` from a list (background first) or a mapping; {} for None."""
    if label_names is None:
        return {}
    if isinstance(label_names, Mapping):
        return {int(k): str(v) for k, v in label_names.items()}
    return {i: str(n) for i, n in enumerate(label_names)}


def label_name(names: Mapping[int, str], c: int) -> str:
    """The name of class ``c``, or ``label_<c>`` without one."""
    return names.get(c, f"label_{c}")


def present_labels(arr: np.ndarray) -> list[int]:
    """Label values present in a non-negative integer array (a bincount, not a sort)."""
    if arr.size == 0:
        return []
    flat = np.ascontiguousarray(arr.ravel(order="K"))
    if flat.dtype != np.uint8:
        flat = flat.astype(np.int64, copy=False)
    return np.flatnonzero(torch.bincount(torch.from_numpy(flat)).numpy()).tolist()


def apply_label_map(arr: np.ndarray, label_map: Mapping[int, int]) -> np.ndarray:
    """Remap values through ``label_map``; values not in the map become 0 (a new array).

    Same rule as ``data.label_map`` and the ``map_labels`` transform, so a reference is
    scored with exactly the classes the model was trained on.
    """
    hi = max(int(arr.max(initial=0)), max((int(k) for k in label_map), default=0))
    lut = np.zeros(hi + 1, dtype=np.int64)
    for src, dst in label_map.items():
        if int(dst) < 0:
            raise ValueError(f"label_map maps {src} to negative label {dst}")
        lut[int(src)] = int(dst)
    return lut[arr]


def format_label_map(label_map: Mapping[int, int | str]) -> str:
    """``{1: 1, 2: 1}`` -> ``"1:1,2:1"`` (the ``--label-map`` syntax)."""
    return ",".join(f"{k}:{v}" for k, v in sorted(label_map.items(), key=lambda kv: int(kv[0])))


def _fmt_values(values: Iterable[int]) -> str:
    return "{" + ", ".join(str(v) for v in sorted(values)) + "}"


def _fmt_classes(names: Mapping[int, str], classes: Iterable[int]) -> str:
    return ", ".join(f"{c} ({label_name(names, c)})" for c in sorted(classes))


def suggest_label_map(ref_values: Iterable[int], classes: Iterable[int]) -> dict[int, int | str] | None:
    """A label map taking the reference values onto the prediction classes, when one is clear.

    One foreground class: every reference value > 0 maps to it (BraTS labels {1, 2, 4}
    onto "tumour": ``{1: 1, 2: 1, 4: 1}``). As many foreground values as classes: in
    increasing order. Otherwise a template with ``"?"`` for each value; None when there
    is no foreground value.
    """
    ref_fg = sorted(int(v) for v in ref_values if int(v) > 0)
    cls_fg = sorted(int(c) for c in classes if int(c) > 0)
    if not ref_fg or not cls_fg:
        return None
    if len(cls_fg) == 1:
        return {v: cls_fg[0] for v in ref_fg}
    if len(ref_fg) == len(cls_fg):
        return dict(zip(ref_fg, cls_fg))
    return {v: "?" for v in ref_fg}


# --------------------------------------------------------------------------------------
# The check: do the reference values and the prediction's classes agree?
# --------------------------------------------------------------------------------------
class LabelMismatchError(DataError):
    """The references hold values the prediction's classes do not cover, or the reverse.

    ``hint`` names ``label_map=...``; ``cli_hint`` the same fix as ``--label-map ...``.

    Attributes:
        suggestion: the label map that would fix it (values may be ``"?"``), or None.
    """

    def __init__(
        self, message: str, *, hint: str, cli_hint: str, suggestion: dict[int, int | str] | None
    ) -> None:
        super().__init__(message, hint=hint, cli_hint=cli_hint)
        self.suggestion = suggestion


@dataclass
class LabelCheck:
    """Collects, case by case, the values of predictions and references and compares them
    with the prediction's named classes.

    Attributes:
        names: the prediction's ``{class value: name}``; empty when unknown (no
            ``labels.json`` and no names given): nothing is checked then, and
            :meth:`warnings` says which reference values no prediction holds.
        names_from: where the names come from, for messages.
        label_map: the map applied to the references (None if none), and ``map_from``.
        allow_absent_classes: accept named classes that occur in no reference.
    """

    names: dict[int, str]
    names_from: str
    label_map: dict[int, int] | None = None
    map_from: str | None = None
    allow_absent_classes: bool = False
    ref_values: set[int] = field(default_factory=set)
    pred_values: set[int] = field(default_factory=set)
    n_cases: int = 0
    bad_ref_case: str | None = None
    bad_pred_case: str | None = None

    @property
    def classes(self) -> set[int]:
        """The prediction's class values, background included."""
        return set(self.names) | {0}

    @property
    def failed(self) -> bool:
        """Whether a case already showed a value outside the prediction's classes."""
        return self.bad_ref_case is not None or self.bad_pred_case is not None

    def add(self, case_id: str, pred_values: Iterable[int], ref_values: Iterable[int]) -> None:
        """Record one case's values (references after the label map)."""
        pv, rv = set(pred_values), set(ref_values)
        self.pred_values |= pv
        self.ref_values |= rv
        self.n_cases += 1
        if self.names:
            if self.bad_ref_case is None and rv - self.classes:
                self.bad_ref_case = case_id
            if self.bad_pred_case is None and pv - self.classes:
                self.bad_pred_case = case_id

    def error(self) -> LabelMismatchError | None:
        """The mismatch over all cases added, or None when references and classes agree."""
        if not self.names or not self.n_cases:
            return None
        if self.bad_ref_case is not None:
            return self._ref_error()
        if self.bad_pred_case is not None:
            return self._pred_error()
        absent = self.classes - self.ref_values - {0}
        if absent and not self.allow_absent_classes:
            return self._absent_error(absent)
        return None

    def warnings(self) -> list[str]:
        """Without class names: reference values that no prediction holds, and a likely fix."""
        if self.names or not self.n_cases or self.label_map:
            return []
        never = sorted(self.ref_values - self.pred_values - {0})
        pred_fg = self.pred_values - {0}
        if not never or not pred_fg:
            return []
        suggestion = suggest_label_map(self.ref_values, pred_fg)
        fix = f"; if the prediction's classes stand for them, map them (e.g. label map {format_label_map(suggestion)})" \
            if suggestion and "?" not in suggestion.values() else ""
        return [
            f"the predictions' classes are unknown (no {LABELS_FILE}, no label names): scored by value; "
            f"reference values {', '.join(map(str, never))} occur in no prediction "
            f"(reference values {_fmt_values(self.ref_values)}, prediction values {_fmt_values(self.pred_values)}){fix}"
        ]

    def _sets(self) -> str:
        mapped = "" if not self.label_map else f" after label map {format_label_map(self.label_map)} ({self.map_from})"
        return (
            f"reference values{mapped} {_fmt_values(self.ref_values)} in {self.n_cases} case(s); "
            f"prediction classes {{{_fmt_classes(self.names, self.classes)}}} ({self.names_from})"
        )

    def _ref_error(self) -> LabelMismatchError:
        extra = sorted(self.ref_values - self.classes)
        suggestion = suggest_label_map(self.ref_values, self.classes)
        message = (
            f"the references hold values {', '.join(map(str, extra))} that are no prediction class "
            f"(first in case '{self.bad_ref_case}'): {self._sets()}"
        )
        if suggestion is None:
            return self._mismatch(message, None, "map the reference values onto the prediction classes")
        todo = " (replace each ? by a prediction class; values left out count as background)" \
            if "?" in suggestion.values() else ""
        return self._mismatch(message, suggestion, f"to score them as {_targets(self.names, suggestion)}{todo}")

    def _pred_error(self) -> LabelMismatchError:
        extra = sorted(self.pred_values - self.classes)
        message = (
            f"the predictions hold values {', '.join(map(str, extra))} that are not among their named "
            f"classes (first in case '{self.bad_pred_case}'): prediction values "
            f"{_fmt_values(self.pred_values)}; {self._sets()}"
        )
        hint = f"check that {self.names_from} belongs to these predictions, or name every class"
        return LabelMismatchError(message, hint=hint + " with label_names",
                                  cli_hint=hint + " with --label-names", suggestion=None)

    def _absent_error(self, absent: set[int]) -> LabelMismatchError:
        message = (
            f"prediction classes {_fmt_classes(self.names, absent)} occur in no reference: {self._sets()}"
        )
        hint = "check that the references belong to these predictions, or map the reference values onto the classes"
        return LabelMismatchError(
            message,
            hint=f"{hint} with label_map; to score classes absent from every reference anyway, "
            "pass allow_absent_classes=True",
            cli_hint=f"{hint} with --label-map; to score classes absent from every reference anyway, "
            "pass --allow-absent-classes",
            suggestion=None,
        )

    def _mismatch(self, message: str, suggestion: dict[int, int | str] | None, why: str) -> LabelMismatchError:
        if suggestion is None:
            return LabelMismatchError(message, hint=f"{why} with label_map",
                                      cli_hint=f"{why} with --label-map REF:CLASS,...", suggestion=None)
        text = format_label_map(suggestion)
        as_dict = "{" + ", ".join(f"{k}: {v}" for k, v in suggestion.items()) + "}"
        return LabelMismatchError(message, hint=f"pass label_map={as_dict} {why}",
                                  cli_hint=f"pass --label-map {text} {why}", suggestion=suggestion)


def _targets(names: Mapping[int, str], suggestion: Mapping[int, int | str]) -> str:
    """'tumour' or 'necrosis, oedema' : the classes a suggested map scores into."""
    targets = sorted({v for v in suggestion.values() if v != "?"})  # type: ignore[type-var]
    if not targets:
        return "prediction classes"
    return ", ".join(f"'{label_name(names, int(t))}'" for t in targets)
