"""Layer tuning for CPU inference: every form computes the layer's function, the choice
is made without computing an input twice, and the Predictor runs the tuned copy on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medimg.core import ConfigError
from medimg.inference import InferenceSpec, Predictor
from medimg.inference.layer_tuning import SubPixelConvTranspose, TunedConv, tune_convolutions
from medimg.models import create_model

TRANSPOSED = [
    # (nd, in, out, kernel, stride, padding, output_padding, size)
    (3, 4, 3, 3, 2, 1, 1, 5),  # MONAI UNet's up-sampling
    (3, 4, 3, 2, 2, 0, 0, 5),  # DynUNet's (kernel = stride): one tap per phase
    (3, 2, 2, 4, 2, 1, 0, 6),
    (3, 3, 2, (3, 2, 3), (2, 2, 1), (1, 0, 1), (1, 0, 0), (4, 5, 3)),  # mixed per axis, stride 1 on one
    (2, 3, 2, 3, 2, 1, 1, 7),
    (2, 3, 2, 5, 3, 2, 2, 5),  # stride 3, output padding 2
    (2, 2, 5, 1, 2, 0, 1, 6),  # kernel smaller than the stride: empty phases
]


def _transposed(nd, cin, cout, k, s, p, op):
    cls = nn.ConvTranspose2d if nd == 2 else nn.ConvTranspose3d
    return cls(cin, cout, k, stride=s, padding=p, output_padding=op).eval()


@pytest.mark.parametrize("nd, cin, cout, k, s, p, op, size", TRANSPOSED)
def test_sub_pixel_form_computes_the_transposed_convolution(nd, cin, cout, k, s, p, op, size):
    torch.manual_seed(0)
    layer = _transposed(nd, cin, cout, k, s, p, op)
    shape = (size,) * nd if isinstance(size, int) else size
    x = torch.randn((2, cin, *shape))
    with torch.inference_mode():
        expected, got = layer(x), SubPixelConvTranspose(layer)(x)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-5


def test_sub_pixel_form_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="groups=1, dilation=1"):
        SubPixelConvTranspose(nn.ConvTranspose3d(4, 4, 3, stride=2, groups=2))
    with pytest.raises(ValueError, match="groups=1, dilation=1"):
        SubPixelConvTranspose(nn.ConvTranspose3d(4, 4, 3, stride=2, dilation=2))
    # such a layer is still tuned, between the forms that can compute it
    assert set(TunedConv(nn.ConvTranspose3d(4, 4, 3, stride=2, groups=2))._forms()) == {"default", "channels_last"}


@pytest.mark.parametrize("layer", [nn.Conv3d(3, 2, 3, padding=1), nn.Conv2d(3, 4, 3, stride=2),
                                   _transposed(3, 3, 2, 3, 2, 1, 1)])
def test_tuned_layer_tries_each_form_once_per_call_then_keeps_the_fastest(layer, monkeypatch):
    layer.eval()
    tuned = TunedConv(layer)
    forms = list(tuned._forms())
    assert forms[:2] == ["default", "channels_last"]
    assert ("sub_pixel" in forms) == isinstance(layer, nn.ConvTranspose3d)
    calls = []
    for name in forms:  # count the calls of every form
        module = getattr(tuned, {"default": "layer"}.get(name, name))
        monkeypatch.setattr(module, "forward", _counting(module.forward, calls, name))
    nd = layer.weight.ndim - 2
    x = torch.randn((2, 3) + (8,) * nd)
    with torch.inference_mode():
        expected = layer.__class__.forward(layer, x)
        for i in range(2 * len(forms)):
            assert float((tuned(x) - expected).abs().max()) < 1e-5
            assert (tuple(x.shape[1:]) in tuned.choices) == (i == 2 * len(forms) - 1)
        assert calls == forms + forms  # one form per call, in turn, none computed twice
        chosen = tuned.choices[tuple(x.shape[1:])]
        timed = tuned.timings[tuple(x.shape[1:])]
        assert list(timed) == forms and chosen == min(timed, key=timed.__getitem__)
        # decided for the shape whatever the batch size: a last, smaller batch uses it too
        assert float((tuned(x[:1]) - expected[:1]).abs().max()) < 1e-5
        assert calls[-1] == chosen and len(calls) == 2 * len(forms) + 1


def _counting(forward, calls, name):
    def run(*args, **kwargs):
        calls.append(name)
        return forward(*args, **kwargs)

    return run


def test_tune_convolutions_copies_the_network_and_keeps_its_function():
    torch.manual_seed(0)
    net = create_model("unet", in_channels=1, out_channels=3, spatial_dims=3, channels=[4, 8, 16], strides=[2, 2],
                       num_res_units=1).eval()
    tuned = tune_convolutions(net)
    assert tuned is not net
    assert not any(isinstance(m, TunedConv) for m in net.modules())  # the network given is left as it was
    wrapped = [m for m in tuned.modules() if isinstance(m, TunedConv)]
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
    assert len(wrapped) == len(convs)
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.inference_mode():
        expected = net(x)
        for _ in range(7):  # through the whole tuning phase and after it
            assert float((tuned(x) - expected).abs().max()) < 1e-5
    assert all(m.choices for m in wrapped)


def test_tune_convolutions_leaves_networks_without_convolutions_alone():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    assert tune_convolutions(mlp) is mlp
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(1, 2, 3)))
    assert tune_convolutions(scripted) is scripted
    bare = nn.Conv3d(1, 2, 1)  # a network that is one convolution
    tuned = tune_convolutions(bare)
    assert isinstance(tuned, TunedConv) and tuned.layer is not bare


def _unet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("unet", in_channels=1, out_channels=2, spatial_dims=3, channels=[4, 8], strides=[2],
                        num_res_units=0)


def test_predictor_runs_the_tuned_copy_on_cpu_and_predicts_the_same():
    x = torch.rand(1, 30, 27, 19)
    tuned = Predictor(_unet(), roi_size=[16, 16, 16], overlap=0.5, sw_batch_size=2, device="cpu")
    plain = Predictor(_unet(), roi_size=[16, 16, 16], overlap=0.5, sw_batch_size=2, device="cpu", tune_layers=False)
    assert plain._network() is plain.model
    assert any(isinstance(m, TunedConv) for m in tuned._network().modules())
    assert not any(isinstance(m, TunedConv) for m in tuned.model.modules())
    with torch.inference_mode():
        a = tuned._probabilities_on_preprocessed(x)
        b = plain._probabilities_on_preprocessed(x)
    assert float((a - b).abs().max()) < 1e-5
    assert tuned._network() is tuned._network()  # tuned once, then kept with its choices


def test_tune_layers_is_a_config_key():
    assert InferenceSpec().tune_layers is True
    assert InferenceSpec(tune_layers=False).tune_layers is False
    with pytest.raises(ConfigError, match="tune_layers"):
        InferenceSpec().with_updates(tune_layers="sometimes")


def test_predictor_copies_again_when_the_weights_change_in_place():
    pred = Predictor(_unet(), roi_size=[16, 16, 16], sw_batch_size=2, device="cpu")
    x = torch.rand(1, 20, 20, 20)
    with torch.inference_mode():
        before = pred._probabilities_on_preprocessed(x)
    first = pred._network()
    with torch.no_grad():  # as an optimiser step or load_state_dict would
        for p in pred.model.parameters():
            p.mul_(-1.5)
    assert pred._network() is not first
    plain = Predictor(pred.model, roi_size=[16, 16, 16], sw_batch_size=2, device="cpu", tune_layers=False)
    with torch.inference_mode():
        after = pred._probabilities_on_preprocessed(x)
        expected = plain._probabilities_on_preprocessed(x)
    assert float((after - expected).abs().max()) < 1e-5 and float((after - before).abs().max()) > 1e-3
