"""Segmentation metrics: overlap, volume and surface distances, per class, in one pass each.

Conventions:
    * ``pred`` and ``ref`` are integer label maps of the same spatial shape (any number of
      dimensions, usually ``(I, J, K)``), numpy arrays or torch tensors, values in
      ``[0, num_classes)``. Class 0 is background.
    * Surface distances are in millimetres: voxel indices are scaled by ``spacing`` (mm per
      voxel along each array axis, e.g. :attr:`medimg.core.Image.spacing`).

Definitions (chosen to give the same numbers as MONAI 1.6.1, ``monai.metrics``):
    * **Surface voxels** of class ``c``: voxels of class ``c`` that have at least one
      face neighbour (6-neighbourhood in 3D, 4 in 2D) of another class or outside the
      image. This is ``mask ^ scipy.ndimage.binary_erosion(mask)`` with the default cross
      structure and zero border, as in ``monai.metrics.utils.get_mask_edges`` (``crop=True``,
      no sub-voxel areas). Distances are between surface-voxel centres.
    * **Directed distances** ``d(P->R)``: for each surface voxel of ``pred``, the Euclidean
      distance (mm) to the nearest surface voxel of ``ref`` (exact, via a KD-tree), and
      vice versa.
    * **HD** = ``max(max d(P->R), max d(R->P))``. **HD95** = the larger of the two directed
      95th percentiles, ``max(q95(d(P->R)), q95(d(R->P)))`` with linear interpolation between
      order statistics, as ``monai.metrics.compute_hausdorff_distance(percentile=95,
      directed=False)`` does (``hausdorff_distance.py``: ``torch.max`` over the per-direction
      ``torch.quantile``). This is *not* the 95th percentile of the pooled distances
      (medpy's convention, which can differ a lot).
    * **ASSD** (average symmetric surface distance) = the mean of the *concatenated*
      directed distances, ``mean(d(P->R) ++ d(R->P))``, as
      ``compute_average_surface_distance(symmetric=True)`` (``torch.cat`` then ``mean``);
      i.e. each surface voxel weighs the same, not each direction.
    * **NSD** (normalised surface Dice, Nikolov et al. 2021) at tolerance ``tau`` mm =
      ``(#{d(P->R) <= tau} + #{d(R->P) <= tau}) / (|S_P| + |S_R|)`` counted over surface
      voxels, as ``compute_surface_dice(use_subvoxels=False)``.

Empty masks (a class absent from ``pred``, ``ref`` or both), documented once here:

    ============  ==================  ==================  =====================
    metric        both empty          pred empty only     ref empty only
    ============  ==================  ==================  =====================
    dice/jaccard  ``empty_score``     0                   0
    nsd           ``empty_score``     0                   0
    precision     ``empty_score``     NaN (0/0)           0
    recall        ``empty_score``     0                   NaN (0/0)
    hd/hd95/assd  NaN                 inf                 inf
    volumes       0                   defined             defined
    ============  ==================  ==================  =====================

``empty_score`` defaults to 1.0 (both agree that the structure is absent: a perfect
answer); pass ``float("nan")`` to exclude such cases from averages instead (command line:
``medimg evaluate --empty nan``; config: ``evaluation.empty_score``). The lesion-wise
metrics (:mod:`medimg.metrics.lesions`) follow the same table, and
``surface="deepmind"`` (``--surface-distance deepmind``) swaps the surface-distance
definitions for the ``surface-distance`` package's (:mod:`medimg.metrics.surface_deepmind`)
with the same empty-mask conventions. MONAI's
``DiceMetric`` gives 1 there with ``ignore_empty=False`` and NaN with its default
``ignore_empty=True``, which also turns a false-positive class (empty reference, non-empty
prediction) into NaN where medimg says 0. Its surface metrics give NaN for both empty and
inf (HD, ASSD) or 0 (NSD) for one empty, as here, except HD95, which comes out NaN for one
empty mask (``torch.quantile`` of all-inf distances); medimg says inf, like HD. Reports keep NaN and inf
rows and leave them out of means, with a count of how many values contributed.
"""

from .overlap import (
    ConfusionCounts,
    confusion_counts,
    confusion_matrix,
    dice_per_class,
    jaccard_per_class,
)
from .registry import METRICS, SegmentationMetric, compute_metrics, metric_params_defaults
from .surface import (
    assd_per_class,
    hausdorff_per_class,
    nsd_per_class,
    surface_distances,
    surface_points,
)

__all__ = [
    "METRICS",
    "SegmentationMetric",
    "ConfusionCounts",
    "confusion_matrix",
    "confusion_counts",
    "dice_per_class",
    "jaccard_per_class",
    "surface_points",
    "surface_distances",
    "hausdorff_per_class",
    "assd_per_class",
    "nsd_per_class",
    "compute_metrics",
    "metric_params_defaults",
]
