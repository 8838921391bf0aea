"""Validate a config's data with the pydantic schemas; make its paths absolute and check them.

Pydantic's errors are turned into ``(key path, message)`` problems on the data's own
keys (union and validator tags dropped), with a did-you-mean for unknown keys.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.builder import KeyPath, unknown_key_message
from ..core.spec import ExperimentConfig
from .problems import short

__all__ = ["PATH_KEYS", "validate", "resolve_paths", "check_paths"]

#: Path-valued keys that are resolved against the config file's folder.
PATH_KEYS: tuple[KeyPath, ...] = (
    ("data", "manifest"), ("data", "root"), ("data", "npz"), ("data", "split_file"), ("data", "cache_dir"),
)


def _unwrap(annotation: Any) -> Any:
    """The BaseModel inside ``X | None`` / ``list[X]`` / ``dict[K, X]``, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def _model_at(root: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``path`` (list indices skipped)."""
    model: type[BaseModel] | None = root
    for part in path:
        if model is None:
            return None
        if isinstance(part, int) and not isinstance(part, bool):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model


def _clean_loc(loc: Sequence[Any], data: Any, error_type: str) -> KeyPath:
    """Map a pydantic ``loc`` onto the data's real keys, dropping union/function tags."""
    out: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        if isinstance(cur, dict):
            key = part if part in cur else next((k for k in cur if str(k) == str(part)), None)
            if key is not None or part in cur:
                out.append(part if part in cur else key)
                cur = cur[out[-1]]
                continue
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
            continue
        if i == len(loc) - 1 and error_type in ("missing", "extra_forbidden"):
            out.append(part)
        # anything else is a tag pydantic adds for unions / validators: not a key
    return tuple(out)


def _message(err: Mapping[str, Any], path: KeyPath) -> str:
    etype = err["type"]
    if etype == "missing":
        return "required key is missing"
    if etype == "extra_forbidden":
        model = _model_at(ExperimentConfig, path[:-1])
        fields = list(model.model_fields) if model is not None else []
        return unknown_key_message(path[-1] if path else "", fields)
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    msg = msg[:1].lower() + msg[1:]
    if etype != "value_error" and "input" in err:
        value = err["input"]
        if value is None or isinstance(value, (str, int, float, bool)):
            msg += f" (got {short(value)})"
    return msg


def validate(data: Any) -> tuple[ExperimentConfig | None, list[tuple[KeyPath, str]]]:
    """The validated config (None when invalid) and every problem, on the data's keys."""
    try:
        return ExperimentConfig.model_validate(data), []
    except ValidationError as exc:
        found: dict[KeyPath, list[str]] = {}
        for err in exc.errors():
            path = _clean_loc(err["loc"], data, err["type"])
            msg = _message(err, path)
            if msg not in found.setdefault(path, []):
                found[path].append(msg)
        # pydantic reports one error per union member: join them into one problem
        return None, [(p, " or ".join(m)) for p, m in found.items()]


def resolve_paths(
    cfg: ExperimentConfig, base_dir: Path, from_override: set[KeyPath]
) -> ExperimentConfig:
    """Make ``data.manifest``/``root``/``npz``/``split_file``/``cache_dir`` absolute (file folder, or cwd for --set)."""
    updates: dict[str, Path] = {}
    for path in PATH_KEYS:
        value = getattr(cfg.data, path[1])
        if value is None:
            continue
        p = Path(os.path.expanduser(str(value)))
        if not p.is_absolute():
            base = Path.cwd() if path in from_override else base_dir
            p = base / p
        updates[path[1]] = Path(os.path.normpath(p.absolute()))
    if not updates:
        return cfg
    data = cfg.data.model_copy(update=updates)
    return cfg.model_copy(update={"data": data})


def check_paths(cfg: ExperimentConfig) -> list[tuple[KeyPath, str]]:
    """``data.manifest`` / ``data.root`` / ``data.npz`` that do not exist or are of the wrong kind."""
    out: list[tuple[KeyPath, str]] = []
    if cfg.data.manifest is not None:
        if not cfg.data.manifest.exists():
            out.append((("data", "manifest"), f"file not found: {cfg.data.manifest}"))
        elif not cfg.data.manifest.is_file():
            out.append((("data", "manifest"), f"not a file (a CSV manifest is expected): {cfg.data.manifest}"))
    if cfg.data.npz is not None and not cfg.data.npz.is_file():
        out.append((("data", "npz"), f"file not found: {cfg.data.npz}" if not cfg.data.npz.exists() else f"not a file (a .npz file is expected): {cfg.data.npz}"))
    if cfg.data.split_file is not None and not cfg.data.split_file.is_file():
        out.append((("data", "split_file"), f"split file not found: {cfg.data.split_file} (write one with `medimg split`)"))
    if cfg.data.root is not None:
        if not cfg.data.root.exists():
            out.append((("data", "root"), f"folder not found: {cfg.data.root}"))
        elif not cfg.data.root.is_dir():
            out.append((("data", "root"), f"not a folder: {cfg.data.root}"))
    return out


