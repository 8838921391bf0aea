"""``medimg plan``: from a data set's fingerprint (:func:`medimg.data.fingerprint.fingerprint`)
to a config, by the rules of :mod:`medimg.engine.plan_rules` (segmentation) and
:mod:`medimg.engine.plan_cls` (classification), sized by a timed probe of the real step
(:mod:`medimg.engine.probe`).

A fingerprint with errors (mixed dimensionality, inconsistent channels, no foreground in
any label, no readable case) is refused, naming the cases; its warnings (skipped or odd
cases, a single case) are carried into the plan's warnings.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import DataError
from .plan_cls import build_classification
from .plan_rules import Decision, Plan, PlanOptions
from .plan_seg import build_segmentation

__all__ = ["make_plan", "Plan", "PlanOptions", "Decision"]


def make_plan(fp: dict[str, Any], opts: PlanOptions) -> Plan:
    """The plan (config, decisions, warnings) of fingerprint ``fp`` for ``opts``.

    Raises:
        DataError: the fingerprint has errors, or the time budget is too short for one
            epoch (each message names the cases or the numbers and what to change).
    """
    errors = fp.get("errors") or []
    if errors:
        raise DataError(
            f"cannot plan {fp.get('source', 'the data set')}: " + "; ".join(errors) + " (plan refused)",
            hint="fix or remove the cases named, then run medimg plan again (medimg fingerprint lists every case)",
        )
    build = build_classification if fp["task"] == "classification" else build_segmentation
    plan = build(fp, fp["data"], opts)
    plan.warnings = list(fp.get("warnings") or []) + plan.warnings
    return plan
