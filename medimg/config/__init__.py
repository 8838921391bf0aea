"""YAML -> pydantic schemas -> registered components.

``load_config(path, overrides)`` reads a YAML file keeping the line and column of every
key, applies ``--set KEY=VALUE`` overrides, validates with the pydantic schemas of
:mod:`medimg.config.schema` (unknown keys are errors) and checks each component against
its registry and constructor signature, reporting every problem at once::

    invalid config 'brats.yaml' (2 problems):
      brats.yaml:12:5  preprocess[1].spacing   expected 3 values, got 2
      brats.yaml:20:3  model.num_clases        unknown key; did you mean 'num_classes'?

Importing this package does not import torch; checking components imports the
registries (and so torch).
"""

from .build import (
    LEADING_ARGS,
    REGISTRY_KINDS,
    build_component,
    build_transforms,
    check_components,
    check_dimensions,
    check_spec,
    get_registry,
)
from .loader import apply_overrides, format_key, format_problems, load_config, parse_override
from .run import (
    ENVIRONMENT,
    ORIGINAL_CONFIG,
    RESOLVED_CONFIG,
    collect_environment,
    config_to_dict,
    dump_config,
    prepare_run_dir,
    run_dir_for,
    save_config,
)
from .schema import (
    ComponentSpec,
    DataSection,
    EvaluationSection,
    ExperimentConfig,
    ExperimentSection,
    InferenceSection,
    TrainerSection,
)

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
