"""Paired comparison of two models on the same cases: is B really better than A?

:func:`compare_segmentation` (two folders of label maps and one of references) and
:func:`~medimg.metrics.compare_classification.compare_classification` (two
``predictions.csv`` and one label CSV) are what ``medimg compare PRED_A PRED_B REF`` runs.
Each case is scored by the same code as ``medimg evaluate``; then, per metric (and class):

* ``mean_a``, ``mean_b``: the means over the cases both models have a finite value for;
* ``diff`` = mean of ``B - A`` over those cases (positive: B scores higher; whether that
  is better depends on the metric's direction, ``higher_is_better``);
* ``ci_low``, ``ci_high``: the paired percentile-bootstrap interval of ``diff``: the cases
  are resampled with replacement (seeded), and each resample takes the *same* cases for A
  and B, so the interval reflects the correlation between the two models;
* ``p_value``: per-case metrics, the Wilcoxon signed-rank test of the per-case
  differences (:func:`scipy.stats.wilcoxon`, two-sided, zero differences dropped); AUC,
  DeLong's test for two correlated AUCs (:mod:`medimg.metrics.delong`); ``test`` names it.

Only the cases that both predictions and the reference have are compared; the others are
listed in ``left_out`` with the reason (no prediction from A or B, no reference, failed to
score), never dropped silently, and the command exits non-zero. With fewer than
:data:`MIN_RELIABLE` cases the intervals and tests are flagged ``reliable: false``.

Outputs: ``compare.csv`` (one row per metric and class) and ``compare.json`` (the rows,
the cases compared, those left out with the reason, and the settings).
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from .bootstrap import bootstrap_ci
from .evaluate import evaluate_folders
from .registry import METRICS
from .report import natural_key

__all__ = ["MIN_RELIABLE", "CompareReport", "compare_segmentation", "paired_difference"]

#: Fewer compared cases than this: intervals and tests are flagged unreliable.
MIN_RELIABLE = 10
COLUMNS = ("metric", "class", "n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "test",
           "reliable")


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``mean(b - a)``, the same cases drawn for A and B."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    if d.size == 0 or n_boot < 1:
        return (math.nan, math.nan)
    return bootstrap_ci(d, n_boot, ci, seed)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p of ``b - a``; None when every difference is 0."""
    from scipy.stats import wilcoxon

    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    if not np.any(d != 0):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _num(float(wilcoxon(d).pvalue))


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Means, paired difference ``B - A`` with its bootstrap interval, and the Wilcoxon p.

    ``a[i]`` and ``b[i]`` are the same case's values. Pairs where either is NaN or inf
    are left out (``n_excluded`` counts them), as reports leave such values out of means.

    Returns:
        ``{n, n_excluded, mean_a, mean_b, diff, ci_low, ci_high, p_value, test, reliable}``
        with None for what does not exist (valid JSON).
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need one A and one B value per case; got {a.size} and {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)
    out: dict[str, Any] = {"n": n, "n_excluded": int(ok.size - n), "mean_a": None, "mean_b": None, "diff": None,
                           "ci_low": None, "ci_high": None, "p_value": None, "test": "wilcoxon",
                           "reliable": n >= MIN_RELIABLE}
    if n:
        lo, hi = paired_bootstrap_ci(a, b, n_boot, ci, seed)
        out.update(mean_a=float(a.mean()), mean_b=float(b.mean()), diff=float((b - a).mean()),
                   ci_low=_num(lo), ci_high=_num(hi), p_value=wilcoxon_p(a, b))
    return out


@dataclass
class CompareReport:
    """The outcome of a paired comparison.

    Attributes:
        rows: one dict per (metric, class) with :data:`COLUMNS`.
        cases: the cases compared.
        left_out: ``{case_id: reason}`` of the cases not compared.
        settings: inputs and parameters.
        kind: ``"segmentation"`` or ``"classification"``.
    """

    rows: list[dict[str, Any]]
    cases: list[str]
    left_out: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    kind: str = "segmentation"
    notes: list[str] = field(default_factory=list)

    @property
    def all_ok(self) -> bool:
        """True when every case of every input was compared."""
        return not self.left_out

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_cases": len(self.cases), "cases": self.cases, "left_out": self.left_out,
                "rows": self.rows, "notes": self.notes, "settings": self.settings}

    def write(self, output_dir: str | Path) -> dict[str, Path]:
        """Write ``compare.csv`` and ``compare.json`` into ``output_dir``."""
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"compare_csv": out / "compare.csv", "compare_json": out / "compare.json"}
        with paths["compare_csv"].open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
            w.writeheader()
            for r in self.rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
        paths["compare_json"].write_text(json.dumps(self.to_json(), indent=2))
        return paths

    def format(self) -> str:
        """A plain-text table: one line per metric and class, then the cases left out."""
        def f(x: Any) -> str:
            return "-" if x is None else f"{x:.4g}"

        lines = [f"{'metric':<20} {'class':<14} {'n':>4} {'A':>9} {'B':>9} {'B-A':>9}  {'95% CI':<21} "
                 f"{'p':>8}  test"]
        for r in self.rows:
            ci = f"[{f(r['ci_low'])}, {f(r['ci_high'])}]"
            flag = "" if r["reliable"] else f"  (n<{MIN_RELIABLE}: unreliable)"
            lines.append(f"{r['metric']:<20} {str(r['class']):<14} {r['n']:>4} {f(r['mean_a']):>9} "
                         f"{f(r['mean_b']):>9} {f(r['diff']):>9}  {ci:<21} {f(r['p_value']):>8}  {r['test']}{flag}")
        lines.append(f"cases: {len(self.cases)} compared, {len(self.left_out)} left out")
        for cid, why in sorted(self.left_out.items(), key=lambda kv: natural_key(kv[0])):
            lines.append(f"  left out {cid}: {why}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def no_common_cases(what_a: str, what_b: str, what_ref: str, examples: Mapping[str, Sequence[str]]) -> DataError:
    """The error when no case is in both predictions and the reference."""
    shown = "; ".join(f"{k}: {', '.join(list(v)[:3]) or 'none'}" for k, v in examples.items())
    return DataError(
        f"no case is in all of '{what_a}', '{what_b}' and '{what_ref}' ({shown}); "
        "nothing can be compared",
        hint="give two predictions of the same cases and their references, named by the same case ids",
    )


def _left_out_seg(rep: Any, side: str, ref: Path) -> dict[str, str]:
    out = {cid: f"no prediction from {side}" for cid in rep.missing_pred}
    out.update({cid: f"no reference in '{ref}' for {side}'s prediction" for cid in rep.missing_ref})
    out.update({cid: f"{side} could not be scored: {why}" for cid, why in rep.failed.items()})
    return out


def _per_case(rep: Any) -> dict[tuple[str, str], dict[str, float]]:
    """``{(metric, class): {case_id: value}}`` of an evaluation report's rows."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for r in rep.rows:
        out.setdefault((r["metric"], r["label"]), {})[r["case_id"]] = float(r["value"])
    return out


def compare_segmentation(
    pred_a: str | Path,
    pred_b: str | Path,
    ref: str | Path,
    output_dir: str | Path | None = None,
    *,
    metrics: Sequence[str] | None = None,
    bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    **evaluate_kwargs: Any,
) -> CompareReport:
    """Compare two folders of predicted label maps on the references (module docstring).

    Each folder is scored with :func:`~medimg.metrics.evaluate_folders` (same case
    matching, label checks and metrics); ``evaluate_kwargs`` go to it (``label_map``,
    ``metric_params``, ``empty_score``, ``surface``, ``ref_name``...).

    Raises:
        DataError: no case has a prediction from both folders and a reference.
    """
    ref = Path(ref)
    rep_a = evaluate_folders(pred_a, ref, metrics=metrics, bootstrap=0, **evaluate_kwargs)
    rep_b = evaluate_folders(pred_b, ref, metrics=metrics, bootstrap=0, **evaluate_kwargs)
    common = sorted(set(rep_a.cases) & set(rep_b.cases), key=natural_key)
    left: dict[str, str] = {}
    for side, rep in (("A", rep_a), ("B", rep_b)):
        for cid, why in _left_out_seg(rep, side, ref).items():
            left[cid] = f"{left[cid]}; {why}" if cid in left else why
    for cid in set(rep_a.cases) ^ set(rep_b.cases):
        if cid not in left:
            left[cid] = "scored for one model only"
    if not common:
        raise no_common_cases(str(pred_a), str(pred_b), str(ref),
                              {"A": rep_a.cases or rep_a.missing_ref, "B": rep_b.cases or rep_b.missing_ref,
                               "reference": rep_a.missing_pred or rep_a.cases})
    va, vb = _per_case(rep_a), _per_case(rep_b)
    rows = []
    for key in va:
        if key not in vb:
            continue
        a = np.array([va[key].get(c, math.nan) for c in common])
        b = np.array([vb[key].get(c, math.nan) for c in common])
        stats = paired_difference(a, b, n_boot=bootstrap, ci=ci, seed=seed)
        stats["higher_is_better"] = METRICS.get(key[0]).higher_is_better
        rows.append({"metric": key[0], "class": key[1], **stats})
    settings = {"pred_a": str(pred_a), "pred_b": str(pred_b), "ref": str(ref), "bootstrap": int(bootstrap),
                "ci": ci, "seed": seed, "metrics": sorted({r["metric"] for r in rows}),
                "resampling": "cases, the same resample for A and B"}
    report = CompareReport(rows, common, left, settings, "segmentation")
    if output_dir is not None:
        report.write(output_dir)
    return report
