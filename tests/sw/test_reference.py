"""The NumPy integer reference against naive per-neuron, per-step Python loops."""

from __future__ import annotations

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.manifest import random_manifest
from tangentcore.sw import reference


def _naive_dense(manifest, sample) -> tuple[list[int], list[list[int]]]:
    """Evaluate one sample of a dense network with Python integers, one neuron at a time."""
    values = [int(v) for v in sample]
    encoding = manifest.input.encoding
    hidden = []
    for layer in manifest.layers:
        weights = manifest.weights(layer).tolist()
        inputs = [2 * v - 1 for v in values] if encoding == "binary" else values
        sums = []
        for row in weights:
            total = 0
            for w, x in zip(row, inputs):
                total += w * x
            sums.append(total)
        if layer.output == "scores":
            return sums, hidden
        thresholds = manifest.thresholds(layer).tolist()
        values = [1 if total >= threshold else 0 for total, threshold in zip(sums, thresholds)]
        hidden.append(values)
        encoding = "binary"
    raise AssertionError("no output layer")


def _naive_lif(manifest, trains) -> tuple[dict, list[list[list[int]]], dict]:
    """Evaluate one sample's spike trains (T, n_in) with Python integers, per neuron and per step.

    Returns the output layer's three score kinds, the hidden spike trains and
    counts of the corner cases that occurred (ties ``v == θ``, saturation,
    negative membranes being leaked).
    """
    events = {"tie": 0, "saturated": 0, "negative_leak": 0}
    spikes_in = [[int(s) for s in row] for row in trains]
    hidden = []
    for layer in manifest.layers:
        weights = manifest.weights(layer).tolist()
        thresholds = manifest.thresholds(layer).tolist()
        low, high = -2 ** (layer.membrane_bits - 1), 2 ** (layer.membrane_bits - 1) - 1
        spikes_out = [[0] * layer.out_features for _ in spikes_in]
        counts, finals, maxima = [], [], []
        for j in range(layer.out_features):
            v, count, top = 0, 0, low
            for t, row in enumerate(spikes_in):
                current = sum(w * s for w, s in zip(weights[j], row))
                if v < 0 and layer.leak_shift > 0:
                    events["negative_leak"] += 1
                # Python's // floors, which is what an arithmetic right shift does to negatives.
                v = v - v // 2 ** layer.leak_shift + current
                if v < low or v > high:
                    events["saturated"] += 1
                v = min(max(v, low), high)
                top = max(top, v)
                if v == thresholds[j]:
                    events["tie"] += 1
                if v >= thresholds[j]:
                    spikes_out[t][j] = 1
                    count += 1
                    v = v - thresholds[j] if layer.reset == "subtract" else 0
            counts.append(count)
            finals.append(v)
            maxima.append(top)
        if layer.output == "spikes":
            hidden.append(spikes_out)
        spikes_in = spikes_out
    scores = {"spike_count": counts, "final_membrane": finals, "max_membrane": maxima}
    return scores, hidden, events


# weight kind and bits, then input encoding and bits
DENSE_CASES = [
    ("binary", 1, "binary", 1),
    ("binary", 1, "uint", 4),
    ("ternary", 2, "binary", 1),
    ("ternary", 2, "uint", 2),
    ("int", 2, "binary", 1),
    ("int", 4, "uint", 4),
    ("int", 8, "uint", 8),
]


@pytest.mark.parametrize("weight_kind, weight_bits, encoding, bits", DENSE_CASES)
def test_dense_matches_naive_loops(weight_kind, weight_bits, encoding, bits):
    rng = np.random.default_rng(10)
    manifest = random_manifest(rng, [13, 9, 7, 4], weight_kind=weight_kind, weight_bits=weight_bits,
                               encoding=encoding, bits=bits)
    x = rng.integers(0, 1 << bits, size=(40, 13))
    result = reference.forward(manifest, x)
    for row, sample in enumerate(x):
        scores, hidden = _naive_dense(manifest, sample)
        assert result["scores"][row].tolist() == scores
        for layer_out, expected in zip(result["hidden"], hidden):
            assert layer_out[row].tolist() == expected
    assert result["scores"].dtype == np.int64


def test_dense_thresholds_produce_ties():
    """The random thresholds make some hidden sums land exactly on their threshold."""
    rng = np.random.default_rng(11)
    manifest = random_manifest(rng, [9, 16, 3], weight_kind="ternary")
    x = rng.integers(0, 2, size=(200, 9))
    acc = reference.layer_accumulators(manifest.weights(manifest.layers[0]), x, "binary")
    assert np.any(acc == manifest.thresholds(manifest.layers[0])[None, :])


# reset mode, leak shift, LIF score output and weight kind with bits
LIF_CASES = [
    ("subtract", 1, "spike_count", "int", 4),
    ("subtract", 3, "max_membrane", "int", 6),
    ("zero", 2, "final_membrane", "ternary", 2),
    ("zero", 0, "spike_count", "binary", 1),
    ("subtract", 5, "final_membrane", "int", 3),
]


@pytest.mark.parametrize("reset, leak_shift, output, weight_kind, weight_bits", LIF_CASES)
def test_lif_matches_naive_loops(reset, leak_shift, output, weight_kind, weight_bits):
    rng = np.random.default_rng(12)
    manifest = random_manifest(rng, [12, 10, 5], kind="lif", weight_kind=weight_kind, weight_bits=weight_bits,
                               time_steps=9, leak_shift=leak_shift, reset=reset, membrane_bits=6, output=output)
    x = (rng.random((30, 9, 12)) < 0.4).astype(np.uint8)
    result = reference.forward(manifest, x)
    for row, trains in enumerate(x):
        scores, hidden, _ = _naive_lif(manifest, trains)
        assert result["scores"][row].tolist() == scores[output]
        assert result["hidden"][0][row].tolist() == hidden[0]
    assert result["hidden"][0].shape == (30, 9, 10)
    assert result["output_spikes"].shape == (30, 9, 5)


def test_lif_random_manifests_reach_corner_cases():
    """Random LIF manifests exercise ties, saturation and the leak of negative membranes."""
    rng = np.random.default_rng(13)
    totals = {"tie": 0, "saturated": 0, "negative_leak": 0}
    for _ in range(5):
        manifest = random_manifest(rng, [16, 12, 4], kind="lif", weight_kind="int", weight_bits=4, time_steps=8)
        trains = (rng.random((8, 16)) < 0.5).astype(np.uint8)
        _, _, events = _naive_lif(manifest, trains)
        for key, count in events.items():
            totals[key] += count
    for key, count in totals.items():
        assert count > 0, key


def test_lif_output_traces_match_scores():
    rng = np.random.default_rng(14)
    manifest = random_manifest(rng, [8, 6, 3], kind="lif", time_steps=7, output="spike_count")
    x = (rng.random((20, 7, 8)) < 0.5).astype(np.uint8)
    result = reference.forward(manifest, x)
    np.testing.assert_array_equal(result["output_spikes"].sum(axis=1), result["scores"])
    np.testing.assert_array_equal(result["predictions"], reference.argmax_lowest(result["scores"]))


def test_shift_leak_floors_negatives():
    v = np.array([-5, -1, 5, 0], dtype=np.int64)
    leaked = reference.lif_integrate(v, np.zeros_like(v), leak_shift=1, membrane_bits=8)
    # -5 >> 1 = -3 (floor of -2.5), so -5 - (-3) = -2; -1 >> 1 = -1, so -1 drifts to 0.
    assert leaked.tolist() == [-2, 0, 3, 0]


def test_argmax_ties_go_lowest():
    scores = np.array([[3, 7, 7, 1], [0, 0, 0, 0], [-2, -5, -2, -9]])
    assert reference.argmax_lowest(scores).tolist() == [1, 0, 0]


def test_single_sample_without_batch_axis():
    rng = np.random.default_rng(15)
    dense = random_manifest(rng, [5, 3])
    lif = random_manifest(rng, [5, 3], kind="lif", time_steps=4)
    assert reference.forward(dense, np.ones(5, dtype=np.uint8))["scores"].shape == (1, 3)
    assert reference.forward(lif, np.ones((4, 5), dtype=np.uint8))["scores"].shape == (1, 3)


# network kind and the bad input with the error fragment it must raise
BAD_INPUTS = [
    ("dense", np.zeros((2, 6), dtype=np.uint8), r"must have shape \(batch, 5\), not \(2, 6\)"),
    ("dense", np.full((2, 5), 2), r"must lie in \[0, 1\] for binary encoding, but hold 2 to 2"),
    ("dense", np.zeros((2, 5), dtype=np.float32), "must be integers, not float32"),
    ("lif", np.zeros((2, 5), dtype=np.uint8), r"must have shape \(batch, 4, 5\), not \(1, 2, 5\)"),
    ("lif", -np.ones((2, 4, 5), dtype=np.int64), r"must lie in \[0, 1\] for spikes encoding"),
]


@pytest.mark.parametrize("kind, x, message", BAD_INPUTS)
def test_forward_rejects_bad_inputs(kind, x, message):
    rng = np.random.default_rng(16)
    manifest = random_manifest(rng, [5, 3], kind=kind, time_steps=4 if kind == "lif" else None)
    with pytest.raises(TangentcoreError, match=message):
        reference.forward(manifest, x)
