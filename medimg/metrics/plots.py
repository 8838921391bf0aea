"""Figures of an evaluation: ``dice_boxplot.png`` (optional: needs matplotlib, ``medimg[plots]``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["dice_boxplot"]


def dice_boxplot(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], path: Path) -> Path | None:
    """A box plot of Dice per class with every case as a dot; None without matplotlib or data.

    Non-finite values are left out; each box's label says how many cases it shows.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # optional: pip install 'medimg[plots]'
        return None
    data = [[float(r["value"]) for r in rows if r["label"] == lab and r["metric"] == "dice"] for lab in labels]
    data = [[v for v in d if math.isfinite(v)] for d in data]
    if not any(data):
        return None
    fig = Figure(figsize=(max(3.0, 1.2 * len(labels) + 1.5), 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), [f"{lab}\n(n={len(d)})" for lab, d in zip(labels, data)])
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):  # every case visible, not only the quartiles
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(d)), d, s=10, alpha=0.6, color="tab:blue")
    ax.set_ylabel("Dice")
    ax.set_ylim(min(0.0, min((min(d) for d in data if d), default=0.0)) - 0.02, 1.02)
    ax.set_title("Dice per case and class")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path
