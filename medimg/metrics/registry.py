"""The metrics registry: :data:`METRICS` by name, and :func:`compute_metrics` for one case.

Each :class:`SegmentationMetric` reads shared, lazily computed quantities of one
(pred, ref) pair (confusion counts, surface distances), so scoring several metrics and
classes costs one bincount and one surface pass per label map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.registry import Registry
from ._inputs import check_same_shape, to_label_array
from .overlap import ConfusionCounts, confusion_counts
from .surface import assd_from_distances, hd_from_distances, nsd_from_distances, surface_distances
from .surface_deepmind import SURFACE_DEFINITIONS, deepmind_distances, deepmind_metric

__all__ = ["METRICS", "SegmentationMetric", "compute_metrics", "metric_params_defaults", "resolve_params"]


class _Case:
    """Shared, lazily computed quantities of one (pred, ref) pair for several metrics."""

    def __init__(
        self,
        pred: np.ndarray,
        ref: np.ndarray,
        classes: Sequence[int],
        spacing: Sequence[float],
        empty_score: float,
        surface: str = "monai",
    ) -> None:
        if surface not in SURFACE_DEFINITIONS:
            raise ValueError(f"surface must be one of {', '.join(SURFACE_DEFINITIONS)}; got {surface!r}")
        self.pred = pred
        self.ref = ref
        self.classes = [int(c) for c in classes]
        self.spacing = tuple(float(s) for s in spacing)
        self.empty_score = float(empty_score)
        self._counts: ConfusionCounts | None = None
        self._dist: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
        self.surface = surface
        #: Per-case results other metric modules share between metrics (lesions...).
        self.cache: dict[Any, Any] = {}

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def counts(self, c: int) -> tuple[int, int, int, int]:
        if self._counts is None:
            k = max(self.classes + [0]) + 1
            k = max(k, int(self.pred.max(initial=0)) + 1, int(self.ref.max(initial=0)) + 1)
            self._counts = confusion_counts(self.pred, self.ref, k)
        cc = self._counts
        return int(cc.tp[c]), int(cc.fp[c]), int(cc.fn[c]), int(cc.tn[c])

    def distances(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        if self._dist is None:
            self._dist = surface_distances(self.pred, self.ref, self.classes, self.spacing)
        return self._dist[c]

    def surface_metric(self, name: str, c: int, tolerance_mm: float = 2.0) -> float:
        """``hd``, ``hd95``, ``assd`` or ``nsd`` of class ``c`` by the chosen definition."""
        if self.surface == "deepmind":
            key = ("deepmind", c)
            if key not in self.cache:
                self.cache[key] = deepmind_distances(self.pred == c, self.ref == c, self.spacing)
            tp, fp, fn, _ = self.counts(c)
            return deepmind_metric(name, self.cache[key], tp + fp == 0, tp + fn == 0,
                                   tolerance_mm=tolerance_mm, empty_score=self.empty_score)
        d = self.distances(c)
        if name in ("hd", "hd95"):
            return hd_from_distances(d, None if name == "hd" else 95.0)
        if name == "assd":
            return assd_from_distances(d)
        return nsd_from_distances(d, tolerance_mm, self.empty_score)


@dataclass(frozen=True)
class SegmentationMetric:
    """A named per-class segmentation metric.

    Attributes:
        name: registry name, also the ``metric`` column of reports.
        fn: ``fn(case, class_index, **params) -> float`` (internal case object).
        unit: ``""`` (a ratio), ``"mm"`` or ``"ml"``.
        higher_is_better: direction, for plots and model selection.
        defaults: parameters and their defaults (e.g. ``{"tolerance_mm": 2.0}``).
        description: one line for ``medimg list metrics``.
    """

    name: str
    fn: Callable[..., float]
    unit: str = ""
    higher_is_better: bool = True
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __call__(
        self,
        pred: np.ndarray | torch.Tensor,
        ref: np.ndarray | torch.Tensor,
        num_classes: int,
        spacing: Sequence[float] | None = None,
        empty_score: float = 1.0,
        **params: Any,
    ) -> np.ndarray:
        """This metric for every foreground class of one case.

        Example: ``METRICS.get("hd95")(pred, ref, 3, spacing=(0.8, 0.8, 2.5))``.

        Returns:
            float64 ``(num_classes,)``; ``[0]`` (background) is NaN.
        """
        classes = list(range(1, int(num_classes)))
        vals = compute_metrics(
            pred, ref, classes, [self.name], spacing=spacing,
            metric_params={self.name: params} if params else None, empty_score=empty_score,
        )
        out = np.full(int(num_classes), np.nan)
        for c in classes:
            out[c] = vals[c][self.name]
        return out


#: Segmentation metrics by name (``dice``, ``hd95``, ``nsd``...); see ``METRICS.list()``.
METRICS: Registry[SegmentationMetric] = Registry("metrics")


def _register(metric: SegmentationMetric) -> None:
    METRICS.register(metric.name, metric)


def _safe(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _m_dice(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _m_jaccard(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else tp / (tp + fp + fn)


def _m_precision(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else _safe(tp, tp + fp)


def _m_recall(case: _Case, c: int) -> float:
    tp, fp, fn, _ = case.counts(c)
    return case.empty_score if tp + fp + fn == 0 else _safe(tp, tp + fn)


def _m_specificity(case: _Case, c: int) -> float:
    _, fp, _, tn = case.counts(c)
    return _safe(tn, tn + fp)


def _m_volume(case: _Case, c: int) -> float:
    tp, fp, _, _ = case.counts(c)
    return (tp + fp) * case.voxel_ml


def _m_volume_ref(case: _Case, c: int) -> float:
    tp, _, fn, _ = case.counts(c)
    return (tp + fn) * case.voxel_ml


def _m_volume_diff(case: _Case, c: int) -> float:
    _, fp, fn, _ = case.counts(c)
    return (fp - fn) * case.voxel_ml


for _metric in (
    SegmentationMetric("dice", _m_dice, description="Dice coefficient 2|P∩R|/(|P|+|R|)"),
    SegmentationMetric("jaccard", _m_jaccard, description="Jaccard index (IoU) |P∩R|/|P∪R|"),
    SegmentationMetric("precision", _m_precision, description="positive predictive value TP/(TP+FP)"),
    SegmentationMetric("recall", _m_recall, description="sensitivity TP/(TP+FN)"),
    SegmentationMetric("specificity", _m_specificity, description="TN/(TN+FP) over the image"),
    SegmentationMetric(
        "hd", lambda case, c: case.surface_metric("hd", c), "mm", False,
        description="Hausdorff distance (max of both directed maxima), mm",
    ),
    SegmentationMetric(
        "hd95", lambda case, c: case.surface_metric("hd95", c), "mm", False,
        description="95th-percentile Hausdorff distance (max of the two directed q95), mm",
    ),
    SegmentationMetric(
        "assd", lambda case, c: case.surface_metric("assd", c), "mm", False,
        description="average symmetric surface distance (mean over both surfaces), mm",
    ),
    SegmentationMetric(
        "nsd",
        lambda case, c, tolerance_mm=2.0: case.surface_metric("nsd", c, tolerance_mm),
        defaults={"tolerance_mm": 2.0},
        description="normalised surface Dice at tolerance_mm (default 2 mm)",
    ),
    SegmentationMetric("volume_ml", _m_volume, "ml", description="predicted volume, ml"),
    SegmentationMetric("volume_ref_ml", _m_volume_ref, "ml", description="reference volume, ml"),
    SegmentationMetric(
        "volume_diff_ml", _m_volume_diff, "ml", False,
        description="predicted minus reference volume (signed), ml",
    ),
):
    _register(_metric)


def metric_params_defaults(name: str) -> dict[str, Any]:
    """The default parameters of metric ``name`` (did-you-mean error if unknown)."""
    return dict(METRICS.get(name).defaults)


def resolve_params(
    metrics: Sequence[str], metric_params: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for name in metrics:
        m = METRICS.get(name)
        params[m.name] = dict(m.defaults)
    for name, given in (metric_params or {}).items():
        m = METRICS.get(name)
        unknown = set(given) - set(m.defaults)
        if unknown:
            raise ValueError(
                f"metric '{m.name}' has no parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(m.defaults) or 'none'}"
            )
        params.setdefault(m.name, dict(m.defaults)).update(given)
    return params


def compute_metrics(
    pred: np.ndarray | torch.Tensor,
    ref: np.ndarray | torch.Tensor,
    classes: Sequence[int],
    metrics: Sequence[str] = ("dice",),
    spacing: Sequence[float] | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    empty_score: float = 1.0,
    surface: str = "monai",
) -> dict[int, dict[str, float]]:
    """Several metrics for several classes of one case, sharing the expensive steps.

    The confusion counts come from one bincount and the surfaces of all classes from one
    pass over each label map, whatever the number of metrics and classes.

    Args:
        pred: predicted label map ``(I, J, K)`` (or 2D), integer.
        ref: reference label map, same shape.
        classes: class indices to score (usually ``1..K-1``).
        metrics: names registered in :data:`METRICS`.
        spacing: mm per voxel along each axis (1 if None): distances in mm, volumes in ml.
        metric_params: per-metric parameters, e.g. ``{"nsd": {"tolerance_mm": 1.0}}``.
        empty_score: overlap score where a class is absent from both (module docstring).
        surface: surface-distance definitions, ``"monai"`` (default) or ``"deepmind"``
            (the ``surface-distance`` package's, :mod:`medimg.metrics.surface_deepmind`).

    Returns:
        ``{class: {metric: value}}`` with NaN / inf as documented for empty masks.
    """
    check_same_shape(pred, ref)
    p = to_label_array(pred, "pred")
    r = to_label_array(ref, "ref")
    nd = p.ndim
    sp = tuple([1.0] * nd) if spacing is None else tuple(float(s) for s in spacing)
    if len(sp) != nd:
        raise ValueError(f"spacing must have {nd} values (mm per axis), got {list(sp)}")
    params = resolve_params(metrics, metric_params)
    case = _Case(p, r, classes, sp, empty_score, surface)
    out: dict[int, dict[str, float]] = {}
    for c in case.classes:
        if c < 0:
            raise ValueError(f"class indices must be >= 0, got {c}")
        row: dict[str, float] = {}
        for name in metrics:
            m = METRICS.get(name)
            row[m.name] = float(m.fn(case, c, **params[m.name]))
        out[c] = row
    return out
