"""Which validation score picks ``best.pt``: one grammar, for ``config validate`` and training.

``evaluation.select_by`` is one of

- a metric of :data:`medimg.metrics.METRICS` (``dice``, ``hd95``...): its mean over the
  foreground classes (each class averaged over the validation cases first);
- ``<metric>_<class name>`` (``dice_tumour``, ``hd95_enhancing_tumour``): one foreground
  class of ``data.label_names``;
- ``loss``: the training loss function on the validation cases' predicted probabilities.

Whether higher or lower is better comes from the metric (``higher_is_better`` in the
registry; ``loss`` is lower-is-better), so ``hd95`` picks the epoch with the smallest
distance. Whatever :func:`select_by_problem` accepts, :func:`parse_select_by` accepts,
and the trainer computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..core.builder import Registry, did_you_mean
from ..core.errors import ConfigError

__all__ = ["LOSS", "Selection", "parse_select_by", "select_by_problem"]

#: The ``select_by`` name of the validation loss.
LOSS = "loss"


@dataclass(frozen=True)
class Selection:
    """A parsed ``select_by``.

    Attributes:
        name: as written (the key of the validation metrics, ``val_<name>`` in history.csv).
        metric: the registered metric name, or ``"loss"``.
        class_name: the one class it scores, or None for the mean over foreground classes.
        higher_is_better: the direction that counts as an improvement.
    """

    name: str
    metric: str
    class_name: str | None
    higher_is_better: bool

    @property
    def key(self) -> str:
        """The key of its value among the validation metrics (``dice``, ``hd95_tumour``, ``loss``)."""
        return self.metric if self.class_name is None else f"{self.metric}_{self.class_name}"

    @property
    def mode(self) -> Literal["max", "min"]:
        """``"max"`` when higher is better, else ``"min"``."""
        return "max" if self.higher_is_better else "min"


def _metrics_registry(metrics: Registry | None) -> Registry:
    if metrics is not None:
        return metrics
    from ..metrics import METRICS

    return METRICS


def _resolve(name: str, label_names: Sequence[str], metrics: Registry) -> Selection | str:
    """The selection ``name`` means, or the problem with it (config terms)."""
    if name == LOSS:
        return Selection(name, LOSS, None, False)
    if name in metrics:
        obj: Any = metrics.get(name)
        return Selection(name, name.lower(), None, bool(getattr(obj, "higher_is_better", True)))
    classes = list(label_names[1:])
    near: tuple[str, str] | None = None
    for metric in sorted(metrics.list(), key=len, reverse=True):  # volume_diff_ml before volume_ml
        prefix = metric + "_"
        if name.lower().startswith(prefix):
            class_name = name[len(prefix) :]
            if class_name in classes:
                obj = metrics.get(metric)
                return Selection(name, metric, class_name, bool(getattr(obj, "higher_is_better", True)))
            near = near or (metric, class_name)
    if near is not None:
        metric, class_name = near
        dym = did_you_mean(class_name, classes)
        return (
            f"'{name}' is metric '{metric}' of class '{class_name}', but the foreground classes "
            f"(data.label_names) are {', '.join(classes) or '(none)'}" + (f"; {dym}" if dym else "")
        )
    choices = [*metrics.list(), LOSS, *(f"{m}_{c}" for m in metrics.list() for c in classes)]
    dym = did_you_mean(name.lower(), choices)
    if dym:
        return f"unknown metric '{name}'; {dym}"
    return (
        f"unknown metric '{name}'; known: {', '.join([*metrics.list(), LOSS])}, or "
        "<metric>_<class name> for one class of data.label_names"
    )


def _resolve_classification(name: str) -> Selection | str:
    """A classification ``select_by``: a metric of
    :data:`medimg.metrics.classification.CLASSIFICATION_METRICS` (higher-is-better but the
    calibration errors ``ece``, ``brier``, ``nll``) or ``loss``; else the problem with it."""
    from ..metrics.classification import CLASSIFICATION_METRICS
    from ..metrics.classification.calibration import LOWER_IS_BETTER

    if name == LOSS:
        return Selection(name, LOSS, None, False)
    if name.lower() in CLASSIFICATION_METRICS:
        return Selection(name, name.lower(), None, name.lower() not in LOWER_IS_BETTER)
    dym = did_you_mean(name.lower(), [*CLASSIFICATION_METRICS, LOSS])
    return f"unknown classification metric '{name}'; " + (
        dym or f"known: {', '.join([*CLASSIFICATION_METRICS, LOSS])}"
    )


def _found(name: str, label_names: Sequence[str], metrics: Registry | None, task: str) -> Selection | str:
    if task == "classification":
        return _resolve_classification(name)
    return _resolve(name, label_names, _metrics_registry(metrics))


def select_by_problem(
    name: str, label_names: Sequence[str], metrics: Registry | None = None, task: str = "segmentation"
) -> str | None:
    """What is wrong with ``select_by`` ``name`` (config terms), or None when it is fine.

    Args:
        name: the ``evaluation.select_by`` value.
        label_names: ``data.label_names`` (background first).
        metrics: the metrics registry (default :data:`medimg.metrics.METRICS`).
        task: ``experiment.task``; classification accepts the classification metrics.
    """
    found = _found(name, label_names, metrics, task)
    return found if isinstance(found, str) else None


def parse_select_by(
    name: str, label_names: Sequence[str], metrics: Registry | None = None, task: str = "segmentation"
) -> Selection:
    """The :class:`Selection` ``select_by`` ``name`` means.

    Raises:
        ConfigError: ``name`` is not a validation score of this experiment.
    """
    found = _found(name, label_names, metrics, task)
    if isinstance(found, str):
        raise ConfigError(
            f"evaluation.select_by '{name}' is not a validation metric: {found}",
            hint="use a metric (see `medimg list metrics`), <metric>_<class name>, or loss",
        )
    return found
