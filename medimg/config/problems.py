"""Config problems: ``(location, key, message)`` triples and the report that lists them all.

A location is ``file:line:col`` (1-based, the position of the offending key in the YAML
file), ``--set`` for a value that came from an override, or ``""``. Every problem of a
config is collected before one :class:`~medimg.core.errors.ConfigError` is raised::

    invalid config 'brats.yaml' (2 problems):
      brats.yaml:12:5  preprocess[1].spacing   expected 3 values, got 2
      brats.yaml:20:3  model.num_clases        unknown key; did you mean 'num_classes'?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.errors import ConfigError

__all__ = [
    "Problem",
    "OVERRIDE_LOCATION",
    "format_problems",
    "config_error",
    "single_problem",
    "override_error",
    "short",
]

#: ``(location, key, message)``: location is ``file:line:col``, ``--set`` or ``""``.
Problem = tuple[str, str, str]

#: Location label of values that came from ``--set``.
OVERRIDE_LOCATION = "--set"


def format_problems(source: str, problems: Sequence[Problem]) -> str:
    """The multi-line report of :class:`ConfigError`, columns aligned::

        invalid config 'brats.yaml' (2 problems):
          brats.yaml:12:5  preprocess[1].spacing   expected 3 values, got 2
          brats.yaml:20:3  model.num_clases        unknown key; did you mean 'num_classes'?
    """
    n = len(problems)
    head = f"invalid config '{source}' ({n} problem{'s' if n != 1 else ''}):"
    wl = max((len(loc) for loc, _, _ in problems), default=0)
    wk = max((len(key) for _, key, _ in problems), default=0)
    lines = [head]
    for loc, key, msg in problems:
        if loc:
            lines.append(f"  {loc.ljust(wl)}  {key.ljust(wk)}   {msg}")
        else:
            lines.append(f"  {key.ljust(wk)}   {msg}")
    return "\n".join(lines)



def config_error(source: str, problems: Sequence[Problem], hint: str | None = None) -> ConfigError:
    """The :class:`~medimg.core.errors.ConfigError` listing ``problems``."""
    return ConfigError(format_problems(source, problems), problems=list(problems), hint=hint)


def single_problem(source: str, location: str, message: str, hint: str | None = None) -> ConfigError:
    """A config that cannot be read at all (missing file, YAML syntax): one problem."""
    text = f"invalid config '{source}': {message}"
    if location and location != source:
        text = f"invalid config '{source}': {location}: {message}"
    return ConfigError(text, problems=[(location, "", message)], hint=hint)


def override_error(text: str, message: str) -> ConfigError:
    """A ``--set KEY=VALUE`` that cannot be parsed or applied."""
    return ConfigError(
        f"invalid --set '{text}': {message}",
        problems=[(OVERRIDE_LOCATION, text, message)],
        hint="write --set section.key=value; list items as preprocess[1].spacing; "
        "values are YAML: 5, 1e-3, true, null, [1, 2], {name: x}",
    )


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
