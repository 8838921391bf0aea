"""torchrun-style DDP on CPU (gloo): two processes train together, only rank 0 writes."""

from __future__ import annotations

import os
import socket

import pytest
import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, root: str, out: str, results, **trainer) -> None:
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from test_train import _cfg  # this folder is on sys.path (pytest rootdir import; spawn copies it)

    from medimg.engine import train

    res = train(_cfg(root, **{"max_epochs": 2, **trainer}), output_dir=out, progress=False)
    results.put((rank, res.epochs_run, res.best_metric, res.stopped_because))  # plain values: no shared tensors


def _run_ranks(tmp_path, world: int = 2, **trainer) -> dict[int, tuple]:
    import torch.multiprocessing as mp

    from medimg.data import make_synthetic_segmentation

    root = make_synthetic_segmentation(tmp_path / "syn", 3, 1, 0, shape=(24, 24, 16), seed=3)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_worker, args=(r, world, port, str(root), str(tmp_path / "run"), q), kwargs=trainer)
        for r in range(world)
    ]
    for p in procs:
        p.start()
    got = {}
    for _ in procs:
        rank, *rest = q.get(timeout=300)
        got[rank] = tuple(rest)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return got


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path):
    got = _run_ranks(tmp_path)
    assert got[0][0] == got[1][0] == 2  # both ranks ran the same epochs
    assert got[0][1] is not None and got[1][1] is None  # only rank 0 validates
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "history.csv").is_file()
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["training"]["epoch"] == 2
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])  # DDP wrapper unwrapped


@pytest.mark.slow
def test_two_process_time_budget_stops_every_rank_at_one_step(tmp_path):
    """The budget runs out after the first of 3 steps: every rank stops there, together
    (a rank stepping on alone would hang in DDP), and the cut epoch is reported."""
    got = _run_ranks(tmp_path, max_epochs=1, iterations_per_epoch=3, max_minutes=1e-9)
    assert got[0][0] == got[1][0] == 1
    assert got[0][2] == "max_minutes" and got[1][2] in ("max_minutes", "rank 0")
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["training"]["epoch"] == 1
