"""The bookkeeping of a batch prediction run: its log, atomic output files, resuming, shards.

- **Log.** :class:`RunLog` appends one row per case to ``predict_log.csv`` in the output
  folder (``predict_log.shard-<i>-of-<N>.csv`` for a shard) as each case finishes, and
  flushes it, so a run killed at any moment keeps every finished row. Columns
  :data:`LOG_COLUMNS`: case_id, input, status (``ok``, ``failed`` or ``skipped``), seconds,
  error (or the reason for a skip), then the run's device, precision, checkpoint_sha256
  and medimg_version, repeated on every row so each shard's log stands alone. A second run
  into the same folder appends to the log.
- **Atomic outputs.** :func:`atomic_path` gives a temporary name in the target's folder
  (hidden: it starts with ``.``, so no case discovery ever sees it) and renames it over the
  target with :func:`os.replace` only once it is complete: a kill leaves either the old
  file, the new one, or a hidden ``.tmp-`` file, never a half-written output.
- **Resuming.** :func:`done_cases` reads every ``predict_log*.csv`` of the folder: a case
  whose last row is ``ok`` (or a skip because it was already predicted) is done; the batch
  runner skips it when its output file exists.
- **Shards.** :func:`shard_of` keeps case ``k`` of the sorted list when ``k % N == i``;
  :func:`resolve_shard` checks ``--shard i/N`` or takes ``RANK``/``WORLD_SIZE`` under
  ``torchrun``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import ConfigError

__all__ = [
    "ALREADY_DONE",
    "LOG_COLUMNS",
    "RunLog",
    "atomic_path",
    "done_cases",
    "file_sha256",
    "log_name",
    "parse_shard",
    "resolve_shard",
    "run_context",
    "shard_of",
    "temp_prefix",
]

#: The columns of ``predict_log.csv``.
LOG_COLUMNS = (
    "case_id", "input", "status", "seconds", "error",
    "device", "precision", "checkpoint_sha256", "medimg_version",
)
#: The reason logged for a case skipped because an earlier run predicted it.
ALREADY_DONE = "already predicted; --overwrite to redo"

T = TypeVar("T")


def log_name(shard: tuple[int, int] | None = None) -> str:
    """``predict_log.csv``, or ``predict_log.shard-<i>-of-<N>.csv`` for shard ``(i, N)``."""
    if shard is None:
        return "predict_log.csv"
    return f"predict_log.shard-{shard[0]}-of-{shard[1]}.csv"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed over ``target`` when the
    block ends without error, removed when it raises.

    The name keeps ``target``'s suffixes (writers choose the format by them) and starts
    with ``.tmp-`` (hidden from case discovery) then the process id and a random token, so
    processes and machines sharing a folder never write the same temporary file.
    """
    target = Path(target)
    tmp = target.with_name(f"{temp_prefix()}{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def temp_prefix() -> str:
    """``.tmp-<pid>-<random>-``: the start of a temporary name no other writer uses."""
    return f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-"


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_context(predictor: Any) -> dict[str, str]:
    """The run-wide log columns of a :class:`~medimg.inference.Predictor`'s run: device,
    precision (``fp32``, or the autocast dtype on CUDA), checkpoint_sha256 (of the file it
    was loaded from; empty for a predictor built in Python) and medimg_version."""
    from .. import __version__

    ckpt = predictor.checkpoint if predictor.checkpoint is not None else {}
    if "file_sha256" not in ckpt and ckpt.get("file_path"):
        ckpt["file_sha256"] = file_sha256(ckpt["file_path"])  # only runs that log pay for reading the file again
    amp = predictor.amp if predictor.device.type == "cuda" else False
    precision = "fp32" if not amp else ("bf16" if amp == "bf16" else "fp16")
    return {
        "device": str(predictor.device),
        "precision": precision,
        "checkpoint_sha256": ckpt.get("file_sha256", ""),
        "medimg_version": __version__,
    }


class RunLog:
    """``predict_log.csv`` of one run (one shard): rows appended and flushed as cases finish.

    Args:
        out: the output folder.
        shard: ``(i, N)`` for a shard's own log file; None: ``predict_log.csv``.
        context: the run-wide columns (device, precision, checkpoint_sha256,
            medimg_version), written on every row.
        columns: the header (:data:`LOG_COLUMNS`, or those plus a caller's own columns,
            filled through :meth:`write`'s keyword arguments).
    """

    def __init__(self, out: Path, shard: tuple[int, int] | None = None, context: dict[str, Any] | None = None,
                 columns: tuple[str, ...] = LOG_COLUMNS) -> None:
        self.path = Path(out) / log_name(shard)
        self.context = {k: ("" if v is None else v) for k, v in (context or {}).items()}
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", newline="")  # noqa: SIM115 (open for the run, closed by close())
        self._writer = csv.DictWriter(self._fh, fieldnames=list(columns), extrasaction="ignore")
        if fresh:
            self._writer.writeheader()
        elif not _ends_with_newline(self.path):
            self._fh.write("\n")  # a row cut short by a kill stays one bad line, ignored on reading
        self._fh.flush()

    def write(self, case_id: str, status: str, *, input: Any = "", seconds: float | None = None, error: str = "",
              **extra: Any) -> None:
        """Append one row and flush it to the operating system (it survives a kill -9);
        ``extra``: values of the caller's own columns."""
        row = {
            **self.context,
            **extra,
            "case_id": case_id,
            "input": str(input),
            "status": status,
            "seconds": "" if seconds is None else f"{seconds:.3f}",
            "error": " ".join(str(error).split()),
        }
        self._writer.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RunLog:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) in (b"\n", b"\r")


def done_cases(out: str | os.PathLike) -> set[str]:
    """Case ids whose last row, over every ``predict_log*.csv`` in ``out``, says they were
    predicted (``ok``, or skipped as already predicted). Rows cut short by a kill (too few
    fields) are ignored."""
    done: set[str] = set()
    for log in sorted(Path(out).glob("predict_log*.csv")):
        with open(log, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get(LOG_COLUMNS[-1]) is None or not row.get("case_id"):
                    continue  # a partial row
                status, cid = row["status"], row["case_id"]
                if status == "ok" or (status == "skipped" and row.get("error") == ALREADY_DONE):
                    done.add(cid)
                elif status == "failed":
                    done.discard(cid)
    return done


def shard_of(items: Sequence[T], shard: tuple[int, int] | None, key: Any = None) -> list[T]:
    """The items of shard ``(i, N)``: item ``k`` of the list sorted by ``key`` when
    ``k % N == i`` (all of them for None). Every item is in exactly one shard, whatever
    order the list came in."""
    ordered = sorted(items, key=key) if key is not None else list(items)
    if shard is None:
        return ordered
    i, n = shard
    return [it for k, it in enumerate(ordered) if k % n == i]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``.

    Raises:
        ConfigError: anything else (the message says what ``--shard`` takes).
    """
    head, sep, tail = str(text).strip().partition("/")
    try:
        if not sep:
            raise ValueError
        i, n = int(head), int(tail)
    except ValueError:
        raise ConfigError(
            f"--shard {text!r}: expected i/N, the shard index i (from 0) and the number of shards N, e.g. 0/4"
        ) from None
    return _check_shard(i, n, f"--shard {text!r}")


def _check_shard(i: int, n: int, where: str) -> tuple[int, int]:
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"{where}: shard index must be 0..N-1 with N >= 1, got index {i} of {n} shard(s)")
    return i, n


def resolve_shard(shard: tuple[int, int] | str | None) -> tuple[int, int] | None:
    """The shard to run: ``shard`` as given (``(i, N)`` or ``"i/N"``), else under
    ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set, ``WORLD_SIZE > 1``) this rank's, else
    None (all cases).

    Raises:
        ConfigError: an invalid shard.
    """
    if isinstance(shard, str):
        return parse_shard(shard)
    if shard is not None:
        i, n = (int(v) for v in shard)
        return _check_shard(i, n, f"shard=({i}, {n})")
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None or world is None:
        return None
    try:
        i, n = int(rank), int(world)
    except ValueError:
        raise ConfigError(f"environment RANK={rank!r} WORLD_SIZE={world!r}: expected integers (set by torchrun)") from None
    return None if n <= 1 else _check_shard(i, n, f"RANK={i} WORLD_SIZE={n}")
