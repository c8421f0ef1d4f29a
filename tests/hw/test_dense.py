"""The folded dense layer in Amaranth's simulator against the NumPy reference, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import DenseLayer, Folding, choose_weight_storage
from tangentcore.hw.simulate import StreamBench, pack_vectors, run_stream, unpack_words
from tangentcore.sw.reference import (accumulator_range, argmax_lowest, input_range, layer_accumulators, signed_width,
                                      weight_range)


def _acc_bits(n_in, weight_kind, weight_bits, encoding, input_bits) -> int:
    x_min, x_max = input_range(encoding, input_bits if encoding == "uint" else 1)
    lo, hi = accumulator_range(n_in, *weight_range(weight_kind, weight_bits), x_min, x_max)
    return signed_width(lo, hi + 1)


def _random_weights(rng, shape, weight_kind, weight_bits):
    if weight_kind == "binary":
        return rng.choice(np.array([-1, 1]), size=shape)
    low, high = weight_range(weight_kind, weight_bits)
    return rng.integers(low, high + 1, size=shape)


def _expected(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    acc = layer_accumulators(layer.weights, x, layer.input_encoding)
    return acc if layer.is_output else (acc >= layer.thresholds).astype(np.int64)


def _outputs(layer: DenseLayer, run) -> np.ndarray:
    if layer.is_output:
        return np.array([unpack_words(p, layer.n_out, layer.acc_bits, signed=True) for p in run.payloads])
    return np.array([unpack_words(p, layer.n_out, 1, signed=False) for p in run.payloads])


def _unelaborated(layer):
    """Mark a layer built only to check its parameters, so Amaranth does not warn that it was never elaborated."""
    layer._MustUse__silence = True
    return layer


def _check_layer(layer: DenseLayer, x: np.ndarray, **bench) -> None:
    run = run_stream(layer, pack_vectors(x, layer.input_bits), len(x), **bench)
    expected = _expected(layer, x)
    np.testing.assert_array_equal(_outputs(layer, run), expected)
    if layer.is_output:
        assert run.labels == argmax_lowest(expected).tolist()


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data(), n_in=st.integers(1, 10), n_out=st.integers(1, 6),
       weight=st.sampled_from([("binary", 1), ("ternary", 2), ("int", 2), ("int", 5), ("int", 8)]),
       encoding=st.sampled_from([("binary", 1), ("uint", 1), ("uint", 4), ("spikes", 1)]),
       is_output=st.booleans(), storage=st.sampled_from(["rom", "bram"]), seed=st.integers(0, 2**16))
def test_dense_random_layers_match_reference(data, n_in, n_out, weight, encoding, is_output, storage, seed):
    rng = np.random.default_rng(seed)
    folding = Folding(pe=data.draw(st.sampled_from(_divisors(n_out))), simd=data.draw(st.sampled_from(_divisors(n_in))))
    weight_kind, weight_bits = weight
    encoding, input_bits = encoding
    acc_bits = _acc_bits(n_in, weight_kind, weight_bits, encoding, input_bits)
    lo, hi = accumulator_range(n_in, *weight_range(weight_kind, weight_bits),
                               *input_range(encoding, input_bits))
    thresholds = None if is_output else rng.integers(lo, hi + 2, size=n_out)
    layer = DenseLayer(weights=_random_weights(rng, (n_out, n_in), weight_kind, weight_bits), thresholds=thresholds,
                       weight_kind=weight_kind, weight_bits=weight_bits, input_encoding=encoding,
                       input_bits=input_bits, acc_bits=acc_bits, folding=folding, weight_storage=storage)
    x = rng.integers(0, 1 << input_bits, size=(6, n_in))
    _check_layer(layer, x, input_gap=0.3, stall=0.3, seed=seed)


# weights: every weight at one end of its range, or alternating ends
@pytest.mark.parametrize("pattern", ["low", "high", "alternating"])
# weight kind and bits
@pytest.mark.parametrize("weight_kind,weight_bits", [("binary", 1), ("ternary", 2), ("int", 4)])
# input encoding and bits
@pytest.mark.parametrize("encoding,input_bits", [("binary", 1), ("uint", 3), ("spikes", 1)])
def test_dense_extreme_weights_and_thresholds(pattern, weight_kind, weight_bits, encoding, input_bits):
    n_in, n_out = 8, 4
    low, high = weight_range(weight_kind, weight_bits)
    if pattern == "alternating":
        weights = np.where(np.indices((n_out, n_in)).sum(axis=0) % 2 == 0, low, high)
    else:
        weights = np.full((n_out, n_in), low if pattern == "low" else high)
    acc_bits = _acc_bits(n_in, weight_kind, weight_bits, encoding, input_bits)
    acc_lo, acc_hi = accumulator_range(n_in, low, high, *input_range(encoding, input_bits))
    # Thresholds at both ends of the clipped range and at the extremes the inputs below reach.
    thresholds = np.array([acc_lo, acc_hi + 1, acc_hi, acc_lo + 1])
    x_max = (1 << input_bits) - 1
    x = np.array([[0] * n_in, [x_max] * n_in, [0, x_max] * (n_in // 2), [x_max, 0] * (n_in // 2)])
    for thresholds_or_none in (thresholds, None):
        layer = DenseLayer(weights=weights, thresholds=thresholds_or_none, weight_kind=weight_kind,
                           weight_bits=weight_bits, input_encoding=encoding, input_bits=input_bits,
                           acc_bits=acc_bits, folding=Folding(pe=2, simd=4))
        _check_layer(layer, x)


def _fixed_layer(folding: Folding, *, is_output: bool = True, storage: str = "auto", seed: int = 0) -> DenseLayer:
    rng = np.random.default_rng(seed)
    n_out, n_in = 6, 12
    thresholds = None if is_output else rng.integers(-6, 7, size=n_out)
    return DenseLayer(weights=rng.integers(-8, 8, size=(n_out, n_in)), thresholds=thresholds, weight_kind="int",
                      weight_bits=4, input_encoding="uint", input_bits=3, acc_bits=12, folding=folding,
                      weight_storage=storage)


# folding: PE = 1 and SIMD = 1, SIMD = n_in, fully parallel, and folded both ways
@pytest.mark.parametrize("folding", [Folding(1, 1), Folding(1, 12), Folding(6, 12), Folding(2, 4), Folding(3, 6)])
# weight storage
@pytest.mark.parametrize("storage", ["rom", "bram"])
def test_dense_cycles_equal_model(folding, storage):
    layer = _fixed_layer(folding, storage=storage)
    x = np.random.default_rng(1).integers(0, 8, size=(4, 12))
    run = run_stream(layer, pack_vectors(x, 3), len(x))
    assert run.output_valid[0] - run.input_handshakes[0] == layer.latency_cycles
    assert np.diff(run.input_handshakes).tolist() == [layer.initiation_interval_cycles] * 3
    assert layer.compute_cycles == (12 // folding.simd) * (6 // folding.pe)
    np.testing.assert_array_equal(_outputs(layer, run), _expected(layer, x))


def test_dense_holds_output_while_ready_low():
    layer = _fixed_layer(Folding(2, 4))
    x = np.random.default_rng(2).integers(0, 8, size=(2, 12))
    first, second = pack_vectors(x, 3)
    observed = {}

    async def script(ctx, bench):
        ctx.set(layer.o.ready, 0)
        ctx.set(layer.i.payload, first)
        ctx.set(layer.i.valid, 1)
        await ctx.tick().until(layer.i.ready)
        ctx.set(layer.i.payload, second)
        samples = []
        for _ in range(3 * layer.latency_cycles):
            samples.append(await ctx.tick().sample(layer.i.ready, layer.o.valid, layer.o.payload, layer.label))
        observed["held"] = samples[-layer.latency_cycles:]
        observed["accepted_early"] = any(sample[2] for sample in samples)
        ctx.set(layer.o.ready, 1)
        payload, = await ctx.tick().sample(layer.o.payload).until(layer.o.valid)
        observed["first"] = payload
        await ctx.tick().until(layer.i.ready)
        ctx.set(layer.i.valid, 0)
        payload, = await ctx.tick().sample(layer.o.payload).until(layer.o.valid)
        observed["second"] = payload

    StreamBench(layer).simulate(script)
    expected = _expected(layer, x)
    assert not observed["accepted_early"]
    assert {(valid, payload) for _, _, _, valid, payload, _ in observed["held"]} == {(1, observed["first"])}
    assert unpack_words(observed["first"], 6, 12, signed=True) == expected[0].tolist()
    assert unpack_words(observed["second"], 6, 12, signed=True) == expected[1].tolist()


# reset: while computing, or while holding an output that was never taken
@pytest.mark.parametrize("reset_after_cycles", [2, 40])
def test_dense_reset_mid_stream(reset_after_cycles):
    layer = _fixed_layer(Folding(1, 4), is_output=False)
    rng = np.random.default_rng(3)
    stale, x = rng.integers(0, 8, size=(1, 12)), rng.integers(0, 8, size=(5, 12))
    runs = []

    async def script(ctx, bench):
        ctx.set(layer.i.payload, pack_vectors(stale, 3)[0])
        ctx.set(layer.i.valid, 1)
        await ctx.tick().until(layer.i.ready)
        await bench.idle(ctx, reset_after_cycles)
        await bench.reset(ctx)
        runs.append(await bench.run(ctx, pack_vectors(x, 3), len(x)))

    StreamBench(layer, input_gap=0.2, stall=0.2, seed=3).simulate(script)
    np.testing.assert_array_equal(_outputs(layer, runs[0]), _expected(layer, x))


def test_dense_acc_width_bound():
    # DESIGN: ⌈log2(n_in·2^(k−1) + 1)⌉ + 1 bits for k-bit signed weights and ±1 inputs.
    for n_in in (1, 3, 64, 100):
        for k in (2, 4, 8):
            bound = (n_in * 2 ** (k - 1)).bit_length() + 1
            weights = np.full((1, n_in), -(2 ** (k - 1)))
            args = dict(weights=weights, thresholds=None, weight_kind="int", weight_bits=k, input_encoding="binary",
                        input_bits=1, folding=Folding(1, 1))
            _unelaborated(DenseLayer(acc_bits=bound, **args))
            with pytest.raises(TangentcoreError, match=f"acc_bits {bound - 1} cannot hold .* use at least {bound} bits"):
                DenseLayer(acc_bits=bound - 1, **args)


def test_dense_rejects_bad_parameters():
    base = dict(weights=np.ones((4, 6), dtype=int), thresholds=np.zeros(4, dtype=int), input_encoding="binary",
                input_bits=1, acc_bits=4, folding=Folding(2, 3))
    with pytest.raises(TangentcoreError, match=r"PE must divide the layer's 4 outputs, not 3; choose one of \[1, 2, 4\]"):
        DenseLayer(**{**base, "folding": Folding(3, 3)})
    with pytest.raises(TangentcoreError, match=r"SIMD must divide the layer's 6 inputs, not 7"):
        DenseLayer(**{**base, "folding": Folding(2, 7)})
    with pytest.raises(TangentcoreError, match="binary weights must hold only -1 and \\+1"):
        DenseLayer(**{**base, "weights": np.zeros((4, 6), dtype=int)})
    with pytest.raises(TangentcoreError, match=r"int weights must hold only integers in \[-2, 1\]"):
        DenseLayer(**{**base, "weights": np.full((4, 6), 2), "weight_kind": "int", "weight_bits": 2})
    with pytest.raises(TangentcoreError, match="weight_bits must be 2 for ternary weights, not 3"):
        DenseLayer(**{**base, "weight_kind": "ternary", "weight_bits": 3})
    with pytest.raises(TangentcoreError, match=r"thresholds must lie in \[-8, 7\] to fit acc_bits 4"):
        DenseLayer(**{**base, "thresholds": np.array([0, 0, 0, 8])})
    with pytest.raises(TangentcoreError, match="input_encoding must be one of binary, uint, spikes, not 'float'"):
        DenseLayer(**{**base, "input_encoding": "float"})
    with pytest.raises(TangentcoreError, match="weight_storage must be one of auto, rom, bram, not 'flash'"):
        DenseLayer(**{**base, "weight_storage": "flash"})


def test_weight_storage_rule():
    assert choose_weight_storage(depth=32, row_bits=128) == "bram"
    assert choose_weight_storage(depth=31, row_bits=1024) == "rom"
    assert choose_weight_storage(depth=2048, row_bits=1) == "rom"
    assert choose_weight_storage(depth=4096, row_bits=9) == "bram"
    assert _unelaborated(_fixed_layer(Folding(1, 1))).weight_storage == "rom"  # 72 rows of 4 bits
    assert _unelaborated(_fixed_layer(Folding(1, 1), storage="bram")).weight_storage == "bram"
