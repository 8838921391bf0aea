"""Versions and environment: the one place that knows how to describe where a result came from.

Run folders write :func:`collect_environment` as ``environment.json``; checkpoints store
:func:`package_versions` of the packages that decide whether the weights load and predict
the same. Nothing here imports torch at import time.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "CHECKPOINT_PACKAGES", "package_versions", "collect_environment"]

#: Distributions whose versions go into environment.json (absent ones are null).
PACKAGES: tuple[str, ...] = (
    "medimg", "torch", "torchvision", "monai", "numpy", "scipy", "pydicom", "nibabel",
    "highdicom", "SimpleITK", "pydantic", "PyYAML",
)
#: The versions a checkpoint records: what its weights and preprocessing depend on.
CHECKPOINT_PACKAGES: tuple[str, ...] = ("medimg", "torch", "monai")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (None when not installed).

    medimg itself falls back to ``medimg.__version__`` when it runs from a checkout that
    is not installed. Looked up once per process and name (the packages a process has
    imported do not change under it; the metadata scan otherwise ran on every
    checkpoint the trainer saved); each call returns a new dict.
    """
    out = {name: _version(name) for name in names}
    if "medimg" in out and out["medimg"] is None:
        from .. import __version__

        out["medimg"] = str(__version__)
    return out


@functools.lru_cache(maxsize=None)
def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git(cwd: Path, *args: str) -> str | None:
    if shutil.which("git") is None:
        return None
    try:
        res = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _git_info() -> dict[str, Any]:
    """Commit of the checkout medimg is imported from (None when not a git checkout)."""
    here = Path(__file__).resolve().parent
    sha = _git(here, "rev-parse", "HEAD")
    if sha is None:
        return {"sha": None, "dirty": None, "root": None}
    status = _git(here, "status", "--porcelain", "--untracked-files=no")
    return {
        "sha": sha,
        "dirty": bool(status) if status is not None else None,
        "root": _git(here, "rev-parse", "--show-toplevel"),
    }


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"cuda_available": False, "devices": [], "num_threads": None}
    cuda = bool(torch.cuda.is_available())
    devices = []
    if cuda:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {"index": i, "name": props.name, "memory_gb": round(props.total_memory / 2**30, 2)}
            )
    return {
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "devices": devices,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
    }


def collect_environment(argv: list[str] | None = None) -> dict[str, Any]:
    """Versions, platform, devices, CPU/thread counts, git commit, command line, time.

    Imports torch (for the CUDA devices and thread counts). The result is plain data
    (``json.dumps`` writes it as it is).
    """
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable_cpus = os.cpu_count()
    return {
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "versions": package_versions(),
        "torch": _torch_info(),
        "git": _git_info(),
    }
