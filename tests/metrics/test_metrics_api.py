"""The public API of medimg.metrics is pinned: renaming or dropping a name is a decision."""

import medimg.metrics as metrics

EXPECTED = {
    "METRICS", "SegmentationMetric", "ConfusionCounts", "confusion_matrix", "confusion_counts",
    "dice_per_class", "jaccard_per_class", "surface_points", "surface_distances",
    "hausdorff_per_class", "assd_per_class", "nsd_per_class", "compute_metrics",
    "metric_params_defaults", "bootstrap_ci", "summarize", "CSV_COLUMNS", "DEFAULT_METRICS",
    "EvaluationReport", "case_id_from_path", "compute_case_metrics", "evaluate_folders",
    "find_cases", "load_label_names", "write_metrics_csv",
    # classification (medimg.metrics.classification has the per-metric functions)
    "CLASSIFICATION_METRICS", "ClassificationReport", "ThresholdChoice", "choose_threshold",
    "classification_metrics", "evaluate_classification",
    # lesion-wise metrics and paired comparison
    "LesionMatch", "match_lesions", "CompareReport", "compare_segmentation", "compare_classification",
    "paired_difference", "delong_test",
}


def test_public_names():
    assert set(metrics.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(metrics, name) is not None


def test_every_registered_metric_runs_and_is_documented():
    import numpy as np

    a = np.zeros((6, 6, 6), np.uint8)
    a[1:4, 1:4, 1:4] = 1
    b = np.roll(a, 1, axis=0)
    names = metrics.METRICS.list()
    out = metrics.compute_metrics(a, b, [1], names, spacing=(1.0, 1.0, 2.0))[1]
    assert set(out) == set(names)
    for name in names:
        m = metrics.METRICS.get(name)
        assert m.description and m.unit in ("", "mm", "ml")
        assert isinstance(out[name], float)
