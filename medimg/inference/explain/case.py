"""Explain one case: preprocess as for prediction, Grad-CAM, back to the input's grid, write.

The heat map goes back through the recorded preprocessing exactly as the
:class:`~medimg.inference.Predictor` sends probabilities back (``invert_history`` on a
one-channel ``Image(kind="probabilities")``), so it lies on the grid of the image that was
read: same shape, same affine. Files written into ``out_dir`` (``CASE`` is the case id):

- 2D: ``CASE_gradcam.png``, the overlay;
- 3D: ``CASE_gradcam.nii.gz`` (the heat map, float32 in [0, 1], with the input's affine)
  and ``CASE_gradcam.png`` (three orthogonal slices through the map's maximum).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...core.errors import GeometryError, TransformError
from ...core.image import Image
from ...core.sample import Sample
from ...transforms import Compose, Transform, invert_history
from ...transforms.build import build_transforms
from .cam import grad_cam_scores

__all__ = ["Explanation", "explain_image", "heatmap_files"]

PreprocessLike = Compose | Sequence[Transform] | Sequence[Mapping[str, Any]] | None


@dataclass
class Explanation:
    """The Grad-CAM of one case.

    Attributes:
        case_id: the name the files carry.
        heatmap: ``Image(kind="probabilities")`` ``(1, *spatial)`` float32 in [0, 1], on
            the input's grid (shape and affine).
        target: index of the class explained.
        class_name: its name (the index as text when no names were given).
        probability: the model's probability for that class (softmax over the outputs;
            sigmoid for a one-output or multi-label model).
        probabilities: every class's probability, in output order.
        layer: the layer read.
        files: what was written, in order.
    """

    case_id: str
    heatmap: Image
    target: int
    class_name: str
    probability: float
    probabilities: list[float]
    layer: str
    files: list[Path] = field(default_factory=list)


def heatmap_files(case_id: str, spatial_ndim: int) -> list[str]:
    """The names :func:`explain_image` writes for a case (see the module docstring)."""
    base = f"{case_id}_gradcam"
    return [f"{base}.png"] if spatial_ndim == 2 else [f"{base}.nii.gz", f"{base}.png"]


def _preprocessing(preprocess: PreprocessLike) -> Compose:
    """A deterministic Compose acting on the image only (a transform of the label alone is
    left out, as at prediction).

    Raises:
        TransformError: a random transform.
        ConfigError: a plain spec that does not build.
    """
    if preprocess is None:
        return Compose([])
    items = list(preprocess)
    if items and all(isinstance(t, Mapping) or hasattr(t, "model_dump") for t in items):
        return _image_only(build_transforms(items, "preprocess", deterministic=True))
    flat: list[Transform] = []
    for t in items:
        flat.extend(t if isinstance(t, Compose) else [t])
    random = [t.name for t in flat if getattr(t, "random", False)]
    if random:
        raise TransformError(
            f"preprocess: '{random[0]}' is a random transform; an explanation needs deterministic "
            "preprocessing (the one prediction uses)",
            hint="leave augmentation out of the preprocessing given to explain_image",
        )
    return _image_only(Compose(flat))


def _image_only(transforms: Compose) -> Compose:
    """Each transform restricted to the ``image`` key (dropped when it acts on others only)."""
    kept: list[Transform] = []
    for t in transforms:
        if t.keys is not None and "image" not in t.keys:
            continue
        if t.keys is not None and t.keys != ("image",):
            t = copy.copy(t)
            t.keys = ("image",)
        kept.append(t)
    return Compose(kept)


def _probabilities(logits: torch.Tensor, multi_label: bool) -> list[float]:
    """Per-class probabilities of one case's logits ``(K,)``."""
    if multi_label or logits.numel() == 1:
        return [float(p) for p in torch.sigmoid(logits)]
    return [float(p) for p in torch.softmax(logits, dim=0)]


def _on_input_grid(heat: torch.Tensor, pre: Sample, source: Image, case_id: str) -> Image:
    """The heat map ``(*spatial)`` on the preprocessed grid, sent back to ``source``'s grid."""
    back = invert_history(Image(heat[None], pre["image"].affine, kind="probabilities"), pre.history)
    if not back.same_grid(source):
        raise GeometryError(
            f"case '{case_id}': inverting the preprocessing gave grid {back.spatial_shape}, expected "
            f"the input's {source.spatial_shape}",
            hint="a preprocessing transform does not invert exactly; report this as a bug",
        )
    data = back.data.float().clamp_(0.0, 1.0)
    return Image(data, source.affine.copy(), kind="probabilities", meta={"case_id": case_id})


def _title(name: str, probability: float, case_id: str) -> str:
    return f"{case_id}: Grad-CAM for '{name}'  (p = {probability:.3f})"


def _write(expl: Explanation, source: Image, out_dir: Path, channel: int) -> list[Path]:
    """Write the case's files (module docstring); returns their paths."""
    from .figures import overlay_2d, slices_3d

    out_dir.mkdir(parents=True, exist_ok=True)
    names = heatmap_files(expl.case_id, source.spatial_ndim)
    image = source.data[channel].float().numpy()
    heat = expl.heatmap.data[0].numpy()
    title = _title(expl.class_name, expl.probability, expl.case_id)
    if source.spatial_ndim == 2:
        return [overlay_2d(image, heat, title, out_dir / names[0])]
    from ...io import write_image

    nifti = write_image(expl.heatmap, out_dir / names[0])
    return [nifti, slices_3d(image, heat, source.affine, title, out_dir / names[1])]


def explain_image(
    model: nn.Module,
    image: Image,
    out_dir: str | os.PathLike | None,
    *,
    preprocess: PreprocessLike = None,
    class_names: Sequence[str] | None = None,
    target_class: int | None = None,
    layer: str | None = None,
    case_id: str | None = None,
    multi_label: bool = False,
    channel: int = 0,
) -> Explanation:
    """Grad-CAM of one image, on the image's own grid, written as files.

    Args:
        model: a classifier mapping ``(1, C, *spatial)`` to logits ``(1, K)``; not changed.
        image: the case as :func:`medimg.io.read_image` gives it, ``(C, *spatial)``.
        out_dir: folder for the files (module docstring); None: write nothing.
        preprocess: the deterministic preprocessing prediction uses: a
            :class:`~medimg.transforms.Compose`, a list of transforms, or plain specs
            ``{"name": ..., **params}`` (a checkpoint's ``InferenceSpec.preprocess``).
        class_names: one name per model output, for the title.
        target_class: the class to explain; None: the predicted one.
        layer: the layer to read; None: ``model.cam_layer``.
        case_id: names the files; default the image's ``meta["case_id"]``, else ``"case"``.
        multi_label: probabilities by sigmoid per output instead of softmax.
        channel: the input channel drawn under the heat map.

    Raises:
        ConfigError: see :func:`grad_cam`; TransformError: random preprocessing;
        MissingDependencyError: matplotlib is not installed (only when writing).
    """
    case = str(case_id or image.meta.get("case_id") or "case")
    source = image if torch.is_floating_point(image.data) else image.new(image.data.float())
    pre = _preprocessing(preprocess)(Sample(images={"image": source.new(kind="intensity")}, case_id=case))
    result = grad_cam_scores(model, pre["image"].data[None], target_class, layer)
    target = result.target[0]
    probs = _probabilities(result.logits[0], multi_label)
    names = list(class_names) if class_names is not None else None
    expl = Explanation(
        case_id=case,
        heatmap=_on_input_grid(result.heatmap[0], pre, source, case),
        target=target,
        class_name=names[target] if names is not None and target < len(names) else str(target),
        probability=probs[target],
        probabilities=probs,
        layer=result.layer,
    )
    if out_dir is not None:
        expl.files = _write(expl, source, Path(out_dir), channel)
    return expl
