"""Training a 2D classifier, medimg's Trainer vs a plain torchvision loop, side by side.

Data: PneumoniaMNIST's training images (28x28, in memory, float32 in [0, 1]) from
``../shared/data/cls/pneumoniamnist.npz`` (synthetic images of the same shape when the file
is absent). Model: the same torchvision ResNet-18 (3x3 stride-1 stem, max-pool kept, built
once and copied, so both start from the same weights), AdamW, cross-entropy, batch 128, the
same number of steps, the same threads. Each tool ends with a checkpoint a run could
resume from on disk (weights and optimizer state): medimg's ``last.pt``, the plain loop's
``torch.save`` of both state dicts.

Cases:
  * ``no augmentation``: medimg's ``Trainer`` over ``classification_loader`` batches vs a
    plain loop that slices the tensors by a random permutation: what the engine costs.
  * ``flip + affine``: random horizontal flip and a random affine warp (rotation 10 deg,
    scale 0.9-1.1, shift 10%) drawn per image. medimg applies them to whole batches
    (``medimg.transforms.batch``); the plain loop applies torchvision's ``v2`` transforms
    per image in a ``Dataset`` read by a ``DataLoader`` (num_workers 0, the same threads),
    the way torchvision's documentation writes it.

medimg's first run of each case (untimed, the warm-up) also chooses the layout of the
convolution weights by timing its first steps in both (``trainer.channels_last: auto``);
the timed rounds start in the chosen layout. That run's seconds and the choice with its
step times are in medimg's note.

Reported: seconds per run (samples per second = steps x 128 / seconds), and, for medimg,
the fraction of step time spent waiting for data (``data_wait`` in ``history.csv``).
Agreement: the mean training loss of both runs within 0.15 of each other.

Usage:
    python benchmarks/train_cls.py [--quick] [--json PATH] [--repeats N]
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, Tool, layout_note, parse_args, report, run_case  # noqa: E402

from medimg.core.spec import InferenceSpec  # noqa: E402
from medimg.data.classification import ClassificationSplit  # noqa: E402
from medimg.data.cls_loader import ClassificationDataset, classification_loader  # noqa: E402
from medimg.engine import Trainer  # noqa: E402
from medimg.models import MODELS  # noqa: E402
from medimg.transforms import RandomAffine, RandomFlip  # noqa: E402

NPZ = REPO.parent / "shared" / "data" / "cls" / "pneumoniamnist.npz"
BATCH = 128
MODEL = {"in_channels": 1, "out_channels": 2, "small_input": True, "max_pool": True}


def load_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if NPZ.exists():
        d = np.load(NPZ)
        x = torch.from_numpy(d["train_images"][:n]).float().div(255).unsqueeze(1)
        y = torch.from_numpy(d["train_labels"][:n]).long().view(-1)
    else:
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 2, (n,), generator=g)
    return x.contiguous(), y


def medimg_tool(x: torch.Tensor, y: torch.Tensor, init: torch.nn.Module, steps: int, augment: bool, waits: list[float],
                layouts: list[str]):
    split = ClassificationSplit("train", [f"c{i}" for i in range(len(x))], x, y)
    transforms = [RandomFlip(axes=[1], prob=0.5), RandomAffine(degrees=10, scale=(0.9, 1.1), translate=0.1, prob=1.0)]

    def run() -> float:
        model = copy.deepcopy(init)
        dataset = ClassificationDataset(split, _Compose(transforms) if augment else None, seed=0)
        batches = classification_loader(dataset, BATCH, samples=steps * BATCH)
        spec = InferenceSpec(task="classification", roi_size=[28, 28], label_names=["normal", "pneumonia"], in_channels=1)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(model, torch.nn.CrossEntropyLoss(), torch.optim.AdamW(model.parameters(), lr=2e-3),
                              batches, steps, [], spec, {"name": "resnet18", **MODEL}, Path(tmp), torch.device("cpu"),
                              max_epochs=1, metrics=["auc"], select_by="auc", progress=False, log=lambda s: None)
            result = trainer.fit()
            layouts.append(layout_note(trainer))
        row = result.history[-1]
        waits.append(float(row["data_wait"]))
        return float(row["train_loss"])

    return run


class _Compose:
    """The ``transforms`` attribute is all :class:`ClassificationDataset` reads of a Compose."""

    def __init__(self, transforms):
        self.transforms = transforms


class _PerImage(torch.utils.data.Dataset):
    def __init__(self, x, y, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.transform(self.x[i]), self.y[i]


def plain_tool(x: torch.Tensor, y: torch.Tensor, init: torch.nn.Module, steps: int, augment: bool):
    from torchvision.transforms import v2

    transform = v2.Compose([v2.RandomHorizontalFlip(0.5),
                            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1),
                                            interpolation=v2.InterpolationMode.BILINEAR)])

    def run() -> float:
        model = copy.deepcopy(init)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
        model.train()
        losses = []
        if augment:
            loader = torch.utils.data.DataLoader(_PerImage(x, y, transform), batch_size=BATCH, shuffle=True,
                                                 drop_last=True, num_workers=0)
            batches = (b for _, b in zip(range(steps), loader))
        else:
            perm = torch.randperm(len(x))
            batches = ((x[perm[i * BATCH:(i + 1) * BATCH]], y[perm[i * BATCH:(i + 1) * BATCH]]) for i in range(steps))
        for xb, yb in batches:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(tmp) / "last.pt")
        return float(np.mean(losses))

    return run


def main(argv=None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    steps = 4 if args.quick else 16
    x, y = load_images(steps * BATCH)
    torch.manual_seed(0)
    init = MODELS.build({"name": "resnet18", **MODEL})
    results: list[Result] = []
    wait_fraction: dict[str, float] = {}
    layouts: dict[str, list[str]] = {}
    first_seconds: dict[str, float] = {}
    for case, augment in (("no augmentation", False), ("flip + affine", True)):
        waits: list[float] = []
        kept: list[str] = []
        med = medimg_tool(x, y, init, steps, augment, waits, kept)
        t_first = time.perf_counter()
        ref_loss = med()  # also times the two weight layouts; the timed rounds reuse the choice
        first_seconds[case] = time.perf_counter() - t_first

        def agrees(loss: float, ref=ref_loss) -> bool:
            return abs(loss - ref) < 0.15

        tools = [Tool("medimg", med, None, peer=False),
                 Tool("plain torchvision loop", plain_tool(x, y, init, steps, augment), agrees)]
        case_name = f"{case}: {steps} steps x {BATCH} images, 28 px"
        results += run_case(case_name, tools, args.repeats, memory=False)
        wait_fraction[case_name] = round(statistics.median(waits), 4)
        layouts[case_name] = kept
        first_seconds[case_name] = round(first_seconds.pop(case), 3)
    for r in results:
        r.note = f"{steps * BATCH / r.seconds:.0f} samples/s"
        if r.tool == "medimg":
            r.note += (f", data wait {wait_fraction[r.case]:.1%}; {layouts[r.case][0]}; "
                       f"first run, layouts timed: {first_seconds[r.case]:.2f} s")
    return report(
        "train_cls",
        "Train a 2D ResNet-18 classifier on in-memory 28 px images: medimg Trainer vs a plain torchvision loop",
        results,
        args.json,
        packages=["torch", "torchvision"],
        extra={"data_wait_fraction": wait_fraction, "medimg_layouts": layouts, "medimg_first_run_seconds": first_seconds, "threads": torch.get_num_threads(), "steps": steps, "batch": BATCH},
    )


if __name__ == "__main__":
    main()
