"""evaluate_classification: predictions CSV against a label CSV or manifest, its files,
unmatched cases, undefined values, and the text of every bad-input error."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from medimg.core.errors import DataError
from medimg.metrics.classification import (
    METRICS_CSV_COLUMNS,
    auc,
    classification_metrics,
    evaluate_classification,
)

CLASSES = ["normal", "pneumonia"]


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _binary_files(tmp_path: Path, n: int = 80, seed: int = 0, threshold: float = 0.5, extra_label=()):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    preds = _write(
        tmp_path / "predictions.csv",
        ["case_id", "prob_normal", "prob_pneumonia", "predicted", "threshold"],
        [[f"c{i}", 1 - p[i], p[i], CLASSES[int(p[i] >= threshold)], threshold] for i in range(n)],
    )
    labels = _write(
        tmp_path / "labels.csv",
        ["case_id", "image", "label", "split"],
        [[f"c{i}", f"img/c{i}.png", CLASSES[y[i]], "test"] for i in range(n)] + list(extra_label),
    )
    return preds, labels, y, p


def test_binary_end_to_end(tmp_path):
    preds, labels, y, p = _binary_files(tmp_path, threshold=0.45)
    report = evaluate_classification(preds, labels, tmp_path / "out", bootstrap=200, seed=1)
    assert report.all_ok and report.task == "binary" and report.positive_class == "pneumonia"
    expected = classification_metrics(y, p, threshold=0.45)
    for name, v in expected.items():
        assert report.value(name) == pytest.approx(v, abs=1e-12)
    assert report.threshold == {"value": 0.45, "source": "predictions.csv column threshold"}
    out = tmp_path / "out"
    for name in ("metrics.csv", "summary.json", "confusion_matrix.csv", "roc_curve.png", "confusion_matrix.png"):
        assert (out / name).is_file(), name
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METRICS_CSV_COLUMNS
    auc_row = next(r for r in rows if r["metric"] == "auc")
    assert auc_row["class"] == "overall" and float(auc_row["value"]) == pytest.approx(auc(y, p))
    assert float(auc_row["ci_low"]) <= float(auc_row["value"]) <= float(auc_row["ci_high"])
    assert int(next(r for r in rows if r["metric"] == "sensitivity")["n"]) == int(y.sum())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is True and summary["n_cases"] == 80
    assert summary["metrics"]["auc"]["value"] == pytest.approx(auc(y, p))
    assert summary["metrics"]["accuracy"]["ci_low"] is not None
    assert summary["confusion_matrix"]["counts"] == report.confusion.tolist()
    assert sum(map(sum, summary["confusion_matrix"]["counts"])) == 80
    assert "auc" in report.format() and "pneumonia" in report.format()


def test_multiclass_labels_by_index_and_multilabel(tmp_path):
    rng = np.random.default_rng(2)
    names = ["glioma", "meningioma", "pituitary"]
    y = np.arange(60) % 3
    p = rng.dirichlet(np.ones(3), 60)
    p[np.arange(60), y] += 0.4
    p /= p.sum(axis=1, keepdims=True)
    preds = _write(tmp_path / "p.csv", ["case_id"] + [f"prob_{c}" for c in names],
                   [[f"c{i}", *p[i]] for i in range(60)])
    labels = _write(tmp_path / "l.csv", ["case_id", "label"], [[f"c{i}", y[i]] for i in range(60)])
    report = evaluate_classification(preds, labels, bootstrap=50)
    assert report.task == "multiclass" and report.threshold is None
    assert report.value("auc") == pytest.approx(auc(y, p)) and report.value("auc", "pituitary") == pytest.approx(
        auc((y == 2).astype(int), p[:, 2]))
    assert any("class indices 0..2" in note for note in report.notes)

    ym = rng.integers(0, 2, (50, 2))
    pm = np.clip(rng.normal(0.3 + 0.4 * ym, 0.2), 0, 1)
    labs = ["effusion", "nodule"]
    predicted = [";".join(c for c, v in zip(labs, pm[i]) if v >= 0.6) for i in range(50)]
    preds = _write(tmp_path / "pm.csv", ["case_id", "prob_effusion", "prob_nodule", "predicted", "threshold"],
                   [[f"c{i}", *pm[i], predicted[i], 0.6] for i in range(50)])
    labels = _write(tmp_path / "lm.csv", ["case_id", "effusion", "nodule"], [[f"c{i}", *ym[i]] for i in range(50)])
    report = evaluate_classification(preds, labels, tmp_path / "ml", bootstrap=50)
    assert report.task == "multilabel"
    assert report.value("sensitivity", "nodule") == pytest.approx(
        classification_metrics(ym[:, 1], pm[:, 1], threshold=0.6)["sensitivity"])
    assert report.confusion.shape == (2, 2, 2)
    assert (tmp_path / "ml" / "confusion_matrix.png").is_file()


def _roc_rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_roc_csv_lists_every_operating_point_with_its_accuracy(tmp_path):
    preds, labels, y, p = _binary_files(tmp_path, n=40, seed=3)
    p = np.round(p, 1)  # ties: one operating point per distinct score
    preds = _write(tmp_path / "tied.csv", ["case_id", "prob_normal", "prob_pneumonia"],
                   [[f"c{i}", 1 - p[i], p[i]] for i in range(40)])
    evaluate_classification(preds, labels, tmp_path / "out", bootstrap=0)
    rows = _roc_rows(tmp_path / "out" / "roc_curve.csv")
    assert tuple(rows[0]) == ("class", "threshold", "false_positive_rate", "sensitivity", "specificity", "accuracy",
                              "predicted_positive")
    assert rows[0]["threshold"] == "inf" and float(rows[0]["accuracy"]) == pytest.approx((y == 0).mean())
    assert [float(r["threshold"]) for r in rows[1:]] == sorted(set(p.tolist()), reverse=True)
    for r in rows[1:]:
        called = p >= float(r["threshold"])
        assert r["class"] == "pneumonia" and int(r["predicted_positive"]) == called.sum()
        assert float(r["accuracy"]) == pytest.approx((called == (y == 1)).mean())
        assert float(r["sensitivity"]) == pytest.approx(called[y == 1].mean())
        assert float(r["specificity"]) == pytest.approx((~called[y == 0]).mean())


def test_roc_csv_has_one_curve_per_class_of_a_multiclass_task(tmp_path):
    rng = np.random.default_rng(4)
    names = ["glioma", "meningioma", "pituitary"]
    y = np.arange(30) % 3
    p = rng.dirichlet(np.ones(3), 30)
    preds = _write(tmp_path / "p.csv", ["case_id"] + [f"prob_{c}" for c in names], [[f"c{i}", *p[i]] for i in range(30)])
    labels = _write(tmp_path / "l.csv", ["case_id", "label"], [[f"c{i}", names[y[i]]] for i in range(30)])
    evaluate_classification(preds, labels, tmp_path / "out", bootstrap=0)
    rows = _roc_rows(tmp_path / "out" / "roc_curve.csv")
    assert [r["class"] for r in rows] == [n for n in names for _ in range(31)]
    last_pituitary = rows[-1]  # the lowest threshold calls every case pituitary
    assert float(last_pituitary["accuracy"]) == pytest.approx((y == 2).mean())
    mid = rows[31 + 10]
    called = p[:, 1] >= float(mid["threshold"])
    assert float(mid["accuracy"]) == pytest.approx((called == (y == 1)).mean())


def test_unmatched_cases_are_listed_not_dropped(tmp_path):
    extra = [["x1", "img/x1.png", "normal", "train"]]
    preds, labels, _, _ = _binary_files(tmp_path, n=40, extra_label=extra)
    with preds.open("a") as f:
        f.write("lonely,0.5,0.5,pneumonia,0.5\n")
    report = evaluate_classification(preds, labels, tmp_path / "out", bootstrap=0)
    assert not report.all_ok
    assert report.missing_prediction == ["x1"] and report.missing_label == ["lonely"]
    assert len(report.cases) == 40
    assert "1 labelled case(s) without a prediction; 1 predicted case(s) without a label" in report.problems()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ok"] is False and summary["cases"]["missing_prediction"] == ["x1"]
    assert summary["metrics"]["auc"]["ci_low"] is None  # bootstrap=0: no interval


def test_split_keeps_one_split_of_a_manifest(tmp_path):
    extra = [["x1", "img/x1.png", "normal", "train"], ["x2", "img/x2.png", "pneumonia", "val"]]
    preds, labels, _, _ = _binary_files(tmp_path, n=30, extra_label=extra)
    report = evaluate_classification(preds, labels, bootstrap=0)
    assert not report.all_ok
    assert any("cover exactly the 'test' split" in w for w in report.warnings)
    assert evaluate_classification(preds, labels, split="test", bootstrap=0).all_ok


def test_ppv_without_positive_prediction_is_reported_undefined(tmp_path):
    preds, labels, _, _ = _binary_files(tmp_path, n=20, threshold=1.0)
    report = evaluate_classification(preds, labels, tmp_path / "out", bootstrap=20)
    assert math.isnan(report.value("ppv"))
    assert report.undefined[("ppv", None)] == "no case was predicted 'pneumonia'"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["ppv"]["value"] is None and summary["undefined"]["ppv"].startswith("no case")
    assert "undefined: ppv: no case was predicted 'pneumonia'" in report.format()
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert any(r.startswith("ppv,overall,nan,nan,nan,0") for r in rows)


def test_given_threshold_replaces_the_predicted_column(tmp_path):
    preds, labels, y, p = _binary_files(tmp_path, threshold=0.5)
    report = evaluate_classification(preds, labels, threshold=0.3, bootstrap=0)
    assert report.value("sensitivity") == pytest.approx(classification_metrics(y, p, threshold=0.3)["sensitivity"])
    assert report.threshold == {"value": 0.3, "source": "given"}


def test_predicted_column_disagreeing_with_probabilities_is_warned(tmp_path):
    preds, labels, _, _ = _binary_files(tmp_path, n=10)
    text = preds.read_text().splitlines()
    text[1] = "c0,0.9,0.1,pneumonia,0.5"
    preds.write_text("\n".join(text) + "\n")
    report = evaluate_classification(preds, labels, bootstrap=0)
    assert report.warnings == [(
        "1 case(s) (e.g. 'c0') have a 'predicted' value other than prob >= threshold gives; "
        "the 'predicted' column is scored"
    )]


# --------------------------------------------------------------------------------------
# bad input: one clear line naming the file, line or column, and the fix
# --------------------------------------------------------------------------------------
def _error(tmp_path, preds_rows, label_rows, **kwargs) -> str:
    preds = _write(tmp_path / "predictions.csv", *preds_rows)
    labels = _write(tmp_path / "labels.csv", *label_rows)
    with pytest.raises(DataError) as err:
        evaluate_classification(preds, labels, bootstrap=0, **kwargs)
    return str(err.value)


PRED_HEADER = ["case_id", "prob_normal", "prob_pneumonia"]
GOOD_PREDS = (PRED_HEADER, [["a", 0.2, 0.8], ["b", 0.7, 0.3]])


def test_error_missing_label_column(tmp_path):
    text = _error(tmp_path, GOOD_PREDS, (["case_id", "diagnosis", "split"], [["a", "normal", "test"]]))
    assert "labels file" in text and "labels.csv' has no 'label' column and no column per class" in text
    assert "columns found: case_id, diagnosis, split" in text
    assert "if the labels are in 'diagnosis', name it as the label column" in text
    text = _error(tmp_path, GOOD_PREDS, (["case_id", "label"], [["a", "normal"]]), label_column="dx")
    assert "has no column 'dx' (columns: case_id, label)" in text


def test_error_label_not_a_declared_class(tmp_path):
    text = _error(tmp_path, GOOD_PREDS, (["case_id", "label"], [["a", "normal"], ["b", "pnuemonia"]]))
    assert text.splitlines()[0] == (
        "labels.csv line 3 (case_id 'b'), column 'label': 'pnuemonia' is not one of the declared classes "
        "normal, pneumonia (the prob_ columns of predictions.csv), nor a class index 0..1"
    )
    assert "hint: correct the label" in text
    text = _error(tmp_path, GOOD_PREDS, (["case_id", "label"], [["a", "normal"], ["b", ""]]))
    assert "labels.csv line 3 (case_id 'b'), column 'label' is empty" in text


def test_error_no_case_id_in_common(tmp_path):
    text = _error(tmp_path, GOOD_PREDS, (["case_id", "label"], [["A1", "normal"], ["B1", "pneumonia"]]))
    assert "no case_id of" in text and "(e.g. 'a' vs 'A1')" in text
    assert "same case_id values" in text


@pytest.mark.parametrize(
    ("preds_rows", "expected"),
    [
        ((["id", "prob_normal", "prob_pneumonia"], [["a", 0.2, 0.8]]), "has no 'case_id' column (columns: id, prob_normal"),
        ((["case_id", "prob_pneumonia"], [["a", 0.8]]), "has 1 'prob_<class>' column(s)"),
        ((PRED_HEADER, [["a", 0.2, "high"]]), "predictions.csv line 2 (case_id 'a'), column 'prob_pneumonia': 'high' is not a probability in [0, 1]"),
        ((PRED_HEADER, [["a", 0.2, 1.8]]), "'1.8' is not a probability in [0, 1]"),
        ((PRED_HEADER, [["a", 0.2, 0.8], ["a", 0.3, 0.7]]), "predictions.csv lines 2 and 3 both have case_id 'a'; list each case once"),
        ((PRED_HEADER, [["a", 0.2, 0.8, 9]]), "predictions.csv line 2 has 4 fields but the header has 3"),
        ((PRED_HEADER, [["", 0.2, 0.8]]), "predictions.csv line 2, column 'case_id' is empty"),
        ((PRED_HEADER + ["predicted"], [["a", 0.2, 0.8, "sick"], ["b", 0.7, 0.3, "normal"]]),
         "predictions.csv line 2 (case_id 'a'), column 'predicted': 'sick' is not one of the classes of its prob_ columns (normal, pneumonia)"),
        ((PRED_HEADER + ["threshold"], [["a", 0.2, 0.8, 0.5], ["b", 0.7, 0.3, 0.4]]),
         "predictions.csv: column 'threshold' holds different values (0.5 on line 2, 0.4 on line 3)"),
    ],
)
def test_error_bad_predictions(tmp_path, preds_rows, expected):
    labels = (["case_id", "label"], [["a", "pneumonia"], ["b", "normal"]])
    assert expected in _error(tmp_path, preds_rows, labels)


def test_error_missing_files(tmp_path):
    with pytest.raises(DataError, match="predictions file '.*nope.csv' does not exist"):
        evaluate_classification(tmp_path / "nope.csv", tmp_path / "labels.csv")
    preds = _write(tmp_path / "predictions.csv", *GOOD_PREDS)
    with pytest.raises(DataError, match="labels file '.*nolabels.csv' does not exist"):
        evaluate_classification(preds, tmp_path / "nolabels.csv")


def test_error_one_class_names_the_split(tmp_path):
    labels = (["case_id", "label", "split"], [["a", "normal", "test"], ["b", "normal", "test"]])
    text = _error(tmp_path, GOOD_PREDS, labels, split="test")
    assert text.splitlines()[0] == (
        "AUC is undefined on the test split: no case is 'pneumonia' (2 cases), so there is no pair "
        "of a positive and a negative case to rank"
    )
    err = None
    try:
        evaluate_classification(tmp_path / "predictions.csv", tmp_path / "labels.csv", split="test")
    except DataError as exc:
        err = exc
    assert err is not None and "--metrics accuracy" in err.hint_for("cli")
    report = evaluate_classification(tmp_path / "predictions.csv", tmp_path / "labels.csv",
                                     split="test", metrics=["accuracy", "specificity"], bootstrap=0)
    assert report.value("accuracy") == 0.5


def test_error_split_and_threshold_options(tmp_path):
    labels = (["case_id", "label"], [["a", "normal"], ["b", "pneumonia"]])
    assert "has no 'split' column to choose split 'test' from" in _error(tmp_path, GOOD_PREDS, labels, split="test")
    labels = (["case_id", "label", "split"], [["a", "normal", "val"], ["b", "pneumonia", "val"]])
    assert "has no row of split 'test' (splits found: val)" in _error(tmp_path, GOOD_PREDS, labels, split="test")
    three = (["case_id", "prob_a", "prob_b", "prob_c"], [["a", 0.2, 0.5, 0.3], ["b", 0.7, 0.2, 0.1]])
    labels = (["case_id", "label"], [["a", "b"], ["b", "a"]])
    assert "a threshold applies to binary and multi-label tasks" in _error(tmp_path, three, labels, threshold=0.3)
    ml_preds = (["case_id", "prob_x", "prob_y"], [["a", 0.2, 0.8], ["b", 0.7, 0.3]])
    ml_labels = (["case_id", "x", "y"], [["a", 1, "maybe"], ["b", 0, 1]])
    assert "labels.csv line 2 (case_id 'a'), column 'y': 'maybe' is not 0 or 1" in _error(tmp_path, ml_preds, ml_labels)
