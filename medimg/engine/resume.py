"""Exact resume: the state a checkpoint carries beyond the weights, and the checks a
resumed run passes before it does any work.

Every ``best.pt`` and ``last.pt`` holds, under ``"resume"`` (plain data and tensors, so it
loads with ``torch.load(..., weights_only=True)``): the epoch it was written after, the
optimizer, LR scheduler and AMP gradient scaler states, each callback's state (best metric
and epoch, patience counter, minutes used), the history rows and every random number
generator's state (torch CPU and CUDA, numpy, Python ``random``). The training batches
are a function of (seed, epoch, rank) (:class:`medimg.data.PatchDataset`,
:func:`medimg.data.cls_loader.classification_loader`), so the next epoch's batches need
no stored sampler state: the epoch is the sampler's position.

``train(config, resume=RUN_DIR)`` (``medimg train CONFIG --resume RUN_DIR``) reads
``RUN_DIR/last.pt`` and continues after the last epoch it completed (an epoch cut short
by ``trainer.max_minutes`` counts as completed). The config must be the one the run
folder's ``config.resolved.yaml`` holds, but for the keys of :data:`RESULT_NEUTRAL_KEYS`
(they cannot change the weights); any other difference is refused unless
``allow_config_change`` (``--allow-config-change``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..core.errors import CheckpointError, ConfigError
from ..core.spec import ExperimentConfig, dump_config
from ..inference.checkpoint import load_checkpoint
from .rundir import RESOLVED_CONFIG

__all__ = [
    "LAST",
    "RESULT_NEUTRAL_KEYS",
    "config_differences",
    "check_resume_config",
    "load_resume_checkpoint",
    "rng_state",
    "set_rng_state",
]

LAST = "last.pt"

#: Keys a resumed run may change without ``--allow-config-change``: they decide how long
#: or how fast the run goes, or what is logged, never what a step computes. (``trainer.max_epochs`` is not
#: one: cosine, poly and one-cycle schedules are stretched over it.)
RESULT_NEUTRAL_KEYS = frozenset(
    {"trainer.max_minutes", "trainer.num_threads", "data.num_workers", "experiment.output_dir",
     "trainer.tensorboard", "data.cache", "data.cache_dir",
     # the weights' memory layout: float rounding only, as the thread count (the run's own
     # choice is in its resume state)
     "trainer.channels_last"}
)


# -- random number generators --------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG's state as plain data and tensors (``weights_only``-loadable)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states where this machine has the
    same number of devices)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# -- the config of a resumed run -----------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf that differs (a missing key's
    value is ``"<absent>"``); lists compare whole."""
    a, b = _flatten(old), _flatten(new)
    absent = "<absent>"
    return [(k, a.get(k, absent), b.get(k, absent)) for k in dict.fromkeys([*a, *b]) if a.get(k, absent) != b.get(k, absent)]


def _with_defaults(old: Mapping[str, Any]) -> Mapping[str, Any]:
    """A resolved config as the current schema writes it: keys added since the run started
    appear with their defaults (a key the run never had is not a change), and ``old``
    itself where it no longer validates (every difference is then reported)."""
    try:
        return yaml.safe_load(dump_config(ExperimentConfig.model_validate(dict(old))))
    except (ValueError, TypeError):  # pydantic.ValidationError is a ValueError: compared as written
        return old


def check_resume_config(run_dir: Path, cfg: ExperimentConfig, allow_change: bool = False) -> list[tuple[str, Any, Any]]:
    """Compare ``cfg`` with ``run_dir/config.resolved.yaml``.

    Returns:
        The differences (all of them result-neutral unless ``allow_change``).

    Raises:
        ConfigError: the file is missing or unreadable, or keys outside
            :data:`RESULT_NEUTRAL_KEYS` differ and ``allow_change`` is false.
    """
    path = run_dir / RESOLVED_CONFIG
    new = yaml.safe_load(dump_config(cfg))
    try:
        old = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        if allow_change:
            return []
        raise ConfigError(
            f"cannot resume from '{run_dir}': its {RESOLVED_CONFIG} is missing or unreadable "
            f"({type(exc).__name__}), so the config cannot be checked",
            hint="resume with allow_config_change=True if this is the run's config, or start a new run",
            cli_hint="add --allow-config-change if CONFIG is the run's config, or start a new run without --resume",
        ) from None
    diffs = config_differences(_with_defaults(old) if isinstance(old, Mapping) else {}, new)
    refused = [d for d in diffs if d[0] not in RESULT_NEUTRAL_KEYS]
    if refused and not allow_change:
        listed = "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in refused[:8])
        more = f" (and {len(refused) - 8} more)" if len(refused) > 8 else ""
        raise ConfigError(
            f"cannot resume from '{run_dir}': the config differs from its {RESOLVED_CONFIG} at "
            f"{len(refused)} key(s): {listed}{more}",
            hint="resume with the run's own config (its config.resolved.yaml), or pass "
            "allow_config_change=True to continue with the new values",
            cli_hint="resume with the run's own config (RUN_DIR/config.resolved.yaml), or add "
            "--allow-config-change to continue with the new values",
        )
    return diffs


# -- the checkpoint of a resumed run -------------------------------------------------------
def load_resume_checkpoint(run_dir: Path) -> dict[str, Any]:
    """Read ``run_dir/last.pt`` and check that it carries resume state.

    Raises:
        CheckpointError: the folder or ``last.pt`` is missing, damaged or truncated, or
            holds no resume state (written by an older medimg).
    """
    run_dir = Path(run_dir)
    path = run_dir / LAST
    if not run_dir.is_dir():
        raise CheckpointError(
            f"cannot resume: the run folder '{run_dir}' does not exist",
            hint="give the folder of an earlier run (its --output-dir), or start a new run without resume",
            cli_hint="give the folder of an earlier run (its --output-dir) to --resume, or leave --resume out",
        )
    if not path.is_file():
        raise CheckpointError(
            f"cannot resume from '{run_dir}': it has no {LAST} (the run ended before its first "
            "epoch, or this is not a medimg run folder)",
            hint="start the run anew without resume (output_dir=that folder)",
            cli_hint="start the run anew: leave --resume out (--output-dir that folder)",
        )
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(
            f"cannot resume: {exc.message}",
            hint=f"copy {run_dir / 'best.pt'} over it to resume from the best epoch, or start the run anew without resume",
            cli_hint=f"copy {run_dir / 'best.pt'} over it to resume from the best epoch, or leave --resume out to start anew",
        ) from None
    if not isinstance(ckpt.get("resume"), Mapping):
        raise CheckpointError(
            f"cannot resume from '{path}': it holds no resume state (written by an older medimg)",
            hint="start the run anew without resume, or fine-tune from its weights",
            cli_hint="start the run anew: leave --resume out",
        )
    return ckpt
