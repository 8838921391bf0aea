"""Calibration: ece, brier and nll against values computed by hand on tiny arrays, their
bootstrap intervals and reliability diagram in an evaluation, temperature scaling that
recovers a known temperature, and the Predictor dividing logits by the stored one."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax

from medimg.core.errors import DataError
from medimg.core.spec import InferenceSpec
from medimg.engine.selection import parse_select_by
from medimg.inference import Predictor
from medimg.inference.classify import class_logits, class_probabilities
from medimg.metrics.classification import (
    CALIBRATION_METRICS,
    brier,
    classification_metrics,
    ece,
    evaluate_classification,
    fit_temperature,
    nll,
)
from medimg.metrics.classification.temperature import temperature_nll


# -- values by hand -------------------------------------------------------------------
def test_binary_values_by_hand():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.4, 0.3])
    # 15 bins: each case alone in its bin -> mean |p - y|
    assert ece(y, p) == pytest.approx((0.1 + 0.2 + 0.6 + 0.3) / 4)
    assert brier(y, p) == pytest.approx((0.01 + 0.04 + 0.36 + 0.09) / 4)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.7)) / 4
    assert nll(y, p) == pytest.approx(expected)
    # (n, 2) softmax columns give the same as the positive column
    assert ece(y, np.stack([1 - p, p], axis=1)) == pytest.approx(ece(y, p))


def test_ece_errors_in_one_bin_cancel_and_bins_are_equal_width():
    # 0.60 and 0.62 share bin [0.6, 0.667): |0.61 - 0.5| = 0.11, not the mean |p - y| = 0.5
    assert ece([0, 1], [0.60, 0.62]) == pytest.approx(0.11)
    # one bin: |mean p - mean y|
    assert ece([0, 1, 1], [0.2, 0.5, 0.8], n_bins=1) == pytest.approx(abs(0.5 - 2 / 3))
    # p = 1 falls in the last bin (no index error), with p = 0.95
    assert ece([1, 0], [1.0, 0.95], n_bins=10) == pytest.approx(abs(0.975 - 0.5))
    with pytest.raises(DataError, match="n_bins"):
        ece([0, 1], [0.2, 0.8], n_bins=0)


def test_multiclass_values_by_hand():
    y = np.array([0, 1, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3]])
    # top label: 0.7 right, 0.4 right, 0.5 wrong (argmax 1, truth 2); separate bins
    assert ece(y, p) == pytest.approx((0.3 + 0.6 + 0.5) / 3)
    assert brier(y, p) == pytest.approx((0.14 + 0.54 + 0.78) / 3)  # summed over classes
    assert nll(y, p) == pytest.approx(-(math.log(0.7) + math.log(0.4) + math.log(0.3)) / 3)
    # per class, one-vs-rest: class 0 has p 0.7 (y 1), 0.3 (0), 0.2 (0)
    per = brier(y, p, average=None)
    assert per[0] == pytest.approx((0.09 + 0.09 + 0.04) / 3)
    assert ece(y, p, average=None)[0] == pytest.approx((0.3 + 0.3 + 0.2) / 3)


def test_multilabel_per_label_and_mean():
    y = np.array([[1, 0], [0, 1]])
    p = np.array([[0.9, 0.2], [0.4, 0.6]])
    assert brier(y, p, task="multilabel", average=None) == pytest.approx([0.085, 0.1])
    assert brier(y, p, task="multilabel") == pytest.approx(0.0925)
    assert ece(y, p, task="multilabel", average=None) == pytest.approx([0.25, 0.3])
    label0 = -(math.log(0.9) + math.log(0.6)) / 2
    assert nll(y, p, task="multilabel", average=None)[0] == pytest.approx(label0)


def test_nll_of_a_confident_error_is_finite():
    assert nll([1], [0.0]) == pytest.approx(-math.log(1e-15))


def test_in_classification_metrics_and_lower_is_better():
    y, p = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.4, 0.3])
    scores = classification_metrics(y, p, metrics=["ece", "brier", "nll"])
    assert scores == pytest.approx({"ece": 0.3, "brier": 0.125, "nll": nll(y, p)})
    for name in CALIBRATION_METRICS:
        assert parse_select_by(name, [], task="classification").mode == "min"
    assert parse_select_by("auc", [], task="classification").mode == "max"


# -- in an evaluation -----------------------------------------------------------------
def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_evaluation_has_intervals_and_a_reliability_diagram(tmp_path: Path):
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    preds = _write(tmp_path / "p.csv", ["case_id", "prob_a", "prob_b"], [[f"c{i}", 1 - p[i], p[i]] for i in range(200)])
    labels = _write(tmp_path / "l.csv", ["case_id", "label"], [[f"c{i}", "ab"[y[i]]] for i in range(200)])
    report = evaluate_classification(preds, labels, tmp_path / "out", bootstrap=200)
    for name in CALIBRATION_METRICS:
        v = report.value(name)
        lo, hi = report.intervals[(name, None)]
        assert lo < hi and lo <= v + 0.05 and hi >= v - 0.05, (name, v, lo, hi)
        assert report.n[(name, None)] == 200
    assert report.value("brier") == pytest.approx(brier(y, p))
    rows = {r["metric"]: r for r in csv.DictReader(open(tmp_path / "out" / "metrics.csv"))}
    assert float(rows["ece"]["value"]) == pytest.approx(ece(y, p))
    png = tmp_path / "out" / "reliability_diagram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# -- temperature scaling --------------------------------------------------------------
def _sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cum = softmax(logits, axis=1).cumsum(axis=1)
    return (rng.random((len(logits), 1)) > cum).sum(axis=1)


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_temperature_recovers_a_known_temperature(t_true: float):
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, size=(20_000, 3))  # calibrated logits
    y = _sample(z, rng)
    t = fit_temperature(z * t_true, y)  # the model's logits are t_true times too large
    assert t == pytest.approx(t_true, rel=0.05)
    assert temperature_nll(z * t_true, y, t) < temperature_nll(z * t_true, y, 1.0)


def test_temperature_multilabel_and_tta_passes():
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 2.0, size=(20_000, 2))
    y = (rng.random(z.shape) < expit(z)).astype(int)
    assert fit_temperature(z * 3.0, y, multilabel=True) == pytest.approx(3.0, rel=0.05)
    zc = rng.normal(0.0, 2.0, size=(20_000, 3))
    yc = _sample(zc, rng)
    # two identical passes: the same T as one
    assert fit_temperature(np.stack([zc * 2.0, zc * 2.0]), yc) == pytest.approx(2.0, rel=0.05)


def test_temperature_checks_its_inputs():
    with pytest.raises(DataError, match="logits must be"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(DataError, match="class indices"):
        fit_temperature(np.zeros((2, 2)), np.array([0, 2]))


def test_probabilities_divide_the_logits_by_the_temperature():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x = torch.randn(5, 1, 4, 4)
    with torch.no_grad():
        z = net(x)
        p = class_probabilities(net, x, temperature=2.0)
        assert torch.allclose(p, torch.softmax(z / 2.0, dim=1), atol=1e-6)
        assert class_logits(net, x, [0]).shape == (2, 5, 3)  # unflipped + one flip
    spec = InferenceSpec(roi_size=[4, 4], task="classification", label_names=["a", "b", "c"], temperature=2.0)
    pred = Predictor(net, spec, device="cpu")
    assert torch.allclose(pred.classify_batch(x), torch.softmax(z / 2.0, dim=1), atol=1e-6)
    assert torch.allclose(pred.classify_logits(x)[0], z, atol=1e-6)
    with pytest.raises(Exception, match="temperature"):
        InferenceSpec(temperature=0.0)
