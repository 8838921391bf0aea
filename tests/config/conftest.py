"""Small local registries standing in for the real ones, and a config-file writer."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from medimg.core import Registry


def make_registries() -> dict[str, Registry]:
    """One registry per kind, with components whose signatures exercise the checks."""
    models: Registry = Registry("models")
    transforms: Registry = Registry("transforms")
    losses: Registry = Registry("losses")
    metrics: Registry = Registry("metrics")
    optimizers: Registry = Registry("optimizers")
    schedulers: Registry = Registry("schedulers")

    @models.register("tiny_net")
    def tiny_net(
        in_channels: int,
        num_classes: int = 2,
        spatial_dims: int = 3,
        channels: tuple[int, int] = (8, 16),
        dropout: float = 0.0,
    ) -> dict:
        """A stand-in network factory."""
        return {"in_channels": in_channels, "num_classes": num_classes, "channels": channels}

    @models.register("wrapped")
    def wrapped(spatial_dims: int = 3, **kwargs) -> dict:
        """Passes anything through (**kwargs): keys cannot be checked."""
        return dict(kwargs)

    @transforms.register("orient")
    class Orient:
        random = False

        def __init__(self, axcodes: str = "RAS", keys: Sequence[str] | None = None) -> None:
            self.axcodes = axcodes

    @transforms.register("resample")
    class Resample:
        random = False

        def __init__(self, spacing: Sequence[float], keys: Sequence[str] | None = None) -> None:
            self.spacing = list(spacing)

    @transforms.register("random_flip")
    class RandomFlip:
        random = True

        def __init__(self, axes: Sequence[int] = (0, 1, 2), prob: float = 0.5) -> None:
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"random_flip: prob must be in [0, 1], got {prob}")
            self.prob = prob

    @losses.register("dice_ce")
    def dice_ce(include_background: bool = False, lambda_ce: float = 1.0) -> tuple:
        return ("dice_ce", include_background, lambda_ce)

    metrics.register("dice", object())
    metrics.register("hd95", object())

    @optimizers.register("adamw")
    def adamw(params, lr: float = 1e-3, weight_decay: float = 0.01) -> tuple:
        return ("adamw", params, lr, weight_decay)

    @schedulers.register("cosine")
    def cosine(optimizer, T_max: int, eta_min: float = 0.0) -> tuple:
        return ("cosine", optimizer, T_max, eta_min)

    return {
        "models": models,
        "transforms": transforms,
        "losses": losses,
        "metrics": metrics,
        "optimizers": optimizers,
        "schedulers": schedulers,
    }


@pytest.fixture
def regs() -> dict[str, Registry]:
    """Fresh local registries (not wired into the config checks)."""
    return make_registries()


@pytest.fixture
def registries(monkeypatch) -> dict[str, Registry]:
    """Point the config's component checks at the local registries."""
    regs = make_registries()
    import medimg.config.components as build

    monkeypatch.setattr(build, "get_registry", lambda kind: regs[kind])
    return regs


@pytest.fixture
def write(tmp_path: Path):
    """write(text, name="exp.yaml") -> path of a dedented YAML file in tmp_path."""

    def _write(text: str, name: str = "exp.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


GOOD = """
experiment:
  name: brats
data:
  root: data
  images: [flair.nii.gz, t1c.nii.gz]
  label: seg.nii.gz
  label_names: [background, tumour]
preprocess:
  - name: orient
  - name: resample
    spacing: [1.0, 1.0, 1.0]
augment:
  - name: random_flip
    prob: 0.5
model:
  name: tiny_net
  in_channels: 2
  num_classes: 2
loss:
  name: dice_ce
optimizer:
  name: adamw
  lr: 0.0003
trainer:
  max_epochs: 3
"""


@pytest.fixture
def good(tmp_path: Path, write) -> Path:
    """A valid config (for the local registries) whose data root exists."""
    (tmp_path / "data").mkdir()
    return write(GOOD)
