"""Per-axis values must have one entry per spatial axis of the experiment.

Checked on the config's data alone (no registry, no torch), so ``config validate
--schema-only`` reports them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.builder import KeyPath
from ..core.spec import ExperimentConfig

__all__ = ["PER_AXIS_PARAMS", "check_dimensions"]

#: Transform parameters holding one value per spatial axis, and the unit of the values.
PER_AXIS_PARAMS: dict[str, str] = {
    "spacing": "mm",
    "roi_size": "voxels",
    "size": "voxels",
    "spatial_size": "voxels",
    "patch_size": "voxels",
}


def _axes(n: int) -> str:
    return {2: "H, W", 3: "I, J, K"}.get(n, ", ".join(f"axis {i}" for i in range(n)))


def check_dimensions(cfg: ExperimentConfig | Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    """Per-axis values must have one entry per spatial axis of the experiment.

    The number of spatial axes is ``model.spatial_dims`` when given, else the length
    of ``inference.roi_size``. Checked: ``inference.roi_size`` and the per-axis
    parameters of every transform (:data:`PER_AXIS_PARAMS`, e.g. ``spacing``).
    ``cfg`` may be raw config data (then malformed parts are skipped).
    """
    if isinstance(cfg, ExperimentConfig):
        model_params: Mapping[str, Any] = cfg.model.params
        roi: Any = cfg.inference.roi_size
        transforms = [
            (section, i, spec.params)
            for section in ("preprocess", "augment")
            for i, spec in enumerate(getattr(cfg, section))
        ]
    else:
        def section(key: str) -> Any:
            return cfg.get(key) if isinstance(cfg.get(key), Mapping) else {}

        model_params = section("model")
        roi = section("inference").get("roi_size", [96, 96, 96])
        transforms = [
            (sec, i, item)
            for sec in ("preprocess", "augment")
            if isinstance(cfg.get(sec), list)
            for i, item in enumerate(cfg[sec])
            if isinstance(item, Mapping)
        ]
    problems: list[tuple[KeyPath, str]] = []
    sd = model_params.get("spatial_dims")
    ndim = sd if isinstance(sd, int) and not isinstance(sd, bool) and sd in (2, 3) else None
    if not isinstance(roi, (list, tuple)):
        if ndim is None:
            return problems
    elif ndim is None:
        ndim = len(roi)
    elif len(roi) != ndim:
        problems.append(
            (
                ("inference", "roi_size"),
                f"expected {ndim} values (voxels for {_axes(ndim)}; model.spatial_dims is {ndim}), "
                f"got {len(roi)}",
            )
        )
    for sec, i, params in transforms:
        for key, unit in PER_AXIS_PARAMS.items():
            value = params.get(key)
            if isinstance(value, (list, tuple)) and len(value) != ndim:
                problems.append(
                    ((sec, i, key), f"expected {ndim} values ({unit} for {_axes(ndim)}), got {len(value)}")
                )
    return problems


