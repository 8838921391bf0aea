"""Patient-grouped splits: no patient's cases cross splits (no leakage)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..core.errors import DataError
from .records import SPLITS, CaseRecord

__all__ = ["grouped_split"]


def grouped_split(
    records: Sequence[CaseRecord],
    group_key: str | None = "patient_id",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, list[CaseRecord]]:
    """Split cases into train/validation/test so that no group crosses splits.

    Groups are shuffled with ``seed`` and each is given to the split furthest below its
    target share of *cases* (so large groups do not skew the fractions much).

    Args:
        records: the cases.
        group_key: ``meta`` key holding the group (patient) id; None: every case its own group.
        fractions: shares of train, validation, test; must sum to 1 (a 0 leaves that split empty).
        seed: shuffle seed.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}``, records copied with
        ``split`` set, in input order within each split.

    Raises:
        DataError: bad fractions, or a record without ``group_key`` in its meta.
    """
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise DataError(f"grouped_split: fractions must be 3 non-negative shares summing to 1, got {list(fractions)}")
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if group_key is None:
            g = r.case_id
        elif group_key in r.meta and str(r.meta[group_key]) != "":
            g = str(r.meta[group_key])
        else:
            raise DataError(
                f"grouped_split: case '{r.case_id}' has no '{group_key}' in its meta (has: {sorted(r.meta)})",
                hint=f"add a '{group_key}' column to the manifest (data.manifest), or pass "
                "group_key=None to give every case its own group",
            )
        groups.setdefault(g, []).append(i)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    total = len(records)
    counts = [0, 0, 0]
    assign: dict[int, str] = {}
    for gi in order:
        idx = groups[names[gi]]
        # split with the largest deficit relative to its target, among those wanted
        deficits = [fr[s] * total - counts[s] if fr[s] > 0 else -np.inf for s in range(3)]
        s = int(np.argmax(deficits))
        counts[s] += len(idx)
        for i in idx:
            assign[i] = SPLITS[s]
    out: dict[str, list[CaseRecord]] = {s: [] for s in SPLITS}
    for i, r in enumerate(records):
        out[assign[i]].append(dataclasses.replace(r, split=assign[i], meta=dict(r.meta)))
    return out
