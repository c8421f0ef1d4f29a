"""Torch eval of sign MLPs and LIF networks equals the integer reference on every output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tangentcore.sw import reference
from tangentcore.sw.export import export_model
from tangentcore.sw.models import SignMLP, surrogate_heaviside, surrogate_sign
from tangentcore.sw.spiking import LIFMLP
from tangentcore.sw.surrogates import SURROGATE_NAMES, get_surrogate

SURROGATE = get_surrogate("gaussian", 1.0)
WEIGHTS = st.sampled_from([("binary", 1), ("ternary", 2), ("int", 2), ("int", 4), ("int", 8)])


def _randomize_latent_weights(model, rng: np.random.Generator) -> None:
    """Draw latent weights that quantize to every level, zeros included."""
    with torch.no_grad():
        for dense in model.linears:
            levels = rng.integers(-dense.max_weight, dense.max_weight + 1, size=tuple(dense.linear.weight.shape))
            if dense.weight_kind == "binary":
                levels = np.where(levels >= 0, 1, -1)
            dense.linear.weight.copy_(torch.as_tensor(levels / dense.max_weight, dtype=torch.float32))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), weights=WEIGHTS, encoding=st.sampled_from([("binary", 1), ("uint", 1),
                                                                                    ("uint", 4), ("uint", 8)]),
       sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4))
def test_sign_mlp_eval_equals_reference(seed, weights, encoding, sizes):
    rng = np.random.default_rng(seed)
    (weight_kind, weight_bits), (input_encoding, input_bits) = weights, encoding
    model = SignMLP(sizes, input_encoding=input_encoding, input_bits=input_bits, surrogate=SURROGATE,
                    weight_kind=weight_kind, weight_bits=weight_bits)
    _randomize_latent_weights(model, rng)
    with torch.no_grad():
        for index, (gain, bias) in enumerate(zip(model.gains, model.biases)):
            # Gains of both signs and exact zeros; biases that put thresholds inside, on and past the range.
            gain.copy_(torch.as_tensor(rng.choice([-1.5, -0.3, 0.0, 0.4, 2.0], size=gain.shape), dtype=torch.float32))
            bound = model.acc_bound(index) / model.normalization(index)
            bias.copy_(torch.as_tensor(rng.integers(-4, 5, size=bias.shape) * bound / 4, dtype=torch.float32))
    manifest = export_model(model, name="hypothesis")
    x = rng.integers(0, 1 << input_bits, size=(32, sizes[0]))
    model.eval()
    with torch.no_grad():
        scores, hidden = model(torch.as_tensor(x), return_hidden=True)
    expected = reference.forward(manifest, x)
    np.testing.assert_array_equal(scores.numpy().astype(np.int64), expected["scores"])
    for layer_out, bits in zip(hidden, expected["hidden"]):
        np.testing.assert_array_equal(((layer_out.numpy() + 1) / 2).astype(np.uint8), bits)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), weights=WEIGHTS, sizes=st.lists(st.integers(1, 9), min_size=2, max_size=4),
       time_steps=st.integers(1, 9), membrane_bits=st.integers(3, 10), reset=st.sampled_from(["subtract", "zero"]),
       output=st.sampled_from(["spike_count", "final_membrane", "max_membrane"]), rate=st.floats(0.1, 0.9),
       data=st.data())
def test_lif_eval_equals_reference(seed, weights, sizes, time_steps, membrane_bits, reset, output, rate, data):
    rng = np.random.default_rng(seed)
    weight_kind, weight_bits = weights
    leak_shift = data.draw(st.integers(0, membrane_bits - 1), label="leak_shift")
    model = LIFMLP(sizes, time_steps=time_steps, surrogate=SURROGATE, weight_kind=weight_kind,
                   weight_bits=weight_bits, leak_shift=leak_shift, reset=reset, membrane_bits=membrane_bits,
                   output=output, threshold=1)
    _randomize_latent_weights(model, rng)
    with torch.no_grad():
        for latent in model.latent_thresholds:
            # Thresholds from 1 to the membrane maximum, so neurons fire often, rarely or only when saturated.
            latent.copy_(torch.as_tensor(rng.integers(1, model.membrane_max + 1, size=latent.shape),
                                         dtype=torch.float32))
    manifest = export_model(model, name="hypothesis")
    x = (rng.random((16, time_steps, sizes[0])) < rate).astype(np.uint8)
    model.eval()
    with torch.no_grad():
        scores, hidden, output_spikes = model(torch.as_tensor(x), return_hidden=True)
    expected = reference.forward(manifest, x)
    np.testing.assert_array_equal(scores.numpy().astype(np.int64), expected["scores"])
    np.testing.assert_array_equal(output_spikes.numpy().astype(np.uint8), expected["output_spikes"])
    for layer_out, spikes in zip(hidden, expected["hidden"]):
        np.testing.assert_array_equal(layer_out.numpy().astype(np.uint8), spikes)


def test_lif_saturation_and_negative_leak():
    """One neuron driven to both membrane limits: the float32 forward saturates and floors like the reference."""
    model = LIFMLP([2, 1], time_steps=12, surrogate=SURROGATE, weight_kind="int", weight_bits=4, leak_shift=2,
                   membrane_bits=4, output="final_membrane", threshold=7)
    with torch.no_grad():
        model.linears[0].linear.weight.copy_(torch.tensor([[1.0, -1.0]]))
    x = np.zeros((3, 12, 2), dtype=np.uint8)
    x[0, :, 1] = 1  # -7 every step: saturates at -8 and the shift leak floors -8 >> 2 to -2
    x[1, :6, 0] = 1  # +7 then silence: fires, resets, decays
    x[2, ::3, 1] = 1  # occasional -7: negative membranes decay towards 0 through the floor
    manifest = export_model(model, name="saturation")
    with torch.no_grad():
        scores = model(torch.as_tensor(x)).numpy().astype(np.int64)
    np.testing.assert_array_equal(scores, reference.forward(manifest, x)["scores"])
    assert scores[0, 0] == -8


def test_lif_zero_sum_spikes():
    """All-zero inputs leave membranes at 0, below every threshold, so no neuron fires."""
    model = LIFMLP([5, 4, 3], time_steps=4, surrogate=SURROGATE, weight_kind="ternary", weight_bits=2)
    manifest = export_model(model, name="zeros")
    x = np.zeros((2, 4, 5), dtype=np.uint8)
    with torch.no_grad():
        scores = model(torch.as_tensor(x)).numpy()
    np.testing.assert_array_equal(scores, reference.forward(manifest, x)["scores"])
    assert not scores.any()


@pytest.mark.parametrize("name", SURROGATE_NAMES)  # every registered surrogate
def test_backward_uses_surrogate_derivative(name):
    surrogate = get_surrogate(name, 1.7)
    u = torch.linspace(-3, 3, 41, requires_grad=True)
    surrogate_sign(u, surrogate).sum().backward()
    np.testing.assert_allclose(u.grad.numpy(), surrogate.derivative(u.detach()).numpy(), rtol=1e-6)
    v = torch.linspace(-3, 3, 41, requires_grad=True)
    surrogate_heaviside(v, surrogate).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), 0.5 * surrogate.derivative(v.detach()).numpy(), rtol=1e-6)


def test_sign_of_zero_is_plus_one():
    assert surrogate_sign(torch.zeros(3), SURROGATE).tolist() == [1.0, 1.0, 1.0]
    assert surrogate_heaviside(torch.zeros(3), SURROGATE).tolist() == [1.0, 1.0, 1.0]


def test_lif_gradients_reach_weights_and_thresholds():
    torch.manual_seed(0)
    model = LIFMLP([6, 5, 3], time_steps=5, surrogate=SURROGATE, weight_kind="int", weight_bits=3)
    x = (torch.rand(8, 5, 6) < 0.5).float()
    model.logits(model(x)).sum().backward()
    assert model.linears[0].linear.weight.grad.abs().sum() > 0
    assert model.latent_thresholds[0].grad.abs().sum() > 0


def test_float_lif_cannot_export():
    model = LIFMLP([4, 2], time_steps=3, surrogate=SURROGATE, qat=False)
    with pytest.raises(ValueError, match="qat=True"):
        export_model(model, name="float")


def _autograd_lif_layer(synaptic, theta, *, leak_shift, membrane_bits, reset, qat):
    """The LIF recursion written step by step with autograd, as an independent gradient reference."""
    scale = theta.detach().clamp(min=1.0)
    low, high = -float(1 << (membrane_bits - 1)), float((1 << (membrane_bits - 1)) - 1)
    v = torch.zeros_like(synaptic[:, 0])
    spikes = []
    for t in range(synaptic.shape[1]):
        if qat:
            leak = v * 2.0 ** -leak_shift
            v = torch.clamp(v - (leak + (torch.floor(leak) - leak).detach()) + synaptic[:, t], low, high)
        else:
            v = v - v * 2.0 ** -leak_shift + synaptic[:, t]
        spike = surrogate_heaviside((v - theta) / scale, SURROGATE)
        fired = spike.detach()
        v = v - theta * fired if reset == "subtract" else v * (1.0 - fired)
        spikes.append(spike)
    return torch.stack(spikes, dim=1), v


# reset mode, and whether the membrane is quantized and saturating
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("qat", [True, False])
def test_bptt_backward_matches_autograd(reset, qat):
    from tangentcore.sw.spiking import _LIFRecurrence

    generator = torch.Generator().manual_seed(5)
    synaptic = torch.randint(-6, 7, (4, 7, 5), generator=generator).double()
    theta = torch.tensor([1.0, 3.0, 5.0, 8.0, 2.0], dtype=torch.float64)
    weights_spikes = torch.randn(4, 7, 5, generator=generator, dtype=torch.float64)
    weights_final = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    options = {"leak_shift": 2, "membrane_bits": 5, "reset": reset}

    inputs = [synaptic.clone().requires_grad_(), theta.clone().requires_grad_()]
    spikes, final, _ = _LIFRecurrence.apply(inputs[0].transpose(0, 1), inputs[1], SURROGATE, 2, 5 if qat else None,
                                            reset)
    spikes = spikes.transpose(0, 1)
    ((spikes * weights_spikes).sum() + (final * weights_final).sum()).backward()

    expected_inputs = [synaptic.clone().requires_grad_(), theta.clone().requires_grad_()]
    expected_spikes, expected_final = _autograd_lif_layer(*expected_inputs, qat=qat, **options)
    ((expected_spikes * weights_spikes).sum() + (expected_final * weights_final).sum()).backward()

    torch.testing.assert_close(spikes, expected_spikes)
    torch.testing.assert_close(final, expected_final)
    torch.testing.assert_close(inputs[0].grad, expected_inputs[0].grad)
    torch.testing.assert_close(inputs[1].grad, expected_inputs[1].grad)
