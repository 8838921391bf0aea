"""Seeded, class-stratified percentile-bootstrap confidence intervals of every metric.

Cases are resampled with replacement *within each stratum*: the cases sharing one label
(binary, multi-class) or one combination of labels (multi-label). Every resample therefore
keeps the class counts of the data, so each holds both kinds of case and its AUC exists.
The interval is the percentile one (Efron & Tibshirani 1993, ch. 13): the ``(1-ci)/2``
and ``(1+ci)/2`` quantiles of the metric over ``n_boot`` resamples. The metrics of all
resamples come from the same :func:`~.counts.metric_table` as the point values, in
chunks that bound memory; the same seed and data always give the same intervals.

A resample where a metric has no value (``ppv`` when nothing is predicted positive) is
left out of that metric's quantiles; where the data's own value is undefined, so is the
interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

from ...core.errors import DataError
from .counts import CLASSIFICATION_METRICS, Key, metric_table
from .roc import rank_codes
from .tasks import Prepared

__all__ = ["bootstrap_intervals", "strata", "stratified_resamples"]

#: Case indices held at once (``chunk x n``); bounds the memory of a chunk of resamples.
_CHUNK_CELLS = 2_000_000


def strata(prep: Prepared) -> list[np.ndarray]:
    """The case indices of each stratum: one per class, or per combination of labels."""
    y = prep.y if prep.y.ndim == 2 else prep.y[:, None]
    _, inverse = np.unique(y, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return np.split(order, bounds)


def stratified_resamples(
    groups: list[np.ndarray], n_boot: int, seed: int, width: int = 1
) -> Iterator[np.ndarray]:
    """``(chunk, n)`` case indices, ``n_boot`` rows in all, each resampling every stratum
    with replacement to its own size. ``width`` (columns per case, e.g. labels) sizes the
    chunks."""
    rng = np.random.default_rng(seed)
    n = sum(g.shape[0] for g in groups)
    chunk = max(1, _CHUNK_CELLS // max(1, n * width))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        parts = [g[rng.integers(0, g.shape[0], size=(b, g.shape[0]))] for g in groups]
        yield np.concatenate(parts, axis=1)


def _quantiles(values: np.ndarray, ci: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_intervals(
    prep: Prepared,
    y_pred: np.ndarray,
    metrics: tuple[str, ...] = CLASSIFICATION_METRICS,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[dict[Key, tuple[float, float]], np.ndarray, np.ndarray]:
    """Percentile intervals of every ``(metric, class)`` of :func:`~.counts.metric_table`.

    Args:
        prep, y_pred: the checked task and its predicted labels.
        metrics: names from :data:`~.counts.CLASSIFICATION_METRICS`.
        n_boot: resamples (>= 1). ci: coverage in (0, 1). seed: of the generator.

    Returns:
        ``(intervals, cm_low, cm_high)``: ``{key: (low, high)}`` and the interval of each
        cell of the row-normalised confusion matrix (the fraction of a true class given
        each prediction), shaped like the confusion counts.
    """
    if not 0.0 < ci < 1.0:
        raise DataError(f"ci must be in (0, 1), e.g. 0.95; got {ci}")
    if int(n_boot) < 1:
        raise DataError(
            f"n_boot must be >= 1 (0 turns the intervals off before this call); got {n_boot}"
        )
    width = prep.num_classes if prep.task == "multilabel" else 1
    tables: list[dict[Key, np.ndarray]] = []
    fractions: list[np.ndarray] = []
    codes = rank_codes(*prep.one_vs_rest()) if "auc" in metrics else None
    for idx in stratified_resamples(strata(prep), int(n_boot), seed, width):
        table, m = metric_table(prep, y_pred, metrics, idx, codes)
        tables.append(table)
        rows = m.sum(axis=-1, keepdims=True).astype(np.float64)
        fractions.append(np.divide(m, rows, out=np.full(m.shape, np.nan), where=rows > 0))
    intervals = {key: _quantiles(np.concatenate([t[key] for t in tables]), ci) for key in tables[0]}
    alpha = (1.0 - ci) / 2.0
    with warnings.catch_warnings():  # a class absent from the data: its row stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(np.concatenate(fractions), [alpha, 1.0 - alpha], axis=0)
    return intervals, lo, hi
