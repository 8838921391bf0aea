"""YAML -> pydantic schemas -> registered components.

``load_config(path, overrides)`` reads a YAML file keeping the line and column of every
key, applies ``--set KEY=VALUE`` overrides, validates with the schemas (the typed specs of
:mod:`medimg.core.spec`; unknown keys are errors) and checks each component against its
registry and constructor signature, reporting every problem at once::

    invalid config 'brats.yaml' (2 problems):
      brats.yaml:12:5  preprocess[1].spacing   expected 3 values, got 2
      brats.yaml:20:3  model.num_clases        unknown key; did you mean 'num_classes'?

Importing this package imports neither torch nor numpy; checking components imports the
registries (and so torch). The run-folder helpers (``prepare_run_dir``...) belong to the
engine, which writes run folders; they are re-exported here on first use.
"""

from __future__ import annotations

from typing import Any

from ..core.builder import format_key
from ..core.environment import collect_environment
from ..core.spec import config_to_dict, dump_config
from .components import (
    LEADING_ARGS,
    REGISTRY_KINDS,
    build_component,
    build_transforms,
    check_components,
    check_spec,
    get_registry,
)
from .dimensions import check_dimensions
from .loader import load_config
from .overrides import apply_overrides, parse_override
from .problems import format_problems
from .schema import (
    ComponentSpec,
    DataSection,
    EvaluationSection,
    ExperimentConfig,
    ExperimentSection,
    InferenceSection,
    TrainerSection,
)

#: Names re-exported from :mod:`medimg.engine.rundir` when first used (it imports torch).
_RUN_DIR_NAMES = ("RESOLVED_CONFIG", "ORIGINAL_CONFIG", "ENVIRONMENT", "save_config", "run_dir_for", "prepare_run_dir")

__all__ = [
    # schema
    "ExperimentConfig",
    "ComponentSpec",
    "ExperimentSection",
    "DataSection",
    "TrainerSection",
    "InferenceSection",
    "EvaluationSection",
    # loading
    "load_config",
    "parse_override",
    "apply_overrides",
    "format_key",
    "format_problems",
    # components
    "REGISTRY_KINDS",
    "LEADING_ARGS",
    "get_registry",
    "check_spec",
    "check_components",
    "check_dimensions",
    "build_component",
    "build_transforms",
    # run folders
    "RESOLVED_CONFIG",
    "ORIGINAL_CONFIG",
    "ENVIRONMENT",
    "config_to_dict",
    "dump_config",
    "save_config",
    "collect_environment",
    "run_dir_for",
    "prepare_run_dir",
]


def __getattr__(name: str) -> Any:
    if name in _RUN_DIR_NAMES:
        from ..engine import rundir

        value = getattr(rundir, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
