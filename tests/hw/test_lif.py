"""The folded LIF layer in Amaranth's simulator against ``sw.reference.lif_layer``, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import Folding
from tangentcore.hw.lif import LIFLayer
from tangentcore.hw.simulate import StreamBench, pack_vectors, run_stream, unpack_words
from tangentcore.sw.reference import accumulator_range, argmax_lowest, lif_layer, signed_width, weight_range


def _make_layer(weights, threshold, *, weight_kind="int", weight_bits=4, folding=None, **lif) -> LIFLayer:
    n_out, n_in = weights.shape
    lo, hi = accumulator_range(n_in, *weight_range(weight_kind, weight_bits), 0, 1)
    return LIFLayer(weights=weights, threshold=threshold, weight_kind=weight_kind, weight_bits=weight_bits,
                    acc_bits=signed_width(lo, hi), folding=folding or Folding(1, 1), **lif)


def _expected(layer: LIFLayer, spikes: np.ndarray) -> dict:
    return lif_layer(layer.weights, spikes, leak_shift=layer.leak_shift, threshold=layer.threshold,
                     membrane_bits=layer.membrane_bits, reset=layer.reset)


def _simulate(layer: LIFLayer, spikes: np.ndarray, **bench):
    """Run ``spikes`` (batch, T, n_in) through ``layer``; return its outputs shaped like the reference's."""
    batch, steps, n_in = spikes.shape
    n_outputs = batch * steps if not layer.is_output else batch
    run = run_stream(layer, pack_vectors(spikes.reshape(-1, n_in), 1), n_outputs, **bench)
    if layer.is_output:
        scores = np.array([unpack_words(p, layer.n_out, layer.score_bits, signed=layer.score_signed)
                           for p in run.payloads])
        return scores, run
    bits = np.array([unpack_words(p, layer.n_out, 1, signed=False) for p in run.payloads])
    return bits.reshape(batch, steps, layer.n_out), run


def _check(layer: LIFLayer, spikes: np.ndarray, **bench) -> dict:
    expected = _expected(layer, spikes)
    actual, run = _simulate(layer, spikes, **bench)
    if layer.is_output:
        np.testing.assert_array_equal(actual, expected[layer.output])
        assert run.labels == argmax_lowest(expected[layer.output]).tolist()
    else:
        np.testing.assert_array_equal(actual, expected["spikes"])
    return expected


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data(), n_in=st.integers(1, 9), n_out=st.integers(1, 5), steps=st.integers(1, 5),
       weight=st.sampled_from([("binary", 1), ("ternary", 2), ("int", 3), ("int", 6)]),
       leak_shift=st.integers(0, 4), reset=st.sampled_from(["subtract", "zero"]), membrane_bits=st.integers(3, 8),
       output=st.sampled_from(["spikes", "spike_count", "final_membrane", "max_membrane"]),
       storage=st.sampled_from(["rom", "bram"]), seed=st.integers(0, 2**16))
def test_lif_random_layers_match_reference(data, n_in, n_out, steps, weight, leak_shift, reset, membrane_bits,
                                           output, storage, seed):
    rng = np.random.default_rng(seed)
    weight_kind, weight_bits = weight
    low, high = weight_range(weight_kind, weight_bits)
    weights = rng.integers(low, high + 1, size=(n_out, n_in))
    if weight_kind == "binary":
        weights = np.where(weights >= 0, 1, -1)
    threshold = rng.integers(1, (1 << (membrane_bits - 1)), size=n_out)
    folding = Folding(pe=data.draw(st.sampled_from(_divisors(n_out))), simd=data.draw(st.sampled_from(_divisors(n_in))))
    layer = _make_layer(weights, threshold, weight_kind=weight_kind, weight_bits=weight_bits, folding=folding,
                        leak_shift=leak_shift, reset=reset, membrane_bits=membrane_bits, time_steps=steps,
                        output=output, weight_storage=storage)
    spikes = (rng.random((3, steps, n_in)) < rng.uniform(0.2, 0.9)).astype(np.int64)
    _check(layer, spikes, input_gap=0.3, stall=0.3, seed=seed)


# reset mode
@pytest.mark.parametrize("reset", ["subtract", "zero"])
# output: hidden spikes or one of the class scores
@pytest.mark.parametrize("output", ["spikes", "spike_count", "final_membrane", "max_membrane"])
def test_lif_saturates_at_both_ends(reset, output):
    # Four neurons: two drive the membrane up into the top of a 4-bit range, two down into the bottom.
    membrane_bits, steps = 4, 6
    weights = np.array([[7] * 4, [7, 7, 0, 0], [-8] * 4, [-8, 0, -8, 0]])
    threshold = np.array([7, 1, 7, 3])
    layer = _make_layer(weights, threshold, folding=Folding(2, 2), leak_shift=3, reset=reset,
                        membrane_bits=membrane_bits, time_steps=steps, output=output)
    spikes = np.ones((2, steps, 4), dtype=np.int64)
    spikes[1, ::2] = 0
    expected = _check(layer, spikes)
    assert expected["max_membrane"].max() == 7
    assert expected["membrane"].min() == -8


# time steps, with the degenerate T = 1
@pytest.mark.parametrize("steps", [1, 4])
# folding: PE = 1 and SIMD = 1, SIMD = n_in, fully parallel, folded
@pytest.mark.parametrize("folding", [Folding(1, 1), Folding(1, 6), Folding(4, 6), Folding(2, 3)])
# output: a hidden layer emits every step, an output layer once per sample
@pytest.mark.parametrize("output", ["spikes", "spike_count"])
def test_lif_cycles_equal_model(steps, folding, output):
    rng = np.random.default_rng(5)
    layer = _make_layer(rng.integers(-4, 4, size=(4, 6)), rng.integers(1, 20, size=4), folding=folding,
                        leak_shift=1, reset="subtract", membrane_bits=6, time_steps=steps, output=output)
    spikes = rng.integers(0, 2, size=(3, steps, 6))
    _, run = _simulate(layer, spikes)
    assert layer.compute_cycles == (6 // folding.simd) * (4 // folding.pe)
    first_emitting_input = 0 if output == "spikes" else steps - 1
    assert run.output_valid[0] - run.input_handshakes[first_emitting_input] == layer.latency_cycles
    intervals = np.diff(run.input_handshakes).tolist()
    for index, interval in enumerate(intervals):
        emits = output == "spikes" or index % steps == steps - 1
        assert interval == (layer.initiation_interval_cycles if emits else layer.latency_cycles), index


# reset: after the first step of a sample, or after all but the last
@pytest.mark.parametrize("steps_before_reset", [1, 3])
def test_lif_reset_starts_new_sample(steps_before_reset):
    rng = np.random.default_rng(6)
    steps = 4
    layer = _make_layer(rng.integers(-8, 8, size=(3, 5)), rng.integers(1, 12, size=3), folding=Folding(1, 5),
                        leak_shift=2, reset="subtract", membrane_bits=6, time_steps=steps, output="max_membrane")
    stale = np.ones((steps_before_reset, 5), dtype=np.int64)
    spikes = rng.integers(0, 2, size=(3, steps, 5))
    runs = []

    async def script(ctx, bench):
        await bench.run(ctx, pack_vectors(stale, 1), 0)
        await bench.idle(ctx, 2 * layer.latency_cycles)
        await bench.reset(ctx)
        runs.append(await bench.run(ctx, pack_vectors(spikes.reshape(-1, 5), 1), len(spikes)))

    StreamBench(layer, input_gap=0.2, stall=0.2, seed=6).simulate(script)
    actual = np.array([unpack_words(p, 3, layer.score_bits, signed=layer.score_signed) for p in runs[0].payloads])
    np.testing.assert_array_equal(actual, _expected(layer, spikes)["max_membrane"])


def test_lif_spike_count_score_bits():
    # T = 8 needs 4 unsigned bits of count, so a full count reads as 8, not as −8.
    layer = _make_layer(np.full((2, 3), 7), np.array([1, 1]), leak_shift=0, reset="zero", membrane_bits=5,
                        time_steps=8, output="spike_count")
    assert (layer.score_bits, layer.score_signed) == (4, False)
    spikes = np.ones((1, 8, 3), dtype=np.int64)
    assert _check(layer, spikes)["spike_count"].tolist() == [[8, 8]]


def test_lif_rejects_bad_parameters():
    weights = np.ones((2, 3), dtype=int)
    base = dict(weights=weights, threshold=np.array([1, 7]), leak_shift=1, reset="zero", membrane_bits=4,
                time_steps=2, output="spikes", weight_kind="ternary", weight_bits=2, acc_bits=4,
                folding=Folding(1, 1))
    with pytest.raises(TangentcoreError, match=r"threshold must lie in \[1, 7\] for membrane_bits 4, not 0..7"):
        LIFLayer(**{**base, "threshold": np.array([0, 7])})
    with pytest.raises(TangentcoreError, match=r"threshold must lie in \[1, 7\] for membrane_bits 4, not 1..8"):
        LIFLayer(**{**base, "threshold": np.array([1, 8])})
    with pytest.raises(TangentcoreError, match="LIF reset must be one of subtract, zero, not 'hold'"):
        LIFLayer(**{**base, "reset": "hold"})
    with pytest.raises(TangentcoreError, match="LIF output must be one of spikes, spike_count"):
        LIFLayer(**{**base, "output": "rate"})
    with pytest.raises(TangentcoreError, match="membrane_bits must be an integer ≥ 2, not 1"):
        LIFLayer(**{**base, "membrane_bits": 1})
    with pytest.raises(TangentcoreError, match="time_steps must be an integer ≥ 1, not 0"):
        LIFLayer(**{**base, "time_steps": 0})
    with pytest.raises(TangentcoreError, match="leak_shift must be an integer ≥ 0, not -1"):
        LIFLayer(**{**base, "leak_shift": -1})
    with pytest.raises(TangentcoreError, match=r"acc_bits 2 cannot hold the worst-case accumulator range \[-3, 3\]"):
        LIFLayer(**{**base, "acc_bits": 2})
