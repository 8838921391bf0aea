"""Shared benchmark harness: timing, peak memory, machine info, tables, JSON (docs/architecture.md §5).

Every ``benchmarks/<name>.py`` runs medimg and its peers side by side in one process on the
same input. Each round runs every tool once, in an order shuffled anew each round (seeded,
so a run can be repeated), after one warm-up call each, and the median is reported, so slow
drifts of a shared machine and cache effects of running first or last hit every tool alike. With
``--json PATH`` the result is written as::

    {"benchmark": NAME,
     "machine": {"python": ..., "platform": ..., "cpu": ..., "cores": ..., "device": ...,
                 "versions": {package: version}, "git": sha},
     "results": [{"case": ..., "tool": "medimg" | PEER, "seconds": MEDIAN,
                  "peak_mb": ..., "agrees": true | false, "runs": [...]}],
     "ratios": {"PEER/medimg": X, ...}}

where a ratio above 1 means medimg is faster. Ratios of the first case are keyed
``"PEER/medimg"``; those of later cases ``"PEER/medimg [case]"``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "REPO",
    "BENCH_DIR",
    "Result",
    "Tool",
    "parse_args",
    "run_case",
    "peak_rss_mb",
    "machine_info",
    "compute_ratios",
    "print_table",
    "write_json",
    "report",
]

REPO = Path(__file__).resolve().parents[1]
#: cache of generated inputs (git-ignored)
BENCH_DIR = REPO / ".bench"


@dataclass
class Result:
    """One tool on one case: median seconds of ``runs``, peak extra memory, agreement."""

    case: str
    tool: str
    seconds: float
    peak_mb: float | None
    agrees: bool
    runs: list[float] = field(default_factory=list)
    note: str = ""
    peer: bool = True  # False for medimg, its variants and the floors (no ratio)


@dataclass
class Tool:
    """A tool to time: ``fn()`` does the work and returns its output; ``check(output)``
    says whether the output agrees with medimg's (None: it is the reference)."""

    name: str
    fn: Callable[[], Any]
    check: Callable[[Any], bool] | None = None
    peer: bool = True  # False for medimg itself and its variants / floors: no ratio
    note: str = ""


def parse_args(description: str, argv: Sequence[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The common command line: ``--quick``, ``--json PATH``, ``--repeats N`` (and the
    options ``extra(parser)`` adds)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="small input, few repeats (smoke test)")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results as JSON")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per tool (default 7, 2 with --quick)")
    if extra is not None:
        extra(ap)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    return args


# ------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------
def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(fn: Callable[[], Any]) -> float | None:
    """Peak resident memory added while ``fn()`` runs and its output is alive, in MB.

    Uses the kernel's resettable high-water mark where available (exact, no overhead),
    else samples RSS every 2 ms in a thread. Counts native allocations (libraries in C,
    torch, ITK) that ``tracemalloc`` would miss. None where RSS cannot be read.
    """
    gc.collect()
    base = _rss_bytes()
    if base is None:
        return None
    if _reset_hwm():
        out = fn()
        peak = _hwm_bytes()
        del out
        return None if peak is None else max(peak - base, 0) / 1e6
    peak_seen = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            v = _rss_bytes()
            if v is not None and v > peak_seen[0]:
                peak_seen[0] = v
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = fn()
    v = _rss_bytes()
    done.set()
    th.join()
    del out
    return (max(peak_seen[0], v or 0) - base) / 1e6


# ------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------
def run_case(case: str, tools: Sequence[Tool], repeats: int, *, memory: bool = True,
             progress: bool = True) -> list[Result]:
    """Time every tool on one case: a warm-up call each (which also checks agreement),
    then ``repeats`` rounds in which each tool runs once, in an order shuffled anew each
    round (seeded: the same call repeats the same orders). Median per tool."""
    agrees: dict[str, bool] = {}
    for t in tools:
        out = t.fn()
        try:
            agrees[t.name] = True if t.check is None else bool(t.check(out))
        except Exception as exc:  # a failed comparison is a disagreement, with the reason
            print(f"  [{case}] {t.name}: comparison failed: {exc!r}", file=sys.stderr)
            agrees[t.name] = False
        del out
    runs: dict[str, list[float]] = {t.name: [] for t in tools}
    order_rng = random.Random(f"{case}:{len(tools)}")
    for r in range(repeats):
        order = list(tools)
        order_rng.shuffle(order)
        for t in order:
            gc.collect()
            t0 = time.perf_counter()
            out = t.fn()
            runs[t.name].append(time.perf_counter() - t0)
            del out
        if progress:
            print(f"  [{case}] round {r + 1}/{repeats}", file=sys.stderr, flush=True)
    results = []
    for t in tools:
        peak = peak_rss_mb(t.fn) if memory else None
        results.append(Result(case, t.name, statistics.median(runs[t.name]), peak,
                              agrees[t.name], runs[t.name], t.note, t.peer))
    return results


def compute_ratios(results: Sequence[Result], base: str = "medimg") -> dict[str, float]:
    """``{"PEER/medimg": peer_seconds / medimg_seconds}`` for every peer and case (>1:
    medimg faster). The first case's keys are plain, later cases' get ``" [case]"``."""
    out: dict[str, float] = {}
    cases: list[str] = []
    for r in results:
        if r.case not in cases:
            cases.append(r.case)
    for i, case in enumerate(cases):
        rows = [r for r in results if r.case == case]
        ref = next((r for r in rows if r.tool == base), None)
        if ref is None or ref.seconds <= 0:
            continue
        for r in rows:
            if r.tool == base or not r.peer:
                continue
            key = f"{r.tool}/{base}" + ("" if i == 0 else f" [{case}]")
            out[key] = round(r.seconds / ref.seconds, 3)
    return out


# ------------------------------------------------------------------------------------------
# machine and output
# ------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Python, platform, CPU, usable cores, device, package versions and the git SHA."""
    versions = {}
    for name in ("medimg", "numpy", "torch", *packages):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    device = "cpu"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": cores,
        "device": device,
        "versions": versions,
        "git": sha,
    }


def print_table(title: str, results: Sequence[Result], ratios: dict[str, float]) -> None:
    """A plain-text table of the results, then the ratios."""
    print(f"\n{title}")
    w = max([len(r.tool) for r in results] + [4])
    wc = max([len(r.case) for r in results] + [4])
    print(f"{'case':<{wc}}  {'tool':<{w}}  {'median s':>9}  {'min s':>7}  {'peak MB':>8}  agrees")
    for r in results:
        pk = "-" if r.peak_mb is None else f"{r.peak_mb:8.0f}"
        print(f"{r.case:<{wc}}  {r.tool:<{w}}  {r.seconds:9.3f}  {min(r.runs):7.3f}  {pk:>8}  "
              f"{'yes' if r.agrees else 'NO'}{'  ' + r.note if r.note else ''}")
    if ratios:
        print("ratios (PEER/medimg, > 1 means medimg is faster):")
        for k, v in ratios.items():
            print(f"  {k:<40} {v:6.2f}")


def write_json(path: Path, name: str, machine: dict[str, Any], results: Sequence[Result],
               ratios: dict[str, float], extra: dict[str, Any] | None = None) -> None:
    """Write the docs/architecture.md §5 JSON document."""
    doc = {
        "benchmark": name,
        "machine": machine,
        "results": [
            {k: v for k, v in asdict(r).items() if k != "note" or v} for r in results
        ],
        "ratios": ratios,
    }
    if extra:
        doc.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def report(name: str, title: str, results: list[Result], json_path: Path | None,
           packages: Sequence[str] = (), extra: dict[str, Any] | None = None) -> dict[str, float]:
    """Print the table and ratios, and write the JSON if asked. Returns the ratios."""
    ratios = compute_ratios(results)
    print_table(title, results, ratios)
    if json_path is not None:
        write_json(json_path, name, machine_info(packages), results, ratios, extra)
        print(f"wrote {json_path}")
    return ratios


def layout_note(trainer: Any) -> str:
    """The layout of the convolution weights a medimg ``Trainer`` kept and the fastest timed
    step of each (``trainer.channels_last: auto``), for a benchmark row's note."""
    timed = {name: min(t) for name, t in trainer.layout.timings.items() if t}
    figures = ", ".join(f"{name} {sec:.3f} s" for name, sec in timed.items())
    kept = trainer.layout.layout
    head = f"kept {kept} weights" if kept else "weights' layout still being timed when the run ended"
    return head + (f" (per step: {figures})" if figures else "")
