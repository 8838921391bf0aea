"""Datasets: preprocessed (cached) cases, and seeded random patches for training.

Typical training loop (the engine does this)::

    cases = CaseDataset(records, cfg.data, preprocess)
    cases.warm_cache()                       # before DataLoader workers fork: shared pages
    patches = PatchDataset(cases, augment, samples_per_epoch=250, seed=cfg.experiment.seed)
    loader = DataLoader(patches, batch_size=2, num_workers=2, collate_fn=collate,
                        persistent_workers=False)
    for epoch in range(max_epochs):
        patches.set_epoch(epoch)             # before creating the epoch's iterator
        for batch in loader: ...

Reproducibility: patch ``index`` of epoch ``e`` is drawn with a generator seeded from
``(seed, e, index)`` alone, so a run gives the same batches whatever ``num_workers`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.errors import DataError
from ..core.sample import Sample
from ..core.spec import DataSection
from ..transforms.base import Compose, Transform
from .loading import load_sample
from .records import CaseRecord

__all__ = ["CaseDataset", "PatchDataset", "collate", "seeded_generator"]


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by mixing integer ``keys`` (numpy SeedSequence)."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


class CaseDataset(Dataset):
    """Whole cases, loaded and deterministically preprocessed (history recorded).

    Args:
        records: the cases (one split).
        data_cfg: the data section (label names and map).
        preprocess: deterministic transforms (a :class:`Compose`, or None for none).
        cache: keep preprocessed samples in memory so epochs do not redo the work.

    ``dataset[i]`` is a :class:`~medimg.core.Sample` (images on the preprocessed grid,
    ``history`` to invert, ``meta`` with the source grid).
    """

    def __init__(
        self,
        records: Sequence[CaseRecord],
        data_cfg: DataSection,
        preprocess: Compose | Transform | None = None,
        cache: bool = True,
    ) -> None:
        self.records = list(records)
        self.data_cfg = data_cfg
        self.preprocess = preprocess
        self.cache = bool(cache)
        self._cache: dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def case_ids(self) -> list[str]:
        return [r.case_id for r in self.records]

    def __getitem__(self, index: int) -> Sample:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"case index {index} out of range for {len(self)} cases")
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        sample = load_sample(self.records[index], self.data_cfg)
        if self.preprocess is not None:
            sample = self.preprocess(sample, None)
        if self.cache:
            self._cache[index] = sample
        return sample

    def warm_cache(self) -> None:
        """Load and preprocess every case now (call before DataLoader workers fork)."""
        for i in range(len(self)):
            self[i]


class PatchDataset(Dataset):
    """Random training patches: a case, then its augmentation, seeded by (seed, epoch, index).

    Map-style, ``len == samples_per_epoch``. Within an epoch each case is visited
    equally often (a seeded permutation per pass over the cases).

    Args:
        case_dataset: preprocessed cases.
        augment: random transforms, typically ending in ``random_crop`` so all patches
            share ``roi_size``.
        samples_per_epoch: patches per epoch.
        seed: base seed.

    Items: ``{"image": float32 (C, *roi), "label": int64 (1, *roi), "case_id": str}``
    (no ``"label"`` for unlabelled cases).
    """

    def __init__(
        self,
        case_dataset: CaseDataset,
        augment: Compose | Transform | None,
        samples_per_epoch: int,
        seed: int = 0,
    ) -> None:
        if len(case_dataset) == 0:
            raise DataError("PatchDataset: no cases to draw patches from", hint="check the training split")
        if samples_per_epoch < 1:
            raise DataError(f"PatchDataset: samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.cases = case_dataset
        self.augment = augment
        self.samples_per_epoch = int(samples_per_epoch)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose patches to draw (call before iterating a DataLoader)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def case_index(self, index: int) -> int:
        """Which case patch ``index`` of the current epoch comes from."""
        n = len(self.cases)
        perm = torch.randperm(n, generator=seeded_generator(self.seed, self.epoch, index // n, 1))
        return int(perm[index % n])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(f"patch index {index} out of range for {self.samples_per_epoch} per epoch")
        sample = self.cases[self.case_index(index)]
        if self.augment is not None:
            sample = self.augment(sample, seeded_generator(self.seed, self.epoch, index, 2))
        return sample_to_dict(sample)


def sample_to_dict(sample: Sample) -> dict[str, Any]:
    """``{"image": float32, "label": int64, "case_id": str}`` from a sample."""
    img = sample["image"].data
    out: dict[str, Any] = {
        "image": img if img.dtype == torch.float32 else img.to(torch.float32),
        "case_id": sample.case_id,
    }
    if "label" in sample.images:
        out["label"] = sample["label"].data.to(torch.int64)
    return out


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack patch dicts: ``image`` ``(B, C, *roi)``, ``label`` ``(B, 1, *roi)``, ``case_id`` list.

    Raises:
        DataError: patches of different shapes (names the cases and shapes).
    """
    if not batch:
        raise DataError("collate: empty batch")
    out: dict[str, Any] = {"case_id": [b["case_id"] for b in batch]}
    for key in ("image", "label"):
        if key not in batch[0]:
            continue
        shapes = [tuple(b[key].shape) for b in batch]
        if len(set(shapes)) > 1:
            raise DataError(
                f"collate: cannot batch '{key}' of different shapes: "
                + ", ".join(f"{b['case_id']} {s}" for b, s in zip(batch, shapes)),
                hint="end the augmentation with random_crop (roi_size) so patches share a shape, or use batch_size 1",
            )
        out[key] = torch.stack([b[key] for b in batch])
    return out
