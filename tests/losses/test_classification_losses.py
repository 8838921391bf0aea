"""Classification losses: values against torch.nn.functional / torchvision references,
every target form, per-class parameters, error text."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from medimg.core.errors import ConfigError, DataError
from medimg.losses import LOSSES, create_loss, loss_task

CLASSIFICATION = [n for n in LOSSES.list() if loss_task(n) == "classification"]


def _logits(b: int = 6, k: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, k, generator=torch.Generator().manual_seed(seed)) * 2


def _indices(b: int = 6, k: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, k, (b,), generator=torch.Generator().manual_seed(seed))


def _multi_label(b: int = 6, k: int = 3, seed: int = 2) -> torch.Tensor:
    return (torch.rand(b, k, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def test_registered_names_and_tasks():
    assert set(CLASSIFICATION) == {"ce_cls", "bce_cls", "focal_cls"}
    segmentation = {"ce", "dice", "dice_ce", "focal", "dice_focal", "generalized_dice", "tversky", "deep_supervision"}
    assert {n for n in LOSSES.list() if loss_task(n) == "segmentation"} == segmentation


@pytest.mark.parametrize("name", CLASSIFICATION)
@pytest.mark.parametrize("form", ["(B,)", "(B,1)"])
def test_scalar_with_gradient_for_class_indices(name, form):
    logits = _logits().requires_grad_()
    target = _indices() if form == "(B,)" else _indices()[:, None]
    loss = create_loss(name)(logits, target)
    assert loss.ndim == 0 and torch.isfinite(loss) and float(loss.detach()) > 0
    loss.backward()
    assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_right_answer_scores_lower(name):
    y = _indices()
    good = F.one_hot(y, 3).float() * 20 - 10
    bad = F.one_hot((y + 1) % 3, 3).float() * 20 - 10
    fn = create_loss(name)
    assert float(fn(good, y)) < 1e-3
    assert float(fn(bad, y)) > 1.0


# ---------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("params", [{}, {"weight": [1.0, 2.0, 0.5]}, {"label_smoothing": 0.1},
                                    {"weight": [0.2, 1.0, 3.0], "label_smoothing": 0.2}])
def test_ce_matches_torch(params):
    x, y = _logits(), _indices()
    ref = F.cross_entropy(x, y, weight=None if "weight" not in params else torch.tensor(params["weight"]),
                          label_smoothing=params.get("label_smoothing", 0.0))
    assert torch.allclose(create_loss("ce_cls", **params)(x, y), ref, atol=1e-6)
    assert torch.allclose(create_loss("ce_cls", **params)(x, y[:, None]), ref, atol=1e-6)


def test_ce_probability_targets_match_torch():
    x = _logits()
    p = torch.softmax(_logits(seed=5), 1)
    assert torch.allclose(create_loss("ce_cls")(x, p), F.cross_entropy(x, p), atol=1e-6)


def test_ce_float_class_indices_are_accepted():
    x, y = _logits(), _indices()
    assert torch.allclose(create_loss("ce_cls")(x, y.float()), F.cross_entropy(x, y))


def test_ce_refuses_multi_label_targets():
    with pytest.raises(DataError, match=r"must hold class probabilities .*rows summing to 1") as exc:
        create_loss("ce_cls")(_logits(), torch.tensor([[1.0, 1.0, 0.0]] * 6))
    assert "bce_cls or focal_cls" in exc.value.hint


def test_ce_refuses_a_single_logit():
    with pytest.raises(DataError, match="have one column; a softmax needs at least 2 classes"):
        create_loss("ce_cls")(_logits(k=1), torch.zeros(6, dtype=torch.long))


# ------------------------------------------------------------------ binary CE
def test_bce_multi_label_matches_torch():
    x, y = _logits(), _multi_label()
    assert torch.allclose(create_loss("bce_cls")(x, y), F.binary_cross_entropy_with_logits(x, y), atol=1e-6)
    pw = [1.0, 3.0, 0.5]
    ref = F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(pw))
    assert torch.allclose(create_loss("bce_cls", pos_weight=pw)(x, y), ref, atol=1e-6)
    ref = F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor([2.0] * 3))
    assert torch.allclose(create_loss("bce_cls", pos_weight=2.0)(x, y), ref, atol=1e-6)


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_bce_single_logit_binary(shape):
    x = _logits(k=1)
    y = (_indices(k=2) == 1).float()
    ref = F.binary_cross_entropy_with_logits(x[:, 0], y)
    assert torch.allclose(create_loss("bce_cls")(x, y.reshape(shape)), ref, atol=1e-6)
    assert torch.allclose(create_loss("bce_cls")(x, y.long().reshape(shape)), ref, atol=1e-6)


def test_bce_one_hot_encodes_class_indices():
    x, y = _logits(), _indices()
    ref = F.binary_cross_entropy_with_logits(x, F.one_hot(y, 3).float())
    assert torch.allclose(create_loss("bce_cls")(x, y), ref, atol=1e-6)


def test_bce_refuses_values_outside_0_1():
    with pytest.raises(DataError, match=r"per-label targets must lie in \[0, 1\], found values from 0.0 to 2.0"):
        create_loss("bce_cls")(_logits(), _multi_label() * 2)


# ---------------------------------------------------------------------- focal
def test_focal_softmax_gamma_0_is_cross_entropy():
    x, y = _logits(), _indices()
    assert torch.allclose(create_loss("focal_cls", gamma=0.0)(x, y), F.cross_entropy(x, y), atol=1e-6)


@pytest.mark.parametrize("alpha", [None, [0.25, 1.0, 2.0]])
def test_focal_softmax_matches_formula(alpha):
    x, y = _logits(), _indices()
    ce = F.cross_entropy(x, y, reduction="none")
    p_t = torch.exp(-ce)
    ref = (1 - p_t) ** 2 * ce
    if alpha is not None:
        ref = torch.tensor(alpha)[y] * ref
    assert torch.allclose(create_loss("focal_cls", alpha=alpha)(x, y), ref.mean(), atol=1e-6)


def test_focal_binary_alpha_scalar_means_1_minus_a_and_a():
    x, y = _logits(k=2), _indices(k=2)
    a = create_loss("focal_cls", alpha=0.25)(x, y)
    b = create_loss("focal_cls", alpha=[0.75, 0.25])(x, y)
    assert torch.allclose(a, b)
    with pytest.raises(DataError, match="a single alpha applies to two classes"):
        create_loss("focal_cls", alpha=0.25)(_logits(), _indices())


@pytest.mark.parametrize("alpha", [-1.0, 0.25])
def test_focal_sigmoid_matches_torchvision(alpha):
    x, y = _logits(), _multi_label()
    ref = sigmoid_focal_loss(x, y, alpha=alpha, gamma=2.0, reduction="mean")
    got = create_loss("focal_cls", alpha=None if alpha < 0 else alpha)(x, y)
    assert torch.allclose(got, ref, atol=1e-6)


def test_focal_single_logit_is_sigmoid():
    x = _logits(k=1)
    y = (_indices(k=2) == 1).float()
    ref = sigmoid_focal_loss(x, y[:, None], alpha=0.25, reduction="mean")
    assert torch.allclose(create_loss("focal_cls", alpha=0.25)(x, y), ref, atol=1e-6)


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_label_outside_the_classes_is_named(name):
    with pytest.raises(DataError, match=rf"loss '{name}': label value\(s\) \[3, 5\] outside the model's 3 classes \(0..2\)"):
        create_loss(name)(_logits(), torch.tensor([0, 3, 1, 5, 2, 3]))


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_segmentation_shaped_logits_are_refused(name):
    with pytest.raises(DataError, match=r"logits of shape \(2, 3, 4, 4\) are not \(B, K\)") as exc:
        create_loss(name)(torch.randn(2, 3, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long))
    assert "segmentation loss" in exc.value.hint


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_batch_mismatch(name):
    with pytest.raises(DataError, match=r"target of shape \(5,\) does not match logits \(6, 3\)"):
        create_loss(name)(_logits(), _indices(b=5))


def test_per_class_parameter_length_checked():
    with pytest.raises(DataError, match="weight has 2 values but the model has 3 outputs"):
        create_loss("ce_cls", weight=[1.0, 2.0])(_logits(), _indices())
    with pytest.raises(DataError, match="pos_weight has 2 values but the model has 3 outputs"):
        create_loss("bce_cls", pos_weight=[1.0, 2.0])(_logits(), _multi_label())


def test_bad_construction_values():
    with pytest.raises(ConfigError, match=r"label_smoothing must be in \[0, 1\), got 1.5"):
        create_loss("ce_cls", label_smoothing=1.5)
    with pytest.raises(ConfigError, match="gamma must be >= 0, got -1"):
        create_loss("focal_cls", gamma=-1)


def test_weights_follow_the_logits_device_and_dtype():
    # buffers are not saved in a checkpoint's state dict and move with the logits
    fn = create_loss("ce_cls", weight=[1.0, 2.0, 3.0])
    assert dict(fn.state_dict()) == {}
    x, y = _logits().double(), _indices()
    assert torch.isfinite(fn(x, y))


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_docs_describe_every_option(name):
    from medimg.cli.listing import component_parameters, first_sentence

    factory = LOSSES.get(name)
    assert factory.task == "classification"
    assert "classification" in first_sentence(factory.__doc__)
    params, open_ended = component_parameters(factory)
    assert not open_ended and params
    assert all(p.description for p in params), [p.name for p in params if not p.description]
