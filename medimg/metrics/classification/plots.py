"""Figures of a classification evaluation (optional: need matplotlib, ``medimg[plots]``).

``roc_curve.png``: the ROC curve of each class (binary: the positive class) with its AUC
and interval in the legend, the chance diagonal, and the operating point of a binary
task. ``confusion_matrix.png``: counts beside the row-normalised matrix (each true
class's cases split by prediction); multi-label: one small matrix per label.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .roc import binary_roc

if TYPE_CHECKING:
    from .report import ClassificationReport

__all__ = ["confusion_figure", "roc_figure"]


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # optional: pip install 'medimg[plots]'
        return None
    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _auc_label(report: ClassificationReport, cls: str | None, name: str) -> str:
    v = report.values.get(("auc", cls), math.nan)
    lo, hi = report.intervals.get(("auc", cls), (math.nan, math.nan))
    ci = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else ""
    return f"{name}: AUC {v:.3f}{ci}"


def roc_figure(
    report: ClassificationReport, truth: np.ndarray, scores: np.ndarray, path: Path
) -> Path | None:
    """Write ``roc_curve.png``; None without matplotlib.

    Args:
        truth, scores: ``(n, C)`` one-vs-rest columns of the scored cases (binary: the
            positive class only).
    """
    fig = _figure(5.6, 5.2)
    if fig is None:
        return None
    ax = fig.add_subplot(1, 1, 1)
    binary = report.task == "binary"
    names = [report.positive_class or ""] if binary else report.classes
    colors = [f"C{k % 10}" for k in range(len(names))]
    for k, (name, color) in enumerate(zip(names, colors)):
        fpr, tpr, _ = binary_roc(truth[:, k], scores[:, k])
        label = _auc_label(report, None if binary else name, name)
        ax.plot(fpr, tpr, color=color, lw=2 if binary else 1.4, label=label, drawstyle="default")
    if binary and ("sensitivity", None) in report.values and ("specificity", None) in report.values:
        sens, spec = report.values[("sensitivity", None)], report.values[("specificity", None)]
        t = report.threshold["value"] if report.threshold else 0.5
        ax.plot(
            [1 - spec],
            [sens],
            "o",
            color="black",
            ms=7,
            label=f"threshold {t:g}: sens {sens:.3f}, spec {spec:.3f}",
        )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    kind = "one class vs rest" if report.task == "multiclass" else "one per label"
    title = (
        "ROC curve"
        if binary
        else f"ROC curves, {kind} (macro AUC {report.values[('auc', None)]:.3f})"
    )
    pct = round(100 * float(report.settings.get("ci", 0.95)))
    ax.set_title(f"{title}\n{len(report.cases)} cases; AUC [{pct}% bootstrap CI]", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8 if len(names) <= 6 else 6, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _matrix(
    ax: Any, m: np.ndarray, names: list[str], title: str, fmt: str, with_fraction: bool = False
) -> None:
    """One annotated matrix, rows true, columns predicted (``with_fraction``: each count
    also as a percentage of its true class)."""
    rows = m.sum(axis=1)
    shown = np.nan_to_num(m.astype(np.float64))
    vmax = shown.max() if shown.size and shown.max() > 0 else 1.0
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax)
    k = len(names)
    size = 10 if k <= 4 else (8 if k <= 8 else 6)
    for t in range(k):
        for p in range(k):
            v = m[t, p]
            text = "n/a" if not np.isfinite(v) else format(v, fmt)
            if with_fraction and rows[t]:
                text += f"\n({100 * v / rows[t]:.0f}%)"
            ax.text(
                p,
                t,
                text,
                ha="center",
                va="center",
                fontsize=size,
                color="white" if np.isfinite(v) and v > 0.6 * vmax else "black",
            )
    ax.set_xticks(
        range(k), names, rotation=30 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=8
    )
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)


def confusion_figure(report: ClassificationReport, path: Path) -> Path | None:
    """Write ``confusion_matrix.png``; None without matplotlib."""
    m = report.confusion
    if report.task == "multilabel":
        cols = min(4, m.shape[0])
        rows = math.ceil(m.shape[0] / cols)
        fig = _figure(3.0 * cols, 2.9 * rows + 0.3)
        if fig is None:
            return None
        for k, name in enumerate(report.classes):
            ax = fig.add_subplot(rows, cols, k + 1)
            _matrix(ax, m[k], ["absent", "present"], name, "d", with_fraction=True)
        fig.suptitle(
            f"Confusion matrix per label: counts (% of true row), {len(report.cases)} cases",
            fontsize=10,
        )
    else:
        k = len(report.classes)
        side = max(3.6, 0.6 * k + 2.2)
        fig = _figure(2 * side + 0.4, side)
        if fig is None:
            return None
        rows_sum = m.sum(axis=1, keepdims=True)
        frac = np.divide(m, rows_sum, out=np.full(m.shape, np.nan), where=rows_sum > 0)
        _matrix(
            fig.add_subplot(1, 2, 1), m, report.classes, f"Counts ({len(report.cases)} cases)", "d"
        )
        _matrix(
            fig.add_subplot(1, 2, 2),
            frac,
            report.classes,
            "Row-normalised (fraction of true class)",
            ".2f",
        )
    fig.tight_layout()
    fig.savefig(path)
    return path
