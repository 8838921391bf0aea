"""Figures of an evaluation: ``<metric>_boxplot.png`` per metric (optional: needs matplotlib, ``medimg[plots]``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["dice_boxplot", "metric_boxplot"]


def dice_boxplot(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    """A box plot of Dice per class with every case as a dot; None without matplotlib or data.

    Non-finite values are left out; each box's label says how many cases it shows.
    """
    return metric_boxplot(rows, labels, "dice", path)


def metric_boxplot(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], metric: str, path: Path,
                   unit: str = "", bounded: bool | None = None) -> Path | None:
    """A box plot of one metric per class with every case as a dot; None without
    matplotlib or finite data.

    Non-finite values (an infinite distance to an empty mask, an undefined value) are left
    out; each box's label says how many cases it shows and how many were left out.
    ``bounded`` (default: the metric is ``dice`` or ``jaccard``) pins the axis to [0, 1].
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # optional: pip install 'medimg[plots]'
        return None
    raw = [[float(r["value"]) for r in rows if r["label"] == lab and r["metric"] == metric] for lab in labels]
    data = [[v for v in d if math.isfinite(v)] for d in raw]
    if not any(data):
        return None
    left = [len(r) - len(d) for r, d in zip(raw, data)]
    fig = Figure(figsize=(max(3.0, 1.2 * len(labels) + 1.5), 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1),
                  [f"{lab}\n(n={len(d)}" + (f", {k} nan/inf out)" if k else ")") for lab, d, k in zip(labels, data, left)])
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):  # every case visible, not only the quartiles
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(d)), d, s=10, alpha=0.6, color="tab:blue")
    name = "Dice" if metric == "dice" else metric
    ax.set_ylabel(name + (f" ({unit})" if unit else ""))
    if bounded if bounded is not None else metric in ("dice", "jaccard"):
        ax.set_ylim(min(0.0, min((min(d) for d in data if d), default=0.0)) - 0.02, 1.02)
    ax.set_title(f"{name} per case and class")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path
