"""Pydantic schemas of a medimg experiment config (YAML).

Every section forbids unknown keys. Components (model, loss, optimizer, scheduler,
transforms) are written as ``{name: <registered name>, <constructor kwargs>...}``; their
kwargs are checked against the constructor's signature when built
(:mod:`medimg.config.build`), not here, so a plugin component needs no schema.

Relative paths written in a config file are resolved against the file's folder by the
loader; paths given with ``--set`` resolve against the current directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Strict",
    "ComponentSpec",
    "ExperimentSection",
    "DataSection",
    "TrainerSection",
    "InferenceSection",
    "EvaluationSection",
    "ExperimentConfig",
]


class Strict(BaseModel):
    """Base of all config sections: unknown keys are errors."""

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
    task: Literal["segmentation", "classification"] = "segmentation"


class DataSection(Strict):
    """Where the cases are and how to read them.

    Either ``manifest`` (a CSV with ``case_id``, one column per entry of ``images``, the
    ``label`` column, and ``split``) or ``root`` (a folder layout
    ``root/<split>/<case_id>/<file>`` where ``images`` and ``label`` are file names).
    """

    manifest: Path | None = None
    root: Path | None = None
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
    #: Keep deterministically preprocessed cases in memory between epochs.
    cache: bool = True
    num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> "DataSection":
        if (self.manifest is None) == (self.root is None):
            raise ValueError("give exactly one of 'manifest' (a CSV file) or 'root' (a folder of splits)")
        return self


class TrainerSection(Strict):
    max_epochs: int = Field(10, ge=1)
    #: Optimiser steps per epoch (patch-based training); None = one pass over the cases.
    iterations_per_epoch: int | None = Field(None, ge=1)
    batch_size: int = Field(2, ge=1)
    #: ``auto`` picks CUDA when available, else CPU.
    device: str = "auto"
    amp: bool = False
    val_every: int = Field(1, ge=1)
    #: Stop early after this many validations without improvement (None: never).
    patience: int | None = Field(None, ge=1)
    #: Wall-clock budget in minutes; training stops cleanly after the epoch that passes it.
    max_minutes: float | None = Field(None, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    deterministic: bool = False
    num_threads: int | None = Field(None, ge=1)


class InferenceSection(Strict):
    roi_size: list[int] = Field(default_factory=lambda: [96, 96, 96])
    overlap: float = Field(0.25, ge=0.0, lt=1.0)
    #: Tiles per forward pass. >= 2 on CPU: batch 1 hits PyTorch's slow conv3d fallback.
    sw_batch_size: int = Field(4, ge=1)
    blend: Literal["gaussian", "constant"] = "gaussian"
    #: Flip test-time augmentation over these spatial axes (empty: none).
    tta_flips: list[int] = Field(default_factory=list)

    @field_validator("roi_size")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(int(s) < 1 for s in v):
            raise ValueError("roi_size must be positive voxel counts, one per spatial axis")
        return v


class EvaluationSection(Strict):
    metrics: list[str] = Field(default_factory=lambda: ["dice"])
    #: Metric used to pick best.pt during training (on the validation split).
    select_by: str = "dice"


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
