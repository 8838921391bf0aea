"""Load an experiment config: YAML (with line numbers) -> ``--set`` overrides -> pydantic.

Every problem is collected before anything is raised, so one :class:`ConfigError` lists
all of them, each located as ``file:line:col`` (1-based, the position of the offending
key in the YAML file; ``--set`` for a value that came from an override) together with
the dotted key (``preprocess[1].spacing``) and a message with a did-you-mean for typos.

Nothing here evaluates code from a config: YAML is read with ``yaml.safe_load``
semantics and components are looked up by registered name only.

This module imports neither torch nor the component registries at import time; the
registries are imported only when components are checked (``check_components=True``).
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError, SafeConstructor

from .schema import ExperimentConfig

__all__ = [
    "KeyPath",
    "Problem",
    "load_config",
    "parse_override",
    "apply_overrides",
    "format_key",
    "format_problems",
    "config_error",
]

#: A key inside a config: mapping keys (str, or int for e.g. ``label_map``) and list
#: indices, from the root: ``("preprocess", 1, "spacing")``.
KeyPath = tuple[Any, ...]
#: ``(location, key, message)``: location is ``file:line:col``, ``--set`` or ``""``.
Problem = tuple[str, str, str]

#: Location label of values that came from ``--set``.
OVERRIDE_LOCATION = "--set"
#: Path-valued keys that are resolved against the config file's folder.
PATH_KEYS: tuple[KeyPath, ...] = (("data", "manifest"), ("data", "root"))


# --------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------
def format_key(path: Sequence[Any]) -> str:
    """``("preprocess", 1, "spacing")`` -> ``"preprocess[1].spacing"``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


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


def config_error(source: str, problems: Sequence[Problem], hint: str | None = None):
    """Build the :class:`~medimg.core.errors.ConfigError` for ``problems``.

    Imported lazily: ``medimg.core`` imports torch, which a valid config never needs.
    """
    from ..core.errors import ConfigError

    return ConfigError(format_problems(source, problems), problems=list(problems), hint=hint)


def _did_you_mean(word: Any, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def unknown_key_message(word: Any, choices: Sequence[str]) -> str:
    """``unknown key; did you mean 'x'?`` or ``unknown key; allowed: a, b, c``."""
    dym = _did_you_mean(word, choices)
    if dym:
        return f"unknown key; {dym}"
    return "unknown key; allowed: " + (", ".join(sorted(choices)) or "(none)")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------
# YAML with positions
# --------------------------------------------------------------------------------------
class _Positions:
    """``KeyPath -> "file:line:col"`` of every key (and list item) of a YAML document.

    Lookups fall back to the nearest ancestor, so a missing key is located at its
    parent section. Keys are compared by their string form (pydantic reports dict keys
    as it received them; YAML may have parsed them as ints).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._at: dict[tuple[str, ...], str] = {}

    @staticmethod
    def _norm(path: Sequence[Any]) -> tuple[str, ...]:
        return tuple(str(p) for p in path)

    def set(self, path: Sequence[Any], location: str) -> None:
        self._at[self._norm(path)] = location

    def mark(self, path: Sequence[Any], mark: yaml.Mark) -> None:
        self.set(path, f"{self.source}:{mark.line + 1}:{mark.column + 1}")

    def replace_subtree(self, path: Sequence[Any], location: str) -> None:
        """Forget every position under ``path`` (an override replaced it)."""
        norm = self._norm(path)
        for key in [k for k in self._at if k[: len(norm)] == norm]:
            del self._at[key]
        self._at[norm] = location

    def has(self, path: Sequence[Any]) -> bool:
        return self._norm(path) in self._at

    def locate(self, path: Sequence[Any]) -> str:
        norm = self._norm(path)
        for n in range(len(norm), -1, -1):
            if norm[:n] in self._at:
                return self._at[norm[:n]]
        return f"{self.source}:1:1"


def _walk_nodes(
    node: yaml.Node,
    path: KeyPath,
    positions: _Positions,
    constructor: SafeConstructor,
    problems: list[Problem],
) -> None:
    """Record the position of every key below ``node``; report duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            try:
                key = constructor.construct_object(key_node, deep=True)
            except ConstructorError:
                key = getattr(key_node, "value", "?")
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(getattr(key_node, "value", key))
            sub = (*path, key)
            if str(key) in seen and key != "<<":
                first = seen[str(key)]
                problems.append(
                    (
                        f"{positions.source}:{key_node.start_mark.line + 1}:"
                        f"{key_node.start_mark.column + 1}",
                        format_key(sub),
                        f"duplicate key (first given on line {first.line + 1}); "
                        "YAML keeps only the last one, so remove one of them",
                    )
                )
            seen[str(key)] = key_node.start_mark
            positions.mark(sub, key_node.start_mark)
            _walk_nodes(value_node, sub, positions, constructor, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            positions.mark(sub, item.start_mark)
            _walk_nodes(item, sub, positions, constructor, problems)


def _read_yaml(path: Path, source: str) -> tuple[Any, _Positions, list[Problem]]:
    """Parse ``path`` into plain data plus the position of every key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _single(source, "", "file not found", hint="check the path of the config file") from None
    except IsADirectoryError:
        raise _single(source, "", "is a folder, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _single(source, "", f"cannot be read: {exc}") from None

    positions = _Positions(source)
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise _single(
            source, loc, f"YAML syntax error: {what}", hint="check indentation, colons and quotes"
        ) from None
    except yaml.YAMLError as exc:
        raise _single(source, "", f"YAML syntax error: {exc}") from None

    problems: list[Problem] = []
    if node is not None:
        _walk_nodes(node, (), positions, SafeConstructor(), problems)
    return data, positions, problems


def _single(source: str, location: str, message: str, hint: str | None = None):
    from ..core.errors import ConfigError

    text = f"invalid config '{source}': {message}"
    if location and location != source:
        text = f"invalid config '{source}': {location}: {message}"
    return ConfigError(text, problems=[(location, "", message)], hint=hint)


# --------------------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\[(-?\d+)\]|([^.\[\]]+)")


def parse_override(text: str) -> tuple[KeyPath, Any, str]:
    """Parse ``a.b[1].c=value`` into ``(("a", "b", 1, "c"), value, "value")``.

    The value is parsed as YAML (``5`` -> int, ``[1, 2]`` -> list, ``null`` -> None,
    ``{name: x}`` -> dict); the raw text is returned too. ``a.b.1.c`` is the same key
    as ``a.b[1].c`` when ``b`` is a list.

    Raises:
        ConfigError: no ``=``, an empty or malformed key, or a value that is not YAML.
    """
    if "=" not in text:
        raise _override_error(text, "expected KEY=VALUE, e.g. --set trainer.max_epochs=5")
    key, raw = text.split("=", 1)
    key = key.strip()
    path: list[Any] = []
    pos = 0
    for m in _TOKEN.finditer(key):
        between = key[pos : m.start()]
        if between not in ("", "."):
            raise _override_error(text, f"cannot parse the key '{key}'")
        pos = m.end()
        path.append(int(m.group(1)) if m.group(1) is not None else m.group(2).strip())
    if not path or key[pos:] not in ("",) or key.endswith("."):
        raise _override_error(text, f"cannot parse the key '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise _override_error(
            text, f"the value '{raw}' is not valid YAML ({getattr(exc, 'problem', exc)})",
        ) from None
    return tuple(path), value, raw


def _override_error(text: str, message: str):
    from ..core.errors import ConfigError

    return ConfigError(
        f"invalid --set '{text}': {message}",
        problems=[(OVERRIDE_LOCATION, text, message)],
        hint="write --set section.key=value; list items as preprocess[1].spacing; "
        "values are YAML: 5, 1e-3, true, null, [1, 2], {name: x}",
    )


def _as_index(token: Any) -> int | None:
    if isinstance(token, int) and not isinstance(token, bool):
        return token
    if isinstance(token, str) and re.fullmatch(r"-?\d+", token):
        return int(token)
    return None


def _dict_key(mapping: Mapping[Any, Any], token: Any) -> Any:
    """The existing key of ``mapping`` that ``token`` names (``"4"`` may mean ``4``)."""
    if token in mapping:
        return token
    for k in mapping:
        if str(k) == str(token):
            return k
    if isinstance(token, str):
        try:
            parsed = yaml.safe_load(token)
        except yaml.YAMLError:
            return token
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return parsed
    return token


def apply_overrides(
    data: Mapping[str, Any], overrides: Sequence[str]
) -> tuple[dict[str, Any], list[tuple[KeyPath, Any, str]]]:
    """Return a copy of ``data`` with every ``--set KEY=VALUE`` applied, in order.

    Missing mappings along the way are created (``--set scheduler.name=cosine`` works
    when the file has no scheduler); list items must exist (use ``--set key=[...]`` to
    replace a whole list). Whether the keys exist in the schema is checked afterwards
    by validation, which reports unknown ones with a did-you-mean.

    Returns:
        The new data and the applied ``(key path, value, raw text)`` triples, with list
        indices normalised to non-negative ints.
    """
    import copy

    out: dict[str, Any] = copy.deepcopy(dict(data))
    applied: list[tuple[KeyPath, Any, str]] = []
    for text in overrides:
        path, value, raw = parse_override(text)
        cur: Any = out
        real: list[Any] = []
        for depth, token in enumerate(path):
            last = depth == len(path) - 1
            where = format_key(real) if real else "the top level"
            if isinstance(cur, dict):
                key = _dict_key(cur, token)
                real.append(key)
                if last:
                    cur[key] = value
                else:
                    if cur.get(key) is None:
                        cur[key] = {}
                    cur = cur[key]
            elif isinstance(cur, list):
                idx = _as_index(token)
                if idx is None:
                    raise _override_error(
                        text, f"{where} is a list; index it with a number, e.g. {where}[0]"
                    )
                if not -len(cur) <= idx < len(cur):
                    raise _override_error(
                        text,
                        f"{where} has {len(cur)} entries, so index {idx} does not exist; "
                        f"replace the whole list instead: --set '{where}=[...]'",
                    )
                idx %= len(cur)
                real.append(idx)
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            else:
                raise _override_error(
                    text, f"{where} is {_short(cur)}, not a section or list, so it has no key '{token}'"
                )
        applied.append((tuple(real), value, raw))
    return out, applied


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
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
            msg += f" (got {_short(value)})"
    return msg


def _validate(
    data: Any, positions: _Positions
) -> tuple[ExperimentConfig | None, list[tuple[KeyPath, str]]]:
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


def _resolve_paths(
    cfg: ExperimentConfig, base_dir: Path, from_override: set[KeyPath]
) -> ExperimentConfig:
    """Make ``data.manifest``/``data.root`` absolute (file folder, or cwd for --set)."""
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


def _check_paths(cfg: ExperimentConfig) -> list[tuple[KeyPath, str]]:
    out: list[tuple[KeyPath, str]] = []
    if cfg.data.manifest is not None:
        if not cfg.data.manifest.exists():
            out.append((("data", "manifest"), f"file not found: {cfg.data.manifest}"))
        elif not cfg.data.manifest.is_file():
            out.append((("data", "manifest"), f"not a file (a CSV manifest is expected): {cfg.data.manifest}"))
    if cfg.data.root is not None:
        if not cfg.data.root.exists():
            out.append((("data", "root"), f"folder not found: {cfg.data.root}"))
        elif not cfg.data.root.is_dir():
            out.append((("data", "root"), f"not a folder: {cfg.data.root}"))
    return out


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
    data, positions, problems = _read_yaml(file, source)
    if data is None:
        raise _single(
            source, "", "the file is empty", hint="a config needs at least 'data' and 'model' sections"
        )
    if not isinstance(data, dict):
        raise _single(
            source,
            f"{source}:1:1",
            f"the top level must be a mapping of sections (data:, model:, ...), "
            f"found a {type(data).__name__}",
        )

    data, applied = apply_overrides(data, overrides)
    for key, _value, _raw in applied:
        positions.replace_subtree(key, OVERRIDE_LOCATION)
        for n in range(1, len(key)):  # sections the override created
            if not positions.has(key[:n]):
                positions.set(key[:n], OVERRIDE_LOCATION)
    from_override = {key for key, _, _ in applied}

    cfg, errors = _validate(data, positions)
    # A --set value YAML read as a number/bool where a string is expected
    # (--set experiment.name=2024): use the text as given, then validate again.
    retry = False
    for key, value, raw in applied:
        if cfg is None and not isinstance(value, str) and value is not None:
            if any(p == key and "valid string" in m for p, m in errors):
                _set_in(data, key, raw.strip())
                retry = True
    if retry:
        cfg, errors = _validate(data, positions)

    found: list[tuple[KeyPath, str]] = list(errors)
    if cfg is not None:
        cfg = _resolve_paths(cfg, file.parent.absolute(), from_override)
        if check_paths:
            found.extend(_check_paths(cfg))
    from .build import check_dimensions

    # with schema errors, the well-formed parts are still checked: all problems at once
    seen = {p for p, _ in found}
    found.extend(item for item in check_dimensions(cfg if cfg is not None else data) if item[0] not in seen)
    if check_components:
        from .build import check_components as _check

        seen = {p for p, _ in found}
        found.extend(item for item in _check(cfg if cfg is not None else data) if item[0] not in seen)

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

