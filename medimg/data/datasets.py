"""Datasets: preprocessed (cached) cases, and seeded random patches for training.

Typical training loop (the engine does this)::

    cases = CaseDataset(records, cfg.data, preprocess, cfg.data.cache,
                        cache_dir=cfg.data.cache_dir, preprocess_spec=cfg.preprocess)
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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.errors import DataError
from ..core.sample import Sample
from ..core.spec import DataSection
from ..transforms.base import Compose, Transform
from .cache import (
    cache_file,
    cache_key,
    check_space,
    default_cache_dir,
    read_cached,
    sample_nbytes,
    write_cached,
)
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
        cache: where preprocessed samples are kept between epochs (``data.cache``):
            ``"memory"`` (or True), ``"disk"`` (one file per case in ``cache_dir``, reused
            across runs while the case's files and ``preprocess_spec`` are unchanged;
            :mod:`medimg.data.cache`) or ``"none"`` (or False).
        cache_dir: the folder of the disk cache (default:
            :func:`~medimg.data.cache.default_cache_dir`).
        preprocess_spec: the specs ``preprocess`` was built from (a config's
            ``preprocess`` list), part of each case's disk-cache key; needed with
            ``cache="disk"`` when ``preprocess`` is given.

    ``dataset[i]`` is a :class:`~medimg.core.Sample` (images on the preprocessed grid,
    ``history`` to invert, ``meta`` with the source grid).

    Raises:
        ValueError: an unknown ``cache``, or ``cache="disk"`` with ``preprocess`` but no
            ``preprocess_spec``.
    """

    def __init__(
        self,
        records: Sequence[CaseRecord],
        data_cfg: DataSection,
        preprocess: Compose | Transform | None = None,
        cache: bool | str = True,
        *,
        cache_dir: str | os.PathLike | None = None,
        preprocess_spec: Sequence[Any] | None = None,
    ) -> None:
        self.records = list(records)
        self.data_cfg = data_cfg
        self.preprocess = preprocess
        self.cache = {True: "memory", False: "none"}.get(cache, cache) if isinstance(cache, bool) else str(cache)
        if self.cache not in ("memory", "disk", "none"):
            raise ValueError(f"CaseDataset: cache must be 'memory', 'disk' or 'none', got {cache!r}")
        if self.cache == "disk" and preprocess is not None and preprocess_spec is None:
            raise ValueError("CaseDataset: cache='disk' needs preprocess_spec (the specs preprocess was built from)")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.preprocess_spec = list(preprocess_spec or [])
        self._cache: dict[int, Sample] = {}
        self._keys: dict[int, str] = {}

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
        if self.cache == "disk":
            path, key = self.cache_file(index)
            sample = read_cached(path, key)
            if sample is None:  # not cached yet, or damaged: rebuilt from the source
                sample = self._preprocessed(index)
                write_cached(path, sample, key)
            return sample
        sample = self._preprocessed(index)
        if self.cache == "memory":
            self._cache[index] = sample
        return sample

    def _preprocessed(self, index: int) -> Sample:
        sample = load_sample(self.records[index], self.data_cfg)
        return self.preprocess(sample, None) if self.preprocess is not None else sample

    def cache_file(self, index: int) -> tuple[Path, str]:
        """Case ``index``'s disk-cache file and key (:func:`~medimg.data.cache.cache_key`)."""
        key = self._keys.get(index)
        if key is None:
            d = self.data_cfg
            key = self._keys[index] = cache_key(self.records[index], self.preprocess_spec, d.label_names, d.label_map)
        return cache_file(self.cache_dir, self.records[index].case_id, key), key

    def warm_cache(self) -> None:
        """Fill the cache now: every case in RAM (``memory``; call before DataLoader workers
        fork, so they share the pages) or every case not on disk yet written (``disk``).
        Nothing with ``none``.

        Raises:
            InsufficientMemoryError: the first case's size times the number of cases to
                fill does not fit the RAM available or the disk's free space
                (:func:`~medimg.data.cache.check_space`), checked before the rest is read.
        """
        if self.cache == "none":
            return
        if self.cache == "memory":
            todo = [i for i in range(len(self)) if i not in self._cache]
        else:
            todo = [i for i in range(len(self)) if not self.cache_file(i)[0].is_file()]
        for n, i in enumerate(todo):
            sample = self[i]
            if n == 0:
                check_space(self.cache, sample_nbytes(sample), len(todo), self.cache_dir)


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
