"""Run folders: the resolved config and the environment, written before training starts.

Every run folder holds:

- ``config.resolved.yaml``: the validated config with every default filled in and
  data paths absolute; ``load_config`` reads it back to the same config, so a run can
  be repeated from its folder alone;
- ``config.original.yaml``: the file as the user wrote it (when there was one);
- ``environment.json``: versions (Python, medimg, torch, MONAI, numpy, pydicom,
  nibabel...), platform, CUDA devices, CPU and thread counts, the git commit of the
  medimg checkout (with a dirty flag), the command line and a UTC timestamp.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .schema import ExperimentConfig

__all__ = [
    "RESOLVED_CONFIG",
    "ORIGINAL_CONFIG",
    "ENVIRONMENT",
    "config_to_dict",
    "dump_config",
    "save_config",
    "collect_environment",
    "run_dir_for",
    "prepare_run_dir",
]

RESOLVED_CONFIG = "config.resolved.yaml"
ORIGINAL_CONFIG = "config.original.yaml"
ENVIRONMENT = "environment.json"

#: Distributions whose versions go into environment.json (absent ones are null).
_PACKAGES = (
    "medimg", "torch", "torchvision", "monai", "numpy", "scipy", "pydicom", "nibabel",
    "highdicom", "SimpleITK", "pydantic", "PyYAML",
)


def _plain(value: Any) -> Any:
    """Paths -> str, tuples -> lists, recursively: what YAML and JSON can hold."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The whole config as plain data (defaults included), in the schema's key order."""
    return _plain(cfg.model_dump(mode="python"))


class _Dumper(yaml.SafeDumper):
    """Block mappings; lists of plain scalars on one line (``spacing: [1.0, 1.0, 1.0]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, (str, int, float, bool)) or v is None for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_config(cfg: ExperimentConfig) -> str:
    """The config as YAML text that :func:`~medimg.config.load_config` reads back."""
    return yaml.dump(
        config_to_dict(cfg), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )


def save_config(cfg: ExperimentConfig, path: str | os.PathLike[str]) -> Path:
    """Write :func:`dump_config` to ``path`` (atomically: temp file then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    header = "# resolved by medimg: every default filled in, data paths absolute\n"
    tmp.write_text(header + dump_config(cfg), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    if out.get("medimg") is None:
        from .. import __version__

        out["medimg"] = __version__
    return out


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

    Imports torch (for the CUDA devices and thread counts).
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
        "versions": _versions(),
        "torch": _torch_info(),
        "git": _git_info(),
    }


def run_dir_for(cfg: ExperimentConfig, output_dir: str | os.PathLike[str] | None = None) -> Path:
    """The run folder: ``output_dir`` if given, else ``experiment.output_dir`` with
    ``{name}`` replaced by ``experiment.name``; relative to the current directory."""
    if output_dir is not None:
        return Path(output_dir).expanduser().absolute()
    text = cfg.experiment.output_dir.replace("{name}", cfg.experiment.name)
    return Path(text).expanduser().absolute()


def prepare_run_dir(
    cfg: ExperimentConfig,
    output_dir: str | os.PathLike[str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Create the run folder and write the resolved config and the environment into it.

    Args:
        cfg: the validated config.
        output_dir: the run folder; default: ``cfg.experiment.output_dir`` with
            ``{name}`` replaced.
        config_path: the file the config came from; copied as ``config.original.yaml``.

    Returns:
        The run folder (absolute). An existing folder is reused; its resolved config
        and environment files are replaced.

    Raises:
        ConfigError: the folder cannot be created or written.
    """
    run_dir = run_dir_for(cfg, output_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / RESOLVED_CONFIG)
        if config_path is not None and Path(config_path).is_file():
            src = Path(config_path).absolute()
            if src != (run_dir / ORIGINAL_CONFIG).absolute():
                shutil.copyfile(src, run_dir / ORIGINAL_CONFIG)
        env = collect_environment()
        env["config_path"] = str(Path(config_path).absolute()) if config_path else None
        env["run_dir"] = str(run_dir)
        (run_dir / ENVIRONMENT).write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        from ..core.errors import ConfigError

        raise ConfigError(
            f"cannot create the run folder '{run_dir}': {exc.strerror or exc}",
            hint="choose a writable folder with --output-dir or experiment.output_dir",
        ) from exc
    return run_dir
