"""The AI node (``medimg serve``): on-disk queue, crash recovery, exactly-once processing.

The end-to-end test runs the node as a process listening on 127.0.0.1, sends studies to it
with C-STORE, kills it with SIGKILL and restarts it; SEGs go to a private Orthanc on
127.0.0.1. No test talks to an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from medimg.core.errors import PacsError
from medimg.inference.node import node_status, process_one, promote_quiet, recover
from medimg.io.pacs import connect, load_server, query_series, store_dimse
from tests.conftest import tiny_unet_checkpoint
from tests.io.dicom_study import write_dicom_series

REPO = Path(__file__).resolve().parents[2]


def _uid() -> str:
    return f"1.2.826.0.1.3680043.10.{uuid.uuid4().int % 10**12}"


def test_queue_moves_a_study_once_and_recovers_after_a_crash(tmp_path):
    state = tmp_path / "state"
    study = _uid()
    write_dicom_series(state / "incoming" / study, "T1", study_uid=study, number=1, shape=(4, 4, 2))
    assert promote_quiet(state, quiet_s=60) == []  # files just arrived: not complete yet
    assert promote_quiet(state, quiet_s=60, now=time.time() + 61) == [study]
    seen = []
    assert process_one(state, lambda uid, folder: seen.append(uid) or {"ok": 1}) == study
    assert seen == [study] and node_status(state)["done"] == [study]
    assert json.loads((state / "done" / study / "result.json").read_text()) == {"ok": 1}
    # a study left in running/ by a kill is queued again on restart
    os.replace(state / "done" / study, state / "running" / study)
    assert recover(state) == [study] and node_status(state)["queued"] == [study]

    def fail(uid, folder):
        raise PacsError("the PACS at http://127.0.0.1:1 is down")

    process_one(state, fail)
    assert node_status(state)["failed"] == [study]
    assert "is down" in (state / "failed" / study / "error.txt").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(ckpt: Path, config: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "medimg.cli", "serve", str(ckpt), "--config", str(config),
                             "--device", "cpu"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the node did not listen")


def _wait(state: Path, n_done: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = node_status(state)
        if len(status["done"]) + len(status["failed"]) >= n_done:
            return status
        time.sleep(0.3)
    raise AssertionError(f"not processed in time: {node_status(state)}")


@pytest.mark.slow
def test_node_survives_kill_9_and_processes_every_study_once(orthanc, tmp_path):
    ckpt = tiny_unet_checkpoint(tmp_path / "model.pt")
    port = _free_port()
    config = tmp_path / "node.yaml"
    config.write_text(yaml.safe_dump({
        "ae_title": "MEDIMG_NODE", "host": "127.0.0.1", "port": port, "allowed_ae_titles": ["MEDIMG"],
        "quiet_s": 1.0, "state_dir": "state", "destination": str(orthanc.server_file),
    }))
    state = tmp_path / "state"
    node = load_server(None, url="http://127.0.0.1:1/", host="127.0.0.1", dicom_port=port,
                       called_ae_title="MEDIMG_NODE", ae_title="MEDIMG")
    studies = [_uid() for _ in range(3)]
    for i, study in enumerate(studies):
        write_dicom_series(tmp_path / "src" / study, f"T1 {i}", study_uid=study, number=1, shape=(10, 12, 6), seed=i)
    proc = _start(ckpt, config, port)
    try:
        for study in studies:
            assert store_dimse(node, [tmp_path / "src" / study]).n_stored == 6
        with pytest.raises(PacsError, match="rejected the association"):
            store_dimse(load_server(None, url="http://127.0.0.1:1/", host="127.0.0.1", dicom_port=port,
                                    called_ae_title="MEDIMG_NODE", ae_title="STRANGER", retries=1),
                        [tmp_path / "src" / studies[0]])
        # kill -9 as soon as the first study is complete: the others are received, not yet done
        deadline = time.monotonic() + 60
        while not any(node_status(state)[s] for s in ("queued", "running", "done")) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = node_status(state)
        assert sum(len(v) for v in before.values()) == 3, before  # every study received is on disk
        # a crash right after a push, before the move to done/: the restart must not push it twice
        if before["done"]:
            os.replace(state / "done" / before["done"][0], state / "running" / before["done"][0])
        proc = _start(ckpt, config, port)
        status = _wait(state, 3)
        assert status["failed"] == [] and sorted(status["done"]) == sorted(studies)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    client = connect(load_server(orthanc.server_file))
    for study in studies:
        segs = query_series(client, study, modality="SEG")
        assert len(segs) == 1, (study, segs)  # exactly once
        result = json.loads((state / "done" / study / "result.json").read_text())
        assert result["seg_series_uid"] == segs[0]["SeriesInstanceUID"]


def test_serve_status_lists_states_and_reasons(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app

    state = tmp_path / "state"
    (state / "failed" / "1.2.3").mkdir(parents=True)
    (state / "failed" / "1.2.3" / "error.txt").write_text("study 1.2.3: channel 't1' pattern 't1*' matches no series\n")
    (state / "done" / "1.2.4").mkdir(parents=True)
    config = tmp_path / "node.yaml"
    config.write_text("allowed_ae_titles: [ORTHANC]\nstate_dir: state\ndestination: pacs.yaml\n")
    result = CliRunner().invoke(app, ["serve-status", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "incoming 0  queued 0  running 0  done 1  failed 1" in result.output
    assert "failed    1.2.3  study 1.2.3: channel 't1' pattern 't1*' matches no series" in result.output
    config.write_text("allowed_ae_titles: []\nstate_dir: state\ndestination: pacs.yaml\nport: 0\n")
    result = CliRunner().invoke(app, ["serve-status", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "node file" in result.output and "allowed_ae_titles" in result.output
