"""The loop of a batch run: every entry logged, the next case prepared while this one computes.

:func:`run_cases` takes the run's entries (cases, cases with a problem, skipped files),
logs each one in the :class:`~medimg.inference.runlog.RunLog` as it finishes, and keeps
one case ahead: while the network computes case ``k``, a background thread reads and
preprocesses case ``k + 1`` (``prepare``), and another writes case ``k - 1``'s output,
so reading, computing and writing overlap. At most two prepared cases and one output
being written are held at once. A case that fails (in ``prepare``, ``finish`` or its
write) is logged with the reason and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import exception_reason
from .progress import progress_bar
from .runlog import ALREADY_DONE, RunLog

__all__ = ["BatchReport", "CaseEntry", "entries_of", "run_cases"]


@dataclass
class BatchReport:
    """Outcome of :func:`~medimg.inference.predict_folder`.

    Attributes:
        output_dir: where the outputs went.
        ok: case ids predicted and written (in this run).
        failed: ``(case_id, message)`` for each case that could not be predicted.
        skipped: ``(case_id or path, reason)`` for each entry not predicted: files that
            are not cases, and cases an earlier run already predicted.
        seconds: wall time per case id.
        log_path: the run's ``predict_log*.csv``.
    """

    output_dir: Path
    ok: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def all_ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class CaseEntry:
    """One entry of a run: a case to predict (``paths``), a case with a ``problem`` (logged
    as failed) or a file or folder to ``skip`` (logged as skipped)."""

    case_id: str
    input: str
    paths: Any = None
    problem: str | None = None
    skip: str | None = None


def entries_of(cases: Iterable[Any]) -> list[CaseEntry]:
    """:class:`CaseEntry` items from :class:`~medimg.io.cases.FoundCase` items or
    ``(case_id, paths or exception)`` pairs."""
    out: list[CaseEntry] = []
    for case in cases:
        if hasattr(case, "skip"):
            where = case.paths if case.paths else ([case.source] if case.source is not None else [])
            shown = ";".join(str(p) for p in where)
            # a found case unpacks as (case_id, its inputs): files, or a study's chosen series
            inputs = None if case.skip is not None or case.problem is not None else list(case)[1]
            out.append(CaseEntry(case.case_id, shown, inputs, case.problem, case.skip))
            continue
        case_id, paths = case
        if isinstance(paths, Exception):
            out.append(CaseEntry(case_id, "", None, exception_reason(paths)))
        else:
            shown = ";".join(str(p) for p in paths) if isinstance(paths, (list, tuple)) else str(paths)
            out.append(CaseEntry(case_id, shown, paths))
    return out


def run_cases(
    entries: Sequence[CaseEntry],
    log: RunLog,
    report: BatchReport,
    prepare: Callable[[CaseEntry], Any],
    finish: Callable[[CaseEntry, Any], Callable[[], None] | None],
    *,
    done: Callable[[CaseEntry], bool] = lambda e: False,
    progress: bool = True,
) -> BatchReport:
    """Log skipped, already done and problem entries, then predict the rest with one case
    prepared ahead: ``finish(entry, prepare(entry))`` for each, ``prepare`` running in a
    background thread. ``finish`` may return the case's write step (a callable): it then
    runs in a second background thread while the next case computes, at most one at a
    time. Each case is logged (``ok`` with its seconds, from the start of its computation
    until its output is on disk, or ``failed`` with the reason) once it is done, in order."""
    todo: list[CaseEntry] = []
    for e in entries:
        if e.skip is not None or (e.problem is None and done(e)):
            why = e.skip if e.skip is not None else ALREADY_DONE
            log.write(e.case_id, "skipped", input=e.input, error=why)
            report.skipped.append((e.case_id, why))
        elif e.problem is not None:
            log.write(e.case_id, "failed", input=e.input, error=e.problem)
            report.failed.append((e.case_id, e.problem))
        else:
            todo.append(e)
    # the bar counts the cases to compute only, so its ETA is not skewed by instant skips
    with progress_bar(progress) as bar, ThreadPoolExecutor(1, "medimg-prefetch") as reader, \
            ThreadPoolExecutor(1, "medimg-write") as writer:
        task = bar.add_task("predict", total=len(todo))

        def settle(e: CaseEntry, step: Future | None, t0: float) -> None:
            try:
                if step is not None:
                    step.result()
            except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
                _failed(log, report, e, exc)
            else:
                report.seconds[e.case_id] = dt = time.perf_counter() - t0
                log.write(e.case_id, "ok", input=e.input, seconds=dt)
                report.ok.append(e.case_id)
            bar.update(task, advance=1)

        ahead: Future | None = reader.submit(prepare, todo[0]) if todo else None
        pending: tuple[CaseEntry, Future | None, float] | None = None
        for k, e in enumerate(todo):
            current, ahead = ahead, (reader.submit(prepare, todo[k + 1]) if k + 1 < len(todo) else None)
            bar.update(task, description=f"predict {e.case_id}")
            t0 = time.perf_counter()
            try:
                write = finish(e, current.result())  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - one bad case must not stop the batch
                if pending is not None:
                    settle(*pending)
                    pending = None
                _failed(log, report, e, exc)
                bar.update(task, advance=1)
                continue
            if pending is not None:
                settle(*pending)
            pending = (e, writer.submit(write) if write is not None else None, t0)
        if pending is not None:
            settle(*pending)
    return report


def _failed(log: RunLog, report: BatchReport, e: CaseEntry, exc: Exception) -> None:
    msg = exception_reason(exc)
    log.write(e.case_id, "failed", input=e.input, error=msg)
    report.failed.append((e.case_id, msg))
