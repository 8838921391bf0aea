"""Temperature scaling (Guo et al. 2017): one scalar ``T > 0`` dividing the logits.

``softmax(z / T)`` (or ``sigmoid(z / T)`` per label) keeps every decision of the argmax
and every ranking (so the AUC), and changes only how confident the probabilities are:
``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one.
:func:`fit_temperature` finds the ``T`` of least negative log-likelihood on held-out
(validation) predictions, by a bounded Brent search over ``log T`` (SciPy's
``minimize_scalar``): the objective of one scalar is smooth and, in ``log T``, unimodal in
practice, so no learning rate or iteration budget has to be chosen.

With flip test-time augmentation the model gives one set of logits per pass; the
probability is the mean over passes of ``softmax(z_pass / T)``, as at prediction, and
the fit uses exactly that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit, log_softmax, logsumexp

from ...core.errors import DataError

__all__ = ["TEMPERATURE_RANGE", "fit_temperature", "temperature_nll"]

#: The search range of ``T``; a fit at either end means the data cannot pin ``T`` down.
TEMPERATURE_RANGE = (0.01, 100.0)


def _layout(logits: Any, y: Any, multilabel: bool) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 2:
        z = z[None]
    y = np.asarray(y)
    if z.ndim != 3 or z.shape[1] != y.shape[0] or z.shape[1] == 0:
        raise DataError(
            f"logits must be (n, classes) or (passes, n, classes) with n = {y.shape[0]} labelled "
            f"cases; got shape {np.shape(logits)}"
        )
    if not np.all(np.isfinite(z)):
        raise DataError("logits hold NaN or infinite values; the model's outputs are broken")
    if multilabel and y.shape != z.shape[1:]:
        raise DataError(f"multilabel targets must be (n, labels) = {z.shape[1:]}; got {y.shape}")
    if not multilabel and (y.ndim != 1 or y.min() < 0 or y.max() >= z.shape[2]):
        raise DataError(f"targets must be (n,) class indices 0..{z.shape[2] - 1}; got shape {y.shape}")
    return z, y


def temperature_nll(logits: Any, y: Any, temperature: float, multilabel: bool = False) -> float:
    """Mean negative log-likelihood (natural log, per case) of ``y`` under the
    probabilities of ``logits / temperature`` (multi-label: summed over labels).

    Args:
        logits: ``(n, K)``, or ``(P, n, K)`` for ``P`` test-time-augmentation passes
            (the probability is the mean over passes).
        y: ``(n,)`` class indices, or ``(n, L)`` 0/1 for ``multilabel``.
    """
    z, y = _layout(logits, y, multilabel)
    return _nll(z, y, float(temperature), multilabel)


def _nll(z: np.ndarray, y: np.ndarray, t: float, multilabel: bool) -> float:
    s = z / t
    log_p = np.log(s.shape[0])
    if multilabel:
        pos = logsumexp(log_expit(s), axis=0) - log_p  # log mean_pass sigmoid
        neg = logsumexp(log_expit(-s), axis=0) - log_p
        return float(-(y * pos + (1 - y) * neg).sum(axis=1).mean())
    lp = logsumexp(log_softmax(s, axis=2), axis=0) - log_p  # (n, K)
    return float(-lp[np.arange(y.shape[0]), y].mean())


def fit_temperature(logits: Any, y: Any, multilabel: bool = False) -> float:
    """The temperature ``T`` of least validation negative log-likelihood.

    Args:
        logits: ``(n, K)`` or ``(P, n, K)`` (test-time-augmentation passes), before any
            temperature (``T = 1``).
        y: ``(n,)`` class indices, or ``(n, L)`` 0/1 for ``multilabel``.
        multilabel: sigmoid per label instead of a softmax.

    Returns:
        ``T`` in :data:`TEMPERATURE_RANGE`.

    Raises:
        DataError: shapes that disagree, non-finite logits, or targets out of range.
    """
    z, y = _layout(logits, y, multilabel)
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    res = minimize_scalar(
        lambda u: _nll(z, y, float(np.exp(u)), multilabel),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(res.x))
