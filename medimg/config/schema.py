"""The schemas of a medimg experiment config (YAML): the typed specs of :mod:`medimg.core.spec`.

They are defined in the bottom layer so that the engine and the data layer take the same
typed objects without depending on the config layer. Every section forbids unknown keys.
Components (model, loss, optimizer, scheduler, transforms) are written as
``{name: <registered name>, <constructor kwargs>...}``; their kwargs are checked against
the constructor's signature (:mod:`medimg.config.components`), not here, so a plugin
component needs no schema.

Relative paths written in a config file are resolved against the file's folder by the
loader; paths given with ``--set`` resolve against the current directory.
"""

from __future__ import annotations

from ..core.spec import (
    ComponentSpec,
    DataSection,
    EvaluationSection,
    ExperimentConfig,
    ExperimentSection,
    InferenceSection,
    InferenceSpec,
    Strict,
    TrainerSection,
)

__all__ = [
    "Strict",
    "ComponentSpec",
    "ExperimentSection",
    "DataSection",
    "TrainerSection",
    "InferenceSection",
    "InferenceSpec",
    "EvaluationSection",
    "ExperimentConfig",
]
