"""Checkpoints written in the background: content fixed at save, one state in flight, one
serialisation for best.pt and last.pt, failures raised on the caller's thread, atomic files
even when the process is killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import medimg.engine.checkpoint_writer as cw
from medimg.core.errors import CheckpointError
from medimg.core.spec import InferenceSpec
from medimg.engine import Trainer
from medimg.engine.callbacks import Callback
from medimg.engine.checkpoint_writer import CheckpointWriter, snapshot


def _gated(monkeypatch, log: list) -> threading.Event:
    """Make the writer's serialisation wait for the returned event, and log start/end."""
    gate = threading.Event()
    real = cw.write_checkpoint

    def write(payload, path):
        log.append(("start", Path(path).name))
        gate.wait()
        real(payload, path)
        log.append(("end", Path(path).name))

    monkeypatch.setattr(cw, "write_checkpoint", write)
    return gate


def test_snapshot_copies_tensors_and_keeps_dict_classes():
    model = nn.Linear(3, 2)
    sd = model.state_dict()
    snap = snapshot({"state_dict": sd, "history": [{"epoch": 1}], "pair": (torch.ones(2), 3), "name": "x"})
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(snap["state_dict"]["weight"], model.weight)
    assert type(snap["state_dict"]) is type(sd) and snap["state_dict"]._metadata == sd._metadata
    assert isinstance(snap["pair"], tuple) and snap["name"] == "x" and snap["history"] == [{"epoch": 1}]


def test_content_is_fixed_when_save_returns(tmp_path, monkeypatch):
    gate = _gated(monkeypatch, [])
    w = torch.zeros(4)
    writer = CheckpointWriter()
    writer.save(tmp_path / "last.pt", 1, lambda: {"w": w})
    w.add_(5.0)  # training goes on while the file is still being written
    gate.set()
    writer.close()
    assert torch.equal(torch.load(tmp_path / "last.pt", weights_only=True)["w"], torch.zeros(4))


def test_a_new_state_waits_for_the_previous_writes(tmp_path, monkeypatch):
    log: list = []
    gate = _gated(monkeypatch, log)
    writer = CheckpointWriter()
    writer.save(tmp_path / "a.pt", 1, lambda: {"epoch": 1})
    threading.Thread(target=lambda: (time.sleep(0.2), gate.set())).start()
    writer.save(tmp_path / "b.pt", 2, lambda: {"epoch": 2})  # returns only once a.pt is written
    assert ("end", "a.pt") in log
    writer.close()
    assert log == [("start", "a.pt"), ("end", "a.pt"), ("start", "b.pt"), ("end", "b.pt")]


def test_best_and_last_of_one_state_are_serialised_once(tmp_path, monkeypatch):
    builds = []
    writer = CheckpointWriter()
    for name in ("best.pt", "last.pt"):
        writer.save(tmp_path / name, (3, "m"), lambda: builds.append(1) or {"w": torch.arange(5)})
    writer.close()
    assert len(builds) == 1
    best, last = (tmp_path / "best.pt"), (tmp_path / "last.pt")
    assert best.read_bytes() == last.read_bytes()
    assert best.stat().st_ino != last.stat().st_ino  # a copy, not a link: overwriting one keeps the other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temporary left


def test_a_failed_write_is_raised_on_the_callers_thread(tmp_path, monkeypatch):
    def fail(payload, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cw, "write_checkpoint", fail)
    writer = CheckpointWriter()
    writer.save(tmp_path / "best.pt", 1, dict)
    writer.save(tmp_path / "last.pt", 1, dict)  # copy of a failed file: fails too, never copies an old file
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint '.*best\.pt': No space left on device"):
        writer.save(tmp_path / "best.pt", 2, dict)
    assert not (tmp_path / "last.pt").exists()
    writer.save(tmp_path / "last.pt", 3, dict)
    writer.close(raise_errors=False)  # dropped: another error is on its way up
    with pytest.raises(CheckpointError):
        writer.save(tmp_path / "last.pt", 4, dict)
        writer.close()


_KILL_SCRIPT = """
import os, signal, sys, torch
from pathlib import Path
import medimg.inference.checkpoint as ck
from medimg.engine.checkpoint_writer import CheckpointWriter

target = Path(sys.argv[1])
writer = CheckpointWriter()
writer.save(target, 1, lambda: {"epoch": 1, "w": torch.zeros(1000)})
writer.wait()

def half_then_killed(obj, f):
    with open(f, "wb") as fh:
        fh.write(target.read_bytes()[:100])
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

ck.torch.save = half_then_killed
writer.save(target, 2, lambda: {"epoch": 2, "w": torch.ones(1000)})
writer.wait()
"""


def test_a_run_killed_mid_write_keeps_the_previous_complete_file(tmp_path):
    target = tmp_path / "last.pt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(target)], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert torch.load(target, weights_only=True)["epoch"] == 1
    left = [p.name for p in tmp_path.iterdir() if p.name != "last.pt"]
    assert len(left) == 1 and left[0].startswith(".tmp-")  # hidden, never taken for a checkpoint


# -- through the Trainer ------------------------------------------------------------------
def _trainer(tmp_path: Path, max_epochs: int = 2) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 2, (8,))
    spec = InferenceSpec(task="classification", roi_size=[4, 4], label_names=["a", "b"], in_channels=1)
    return Trainer(model, nn.CrossEntropyLoss(), torch.optim.AdamW(model.parameters(), lr=1e-2),
                   lambda epoch: [{"image": x, "label": y}] * 2, 2, [], spec,
                   {"name": "tiny", "in_channels": 1, "out_channels": 2}, tmp_path, torch.device("cpu"),
                   max_epochs=max_epochs, metrics=["auc"], select_by="auc", progress=False, log=lambda s: None)


def test_fit_returns_with_the_checkpoints_on_disk(tmp_path, monkeypatch):
    log: list = []
    gate = _gated(monkeypatch, log)
    threading.Thread(target=lambda: (time.sleep(0.2), gate.set())).start()
    result = _trainer(tmp_path).fit()
    assert log[-1] == ("end", "best.pt")  # last.pt of the same epoch is a copy of best.pt
    last = torch.load(result.last_checkpoint, weights_only=True)
    assert last["resume"]["epoch"] == 2 and last["optimizer_state"]["state"]
    assert result.best_checkpoint.read_bytes() == result.last_checkpoint.read_bytes()  # no validation: best = last


def test_fit_raises_a_failed_write(tmp_path, monkeypatch):
    monkeypatch.setattr(cw, "write_checkpoint", lambda payload, path: (_ for _ in ()).throw(PermissionError("denied")))
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*best.pt.*denied"):
        _trainer(tmp_path, max_epochs=1).fit()


class _Boom(Callback):
    def on_step_end(self, state):
        if state.epoch == 2:
            raise KeyboardInterrupt


def test_an_error_in_training_wins_over_a_failed_write_and_waits_for_it(tmp_path, monkeypatch):
    calls = []

    def fail(payload, path):
        time.sleep(0.1)
        calls.append(path)
        raise OSError("disk gone")

    monkeypatch.setattr(cw, "write_checkpoint", fail)
    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path).fit([_Boom()])
    assert calls  # the write in flight finished (and failed) before fit raised
