"""The one builder: ``{name, **params}`` -> a registered component, checked against its signature.

Every registry (models, losses, transforms, metrics, optimizers, schedulers) builds its
components here, whether the spec comes from a config, a checkpoint or Python code. The
registered object is a class or a factory; the keyword arguments it accepts are read from
its signature, so a plugin component needs no schema of its own:

- the leading positional parameters the caller supplies (an optimizer's model
  parameters, a scheduler's optimizer) and any other positional-only ones are not spec
  keys; every other parameter is;
- a parameter without a default is required; ``**kwargs`` accepts any key;
- where a parameter has a type annotation, the value is validated against it with
  pydantic (``tuple[float, float, float]`` given two numbers: "expected 3 values, got 2").

Errors come in the terms of where the spec was written. With ``key`` (its place in a
config, e.g. ``preprocess[1]``) every problem is a row located at that key; without it
(a Python call such as ``create_model("unet", chanels=...)``) an unknown name raises the
registry's :class:`~medimg.core.errors.UnknownComponentError` and bad parameters one
:class:`~medimg.core.errors.ConfigError` sentence naming them.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .errors import ConfigError, MedimgError, MissingDependencyError, exception_reason
from .spec import ComponentSpec
from .terms import type_text, yaml_value

__all__ = [
    "KeyPath",
    "format_key",
    "did_you_mean",
    "unknown_key_message",
    "singular",
    "unknown_name",
    "as_spec",
    "check_spec",
    "build_component",
]

class Registry(Protocol):
    """What the builder needs of a :class:`~medimg.core.registry.Registry`."""

    kind: str

    def get(self, name: str) -> Any: ...
    def suggest(self, name: str) -> list[str]: ...
    def list(self) -> list[str]: ...
    def __contains__(self, name: object) -> bool: ...


#: A key inside a config: mapping keys (str, or int for e.g. ``label_map``) and list
#: indices, from the root: ``("preprocess", 1, "spacing")``.
KeyPath = tuple[Any, ...]


# --------------------------------------------------------------------------------------
# naming keys and components
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


def did_you_mean(word: Any, choices: Sequence[str]) -> str | None:
    """``did you mean 'a' or 'b'?`` for close matches of ``word``, else None."""
    close = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def unknown_key_message(word: Any, choices: Sequence[str]) -> str:
    """``unknown key; did you mean 'x'?`` or ``unknown key; allowed: a, b, c``."""
    dym = did_you_mean(word, choices)
    if dym:
        return f"unknown key; {dym}"
    return "unknown key; allowed: " + (", ".join(sorted(choices)) or "(none)")


def singular(kind: str) -> str:
    """``models`` -> ``model``, ``losses`` -> ``loss`` (for messages)."""
    if kind.endswith("sses"):
        return kind[:-2]
    return kind[:-1] if kind.endswith("s") else kind


def as_spec(spec: ComponentSpec | Mapping[str, Any]) -> ComponentSpec:
    """A :class:`ComponentSpec` from a spec or a mapping ``{"name": ..., **params}``.

    Raises:
        ConfigError: the mapping has no ``name``.
    """
    if isinstance(spec, ComponentSpec):
        return spec
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump()
    data = dict(spec)
    if not isinstance(data.get("name"), str):
        raise ConfigError(
            f"a component spec needs a 'name' (a registered name), got keys {sorted(map(str, data))}"
        )
    return ComponentSpec.model_validate(data)


# --------------------------------------------------------------------------------------
# signature checks
# --------------------------------------------------------------------------------------
def _type_name(hint: Any) -> str:
    """An annotation as a config writes the value (``list[float | null]``, not
    ``Sequence[Optional[float]]``)."""
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(yaml_value(a) for a in typing.get_args(hint))
    return type_text(hint)


def _is_sequence_type(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (list, tuple) or hint in (list, tuple):
        return True
    return origin is not None and isinstance(origin, type) and issubclass(origin, Sequence)


def _fixed_tuple_length(hint: Any) -> int | None:
    """N for ``tuple[X, X, X]`` (also inside ``Optional``), else None."""
    candidates = [hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(hint) if a is not type(None)]
    lengths = set()
    for c in candidates:
        if typing.get_origin(c) is tuple:
            args = typing.get_args(c)
            if args and Ellipsis not in args:
                lengths.add(len(args))
                continue
        if _is_sequence_type(c):
            return None  # another member takes sequences of any length
    return lengths.pop() if len(lengths) == 1 else None


def _check_value(value: Any, hint: Any) -> str | None:
    """A message if ``value`` does not fit the annotation ``hint``, else None."""
    if hint is inspect.Parameter.empty or hint is Any or isinstance(hint, str):
        return None
    n = _fixed_tuple_length(hint)
    if n is not None and isinstance(value, (list, tuple)) and len(value) != n:
        return f"expected {n} values, got {len(value)}"
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    try:
        adapter = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # types pydantic cannot describe (tensors, modules...): not checked
        return None
    try:
        adapter.validate_python(value)
    except ValidationError:
        got = repr(value) if isinstance(value, str) else yaml_value(value)
        return f"expected {_type_name(hint)}, got {got}"[:200]
    except Exception:  # a validator of an exotic type failed: do not guess
        return None
    return None


def _hints(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # annotations naming types only imported for type checking
        return {}


def _accepted(obj: Any, leading: int) -> tuple[dict[str, inspect.Parameter], bool] | None:
    """The spec keys ``obj`` accepts and whether it takes ``**kwargs`` (None: no signature)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return None
    accepted: dict[str, inspect.Parameter] = {}
    var_kw = False
    skipped = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and skipped < leading:
            skipped += 1
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            accepted[p.name] = p
    return accepted, var_kw


def unknown_name(
    registry: Registry, name: str, extra: Sequence[str] = (), *, see_list: bool = False
) -> str:
    """``unknown model 'unett'; did you mean 'unet'?`` (or ``; known: a, b``).

    Args:
        registry: where the name was looked up.
        name: the name as written.
        extra: further valid names (e.g. ``loss`` beside the metrics).
        see_list: end with ``(see `medimg list <kind>`)``.
    """
    names = [*registry.list(), *extra]
    close = difflib.get_close_matches(str(name).lower(), names, n=3, cutoff=0.6)
    msg = f"unknown {singular(registry.kind)} '{name}'"
    if close:
        msg += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    else:
        msg += f"; known: {', '.join(names) or '(none)'}"
    return msg + (f" (see `medimg list {registry.kind}`)" if see_list else "")


def _trial_build(obj: Any, params: Mapping[str, Any]) -> tuple[KeyPath, str] | None:
    """Construct once; what the constructor raises, at the key it names."""
    try:
        obj(**params)
    except Exception as exc:  # report what the constructor says, at the best key
        text = exception_reason(exc)
        named = [k for k in params if re.search(rf"\b{re.escape(k)}\b", text)]
        where: KeyPath = (named[0],) if len(named) == 1 else ()
        return where, text
    return None


def check_spec(
    registry: Registry,
    spec: ComponentSpec | Mapping[str, Any],
    leading: int = 0,
    *,
    trial_build: bool = False,
    random_ok: bool = True,
) -> list[tuple[KeyPath, str]]:
    """Check one component spec against its registry entry.

    Args:
        registry: where ``spec.name`` is looked up.
        spec: the component spec (or ``{"name": ..., **params}``).
        leading: positional arguments the caller will pass first (not spec keys).
        trial_build: also construct it once (cheap components only) and report what
            the constructor raises.
        random_ok: False where only deterministic transforms are allowed (preprocess).

    Returns:
        ``(key path relative to the spec, message)`` pairs; empty if it is fine.
    """
    spec = as_spec(spec)
    if spec.name not in registry:
        registry.suggest(spec.name)  # loads plugins: a plugin name is known after this
    if spec.name not in registry:
        return [(("name",), unknown_name(registry, spec.name, see_list=True))]
    obj = registry.get(spec.name)
    problems: list[tuple[KeyPath, str]] = []
    if not random_ok and getattr(obj, "random", False):
        problems.append(
            (
                ("name",),
                f"'{spec.name}' is a random augmentation; move it to 'augment' "
                "(preprocess must be deterministic: it is replayed and inverted at prediction)",
            )
        )
    found = _accepted(obj, leading)
    if found is None:
        return problems
    accepted, var_kw = found
    params = spec.params
    label = f"{singular(registry.kind)} '{spec.name}'"
    if not var_kw:
        for key in params:
            if key not in accepted:
                msg = unknown_key_message(key, list(accepted))
                if "did you mean" not in msg:
                    msg = f"unknown key; {label} takes: " + (", ".join(accepted) or "no parameters")
                problems.append(((key,), msg))
    for name, p in accepted.items():
        if p.default is p.empty and name not in params:
            problems.append(((name,), f"required key is missing ({label} needs it)"))
    hints = _hints(obj)
    for key, value in params.items():
        if key in accepted:
            msg = _check_value(value, hints.get(key, accepted[key].annotation))
            if msg:
                problems.append(((key,), msg))
    if trial_build and not problems:
        failed = _trial_build(obj, params)
        if failed is not None:
            problems.append(failed)
    return problems


# --------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------
def _problems_error(
    registry: Registry, spec: ComponentSpec, key: str | None, problems: list[tuple[KeyPath, str]]
) -> ConfigError:
    label = f"{singular(registry.kind)} '{spec.name}'"
    hint = f"see `medimg list {registry.kind}` for the registered names and their parameters"
    if key is None:  # a Python call: one sentence naming the parameters
        text = "; ".join(f"'{format_key(sub)}': {msg}" if sub else msg for sub, msg in problems)
        return ConfigError(
            f"{label} could not be built: {text}",
            problems=[("", format_key(sub) if sub else "", m) for sub, m in problems],
            hint=hint,
        )
    rows = [(f"{key}.{format_key(sub)}" if sub else key, msg) for sub, msg in problems]
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"  {k.ljust(width)}   {m}" for k, m in rows)
    n = len(rows)
    return ConfigError(
        f"cannot build {key} ({label}), {n} problem{'s' if n != 1 else ''}:\n{text}",
        problems=[("", k, m) for k, m in rows],
        hint=hint,
    )


def build_component(
    registry: Registry,
    spec: ComponentSpec | Mapping[str, Any],
    *leading: Any,
    key: str | None = None,
    random_ok: bool = True,
) -> Any:
    """Construct the component ``spec`` names: ``factory(*leading, **spec.params)``.

    Args:
        registry: where ``spec.name`` is looked up.
        spec: the component spec (or ``{"name": ..., **params}``).
        *leading: what the factory takes first and a spec cannot hold: the model
            parameters for an optimizer, the optimizer for a scheduler.
        key: where the spec sits in a config (``"model"``, ``"preprocess[1]"``), for
            messages; None for a spec written in Python.
        random_ok: False where a random component is refused (preprocessing).

    Raises:
        UnknownComponentError: no such name and no ``key`` (did-you-mean in the message).
        ConfigError: unknown or missing parameters, a value of the wrong type, or the
            factory rejecting its arguments; with ``key``, also an unknown name. The
            message names ``key`` (or the component and its parameters).
        MissingDependencyError: the component needs an optional package.
    """
    spec = as_spec(spec)
    if key is None:
        registry.get(spec.name)  # raises UnknownComponentError with did-you-mean
    problems = check_spec(registry, spec, len(leading), random_ok=random_ok)
    if problems:
        raise _problems_error(registry, spec, key, problems)
    factory = registry.get(spec.name)
    label = f"{singular(registry.kind)} '{spec.name}'"
    try:
        return factory(*leading, **spec.params)
    except MissingDependencyError:
        raise
    except (TypeError, ValueError, KeyError, AssertionError, MedimgError) as exc:
        text = exception_reason(exc)
        if key is None:
            if isinstance(exc, MedimgError):
                raise  # already says what is wrong, in medimg's terms
            raise ConfigError(f"{label} could not be built with {spec.params}: {text}") from exc
        # a medimg error raised on purpose by the factory keeps its own advice
        own_hint = getattr(exc, "hint", None) if isinstance(exc, MedimgError) else None
        raise ConfigError(
            f"cannot build {key} ({label}): {text}",
            problems=[("", key, text)],
            hint=own_hint or f"check the parameters of '{key}' in the config",
        ) from exc
