"""Typed specs: what an experiment is and what a trained model needs to predict.

One description, three users: the config layer produces these models from YAML
(``medimg.config.load_config``), the engine and the data layer take them as they are,
and a checkpoint stores the :class:`InferenceSpec` as plain data next to the weights,
from which :class:`~medimg.inference.Predictor` is rebuilt. Defaults live here and
nowhere else.

Every section forbids unknown keys. Components (model, loss, optimizer, scheduler,
transforms) are written as ``{name: <registered name>, <constructor kwargs>...}``
(:class:`ComponentSpec`); their kwargs are checked against the constructor's signature
by :func:`medimg.core.builder.check_spec`, not here, so a plugin component needs no
schema.

Nothing here imports torch or numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .plain import to_plain

__all__ = [
    "Strict",
    "ComponentSpec",
    "ExperimentSection",
    "DataSection",
    "TrainerSection",
    "InferenceSection",
    "InferenceSpec",
    "PostprocessSpec",
    "EvaluationSection",
    "ExperimentConfig",
    "TASKS",
    "config_to_dict",
    "dump_config",
]

#: What a model is trained to do.
TASKS = ("segmentation", "classification")
Task = Literal["segmentation", "classification"]

#: ``evaluation.metrics`` of a classification config that names none.
CLASSIFICATION_DEFAULT_METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity")


class Strict(BaseModel):
    """Base of all sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ComponentSpec(BaseModel):
    """A registered component: ``name`` plus the constructor's keyword arguments."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="registered name, see `medimg list <kind>`")

    @property
    def params(self) -> dict[str, Any]:
        """The constructor kwargs (every key but ``name``)."""
        return dict(self.model_extra or {})


class ExperimentSection(Strict):
    name: str = "experiment"
    seed: int = 0
    #: Run folder; ``{name}`` is replaced. Overridden by ``--output-dir``.
    output_dir: str = "runs/{name}"
    task: Task = "segmentation"


class DataSection(Strict):
    """Where the cases are and how to read them.

    Segmentation: either ``manifest`` (a CSV with ``case_id``, one column per entry of
    ``images``, the ``label`` column, and ``split``) or ``root`` (a folder layout
    ``root/<split>/<case_id>/<file>`` where ``images`` and ``label`` are file names).

    Classification (``experiment.task: classification``): ``npz`` (MedMNIST-style arrays
    ``train_images``, ``train_labels``, ``val_*``, ``test_*``), ``manifest`` (one row per
    case: image path column(s) named by ``images``, the label column(s) ``label`` or
    ``label_columns``, ``split``, optional ``case_id`` and ``patient_id``) or ``root`` (a
    folder per class, ``root/<split>/<class name>/<file>``).
    """

    manifest: Path | None = None
    root: Path | None = None
    #: Classification: a MedMNIST-style ``.npz`` file of image and label arrays per split.
    npz: Path | None = None
    #: Input channels: manifest column names, or file names inside each case folder.
    images: list[str] = Field(min_length=1)
    #: Label map: a column name or a file name inside each case folder.
    label: str | None = None
    #: Class names, index = class value after ``label_map``; index 0 is background.
    label_names: list[str] = Field(default_factory=lambda: ["background", "foreground"], min_length=2)
    #: Optional remapping of raw label values, e.g. ``{1: 1, 2: 1, 4: 1}``; unlisted -> 0.
    label_map: dict[int, int] | None = None
    #: Names of the splits, as found in the manifest's ``split`` column or root's folders.
    splits: dict[Literal["train", "validation", "test"], str] = Field(
        default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"}
    )
    #: Where deterministically preprocessed training cases (segmentation) are kept between epochs:
    #: ``memory`` (RAM), ``disk`` (one file per case in ``cache_dir``, reused by later runs
    #: while the case's files and the preprocessing are unchanged; :mod:`medimg.data.cache`)
    #: or ``none`` (preprocessed anew each time). ``true`` / ``false`` mean memory / none.
    #: The RAM or disk space needed is estimated and checked before the cache is filled.
    cache: Literal["memory", "disk", "none"] = "memory"
    #: The folder of ``cache: disk`` (default: ``$XDG_CACHE_HOME/medimg/cases``, else
    #: ``~/.cache/medimg/cases``); relative to the config's folder.
    cache_dir: Path | None = None
    num_workers: int = Field(0, ge=0)
    #: Classification: class names in model-output order (default: from the data).
    class_names: list[str] | None = Field(None, min_length=1)
    #: Classification, manifest: one 0/1 column per class (a multi-label task).
    label_columns: list[str] | None = Field(None, min_length=1)
    #: Classification: draw training cases with probability inversely proportional to
    #: their class's frequency (a class-balanced sampler).
    balanced_sampling: bool = False
    #: Cross-validation: a split file (``case_id, fold``; written by ``medimg split``) of
    #: the training and validation cases; relative to the config's folder.
    split_file: Path | None = None
    #: The fold (0-based) of ``split_file`` to validate on; the other folds train, the test
    #: split stays test. ``medimg train --fold k`` sets it; ``medimg cv`` runs every fold.
    fold: int | None = Field(None, ge=0)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_bool(cls, value: Any) -> Any:
        """``true`` / ``false`` (configs written before the disk cache) mean memory / none."""
        return {True: "memory", False: "none"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _fold_needs_split_file(self) -> "DataSection":
        if self.fold is not None and self.split_file is None:
            raise ValueError(
                f"fold {self.fold} is given but no split_file: set data.split_file to a split file "
                "written by `medimg split`"
            )
        return self

    @model_validator(mode="after")
    def _one_source(self) -> "DataSection":
        given = [k for k in ("manifest", "root", "npz") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'manifest' (a CSV file) or 'root' (a folder of splits)"
                + (" or 'npz' (classification arrays)" if self.npz is not None or not given else "")
                + (f" (found {' and '.join(given)})" if given else "")
            )
        return self


class TrainerSection(Strict):
    max_epochs: int = Field(10, ge=1)
    #: Optimiser steps per epoch (patch-based training); None = one pass over the cases.
    iterations_per_epoch: int | None = Field(None, ge=1)
    batch_size: int = Field(2, ge=1)
    #: ``auto`` picks CUDA when available, else CPU.
    device: str = "auto"
    #: Mixed precision: ``true`` (CUDA: bf16 where supported, else fp16 with a gradient
    #: scaler; CPU: off), ``bf16`` (autocast on CPU or CUDA), ``fp16`` (CUDA only, with a
    #: gradient scaler), ``false``.
    amp: bool | Literal["bf16", "fp16"] = False
    #: Gradient accumulation: the loss is scaled by 1/N and the optimizer steps every N
    #: batches (an effective batch of ``N * batch_size``).
    accumulate: int = Field(1, ge=1)
    val_every: int = Field(1, ge=1)
    #: Stop early after this many validations without improvement (None: never).
    patience: int | None = Field(None, ge=1)
    #: Wall-clock budget in minutes: training stops at the first step past it (that epoch
    #: is cut short), validates the weights it reached and still writes last.pt.
    max_minutes: float | None = Field(None, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    #: Exponential moving average of the weights, updated after every optimizer step with
    #: this decay (e.g. 0.98: about the last 50 steps weigh most); validation, best.pt and
    #: last.pt then hold the averaged weights, their batch-norm statistics recomputed on
    #: training batches at the end of each epoch. None: off.
    ema: float | None = Field(None, gt=0, lt=1)
    #: Seeds plus ``torch.use_deterministic_algorithms``: with it a resumed run ends with
    #: the very weights of an uninterrupted one.
    deterministic: bool = False
    #: Layout of the convolution weights in training: ``auto`` times the first optimizer
    #: steps in the default layout and in channels-last and keeps the faster (the default
    #: layout with ``deterministic`` or in a distributed run); ``true`` / ``false`` fix it.
    channels_last: bool | Literal["auto"] = "auto"
    num_threads: int | None = Field(None, ge=1)
    #: TensorBoard event files in ``RUN_DIR/tensorboard`` (loss, learning rate, validation
    #: metrics, data-wait fraction; segmentation: validation slices with prediction
    #: overlays); needs the ``tensorboard`` extra (skipped with a log line without it).
    tensorboard: bool = False


class PostprocessSpec(Strict):
    """Per-class clean-up of a predicted label map (``inference.postprocess``), applied on
    the output grid by :func:`medimg.inference.postprocess.postprocess_labels`.

    Attributes:
        keep_largest: class values (not background 0) of which only the largest connected
            component is kept; the other voxels of the class become background.
        min_size_ml: class value -> size in mL; connected components of that class smaller
            than it become background.
        min_probability: class value -> probability in (0, 1); a voxel whose most probable
            class this is keeps it only where its probability reaches this, else becomes
            background (for two classes: foreground where P >= t instead of P > 0.5).
            Applied where probabilities become labels, before the component rules.
    """

    keep_largest: list[int] = Field(default_factory=list)
    min_size_ml: dict[int, float] = Field(default_factory=dict)
    min_probability: dict[int, float] = Field(default_factory=dict)

    @field_validator("keep_largest", "min_size_ml", "min_probability")
    @classmethod
    def _foreground(cls, v: Any) -> Any:
        bad = [c for c in v if int(c) < 1]
        if bad:
            raise ValueError(f"class values {bad} are not foreground classes (1, 2, ...); background 0 has none")
        return sorted(set(v)) if isinstance(v, list) else v

    @field_validator("min_size_ml")
    @classmethod
    def _sizes(cls, v: dict[int, float]) -> dict[int, float]:
        neg = {c: s for c, s in v.items() if not s >= 0}
        if neg:
            raise ValueError(f"sizes {neg} must be volumes in mL >= 0")
        return v

    @field_validator("min_probability")
    @classmethod
    def _probabilities(cls, v: dict[int, float]) -> dict[int, float]:
        out = {c: p for c, p in v.items() if not 0.0 < p < 1.0}
        if out:
            raise ValueError(f"probabilities {out} must lie strictly between 0 and 1")
        return v

    @property
    def classes(self) -> list[int]:
        """Every class value named by any rule."""
        return sorted(set(self.keep_largest) | set(self.min_size_ml) | set(self.min_probability))

    @property
    def component_classes(self) -> list[int]:
        """The class values of the connected-component rules (``keep_largest``, ``min_size_ml``)."""
        return sorted(set(self.keep_largest) | set(self.min_size_ml))


class InferenceSection(Strict):
    """Sliding-window settings: the ``inference`` section of a config."""

    roi_size: list[int] = Field(default_factory=lambda: [96, 96, 96])
    overlap: float = Field(0.25, ge=0.0, lt=1.0)
    #: Tiles per forward pass. >= 2 on CPU: batch 1 hits PyTorch's slow conv3d fallback.
    sw_batch_size: int = Field(4, ge=1)
    blend: Literal["gaussian", "constant"] = "gaussian"
    #: Flip test-time augmentation over these spatial axes (empty: none).
    tta_flips: list[int] = Field(default_factory=list)
    #: Input channel name (an entry of ``data.images``, or it without ``.nii.gz``) ->
    #: case-insensitive shell pattern matched against file names in case folders and DICOM
    #: SeriesDescription in study folders, e.g. ``{flair: "*FLAIR*", t1: "*T1*"}``
    #: (``medimg predict --channel`` adds to or replaces these).
    channels: dict[str, str] | None = None
    #: Per-class post-processing of label maps (minimum probability, largest component,
    #: minimum size in mL).
    postprocess: PostprocessSpec = Field(default_factory=PostprocessSpec)
    #: On CPU, run each convolution in the fastest of its equivalent forms, timed on the
    #: first tile batch (outputs equal up to float rounding; false for runs that must
    #: repeat bit for bit).
    tune_layers: bool = True

    @field_validator("roi_size")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(int(s) < 1 for s in v):
            raise ValueError("roi_size must be positive voxel counts, one per spatial axis")
        return v

    @field_validator("tta_flips")
    @classmethod
    def _axes(cls, v: list[int], info: ValidationInfo) -> list[int]:
        roi = info.data.get("roi_size")
        if roi:
            bad = [a for a in v if not 0 <= a < len(roi)]
            if bad:
                raise ValueError(
                    f"tta_flips axes {bad} out of range for {len(roi)} spatial axes (0..{len(roi) - 1})"
                )
        return v


class InferenceSpec(InferenceSection):
    """Everything prediction needs besides the weights, as one typed, plain-data spec.

    Produced by the config (:meth:`ExperimentConfig.inference_spec`), stored in every
    checkpoint (``checkpoint["inference"]``) and consumed by
    :class:`~medimg.inference.Predictor`, which also validates with it during training.

    Attributes:
        roi_size, overlap, sw_batch_size, blend, tta_flips, postprocess: sliding window, flip TTA
            and per-class post-processing of label maps
            (:class:`InferenceSection`).
        task: ``segmentation`` or ``classification``.
        preprocess: deterministic transforms, replayed on the input and inverted on the
            probabilities.
        image_keys: channel names in model order (manifest columns or file names of a
            case folder); None when unnamed.
        in_channels: input channels the model takes (a 4D file may hold several); None:
            read from the model.
        label_names: class names, index = class value, background first; None: unnamed.
        label_map: raw reference label value -> class value, as used for training.
        threshold, multilabel, temperature: classification decisions and probabilities.
    """

    task: Task = "segmentation"
    preprocess: list[ComponentSpec] = Field(default_factory=list)
    image_keys: list[str] | None = None
    in_channels: int | None = Field(None, ge=1)
    label_names: list[str] | None = Field(None, min_length=1)
    label_map: dict[int, int] | None = None
    #: Classification, binary or multi-label: predict positive when ``p >= threshold``
    #: (chosen on validation during training); None: 0.5 (binary), argmax (multi-class).
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    #: Classification: one independent probability per label (sigmoid), not a softmax.
    multilabel: bool = False
    #: Classification: the logits are divided by this before the softmax (sigmoid), fitted
    #: on validation by ``medimg calibrate`` (temperature scaling); None: 1 (uncalibrated).
    temperature: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _postprocess_classes(self) -> InferenceSpec:
        names = self.label_names
        if names is not None:
            bad = [c for c in self.postprocess.classes if c >= len(names)]
            if bad:
                raise ValueError(
                    f"postprocess names class values {bad} but the model has classes 0..{len(names) - 1} "
                    f"({', '.join(names)})"
                )
        return self

    def with_updates(self, **updates: Any) -> "InferenceSpec":
        """A validated copy with ``updates`` applied (``None`` values are ignored).

        Raises:
            TypeError: a name that is not a field of the spec.
            ConfigError: a value the spec does not accept (names the key).
        """
        updates = {k: v for k, v in updates.items() if v is not None}
        unknown = sorted(set(updates) - set(type(self).model_fields))
        if unknown:
            raise TypeError(
                f"unknown inference override(s) {unknown}; known: {', '.join(type(self).model_fields)}"
            )
        if not updates:
            return self
        try:
            return type(self).model_validate({**self.model_dump(), **updates})
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a check across fields
                raise ConfigError(f"invalid inference settings: {msg}") from None
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(
                f"invalid inference setting {key}={updates.get(str(err['loc'][0]), '?')!r}: {msg}",
            ) from None


class EvaluationSection(Strict):
    metrics: list[str] = Field(default_factory=lambda: ["dice"])
    #: Validation score that picks best.pt: a metric (mean over foreground classes),
    #: ``<metric>_<class name>`` (one class), or ``loss``. Its direction (higher or
    #: lower is better) comes from the metrics registry.
    select_by: str = "dice"
    #: Classification, binary: the operating threshold is the validation threshold of
    #: the highest sensitivity + specificity (Youden); with this set, the highest one
    #: whose validation sensitivity is at least this value.
    target_sensitivity: float | None = Field(None, gt=0.0, le=1.0)
    #: Classification, binary: how the operating threshold is set. ``youden`` (the
    #: default): the validation point of highest sensitivity + specificity. ``accuracy``:
    #: the validation point of highest accuracy. A number in (0, 1): that threshold,
    #: whatever validation says (0.5 is the argmax rule MedMNIST's published accuracies
    #: use). Leave it at ``youden`` when ``target_sensitivity`` is set.
    threshold: Literal["youden", "accuracy"] | float = "youden"
    #: After training, score ``best.pt`` on the test split (its labelled cases) into
    #: ``RUN_DIR/test`` (``metrics.csv``, ``summary.json``); false skips it.
    test: bool = True
    #: Score of dice, jaccard, nsd (and precision, recall, lesion_*) where a class is
    #: absent from both prediction and reference: 1.0 (both agree), or ``.nan`` to leave
    #: such cases out of means (as MONAI does by default). Used for the test split.
    empty_score: float = 1.0
    #: Surface-distance definitions of hd, hd95, assd and nsd on the test split:
    #: ``monai`` (default) or ``deepmind`` (the surface-distance package, ``medimg[surface]``).
    surface_distance: Literal["monai", "deepmind"] = "monai"
    #: Segmentation: after training, choose ``inference.postprocess`` per foreground class
    #: on the validation cases (keep the largest component, or remove components under
    #: 0.1 / 0.5 / 1 mL, only where it raises the class's mean validation Dice), store it
    #: in ``best.pt`` and record it in ``RUN_DIR/postprocess.json``
    #: (:mod:`medimg.engine.postlearn`). Needs >= 2 validation cases; a config whose
    #: ``inference.postprocess`` names classes keeps its own and learns nothing.
    learn_postprocess: bool = True

    @model_validator(mode="after")
    def _one_threshold_rule(self) -> EvaluationSection:
        if isinstance(self.threshold, float) and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be 'youden', 'accuracy' or a number in (0, 1), got {self.threshold}")
        if self.target_sensitivity is not None and self.threshold != "youden":
            raise ValueError(
                f"give either target_sensitivity ({self.target_sensitivity}) or threshold ({self.threshold!r}), not both"
            )
        return self


class ExperimentConfig(Strict):
    """A whole experiment: data, preprocessing, model, training, inference, evaluation."""

    experiment: ExperimentSection = Field(default_factory=ExperimentSection)
    data: DataSection
    #: Deterministic preprocessing, recorded and inverted at prediction time.
    preprocess: list[ComponentSpec] = Field(default_factory=list)
    #: Random augmentation, training only.
    augment: list[ComponentSpec] = Field(default_factory=list)
    model: ComponentSpec
    loss: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="dice_ce"))
    optimizer: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="adamw", lr=1e-3))
    scheduler: ComponentSpec | None = None
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """Classification defaults: ``ce_cls``, ``auc`` selection, images named ``image``."""
        experiment = data.get("experiment") if isinstance(data, dict) else None
        if not (isinstance(experiment, dict) and experiment.get("task") == "classification"):
            return data
        data = dict(data)
        data.setdefault("loss", {"name": "ce_cls"})
        evaluation = data.get("evaluation")
        if evaluation is None or isinstance(evaluation, dict):
            evaluation = dict(evaluation or {})
            evaluation.setdefault("metrics", list(CLASSIFICATION_DEFAULT_METRICS))
            evaluation.setdefault("select_by", "auc")
            data["evaluation"] = evaluation
        section = data.get("data")
        if isinstance(section, dict) and "images" not in section:
            data["data"] = {**section, "images": ["image"]}
        return data

    @model_validator(mode="after")
    def _task_data(self) -> "ExperimentConfig":
        """Keys of one task only are refused in the other, naming the key and the fix."""
        if self.experiment.task != "classification":
            keys = [k for k in ("npz", "class_names", "label_columns") if getattr(self.data, k) is not None]
            if self.data.balanced_sampling:
                keys.append("balanced_sampling")
            if keys:
                raise ValueError(
                    f"data.{keys[0]} is for classification but experiment.task is segmentation; "
                    f"set experiment.task: classification or remove data.{keys[0]}"
                )
        elif self.data.label_columns is not None and self.data.class_names is not None:
            if len(self.data.label_columns) != len(self.data.class_names):
                raise ValueError(
                    f"data.label_columns has {len(self.data.label_columns)} columns but data.class_names "
                    f"{len(self.data.class_names)} names; give one class name per label column"
                )
        post, names = self.inference.postprocess, self.data.label_names
        bad = [c for c in post.classes if c >= len(names)]
        if self.experiment.task == "segmentation" and bad:
            raise ValueError(
                f"inference.postprocess names class values {bad} but data.label_names has classes "
                f"0..{len(names) - 1} ({', '.join(names)}); use class values from 1 to {len(names) - 1}"
            )
        return self

    @model_validator(mode="after")
    def _channel_names(self) -> "ExperimentConfig":
        """``inference.channels`` names only channels of ``data.images``."""
        known = {n.lower() for n in self.data.images} | {_short(n).lower() for n in self.data.images}
        for name, pattern in (self.inference.channels or {}).items():
            if name.lower() not in known and _short(name).lower() not in known:
                raise ValueError(
                    f"inference.channels names '{name}', which is not an input channel; the channels "
                    f"(data.images) are: {', '.join(_short(n) for n in self.data.images)}"
                )
            if not pattern.strip():
                raise ValueError(f"inference.channels.{name} is empty; give a pattern such as '*FLAIR*'")
        return self

    def inference_spec(self, in_channels: int | None = None) -> InferenceSpec:
        """The :class:`InferenceSpec` of a model trained with this config.

        Args:
            in_channels: the model's input channels (default: ``model.in_channels`` when
                given, else one per entry of ``data.images``).
        """
        if in_channels is None:
            given = self.model.params.get("in_channels")
            in_channels = given if isinstance(given, int) else len(self.data.images)
        return InferenceSpec(
            **self.inference.model_dump(),
            task=self.experiment.task,
            preprocess=[s.model_dump() for s in self.preprocess],
            image_keys=list(self.data.images),
            in_channels=in_channels,
            label_names=list(self.data.label_names),
            label_map=dict(self.data.label_map) if self.data.label_map else None,
        )


def _short(name: str) -> str:
    """A channel name without its NIfTI suffix (``Flair.nii.gz`` -> ``Flair``)."""
    low = name.lower()
    for suffix in (".nii.gz", ".nii"):
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------------------
# as YAML
# --------------------------------------------------------------------------------------
def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The whole config as plain data (defaults included), in the schema's key order."""
    return to_plain(cfg)


class _Dumper(yaml.SafeDumper):
    """Block mappings; lists of plain scalars on one line (``spacing: [1.0, 1.0, 1.0]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, (str, int, float, bool)) or v is None for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_config(cfg: ExperimentConfig) -> str:
    """The config as YAML text that :func:`medimg.config.load_config` reads back."""
    return yaml.dump(
        config_to_dict(cfg), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
