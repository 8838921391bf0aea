"""Checkpoints written off the training step path, in one background thread.

At the end of an epoch the trainer hands ``best.pt`` and ``last.pt`` to a
:class:`CheckpointWriter`. What goes into them is copied at once, on the caller's thread
(:func:`snapshot`: every tensor copied to the CPU, so training may change the weights and
optimizer state right after); serialising and writing the file happen in the writer's one
thread while the next epoch trains. The rules:

* **One epoch in flight.** A save for a new state waits until the previous state's files
  are written, so writes never pile up and at most one snapshot waits in memory.
* **Same state, one serialisation.** ``best.pt`` and ``last.pt`` of the same epoch hold the
  same dict: the second is a copy of the first file, made once it is complete.
* **Atomic.** Each file is written under a hidden temporary name beside it and renamed over
  it when complete (:func:`medimg.inference.checkpoint.write_checkpoint`), so a run killed
  at any moment leaves the previous complete file or the new complete file, never a part.
* **Errors are not lost.** A failed write is raised on the caller's thread, as a
  :class:`~medimg.core.errors.CheckpointError` naming the file, by the next
  :meth:`CheckpointWriter.save`, :meth:`~CheckpointWriter.wait` or
  :meth:`~CheckpointWriter.close`.
* **Readers wait.** :meth:`~medimg.engine.Trainer.fit` closes the writer before it returns
  or raises, so the run folder is complete when test evaluation reads ``best.pt`` or a
  resume reads ``last.pt``; code that reads the files while training runs (a callback)
  calls :meth:`CheckpointWriter.wait` first.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CheckpointError, exception_reason
from ..inference.checkpoint import write_checkpoint
from ..inference.runlog import atomic_path

__all__ = ["CheckpointWriter", "snapshot"]


def snapshot(obj: Any) -> Any:
    """A copy of ``obj`` that later training cannot change: tensors copied to the CPU,
    dicts (their class and attributes kept: a ``state_dict``'s ``_metadata``), lists and
    tuples rebuilt; other values (numbers, strings, None) as they are."""
    if torch.is_tensor(obj):
        t = obj.detach()
        return t.clone() if t.device.type == "cpu" else t.cpu()
    if isinstance(obj, dict):
        out = copy.copy(obj)
        for k, v in obj.items():
            out[k] = snapshot(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


def _copy_when_written(source: Path, written: Future, target: Path) -> None:
    """Copy the file ``source`` (once ``written`` succeeded) to ``target``, atomically."""
    written.result()  # a failed source write fails this copy too (never a copy of an older file)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


class CheckpointWriter:
    """Writes checkpoint dicts in one background thread (module docstring)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Path, Future]] = []
        self._key: Hashable = None
        self._first: tuple[Path, Future] | None = None  # the file the current state is written to

    def save(self, path: str | Path, key: Hashable, build: Callable[[], Mapping[str, Any]], copy: bool = True) -> Path:
        """Write ``build()`` to ``path`` in the background; returns ``path``.

        ``key`` names the state (the trainer's: the epoch and its metrics): a save with the
        key of the previous save copies that file instead of calling ``build`` again; a new
        key first waits for the previous writes. ``copy=False`` skips the :func:`snapshot`
        where nothing changes the state before the write is waited for (the trainer's
        last epoch: :meth:`~medimg.engine.Trainer.fit` closes the writer before returning).

        Raises:
            CheckpointError: a previous write failed.
        """
        target = Path(path)
        if self._first is not None and key == self._key:
            source, written = self._first
            self._submit(target, _copy_when_written, source, written, target)
            return target
        self.wait()
        payload = snapshot(build()) if copy else build()  # on this thread: the content is fixed now
        self._key, self._first = key, (target, self._submit(target, write_checkpoint, payload, target))
        return target

    def _submit(self, target: Path, fn: Callable[..., Any], *args: Any) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medimg-checkpoints")
        future = self._pool.submit(fn, *args)
        self._pending.append((target, future))
        return future

    def wait(self) -> None:
        """Block until every write handed over so far is on disk.

        Raises:
            CheckpointError: a write failed (the first failure, naming its file).
        """
        pending, self._pending = self._pending, []
        failure: tuple[Path, BaseException] | None = None
        for target, future in pending:
            exc = future.exception()
            if exc is not None and failure is None:
                failure = (target, exc)
        if failure is not None:
            self._first = None  # a failed file is no source for copies
            target, exc = failure
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exception_reason(exc)
            raise CheckpointError(
                f"cannot write checkpoint '{target}': {reason}",
                hint="check the free disk space and write permission of the run folder "
                "(experiment.output_dir), then resume the run from its last.pt",
            ) from exc

    def close(self, raise_errors: bool = True) -> None:
        """:meth:`wait`, then stop the thread (a later :meth:`save` starts a new one).

        Args:
            raise_errors: False while another error is on its way up (the trainer's, on an
                exception): a failed write is then dropped, the other error is the one reported.

        Raises:
            CheckpointError: a write failed (with ``raise_errors``).
        """
        try:
            self.wait()
        except CheckpointError:
            if raise_errors:
                raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
