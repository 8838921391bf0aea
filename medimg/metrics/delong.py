"""DeLong's test for two correlated AUCs: two models scored on the same cases.

DeLong, DeLong & Clarke-Pearson (1988) estimate the covariance of two AUCs measured on
the same positives and negatives from their *placement values*: for the ``m`` positive
cases ``x_i`` and ``n`` negative cases ``y_j`` of one model,

* ``V10(x_i) = (1/n) Σ_j ψ(x_i, y_j)`` and ``V01(y_j) = (1/m) Σ_i ψ(x_i, y_j)``, with
  ``ψ(x, y) = 1`` if ``x > y``, ``1/2`` if ``x = y``, ``0`` otherwise;
* the AUC is the mean of either; ``S10`` and ``S01`` are the (2 x 2, ``ddof=1``)
  covariance matrices of the two models' ``V10`` and ``V01``, and
  ``S = S10 / m + S01 / n`` is the covariance of the two AUCs;
* ``z = (AUC_B - AUC_A) / sqrt(S_AA + S_BB - 2 S_AB)``, two-sided ``p = 2 Φ(-|z|)``.

The placements come from midranks, as in Sun & Xu (2014, IEEE Signal Processing Letters
21(11), "Fast implementation of DeLong's algorithm..."): with ``T_z`` the midranks of all
``m + n`` scores, ``T_x`` those of the positives among themselves and ``T_y`` of the
negatives, ``V10(x_i) = (T_z(x_i) - T_x(x_i)) / n`` and
``V01(y_j) = 1 - (T_z(y_j) - T_y(y_j)) / m``: ``O((m + n) log(m + n))`` instead of
``O(m n)``. ``tests/metrics/test_compare.py`` checks it against the direct sums above.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

__all__ = ["delong_test", "placements"]


def placements(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(V10, V01)`` placement values of one model's scores (module docstring).

    Args:
        truth: ``(N,)`` bool or 0/1, the positive cases.
        scores: ``(N,)`` float, higher meaning more likely positive.

    Returns:
        ``V10`` of the positives ``(m,)`` and ``V01`` of the negatives ``(n,)``, in the
        order the cases come.
    """
    t = np.asarray(truth).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    x, y = s[t], s[~t]
    m, n = x.size, y.size
    tz = rankdata(np.concatenate([x, y]))  # "average": midranks
    v10 = (tz[:m] - rankdata(x)) / n
    v01 = 1.0 - (tz[m:] - rankdata(y)) / m
    return v10, v01


def delong_test(truth: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> dict[str, Any]:
    """DeLong's test of ``AUC_B - AUC_A`` on the same cases.

    Returns:
        ``{"auc_a", "auc_b", "diff", "se", "z", "p"}``; ``diff`` is B minus A, ``se`` its
        standard error; ``z`` and ``p`` are None when the difference has no variance
        (identical rankings).

    Raises:
        ValueError: no positive or no negative case (the AUC does not exist), or the
            arrays differ in length.
    """
    t = np.asarray(truth).astype(bool).ravel()
    a = np.asarray(scores_a, dtype=np.float64).ravel()
    b = np.asarray(scores_b, dtype=np.float64).ravel()
    if not a.size == b.size == t.size:
        raise ValueError(f"truth and both scores need one value per case; got {t.size}, {a.size}, {b.size}")
    m, n = int(t.sum()), int((~t).sum())
    if m < 1 or n < 1:
        raise ValueError(f"the AUC needs positive and negative cases; got {m} positive, {n} negative")
    pa, pb = placements(t, a), placements(t, b)
    v10 = np.stack([pa[0], pb[0]])
    v01 = np.stack([pa[1], pb[1]])
    s10 = np.cov(v10) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(v01) if n > 1 else np.zeros((2, 2))
    s = s10 / m + s01 / n
    auc_a, auc_b = float(v10[0].mean()), float(v10[1].mean())
    var = float(s[0, 0] + s[1, 1] - 2.0 * s[0, 1])
    out: dict[str, Any] = {"auc_a": auc_a, "auc_b": auc_b, "diff": auc_b - auc_a, "se": None, "z": None, "p": None}
    if var > 1e-15:
        se = math.sqrt(var)
        z = (auc_b - auc_a) / se
        out.update(se=se, z=z, p=float(2.0 * norm.sf(abs(z))))
    return out
