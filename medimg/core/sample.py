"""The :class:`Sample`: named images, targets, a case id and the history of transforms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .image import Image

__all__ = ["Sample", "TransformRecord"]


@dataclass(frozen=True)
class TransformRecord:
    """One applied transform, as plain data: enough to invert or replay it.

    Attributes:
        name: registered transform name (e.g. ``"resample"``).
        params: the parameters actually used, including random draws and any geometry
            needed for the inverse (shapes, affines as nested lists). JSON-serialisable.
        spatial: whether it changed the grid (and so must be inverted to go back).
    """

    name: str
    params: dict[str, Any]
    spatial: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "spatial": self.spatial}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransformRecord":
        return cls(str(d["name"]), dict(d.get("params", {})), bool(d.get("spatial", False)))


@dataclass
class Sample:
    """One case: named images on a common grid, targets, and what was done to them.

    Attributes:
        images: e.g. ``{"image": Image(kind="intensity"), "label": Image(kind="label")}``.
            Multi-sequence inputs are channels of one image (``"image"``) after loading.
        case_id: identifier used in file names and reports.
        targets: non-image targets (class index, regression values...).
        history: transforms applied so far, in order.
        meta: case-level metadata (source paths, subgroup attributes...).
    """

    images: dict[str, Image]
    case_id: str = ""
    targets: dict[str, Any] = field(default_factory=dict)
    history: list[TransformRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Image:
        try:
            return self.images[key]
        except KeyError:
            raise KeyError(
                f"case '{self.case_id}' has no image named '{key}' (has: {', '.join(self.images)})"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.images

    def replace(
        self,
        images: Mapping[str, Image] | None = None,
        record: TransformRecord | None = None,
        targets: Mapping[str, Any] | None = None,
    ) -> "Sample":
        """A new sample with images (merged by name) replaced and ``record`` appended."""
        new_images = dict(self.images)
        if images:
            new_images.update(images)
        return Sample(
            images=new_images,
            case_id=self.case_id,
            targets=dict(self.targets if targets is None else targets),
            history=[*self.history, *( [record] if record is not None else [])],
            meta=dict(self.meta),
        )
