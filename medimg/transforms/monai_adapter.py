"""Use a MONAI intensity transform from a medimg config, recorded in the history.

``- name: monai`` / ``transform: RandGaussianSmooth`` / ``sigma_x: [0.5, 1.0]`` ...

Only classes of ``monai.transforms`` are looked up (never an arbitrary import path), and
only MONAI's intensity transforms (``monai.transforms.intensity``) are accepted. Spatial
and shape-changing MONAI transforms are refused: their geometry would not be recorded
in medimg's history, so predictions could not be taken back to the scan's grid, and
images and labels would not move together. medimg's own ``orient``, ``resample``,
``random_affine``, ``random_crop``... cover those.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence
from typing import Any

import torch

from ..core.errors import TransformError
from ..core.sample import Sample, TransformRecord
from ._common import generator_seed, intensity_keys
from .base import TRANSFORMS, Transform

__all__ = ["MonaiTransform"]

_ALLOWED_MODULE = "monai.transforms.intensity."


@TRANSFORMS.register("monai")
class MonaiTransform(Transform):
    """Adapter for one MONAI array intensity transform, applied to intensity images.

    Random MONAI transforms get their seed from the ``torch.Generator`` passed to
    ``make_params`` (recorded as ``seed``), so runs and replays are reproducible.

    Args:
        transform: class name inside ``monai.transforms`` (e.g. ``"RandGaussianNoise"``,
            ``"RandAdjustContrast"``, ``"GaussianSmooth"``).
        keys: intensity images (every intensity image by default).
        **kwargs: the MONAI class's constructor arguments (plain data).

    Raises:
        TransformError: unknown name, a dictionary (``...d``) transform, or a spatial /
            shape-changing transform.
    """

    name = "monai"

    def __init__(self, transform: str, keys: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(keys)
        import monai.transforms as mt  # a core dependency; imported here to keep imports light
        cls = getattr(mt, str(transform), None)
        if not (inspect.isclass(cls) and issubclass(cls, mt.Transform)):
            import difflib

            names = [n for n in dir(mt) if inspect.isclass(getattr(mt, n)) and n[0].isupper()]
            close = difflib.get_close_matches(str(transform), names, n=3)
            raise TransformError(
                f"monai: '{transform}' is not a transform class of monai.transforms",
                hint=f"did you mean {' or '.join(close)}?" if close else "see monai.transforms' documentation",
            )
        if issubclass(cls, mt.MapTransform):
            raise TransformError(
                f"monai: '{transform}' is a dictionary transform; the adapter takes MONAI's array version",
                hint=f"use transform: {transform[:-1] if transform.endswith('d') else transform} and medimg's 'keys'",
            )
        from monai.transforms.traits import LazyTrait

        if issubclass(cls, LazyTrait) or not cls.__module__.startswith(_ALLOWED_MODULE):
            raise TransformError(
                f"monai: '{transform}' is not a MONAI intensity transform; spatial and "
                "shape-changing MONAI transforms are refused because medimg could not record their "
                "geometry, so predictions could not be inverted to the scan's grid",
                hint="use medimg's spatial transforms (orient, resample, random_affine, random_flip, random_crop...)",
            )
        try:
            self._transform = cls(**kwargs)
        except TypeError as exc:
            raise TransformError(
                f"monai: cannot build {transform} with {kwargs}: "
                + re.sub(r"^[\w.]*__init__\(\)\s*", "", str(exc)).replace("keyword argument", "parameter"),
                hint=f"{transform} takes: {_parameters(cls)}",
            ) from None
        self.transform = str(transform)
        self.kwargs = dict(kwargs)
        self.random = isinstance(self._transform, mt.Randomizable)

    def make_params(self, sample: Sample, generator: torch.Generator | None = None) -> dict[str, Any]:
        return {
            "transform": self.transform,
            "kwargs": self.kwargs,
            "keys": intensity_keys(self, sample),
            "seed": generator_seed(generator) % (2**32) if self.random else None,
        }

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        images = {}
        for i, k in enumerate(params["keys"]):
            im = sample[k]
            if params["seed"] is not None:
                self._transform.set_random_state(seed=(int(params["seed"]) + i) % (2**32))
            out = self._transform(im.data.clone())
            data = torch.as_tensor(out)
            if hasattr(data, "as_tensor"):  # MetaTensor -> plain tensor (no metadata on the hot path)
                data = data.as_tensor()
            if tuple(data.shape) != tuple(im.data.shape):
                raise TransformError(
                    f"monai: {self.transform} changed the shape of image '{k}' of case '{sample.case_id}' "
                    f"from {tuple(im.data.shape)} to {tuple(data.shape)}; only shape-preserving transforms are allowed"
                )
            images[k] = im.new(data)
        return sample.replace(images, TransformRecord(self.name, params, False))


def _parameters(cls: type) -> str:
    """A MONAI class's parameters as a config writes them: ``prob = 0.1, std = 0.1, dtype``
    (a default shown where it is plain data; no Python signature syntax)."""
    parts = []
    for p in inspect.signature(cls).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            parts.append(f"{p.name} (required)")
        elif p.default is None or isinstance(p.default, (bool, int, float, str)):
            parts.append(f"{p.name} = {json.dumps(p.default)}")
        else:
            parts.append(p.name)
    return ", ".join(parts) or "no parameters"
