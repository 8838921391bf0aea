"""Reliability diagrams (optional: need matplotlib, ``medimg[plots]``).

One panel per set of probabilities (``medimg evaluate``: the predictions; ``medimg
calibrate``: before and after temperature scaling, side by side). In each panel, every
curve joins the non-empty equal-width bins of :mod:`.calibration` at (mean predicted
probability, observed fraction), with a marker sized by the bin's cases; the diagonal is
perfect calibration, and the bars under it count the cases per bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import ECE_BINS, reliability_curve
from .plots import _figure

__all__ = ["Panel", "reliability_figure"]

#: ``(title, [(curve name, probability (n,), outcome (n,))], legend suffix per curve)``.
Panel = tuple[str, Sequence[tuple[str, np.ndarray, np.ndarray]], Sequence[str]]


def _panel(ax: Any, hist: Any, panel: Panel, n_bins: int, outcome: str) -> None:
    title, curves, notes = panel
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for k, (name, conf, hit) in enumerate(curves):
        color = f"C{k % 10}"
        x, frac, count = reliability_curve(conf, hit, n_bins)
        note = notes[k] if k < len(notes) else ""
        ax.plot(x, frac, "-", color=color, lw=1.6, label=f"{name}{note}")
        ax.scatter(x, frac, s=12 + 60 * count / max(1, count.max()), color=color, zorder=3)
        hist.hist(conf, bins=edges, color=color, alpha=0.35 if len(curves) > 1 else 0.7)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.01, 1.01)
    ax.set_ylabel(outcome)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7 if len(curves) > 4 else 8, framealpha=0.9)
    hist.set_xlim(0, 1)
    hist.set_xlabel("highest predicted probability" if outcome.startswith("fraction correct") else "predicted probability")
    hist.set_ylabel("cases")
    hist.grid(alpha=0.3)


def reliability_figure(
    panels: Sequence[Panel], path: Path, *, n_bins: int = ECE_BINS, top_label: bool = False
) -> Path | None:
    """Write a reliability diagram with one panel (and case histogram) per entry of
    ``panels``; None without matplotlib.

    Args:
        top_label: the curves are multi-class top-label ones (highest probability
            against fraction correct) rather than a class's probability against the
            fraction positive; sets the axis label.
    """
    fig = _figure(4.8 * len(panels), 5.6)
    if fig is None:
        return None
    grid = fig.add_gridspec(2, len(panels), height_ratios=[3.2, 1.0])
    outcome = "fraction correct (argmax)" if top_label else "observed fraction positive"
    for j, panel in enumerate(panels):
        ax = fig.add_subplot(grid[0, j])
        hist = fig.add_subplot(grid[1, j], sharex=ax)
        _panel(ax, hist, panel, n_bins, outcome)
        ax.tick_params(labelbottom=False)
    fig.suptitle(f"Reliability diagram ({n_bins} equal-width bins)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def ece_note(value: float, interval: tuple[float, float] | None) -> str:
    """``": ECE 0.041 [0.030, 0.055]"`` for a legend."""
    if not math.isfinite(value):
        return ""
    ci = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval and math.isfinite(interval[0]) else ""
    return f": ECE {value:.3f}{ci}"
