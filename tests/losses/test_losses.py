"""Losses: one calling convention, sensible values, gradients, shape errors."""

from __future__ import annotations

import pytest
import torch

from medimg.core.errors import ConfigError, UnknownComponentError
from medimg.losses import LOSSES, create_loss, loss_task

# the classification losses have their own tests (test_classification_losses.py)
SEGMENTATION = [n for n in LOSSES.list() if loss_task(n) == "segmentation"]


def _perfect_logits(label: torch.Tensor, k: int, scale: float = 20.0) -> torch.Tensor:
    onehot = torch.nn.functional.one_hot(label[:, 0], k).movedim(-1, 1).float()
    return (onehot * 2 - 1) * scale


@pytest.mark.parametrize("name", SEGMENTATION)
def test_loss_is_scalar_with_gradient(name):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
    label = torch.randint(0, 3, (2, 1, 8, 8, 8))
    loss = create_loss(name)(logits, label)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", SEGMENTATION)
def test_perfect_prediction_scores_lower_than_wrong(name):
    label = torch.zeros(2, 1, 8, 8, 8, dtype=torch.long)
    label[:, :, 2:6, 2:6, 2:6] = 1
    label[:, :, 3:5, 3:5, 3:5] = 2
    good = create_loss(name)(_perfect_logits(label, 3), label)
    bad = create_loss(name)(_perfect_logits((label + 1) % 3, 3), label)
    assert float(good) < 0.05
    assert float(bad) > float(good) + 0.5


def test_dice_leaves_background_out_by_default():
    # all background, predicted as background: with background excluded the Dice term
    # sees only empty foreground classes (predicted empty too): loss ~ 0
    label = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    loss = create_loss("dice")(_perfect_logits(label, 2), label)
    assert float(loss) < 1e-3


def test_accepts_label_without_channel_axis():
    logits = torch.randn(2, 2, 4, 4, 4)
    label = torch.randint(0, 2, (2, 4, 4, 4))
    assert torch.isfinite(create_loss("dice_ce")(logits, label))


def test_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"label shape \(2, 1, 4, 4, 5\) does not match logits"):
        create_loss("ce")(torch.randn(2, 2, 4, 4, 4), torch.zeros(2, 1, 4, 4, 5, dtype=torch.long))


def test_unknown_loss_and_bad_param():
    with pytest.raises(UnknownComponentError, match="did you mean 'dice_ce'"):
        create_loss("dice_cee")
    with pytest.raises(ConfigError, match="loss 'dice' could not be built"):
        create_loss("dice", lambda_ce=2.0)


def test_ce_class_weights():
    logits = torch.zeros(1, 2, 4, 4, 4)
    label = torch.ones(1, 1, 4, 4, 4, dtype=torch.long)
    plain = create_loss("ce")(logits, label)
    weighted = create_loss("ce", weight=[1.0, 3.0])(logits, label)
    assert torch.allclose(plain, weighted)  # weighted mean over one class: same value
    assert torch.allclose(plain, torch.log(torch.tensor(2.0)))


def test_public_api():
    import medimg.losses as m

    assert set(m.__all__) == {"LOSSES", "create_loss", "loss_task"}


def test_registry_has_the_documented_segmentation_losses():
    assert {"ce", "dice", "dice_ce", "focal", "dice_focal", "generalized_dice", "tversky", "deep_supervision"} == set(
        SEGMENTATION
    )
    assert {"dice_ce", "dice", "ce", "dice_focal", "focal"} <= set(LOSSES.list())
