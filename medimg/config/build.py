"""Registered components from config specs, checked against their signatures.

A component is written in a config as ``{name: <registered name>, <kwargs>...}``
(:class:`~medimg.config.schema.ComponentSpec`). The registered object is a class or a
factory; the keyword arguments it accepts are read from its signature, so a plugin
component needs no schema of its own.

Calling convention (what :func:`build_component` passes positionally):

========== ====================================== ==============================
registry    module                                 called as
========== ====================================== ==============================
models      ``medimg.models.MODELS``               ``factory(**spec.params)``
transforms  ``medimg.transforms.TRANSFORMS``       ``factory(**spec.params)``
losses      ``medimg.losses.LOSSES``               ``factory(**spec.params)``
metrics     ``medimg.metrics.METRICS``             ``factory(**spec.params)``
optimizers  ``medimg.engine.OPTIMIZERS``           ``factory(model_params, **spec.params)``
schedulers  ``medimg.engine.SCHEDULERS``           ``factory(optimizer, **spec.params)``
========== ====================================== ==============================

The leading positional parameters supplied by the caller (``params``, ``optimizer``)
and any other positional-only parameters are not config keys; every other parameter
is. A parameter without a default is required; ``**kwargs`` accepts any key. Where a
parameter has a type annotation, the config value is validated against it with
pydantic (``tuple[float, float, float]`` given two numbers: "expected 3 values, got 2").

The registries are imported lazily, on first use: they import torch.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .loader import KeyPath, format_key, unknown_key_message
from .schema import ComponentSpec, ExperimentConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..core.registry import Registry
    from ..transforms import Compose

__all__ = [
    "REGISTRY_KINDS",
    "LEADING_ARGS",
    "get_registry",
    "check_spec",
    "check_components",
    "check_dimensions",
    "build_component",
    "build_transforms",
]

#: kind -> (module, attribute) of each component registry.
REGISTRY_KINDS: dict[str, tuple[str, str]] = {
    "models": ("medimg.models", "MODELS"),
    "transforms": ("medimg.transforms", "TRANSFORMS"),
    "losses": ("medimg.losses", "LOSSES"),
    "metrics": ("medimg.metrics", "METRICS"),
    "optimizers": ("medimg.engine", "OPTIMIZERS"),
    "schedulers": ("medimg.engine", "SCHEDULERS"),
}

#: Positional arguments the caller passes before the config kwargs, by registry kind.
LEADING_ARGS: dict[str, int] = {"optimizers": 1, "schedulers": 1}

#: Kinds whose components are cheap to construct: built once while checking a config,
#: so that errors their constructors raise are reported with the config's location.
#: (Not losses: building MONAI's imports all of MONAI, ~10 s on a busy 2-core machine.)
_TRIAL_BUILD = ("transforms",)


def _singular(kind: str) -> str:
    if kind.endswith("sses"):  # losses -> loss
        return kind[:-2]
    return kind[:-1] if kind.endswith("s") else kind


def get_registry(kind: str) -> "Registry[Any]":
    """Import and return the registry of ``kind`` (``"models"``, ``"transforms"``, ...).

    Raises:
        ConfigError: ``kind`` is not a registry kind.
        ImportError: the registry's module cannot be imported.
    """
    if kind not in REGISTRY_KINDS:
        from ..core.errors import ConfigError

        close = difflib.get_close_matches(kind, list(REGISTRY_KINDS), n=1)
        raise ConfigError(
            f"unknown component kind '{kind}'; known: {', '.join(REGISTRY_KINDS)}",
            hint=f"did you mean '{close[0]}'?" if close else None,
        )
    module, attr = REGISTRY_KINDS[kind]
    mod = importlib.import_module(module)
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ImportError(f"{module} has no registry '{attr}'") from None


# --------------------------------------------------------------------------------------
# signature checks
# --------------------------------------------------------------------------------------
def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if isinstance(hint, type):
        return hint.__name__
    text = str(hint)
    text = re.sub(r"\b(typing|collections\.abc|builtins)\.", "", text)
    return re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Z]\w*)", r"\1", text)


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
        if typing.get_origin(c) in (list, tuple) or c in (list, tuple) or (
            typing.get_origin(c) is not None
            and isinstance(typing.get_origin(c), type)
            and issubclass(typing.get_origin(c), Sequence)
        ):
            return None  # another member takes sequences of any length
    return lengths.pop() if len(lengths) == 1 else None


def _check_value(value: Any, hint: Any) -> str | None:
    """A message if ``value`` does not fit the annotation ``hint``, else None."""
    if hint is inspect.Parameter.empty or hint is Any or isinstance(hint, str):
        return None
    n = _fixed_tuple_length(hint)
    if n is not None and isinstance(value, (list, tuple)) and len(value) != n:
        return f"expected {n} values, got {len(value)}"
    try:
        from pydantic import ConfigDict, TypeAdapter, ValidationError

        adapter = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # types pydantic cannot describe (tensors, modules...): not checked
        return None
    try:
        adapter.validate_python(value)
    except ValidationError:
        return f"expected {_type_name(hint)}, got {value!r}"[:200]
    except Exception:  # a validator of an exotic type failed: do not guess
        return None
    return None


def _hints(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # annotations naming types only imported for type checking
        return {}


def check_spec(
    registry: "Registry[Any]",
    spec: ComponentSpec,
    leading: int = 0,
    *,
    trial_build: bool = False,
    random_ok: bool = True,
) -> list[tuple[KeyPath, str]]:
    """Check one component spec against its registry entry.

    Args:
        registry: where ``spec.name`` is looked up.
        spec: the config's component spec.
        leading: positional arguments the caller will pass first (not config keys).
        trial_build: also construct it once (cheap components only) and report what
            the constructor raises.
        random_ok: False where only deterministic transforms are allowed (preprocess).

    Returns:
        ``(key path relative to the spec, message)`` pairs; empty if it is fine.
    """
    kind = registry.kind
    if spec.name not in registry:
        close = registry.suggest(spec.name)
        msg = f"unknown {_singular(kind)} '{spec.name}'"
        msg += f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else (
            f"; known: {', '.join(registry.list()) or '(none)'}"
        )
        return [(("name",), msg + f" (see `medimg list {kind}`)")]
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
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return problems
    params = spec.params
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
    label = f"{_singular(kind)} '{spec.name}'"
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
        try:
            obj(**params)
        except Exception as exc:  # report what the constructor says, at the best key
            text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            named = [k for k in params if re.search(rf"\b{re.escape(k)}\b", text)]
            where: KeyPath = (named[0],) if len(named) == 1 else ()
            problems.append((where, text.splitlines()[0] if text else type(exc).__name__))
    return problems


def _registry_or_problem(kind: str, section: KeyPath) -> tuple[Any, list[tuple[KeyPath, str]]]:
    try:
        return get_registry(kind), []
    except ImportError as exc:
        return None, [
            (section, f"cannot check: the {kind} registry could not be imported ({exc})")
        ]


def _specs_of(cfg: ExperimentConfig) -> list[tuple[str, KeyPath, ComponentSpec, bool]]:
    specs: list[tuple[str, KeyPath, ComponentSpec, bool]] = [("models", ("model",), cfg.model, True)]
    specs.append(("losses", ("loss",), cfg.loss, True))
    specs.append(("optimizers", ("optimizer",), cfg.optimizer, True))
    if cfg.scheduler is not None:
        specs.append(("schedulers", ("scheduler",), cfg.scheduler, True))
    specs += [("transforms", ("preprocess", i), s, False) for i, s in enumerate(cfg.preprocess)]
    specs += [("transforms", ("augment", i), s, True) for i, s in enumerate(cfg.augment)]
    return specs


def _specs_of_raw(data: Mapping[str, Any]) -> list[tuple[str, KeyPath, ComponentSpec, bool]]:
    """The component specs of a config that failed validation elsewhere: each spec
    that is itself well formed is still checked, so all problems come out at once."""
    from pydantic import ValidationError

    out: list[tuple[str, KeyPath, ComponentSpec, bool]] = []

    def add(kind: str, path: KeyPath, value: Any, random_ok: bool) -> None:
        if isinstance(value, Mapping):
            try:
                out.append((kind, path, ComponentSpec.model_validate(dict(value)), random_ok))
            except ValidationError:
                pass  # already reported by the schema validation

    for kind, key in (("models", "model"), ("losses", "loss"), ("optimizers", "optimizer"), ("schedulers", "scheduler")):
        add(kind, (key,), data.get(key), True)
    for section, random_ok in (("preprocess", False), ("augment", True)):
        items = data.get(section)
        if isinstance(items, list):
            for i, item in enumerate(items):
                add("transforms", (section, i), item, random_ok)
    return out


def check_components(cfg: ExperimentConfig | Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    """Check every component of ``cfg`` against its registry; all problems, with keys.

    Checks the model, loss, optimizer, scheduler, every preprocess/augment transform
    (preprocess ones must not be random) and the names in ``evaluation.metrics`` and
    ``evaluation.select_by`` (per-axis lengths are :func:`check_dimensions`, which
    needs no registry). ``cfg`` may also be the raw config data (a config with
    schema errors): then every well-formed component spec in it is checked.
    """
    problems: list[tuple[KeyPath, str]] = []
    if isinstance(cfg, ExperimentConfig):
        specs = _specs_of(cfg)
        metric_names: Any = cfg.evaluation.metrics
        select_by: Any = cfg.evaluation.select_by
    else:
        specs = _specs_of_raw(cfg)
        evaluation = cfg.get("evaluation") if isinstance(cfg.get("evaluation"), Mapping) else {}
        metric_names = evaluation.get("metrics", [])
        select_by = evaluation.get("select_by")

    registries: dict[str, Any] = {}
    for kind, path, spec, random_ok in specs:
        if kind not in registries:
            registries[kind], errs = _registry_or_problem(kind, path)
            problems.extend(errs)
        reg = registries[kind]
        if reg is None:
            continue
        for sub, msg in check_spec(
            reg,
            spec,
            LEADING_ARGS.get(kind, 0),
            trial_build=kind in _TRIAL_BUILD,
            random_ok=random_ok,
        ):
            problems.append(((*path, *sub), msg))

    metrics, errs = _registry_or_problem("metrics", ("evaluation", "metrics"))
    problems.extend(errs)
    if metrics is not None:
        if isinstance(metric_names, list):
            for i, name in enumerate(metric_names):
                if isinstance(name, str) and name not in metrics:
                    problems.append((("evaluation", "metrics", i), _unknown_name(metrics, name)))
        if isinstance(select_by, str) and select_by != "loss" and select_by not in metrics:
            problems.append(
                (("evaluation", "select_by"), _unknown_name(metrics, select_by, extra=["loss"]))
            )
    return problems


#: Transform parameters holding one value per spatial axis, and the unit of the values.
PER_AXIS_PARAMS: dict[str, str] = {
    "spacing": "mm",
    "roi_size": "voxels",
    "size": "voxels",
    "spatial_size": "voxels",
    "patch_size": "voxels",
}


def _axes(n: int) -> str:
    return {2: "H, W", 3: "I, J, K"}.get(n, ", ".join(f"axis {i}" for i in range(n)))


def check_dimensions(cfg: ExperimentConfig | Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    """Per-axis values must have one entry per spatial axis of the experiment.

    The number of spatial axes is ``model.spatial_dims`` when given, else the length
    of ``inference.roi_size``. Checked: ``inference.roi_size`` and the per-axis
    parameters of every transform (:data:`PER_AXIS_PARAMS`, e.g. ``spacing``).
    ``cfg`` may be raw config data (then malformed parts are skipped).
    """
    if isinstance(cfg, ExperimentConfig):
        model_params: Mapping[str, Any] = cfg.model.params
        roi: Any = cfg.inference.roi_size
        transforms = [
            (section, i, spec.params)
            for section in ("preprocess", "augment")
            for i, spec in enumerate(getattr(cfg, section))
        ]
    else:
        def section(key: str) -> Any:
            return cfg.get(key) if isinstance(cfg.get(key), Mapping) else {}

        model_params = section("model")
        roi = section("inference").get("roi_size", [96, 96, 96])
        transforms = [
            (sec, i, item)
            for sec in ("preprocess", "augment")
            if isinstance(cfg.get(sec), list)
            for i, item in enumerate(cfg[sec])
            if isinstance(item, Mapping)
        ]
    problems: list[tuple[KeyPath, str]] = []
    sd = model_params.get("spatial_dims")
    ndim = sd if isinstance(sd, int) and not isinstance(sd, bool) and sd in (2, 3) else None
    if not isinstance(roi, (list, tuple)):
        if ndim is None:
            return problems
    elif ndim is None:
        ndim = len(roi)
    elif len(roi) != ndim:
        problems.append(
            (
                ("inference", "roi_size"),
                f"expected {ndim} values (voxels for {_axes(ndim)}; model.spatial_dims is {ndim}), "
                f"got {len(roi)}",
            )
        )
    for sec, i, params in transforms:
        for key, unit in PER_AXIS_PARAMS.items():
            value = params.get(key)
            if isinstance(value, (list, tuple)) and len(value) != ndim:
                problems.append(
                    ((sec, i, key), f"expected {ndim} values ({unit} for {_axes(ndim)}), got {len(value)}")
                )
    return problems


def _unknown_name(registry: "Registry[Any]", name: str, extra: Sequence[str] = ()) -> str:
    names = [*registry.list(), *extra]
    close = difflib.get_close_matches(str(name).lower(), names, n=3, cutoff=0.6)
    msg = f"unknown {_singular(registry.kind)} '{name}'"
    if close:
        return msg + f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return msg + f"; known: {', '.join(names)}"


# --------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------
def build_component(
    registry: "Registry[Any] | str",
    spec: ComponentSpec | Mapping[str, Any],
    key: str,
    *first_args: Any,
) -> Any:
    """Construct the component ``spec`` names: ``factory(*first_args, **spec.params)``.

    Args:
        registry: a :class:`~medimg.core.Registry` or a kind (``"models"``...).
        spec: the component spec (or a mapping with ``name`` and kwargs).
        key: where the spec sits in the config (``"model"``, ``"preprocess[1]"``),
            used in error messages.
        *first_args: what the factory takes first and the config cannot hold: the
            model parameters for an optimizer, the optimizer for a scheduler.

    Raises:
        ConfigError: unknown name (with did-you-mean), unknown or missing kwargs, a
            value of the wrong type, or the constructor rejecting its arguments; the
            message names ``key``.
    """
    from ..core.errors import ConfigError, MedimgError, MissingDependencyError

    reg = get_registry(registry) if isinstance(registry, str) else registry
    if not isinstance(spec, ComponentSpec):
        spec = ComponentSpec.model_validate(dict(spec))
    problems = check_spec(reg, spec, leading=len(first_args))
    label = f"{_singular(reg.kind)} '{spec.name}'"
    if problems:
        rows = [(f"{key}.{format_key(sub)}" if sub else key, msg) for sub, msg in problems]
        width = max(len(k) for k, _ in rows)
        text = "\n".join(f"  {k.ljust(width)}   {m}" for k, m in rows)
        n = len(rows)
        raise ConfigError(
            f"cannot build {key} ({label}), {n} problem{'s' if n != 1 else ''}:\n{text}",
            problems=[("", k, m) for k, m in rows],
            hint=f"see `medimg list {reg.kind}` for the registered names",
        )
    factory = reg.get(spec.name)
    try:
        return factory(*first_args, **spec.params)
    except MissingDependencyError:
        raise
    except (TypeError, ValueError, KeyError, MedimgError) as exc:
        text = getattr(exc, "message", None) or str(exc)
        raise ConfigError(
            f"cannot build {key} ({label}): {type(exc).__name__}: {text}",
            problems=[("", key, text)],
            hint=f"check the parameters of '{key}' in the config",
        ) from exc


def build_transforms(specs: Sequence[ComponentSpec | Mapping[str, Any]], key: str) -> "Compose":
    """Build a :class:`~medimg.transforms.Compose` of the transforms ``specs`` name.

    Args:
        specs: transform specs, in order (``cfg.preprocess`` or ``cfg.augment``).
        key: the config section (``"preprocess"``), for messages (``preprocess[1]``).
    """
    from ..transforms import Compose

    return Compose(
        build_component("transforms", spec, f"{key}[{i}]") for i, spec in enumerate(specs)
    )
