"""Whole network cores from manifests: outputs against ``sw.reference.forward``, cycles against the model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import DenseLayer, Folding, auto_folding
from tangentcore.hw.lif import LIFLayer
from tangentcore.hw.network import Network, parse_fold_spec, resolve_foldings
from tangentcore.hw.simulate import StreamBench, pack_vectors, run_stream, unpack_scores
from tangentcore.hw.timing import schedule
from tangentcore.manifest import random_manifest
from tangentcore.sw import reference


def _inputs(manifest, rng, count: int) -> np.ndarray:
    """Return ``count`` encoded samples: (count, n_in), or (count, T, n_in) spike trains."""
    size, bits = manifest.input.size, manifest.input.bits
    if manifest.is_spiking:
        return (rng.random((count, manifest.time_steps, size)) < 0.5).astype(np.int64)
    return rng.integers(0, 1 << bits, size=(count, size))


def _payloads(network: Network, x: np.ndarray) -> list[int]:
    return pack_vectors(x.reshape(-1, network.input_size), network.input_bits)


def _check_outputs(network: Network, manifest, x: np.ndarray, run) -> None:
    expected = reference.forward(manifest, x)
    decoded = [unpack_scores(network, payload) for payload in run.payloads]
    np.testing.assert_array_equal(np.array([scores for _, scores in decoded]), expected["scores"])
    assert [label for label, _ in decoded] == expected["predictions"].tolist()


DENSE_CASES = [
    # (weight kind, input encoding and bits, sizes)
    ("binary", "binary", 1, [12, 8, 4]),
    ("ternary", "uint", 3, [10, 6, 5, 3]),
    ("int", "binary", 1, [9, 6, 3]),
]
LIF_CASES = [
    # (output, reset, sizes)
    ("spike_count", "subtract", [8, 6, 4]),
    ("final_membrane", "zero", [6, 4, 4, 2]),
    ("max_membrane", "subtract", [8, 4, 3]),
]
FOLDS = [
    # fully parallel, fully serial, and folded (a different PE and SIMD per layer)
    (1 << 10, 1 << 10),
    (1, 1),
    (2, 3),
]


def _manifest(case, kind: str, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "dense":
        weight_kind, encoding, bits, sizes = case
        return random_manifest(rng, sizes, weight_kind=weight_kind, encoding=encoding, bits=bits)
    output, reset, sizes = case
    return random_manifest(rng, sizes, kind="lif", weight_kind="int", weight_bits=3, time_steps=3, output=output,
                           reset=reset, membrane_bits=5, leak_shift=1)


def _fold_for(manifest, fold: tuple[int, int]) -> list[Folding]:
    """Return per layer the largest PE and SIMD up to ``fold`` that divide the layer."""
    return [auto_folding(layer.in_features, layer.out_features, max_pe=fold[0], max_simd=fold[1])
            for layer in manifest.layers]


# network: dense cases and LIF cases
@pytest.mark.parametrize("kind,case", [("dense", case) for case in DENSE_CASES] + [("lif", case) for case in LIF_CASES])
# folding
@pytest.mark.parametrize("fold", FOLDS)
def test_network_matches_reference_and_model(kind, case, fold):
    manifest = _manifest(case, kind, seed=11)
    network = Network.from_manifest(manifest, _fold_for(manifest, fold))
    x = _inputs(manifest, np.random.default_rng(12), 4)

    # Input always valid and output always ready: every handshake cycle equals the model's.
    run = run_stream(network, _payloads(network, x), len(x))
    _check_outputs(network, manifest, x, run)
    model = schedule(network.stage_timings, len(x) * network.time_steps)
    assert run.input_handshakes == model.input_handshakes
    assert run.output_valid == model.output_valid
    assert run.output_handshakes == model.output_handshakes
    assert run.output_valid[0] - run.input_handshakes[0] == network.latency_cycles
    assert run.output_valid[-1] - run.output_valid[-2] == network.initiation_interval_cycles

    # Random input gaps and back-pressure change the timing, never the outputs.
    stalled = run_stream(network, _payloads(network, x), len(x), input_gap=0.4, stall=0.6, seed=13)
    _check_outputs(network, manifest, x, stalled)


# network: dense or LIF
@pytest.mark.parametrize("kind,case", [("dense", DENSE_CASES[1]), ("lif", LIF_CASES[0])])
def test_network_backpressure_fills_pipeline(kind, case):
    manifest = _manifest(case, kind, seed=21)
    network = Network.from_manifest(manifest, _fold_for(manifest, (2, 2)))
    x = _inputs(manifest, np.random.default_rng(22), 5)
    blocked_cycles = 20 * network.latency_cycles
    sink_ready = lambda cycle: cycle >= blocked_cycles  # noqa: E731

    run = run_stream(network, _payloads(network, x), len(x), sink_ready=sink_ready)
    _check_outputs(network, manifest, x, run)
    model = schedule(network.stage_timings, len(x) * network.time_steps, sink_ready=sink_ready)
    assert run.input_handshakes == model.input_handshakes
    assert run.output_handshakes == model.output_handshakes
    # While the consumer blocks, each layer holds one vector and the input stream stops.
    accepted_while_blocked = sum(cycle < blocked_cycles for cycle in run.input_handshakes)
    assert accepted_while_blocked < len(x) * network.time_steps
    assert run.output_valid[0] < blocked_cycles <= run.output_handshakes[0]


# network: dense or LIF
@pytest.mark.parametrize("kind,case", [("dense", DENSE_CASES[0]), ("lif", LIF_CASES[2])])
def test_network_reset_mid_stream(kind, case):
    manifest = _manifest(case, kind, seed=31)
    network = Network.from_manifest(manifest, _fold_for(manifest, (2, 2)))
    rng = np.random.default_rng(32)
    stale, x = _inputs(manifest, rng, 2), _inputs(manifest, rng, 3)
    runs = []

    async def script(ctx, bench):
        # Half of the stale vectors go in, nothing comes out, then reset.
        stale_payloads = _payloads(network, stale)
        await bench.run(ctx, stale_payloads[: len(stale_payloads) // 2 + 1], 0)
        await bench.idle(ctx, network.latency_cycles // 2)
        await bench.reset(ctx)
        runs.append(await bench.run(ctx, _payloads(network, x), len(x)))

    StreamBench(network, input_gap=0.2, stall=0.3, seed=33).simulate(script)
    _check_outputs(network, manifest, x, runs[0])


def test_network_checks_widths_against_manifest():
    manifest = random_manifest(np.random.default_rng(41), [8, 4, 2], weight_kind="int", weight_bits=4)
    narrow = dataclasses.replace(manifest.layers[0], acc_bits=5)
    manifest.layers[0] = narrow
    with pytest.raises(TangentcoreError, match=r"layer 'layer0': acc_bits 5 cannot hold the worst-case accumulator "
                                               r"range \[-64, 64\] of 8 int weights times binary inputs; use at least 8 bits"):
        Network.from_manifest(manifest)


def test_network_rejects_inconsistent_layers():
    rng = np.random.default_rng(42)
    dense = DenseLayer(weights=np.ones((3, 4), dtype=int), thresholds=None, input_encoding="binary", input_bits=1,
                       acc_bits=4, folding=Folding(1, 1))
    hidden = DenseLayer(weights=np.ones((5, 4), dtype=int), thresholds=np.zeros(5, dtype=int),
                        input_encoding="binary", input_bits=1, acc_bits=4, folding=Folding(1, 1))
    lif = LIFLayer(weights=rng.integers(-1, 2, size=(4, 4)), threshold=np.ones(4, dtype=int), leak_shift=1,
                   reset="zero", membrane_bits=4, time_steps=2, output="spikes", weight_kind="ternary", weight_bits=2,
                   acc_bits=4, folding=Folding(1, 1))
    for layer in (dense, hidden, lif):
        layer._MustUse__silence = True  # built only to be rejected
    with pytest.raises(TangentcoreError, match="layer 0 must be an output layer"):
        Network([hidden])
    with pytest.raises(TangentcoreError, match="layer 1 takes 4 inputs of 1 bits, but layer 0 gives 5 bits"):
        Network([hidden, dense])
    with pytest.raises(TangentcoreError, match="all dense or all LIF layers"):
        Network([lif, dense], time_steps=2)
    with pytest.raises(TangentcoreError, match="layer 0 has time_steps 2, but the network has 3"):
        Network([lif, dense], time_steps=3)


def test_fold_spec_parsing_and_resolution():
    manifest = random_manifest(np.random.default_rng(43), [64, 64, 10])
    assert parse_fold_spec("auto") is None
    assert parse_fold_spec("8,16") == [(8, 16)]
    assert parse_fold_spec("8,16:5,64") == [(8, 16), (5, 64)]
    assert resolve_foldings(manifest, parse_fold_spec("8,16:5,64")) == [Folding(8, 16), Folding(5, 64)]
    assert resolve_foldings(manifest, parse_fold_spec("100,100")) == [Folding(64, 64), Folding(10, 64)]
    with pytest.raises(TangentcoreError, match="fold must be 'auto', 'PE,SIMD' or one 'PE,SIMD' per layer"):
        parse_fold_spec("8x16")
    with pytest.raises(TangentcoreError, match="fold PE and SIMD must be positive integers, not '0,4'"):
        parse_fold_spec("0,4")
    with pytest.raises(TangentcoreError, match="fold lists 3 PE,SIMD pairs, but the network has 2 layers"):
        resolve_foldings(manifest, parse_fold_spec("1,1:1,1:1,1"))
    with pytest.raises(TangentcoreError, match=r"layer 1 \(layer1\): PE must divide the layer's 10 outputs, not 8"):
        resolve_foldings(manifest, parse_fold_spec("8,16"))
