"""The :class:`Predictor`: one case in, a label map on the case's own grid out.

Pipeline (docs/architecture.md §2): load channels -> deterministic preprocessing, recorded ->
sliding window over batched tiles, Gaussian blend -> optional flip TTA -> softmax
probabilities -> inverse of the recorded preprocessing *on the probabilities* (as
nnU-Net does before argmax: resampling one-hot probabilities, never label values) ->
argmax -> ``Image(kind="label")`` with the source's shape and affine exactly.

Training validates with this same class, so what is measured is what ships.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.errors import CheckpointError, ConfigError, GeometryError
from ..core.image import Image
from ..core.sample import Sample
from ..core.spec import InferenceSpec
from ..data.classification import unit_scaled
from ..transforms import Compose, Transform
from ..transforms.build import build_transforms
from .checkpoint import (
    build_model,
    inference_spec,
    load_checkpoint,
    model_in_channels,
    model_out_channels,
)
from .labelmaps import inverted as _inverted
from .labelmaps import label_map_of
from .labelmaps import labels_by_class_chunks as _labels_by_class_chunks
from .layer_tuning import tune_convolutions
from .memory import CaseSize, activation_bytes_per_voxel, check_case_memory
from .sliding import add_flipped_, sliding_window, softmax_

__all__ = ["Predictor", "PreparedCase", "label_map_of", "resolve_device"]

InputLike = Image | str | os.PathLike | Sequence[Image | str | os.PathLike]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``.

    Raises:
        ConfigError: CUDA was asked for but is not available.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device '{device}' requested but CUDA is not available on this machine",
            hint="use device 'auto' or 'cpu' (in a config: trainer.device)",
            cli_hint="use auto or cpu: `--device auto` for `medimg predict`, "
            "`--set trainer.device=auto` (or the config's trainer.device) for `medimg train`",
        )
    return dev


def _restrict(transforms: Sequence[Transform], available: Sequence[str]) -> Compose:
    """Keep each transform's action on the images present (prediction has no label)."""
    kept: list[Transform] = []
    for t in transforms:
        if t.keys is None:
            kept.append(t)
            continue
        keys = tuple(k for k in t.keys if k in available)
        if not keys:
            continue  # e.g. map_labels on the label only
        if keys != t.keys:
            t = copy.copy(t)
            t.keys = keys
        kept.append(t)
    return Compose(kept)


@dataclass(frozen=True)
class PreparedCase:
    """A case read and preprocessed by :meth:`Predictor.prepare`, ready for the network."""

    case_id: str | None
    source: Image
    sample: Sample


class Predictor:
    """Segment whole volumes with a trained network.

    Everything but the network and where it runs is one
    :class:`~medimg.core.spec.InferenceSpec` (preprocessing, channel and class names,
    sliding window, TTA), the same one a checkpoint stores. Its fields may also be given
    as keywords, alone or on top of ``spec``:
    ``Predictor(model, roi_size=[64, 64, 64], tta_flips=[0])``.

    A predictor is not changed after construction: :meth:`with_options` returns a new
    one that shares the network.

    Args:
        model: network mapping ``(B, C, *roi)`` to logits ``(B, K, *roi)``.
        spec: the prediction settings (default: :class:`InferenceSpec`'s defaults).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        amp: autocast the network on CUDA (``True``/``"fp16"`` or ``"bf16"``); ignored on CPU.
        **settings: fields of the spec, replacing its values (``preprocess`` as plain
            specs ``{"name": ..., **params}``).

    Raises:
        TypeError: a keyword that is not a field of the spec.
        TransformError: a random transform in ``preprocess``.
        ConfigError: a setting the spec does not accept, or a preprocessing spec that
            does not build.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: InferenceSpec | None = None,
        *,
        device: str | torch.device = "auto",
        amp: bool | str = False,
        **settings: Any,
    ) -> None:
        self.spec: InferenceSpec = (spec or InferenceSpec()).with_updates(**settings)
        self.device = resolve_device(device)
        self.amp = amp
        self.model = model.to(self.device).eval()
        #: the network run on CPU: a copy with tuned convolutions (``tune_layers``), made once
        self._tuned: nn.Module | None = None
        self._tuned_stamp: list[int] = []
        self.preprocess: Compose = build_transforms(self.spec.preprocess, "preprocess", deterministic=True)
        #: The checkpoint's entries but the weights, when built by :meth:`from_checkpoint`.
        self.checkpoint: dict[str, Any] | None = None

    # -- the spec's settings, read-only ---------------------------------------------------
    @property
    def roi_size(self) -> list[int]:
        return list(self.spec.roi_size)

    @property
    def overlap(self) -> float:
        return self.spec.overlap

    @property
    def sw_batch_size(self) -> int:
        return self.spec.sw_batch_size

    @property
    def blend(self) -> str:
        return self.spec.blend

    @property
    def tta_flips(self) -> list[int]:
        return list(self.spec.tta_flips)

    @property
    def label_names(self) -> list[str] | None:
        return None if self.spec.label_names is None else list(self.spec.label_names)

    @property
    def image_keys(self) -> list[str] | None:
        return None if self.spec.image_keys is None else list(self.spec.image_keys)

    @property
    def in_channels(self) -> int | None:
        return self.spec.in_channels

    # -- construction -------------------------------------------------------------------
    def with_options(self, **overrides: Any) -> "Predictor":
        """A new predictor with ``overrides`` applied; this one is left as it is.

        ``overrides`` are fields of the spec (``overlap``, ``sw_batch_size``,
        ``tta_flips``, ``roi_size``...), ``device`` and ``amp``; None values are ignored.
        The network is shared (copied only when it moves to another device).

        Raises:
            TypeError: an unknown override.
            ConfigError: a value the spec does not accept.
        """
        overrides = {k: v for k, v in overrides.items() if v is not None}
        device = resolve_device(overrides.pop("device", self.device))
        amp = overrides.pop("amp", self.amp)
        spec = self.spec.with_updates(**overrides)
        model = self.model if device == self.device else copy.deepcopy(self.model)
        new = type(self)(model, spec, device=device, amp=amp)
        new.checkpoint = self.checkpoint
        return new

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "auto", **overrides: Any
    ) -> "Predictor":
        """Load a medimg checkpoint (``weights_only=True``) and build its predictor.

        ``overrides`` replace the checkpoint's settings: fields of its
        :class:`~medimg.core.spec.InferenceSpec` (``roi_size``, ``overlap``,
        ``sw_batch_size``, ``blend``, ``tta_flips``...) and ``amp``; None values are ignored.

        Raises:
            CheckpointError: the file cannot be used (see :func:`load_checkpoint`), or
                ``roi_size`` does not match the model's spatial dimensions.
            TypeError: an unknown override.
        """
        ckpt = load_checkpoint(path)
        overrides = {k: v for k, v in overrides.items() if v is not None}
        amp = overrides.pop("amp", False)
        spec = inference_spec(ckpt, path).with_updates(**overrides)
        spatial_dims = int(ckpt.get("spatial_dims", 3))
        if len(spec.roi_size) != spatial_dims:
            raise CheckpointError(
                f"checkpoint '{path}': roi_size {spec.roi_size} has {len(spec.roi_size)} values "
                f"for a {spatial_dims}D model"
            )
        pred = cls(build_model(ckpt), spec, device=device, amp=amp)
        pred.checkpoint = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_state")}
        pred.checkpoint["file_path"] = str(path)  # hashed once, when a run logs it (runlog.run_context)
        return pred

    # -- inputs -------------------------------------------------------------------------
    def load_inputs(self, inputs: InputLike) -> Image:
        """Turn an Image, a path, or a list of channel Images/paths into one ``(C, ...)`` Image.

        A channel may also be a :class:`~medimg.io.dicom.SeriesInfo` (one series of a
        study, as ``medimg.io.studies`` chooses it by pattern). With channel patterns
        (``channels=``, the spec's ``channels``), one folder is one case whose channels are
        chosen by them: a DICOM study or a case folder of NIfTI files.

        Channels given separately must share one grid (shape and affine).

        Raises:
            GeometryError: channels on different grids, or the wrong channel count.
            DataError: a folder whose channels the patterns do not select (the message
                lists the candidates), or that holds several cases.
        """
        if self.spec.channels and isinstance(inputs, (str, os.PathLike)) and os.path.isdir(inputs):
            inputs = self._case_by_pattern(inputs)
        if isinstance(inputs, (Image, str, os.PathLike)) or hasattr(inputs, "series_instance_uid"):
            items: list[Any] = [inputs]
        else:
            items = list(inputs)
            if not items:
                raise ValueError("Predictor: no input images given")
        images = [_read_input(it) for it in items]
        first = images[0]
        for name, im in zip(items[1:], images[1:]):
            if not first.same_grid(im):
                raise GeometryError(
                    f"channel '{_input_name(name)}' is not on the grid of the first channel '{_input_name(items[0])}': shape "
                    f"{im.spatial_shape} vs {first.spatial_shape}, affines differ by "
                    f"{np.abs(im.affine - first.affine).max():.4g} mm",
                    hint="resample the channels onto one grid (co-register them) before prediction",
                )
        if len(images) == 1:
            image = first
        else:
            image = first.new(torch.cat([im.data for im in images], dim=0))
        if self.spec.task == "classification":
            image = image.new(unit_scaled(image.data))  # as training read it (8-bit: / 255)
        elif not torch.is_floating_point(image.data):
            image = image.new(image.data.float())
        image = image.new(kind="intensity")
        expected = self.in_channels if self.in_channels is not None else model_in_channels(self.model)
        if expected is not None and image.num_channels != expected:
            names = f" ({', '.join(self.image_keys)})" if self.image_keys else ""
            raise GeometryError(
                f"the model expects {expected} input channel(s){names}, got {image.num_channels} "
                f"from {[_input_name(i) for i in items]}",
                hint="pass one file per channel in the model's order, or a 4D file with all channels",
            )
        return image

    def _case_by_pattern(self, folder: str | os.PathLike) -> list[Any]:
        """The channel inputs of the one case ``folder`` holds, chosen by the spec's patterns."""
        from ..io.studies import find_channel_case, resolve_channel_patterns

        in_ch = self.in_channels or 1
        patterns = resolve_channel_patterns(self.spec.channels, self.image_keys, in_ch)
        _, inputs = find_channel_case(folder, self.image_keys, patterns, in_channels=in_ch)
        if isinstance(inputs, Exception):
            raise inputs
        return list(inputs)

    # -- prediction ---------------------------------------------------------------------
    def _network(self) -> nn.Module:
        """The network as run: on CPU with ``tune_layers``, a copy whose convolutions run
        in their fastest equivalent form (:func:`~medimg.inference.layer_tuning.tune_convolutions`)."""
        if self.device.type != "cpu" or not self.spec.tune_layers:
            return self.model
        # weights changed in place since the copy (an optimiser step, load_state_dict): copy again
        stamp = [t._version for t in itertools.chain(self.model.parameters(), self.model.buffers())]
        if self._tuned is None or stamp != self._tuned_stamp:
            self._tuned, self._tuned_stamp = tune_convolutions(self.model), stamp
        return self._tuned

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda" and self.amp:
            dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
            with torch.autocast("cuda", dtype=dtype):
                return self.model(batch).float()
        return self._network()(batch)

    def _probabilities_on_preprocessed(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``(K, *spatial)`` for a preprocessed ``(C, *spatial)`` tensor."""
        nd = x.ndim - 1
        bad = [a for a in self.tta_flips if not 0 <= a < nd]
        if bad:
            raise ValueError(f"tta_flips axes {bad} out of range for {nd} spatial axes (0..{nd - 1})")
        combos = [()]
        for r in range(1, len(self.tta_flips) + 1):
            combos += list(itertools.combinations(sorted(set(self.tta_flips)), r))
        total: torch.Tensor | None = None
        for combo in combos:
            dims = [a + 1 for a in combo]  # skip the channel axis
            xi = torch.flip(x, dims) if dims else x
            logits = sliding_window(
                xi,
                self._forward,
                self.roi_size,
                overlap=self.overlap,
                sw_batch_size=self.sw_batch_size,
                blend=self.blend,
            )
            # in place and a slab at a time: one full-size map per pass, plus the sum
            probs = softmax_(logits)
            if total is None:
                total = probs if not dims else torch.flip(probs, dims)
            else:
                add_flipped_(total, probs, dims)
            del logits, probs
        assert total is not None
        return total.div_(len(combos)) if len(combos) > 1 else total

    def prepare(self, inputs: InputLike | Sample, case_id: str | None = None) -> PreparedCase:
        """Read and preprocess one case (no network): the first half of
        :meth:`predict_probabilities`, which accepts its result, so a batch runner can
        prepare the next case in a background thread while the current one computes.

        Raises:
            GeometryError: wrong channel count, or the case's dimensions do not match
                ``roi_size``.
        """
        if isinstance(inputs, Sample):
            case_id = case_id or inputs.case_id
            source = self.load_inputs(inputs["image"])
        else:
            source = self.load_inputs(inputs)
        if len(self.roi_size) != source.spatial_ndim:
            raise GeometryError(
                f"roi_size {self.roi_size} has {len(self.roi_size)} axes but case "
                f"'{case_id or '?'}' is {source.spatial_ndim}D"
            )
        sample = Sample(images={"image": source}, case_id=case_id or "")
        return PreparedCase(case_id, source, _restrict(self.preprocess, ["image"])(sample))

    def predict_probabilities(self, inputs: InputLike | Sample | PreparedCase, case_id: str | None = None) -> Image:
        """Class probabilities on the input's own grid.

        Args:
            inputs: a :class:`~medimg.core.Sample` (its ``"image"`` is used), an Image
                ``(C, *spatial)``, a path, a list of single-channel Images/paths, or a
                case already read by :meth:`prepare`.
            case_id: for messages.

        Returns:
            ``Image(kind="probabilities")``, ``(K, *spatial)`` float32 on CPU, with the
            input's spatial shape and affine.
        """
        case_id, source, pre, prob_img = self._preprocessed_probabilities(inputs, case_id)
        back = _inverted(prob_img, pre.history, source, case_id)
        meta = {"case_id": case_id, "label_names": self.label_names}
        return Image(back.data.float(), source.affine.copy(), kind="probabilities", meta=meta)

    def _preprocessed_probabilities(self, inputs: Any, case_id: str | None) -> tuple[Any, Image, Sample, Image]:
        """(case id, source, preprocessed sample, probabilities on the preprocessed grid on CPU)."""
        if self.spec.task == "classification":
            raise ConfigError(
                "this is a classification model: it gives class probabilities, not a label map",
                hint="use Predictor.predict_proba(image) (or `medimg predict`, which writes predictions.csv)",
            )
        if not isinstance(inputs, PreparedCase):
            inputs = self.prepare(inputs, case_id)
        case_id, source, pre = inputs.case_id or case_id, inputs.source, inputs.sample
        x = pre["image"].data.to(self.device, torch.float32)
        with torch.inference_mode():
            probs = self._probabilities_on_preprocessed(x).float().cpu()
        del x
        return case_id, source, pre, Image(probs, pre["image"].affine, kind="probabilities")

    def predict(self, inputs: InputLike | Sample | PreparedCase, case_id: str | None = None) -> Image:
        """Label map on the input's own grid: ``(1, *spatial)`` uint8 (int16 over 255 classes).

        The returned image has the input's spatial shape and affine exactly. The same
        labels as ``label_map_of(predict_probabilities(...))`` (up to float rounding at
        exact ties) with less memory: the probabilities go back to the input's grid a few
        classes at a time (:func:`_labels_by_class_chunks`), never all at once. The spec's
        ``postprocess.min_probability`` applies here, where probabilities become labels
        (``label_map_of`` likewise); its component rules are the caller's
        (:func:`~medimg.inference.postprocess.postprocess_labels`).
        """
        case_id, source, pre, prob_img = self._preprocessed_probabilities(inputs, case_id)
        with torch.inference_mode():
            labels = _labels_by_class_chunks(prob_img, pre.history, source, case_id,
                                             self.spec.postprocess.min_probability)
        labels = labels.clone()  # a plain tensor (not an inference one) that callers may change in place
        meta = {"case_id": case_id, "label_names": self.label_names}
        return Image(labels[None], source.affine.copy(), kind="label", meta=meta)

    def memory_case(self, prepared: PreparedCase, save_probabilities: bool = False) -> CaseSize:
        """What :mod:`medimg.inference.memory` estimates the peak memory of ``prepared`` from."""
        pre = prepared.sample["image"]
        k = self.num_classes or model_out_channels(self.model) or 2
        if not hasattr(self, "_activation_bytes"):  # measured once per predictor (shapes only)
            self._activation_bytes = activation_bytes_per_voxel(self.model, pre.num_channels, self.roi_size)
        return CaseSize(tuple(prepared.source.spatial_shape), tuple(pre.spatial_shape), pre.num_channels, k,
                        tuple(self.roi_size), self.sw_batch_size, bool(self.tta_flips), self._activation_bytes,
                        save_probabilities)

    def check_memory(self, prepared: PreparedCase, max_memory_gb: float | None = None,
                     save_probabilities: bool = False) -> int:
        """The estimated peak bytes of ``prepared`` (:mod:`medimg.inference.memory`).

        Raises:
            InsufficientMemoryError: the estimate exceeds the memory available
                (``max_memory_gb``, else what the system reports free on the device).
        """
        case = self.memory_case(prepared, save_probabilities)
        return check_case_memory(case, self.device, prepared.case_id, max_memory_gb)

    # -- classification -----------------------------------------------------------------
    def classify_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, K)`` (CPU, float32) of preprocessed images ``(B, C, *spatial)``:
        one whole-image forward pass each (no sliding window), flip TTA averaged; softmax,
        or a sigmoid per label for a multi-label model, of the logits divided by the
        spec's ``temperature`` (when calibrated)."""
        from .classify import class_probabilities

        with torch.inference_mode():
            probs = class_probabilities(
                self._forward, x.to(self.device, torch.float32), self.tta_flips, self.spec.multilabel,
                self.spec.temperature,
            )
        return probs.float().cpu()

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits ``(P, B, K)`` (CPU, float32) of preprocessed images ``(B, C, *spatial)``,
        one row per flip-TTA pass, before any temperature: what calibration fits on."""
        from .classify import class_logits

        with torch.inference_mode():
            logits = class_logits(self._forward, x.to(self.device, torch.float32), self.tta_flips)
        return logits.float().cpu()

    def preprocess_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The recorded preprocessing applied to each image of ``(B, C, *spatial)`` (none: ``x``)."""
        if not self.spec.preprocess:
            return x
        out = [_restrict(self.preprocess, ["image"])(Sample(images={"image": Image(xi)}))["image"].data for xi in x]
        return torch.stack(out)

    def predict_proba(self, inputs: InputLike | Sample, case_id: str | None = None) -> torch.Tensor:
        """Class probabilities ``(K,)`` of one image (a classification checkpoint).

        The recorded preprocessing is applied to the image (a path, an Image, a Sample or
        a list of channels), then the whole image goes through the network.

        Raises:
            GeometryError: the image has a different number of spatial axes than the
                images the model was trained on (e.g. a 2D image given to a 3D model).
        """
        if isinstance(inputs, Sample):
            case_id = case_id or inputs.case_id
            source = self.load_inputs(inputs["image"])
        else:
            source = self.load_inputs(inputs)
        if source.spatial_ndim == 3 and len(self.roi_size) == 2 and source.spatial_shape[-1] == 1:
            source = source.new(source.data[..., 0])  # a 2D slice stored as a 3D file
        if len(self.roi_size) != source.spatial_ndim:
            raise GeometryError(
                f"case '{case_id or '?'}' is {source.spatial_ndim}D {source.spatial_shape} but the model was "
                f"trained on {len(self.roi_size)}D images {tuple(self.roi_size)}",
                hint=f"give {len(self.roi_size)}D images to this model",
            )
        sample = Sample(images={"image": source}, case_id=case_id or "")
        x = _restrict(self.preprocess, ["image"])(sample)["image"].data
        return self.classify_batch(x[None])[0]

    @property
    def num_classes(self) -> int | None:
        """Classes the model predicts (from the label names or the checkpoint; None: unknown)."""
        if self.spec.label_names is not None:
            return len(self.spec.label_names)
        if self.checkpoint is not None and "out_channels" in self.checkpoint:
            return int(self.checkpoint["out_channels"])
        return None

    def __repr__(self) -> str:
        return (
            f"Predictor(model={type(self.model).__name__}, device={self.device}, roi_size={self.roi_size}, "
            f"overlap={self.overlap}, sw_batch_size={self.sw_batch_size}, tta_flips={self.tta_flips}, "
            f"preprocess={[t.name for t in self.preprocess]})"
        )


def _read_input(item: Any) -> Image:
    """An input channel as an Image: itself, a file or folder read by ``read_image``, or a
    DICOM series found by ``medimg.io.dicom.find_series`` (a channel chosen by pattern)."""
    if isinstance(item, Image):
        return item
    from ..io.dicom import SeriesInfo

    if isinstance(item, SeriesInfo):
        from ..io.dicom import read_series

        return read_series(item)
    from ..io import read_image

    return read_image(item)


def _input_name(item: Any) -> str:
    """How messages name an input channel: its path, its series description, or 'Image'."""
    if isinstance(item, Image):
        return "Image"
    if hasattr(item, "series_instance_uid"):
        return f"DICOM series '{getattr(item, 'description', '') or item.series_instance_uid}'"
    return str(item)
