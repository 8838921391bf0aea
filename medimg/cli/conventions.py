"""The ``--empty`` and ``--surface-distance`` options of ``evaluate`` and ``compare``, parsed once."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

SURFACE_CHOICES = ("monai", "deepmind")

#: ``--empty``: the score where a class is absent from both prediction and reference.
EmptyOption = Annotated[
    str,
    typer.Option(
        help="Segmentation: score of dice, jaccard, nsd, precision, recall and lesion_* where a class is "
        "absent from both prediction and reference: a number (default 1: both agree) or nan (left out "
        "of means, as MONAI does).",
    ),
]
#: ``--surface-distance``: whose definitions of the surface distances.
SurfaceOption = Annotated[
    str,
    typer.Option(
        help="Segmentation: definitions of hd, hd95, assd, nsd: monai (default) or deepmind (the "
        "surface-distance package; pip install 'medimg[surface]').",
    ),
]


def parse_empty(text: str) -> float:
    """``--empty``: ``nan`` or a number in [0, 1]; a usage error naming the option otherwise."""
    t = text.strip().lower()
    if t == "nan":
        return math.nan
    try:
        value = float(t)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise typer.BadParameter(
            f"{text!r} is neither nan nor a number in [0, 1]; give e.g. --empty 1 or --empty nan",
            param_hint="--empty",
        )
    return value


def segmentation_conventions(empty: str, surface_distance: str) -> dict[str, Any]:
    """``{"empty_score", "surface"}`` for :func:`medimg.metrics.evaluate_folders`."""
    surface = surface_distance.strip().lower()
    if surface not in SURFACE_CHOICES:
        raise typer.BadParameter(
            f"{surface_distance!r} is not one of {', '.join(SURFACE_CHOICES)}",
            param_hint="--surface-distance",
        )
    return {"empty_score": parse_empty(empty), "surface": surface}
