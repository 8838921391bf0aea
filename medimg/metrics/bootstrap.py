"""Summary statistics over cases with percentile-bootstrap confidence intervals.

A study reports a metric as mean, spread and a confidence interval over its cases. The
interval here is the percentile bootstrap (Efron & Tibshirani 1993, ch. 13): resample the
cases with replacement ``n_boot`` times, take the mean of each resample, and report the
``(1-ci)/2`` and ``(1+ci)/2`` quantiles of those means. Non-finite values (NaN for
undefined, inf for a distance to an empty mask) are left out, and ``n`` says how many
values contributed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_means", "summarize"]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    Args:
        values: one value per case; non-finite values are dropped first.
        n_boot: number of resamples (>= 1).
        ci: coverage in (0, 1), e.g. 0.95.
        seed: seed of the ``numpy.random.Generator``; the same seed and values always
            give the same interval.

    Returns:
        ``(low, high)``; ``(nan, nan)`` without finite values; ``(v, v)`` for one value.
    """
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), e.g. 0.95; got {ci}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    means = bootstrap_means(values, n_boot, seed)
    if means.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_means(values: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The means of ``n_boot`` resamples (with replacement) of the finite ``values``.

    Returns:
        ``(n_boot,)`` float64; empty when no value is finite. The same seed and values
        always give the same means (:func:`bootstrap_ci` takes its quantiles).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot))
    # Chunks bound the memory of the (n_boot, n) index matrix for large studies.
    chunk = max(1, 2_000_000 // v.size)
    for start in range(0, int(n_boot), chunk):
        stop = min(start + chunk, int(n_boot))
        idx = rng.integers(0, v.size, size=(stop - start, v.size))
        means[start:stop] = v[idx].mean(axis=1)
    return means


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def summarize(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``{mean, std, median, n, n_excluded, ci_low, ci_high}`` of the finite ``values``.

    ``std`` is the sample standard deviation (``ddof=1``; None for fewer than 2 values).
    ``n_excluded`` counts the NaN / inf values left out. Statistics that do not exist are
    None (JSON ``null``), never NaN, so the result is valid JSON. ``n_boot=0`` disables
    the interval (``ci_low``/``ci_high`` None).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    n = int(finite.size)
    out: dict[str, Any] = {
        "mean": _none_if_nan(float(finite.mean())) if n else None,
        "std": _none_if_nan(float(finite.std(ddof=1))) if n > 1 else None,
        "median": _none_if_nan(float(np.median(finite))) if n else None,
        "n": n,
        "n_excluded": int(v.size - n),
        "ci_low": None,
        "ci_high": None,
    }
    if n and n_boot:
        lo, hi = bootstrap_ci(finite, n_boot=n_boot, ci=ci, seed=seed)
        out["ci_low"], out["ci_high"] = _none_if_nan(lo), _none_if_nan(hi)
    return out
