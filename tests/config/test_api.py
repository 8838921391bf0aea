"""The public API of medimg.config and medimg.cli, pinned."""

from __future__ import annotations

import medimg.cli
import medimg.config


def test_config_public_names():
    assert sorted(medimg.config.__all__) == sorted(
        [
            "ExperimentConfig", "ComponentSpec", "ExperimentSection", "DataSection", "TrainerSection",
            "InferenceSection", "EvaluationSection",
            "load_config", "parse_override", "apply_overrides", "format_key", "format_problems",
            "REGISTRY_KINDS", "LEADING_ARGS", "get_registry", "check_spec", "check_components",
            "check_dimensions", "build_component", "build_transforms",
            "RESOLVED_CONFIG", "ORIGINAL_CONFIG", "ENVIRONMENT", "config_to_dict", "dump_config",
            "save_config", "collect_environment", "run_dir_for", "prepare_run_dir",
        ]
    )
    for name in medimg.config.__all__:
        assert getattr(medimg.config, name) is not None
    assert medimg.load_config is medimg.config.load_config


def test_cli_public_names():
    assert medimg.cli.__all__ == ["app", "main"]
    assert callable(medimg.cli.main)
