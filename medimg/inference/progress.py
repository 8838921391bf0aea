"""One progress bar (rich, with ETA, on stderr) for every long loop: training, batch prediction."""

from __future__ import annotations

from typing import Any

__all__ = ["progress_bar"]


class _NoBar:
    """Stand-in with the same calls as ``rich.progress.Progress`` when progress is off."""

    enabled = False

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *a: Any, **k: Any) -> None:
        return None

    def update(self, *a: Any, **k: Any) -> None:
        return None


def progress_bar(enabled: bool) -> Any:
    """A rich ``Progress`` (description, bar, n/total, elapsed, ETA) on stderr, so stdout
    stays clean for piping; a no-op object with the same calls when ``enabled`` is False.
    ``bar.enabled`` tells which."""
    if not enabled:
        return _NoBar()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    bar.enabled = True  # type: ignore[attr-defined]
    return bar
