"""A small AI node: receive studies by C-STORE, predict each once, push its DICOM SEG.

:func:`serve` runs a storage SCP (:func:`medimg.io.pacs.scp.start_storage_scp`) and a loop
over an on-disk queue in ``state_dir``, one folder per state, a study moving between them
by atomic renames::

    incoming/<study>/   files arriving (the SCP writes here)
    queued/<study>/     complete: no file arrived for quiet_s seconds
    running/<study>/    being predicted (at most one)
    done/<study>/       predicted and its SEG pushed; result.json holds the SEG's series UID
    failed/<study>/     error.txt says why

After a crash (kill -9) a restart moves ``running/`` back to ``queued/``; before pushing, the
destination is asked whether the study already holds a SEG of this checkpoint (the tag of
:func:`medimg.inference.pacs.seg_tag`), so a study whose SEG was pushed just before the crash
is not pushed twice: every study received is processed exactly once. :func:`node_status`
lists the studies in each state.

A node file (``--config node.yaml``)::

    ae_title: MEDIMG_NODE        # the node's AE title
    host: 127.0.0.1              # where it listens
    port: 11112
    allowed_ae_titles: [ORTHANC] # calling AE titles accepted
    quiet_s: 10                  # a study is complete after this many seconds without a file
    state_dir: node_state        # the queue (relative paths: to the node file's folder)
    destination: pacs.yaml       # server file of the PACS the SEGs go to (DICOMweb)
    channels: {}                 # channel name -> SeriesDescription pattern (optional)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ConfigError, MedimgError, exception_reason

__all__ = ["NodeConfig", "STATES", "load_node_config", "node_status", "process_one", "recover", "serve"]

STATES = ("incoming", "queued", "running", "done", "failed")


class NodeConfig(BaseModel):
    """The node file (module docstring)."""

    model_config = ConfigDict(extra="forbid")
    ae_title: str = "MEDIMG_NODE"
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=1, le=65535)
    allowed_ae_titles: list[str] = Field(min_length=1)
    quiet_s: float = Field(10.0, gt=0)
    state_dir: Path
    destination: Path
    channels: dict[str, str] = Field(default_factory=dict)


def load_node_config(path: str | Path) -> NodeConfig:
    """Read a node file; relative paths are taken from its folder."""
    import yaml
    from pydantic import ValidationError

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
        config = NodeConfig.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read node file '{path}': {exception_reason(exc)}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"node file '{path}': {problems}") from None
    base = path.parent
    return config.model_copy(update={"state_dir": base / config.state_dir, "destination": base / config.destination})


def _dirs(state_dir: Path) -> dict[str, Path]:
    out = {s: state_dir / s for s in STATES}
    for p in out.values():
        p.mkdir(parents=True, exist_ok=True)
    return out


def recover(state_dir: str | Path) -> list[str]:
    """Move studies left in ``running/`` by a crash back to ``queued/``; their names."""
    d = _dirs(Path(state_dir))
    moved = []
    for study in sorted(p.name for p in d["running"].iterdir()):
        os.replace(d["running"] / study, d["queued"] / study)
        moved.append(study)
    return moved


def promote_quiet(state_dir: Path, quiet_s: float, now: float | None = None) -> list[str]:
    """Queue the incoming studies no file has reached for ``quiet_s`` seconds."""
    d = _dirs(state_dir)
    now = time.time() if now is None else now
    queued = []
    for folder in sorted(d["incoming"].iterdir()):
        newest = max((f.stat().st_mtime for f in folder.iterdir()), default=folder.stat().st_mtime)
        if now - newest < quiet_s:
            continue
        target = d["queued"] / folder.name
        if target.exists() or (d["done"] / folder.name).exists():
            target = d["queued"] / f"{folder.name}.{int(now * 1000)}"  # more files of a known study
        os.replace(folder, target)
        queued.append(target.name)
    return queued


def process_one(state_dir: Path, handle: Callable[[str, Path], dict[str, Any]]) -> str | None:
    """Take the oldest queued study through ``running/`` to ``done/`` or ``failed/``.

    ``handle(study_uid, folder)`` predicts and pushes, returning what ``result.json`` keeps.
    """
    d = _dirs(state_dir)
    queued = sorted(d["queued"].iterdir(), key=lambda p: p.stat().st_mtime)
    if not queued:
        return None
    name = queued[0].name
    running = d["running"] / name
    os.replace(queued[0], running)
    try:
        result = handle(_study_of(running, name), running)
    except (MedimgError, OSError, ValueError, RuntimeError) as exc:
        (running / "error.txt").write_text(exception_reason(exc) + "\n")
        os.replace(running, d["failed"] / name)
        return name
    (running / "result.json").write_text(json.dumps(result, indent=2))
    os.replace(running, d["done"] / name)
    return name


def _study_of(folder: Path, name: str) -> str:
    """The StudyInstanceUID of a queued folder (its name, without a ``.<ms>`` suffix of a re-sent study)."""
    import pydicom

    first = next((f for f in sorted(folder.glob("*.dcm"))), None)
    if first is not None:
        return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID)
    return name


def node_status(state_dir: str | Path) -> dict[str, list[str]]:
    """The studies in each state (``incoming``, ``queued``, ``running``, ``done``, ``failed``)."""
    d = _dirs(Path(state_dir))
    return {s: sorted(p.name for p in d[s].iterdir()) for s in STATES}


def _handler(predictor: Any, config: NodeConfig) -> Callable[[str, Path], dict[str, Any]]:
    """Predict a study folder into a SEG, tag it, push it unless the destination has it."""
    from ..io.pacs import connect, load_server
    from ..io.pacs import push as push_files
    from .pacs import _existing_seg, predict_study_seg, seg_tag
    from .runlog import run_context

    client = connect(load_server(config.destination))
    sha = run_context(predictor)["checkpoint_sha256"]
    tag = seg_tag(sha)

    def handle(study: str, folder: Path) -> dict[str, Any]:
        done = _existing_seg(client, study, tag)
        if done is not None:  # pushed before a crash: never twice
            return {"study": study, "seg_series_uid": done, "pushed": "earlier"}
        with tempfile.TemporaryDirectory(prefix="medimg-node-") as tmp:
            source = Path(tmp) / "in" / study
            shutil.copytree(folder, source, ignore=shutil.ignore_patterns(".*", "*.txt", "*.json"))
            seg, seg_uid = predict_study_seg(predictor, Path(tmp) / "in", Path(tmp) / "out", study,
                                             channels=config.channels, tag=tag, sha=sha)
            stored = push_files(client, [seg])
            if stored.failures:
                raise MedimgError(f"study {study}: the destination rejected the SEG ({stored.failures[0][1]})")
        return {"study": study, "seg_series_uid": seg_uid, "pushed": "now", "checkpoint_sha256": sha}

    return handle


def serve(predictor: Any, config: NodeConfig, *, poll_s: float = 0.5,
          should_stop: Callable[[], bool] = lambda: False) -> None:
    """Run the node until ``should_stop()`` (or a signal ends the process)."""
    from ..io.pacs.scp import start_storage_scp

    state = Path(config.state_dir)
    _dirs(state)
    recover(state)
    handle = _handler(predictor, config)
    scp = start_storage_scp(state / "incoming", config.host, config.port, config.ae_title, config.allowed_ae_titles)
    try:
        while not should_stop():
            promote_quiet(state, config.quiet_s)
            if process_one(state, handle) is None:
                time.sleep(poll_s)
    finally:
        scp.shutdown()
