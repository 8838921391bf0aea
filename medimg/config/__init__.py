"""YAML -> pydantic schemas -> registered components."""

from .schema import ComponentSpec, ExperimentConfig

__all__ = ["ComponentSpec", "ExperimentConfig"]
