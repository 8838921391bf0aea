"""Load an experiment config: YAML (with line numbers) -> ``--set`` overrides -> pydantic.

Every problem is collected before anything is raised, so one
:class:`~medimg.core.errors.ConfigError` lists all of them, each located as
``file:line:col`` (1-based, the position of the offending key in the YAML file; ``--set``
for a value that came from an override) together with the dotted key
(``preprocess[1].spacing``) and a message with a did-you-mean for typos.

The steps, one module each: :mod:`~medimg.config.reading` (YAML with positions),
:mod:`~medimg.config.overrides` (``--set``), :mod:`~medimg.config.validation`
(schemas, paths), :mod:`~medimg.config.dimensions` (per-axis lengths) and
:mod:`~medimg.config.components` (registries and signatures; imports torch).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.builder import KeyPath, format_key
from ..core.spec import ExperimentConfig
from .components import check_components as check_registered
from .dimensions import check_dimensions
from .overrides import apply_overrides
from .problems import OVERRIDE_LOCATION, Problem, config_error, single_problem
from .reading import Positions, read_yaml
from .validation import check_paths as _check_paths
from .validation import resolve_paths, validate

__all__ = ["load_config"]


def _read(file: Path, source: str) -> tuple[dict[str, Any], Positions, list[Problem]]:
    """The file's top-level mapping, the position of every key, and its YAML problems."""
    data, positions, problems = read_yaml(file, source)
    if data is None:
        raise single_problem(
            source, "", "the file is empty", hint="a config needs at least 'data' and 'model' sections"
        )
    if not isinstance(data, dict):
        raise single_problem(
            source,
            f"{source}:1:1",
            f"the top level must be a mapping of sections (data:, model:, ...), "
            f"found {_yaml_kind(data)}",
        )
    return data, positions, problems


def _yaml_kind(value: Any) -> str:
    """What a YAML value is, in YAML's words: ``a list``, ``a string``, ``a number``..."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a single value"


def _override(
    data: dict[str, Any], positions: Positions, overrides: Sequence[str]
) -> tuple[dict[str, Any], list[tuple[KeyPath, Any, str]]]:
    """Apply ``--set`` values; their keys are located at ``--set``."""
    data, applied = apply_overrides(data, overrides)
    for key, _value, _raw in applied:
        positions.replace_subtree(key, OVERRIDE_LOCATION)
        for n in range(1, len(key)):  # sections the override created
            if not positions.has(key[:n]):
                positions.set(key[:n], OVERRIDE_LOCATION)
    return data, applied


def _validate(
    data: dict[str, Any], applied: list[tuple[KeyPath, Any, str]]
) -> tuple[ExperimentConfig | None, list[tuple[KeyPath, str]]]:
    """Schema validation; a ``--set`` value YAML read as a number or bool where a string is
    expected (``--set experiment.name=2024``) is taken as the text given, then validated again."""
    cfg, errors = validate(data)
    retry = False
    for key, value, raw in applied:
        if cfg is None and not isinstance(value, str) and value is not None:
            if any(p == key and "valid string" in m for p, m in errors):
                _set_in(data, key, raw.strip())
                retry = True
    if retry:
        cfg, errors = validate(data)
    return cfg, errors


def _add_new(found: list[tuple[KeyPath, str]], more: list[tuple[KeyPath, str]]) -> None:
    """Add the problems of ``more`` at keys that have none yet (one problem per key)."""
    seen = {p for p, _ in found}
    found.extend(item for item in more if item[0] not in seen)


def load_config(
    path: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    *,
    check_components: bool = True,
    check_paths: bool = True,
) -> ExperimentConfig:
    """Read, override, validate and check an experiment config file.

    Args:
        path: the YAML file.
        overrides: ``KEY=VALUE`` strings as given to ``--set``, applied in order; the
            value is parsed as YAML; list items as ``preprocess[1].spacing`` or
            ``preprocess.1.spacing``.
        check_components: also look every component (model, loss, optimizer,
            scheduler, transforms, metrics) up in its registry and check its
            parameters against the constructor's signature. This imports the
            registries (and so torch); without it only the schema is checked.
        check_paths: report ``data.manifest`` / ``data.root`` that do not exist.

    Returns:
        The validated config; ``data.manifest`` and ``data.root`` are absolute (relative
        ones in the file are taken from the file's folder, ones from ``--set`` from
        the current directory).

    Raises:
        ConfigError: listing every problem found, each with ``file:line:col``, the
            dotted key and a message (did-you-mean for typos); ``.problems`` holds them
            as ``(location, key, message)`` tuples.
    """
    file = Path(path)
    source = str(path)
    data, positions, problems = _read(file, source)
    data, applied = _override(data, positions, overrides)
    cfg, errors = _validate(data, applied)

    found: list[tuple[KeyPath, str]] = list(errors)
    if cfg is not None:
        cfg = resolve_paths(cfg, file.parent.absolute(), {key for key, _, _ in applied})
        if check_paths:
            found.extend(_check_paths(cfg))
    # with schema errors, the well-formed parts are still checked: all problems at once
    _add_new(found, check_dimensions(cfg if cfg is not None else data))
    if check_components:
        _add_new(found, check_registered(cfg if cfg is not None else data))

    located = [(positions.locate(p), format_key(p), m) for p, m in found]
    problems.extend(sorted(located, key=_location_order))
    if problems:
        raise config_error(source, problems)
    assert cfg is not None
    return cfg


def _location_order(problem: Problem) -> tuple[int, int, int]:
    """File positions first, in file order; then --set values."""
    m = re.search(r":(\d+):(\d+)$", problem[0])
    if m:
        return (0, int(m.group(1)), int(m.group(2)))
    return (1, 0, 0)


def _set_in(data: Any, path: KeyPath, value: Any) -> None:
    cur = data
    for part in path[:-1]:
        cur = cur[part]
    cur[path[-1]] = value
