"""Case records and where they come from: a manifest CSV or a folder layout."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..core.spec import DataSection
from ..io.layout import list_folder

__all__ = ["CaseRecord", "load_cases", "SPLITS"]

#: Canonical split names, the keys of :func:`load_cases`'s result.
SPLITS = ("train", "validation", "test")


@dataclass
class CaseRecord:
    """One case on disk.

    Attributes:
        case_id: unique identifier (file names, reports).
        image_paths: one file per input channel, in the order of ``data.images``.
        label_path: label map file, or None (e.g. unlabelled test cases).
        split: canonical split name: ``"train"``, ``"validation"`` or ``"test"``.
        meta: extra manifest columns (``patient_id``, subgroups...), as strings.
    """

    case_id: str
    image_paths: list[Path]
    label_path: Path | None = None
    split: str = "train"
    meta: dict[str, Any] = field(default_factory=dict)


def _resolve(p: Path | str, base: Path | None) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _split_lookup(splits: Mapping[str, str]) -> dict[str, str]:
    """Folder/column value -> canonical split name."""
    return {str(v): str(k) for k, v in splits.items()}


def load_cases(data: DataSection, base_dir: Path | None = None) -> dict[str, list[CaseRecord]]:
    """Find every case of a data section, grouped by split.

    Two sources (``data`` is the experiment's :class:`~medimg.core.spec.DataSection`):

    - ``data.manifest``: a CSV with columns ``case_id``, one per entry of ``data.images``,
      ``data.label`` (if set) and ``split``; values of ``split`` are those of
      ``data.splits`` (``{"train": "train", "validation": "val", ...}``). Extra columns go
      to ``CaseRecord.meta``. File paths are relative to the manifest's folder. An empty
      label cell means "no label" (allowed in the test split only).
    - ``data.root``: folders ``root/<split>/<case_id>/<file>`` with the file names of
      ``data.images`` and ``data.label``; split folders are named by ``data.splits``'s
      values. A test case may lack its label file.

    Args:
        data: the data section.
        base_dir: folder that relative ``manifest``/``root`` paths are resolved against
            (the config file's folder); the current directory if None.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}`` (lists may be empty),
        cases in manifest order / sorted by case id.

    Raises:
        DataError: missing file or column, duplicate case id, unknown split value, a split
            folder without cases, or no cases at all; the message names the file, row or case.
    """
    if getattr(data, "manifest", None) is not None:
        out = _from_manifest(_resolve(data.manifest, base_dir), data)
        where = f"manifest {_resolve(data.manifest, base_dir)}"
    elif getattr(data, "root", None) is not None:
        out = _from_folders(_resolve(data.root, base_dir), data)
        where = f"folder {_resolve(data.root, base_dir)}"
    else:
        raise DataError("the data section gives neither 'manifest' nor 'root'",
                        hint="set data.manifest (a CSV) or data.root (a folder of splits)")
    if not any(out.values()):
        raise DataError(f"{where} holds no cases", hint="check the path and the split names (data.splits)")
    return out


def _from_manifest(path: Path, data: DataSection) -> dict[str, list[CaseRecord]]:
    if not path.is_file():
        raise DataError(f"manifest file not found: {path}", hint="check data.manifest (relative to the config's folder)")
    base = path.parent
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    needed = ["case_id", *data.images, *([data.label] if data.label else []), "split"]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"manifest {path} lacks column(s) {missing}; columns present: {columns}",
            hint="the manifest needs case_id, one column per data.images entry, the data.label column and split",
        )
    lookup = _split_lookup(data.splits)
    reserved = set(needed)
    out: dict[str, list[CaseRecord]] = {s: [] for s in SPLITS}
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"manifest {path}, line {n}"
        cid = row["case_id"]
        if not cid:
            raise DataError(f"{where}: empty case_id")
        if cid in seen:
            raise DataError(f"{where}: duplicate case_id '{cid}' (first on line {seen[cid]})",
                            hint="case ids must be unique across all splits")
        seen[cid] = n
        split_value = row["split"]
        if split_value not in lookup:
            raise DataError(
                f"{where}: case '{cid}' has unknown split '{split_value}'; expected one of {sorted(lookup)}",
                hint="fix the split column, or map the name with data.splits (e.g. validation: val)",
            )
        split = lookup[split_value]
        images = []
        for col in data.images:
            if not row[col]:
                raise DataError(f"{where}: case '{cid}' has an empty '{col}' cell")
            p = _resolve(row[col], base)
            if not p.exists():
                raise DataError(f"{where}: case '{cid}' column '{col}': file not found: {p}",
                                hint="paths in a manifest are relative to the manifest's folder")
            images.append(p)
        label = None
        if data.label:
            if row[data.label]:
                label = _resolve(row[data.label], base)
                if not label.exists():
                    raise DataError(f"{where}: case '{cid}' column '{data.label}': file not found: {label}",
                                    hint="paths in a manifest are relative to the manifest's folder")
            elif split != "test":
                raise DataError(f"{where}: case '{cid}' in split '{split}' has no label ('{data.label}' is empty)",
                                hint="only test cases may be unlabelled")
        meta = {k: v for k, v in row.items() if k not in reserved}
        out[split].append(CaseRecord(cid, images, label, split, meta))
    return out


def _from_folders(root: Path, data: DataSection) -> dict[str, list[CaseRecord]]:
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}", hint="check data.root (relative to the config's folder)")
    out: dict[str, list[CaseRecord]] = {s: [] for s in SPLITS}
    found_any = False
    seen: dict[str, str] = {}
    for split, folder_name in data.splits.items():
        folder = root / folder_name
        if not folder.is_dir():
            continue
        found_any = True
        cases = list_folder(folder)[1]
        if not cases:
            raise DataError(f"split folder {folder} holds no case folders",
                            hint=f"expected {folder}/<case_id>/{data.images[0]}")
        for case in cases:
            cid = case.name
            if cid in seen:
                raise DataError(f"duplicate case_id '{cid}' in {folder} and {root / seen[cid]}",
                                hint="case ids must be unique across splits")
            seen[cid] = folder_name
            images = []
            for name in data.images:
                p = case / name
                if not p.exists():
                    present = [x.name for x in list_folder(case)[0]]
                    raise DataError(f"case '{cid}' ({split}): image file not found: {p}; files present: {present}",
                                    hint="data.images lists the file names inside each case folder")
                images.append(p)
            label = None
            if data.label:
                p = case / data.label
                if p.exists():
                    label = p
                elif split != "test":
                    present = [x.name for x in list_folder(case)[0]]
                    raise DataError(f"case '{cid}' ({split}): label file not found: {p}; files present: {present}",
                                    hint="only test cases may be unlabelled")
            out[split].append(CaseRecord(cid, images, label, str(split), {}))
    if not found_any:
        present = [p.name for p in list_folder(root)[1]]
        raise DataError(
            f"data folder {root} has none of the split folders {list(data.splits.values())}; folders present: {present}",
            hint="lay cases out as root/<split>/<case_id>/<files>, or rename splits with data.splits",
        )
    return out
