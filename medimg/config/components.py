"""A config's components, checked against their registries before anything is built.

A component is written in a config as ``{name: <registered name>, <kwargs>...}``
(:class:`~medimg.core.spec.ComponentSpec`) and checked by the registry's own
signature-checked builder (:mod:`medimg.core.builder`). Calling convention (what the
caller passes positionally before the config's kwargs):

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

The registries are imported on first use (they import torch), with plain imports of the
layers below: nothing is loaded by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.builder import KeyPath, Registry, check_spec, did_you_mean, unknown_name
from ..core.errors import ConfigError
from ..core.spec import ComponentSpec, ExperimentConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..transforms import Compose

__all__ = [
    "REGISTRY_KINDS",
    "LEADING_ARGS",
    "get_registry",
    "check_spec",
    "check_components",
    "build_component",
    "build_transforms",
]

#: The component registries a config can name, in ``medimg list`` order.
REGISTRY_KINDS: tuple[str, ...] = ("models", "transforms", "losses", "metrics", "optimizers", "schedulers")

#: Positional arguments the caller passes before the config kwargs, by registry kind.
LEADING_ARGS: dict[str, int] = {"optimizers": 1, "schedulers": 1}

#: Kinds whose components are cheap to construct: built once while checking a config,
#: so that errors their constructors raise are reported with the config's location.
#: (Not losses: building MONAI's imports all of MONAI, ~10 s on a busy 2-core machine.)
_TRIAL_BUILD = ("transforms",)


def get_registry(kind: str) -> Registry:
    """Import and return the registry of ``kind`` (``"models"``, ``"transforms"``, ...).

    Raises:
        ConfigError: ``kind`` is not a registry kind.
    """
    if kind == "models":
        from ..models import MODELS as registry
    elif kind == "transforms":
        from ..transforms import TRANSFORMS as registry
    elif kind == "losses":
        from ..losses import LOSSES as registry
    elif kind == "metrics":
        from ..metrics import METRICS as registry
    elif kind == "optimizers":
        from ..engine.optim import OPTIMIZERS as registry
    elif kind == "schedulers":
        from ..engine.optim import SCHEDULERS as registry
    else:
        dym = did_you_mean(kind, REGISTRY_KINDS)
        raise ConfigError(f"unknown component kind '{kind}'; known: {', '.join(REGISTRY_KINDS)}", hint=dym)
    return registry


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


def _evaluation_of(cfg: ExperimentConfig | Mapping[str, Any]) -> tuple[Any, Any, list[str]]:
    """``evaluation.metrics``, ``evaluation.select_by`` and ``data.label_names`` (raw data too)."""
    if isinstance(cfg, ExperimentConfig):
        return cfg.evaluation.metrics, cfg.evaluation.select_by, list(cfg.data.label_names)
    evaluation = cfg.get("evaluation") if isinstance(cfg.get("evaluation"), Mapping) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), Mapping) else {}
    names = data.get("label_names")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        names = ["background", "foreground"]
    return evaluation.get("metrics", []), evaluation.get("select_by"), names


def _check_evaluation(cfg: ExperimentConfig | Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    """``evaluation.metrics`` are registered metrics; ``select_by`` is a validation score
    (:func:`medimg.engine.selection.select_by_problem`: what validates here, trains)."""
    from ..engine.selection import select_by_problem

    metric_names, select_by, label_names = _evaluation_of(cfg)
    metrics, problems = _registry_or_problem("metrics", ("evaluation", "metrics"))
    if metrics is None:
        return problems
    if isinstance(metric_names, list):
        for i, name in enumerate(metric_names):
            if isinstance(name, str) and name not in metrics:
                problems.append((("evaluation", "metrics", i), unknown_name(metrics, name)))
    if isinstance(select_by, str):
        msg = select_by_problem(select_by, label_names, metrics)
        if msg:
            problems.append((("evaluation", "select_by"), msg))
    return problems


def check_components(cfg: ExperimentConfig | Mapping[str, Any]) -> list[tuple[KeyPath, str]]:
    """Check every component of ``cfg`` against its registry; all problems, with keys.

    Checks the model, loss, optimizer, scheduler, every preprocess/augment transform
    (preprocess ones must not be random), the names in ``evaluation.metrics`` and
    ``evaluation.select_by`` (a metric, ``<metric>_<class name>`` or ``loss``). Per-axis
    lengths are :func:`~medimg.config.dimensions.check_dimensions`, which needs no
    registry. ``cfg`` may also be the raw config data (a config with schema errors):
    then every well-formed component spec in it is checked.
    """
    problems: list[tuple[KeyPath, str]] = []
    specs = _specs_of(cfg) if isinstance(cfg, ExperimentConfig) else _specs_of_raw(cfg)
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
    return problems + _check_evaluation(cfg)


def build_component(
    registry: Registry | str,
    spec: ComponentSpec | Mapping[str, Any],
    key: str,
    *first_args: Any,
) -> Any:
    """Construct the component ``spec`` names: ``factory(*first_args, **spec.params)``.

    The registry's own builder (:meth:`medimg.core.Registry.build`), with errors
    located at ``key``.

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
    from ..core.builder import build_component as build

    reg = get_registry(registry) if isinstance(registry, str) else registry
    return build(reg, spec, *first_args, key=key)


def build_transforms(specs: Sequence[ComponentSpec | Mapping[str, Any]], key: str) -> "Compose":
    """A :class:`~medimg.transforms.Compose` of the transforms ``specs`` name:
    :func:`medimg.transforms.build_transforms` (the function training and prediction use).

    Args:
        specs: transform specs, in order (``cfg.preprocess`` or ``cfg.augment``).
        key: the config section (``"preprocess"``), for messages (``preprocess[1]``).
    """
    from ..transforms.build import build_transforms as build

    return build(specs, key)
