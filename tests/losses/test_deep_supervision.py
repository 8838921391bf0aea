"""Deep supervision: nnU-Net weights, the weighted sum over a network's outputs, the label
resized to coarser outputs, the explicit ``deep_supervision`` loss and its errors."""

from __future__ import annotations

import pytest
import torch

from medimg.core.errors import ConfigError
from medimg.losses import LOSSES, create_loss, loss_task
from medimg.losses.multiscale import deep_supervision_weights, split_outputs

SEGMENTATION = [n for n in LOSSES.list() if loss_task(n) == "segmentation"]


def test_nnunet_weights():
    assert deep_supervision_weights(1) == [1.0]
    assert deep_supervision_weights(2) == [1.0, 0.0]  # the coarsest output is dropped
    w = deep_supervision_weights(4)
    assert w == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0.0])
    with pytest.raises(ValueError, match="at least one output"):
        deep_supervision_weights(0)


@pytest.mark.parametrize("name", SEGMENTATION)
def test_stacked_outputs_give_the_hand_weighted_sum(name):
    torch.manual_seed(0)
    outputs = torch.randn(2, 4, 3, 8, 8, 8)  # (B, N outputs, K classes, *spatial)
    label = torch.randint(0, 3, (2, 1, 8, 8, 8))
    loss = create_loss(name)
    by_hand = sum(w * loss(outputs[:, i], label) for i, w in enumerate([4 / 7, 2 / 7, 1 / 7, 0.0]))
    assert float(loss(outputs, label)) == pytest.approx(float(by_hand), rel=1e-6)
    # and it differs from the full-resolution output's loss alone
    assert abs(float(loss(outputs, label)) - float(loss(outputs[:, 0], label))) > 1e-4


def test_gradient_reaches_every_weighted_output():
    outputs = torch.randn(1, 3, 2, 4, 4, 4, requires_grad=True)
    label = torch.randint(0, 2, (1, 1, 4, 4, 4))
    create_loss("dice_ce")(outputs, label).backward()
    per_output = outputs.grad.abs().flatten(2).sum(-1)[0]
    assert per_output[0] > 0 and per_output[1] > 0 and per_output[2] == 0  # weights 2/3, 1/3, 0


def test_list_outputs_get_the_label_resized_by_nearest_neighbour():
    torch.manual_seed(1)
    label = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    label[..., 4:, :, :] = 1
    full, half, quarter = torch.randn(1, 2, 8, 8, 8), torch.randn(1, 2, 4, 4, 4), torch.randn(1, 2, 2, 2, 2)
    ce = create_loss("ce")
    small = torch.zeros(1, 1, 4, 4, 4, dtype=torch.long)
    small[..., 2:, :, :] = 1  # the label at half resolution: classes kept, never averaged
    expected = 2 / 3 * ce(full, label) + 1 / 3 * ce(half, small)
    assert float(ce([full, half, quarter], label)) == pytest.approx(float(expected), rel=1e-6)


def test_single_output_and_label_without_channel_axis_unchanged():
    torch.manual_seed(2)
    logits, label = torch.randn(2, 3, 4, 4, 4), torch.randint(0, 3, (2, 1, 4, 4, 4))
    assert split_outputs(logits, label) is None
    stacked = torch.randn(2, 3, 3, 4, 4, 4)
    loss = create_loss("dice_ce")
    assert float(loss(stacked, label[:, 0])) == pytest.approx(float(loss(stacked, label)))


def test_explicit_deep_supervision_loss_with_weights():
    torch.manual_seed(3)
    outputs, label = torch.randn(2, 3, 3, 8, 8, 8), torch.randint(0, 3, (2, 1, 8, 8, 8))
    loss = create_loss("deep_supervision", loss={"name": "tversky", "alpha": 0.5, "beta": 0.5}, weights=[0.5, 0.25, 0.25])
    tv = create_loss("tversky", alpha=0.5, beta=0.5)
    expected = 0.5 * tv(outputs[:, 0], label) + 0.25 * tv(outputs[:, 1], label) + 0.25 * tv(outputs[:, 2], label)
    assert float(loss(outputs, label)) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="2 deep-supervision weights for 3 network outputs"):
        create_loss("deep_supervision", weights=[1, 1])(outputs, label)


def test_explicit_deep_supervision_errors():
    with pytest.raises(ConfigError, match="weights must be >= 0 with a positive sum"):
        create_loss("deep_supervision", weights=[1, -1])
    with pytest.raises(ConfigError, match="cannot itself be deep_supervision"):
        create_loss("deep_supervision", loss={"name": "deep_supervision"})
    with pytest.raises(ConfigError, match="unknown loss 'dice_cee'"):
        create_loss("deep_supervision", loss={"name": "dice_cee"})


def test_tversky_alpha_beta_weigh_false_positives_and_negatives():
    label = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    label[..., 2:6, 2:6, 2:6] = 1
    over = torch.full((1, 2, 8, 8, 8), -5.0)
    over[:, 1] = 5.0  # everything foreground: false positives only
    fp_heavy = create_loss("tversky", alpha=0.9, beta=0.1)(over, label)
    fn_heavy = create_loss("tversky", alpha=0.1, beta=0.9)(over, label)
    assert float(fp_heavy) > float(fn_heavy) + 0.3
