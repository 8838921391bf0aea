"""``one_of``: apply one of several transforms, picked at random with weights.

The pick and the picked transform's own params are drawn from the same
``torch.Generator`` and recorded together, so the history replays and inverts like any
other record (the record's ``spatial`` flag is the picked transform's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..core.errors import MedimgError, TransformError
from ..core.image import Image
from ..core.sample import Sample, TransformRecord
from ._common import check_prob, param_error
from .base import TRANSFORMS, Compose, Transform

__all__ = ["OneOf"]


@TRANSFORMS.register("one_of")
class OneOf(Transform):
    """With probability ``prob``, apply one of ``transforms``, transform ``i`` picked with
    probability ``weights[i] / sum(weights)`` (equal weights by default).

    Args:
        transforms: transform specs (``{name: ..., **params}``, as in an ``augment`` list;
            from Python, transform instances too); at least one.
        weights: one non-negative weight per transform, not all 0.
        prob: probability of applying any of them at all.

    Params: ``applied``; when applied, ``index`` (the pick), ``name`` and ``params`` (the
    picked transform's own record).

    Example (config)::

        - name: one_of
          weights: [2, 1]
          transforms:
            - {name: random_blur, prob: 1.0}
            - {name: random_noise, prob: 1.0}
    """

    name = "one_of"
    random = True

    def __init__(
        self,
        transforms: Sequence[Mapping[str, Any]],
        weights: Sequence[float] | None = None,
        prob: float = 1.0,
    ) -> None:
        super().__init__(None)
        self.prob = check_prob(self.name, prob)
        if not transforms:
            raise param_error(self.name, "transforms", "is empty", "list at least one transform under transforms")
        self.transforms = [self._build(i, t) for i, t in enumerate(transforms)]
        w = [1.0] * len(self.transforms) if weights is None else [float(x) for x in weights]
        if len(w) != len(self.transforms) or any(x < 0 for x in w) or sum(w) <= 0:
            raise param_error(self.name, "weights", f"is {list(weights or [])}",
                              f"write weights: {len(self.transforms)} numbers >= 0, not all 0 (one per entry of "
                              "transforms), or leave it out for equal weights")
        self.weights = w

    @staticmethod
    def _build(i: int, spec: Mapping[str, Any] | Transform) -> Transform:
        if isinstance(spec, Compose):
            raise TransformError(f"one_of: transforms[{i}] is a list of transforms; give one transform per entry")
        if isinstance(spec, Transform):
            return spec
        try:
            return TRANSFORMS.build(spec)
        except MedimgError as exc:
            raise TransformError(f"one_of: transforms[{i}]: {str(exc).splitlines()[0]}",
                                 hint="see `medimg list transforms`") from exc

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        if float(torch.rand(1, generator=generator)) >= self.prob:
            return {"applied": False}
        w = torch.tensor(self.weights, dtype=torch.float64)
        i = int(torch.multinomial(w, 1, generator=generator))
        child = self.transforms[i]
        return {"applied": True, "index": i, "name": child.name, "params": child.make_params(sample, generator)}

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params["applied"]:
            return sample.replace(None, TransformRecord(self.name, params, False))
        child = self.transforms[int(params["index"])]
        out = child.apply(sample, params["params"])
        record = TransformRecord(self.name, params, bool(child.spatial))
        return dataclasses.replace(out, history=[*sample.history, record])

    @classmethod
    def invert_image(cls, image: Image, params: dict[str, Any]) -> Image:
        if not params.get("applied"):
            return image
        child = TRANSFORMS.get(params["name"])
        return child.invert_image(image, params["params"]) if child.spatial else image
