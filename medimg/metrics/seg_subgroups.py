"""Subgroups of a segmentation evaluation: every per-case metric per group of patients.

``medimg evaluate PRED REF --metadata META.csv --subgroup sex,site`` splits the scored
cases by each metadata column and reports, per group, every metric's mean over the
group's cases with its percentile-bootstrap interval (cases resampled within the group,
:func:`~medimg.metrics.bootstrap.bootstrap_means`, as the overall summary does) and the
number of cases ``n``; then the largest gap between groups with its interval. The groups,
gaps, the small-group rule (fewer than 10 cases: a value, no interval, not in the gaps) and
the outputs (``subgroups.csv``, ``summary.json``'s ``subgroups``) are the classification
analysis's (:func:`medimg.metrics.classification.subgroups.analyse_subgroups`); only how a
group is scored differs.

Metric names: ``dice``, ``hd95``... with one class; ``dice_<class>`` per class (and the
plain name for the per-case mean over classes) with several, as ``evaluation.select_by``
names them. Non-finite values (an infinite distance to an empty mask) are left out of a
mean as in the summary; a group where no value is finite has none, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bootstrap import bootstrap_means
from .classification.subgroups import (
    MIN_CASES,
    Group,
    SubgroupReport,
    analyse_subgroups,
    metadata_groups,
)

__all__ = ["per_case_table", "segmentation_subgroups"]


def per_case_table(
    rows: Sequence[Mapping[str, Any]], cases: Sequence[str], labels: Sequence[str], metrics: Sequence[str]
) -> dict[str, np.ndarray]:
    """``{metric name: (len(cases),) values}`` from ``metrics.csv`` rows (names: module docstring)."""
    at = {c: i for i, c in enumerate(cases)}
    table: dict[str, np.ndarray] = {}
    for lab in labels:
        for m in metrics:
            table[m if len(labels) == 1 else f"{m}_{lab}"] = np.full(len(cases), np.nan)
    for r in rows:
        key = r["metric"] if len(labels) == 1 else f"{r['metric']}_{r['label']}"
        if key in table and r["case_id"] in at:
            table[key][at[r["case_id"]]] = float(r["value"])
    if len(labels) > 1:
        for m in metrics:
            table[m] = np.mean([table[f"{m}_{lab}"] for lab in labels], axis=0)  # non-finite if any class is
    return table


def _score_group(table: Mapping[str, np.ndarray], idx: np.ndarray, n_boot: int, seed: int, min_cases: int) -> Group:
    values, why, resamples = {}, {}, {}
    for k, v in table.items():
        finite = v[idx][np.isfinite(v[idx])]
        values[k] = float(finite.mean()) if finite.size else math.nan
        if not finite.size:
            why[k] = "no finite value in this group (every case's value is undefined or infinite)"
        if idx.size >= min_cases and n_boot:
            resamples[k] = bootstrap_means(finite, n_boot, seed) if finite.size else np.full(n_boot, np.nan)
    note = f"fewer than {min_cases} cases: no interval" if idx.size < min_cases else ""
    return Group(int(idx.size), values, resamples or None, why, note)


def segmentation_subgroups(
    rows: Sequence[Mapping[str, Any]],
    cases: Sequence[str],
    labels: Sequence[str],
    metrics: Sequence[str],
    metadata: str | Path,
    columns: Sequence[str],
    *,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    min_cases: int = MIN_CASES,
) -> SubgroupReport:
    """The subgroup analysis of a segmentation evaluation's scored cases.

    Args:
        rows, cases, labels, metrics: the evaluation's rows (``case_id, label, metric,
            value``), its scored case ids, class names and metric names.
        metadata: a CSV with ``case_id`` and one column per attribute.
        columns: the attributes to group by.
        bootstrap, ci, seed, min_cases: as in the classification analysis.

    Returns:
        A :class:`SubgroupReport` (task ``"segmentation"``); a missing file or column, cases
        absent from the metadata and one-valued columns are in its ``problems``.
    """
    groups, kept, problems = metadata_groups(metadata, columns, list(cases))
    table = {k: v[kept] for k, v in per_case_table(rows, cases, labels, metrics).items()}

    def score(idx: np.ndarray, group_seed: int) -> Group:
        return _score_group(table, idx, bootstrap, group_seed, min_cases)

    report = analyse_subgroups(groups, len(kept), score, list(table), "segmentation", bootstrap=bootstrap, ci=ci,
                               seed=seed, min_cases=min_cases)
    report.problems[:0] = problems
    return report
