"""Cross-validation folds: assign cases to folds, write and read a split file, and turn
one fold into the validation split of a run.

A split file is a CSV with columns ``case_id`` and ``fold`` (0-based; extra columns such
as the group or the stratum are kept for the reader and ignored). It lists the cases of the
training and validation splits; the test split, if any, is not in it and stays test. With
``data.split_file`` and ``data.fold: k`` a run validates on the cases of fold ``k`` and
trains on those of every other fold.

Fold assignment (:func:`assign_folds`) is a documented greedy, in the spirit of
scikit-learn's ``StratifiedGroupKFold`` (scikit-learn is not a medimg dependency):

1. cases are gathered into groups (``group_by``, e.g. the patient): a group is never split,
   so no patient lands in two folds;
2. groups are shuffled with ``seed``, then ordered largest first (large groups are the
   hardest to place);
3. each group goes to the fold where, after adding it, its strata are least represented
   relative to their totals (the sum over the group's strata of the fold's share of that
   stratum), ties broken by the fold with fewer cases, then by a seeded random order.

Without grouping (every case its own group) step 3 puts each case in the fold holding the
fewest cases of its stratum, so every fold holds ``floor(n_c / k)`` or ``ceil(n_c / k)``
cases of each stratum ``c``: class proportions within one case per fold. With groups the
proportions are as close as the group sizes allow.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import ConfigError, DataError
from .records import CaseRecord

if TYPE_CHECKING:
    from ..core.spec import DataSection
    from .classification import ClassificationData

__all__ = [
    "SPLIT_FILE_COLUMNS", "assign_folds", "apply_fold", "apply_fold_classification", "fold_case_ids",
    "fold_split_file", "read_split_file", "write_split_file",
]

#: The columns every split file has, in order.
SPLIT_FILE_COLUMNS = ("case_id", "fold")


def assign_folds(
    case_ids: Sequence[str],
    folds: int,
    groups: Sequence[str] | None = None,
    strata: Sequence[str] | None = None,
    seed: int = 0,
) -> list[int]:
    """The fold (0-based) of each case, by the greedy of the module docstring.

    Args:
        case_ids: the cases (unique).
        folds: number of folds, at least 2 and at most the number of groups.
        groups: per case, its group (patient); None: every case its own group.
        strata: per case, its stratum (class label); None: no stratification.
        seed: shuffle seed (the same inputs and seed give the same folds).

    Raises:
        DataError: fewer than 2 folds, more folds than groups, or lengths that differ.
    """
    n = len(case_ids)
    groups = list(groups) if groups is not None else list(case_ids)
    strata = list(strata) if strata is not None else [""] * n
    if len(groups) != n or len(strata) != n:
        raise DataError(f"assign_folds: {n} cases but {len(groups)} groups and {len(strata)} strata")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(str(g), []).append(i)
    if folds < 2 or folds > len(members):
        raise DataError(
            f"cannot make {folds} folds of {len(members)} "
            + ("groups" if len(members) != n else "cases") + " (at least 2 folds, at most one per group)",
            hint=f"use --folds between 2 and {max(2, len(members))}",
        )
    names = sorted(set(strata))
    column = {s: j for j, s in enumerate(names)}
    totals = np.zeros(len(names))
    for s in strata:
        totals[column[s]] += 1
    rng = np.random.default_rng(seed)
    keys = sorted(members)
    order = [keys[j] for j in rng.permutation(len(keys))]
    order.sort(key=lambda g: -len(members[g]))  # stable: the shuffle breaks size ties
    counts = np.zeros((folds, len(names)))
    out = [0] * n
    for g in order:
        need = np.zeros(len(names))
        for i in members[g]:
            need[column[strata[i]]] += 1
        share = ((counts + need) / totals * (need > 0)).sum(axis=1)
        tie = rng.permutation(folds)
        f = min(range(folds), key=lambda k: (round(share[k], 9), counts[k].sum(), tie[k]))
        counts[f] += need
        for i in members[g]:
            out[i] = f
    return out


def write_split_file(path: str | Path, case_ids: Sequence[str], folds: Sequence[int],
                     extra: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write ``case_id, fold`` (then the ``extra`` columns, e.g. the group and stratum)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {k: v for k, v in (extra or {}).items() if k not in SPLIT_FILE_COLUMNS}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*SPLIT_FILE_COLUMNS, *extra])
        for i, (cid, f) in enumerate(zip(case_ids, folds)):
            w.writerow([cid, int(f), *(str(v[i]) for v in extra.values())])
    return path


def read_split_file(path: str | Path, key: str = "data.split_file") -> dict[str, int]:
    """``case_id -> fold`` of a split file.

    Raises:
        DataError: the file is missing, lacks ``case_id``/``fold`` (the columns present are
            listed), has a fold that is not a non-negative integer, or a duplicate case.
    """
    path = Path(path)
    fix = "write one with `medimg split MANIFEST_OR_ROOT --folds 5 -o splits.csv`"
    if not path.is_file():
        raise DataError(f"{key}: split file not found: {path}", hint=f"check {key}, or {fix}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    missing = [c for c in SPLIT_FILE_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{key}: split file {path} has no column(s) {missing}; columns: {columns}", hint=fix)
    out: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        cid, fold = row["case_id"], row["fold"]
        if not fold.isdigit():
            raise DataError(f"{key}: split file {path}, line {line}: fold '{fold}' of case '{cid}' is not "
                            "a fold number (0, 1, ...)", hint=f"fix the line, or {fix}")
        if cid in out:
            raise DataError(f"{key}: split file {path}, line {line}: case '{cid}' appears twice",
                            hint=f"give each case one fold, or {fix}")
        out[cid] = int(fold)
    if not out:
        raise DataError(f"{key}: split file {path} lists no cases", hint=fix)
    return out


def fold_case_ids(split_file: str | Path, fold: int, pool: Iterable[str], test: Iterable[str] = (),
                  source: str = "the data") -> tuple[set[str], int]:
    """The case ids of validation fold ``fold`` and the number of folds, checked against
    the cases of the data: ``pool`` (training and validation) and ``test``.

    Raises:
        DataError: ``fold`` out of range, a case of the split file that the data does not
            have (or that is a test case), or a case of the pool that no fold holds.
    """
    folds = read_split_file(split_file)
    n = max(folds.values()) + 1
    if not 0 <= int(fold) < n:
        raise DataError(
            f"data.fold is {fold} but split file {split_file} has folds 0..{n - 1}",
            hint=f"set data.fold between 0 and {n - 1}", cli_hint=f"use --fold between 0 and {n - 1}",
        )
    pool_set, test_set = set(pool), set(test)
    unknown = [c for c in folds if c not in pool_set]
    if unknown:
        in_test = [c for c in unknown if c in test_set]
        what = f"test case(s) {in_test[:5]}" if in_test else f"case(s) {unknown[:5]} that {source} does not have"
        raise DataError(
            f"split file {split_file} names {len(unknown)} {what}"
            + (f" ({len(unknown) - 5} more)" if len(unknown) > 5 else ""),
            hint="write the split file again from this data with `medimg split`, or point data.split_file to its own split file",
        )
    absent = [c for c in pool if c not in folds]
    if absent:
        raise DataError(
            f"split file {split_file} gives no fold to {len(absent)} training/validation case(s) of {source}, "
            f"e.g. {absent[:5]}",
            hint="write the split file again from this data with `medimg split`",
        )
    return {c for c, f in folds.items() if f == int(fold)}, n


def fold_split_file(data: "DataSection", base_dir: Path) -> Path | None:
    """The run's ``data.split_file`` (relative to ``base_dir``, the config's folder), or None
    without one; the setup of a fold for segmentation and classification training alike.

    Raises:
        ConfigError: a split file without ``data.fold`` (which fold validates?).
    """
    if data.split_file is None:
        return None
    if data.fold is None:
        raise ConfigError(
            f"data.split_file is set ({data.split_file}) but not data.fold: which fold validates?",
            hint="set data.fold, or run every fold with medimg.engine.cross_validate",
            cli_hint="give --fold K, or run every fold with `medimg cv CONFIG`",
        )
    return data.split_file if Path(data.split_file).is_absolute() else Path(base_dir) / data.split_file


def apply_fold(splits: Mapping[str, list[CaseRecord]], split_file: str | Path, fold: int,
               source: str = "the data") -> dict[str, list[CaseRecord]]:
    """The cases of a segmentation data set with fold ``fold`` as validation and the other
    folds as training (the cases of both splits pooled first); test stays test.

    Raises:
        DataError: see :func:`fold_case_ids`.
    """
    pool = [*splits.get("train", []), *splits.get("validation", [])]
    test = list(splits.get("test", []))
    val_ids, _ = fold_case_ids(split_file, fold, [r.case_id for r in pool], [r.case_id for r in test], source)
    out: dict[str, list[CaseRecord]] = {"train": [], "validation": [], "test": test}
    for r in pool:
        split = "validation" if r.case_id in val_ids else "train"
        out[split].append(dataclasses.replace(r, split=split, meta=dict(r.meta)))
    return out


def apply_fold_classification(data: "ClassificationData", split_file: str | Path, fold: int) -> "ClassificationData":
    """:func:`apply_fold` for classification data (case ids as training names them: the
    manifest's ``case_id``, ``train_<i>`` / ``val_<i>`` for an npz, ``<class>/<file>`` for a
    folder per class).

    Raises:
        DataError: see :func:`fold_case_ids`.
    """
    import torch

    from .classification import ClassificationSplit

    parts = [data.splits[s] for s in ("train", "validation") if s in data.splits and len(data.splits[s])]
    ids = [c for p in parts for c in p.case_ids]
    test = data.splits.get("test")
    val_ids, _ = fold_case_ids(split_file, fold, ids, test.case_ids if test is not None else (), data.source)
    images = torch.cat([p.images for p in parts])
    targets = torch.cat([p.targets for p in parts])
    patients = [pid for p in parts for pid in (p.patient_ids or p.case_ids)]
    splits = {}
    for name, take in (("train", False), ("validation", True)):
        idx = [i for i, c in enumerate(ids) if (c in val_ids) == take]
        index = torch.as_tensor(idx, dtype=torch.long)
        splits[name] = ClassificationSplit(name, [ids[i] for i in idx], images[index], targets[index],
                                           [patients[i] for i in idx])
    if test is not None:
        splits["test"] = test
    return dataclasses.replace(data, splits=splits)
