"""Budget and failure: gradient accumulation, bf16 autocast on CPU, a NaN loss, running out
of memory, CUDA asked
for where there is none, and a time budget met within an epoch then resumed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from test_classification import make_npz  # this folder is on sys.path (pytest rootdir import)
from torch import nn

from medimg.core.errors import ConfigError, InsufficientMemoryError, TrainingError
from medimg.core.spec import ExperimentConfig, InferenceSpec
from medimg.engine import Trainer, train


class Probe(nn.Module):
    """A BN-free linear classifier that records the dtype its output had."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 2)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        self.dtypes.append(out.dtype)
        return out


def _data(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g), torch.arange(n) % 2, [f"case{i}" for i in range(n)]


def _trainer(model: nn.Module, batches: list[dict], tmp: Path, **kwargs) -> Trainer:
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.0)
    spec = InferenceSpec(task="classification", roi_size=[4, 4], label_names=["a", "b"], in_channels=1)
    return Trainer(
        model, nn.CrossEntropyLoss(), opt, lambda epoch: iter(batches), len(batches), [], spec,
        {"name": "probe", "in_channels": 1, "out_channels": 2}, tmp, torch.device("cpu"),
        max_epochs=1, select_by="loss", metrics=["loss"], progress=False, **kwargs,
    )


def _split(x, y, ids, size):
    return [{"image": x[i:i + size], "label": y[i:i + size], "case_id": ids[i:i + size]} for i in range(0, len(x), size)]


def test_accumulating_two_batches_equals_one_batch_twice_as_large(tmp_path: Path):
    x, y, ids = _data(8)
    start = Probe()
    runs = {}
    for name, size, n in (("two_of_4_accumulated", 4, 2), ("one_of_8", 8, 1), ("two_of_4_stepped", 4, 1)):
        model = copy.deepcopy(start)
        t = _trainer(model, _split(x, y, ids, size), tmp_path / name, accumulate=n)
        steps = []
        step = t.optimizer.step
        t.optimizer.step = lambda *a, _s=step, **k: (steps.append(1), _s(*a, **k))[1]
        t.fit()
        runs[name] = (model.fc.weight.detach().clone(), len(steps))
    acc, big, stepped = runs["two_of_4_accumulated"], runs["one_of_8"], runs["two_of_4_stepped"]
    assert acc[1] == big[1] == 1 and stepped[1] == 2  # the optimizer steps every N batches
    assert not torch.equal(acc[0], start.fc.weight)
    torch.testing.assert_close(acc[0], big[0], rtol=0, atol=1e-6)  # loss scaled by 1/N: same gradient
    assert (acc[0] - stepped[0]).abs().max() > 1e-3  # two separate steps do differ


def test_a_partial_accumulation_group_is_stepped_at_the_epoch_end(tmp_path: Path):
    x, y, ids = _data(12)
    model = Probe()
    before = model.fc.weight.detach().clone()
    t = _trainer(model, _split(x, y, ids, 4), tmp_path, accumulate=2)  # 3 batches: 2 + 1
    steps = []
    step = t.optimizer.step
    t.optimizer.step = lambda *a, **k: (steps.append(1), step(*a, **k))[1]
    t.fit()
    assert len(steps) == 2 and not torch.equal(model.fc.weight, before)


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), (True, torch.float32), (False, torch.float32)])
def test_bf16_autocast_on_cpu(tmp_path: Path, amp, dtype):
    x, y, ids = _data(8)
    model = Probe()
    t = _trainer(model, _split(x, y, ids, 4), tmp_path, amp=amp)
    result = t.fit()
    assert set(model.dtypes[:2]) == {dtype}  # the training steps (amp: true is CUDA-only)
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))
    assert model.fc.weight.dtype == torch.float32  # weights stay full precision


def test_a_nan_loss_names_epoch_step_and_cases(tmp_path: Path):
    x, y, ids = _data(8)
    x[5, 0, 0, 0] = float("inf")  # case5, in the second batch of 4
    t = _trainer(Probe(), _split(x, y, ids, 4), tmp_path)
    with pytest.raises(TrainingError) as err:
        t.fit()
    msg = err.value.message
    assert "nan" in msg and "epoch 1, step 2" in msg and "case4, case5, case6, case7" in msg
    assert len(msg.splitlines()) == 1 and "optimizer.lr" in err.value.hint and "trainer.grad_clip" in err.value.hint
    assert isinstance(err.value, FloatingPointError)


class Hungry(Probe):
    """Runs out of memory on its second training step, as CPU's allocator says it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and len(self.dtypes) == 1:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")
        return super().forward(x)


def test_out_of_memory_names_the_step_the_sizes_and_the_keys_to_lower(tmp_path: Path):
    x, y, ids = _data(8)
    t = _trainer(Hungry(), _split(x, y, ids, 4), tmp_path)
    with pytest.raises(InsufficientMemoryError) as err:
        t.fit()
    msg = err.value.message
    assert msg.startswith("out of memory on cpu at epoch 1, step 2 (batch cases: case4, case5, case6, case7)")
    assert "batch 4 x 1 x 4 x 4" in msg and "weights, gradients and optimizer state 0.00 GB" in msg
    assert "of RAM available" in msg and len(msg.splitlines()) == 1
    assert "trainer.batch_size" in err.value.hint and "trainer.amp" in err.value.hint


def test_other_runtime_errors_are_not_taken_for_out_of_memory(tmp_path: Path):
    class Broken(Probe):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    x, y, ids = _data(8)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _trainer(Broken(), _split(x, y, ids, 4), tmp_path).fit()


def _cls(npz: Path, **trainer) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "experiment": {"task": "classification", "seed": 0},
        "data": {"npz": str(npz), "class_names": ["normal", "lesion"]},
        "model": {"name": "cnn3d", "channels": [4, 8], "dropout": 0.0},
        "evaluation": {"test": False},
        "trainer": {"max_epochs": 2, "batch_size": 8, "device": "cpu", "deterministic": True, **trainer},
    })


def test_fp16_on_cpu_is_refused_before_any_work(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    with pytest.raises(ConfigError, match="trainer.amp is fp16 but training runs on cpu") as err:
        train(_cls(npz, amp="fp16"), tmp_path / "run", progress=False)
    assert "bf16" in err.value.hint and not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_where_there_is_none_is_refused_before_any_work(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(16, 8, 8))
    with pytest.raises(ConfigError, match="CUDA is not available") as err:
        train(_cls(npz, device="cuda"), tmp_path / "run", progress=False)
    assert "trainer.device" in err.value.hint_for("cli") and not (tmp_path / "run").exists()


def test_time_budget_stops_mid_epoch_validates_saves_and_resumes(tmp_path: Path):
    npz = make_npz(tmp_path / "toy.npz", n=(32, 8, 8))
    run = tmp_path / "run"
    result = train(_cls(npz, max_minutes=1e-9), run, progress=False)  # past it after step 1 of 4
    assert result.stopped_because == "max_minutes" and result.epochs_run == 1
    assert "val_auc" in result.history[0] and (run / "best.pt").is_file()
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["resume"]["epoch"] == 1 and last["resume"]["callbacks"]["TimeBudget"]["elapsed_minutes"] > 0
    # resumed with the same budget: still out of time, nothing more is trained
    again = train(_cls(npz, max_minutes=1e-9), resume=run, progress=False)
    assert again.stopped_because == "max_minutes" and again.epochs_run == 1
    # a larger budget (a result-neutral change): the run goes on to max_epochs
    more = train(_cls(npz, max_minutes=60), resume=run, progress=False)
    assert more.stopped_because == "max_epochs" and [r["epoch"] for r in more.history] == [1, 2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp, dtype, scaled", [("fp16", torch.float16, True), ("bf16", torch.bfloat16, False)])
def test_cuda_autocast_and_scaler(tmp_path: Path, amp, dtype, scaled):
    x, y, ids = _data(8)
    model = Probe().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    spec = InferenceSpec(task="classification", roi_size=[4, 4], label_names=["a", "b"], in_channels=1)
    t = Trainer(model, nn.CrossEntropyLoss(), opt, lambda e: iter(_split(x, y, ids, 4)), 2, [], spec,
                {"name": "probe", "in_channels": 1, "out_channels": 2}, tmp_path, torch.device("cuda"),
                max_epochs=1, select_by="loss", metrics=["loss"], progress=False, amp=amp)
    t.fit()
    assert set(model.dtypes) == {dtype} and (t.scaler is not None) == scaled
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert (last["resume"]["scaler"] is not None) == scaled and "cuda" in last["resume"]["rng"]


def test_out_of_memory_estimates_a_unets_activations_by_the_planners_formula():
    from medimg.engine.failures import out_of_memory_error
    from medimg.engine.step_memory import memory_gb

    net = nn.Conv3d(1, 2, 3)
    batch = {"image": torch.zeros(2, 1, 96, 96, 96), "case_id": ["a", "b"]}
    err = out_of_memory_error(torch.OutOfMemoryError("CUDA out of memory"), epoch=3, step=7, batch=batch, net=net,
                              optimizer=torch.optim.Adam(net.parameters()), model_params={"channels": [16, 32, 64, 128]},
                              device=torch.device("cpu"), amp=False)
    assert f"activations about {memory_gb(2, [96, 96, 96], 16, 4, False):.2f} GB" in err.message
    assert "batch 2 x 1 x 96 x 96 x 96 (0.01 GB)" in err.message and "epoch 3, step 7 (batch cases: a, b)" in err.message
