"""Cross-validation: one run per fold of ``data.split_file``, then a per-fold and pooled summary.

:func:`cross_validate` trains fold ``k`` (validation: the cases of fold ``k``; training: the
other folds; the test split stays test) into ``RUN_DIR/fold_k`` with :func:`train`, then
writes ``RUN_DIR/cv_summary.csv`` (one row per fold: its best validation value of
``evaluation.select_by``, the epoch it was reached at, epochs run, why it stopped, its run
folder; then a ``pooled`` row) and ``RUN_DIR/cv_summary.json`` (the same, and the pooled
statistics).

The pooled value is the mean over folds of each fold's best validation value, with a 95%
**t-based** confidence interval: ``mean +- t(0.975, k - 1) * sd / sqrt(k)`` (Student's t
with ``k - 1`` degrees of freedom, ``sd`` the sample standard deviation over the ``k``
folds). A bootstrap over 5 values would be too coarse to mean anything. Note that folds
share training cases, so the interval is optimistic (folds are not independent).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from ..core.spec import ExperimentConfig
from ..data.folds import read_split_file
from .run import train
from .rundir import run_dir_for

__all__ = ["CV_SUMMARY", "CVResult", "FoldResult", "cross_validate", "pooled_summary"]

#: The summary files' stem in the cross-validation folder (``.csv`` and ``.json``).
CV_SUMMARY = "cv_summary"


@dataclass
class FoldResult:
    """One fold's run: its best validation value of the selection metric and where it is."""

    fold: int
    best_metric: float | None
    best_epoch: int | None
    epochs_run: int
    stopped_because: str
    run_dir: str


@dataclass
class CVResult:
    """What :func:`cross_validate` produced.

    Attributes:
        run_dir: the cross-validation folder (``fold_k`` subfolders, summary files).
        metric: the validation score summarised (``evaluation.select_by``).
        folds: one :class:`FoldResult` per fold run.
        pooled: mean, sd, n, ci_low, ci_high, ci_method over folds.
    """

    run_dir: Path
    metric: str
    folds: list[FoldResult] = field(default_factory=list)
    pooled: dict[str, Any] = field(default_factory=dict)


def pooled_summary(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean over folds with a t-based ``level`` confidence interval (module docstring);
    the interval is NaN with fewer than 2 values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": mean, "sd": sd, "n": n, "ci_low": mean - half, "ci_high": mean + half,
            "ci_level": level, "ci_method": f"t-based: {int(level * 100)}% Student t over folds, {max(n - 1, 0)} df"}


def _write(result: CVResult) -> None:
    out = result.run_dir / f"{CV_SUMMARY}.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["fold", f"best_{result.metric}", "best_epoch", "epochs_run", "stopped_because", "run_dir",
                    "ci_low", "ci_high"])
        for f in result.folds:
            w.writerow([f.fold, "" if f.best_metric is None else f"{f.best_metric:.6g}", f.best_epoch, f.epochs_run,
                        f.stopped_because, f.run_dir, "", ""])
        p = result.pooled
        w.writerow(["pooled", f"{p['mean']:.6g}", "", "", "", str(result.run_dir), f"{p['ci_low']:.6g}", f"{p['ci_high']:.6g}"])
    doc = {"metric": result.metric, "folds": [asdict(f) for f in result.folds], "pooled": result.pooled}
    (result.run_dir / f"{CV_SUMMARY}.json").write_text(json.dumps(doc, indent=2) + "\n")


def cross_validate(
    config: ExperimentConfig,
    output_dir: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    *,
    folds: list[int] | None = None,
    progress: bool = True,
) -> CVResult:
    """Train every fold of ``data.split_file`` (or those in ``folds``) and summarise.

    Args:
        config: the experiment config; ``data.split_file`` must be set (``data.fold`` is
            replaced by each fold in turn).
        output_dir: the cross-validation folder (default: ``experiment.output_dir``);
            fold ``k`` runs in ``output_dir/fold_k``.
        config_path: the YAML file (relative data paths are resolved against its folder).
        folds: the folds to run (default: all).
        progress: progress bars and per-epoch lines.

    Returns:
        A :class:`CVResult`; ``cv_summary.csv`` and ``cv_summary.json`` are in its folder.

    Raises:
        ConfigError: no ``data.split_file``, or a fold in ``folds`` that the file lacks.
        DataError: the split file does not fit the data (:func:`medimg.data.folds.fold_case_ids`).
    """
    cfg = config
    if cfg.data.split_file is None:
        raise ConfigError("cross-validation needs data.split_file (a split file with a fold per case)",
                          hint="write one with `medimg split MANIFEST_OR_ROOT --folds 5 -o splits.csv` "
                          "and set data.split_file")
    base = Path(config_path).absolute().parent if config_path else Path.cwd()
    split_file = cfg.data.split_file if cfg.data.split_file.is_absolute() else base / cfg.data.split_file
    n = max(read_split_file(split_file).values()) + 1
    wanted = list(range(n)) if folds is None else [int(k) for k in folds]
    bad = [k for k in wanted if not 0 <= k < n]
    if bad:
        raise ConfigError(f"fold(s) {bad} out of range: split file {split_file} has folds 0..{n - 1}",
                          hint=f"choose folds between 0 and {n - 1}")
    run_dir = run_dir_for(cfg, output_dir)
    result = CVResult(run_dir, cfg.evaluation.select_by)
    for k in wanted:
        fold_cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"fold": k})})
        r = train(fold_cfg, output_dir=run_dir / f"fold_{k}", config_path=config_path, progress=progress)
        result.folds.append(FoldResult(k, r.best_metric, r.best_epoch, r.epochs_run, r.stopped_because, str(r.run_dir)))
    result.pooled = pooled_summary([f.best_metric for f in result.folds])  # type: ignore[misc]
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 writes
        run_dir.mkdir(parents=True, exist_ok=True)
        _write(result)
    return result
