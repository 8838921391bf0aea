"""Cases on disk -> preprocessed samples -> seeded training patches; patient-grouped splits."""

from .datasets import CaseDataset, PatchDataset, collate, sample_to_dict, seeded_generator
from .fold_sources import FoldTable, fold_table
from .folds import (
    apply_fold,
    apply_fold_classification,
    assign_folds,
    read_split_file,
    write_split_file,
)
from .loading import check_same_grid, load_sample
from .records import SPLITS, CaseRecord, load_cases
from .split import grouped_split
from .synthetic import make_synthetic_segmentation

__all__ = [
    "CaseRecord",
    "SPLITS",
    "load_cases",
    "load_sample",
    "check_same_grid",
    "CaseDataset",
    "PatchDataset",
    "collate",
    "sample_to_dict",
    "seeded_generator",
    "grouped_split",
    "assign_folds",
    "apply_fold",
    "apply_fold_classification",
    "read_split_file",
    "write_split_file",
    "fold_table",
    "FoldTable",
    "make_synthetic_segmentation",
]
