"""Training a 3D UNet, medimg's Trainer vs a plain MONAI training loop, side by side.

Data: in-memory patches, two channels of noise over an ellipsoid (the label, 2 classes),
``steps x batch`` of them (64^3 voxels; 32^3 with ``--quick``), float32 images and uint8
labels, generated once with a fixed seed; each tool trains on every patch exactly once.
Model: the same MONAI ``UNet`` (channels 16-32-64-128, strides 2-2-2, 2 residual units,
instance norm), built once and copied so both start from the same weights; Adam (lr
1e-3); MONAI's ``DiceCELoss`` (softmax, one-hot label, foreground Dice, batch Dice: the
settings of medimg's ``dice_ce``); batch 2; the same number of steps; the same threads and
device; one process, the order of the tools shuffled each round (``_common.run_case``).

* ``medimg``: the path ``medimg train`` takes with ``data.cache: memory``: the patches as
  in-memory samples, ``PatchDataset`` (seeded draws) -> ``DataLoader`` (``collate``,
  num_workers 0) -> ``Trainer.fit`` for one epoch, which also writes ``best.pt`` and
  ``last.pt`` (weights and optimizer state) in its background writer.
* ``plain MONAI loop``: what a competent MONAI user writes: a ``TensorDataset`` over the
  same patches in a ``DataLoader`` (shuffle, num_workers 0; pinned memory on CUDA), the
  forward / ``DiceCELoss`` / backward / ``Adam.step`` loop, and the weights and optimizer
  state saved at the end (a checkpoint a run could resume from, as medimg's ``last.pt``).
* ``MONAI loop, channels-last``: the same loop with the model moved to the channels-last
  layout (``model.to(memory_format=torch.channels_last_3d)``), the switch a user who knows
  it adds; medimg's ``trainer.channels_last: auto`` times both layouts on its first steps
  (``medimg.engine.layout``), so this peer is the plain loop at its best layout.

medimg's first run in the process (untimed, the warm-up) also chooses the layout of the
convolution weights by timing its first steps in both (``trainer.channels_last: auto``);
later runs of the same network on the same batches in the process start in the chosen
layout, as the timed rounds do. That first run's seconds and the choice with its step
times are reported in medimg's note.

Reported: seconds per run, iterations per second (steps / seconds) for both, and the
fraction of the loop's time spent waiting for the next batch (medimg: ``data_wait`` in
``history.csv``; the plain loop: time blocked in the loader's ``next``, measured the same
way). Agreement: the mean training losses of the two runs within 0.15 of each other.

Usage:
    python benchmarks/train.py [--quick] [--json PATH] [--repeats N] [--steps N]

``--steps`` sets the epoch's length (default 16): medimg's fixed costs per run (its
history, curve and checkpoint writer) weigh less over a longer epoch, as in real training
(nnU-Net's epochs are 250 steps).
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
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, Tool, layout_note, parse_args, report, run_case  # noqa: E402

from medimg.core.image import Image  # noqa: E402
from medimg.core.sample import Sample  # noqa: E402
from medimg.core.spec import InferenceSpec  # noqa: E402
from medimg.data import PatchDataset, collate  # noqa: E402
from medimg.engine import Trainer  # noqa: E402
from medimg.losses import LOSSES  # noqa: E402
from medimg.models import MODELS  # noqa: E402

BATCH = 2
LR = 1e-3
CHANNELS = 2
FULL = {"roi": 64, "steps": 16, "model": {"channels": [16, 32, 64, 128], "strides": [2, 2, 2]}}
QUICK = {"roi": 32, "steps": 3, "model": {"channels": [8, 16, 32], "strides": [2, 2]}}


def make_patches(n: int, roi: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` patches: images ``(n, 2, roi, roi, roi)`` float32, labels ``(n, 1, ...)`` uint8."""
    g = torch.Generator().manual_seed(seed)
    axis = torch.linspace(-1, 1, roi)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    images, labels = [], []
    for _ in range(n):
        c = (torch.rand(3, generator=g) - 0.5) * 0.8
        r = 0.2 + 0.3 * torch.rand(3, generator=g)
        inside = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
        noise = torch.randn(CHANNELS, roi, roi, roi, generator=g)
        images.append(noise + inside.float() * torch.tensor([1.0, -0.7]).view(CHANNELS, 1, 1, 1))
        labels.append(inside[None].to(torch.uint8))
    return torch.stack(images).contiguous(), torch.stack(labels).contiguous()


def medimg_tool(x, y, init, model_params, steps, device, waits, layouts):
    eye = np.eye(4)
    samples = [Sample({"image": Image(x[i], eye, "intensity"), "label": Image(y[i], eye, "label")}, case_id=f"p{i}")
               for i in range(len(x))]
    roi = list(x.shape[2:])
    spec = InferenceSpec(roi_size=roi, label_names=["background", "ellipsoid"], in_channels=CHANNELS)

    def run() -> float:
        model = copy.deepcopy(init).to(device)
        patches = PatchDataset(samples, None, samples_per_epoch=steps * BATCH, seed=0)
        loader = DataLoader(patches, batch_size=BATCH, shuffle=False, num_workers=0, collate_fn=collate,
                            pin_memory=device.type == "cuda")

        def batches(epoch: int):
            patches.set_epoch(epoch)
            return iter(loader)

        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(model, LOSSES.build({"name": "dice_ce"}), torch.optim.Adam(model.parameters(), lr=LR),
                              batches, steps, [], spec, {"name": "unet", **model_params}, Path(tmp), device,
                              max_epochs=1, progress=False, log=lambda s: None)
            result = trainer.fit()
            layouts.append(layout_note(trainer))
        row = result.history[-1]
        waits.append(float(row["data_wait"]))
        return float(row["train_loss"])

    return run


def monai_tool(x, y, init, steps, device, waits, channels_last: bool = False):
    from monai.losses import DiceCELoss

    def run() -> float:
        model = copy.deepcopy(init).to(device)
        if channels_last:  # the one-line switch a user who knows it writes
            model = model.to(memory_format=torch.channels_last_3d)
        loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True, num_workers=0,
                            pin_memory=device.type == "cuda")
        model.train()
        losses, waited = [], 0.0
        batches = iter(loader)
        t_loop = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            xb, yb = next(batches)
            waited += time.perf_counter() - t0
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        waits.append(waited / max(time.perf_counter() - t_loop, 1e-9))
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(tmp) / "last.pt")
        return float(np.mean(losses))

    return run


def main(argv=None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv, extra=lambda ap: ap.add_argument(
        "--steps", type=int, default=None, help="training steps in the epoch (default 16, 3 with --quick)"))
    size = QUICK if args.quick else FULL
    steps, roi = args.steps or size["steps"], size["roi"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y = make_patches(steps * BATCH, roi)
    model_params = {"in_channels": CHANNELS, "out_channels": 2, "num_res_units": 2, **size["model"]}
    torch.manual_seed(0)
    init = MODELS.build({"name": "unet", **model_params})
    waits: dict[str, list[float]] = {"medimg": [], "plain MONAI loop": [], "MONAI loop, channels-last": []}
    layouts: list[str] = []
    med = medimg_tool(x, y, init, model_params, steps, device, waits["medimg"], layouts)
    t_first = time.perf_counter()
    ref_loss = med()  # also times the two weight layouts; the timed rounds reuse the choice (medimg.engine.layout)
    first_seconds = time.perf_counter() - t_first

    def agrees(loss: float) -> bool:
        return abs(loss - ref_loss) < 0.15

    tools = [Tool("medimg", med, None, peer=False),
             Tool("plain MONAI loop", monai_tool(x, y, init, steps, device, waits["plain MONAI loop"]), agrees),
             Tool("MONAI loop, channels-last", monai_tool(x, y, init, steps, device, waits["MONAI loop, channels-last"],
                                                          channels_last=True), agrees)]
    case = f"3D UNet, {steps} steps x batch {BATCH}, {roi}^3 patches"
    results: list[Result] = run_case(case, tools, args.repeats, memory=False)
    wait_fraction = {tool: round(statistics.median(w), 4) for tool, w in waits.items()}
    for r in results:
        r.note = f"{steps / r.seconds:.2f} it/s, data wait {wait_fraction[r.tool]:.1%}"
        if r.tool == "medimg":
            r.note += f"; {layouts[0]}; first run, layouts timed: {first_seconds:.2f} s"
    return report(
        "train",
        "Train a 3D UNet on in-memory patches: medimg Trainer vs a plain MONAI loop",
        results,
        args.json,
        packages=["torch", "monai"],
        extra={"data_wait_fraction": wait_fraction, "iterations_per_second": {r.tool: round(steps / r.seconds, 4) for r in results},
               "threads": torch.get_num_threads(), "medimg_layouts": layouts, "medimg_first_run_seconds": round(first_seconds, 3), "steps": steps, "batch": BATCH, "roi": roi, "device": str(device)},
    )


if __name__ == "__main__":
    main()
