"""Bootstrap confidence intervals and summary statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from medimg.metrics import bootstrap_ci, summarize


def test_bootstrap_is_seeded_and_sensible():
    v = np.random.default_rng(0).normal(0.8, 0.05, 30)
    a = bootstrap_ci(v, 500, 0.95, seed=7)
    assert a == bootstrap_ci(v, 500, 0.95, seed=7)
    assert a != bootstrap_ci(v, 500, 0.95, seed=8)
    lo, hi = a
    assert lo < v.mean() < hi
    # the percentile interval of the mean is about mean +- 1.96 * sd / sqrt(n)
    half = 1.96 * v.std(ddof=1) / math.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * half, rel=0.25)
    narrow = bootstrap_ci(v, 500, 0.5, seed=7)
    assert lo < narrow[0] < narrow[1] < hi


def test_bootstrap_edge_cases_and_errors():
    assert bootstrap_ci([0.5], 100) == (0.5, 0.5)
    assert all(math.isnan(x) for x in bootstrap_ci([math.nan, math.inf], 100))
    assert bootstrap_ci([1.0, math.inf, 3.0, math.nan], 2000, seed=0)[1] <= 3.0
    with pytest.raises(ValueError, match="ci must be in"):
        bootstrap_ci([1.0, 2.0], ci=95)
    with pytest.raises(ValueError, match="n_boot must be"):
        bootstrap_ci([1.0, 2.0], n_boot=0)


def test_summarize_counts_excluded_and_is_json_safe():
    s = summarize([0.9, 0.7, math.nan, math.inf, 0.8], n_boot=100)
    assert s["n"] == 3 and s["n_excluded"] == 2
    assert s["mean"] == pytest.approx(0.8) and s["median"] == pytest.approx(0.8)
    assert s["std"] == pytest.approx(0.1)
    assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    one = summarize([math.inf, 0.5], n_boot=0)
    assert one["std"] is None and one["ci_low"] is None and one["n"] == 1
    none = summarize([math.nan], n_boot=100)
    assert none["mean"] is None and none["n"] == 0 and none["n_excluded"] == 1
    json.dumps([s, one, none], allow_nan=False)
