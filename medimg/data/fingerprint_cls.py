"""The fingerprint of a classification data set (an npz, a manifest or class folders):
image shape, channels, class counts per split, intensity statistics per channel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.spec import DataSection
from .classification import load_classification
from .fingerprint_case import intensity_stats

__all__ = ["classification_fingerprint"]

#: Pixels (voxels) per channel sampled for the intensity statistics.
_SAMPLE = 200_000


def _counts(targets: Any, names: list[str], multilabel: bool) -> dict[str, int]:
    y = np.asarray(targets)
    if multilabel:
        return {n: int(y[:, i].sum()) for i, n in enumerate(names)}
    return {n: int((y == i).sum()) for i, n in enumerate(names)}


def classification_fingerprint(data: DataSection, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Shape, channels, class balance and intensities of classification data (read once)."""
    if progress:
        progress(0, 1)
    loaded = load_classification(data, Path.cwd())
    if progress:
        progress(1, 1)
    names = list(loaded.class_names)
    splits = {s: {"cases": len(v), "classes": _counts(v.targets, names, loaded.multilabel)}
              for s, v in loaded.splits.items()}
    train = loaded.splits["train"]
    x = train.images.numpy()
    rng = np.random.default_rng(0)
    intensity = []
    for c in range(x.shape[1]):
        v = x[:, c].ravel()
        intensity.append(intensity_stats(v if v.size <= _SAMPLE else rng.choice(v, _SAMPLE, replace=False)))
    counts = np.asarray(list(splits["train"]["classes"].values()), dtype=np.float64)
    warnings, errors = [], []
    shapes = {tuple(s.images.shape[1:]) for s in loaded.splits.values()}
    if len(shapes) > 1:
        errors.append(f"splits hold images of different shapes (channels, *spatial): {sorted(shapes)}")
    if len(train) < 2:
        warnings.append(f"a single training case ({train.case_ids[0]}): the plan rests on it alone (warned)")
    if counts.size and counts.min() == 0:
        empty = [n for n, k in splits["train"]["classes"].items() if k == 0]
        errors.append(f"class(es) {empty} have no training case")
    if "validation" not in loaded.splits:
        warnings.append("no validation split: the best checkpoint cannot be chosen on held-out data (warned)")
    return {
        "num_cases": sum(len(v) for v in loaded.splits.values()),
        "spatial_dims": loaded.spatial_dims,
        "channels": loaded.in_channels,
        "shape": [int(s) for s in x.shape[2:]],
        "median_shape": [float(s) for s in x.shape[2:]],
        "class_names": names,
        "multilabel": loaded.multilabel,
        "splits": splits,
        "imbalance": float(counts.max() / max(counts.min(), 1.0)) if counts.size else 1.0,
        "intensity": intensity,
        "warnings": warnings,
        "errors": errors,
    }
