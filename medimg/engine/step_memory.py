"""The activation-memory estimate of one training step of a U-Net, in GB.

``bytes = B * P * c0 * K * sum_l (2^l / 8^l) * b`` (3D; ``4^l`` in 2D), with B the batch, P
the patch voxels, c0 the base channels, K = :data:`ACTIVATION_MAPS` feature maps per voxel
and channel at a level, b = 4 bytes (2 with AMP). K is calibrated on CPU: one step of the
16-32-64-128 U-Net (2 residual units, 2 input channels, batch 2) raised the peak resident
memory by 0.37, 0.49 and 0.97 GB at 48^3, 64^3 and 96^3 patches, against 0.21, 0.50 and
1.68 GB by the formula; it errs large where it matters (big patches).

The planner sizes patches by it (:mod:`medimg.engine.plan_rules`), and a training step
that runs out of memory reports it (:mod:`medimg.engine.failures`). It imports nothing of
the engine, so both can use it.
"""

from __future__ import annotations

import math

__all__ = ["ACTIVATION_MAPS", "memory_gb"]

#: Feature maps kept per voxel and channel at a level (the formula's K).
ACTIVATION_MAPS = 12


def memory_gb(batch: int, patch: list[int], base: int, depth: int, amp: bool = False) -> float:
    """The activation estimate of the module docstring, in GB."""
    levels = sum(2**lv / 8**lv if len(patch) == 3 else 2**lv / 4**lv for lv in range(depth + 1))
    return batch * math.prod(patch) * base * ACTIVATION_MAPS * levels * (2 if amp else 4) / 2**30
