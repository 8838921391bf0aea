"""Classification metrics as pure functions: values against hand-computed cases, a brute
force pairwise count and MONAI's ``compute_roc_auc``; undefined values; the decision rule;
threshold choice; stratified bootstrap intervals; 10^5 cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from medimg.core.errors import DataError
from medimg.metrics.classification import (
    CLASSIFICATION_METRICS,
    accuracy,
    auc,
    balanced_accuracy,
    choose_threshold,
    classification_metrics,
    confusion_matrix,
    f1,
    npv,
    ppv,
    predict_labels,
    roc_curve,
    sensitivity,
    specificity,
)
from medimg.metrics.classification.bootstrap import (
    bootstrap_intervals,
    strata,
    stratified_resamples,
)
from medimg.metrics.classification.tasks import decide, prepare


def _pairwise_auc(y: np.ndarray, p: np.ndarray) -> float:
    """The definition, counted pair by pair: P(score_pos > score_neg) + 0.5 P(tie)."""
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def _binary(n: int, seed: int = 0, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return y, (np.round(p, decimals) if decimals is not None else p)


def _multiclass(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += 0.3
    return y, p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------
def test_binary_values_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])  # predicted at 0.5: [0, 0, 0, 1]
    assert auc(y, p) == pytest.approx(0.75)
    assert accuracy(y, p) == pytest.approx(0.75)
    assert sensitivity(y, p) == pytest.approx(0.5)
    assert specificity(y, p) == pytest.approx(1.0)
    assert ppv(y, p) == pytest.approx(1.0)
    assert npv(y, p) == pytest.approx(2 / 3)
    assert f1(y, p) == pytest.approx(2 / 3)
    assert balanced_accuracy(y, p) == pytest.approx(0.75)
    assert confusion_matrix(y, p).tolist() == [[2, 0], [1, 1]]  # [[TN, FP], [FN, TP]]
    assert sensitivity(y, p, threshold=0.35) == pytest.approx(1.0)  # p >= threshold is positive
    assert specificity(y, p, threshold=0.35) == pytest.approx(0.5)


@pytest.mark.parametrize("decimals", [None, 1, 2])  # continuous scores, and many ties
def test_auc_matches_pairwise_count_and_monai(decimals):
    y, p = _binary(300, seed=1, decimals=decimals)
    expected = _pairwise_auc(y, p)
    assert auc(y, p) == pytest.approx(expected, abs=1e-12)
    assert auc(y, p) == pytest.approx(float(compute_roc_auc(torch.tensor(p), torch.tensor(y))), abs=1e-12)


def test_auc_of_softmax_pair_is_the_positive_column():
    y, p = _binary(50, seed=2)
    assert auc(y, np.stack([1 - p, p], axis=1)) == pytest.approx(auc(y, p), abs=1e-12)


def test_perfect_and_reversed_classifiers():
    y = np.array([0, 1] * 20)
    perfect = np.where(y == 1, 0.9, 0.1)
    assert auc(y, perfect) == 1.0
    assert accuracy(y, perfect) == 1.0
    assert auc(y, 1 - perfect) == 0.0
    assert accuracy(y, 1 - perfect) == 0.0
    yk = np.arange(30) % 3
    onehot = np.eye(3)[yk] * 0.8 + 0.2 / 3
    assert auc(yk, onehot) == 1.0 and accuracy(yk, onehot) == 1.0
    assert balanced_accuracy(yk, onehot) == 1.0


def test_multiclass_one_vs_rest_macro():
    y, p = _multiclass(240, k=4, seed=3)
    per_class = auc(y, p, average=None)
    assert per_class.shape == (4,)
    for c in range(4):
        assert per_class[c] == pytest.approx(_pairwise_auc((y == c).astype(int), p[:, c]), abs=1e-12)
    assert auc(y, p) == pytest.approx(per_class.mean(), abs=1e-12)
    onehot = torch.nn.functional.one_hot(torch.tensor(y), 4)
    assert auc(y, p) == pytest.approx(float(compute_roc_auc(torch.tensor(p), onehot)), abs=1e-12)


def test_multiclass_counts_by_hand():
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])  # argmax 0, 2, 2, 1
    assert predict_labels(p).tolist() == [0, 2, 2, 1]
    assert accuracy(y, p) == pytest.approx(0.5)
    assert balanced_accuracy(y, p) == pytest.approx((1 + 0 + 0.5) / 3)  # mean recall
    assert sensitivity(y, p, average=None).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert ppv(y, p, average=None).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert confusion_matrix(y, p).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert specificity(y, p) == pytest.approx(np.mean([1.0, 2 / 3, 0.5]))


def test_multilabel_per_label_with_thresholds_per_label():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (200, 3))
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    per_label = auc(y, p, average=None)
    for c in range(3):
        assert per_label[c] == pytest.approx(_pairwise_auc(y[:, c], p[:, c]), abs=1e-12)
    assert auc(y, p) == pytest.approx(per_label.mean())
    t = np.array([0.3, 0.5, 0.7])
    sens = sensitivity(y, p, threshold=t, average=None)
    for c in range(3):
        assert sens[c] == pytest.approx(sensitivity(y[:, c], p[:, c], threshold=t[c]))
    assert confusion_matrix(y, p, threshold=t).shape == (3, 2, 2)
    assert predict_labels(p, "multilabel", t).tolist() == (p >= t).astype(int).tolist()


def test_classification_metrics_gives_every_name():
    y, p = _binary(100, seed=5)
    values = classification_metrics(y, p, threshold=0.4)
    assert list(values) == list(CLASSIFICATION_METRICS)
    assert values["sensitivity"] == sensitivity(y, p, threshold=0.4)
    assert values["auc"] == auc(y, p)
    with pytest.raises(DataError, match="unknown classification metric.*'dice'"):
        classification_metrics(y, p, metrics=["auc", "dice"])


# --------------------------------------------------------------------------------------
# values that do not exist
# --------------------------------------------------------------------------------------
def test_auc_of_one_class_raises_naming_the_split():
    y = np.ones(12, dtype=int)
    p = np.linspace(0, 1, 12)
    with pytest.raises(DataError) as err:
        auc(y, p, split="validation")
    text = str(err.value)
    assert "AUC is undefined on the validation split" in text
    assert "every case is the positive class (1) (12 cases)" in text
    assert "both kinds" in text and "accuracy" in text
    with pytest.raises(DataError, match="validation split: no case is"):
        classification_metrics(np.zeros(12, dtype=int), p, split="validation")
    # without auc the other metrics still answer
    assert classification_metrics(y, p, metrics=["accuracy"])["accuracy"] == pytest.approx(6 / 12)


def test_multiclass_auc_with_an_absent_class_raises():
    y = np.array([0, 1, 0, 1])
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(DataError, match="AUC is undefined on the given labels: no case is class 2"):
        auc(y, p)


def test_ppv_without_positive_prediction_is_nan_not_zero():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert math.isnan(ppv(y, p))
    assert math.isnan(f1(np.zeros(4, dtype=int), p))
    assert npv(y, p) == pytest.approx(0.5)
    assert math.isnan(sensitivity(np.zeros(4, dtype=int), p))


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "0 \\(negative\\) or 1 \\(positive\\); row 2 holds 2"),
        ([0, 1], [0.1, 1.5], "probabilities in \\[0, 1\\]; row 1 holds 1.5"),
        ([0, 1], [0.1, float("nan")], "probabilities in \\[0, 1\\]"),
        ([0, 1, 1], [0.1, 0.2], "y_true has 3 cases but probs has 2"),
        ([], [], "no cases"),
    ],
)
def test_bad_inputs_say_what_and_where(y, p, match):
    with pytest.raises(DataError, match=match):
        auc(np.array(y), np.array(p))


def test_bad_threshold_and_average():
    y, p = _binary(10)
    with pytest.raises(DataError, match="threshold must lie in \\[0, 1\\]; got 2.0"):
        accuracy(y, p, threshold=2.0)
    with pytest.raises(DataError, match="average must be 'macro' or None"):
        accuracy(y, p, average="micro")
    with pytest.raises(DataError, match="threshold has 2 values for 3 labels"):
        accuracy(np.zeros((4, 3), int), np.zeros((4, 3)), threshold=[0.5, 0.5])


# --------------------------------------------------------------------------------------
# ROC curve and threshold choice
# --------------------------------------------------------------------------------------
def test_roc_curve_points_follow_the_decision_rule():
    y, p = _binary(80, seed=6, decimals=1)
    fpr, tpr, thr = roc_curve(y, p)
    assert (fpr[0], tpr[0], thr[0]) == (0.0, 0.0, np.inf) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    for k in range(1, len(thr)):
        assert tpr[k] == pytest.approx(sensitivity(y, p, threshold=thr[k]))
        assert 1 - fpr[k] == pytest.approx(specificity(y, p, threshold=thr[k]))
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(y, p))


def test_choose_threshold_youden_is_the_best_point():
    y, p = _binary(150, seed=7)
    choice = choose_threshold(y, p)
    assert choice.method == "youden" and choice.target is None
    assert choice.sensitivity == pytest.approx(sensitivity(y, p, threshold=choice.threshold))
    assert choice.specificity == pytest.approx(specificity(y, p, threshold=choice.threshold))
    best = max(sensitivity(y, p, threshold=t) + specificity(y, p, threshold=t) for t in np.unique(p))
    assert choice.sensitivity + choice.specificity == pytest.approx(best)


def test_choose_threshold_for_target_sensitivity():
    y, p = _binary(150, seed=8)
    choice = choose_threshold(y, p, method="sensitivity", target=0.9)
    assert choice.sensitivity >= 0.9
    assert sensitivity(y, p, threshold=choice.threshold) == pytest.approx(choice.sensitivity)
    # midway between the chosen score and the next lower one
    chosen, lower = np.min(p[p >= choice.threshold]), np.max(p[p < choice.threshold])
    assert choice.threshold == pytest.approx((chosen + lower) / 2)
    # the highest such threshold: deciding at the next higher distinct score misses the target
    higher = np.min(p[p > chosen])
    assert sensitivity(y, p, threshold=higher) < 0.9


def test_choose_threshold_for_best_accuracy():
    y, p = _binary(150, seed=9)
    choice = choose_threshold(y, p, method="accuracy")
    acc = lambda t: float(((p >= t) == y).mean())  # noqa: E731
    assert acc(choice.threshold) == pytest.approx(max(acc(t) for t in np.unique(p)))
    # a rare positive class: accuracy asks for more evidence than Youden's J does
    y = np.array([0] * 8 + [1] * 2)
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.55, 0.9])
    assert choose_threshold(y, p).threshold == pytest.approx(0.525)  # sens 1, spec 5/8
    assert choose_threshold(y, p, method="accuracy").threshold == pytest.approx(0.775)  # 9 of 10 right


def test_choose_threshold_lies_between_scores():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.5, 0.9])
    choice = choose_threshold(y, p)
    assert choice == (pytest.approx(0.4), 1.0, 1.0, "youden", None)


def test_choose_threshold_errors():
    y, p = _binary(20)
    with pytest.raises(DataError, match="unknown threshold method 'f1'; expected 'youden', 'accuracy'"):
        choose_threshold(y, p, method="f1")
    with pytest.raises(DataError, match="target sensitivity must lie in \\(0, 1\\]"):
        choose_threshold(y, p, method="sensitivity", target=1.5)
    with pytest.raises(DataError, match="validation split"):
        choose_threshold(np.zeros(20, int), p, split="validation")


# --------------------------------------------------------------------------------------
# bootstrap intervals
# --------------------------------------------------------------------------------------
def _intervals(y, p, n_boot=300, seed=0, task=None):
    prep = prepare(y, p, task)
    return bootstrap_intervals(prep, decide(prep), n_boot=n_boot, seed=seed)[0]


def test_interval_contains_the_value_and_narrows_with_more_cases():
    widths = {}
    for n in (100, 2000):
        y, p = _binary(n, seed=9)
        iv = _intervals(y, p)
        values = classification_metrics(y, p)
        for name, v in values.items():
            lo, hi = iv[(name, None)]
            assert lo <= v <= hi, (n, name, lo, v, hi)
        widths[n] = iv[("auc", None)][1] - iv[("auc", None)][0]
    assert widths[2000] < widths[100] / 2  # ~ 1/sqrt(n): 4.5x narrower expected


def test_intervals_are_seeded():
    y, p = _binary(120, seed=10)
    assert _intervals(y, p, seed=3) == _intervals(y, p, seed=3)
    assert _intervals(y, p, seed=3) != _intervals(y, p, seed=4)


def test_resamples_keep_the_class_counts():
    y, p = _multiclass(90, k=3, seed=11)
    y[:3] = 2  # unbalanced on purpose
    prep = prepare(y, p)
    counts = np.bincount(y, minlength=3)
    for idx in stratified_resamples(strata(prep), 50, seed=0):
        for row in idx:
            assert np.bincount(y[row], minlength=3).tolist() == counts.tolist()


def test_auc_interval_is_the_percentile_of_resampled_aucs():
    y, p = _binary(60, seed=12, decimals=2)
    prep = prepare(y, p)
    aucs = [auc(y[row], p[row]) for idx in stratified_resamples(strata(prep), 200, seed=5) for row in idx]
    lo, hi = _intervals(y, p, n_boot=200, seed=5)[("auc", None)]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(aucs, [0.025, 0.975])), abs=1e-12)


def test_multiclass_and_multilabel_intervals_cover_every_class():
    y, p = _multiclass(150, k=3, seed=13)
    iv = _intervals(y, p, n_boot=100)
    assert {("auc", c) for c in (None, 0, 1, 2)} <= set(iv)
    assert ("accuracy", 0) not in iv  # multi-class accuracy is the task's own
    rng = np.random.default_rng(14)
    ym = rng.integers(0, 2, (150, 2))
    pm = np.clip(rng.normal(0.3 + 0.4 * ym, 0.2), 0, 1)
    ivm = _intervals(ym, pm, n_boot=100, task="multilabel")
    assert {("accuracy", c) for c in (None, 0, 1)} <= set(ivm)


def test_hundred_thousand_cases():
    y, p = _binary(100_000, seed=15)
    values = classification_metrics(y, p)
    assert values["auc"] == pytest.approx(float(compute_roc_auc(torch.tensor(p), torch.tensor(y))), abs=1e-9)
    lo, hi = _intervals(y, p, n_boot=50)[("auc", None)]
    assert lo < values["auc"] < hi and hi - lo < 0.01
    yk, pk = _multiclass(100_000, k=5, seed=16)
    assert 0.5 < classification_metrics(yk, pk)["auc"] < 1.0
