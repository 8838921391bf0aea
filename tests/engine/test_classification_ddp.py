"""Classification under torchrun-style DDP on CPU (gloo): two ranks train together, rank 0
validates, writes best.pt with the threshold and scores the test split."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _worker(rank: int, world: int, port: int, npz: str, out: str, results) -> None:
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from test_classification import config  # this folder is on sys.path (pytest rootdir import)

    from medimg.engine import train

    res = train(config(Path(npz), max_epochs=2), output_dir=out, progress=False)
    results.put((rank, res.epochs_run, res.best_metric))


@pytest.mark.slow
def test_two_process_gloo_classification(tmp_path: Path):
    import torch.multiprocessing as mp
    from test_classification import make_npz
    from test_distributed import _free_port

    npz = make_npz(tmp_path / "toy.npz", n=(32, 16, 16))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(npz), str(tmp_path / "run"), q)) for r in range(2)]
    for p in procs:
        p.start()
    got = {r: rest for r, *rest in (q.get(timeout=300) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got[0][0] == got[1][0] == 2
    assert got[0][1] is not None and got[1][1] is None  # only rank 0 validates
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["inference"]["threshold"] is not None
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    assert (tmp_path / "run" / "test" / "summary.json").is_file()
