"""torchrun / DDP support, kept out of the single-process path.

``torchrun --nproc_per_node N -m medimg.cli train cfg.yaml`` sets ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK``; :func:`setup` then joins the process group (NCCL on CUDA, Gloo on
CPU) and pins each process to its GPU. Without those variables (``WORLD_SIZE`` unset or 1)
nothing happens and training runs in one process. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["DistInfo", "setup", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``world_size`` 1 means single-process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group if ``WORLD_SIZE > 1``; return the info and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        here = True
    return DistInfo(rank, local, world, here), device


def cleanup(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` joined it."""
    if info.initialized_here:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
