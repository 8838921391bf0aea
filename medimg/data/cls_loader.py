"""Classification batches: whole images with their targets, augmented per item, optionally
drawn class-balanced; and the checks a validation split must pass before training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..core.errors import DataError
from ..core.image import Image
from ..core.sample import Sample
from ..transforms.batch import BatchAugment, batch_supported
from .classification import ClassificationSplit
from .datasets import seeded_generator

__all__ = ["ClassificationDataset", "check_two_classes", "class_balanced_weights", "classification_loader"]


class ClassificationDataset(Dataset):
    """Items ``{"image": (C, *spatial) float32, "label": int64 () or float (K,), "case_id"}``.

    When every augmentation step has a batched form (``random_flip``, ``random_affine``,
    ``random_intensity``; see :mod:`medimg.transforms.batch`) or there is none, whole
    batches are cut from the in-memory images and augmented at once (:meth:`batch`),
    with a generator seeded by (seed, epoch, batch number); otherwise each item is
    augmented on its own with a generator seeded by (seed, epoch, index).

    Args:
        split: preprocessed images and targets.
        augment: random transforms (a :class:`~medimg.transforms.Compose`), or None.
        seed: base seed.
    """

    def __init__(self, split: ClassificationSplit, augment: Any = None, seed: int = 0) -> None:
        self.split = split
        steps = list(getattr(augment, "transforms", [])) if augment is not None else []
        self.batch_augment = BatchAugment(steps) if steps and batch_supported(steps) else None
        self.augment = augment if steps and self.batch_augment is None else None
        self.seed = int(seed)
        self.epoch = 0

    @property
    def batched(self) -> bool:
        """Whether :meth:`batch` serves whole batches (no per-item augmentation)."""
        return self.augment is None

    def batch(self, indices: Sequence[int], number: int) -> dict[str, Any]:
        """The items ``indices`` as one batch, augmented together (batch ``number`` of the epoch)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        x = self.split.images.index_select(0, idx)
        if self.batch_augment is not None:
            x = self.batch_augment(x, seeded_generator(self.seed, self.epoch, number, 3))
        return {"image": x, "label": self.split.targets.index_select(0, idx),
                "case_id": [self.split.case_ids[i] for i in idx.tolist()]}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        x = self.split.images[index]
        cid = self.split.case_ids[index]
        if self.augment is not None:
            sample = Sample(images={"image": Image(x)}, case_id=cid)
            x = self.augment(sample, seeded_generator(self.seed, self.epoch, index, 2))["image"].data.float()
        return {"image": x, "label": self.split.targets[index], "case_id": cid}


def class_balanced_weights(targets: torch.Tensor) -> torch.Tensor:
    """Per-case sampling weights ``1 / count(class)`` (multi-label: of the label combination),
    so that each class is drawn equally often."""
    keys = [tuple(t.tolist()) if t.ndim else int(t) for t in targets]
    counts: dict[Any, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return torch.tensor([1.0 / counts[k] for k in keys], dtype=torch.float64)


def classification_loader(
    dataset: ClassificationDataset,
    batch_size: int,
    *,
    balanced: bool = False,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    samples: int | None = None,
) -> Any:
    """Epoch -> DataLoader over ``dataset``: shuffled (or class-balanced with replacement),
    reseeded each epoch; under DDP each rank draws its own ``len / world_size`` cases
    (``samples`` per epoch and rank when given)."""
    n = len(dataset)
    per_rank = samples or max(1, n // max(world_size, 1))
    weights = class_balanced_weights(dataset.split.targets) if balanced else None

    def make(epoch: int):
        dataset.set_epoch(epoch)
        gen = seeded_generator(dataset.seed, epoch, rank, 7)
        if weights is not None:
            order = torch.multinomial(weights, per_rank, replacement=True, generator=gen)
        else:
            passes = -(-per_rank * max(world_size, 1) // n)  # whole shuffled passes, enough for every rank
            perm = torch.cat([torch.randperm(n, generator=seeded_generator(dataset.seed, epoch, p, 7)) for p in range(passes)])
            order = perm[rank::max(world_size, 1)][:per_rank]
        if dataset.batched:
            return _batches(dataset, order.tolist(), batch_size, rank)
        return iter(
            torch.utils.data.DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=order.tolist(),
                num_workers=num_workers,
                drop_last=len(order) > batch_size,  # a batch of one breaks batch norm
                pin_memory=pin_memory,
            )
        )

    return make


def _batches(dataset: ClassificationDataset, order: list[int], batch_size: int, rank: int) -> Any:
    """Whole batches in ``order`` (the last, short one dropped when there are several, as
    the DataLoader path does: a batch of one breaks batch norm)."""
    stop = len(order) - len(order) % batch_size if len(order) > batch_size else len(order)
    for number, start in enumerate(range(0, stop, batch_size)):
        yield dataset.batch(order[start : start + batch_size], (rank << 20) + number)


def check_two_classes(split: ClassificationSplit, class_names: Sequence[str], source_name: str, source: str) -> None:
    """Every class has a positive and a negative case in ``split`` (else the AUC is undefined).

    Raises:
        DataError: naming the split, the class and the source.
    """
    y = split.targets
    if len(y) == 0:
        raise DataError(f"{source}: the {split.name} split ('{source_name}') has no cases")
    if y.ndim == 1:
        present = sorted({int(v) for v in y})
        if len(present) < 2:
            only = class_names[present[0]] if present and present[0] < len(class_names) else present
            raise DataError(
                f"{source}: the {split.name} split ('{source_name}') holds only class '{only}' "
                f"({len(y)} cases): AUC is undefined on it",
                hint="put cases of every class into that split, or select by another metric "
                "(evaluation.select_by: loss) and leave auc out of evaluation.metrics",
            )
        return
    for j, name in enumerate(class_names):
        col = y[:, j]
        if bool((col > 0.5).all()) or bool((col <= 0.5).all()):
            raise DataError(
                f"{source}: in the {split.name} split ('{source_name}') label '{name}' is "
                f"{'always' if bool((col > 0.5).all()) else 'never'} present: AUC is undefined on it",
                hint="put positive and negative cases of every label into that split",
            )
