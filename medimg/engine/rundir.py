"""Run folders: the resolved config and the environment, written before training starts.

Every run folder holds:

- ``config.resolved.yaml``: the validated config with every default filled in and
  data paths absolute; ``medimg.config.load_config`` reads it back to the same config,
  so a run can be repeated from its folder alone;
- ``config.original.yaml``: the file as the user wrote it (when there was one);
- ``environment.json``: versions (Python, medimg, torch, MONAI, numpy, pydicom,
  nibabel...), platform, CUDA devices, CPU and thread counts, the git commit of the
  medimg checkout (with a dirty flag), the command line and a UTC timestamp
  (:func:`medimg.core.environment.collect_environment`);
- later, what training writes: checkpoints, ``history.csv``, ``training_curve.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..core.environment import collect_environment
from ..core.errors import ConfigError
from ..core.spec import ExperimentConfig, dump_config

__all__ = [
    "RESOLVED_CONFIG",
    "ORIGINAL_CONFIG",
    "ENVIRONMENT",
    "save_config",
    "run_dir_for",
    "prepare_run_dir",
]

RESOLVED_CONFIG = "config.resolved.yaml"
ORIGINAL_CONFIG = "config.original.yaml"
ENVIRONMENT = "environment.json"
RESUMED_ENVIRONMENT = "environment.resumed.json"


def save_config(cfg: ExperimentConfig, path: str | os.PathLike[str]) -> Path:
    """Write :func:`~medimg.core.spec.dump_config` to ``path`` (atomically: temp file then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    header = "# resolved by medimg: every default filled in, data paths absolute\n"
    tmp.write_text(header + dump_config(cfg), encoding="utf-8")
    os.replace(tmp, path)
    return path


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
    *,
    resumed: bool = False,
) -> Path:
    """Create the run folder and write the resolved config and the environment into it.

    Args:
        cfg: the validated config.
        output_dir: the run folder; default: ``cfg.experiment.output_dir`` with
            ``{name}`` replaced.
        config_path: the file the config came from; copied as ``config.original.yaml``.
        resumed: a resumed run (its config already checked against the folder's):
            ``environment.json`` is kept and this session's environment goes to
            ``environment.resumed.json``.

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
        (run_dir / (RESUMED_ENVIRONMENT if resumed else ENVIRONMENT)).write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run folder '{run_dir}': {exc.strerror or exc}",
            hint="choose a writable folder with --output-dir or experiment.output_dir",
        ) from exc
    return run_dir
