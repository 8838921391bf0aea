"""The public API, pinned: ``medimg.__all__`` and every subpackage's (docs/architecture.md §6.1).

A name added to or removed from a package's ``__all__`` is an API change: update the set
here in the same commit, on purpose. Also: the package is typed (``py.typed``), every
pinned name resolves, and no public function takes a parameter named ``input`` (it
shadows the builtin; say what the input is: ``path``, ``source``...).
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PUBLIC_API: dict[str, set[str]] = {
    "medimg": {
        "__version__", "Image", "Sample", "TransformRecord", "Registry", "MedimgError",
        "read_image", "write_image", "find_series", "load_config", "train", "Predictor",
        "predict_folder", "evaluate_folders",
    },
    "medimg.core": {
        "Image", "KINDS", "Sample", "TransformRecord", "Registry",
        "MedimgError", "ConfigError", "UnknownComponentError", "ImageReadError", "ImageWriteError",
        "DicomError", "DicomSeriesError", "GeometryError", "DataError", "TransformError",
        "CheckpointError", "MissingDependencyError", "PacsError",
        "GRID_ATOL_MM", "affines_close", "axcodes_from_affine", "direction_from_affine", "lps_to_ras",
        "make_affine", "orientation_transform", "origin_from_affine", "ras_to_lps",
        "reoriented_affine", "scaled_affine", "spacing_from_affine",
    },
    "medimg.io": {
        "read_image", "write_image", "read_nifti", "write_nifti", "SUPPORTED_FORMATS",
        "find_series", "read_dicom", "convert_dicom", "SeriesInfo",
        "read_dicom_seg", "write_dicom_seg", "deidentify", "read_raster",
    },
    "medimg.transforms": {
        "Compose", "CropForeground", "MapLabels", "MonaiTransform", "NormalizeIntensity", "Orient",
        "RandomAffine", "RandomCrop", "RandomFlip", "RandomIntensity", "Resample", "Resize",
        "ScaleIntensityRange", "SpatialPad", "TRANSFORMS", "Transform", "build_compose",
        "build_transform", "build_transforms", "functional", "invert_history", "invert_image",
        "RandomElastic", "RandomNoise", "RandomBlur", "RandomBrightness", "RandomContrast",
        "RandomGamma", "RandomLowResolution", "RandomBiasField", "RandomMotion", "RandomGhosting",
        "OneOf",
    },
    "medimg.data": {
        "CaseDataset", "CaseRecord", "PatchDataset", "SPLITS", "check_same_grid", "collate",
        "grouped_split", "load_cases", "load_sample", "make_synthetic_segmentation",
        "sample_to_dict", "seeded_generator", "assign_folds", "apply_fold", "apply_fold_classification",
        "read_split_file", "write_split_file", "fold_table", "FoldTable",
    },
    "medimg.models": {
        "MODELS", "create_model", "model_summary", "TASKS", "model_task", "WeightsReport", "load_weights",
    },
    "medimg.losses": {"LOSSES", "create_loss", "loss_task"},
    "medimg.metrics": {
        "CSV_COLUMNS", "ConfusionCounts", "DEFAULT_METRICS", "EvaluationReport", "METRICS",
        "SegmentationMetric", "assd_per_class", "bootstrap_ci", "case_id_from_path",
        "compute_case_metrics", "compute_metrics", "confusion_counts", "confusion_matrix",
        "dice_per_class", "evaluate_folders", "find_cases", "hausdorff_per_class",
        "jaccard_per_class", "load_label_names", "metric_params_defaults", "nsd_per_class",
        "summarize", "surface_distances", "surface_points", "write_metrics_csv",
        "CLASSIFICATION_METRICS", "ClassificationReport", "ThresholdChoice", "choose_threshold",
        "classification_metrics", "evaluate_classification",
        "LesionMatch", "match_lesions", "CompareReport", "compare_segmentation", "compare_classification",
        "paired_difference", "delong_test",
        "SubgroupReport", "fit_temperature", "subgroup_analysis",
    },
    "medimg.metrics.classification": {
        "CLASSIFICATION_METRICS", "METRICS_CSV_COLUMNS", "TASKS", "ClassificationReport",
        "ThresholdChoice", "accuracy", "auc", "balanced_accuracy", "choose_threshold",
        "classification_metrics", "confusion_matrix", "evaluate_classification", "f1", "npv",
        "ppv", "predict_labels", "roc_curve", "sensitivity", "specificity",
        "CALIBRATION_METRICS", "ECE_BINS", "SubgroupReport", "brier", "ece", "fit_temperature", "nll",
        "subgroup_analysis",
    },
    "medimg.engine": {
        "BestModelCheckpoint", "Callback", "EarlyStopping", "FitState", "History", "StopAgreement",
        "TimeBudget", "DistInfo", "OPTIMIZERS", "SCHEDULERS", "TrainResult", "Trainer", "build_model",
        "load_checkpoint", "model_params_for", "save_checkpoint", "seed_everything", "train",
        "validation_metrics", "CalibrationResult", "calibrate_run", "cross_validate", "CVResult",
        "FoldResult", "TensorBoardLogger", "model_card",
    },
    "medimg.inference": {
        "BatchReport", "InferenceSpec", "Predictor", "build_model", "export_checkpoint", "ExportReport",
        "load_predictor",
        "find_cases", "gaussian_importance", "load_checkpoint", "predict_folder", "resolve_device",
        "save_checkpoint", "sliding_window", "tile_starts",
    },
    "medimg.inference.explain": {
        "CamResult", "EXPLANATIONS_CSV", "ExplainReport", "Explanation", "cam_layers", "explain_folder",
        "explain_image", "grad_cam", "grad_cam_scores", "heatmap_files", "resolve_layer",
    },
    "medimg.config": {
        "ComponentSpec", "DataSection", "ENVIRONMENT", "EvaluationSection", "ExperimentConfig",
        "ExperimentSection", "InferenceSection", "LEADING_ARGS", "ORIGINAL_CONFIG", "REGISTRY_KINDS",
        "RESOLVED_CONFIG", "TrainerSection", "apply_overrides", "build_component", "build_transforms",
        "check_components", "check_dimensions", "check_spec", "collect_environment", "config_to_dict",
        "dump_config", "format_key", "format_problems", "get_registry", "load_config", "parse_override",
        "prepare_run_dir", "run_dir_for", "save_config",
    },
    "medimg.cli": {"app", "main"},
}

#: Public functions (by name) that still take a parameter named ``input`` (issue 6, item 6
#: asks for none). This list may only shrink: a new offender fails the test below; remove a
#: name once its function is renamed.
KNOWN_INPUT_PARAMETERS: set[str] = set()


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_all_is_pinned(package: str):
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"{package}.__all__ lists a name twice"
    assert set(names) == PUBLIC_API[package], (
        f"{package}.__all__ changed: added {sorted(set(names) - PUBLIC_API[package])}, "
        f"removed {sorted(PUBLIC_API[package] - set(names))}; update PUBLIC_API on purpose"
    )


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_every_public_name_resolves(package: str):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"
    assert set(module.__all__) <= set(dir(module))


def _public_functions():
    for package in sorted(PUBLIC_API):
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            targets = [obj]
            if inspect.isclass(obj):
                targets = [getattr(obj, m) for m, v in vars(obj).items()
                           if not m.startswith("_") and inspect.isfunction(v)]
                targets.append(obj.__init__)
            for target in targets:
                if callable(target):
                    yield target


def test_no_public_parameter_named_input():
    offenders = set()
    for fn in _public_functions():
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        if "input" in params:
            offenders.add(getattr(fn, "__qualname__", repr(fn)))
    new = offenders - KNOWN_INPUT_PARAMETERS
    assert not new, f"public functions with a parameter named 'input' (shadows the builtin): {sorted(new)}"


def test_package_is_typed():
    assert (REPO / "medimg" / "py.typed").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["medimg"]
    assert "py.typed" in shipped, "py.typed must ship in the wheel (package-data)"
    assert any(p.startswith("configs/") for p in shipped)
