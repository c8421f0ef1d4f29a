"""Threshold folding, sign(0), argmax ties and torch eval against the NumPy reference."""

import numpy as np
import pytest
import torch

from tangentcore.manifest import random_manifest
from tangentcore.sw import reference
from tangentcore.sw.export import export_sign_mlp
from tangentcore.sw.models import SignMLP, fold_thresholds, surrogate_sign
from tangentcore.sw.surrogates import get_surrogate
from tangentcore.sw.train import evaluate_scores


def _fold(gain, bias, normalization=1.0, bound=8):
    threshold, flip = fold_thresholds(torch.tensor([gain]), torch.tensor([bias]), normalization, -bound, bound)
    return int(threshold.item()), bool(flip.item())


def _brute_force_outputs(gain, bias, normalization, bound):
    """The float condition gain·acc/s − bias ≥ 0 for every acc in the range."""
    acc = np.arange(-bound, bound + 1)
    return gain * acc / normalization - bias >= 0


@pytest.mark.parametrize(
    # gain: positive, negative (flips the weights) and zero (constant output)
    "gain", [1.0, 0.5, 3.0, -1.0, -0.25, 0.0],
)
@pytest.mark.parametrize(
    # bias: zero, between integers, exactly on an integer boundary, beyond the range
    "bias", [0.0, 0.3, -0.7, 2.0, -2.0, 20.0, -20.0],
)
def test_fold_matches_float_condition(gain, bias):
    normalization, bound = 2.0, 8
    threshold, flip = _fold(gain, bias, normalization, bound)
    acc = np.arange(-bound, bound + 1)
    folded = (-acc if flip else acc) >= threshold
    np.testing.assert_array_equal(folded, _brute_force_outputs(gain, bias, normalization, bound))


def test_fold_zero_bias_keeps_zero_accumulator_on():
    # acc = 0 with no bias is sign(0) = +1: the neuron fires.
    threshold, flip = _fold(1.0, 0.0)
    assert threshold == 0
    assert not flip


def test_fold_negative_gain_flips():
    threshold, flip = _fold(-2.0, 1.0, normalization=1.0)
    # -2·acc − 1 ≥ 0 ⟺ acc ≤ −0.5 ⟺ −acc ≥ 1
    assert flip
    assert threshold == 1


def test_fold_clips_to_range():
    assert _fold(1.0, 100.0, bound=8) == (9, False)
    assert _fold(1.0, -100.0, bound=8) == (-8, False)


def test_surrogate_sign_of_zero_is_plus_one():
    h = torch.tensor([-1.0, 0.0, -0.0, 1e-30, 2.0], requires_grad=True)
    out = surrogate_sign(h, get_surrogate("gaussian", 1.0))
    assert out.tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]


def test_surrogate_sign_gradient_is_surrogate():
    surrogate = get_surrogate("fast_sigmoid", 2.0)
    h = torch.linspace(-2, 2, 9, requires_grad=True)
    surrogate_sign(h, surrogate).sum().backward()
    torch.testing.assert_close(h.grad, surrogate.derivative(h.detach()))


def test_argmax_ties_go_to_lowest_index():
    scores = np.array([[3, 7, 7, 1], [5, 5, 5, 5], [-2, -1, -1, -3]])
    np.testing.assert_array_equal(reference.argmax_lowest(scores), [1, 0, 1])


def test_reference_binary_layer_is_xnor_popcount():
    rng = np.random.default_rng(3)
    weights = rng.choice([-1, 1], size=(5, 13))
    bits = rng.integers(0, 2, size=(7, 13))
    acc = reference.layer_accumulators(weights, bits, "binary")
    xnor = (bits[:, None, :] == (weights[None, :, :] > 0))
    np.testing.assert_array_equal(acc, 2 * xnor.sum(axis=2) - 13)


def _random_model(rng, sizes, encoding, bits, seed):
    torch.manual_seed(seed)
    model = SignMLP(sizes, input_encoding=encoding, input_bits=bits, surrogate=get_surrogate("gaussian"))
    with torch.no_grad():
        for gain, bias in zip(model.gains, model.biases):
            gain.copy_(torch.as_tensor(rng.normal(size=gain.shape) * 1.5, dtype=torch.float32))
            # Some exact zeros exercise the constant-output fold.
            gain[rng.random(gain.shape) < 0.1] = 0.0
            bias.copy_(torch.as_tensor(rng.normal(size=bias.shape), dtype=torch.float32))
    return model


@pytest.mark.parametrize(
    # input encoding and bits
    "encoding,bits", [("binary", 1), ("uint", 1), ("uint", 4)],
)
@pytest.mark.parametrize(
    # topology: one hidden layer, two hidden layers, an odd fan-in
    "sizes", [[16, 12, 5], [20, 9, 7, 4], [7, 3, 3]],
)
@pytest.mark.parametrize("seed", range(3))
def test_torch_eval_equals_reference(encoding, bits, sizes, seed):
    rng = np.random.default_rng(seed)
    model = _random_model(rng, sizes, encoding, bits, seed)
    manifest = export_sign_mlp(model, name="random")
    x = rng.integers(0, 1 << bits, size=(200, sizes[0]))
    expected = reference.forward(manifest, x)
    np.testing.assert_array_equal(evaluate_scores(model, x), expected["scores"])
    with torch.no_grad():
        _, hidden = model(torch.as_tensor(x), return_hidden=True)
    for torch_bits, reference_bits in zip(hidden, expected["hidden"]):
        np.testing.assert_array_equal((torch_bits.numpy() > 0).astype(np.uint8), reference_bits)


def test_export_flips_weights_of_negative_gains():
    rng = np.random.default_rng(0)
    model = _random_model(rng, [10, 6, 3], "binary", 1, 0)
    with torch.no_grad():
        model.gains[0].fill_(-1.0)
    manifest = export_sign_mlp(model, name="flipped")
    latent = model.integer_weights()[0].numpy()
    np.testing.assert_array_equal(manifest.weights(manifest.layers[0]), -latent)


def test_random_manifest_exercises_ties():
    # Thresholds near zero with small fan-in make acc == T occur, the case where sign(0) = +1 matters.
    manifest = random_manifest(np.random.default_rng(1), [6, 8, 3], encoding="binary")
    x = np.array([[int(b) for b in f"{i:06b}"] for i in range(64)])
    acc = reference.layer_accumulators(manifest.weights(manifest.layers[0]), x, "binary")
    assert np.any(acc == manifest.thresholds(manifest.layers[0])[None, :])
