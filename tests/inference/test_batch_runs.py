"""Batch runs at scale (issue 8): the log, atomic outputs, resuming, skipped files, prefetch,
shards and per-class post-processing."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medimg.core import ConfigError, Image, make_affine
from medimg.inference import predict_folder
from medimg.inference.caseloop import BatchReport, CaseEntry, run_cases
from medimg.inference.runlog import (
    ALREADY_DONE,
    LOG_COLUMNS,
    RunLog,
    done_cases,
    parse_shard,
    resolve_shard,
)
from medimg.io import read_image, write_image
from tests.conftest import tiny_unet_checkpoint


def _checkpoint(path):
    return tiny_unet_checkpoint(path, preprocess=[{"name": "orient", "axcodes": "RAS"}],
                                inference={"roi_size": [16, 16, 16], "overlap": 0.25, "sw_batch_size": 2})


def _folder(root, n=5):
    root.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        im = Image(torch.rand((1, 12 + i, 10, 8), generator=g), make_affine((1.0, 1.0, 2.0), (i, 0.0, 0.0)))
        write_image(im, root / f"c{i}.nii.gz")
    return root


def _log(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt")


def test_a_rerun_skips_finished_cases_and_redoes_the_rest(ckpt, tmp_path):
    src, out = _folder(tmp_path / "in", 3), tmp_path / "out"
    first = predict_folder(ckpt, src, out, device="cpu", progress=False)
    assert first.ok == ["c0", "c1", "c2"]
    # as after a kill during c2: its output never renamed into place, its row not written,
    # and the last row cut short
    (out / "c2.nii.gz").unlink()
    rows = (out / "predict_log.csv").read_text().splitlines()
    (out / "predict_log.csv").write_text("\n".join(rows[:-1]) + "\nc2,/x,o")
    stamp = os.stat(out / "c0.nii.gz").st_mtime_ns
    second = predict_folder(ckpt, src, out, device="cpu", progress=False)
    assert second.ok == ["c2"] and second.skipped == [("c0", ALREADY_DONE), ("c1", ALREADY_DONE)]
    assert os.stat(out / "c0.nii.gz").st_mtime_ns == stamp  # not rewritten
    log = _log(out / "predict_log.csv")
    assert [(r["case_id"], r["status"]) for r in log][-3:] == [("c0", "skipped"), ("c1", "skipped"), ("c2", "ok")]
    assert log[-2]["error"] == "already predicted; --overwrite to redo"
    # a case whose output is gone is redone even though the log says ok
    (out / "c1.nii.gz").unlink()
    assert predict_folder(ckpt, src, out, device="cpu", progress=False).ok == ["c1"]
    third = predict_folder(ckpt, src, out, device="cpu", progress=False, overwrite=True)
    assert third.ok == ["c0", "c1", "c2"] and third.skipped == []


def test_outputs_are_written_under_a_hidden_temporary_name_then_renamed(ckpt, tmp_path, monkeypatch):
    import medimg.io

    src, out = _folder(tmp_path / "in", 2), tmp_path / "out"
    real = medimg.io.write_image
    seen = []

    def killed_while_writing(image, path, *a, **k):  # writes part of the file, then dies
        seen.append(path)
        if "c1" in path.name:
            path.write_bytes(b"half a file")
            raise OSError("No space left on device")
        return real(image, path, *a, **k)

    monkeypatch.setattr(medimg.io, "write_image", killed_while_writing)
    report = predict_folder(ckpt, src, out, device="cpu", progress=False)
    assert report.ok == ["c0"] and report.failed == [("c1", "No space left on device")]
    # written inside a hidden temporary folder of the output folder (same file system), never at the final name
    assert [p.name for p in seen] == ["c0.nii.gz", "c1.nii.gz"]
    assert all(p.parent.parent == out and p.parent.name.startswith(".tmp-") for p in seen)
    assert (out / "c0.nii.gz").is_file() and not (out / "c1.nii.gz").exists()
    assert sorted(p.name for p in out.iterdir()) == ["c0.nii.gz", "labels.json", "predict_log.csv"]


def test_log_rows_are_on_disk_as_soon_as_written(tmp_path):
    log = RunLog(tmp_path, None, {"device": "cpu", "precision": "fp32", "checkpoint_sha256": "ab", "medimg_version": "1"})
    log.write("a", "ok", input="a.nii.gz", seconds=1.5)
    rows = _log(tmp_path / "predict_log.csv")  # read by another handle, before close
    assert list(rows[0]) == list(LOG_COLUMNS)
    assert rows == [{"case_id": "a", "input": "a.nii.gz", "status": "ok", "seconds": "1.500", "error": "",
                     "device": "cpu", "precision": "fp32", "checkpoint_sha256": "ab", "medimg_version": "1"}]
    log.write("b", "failed", error="bad\nfile")
    log.close()
    assert done_cases(tmp_path) == {"a"}
    with open(tmp_path / "predict_log.csv", "a") as fh:
        fh.write("c,x,ok")  # cut short by a kill: ignored
    assert done_cases(tmp_path) == {"a"}
    with RunLog(tmp_path) as again:  # appends on a fresh line
        again.write("d", "ok")
    assert [r["case_id"] for r in _log(tmp_path / "predict_log.csv")][-1] == "d"
    assert done_cases(tmp_path) == {"a", "d"}


def test_every_file_under_input_is_accounted_for(ckpt, tmp_path):
    src = _folder(tmp_path / "in", 1)
    four_d = np.random.default_rng(0).random((8, 8, 8, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(four_d, np.eye(4)), str(src / "dwi.nii.gz"))
    write_image(Image(torch.zeros(1, 12, 10, 8, dtype=torch.uint8), kind="label"), src / "c0_seg.nii.gz")
    (src / "notes.txt").write_text("hello")
    (src / "empty").mkdir()
    (src / ".hidden.nii.gz").write_bytes(b"")  # hidden names are never listed
    report = predict_folder(ckpt, src, tmp_path / "out", device="cpu", progress=False)
    assert report.ok == ["c0"] and report.failed == []
    why = dict(report.skipped)
    assert sorted(why) == ["c0_seg.nii.gz", "dwi", "empty/", "notes.txt"]
    assert why["dwi"].startswith("a 4D file with 3 volumes, but the model takes one channel")
    assert why["c0_seg.nii.gz"] == "named like a label map or mask, not an image to predict"
    assert why["notes.txt"].startswith("not an image this model reads")
    assert why["empty/"] == "an empty folder"
    log = {r["case_id"]: r for r in _log(tmp_path / "out" / "predict_log.csv")}
    assert {k: v["status"] for k, v in log.items()} == {
        "c0": "ok", "c0_seg.nii.gz": "skipped", "dwi": "skipped", "empty/": "skipped", "notes.txt": "skipped"}
    assert log["dwi"]["input"] == str(src / "dwi.nii.gz")


def test_case_folders_with_an_image_and_a_mask(ckpt, tmp_path):
    """A case folder holding the image and its mask: the image is the case, the mask skipped."""
    root = tmp_path / "cases"
    for cid in ("p1", "p2"):
        _folder(root / cid, 1)
        write_image(Image(torch.zeros(1, 12, 10, 8, dtype=torch.uint8), kind="label"), root / cid / "brainmask.nii.gz")
    report = predict_folder(ckpt, root, tmp_path / "out", device="cpu", progress=False)
    assert report.ok == ["p1", "p2"]
    assert [c for c, _ in report.skipped] == ["p1/brainmask.nii.gz", "p2/brainmask.nii.gz"]


def test_the_next_case_is_prepared_while_the_current_one_computes(tmp_path):
    second_prepared = threading.Event()
    overlapped = []

    def prepare(e):
        if e.case_id == "b":
            second_prepared.set()
        return e.case_id

    def finish(e, prepared):
        assert prepared == e.case_id
        if e.case_id == "a":  # still computing a: b is being read meanwhile
            overlapped.append(second_prepared.wait(timeout=30))

    entries = [CaseEntry("a", "a"), CaseEntry("b", "b"), CaseEntry("c", "c", problem="no file")]
    with RunLog(tmp_path) as log:
        report = run_cases(entries, log, BatchReport(tmp_path), prepare, finish, progress=False)
    assert overlapped == [True]
    assert report.ok == ["a", "b"] and report.failed == [("c", "no file")]


def test_prefetch_failures_are_the_case_s_failure(tmp_path):
    def prepare(e):
        if e.case_id == "a":
            raise ValueError("cannot read a")
        return e.case_id

    entries = [CaseEntry("a", "a"), CaseEntry("b", "b")]
    with RunLog(tmp_path) as log:
        report = run_cases(entries, log, BatchReport(tmp_path), prepare, lambda e, p: None, progress=False)
    assert report.failed == [("a", "cannot read a")] and report.ok == ["b"]


def test_the_union_of_two_shards_is_the_unsharded_run(ckpt, tmp_path):
    src = _folder(tmp_path / "in", 5)
    (src / "readme.txt").write_text("not a case")
    whole, shared = tmp_path / "whole", tmp_path / "shared"
    full = predict_folder(ckpt, src, whole, device="cpu", progress=False)
    parts = [predict_folder(ckpt, src, shared, device="cpu", progress=False, shard=(i, 2)) for i in range(2)]
    assert sorted(parts[0].ok) == ["c0", "c2", "c4"] and sorted(parts[1].ok) == ["c1", "c3"]
    assert sorted(parts[0].ok + parts[1].ok) == sorted(full.ok)
    assert sorted(parts[0].skipped + parts[1].skipped) == sorted(full.skipped)
    logs = sorted(p.name for p in shared.glob("predict_log*.csv"))
    assert logs == ["predict_log.shard-0-of-2.csv", "predict_log.shard-1-of-2.csv"]
    outputs = sorted(p.name for p in whole.iterdir() if p.name.endswith(".nii.gz"))
    assert outputs == sorted(p.name for p in shared.iterdir() if p.name.endswith(".nii.gz"))
    for name in outputs:
        assert torch.equal(read_image(whole / name).data, read_image(shared / name).data)

    def key(r):
        return r["case_id"], r["input"], r["status"], r["error"], r["checkpoint_sha256"]

    union = sorted(key(r) for f in logs for r in _log(shared / f))
    assert union == sorted(key(r) for r in _log(whole / "predict_log.csv"))
    # shard logs count for resuming, whatever the next run's sharding
    assert predict_folder(ckpt, src, shared, device="cpu", progress=False).ok == []


def test_shard_values_and_torchrun_ranks(monkeypatch):
    assert parse_shard("1/4") == (1, 4) and resolve_shard("0/1") == (0, 1)
    for bad, msg in [("4/4", "shard index must be 0..N-1"), ("a/2", "expected i/N"), ("3", "expected i/N"),
                     ("0/0", "shard index must be 0..N-1")]:
        with pytest.raises(ConfigError, match=msg):
            parse_shard(bad)
    with pytest.raises(ConfigError, match=r"shard=\(2, 2\)"):
        resolve_shard((2, 2))
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_shard(None) is None
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert resolve_shard(None) == (1, 3) and resolve_shard((0, 2)) == (0, 2)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert resolve_shard(None) is None


def test_saved_probabilities_are_on_the_input_grid_and_match_the_labels(ckpt, tmp_path):
    src, out = _folder(tmp_path / "in", 2), tmp_path / "out"
    report = predict_folder(ckpt, src, out, device="cpu", progress=False, save_probabilities=True)
    assert report.ok == ["c0", "c1"]
    for cid in report.ok:
        saved = np.load(out / f"{cid}.probabilities.npz")
        image, label = read_image(src / f"{cid}.nii.gz"), read_image(out / f"{cid}.nii.gz")
        assert saved["probabilities"].shape == (2, *image.spatial_shape)
        assert np.allclose(saved["probabilities"].sum(0), 1.0, atol=1e-5)
        assert np.allclose(saved["affine"], image.affine) and list(saved["label_names"]) == ["background", "lesion"]
        assert np.array_equal(saved["probabilities"].argmax(0), label.numpy()[0])
    # a re-run asking for probabilities redoes a case whose probabilities are missing
    (out / "c1.probabilities.npz").unlink()
    again = predict_folder(ckpt, src, out, device="cpu", progress=False, save_probabilities=True)
    assert again.ok == ["c1"] and (out / "c1.probabilities.npz").is_file()


def test_an_output_folder_that_cannot_be_written_is_one_clear_error(ckpt, tmp_path):
    from medimg.core import DataError

    src = _folder(tmp_path / "in", 1)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=r"output folder '.*file/out' cannot be written") as exc:
        predict_folder(ckpt, src, tmp_path / "file" / "out", device="cpu", progress=False)
    assert exc.value.hint == "give an OUTPUT_DIR you can write to"
    out = tmp_path / "ok"
    predict_folder(ckpt, src, out, device="cpu", progress=False)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.slow
def test_kill_9_mid_run_loses_no_finished_case_and_leaves_no_partial_file(ckpt, tmp_path):
    """A real `kill -9` of `medimg predict` mid-run, then a re-run that finishes the job."""
    import signal
    import subprocess
    import sys
    import time

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(12):
        write_image(Image(torch.rand((1, 48, 48, 40), generator=g), make_affine((1.0, 1.0, 1.0))), src / f"k{i:02d}.nii.gz")
    cmd = [sys.executable, "-m", "medimg.cli", "predict", str(ckpt), str(src), str(out), "--device", "cpu"]
    repo = Path(__file__).resolve().parents[2]  # this checkout's medimg, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    log = out / "predict_log.csv"
    deadline = time.monotonic() + 120  # a safeguard against a hang, not a timing check
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and log.read_text().count(",ok,") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {r["case_id"] for r in _log(log) if r.get("medimg_version") is not None and r["status"] == "ok"}
    assert len(finished) >= 2
    visible = sorted(p.name for p in out.iterdir() if p.name.endswith(".nii.gz"))
    assert set(visible) >= {f"{c}.nii.gz" for c in finished}
    for name in visible:  # every visible output is complete
        assert read_image(out / name).spatial_shape == (48, 48, 40)
    report = predict_folder(ckpt, src, out, device="cpu", progress=False)
    assert report.all_ok and {c for c, _ in report.skipped} >= finished
    assert sorted(report.ok + [c for c, _ in report.skipped]) == [f"k{i:02d}" for i in range(12)]


def test_a_case_is_written_while_the_next_computes_and_a_failed_write_fails_that_case_only(tmp_path: Path):
    """``finish`` returns the write step: case k's write runs while case k + 1 computes (it
    waits for that computation to start, so a loop that wrote in line would time out), a
    write that raises fails its case alone, and the log keeps the cases' order."""
    computing = {k: threading.Event() for k in range(3)}
    overlapped = []

    def finish(e: CaseEntry, _: object):
        k = int(e.case_id[-1])
        computing[k].set()

        def write() -> None:
            if k < 2:
                overlapped.append(computing[k + 1].wait(timeout=20))
            if k == 1:
                raise OSError("disk full")

        return write

    entries = [CaseEntry(f"case{k}", f"in{k}", paths=[f"in{k}"]) for k in range(3)]
    with RunLog(tmp_path) as log:
        report = run_cases(entries, log, BatchReport(output_dir=tmp_path), lambda e: None, finish, progress=False)
    assert overlapped == [True, True]
    assert report.ok == ["case0", "case2"] and report.failed == [("case1", "disk full")]
    rows = list(csv.DictReader(open(tmp_path / "predict_log.csv")))
    assert [(r["case_id"], r["status"]) for r in rows] == [("case0", "ok"), ("case1", "failed"), ("case2", "ok")]
