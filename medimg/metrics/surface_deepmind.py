"""Surface distances as DeepMind's ``surface-distance`` package defines them.

``medimg evaluate --surface-distance deepmind`` (``surface="deepmind"`` in the Python API)
scores ``hd``, ``hd95``, ``assd`` and ``nsd`` with the package itself
(``pip install medimg[surface]``), for results comparable with papers that used it
(Nikolov et al. 2021). The default, ``monai``, is :mod:`medimg.metrics.surface`.

What differs from MONAI's definitions: the surface is made of *surfels* (the faces
between voxels, built by marching cubes on the 2x2x2 neighbourhoods), each weighted by its
area in mm²; distances go from each surfel to the nearest surface point of the other mask
through a distance transform. Hence:

* ``hd`` / ``hd95``: ``compute_robust_hausdorff(d, 100 / 95)``: the larger of the two
  directed *area-weighted* percentiles;
* ``nsd``: ``compute_surface_dice_at_tolerance(d, tolerance_mm)``: the area of both
  surfaces within tolerance over their total area;
* ``assd``: the area-weighted mean of the distances of both surfaces,
  ``(Σ a_P d_P + Σ a_R d_R) / (Σ a_P + Σ a_R)`` (the package itself returns the two
  directed means, ``compute_average_surface_distance``).

Empty masks follow medimg's conventions (:mod:`medimg.metrics.segmentation`), decided
before the package is called: both empty give NaN distances and ``empty_score`` NSD, one
empty gives inf distances and NSD 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import MissingDependencyError

__all__ = ["SURFACE_DEFINITIONS", "deepmind_distances", "deepmind_metric"]

#: The surface-distance definitions offered: ``monai`` (default) and ``deepmind``.
SURFACE_DEFINITIONS: tuple[str, ...] = ("monai", "deepmind")


def _package() -> Any:
    try:
        from surface_distance import metrics
    except ImportError:
        raise MissingDependencyError(
            "surface distances of the 'deepmind' definition need the surface-distance package, "
            "which is not installed",
            hint="pip install 'medimg[surface]' (or surface-distance), or use the default "
            "surface='monai'",
            cli_hint="pip install 'medimg[surface]', or leave --surface-distance at monai",
        ) from None
    return metrics


def deepmind_distances(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]
) -> dict[str, np.ndarray] | None:
    """The package's ``compute_surface_distances(ref, pred, spacing)`` of two boolean masks.

    None when either mask is empty (the conventions decide, see the module docstring).
    """
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if not pred.any() or not ref.any():
        return None
    return _package().compute_surface_distances(ref, pred, tuple(float(s) for s in spacing))


def deepmind_metric(
    name: str,
    d: dict[str, np.ndarray] | None,
    pred_empty: bool,
    ref_empty: bool,
    *,
    tolerance_mm: float = 2.0,
    empty_score: float = 1.0,
) -> float:
    """``hd``, ``hd95``, ``assd`` or ``nsd`` from :func:`deepmind_distances`' result."""
    if d is None:
        if pred_empty and ref_empty:
            return float(empty_score) if name == "nsd" else math.nan
        return 0.0 if name == "nsd" else math.inf
    m = _package()
    if name == "hd":
        return float(m.compute_robust_hausdorff(d, 100))
    if name == "hd95":
        return float(m.compute_robust_hausdorff(d, 95))
    if name == "nsd":
        return float(m.compute_surface_dice_at_tolerance(d, float(tolerance_mm)))
    if name == "assd":
        dr, dp = d["distances_gt_to_pred"], d["distances_pred_to_gt"]
        ar, ap = d["surfel_areas_gt"], d["surfel_areas_pred"]
        return float((np.sum(dr * ar) + np.sum(dp * ap)) / (np.sum(ar) + np.sum(ap)))
    raise ValueError(f"no deepmind definition of surface metric '{name}'")
