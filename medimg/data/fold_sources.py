"""The cases ``medimg split`` assigns to folds, read from any data source medimg trains on:

- a manifest CSV (segmentation or classification): one row per case, the id in the
  ``case_id`` column (or ``id_column``; a column other than ``case_id`` holds a path whose
  file name is the id, as classification training names cases without ``case_id``);
  every column can group or stratify; rows whose ``split`` is the test split are left out;
- a segmentation folder layout ``root/<split>/<case_id>/<files>``: columns ``case_id``
  and ``split``;
- a classification folder per class ``root/<split>/<class>/<file>``: ids
  ``<class>/<file>`` and a ``label`` column (the class);
- a MedMNIST-style ``.npz``: ids ``train_<i>`` and ``val_<i>`` and a ``label`` column (the
  class index; for multi-label rows the 0/1 values joined by ``-``).

A folder is a class layout when the files of its first two second-level folders have
different names (each class folder holds different images); a case layout when they share
names (every case folder holds ``image.nii.gz``...). ``layout`` overrides the guess.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..core.errors import DataError
from ..io.layout import list_folder

__all__ = ["FoldTable", "fold_table"]

Layout = Literal["auto", "cases", "classes"]


@dataclass
class FoldTable:
    """The cases to split: ids and, per column, one value per case (strings)."""

    source: Path
    case_ids: list[str]
    columns: dict[str, list[str]] = field(default_factory=dict)

    def column(self, name: str, option: str) -> list[str]:
        """The values of ``name``; a missing column or an empty cell is a one-line error."""
        if name not in self.columns:
            raise DataError(
                f"{option} {name}: {self.source} has no column '{name}'; columns: {', '.join(self.columns)}",
                hint=f"give {option} one of the columns listed"
                + (" (a folder or npz has no patient column: write a manifest CSV to group by patient)"
                   if option == "--group-by" and self.source.suffix.lower() != ".csv" else ""),
            )
        values = self.columns[name]
        empty = [c for c, v in zip(self.case_ids, values) if v == ""]
        if empty:
            raise DataError(f"{option} {name}: {self.source}: case(s) {empty[:5]} have an empty '{name}'",
                            hint=f"fill the '{name}' column of every case")
        return values


def fold_table(source: str | Path, *, id_column: str = "case_id", test_split: str = "test",
               layout: Layout = "auto") -> FoldTable:
    """The training and validation cases of ``source`` (module docstring); test cases are
    left out.

    Raises:
        DataError: the source is missing or of an unknown kind, a manifest without the id
            column (the columns are listed), a duplicate case id, or no cases at all.
    """
    path = Path(source)
    if not path.exists():
        raise DataError(f"not found: {path}", hint="give a manifest CSV, a data folder or an .npz file")
    if path.is_dir():
        table = _from_folder(path, test_split, layout)
    elif path.suffix.lower() == ".npz":
        table = _from_npz(path)
    elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
        table = _from_manifest(path, id_column, test_split)
    else:
        raise DataError(f"{path} is neither a manifest (.csv), an .npz file nor a folder",
                        hint="give a manifest CSV, a data folder or an .npz file")
    seen: set[str] = set()
    for cid in table.case_ids:
        if cid in seen:
            raise DataError(f"{path}: case id '{cid}' appears twice", hint="case ids must be unique")
        seen.add(cid)
    if not table.case_ids:
        raise DataError(f"{path} holds no training or validation cases",
                        hint=f"check the path (test cases, split '{test_split}', are left out)")
    return table


def _from_manifest(path: Path, id_column: str, test_split: str) -> FoldTable:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        names = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    if id_column not in names:
        raise DataError(
            f"{path} has no column '{id_column}' to name the cases; columns: {', '.join(names)}",
            hint="add a case_id column, or give --id-column the column of the image paths",
        )
    rows = [r for r in rows if r.get("split", "") != test_split]
    ids = [r[id_column] if id_column == "case_id" else Path(r[id_column]).name for r in rows]
    return FoldTable(path, ids, {c: [r.get(c, "") for r in rows] for c in names})


def _is_class_layout(splits: list[Path]) -> bool:
    """Whether the first two second-level folders hold files of different names."""
    second = [d for s in splits for d in list_folder(s)[1]][:2]
    if len(second) < 2:
        return False
    a, b = ({p.name for p in (list_folder(d)[0] + list_folder(d)[1])} for d in second)
    return not (a & b)


def _from_folder(root: Path, test_split: str, layout: Layout) -> FoldTable:
    splits = [d for d in list_folder(root)[1] if d.name != test_split]
    if not splits:
        raise DataError(f"folder {root} has no split folders besides '{test_split}'",
                        hint="lay cases out as root/<split>/<case_id>/<files> or root/<split>/<class>/<file>")
    classes = layout == "classes" or (layout == "auto" and _is_class_layout(splits))
    ids: list[str] = []
    columns: dict[str, list[str]] = {"case_id": ids, "split": [], **({"label": []} if classes else {})}
    for split in splits:
        for sub in list_folder(split)[1]:
            if classes:
                files, series = list_folder(sub)
                for f in [*files, *series]:
                    ids.append(f"{sub.name}/{f.name}")
                    columns["split"].append(split.name)
                    columns["label"].append(sub.name)
            else:
                ids.append(sub.name)
                columns["split"].append(split.name)
    return FoldTable(root, ids, columns)


def _from_npz(path: Path) -> FoldTable:
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}", hint="give a .npz file written by numpy.savez") from None
    ids: list[str] = []
    labels: list[str] = []
    splits: list[str] = []
    for prefix in ("train", "val"):
        if f"{prefix}_labels" not in npz.files:
            continue
        y = np.asarray(npz[f"{prefix}_labels"])
        y = y.reshape(len(y), -1)
        for i, row in enumerate(y):
            ids.append(f"{prefix}_{i}")
            labels.append(str(int(row[0])) if row.size == 1 else "-".join(str(int(v)) for v in row))
            splits.append(prefix)
    if not ids:
        raise DataError(f"{path} has no train_labels or val_labels; found: {', '.join(sorted(npz.files))}",
                        hint="save the arrays under the MedMNIST names (train_images, train_labels, val_...)")
    return FoldTable(path, ids, {"case_id": ids, "label": labels, "split": splits})
