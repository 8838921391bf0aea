"""Cases on disk -> preprocessed samples -> seeded training patches; patient-grouped splits."""

from .datasets import CaseDataset, PatchDataset, collate, sample_to_dict, seeded_generator
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
    "make_synthetic_segmentation",
]
