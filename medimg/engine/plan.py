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
    if "studies" in fp["data"]:
        _check_study_tree(fp)
    build = build_classification if fp["task"] == "classification" else build_segmentation
    plan = build(fp, fp["data"], opts)
    plan.warnings = list(fp.get("warnings") or []) + plan.warnings
    return plan


def _check_study_tree(fp: dict[str, Any]) -> None:
    if not fp.get("labelled"):
        raise DataError(
            f"cannot plan a segmentation of DICOM study tree {fp['source']}: a study tree has no label maps",
            hint="give --labels DIR holding <study id>.nii.gz per study (medimg fingerprint lists the study ids)",
        )
    if "manifest" not in fp["data"]:
        raise DataError(
            f"cannot plan DICOM study tree {fp['source']}: no manifest of its studies was written",
            hint="call medimg.data.fingerprint_dicom.write_study_manifest(fp, PATH) first (medimg plan does)",
        )
