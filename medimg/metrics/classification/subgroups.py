"""Subgroup (fairness) analysis: every metric per group of patients, and the gaps between.

For each attribute (a metadata column such as ``sex``, ``site`` or ``age_bin``) the cases
are split by its value, and each group is scored like the whole set: every metric's
value, the number of cases ``n`` and a class-stratified percentile bootstrap interval
(:mod:`.bootstrap`), with each group resampled within itself.

The **gap** of a metric is the largest difference between two groups: the highest
minus the lowest value, over the groups with an interval. Its interval is the percentile
interval of the difference between those two groups over the same resamples (resample
``b`` of one group minus resample ``b`` of the other; the groups are disjoint, so
resampling each within itself is resampling the whole set stratified by group). The
difference is signed in the resamples, so an interval that reaches below 0 means the
data do not show which of the two groups is better. For binary tasks
the fairness criteria of Hardt et al. (2016) are reported too: **equal opportunity**, the
gap of the true-positive rate (sensitivity); the gap of the false-positive rate
(``fpr`` = 1 - specificity); and **equalised odds**, the larger of the two.

A group with fewer than :data:`MIN_CASES` (10) cases gets its values but no interval, and
takes no part in the gaps; a value that does not exist in a group (the AUC of a group
whose labels hold one class) is NaN. Either way the group is listed with the reason, never
left out. An attribute with one value only has nothing to compare and is reported as a
problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bootstrap import _quantiles, strata, stratified_resamples
from .counts import check_metric_names, metric_table, one_vs_rest_counts, undefined_reason
from .tasks import Prepared, decide, prepare

__all__ = ["MIN_CASES", "SUBGROUPS_CSV_COLUMNS", "Group", "SubgroupReport", "analyse_subgroups", "subgroup_analysis"]

#: Fewest cases for which a group gets an interval and enters the gaps.
MIN_CASES = 10
#: Columns of ``subgroups.csv``, in order.
SUBGROUPS_CSV_COLUMNS = ("attribute", "kind", "group", "metric", "value", "ci_low", "ci_high", "n", "note")
#: Fairness rows of binary tasks (metric names in the gap rows).
EQUAL_OPPORTUNITY, EQUALISED_ODDS, FPR = "equal_opportunity", "equalized_odds", "fpr"


@dataclass
class SubgroupReport:
    """What :func:`subgroup_analysis` found.

    Attributes:
        task: the classification task.
        rows: one dict per (attribute, group, metric) and per (attribute, gap), with
            the keys :data:`SUBGROUPS_CSV_COLUMNS` (``kind`` is ``group`` or ``gap``;
            a gap's ``group`` is ``"<highest> - <lowest>"``).
        problems: attributes that could not be analysed, and why (one line each).
        settings: bootstrap, ci, seed, min_cases.
    """

    task: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """``summary.json``'s ``subgroups``: per attribute its groups and gaps (NaN: null)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        out: dict[str, Any] = {}
        for r in self.rows:
            att = out.setdefault(r["attribute"], {"groups": {}, "gaps": {}})
            stat = {"value": num(r["value"]), "ci_low": num(r["ci_low"]), "ci_high": num(r["ci_high"])}
            if r["note"]:
                stat["note"] = r["note"]
            if r["kind"] == "group":
                group = att["groups"].setdefault(r["group"], {"n": r["n"], "metrics": {}})
                group["metrics"][r["metric"]] = stat
            else:
                att["gaps"][r["metric"]] = {**stat, "between": r["group"], "n": r["n"]}
        return {"attributes": out, "problems": list(self.problems), "settings": dict(self.settings)}

    def format(self, problems: bool = True) -> str:
        """The tables a person reads: per attribute, metric by group, then the gaps
        (and the problems, one ``error:`` line each, unless ``problems`` is False)."""
        lines: list[str] = []
        for att in dict.fromkeys(r["attribute"] for r in self.rows):
            rows = [r for r in self.rows if r["attribute"] == att]
            lines.append(f"subgroups by '{att}':")
            lines.append(f"  {'group':<16} {'metric':<18} {'value':>7}  {'CI':<18}  {'n':>5}  note")
            for r in rows:
                name = r["group"] if r["kind"] == "group" else f"gap {r['group']}"
                ci = f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]" if math.isfinite(r["ci_low"]) else ""
                lines.append(
                    f"  {name[:16]:<16} {r['metric']:<18} {_num(r['value']):>7}  {ci:<18}  {r['n']:>5}  {r['note']}"
                )
        if problems:
            lines.extend(f"error: {p}" for p in self.problems)
        return "\n".join(lines)


def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.4f}"


def subgroup_analysis(
    y_true: Any,
    probs: Any,
    groups: Mapping[str, Sequence[Any]],
    *,
    task: str | None = None,
    threshold: Any = 0.5,
    y_pred: Any = None,
    metrics: Any = None,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    min_cases: int = MIN_CASES,
) -> SubgroupReport:
    """Every metric per group, with intervals, and the largest gap between groups.

    Args:
        y_true, probs, task: as in :mod:`medimg.metrics.classification.tasks`.
        groups: ``{attribute: one value per case}`` (e.g. ``{"sex": ["F", "M", ...]}``);
            values are compared as text, an empty one is the group ``(missing)``.
        threshold: the decision threshold (binary, multi-label); y_pred: the decisions
            themselves (layout of ``y_true``), instead of deciding at ``threshold``.
        metrics: names among ``CLASSIFICATION_METRICS`` (default: all).
        bootstrap: resamples per group (0: values only, no intervals or gap intervals).
        ci: coverage. seed: of the resampling. min_cases: fewest cases for an interval.

    Returns:
        the :class:`SubgroupReport`; an attribute with one value only, or whose length
        differs from the cases, is in ``problems`` (not raised).
    """
    names = check_metric_names(metrics)
    prep = prepare(y_true, probs, task)
    decided = decide(prep, threshold) if y_pred is None else np.asarray(y_pred).reshape(prep.y.shape)
    if prep.task == "binary":  # the fairness criteria need both rates
        names = tuple(dict.fromkeys([*names, "sensitivity", "specificity"]))

    def score(idx: np.ndarray, group_seed: int) -> Group:
        return _score_group(prep, decided, idx, names, bootstrap, ci, group_seed, min_cases)

    return analyse_subgroups(groups, prep.n, score, _metric_names(names, prep.task), prep.task,
                             bootstrap=bootstrap, ci=ci, seed=seed, min_cases=min_cases)


def analyse_subgroups(
    groups: Mapping[str, Sequence[Any]],
    n_cases: int,
    score: Callable[[np.ndarray, int], Group],
    metric_names: Sequence[str],
    task: str,
    *,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    min_cases: int = MIN_CASES,
) -> SubgroupReport:
    """The subgroup analysis whatever is scored (classification here, segmentation in
    :mod:`medimg.metrics.seg_subgroups`): ``score(case indices, seed)`` scores one group
    as a :class:`Group`; the groups, the gaps and their intervals are built from those.

    Args:
        groups: ``{attribute: one value per case}``; n_cases: the number of cases.
        metric_names: the keys of each :class:`Group`'s ``values``, in report order.
        task: the report's task (``"binary"`` adds the fairness rows).
    """
    report = SubgroupReport(
        task, settings={"bootstrap": int(bootstrap), "ci": ci, "seed": seed, "min_cases": int(min_cases)}
    )
    for a, (attribute, raw) in enumerate(groups.items()):
        values = ["(missing)" if str(v).strip() == "" else str(v).strip() for v in raw]
        if len(values) != n_cases:
            report.problems.append(
                f"subgroup column '{attribute}' has {len(values)} values for {n_cases} cases; give one per case"
            )
            continue
        distinct = sorted(set(values))
        if len(distinct) < 2:
            report.problems.append(
                f"subgroup column '{attribute}' holds one value only ('{distinct[0]}') over the {n_cases} "
                "cases: there is no other group to compare with; leave it out of the subgroups"
            )
            continue
        labels = np.asarray(values)
        scored = [score(np.flatnonzero(labels == g), seed + 7919 * a + j) for j, g in enumerate(distinct)]
        report.rows.extend(_group_rows(attribute, distinct, scored, metric_names, ci))
        report.rows.extend(_gap_rows(attribute, distinct, scored, metric_names, task, ci, min_cases))
    return report


@dataclass
class Group:
    """One group scored: its case count, each metric's value, the bootstrap resamples of
    each (``(B,)``; None: too small or no bootstrap), why a value does not exist, a note."""

    n: int
    values: dict[str, float]
    resamples: dict[str, np.ndarray] | None  # (B,) per metric; None: too small or no bootstrap
    why: dict[str, str]
    note: str


def _score_group(prep: Prepared, y_pred: np.ndarray, idx: np.ndarray, names: tuple[str, ...],
                 n_boot: int, ci: float, seed: int, min_cases: int) -> Group:
    sub = Prepared(prep.task, prep.y[idx], prep.scores[idx], prep.num_classes)
    yp = y_pred[idx]
    table, m = metric_table(sub, yp, names)
    values = {name: float(table[(name, None)][0]) for name in names}
    if prep.task == "binary":
        values[FPR] = 1.0 - values["specificity"]
    why = {k: _why(sub, k, m) for k, v in values.items() if not math.isfinite(v)}
    if sub.n < min_cases:
        return Group(sub.n, values, None, why, f"fewer than {min_cases} cases: no interval")
    if not n_boot:
        return Group(sub.n, values, None, why, "")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for ridx in stratified_resamples(strata(sub), int(n_boot), seed):
        t, _ = metric_table(sub, yp, names, ridx)
        for k in names:
            parts[k].append(t[(k, None)])
    resamples = {k: np.concatenate(v) for k, v in parts.items()}
    if prep.task == "binary":
        resamples[FPR] = 1.0 - resamples["specificity"]
    return Group(sub.n, values, resamples, why, "")


def _why(sub: Prepared, metric: str, m: np.ndarray) -> str:
    """Why a group's value does not exist."""
    if metric == "auc":
        present = len(np.unique(sub.y, axis=0))
        return "AUC undefined: the group's labels hold one class only" if present < 2 else (
            "AUC undefined: a class has no positive or no negative case in the group"
        )
    if sub.task != "binary":
        return "undefined: a class's value is undefined in this group"
    tp, fp, fn, tn = (int(x[0, 0]) for x in one_vs_rest_counts(sub, m))
    return undefined_reason("specificity" if metric == FPR else metric, tp, fp, fn, tn, "positive")


def _metric_names(names: tuple[str, ...], task: str) -> list[str]:
    return [*names, FPR] if task == "binary" else list(names)


def _group_rows(attribute: str, distinct: list[str], scored: list[Group], metric_names: Sequence[str],
                ci: float) -> list[dict[str, Any]]:
    rows = []
    for g, grp in zip(distinct, scored):
        for k in metric_names:
            lo, hi = (math.nan, math.nan)
            if grp.resamples is not None and math.isfinite(grp.values[k]):
                lo, hi = _quantiles(grp.resamples[k], ci)
            note = "; ".join(x for x in (grp.note, grp.why.get(k, "")) if x)
            rows.append(_row(attribute, "group", g, k, grp.values[k], lo, hi, grp.n, note))
    return rows


def _row(attribute: str, kind: str, group: str, metric: str, value: float, lo: float, hi: float,
         n: int, note: str) -> dict[str, Any]:
    return dict(zip(SUBGROUPS_CSV_COLUMNS, (attribute, kind, group, metric, value, lo, hi, n, note)))


def _gap_rows(attribute: str, distinct: list[str], scored: list[Group], metric_names: Sequence[str],
              task: str, ci: float, min_cases: int) -> list[dict[str, Any]]:
    rows = []
    gaps: dict[str, tuple[float, np.ndarray | None]] = {}
    for k in metric_names:
        ok = {g: grp for g, grp in zip(distinct, scored) if grp.n >= min_cases and math.isfinite(grp.values[k])}
        left = [g for g in distinct if g not in ok]
        n = sum(grp.n for grp in ok.values())
        if len(ok) < 2:
            note = f"fewer than two groups with {min_cases}+ cases and a value" + (
                f" (left out: {', '.join(left)})" if left else "")
            rows.append(_row(attribute, "gap", "", k, math.nan, math.nan, math.nan, n, note))
            continue
        values = {g: grp.values[k] for g, grp in ok.items()}
        top, bottom = max(values, key=values.__getitem__), min(values, key=values.__getitem__)
        gap = values[top] - values[bottom]
        per = None
        if ok[top].resamples is not None and ok[bottom].resamples is not None:
            per = ok[top].resamples[k] - ok[bottom].resamples[k]  # type: ignore[index]
        lo, hi = _quantiles(per, ci) if per is not None else (math.nan, math.nan)
        note = f"left out: {', '.join(left)}" if left else ""
        rows.append(_row(attribute, "gap", f"{top} - {bottom}", k, gap, lo, hi, n, note))
        gaps[k] = (gap, per)
    if task == "binary":
        rows.extend(_fairness_rows(attribute, rows, gaps, ci))
    return rows


def _fairness_rows(attribute: str, gap_rows: list[dict[str, Any]],
                   gaps: dict[str, tuple[float, np.ndarray | None]], ci: float) -> list[dict[str, Any]]:
    """Equal opportunity (the TPR gap) and equalised odds (the larger of TPR and FPR gaps)."""
    by = {r["metric"]: r for r in gap_rows}
    tpr, fpr = by.get("sensitivity"), by.get(FPR)
    out = []
    if tpr is not None:
        out.append({**tpr, "metric": EQUAL_OPPORTUNITY,
                    "note": "; ".join(x for x in ("true-positive-rate gap", tpr["note"]) if x)})
    if "sensitivity" in gaps and FPR in gaps and tpr is not None and fpr is not None:
        (g1, r1), (g2, r2) = gaps["sensitivity"], gaps[FPR]
        lo, hi = (math.nan, math.nan)
        if r1 is not None and r2 is not None:
            lo, hi = _quantiles(np.maximum(r1, r2), ci)
        which = tpr if g1 >= g2 else fpr
        out.append(_row(attribute, "gap", which["group"], EQUALISED_ODDS, max(g1, g2), lo, hi, which["n"],
                        f"larger of the TPR and FPR gaps ({'TPR' if g1 >= g2 else 'FPR'})"))
    return out


def metadata_groups(
    path: Any, columns: Sequence[str], case_ids: Sequence[str]
) -> tuple[dict[str, list[str]], list[int], list[str]]:
    """Read the subgroup ``columns`` of a metadata CSV (``case_id`` + one column per
    attribute) for the scored ``case_ids``.

    Returns:
        ``(groups, rows, problems)``: ``{column: value per kept case}``, the indices of
        ``case_ids`` found in the file (the others are left out, and counted in
        ``problems``), and one line per problem (a missing file or column, missing
        cases). Nothing is raised for these: the rest of the evaluation goes on.
    """
    from ...core.errors import DataError
    from .inputs import CASE_ID, _read_csv

    try:
        table = _read_csv(path, "metadata", "give a CSV with a case_id column and one column per attribute")
    except DataError as exc:
        return {}, [], [exc.message]
    name = table.path.name
    problems = [
        f"subgroup column '{c}' is not in metadata file '{name}' (its columns: {', '.join(table.header)}); "
        "choose the subgroup columns among those"
        for c in columns
        if c not in table.columns
    ]
    where = {cid: i for i, cid in enumerate(table.columns[CASE_ID])}
    rows = [i for i, cid in enumerate(case_ids) if cid in where]
    missing = [cid for cid in case_ids if cid not in where]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        problems.append(
            f"{len(missing)} of the {len(case_ids)} scored case(s) are not in metadata file '{name}' "
            f"(case_id {shown}); they are left out of the subgroup analysis: add them to the metadata"
        )
    groups = {
        c: [table.columns[c][where[case_ids[i]]] for i in rows] for c in columns if c in table.columns
    }
    return groups, rows, problems
