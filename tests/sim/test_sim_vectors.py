"""Stimulus packing, output decoding and expected outputs, without a simulator."""

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.manifest import random_manifest
from tangentcore.sim.vectors import (as_time_major, decode_output, expected_outputs, pack_rows, random_inputs,
                                     unpack_bits)
from tangentcore.sim.runner import with_score_sign
from tangentcore.sw import reference


def test_pack_rows_places_value_j_at_bits_j():
    rows = np.array([[1, 2, 3], [0, 0, 7]])
    assert pack_rows(rows, 3) == [1 | 2 << 3 | 3 << 6, 7 << 6]


def test_unpack_bits_low_bit_first():
    assert unpack_bits(0b1101, 5) == [1, 0, 1, 1, 0]


def test_decode_output_signed_scores():
    port = {"label_bits": 2, "score_bits": 4, "n_classes": 3}
    scores = [-8, 7, -1]
    payload = 2 | sum((score & 0xF) << (2 + 4 * j) for j, score in enumerate(scores))
    assert decode_output(payload, port) == (2, scores)


def test_decode_output_unsigned_counts():
    port = {"label_bits": 1, "score_bits": 3, "n_classes": 2, "score_signed": False}
    payload = 1 | 7 << 1 | 5 << 4
    assert decode_output(payload, port) == (1, [7, 5])


def test_as_time_major_adds_time_axis():
    manifest = random_manifest(np.random.default_rng(0), [6, 3], encoding="uint", bits=2)
    inputs = np.arange(12).reshape(2, 6) % 4
    assert as_time_major(manifest, inputs).shape == (2, 1, 6)


@pytest.mark.parametrize(
    # shape and value range of rejected inputs
    "inputs",
    [np.zeros((2, 5), dtype=int), np.zeros((0, 6), dtype=int), np.full((2, 6), 4), np.zeros((2, 2, 6), dtype=int)],
    ids=["wrong-width", "empty", "out-of-range", "wrong-time-steps"],
)
def test_as_time_major_rejects(inputs):
    manifest = random_manifest(np.random.default_rng(0), [6, 3], encoding="uint", bits=2)
    with pytest.raises(TangentcoreError, match="co-simulation inputs must"):
        as_time_major(manifest, inputs)


def test_expected_outputs_match_reference():
    rng = np.random.default_rng(1)
    manifest = random_manifest(rng, [10, 7, 5, 3], encoding="uint", bits=3)
    inputs = random_inputs(manifest, 20, rng)
    expected = expected_outputs(manifest, inputs)
    result = reference.forward(manifest, inputs[:, 0, :])
    assert np.array_equal(expected.scores, result["scores"])
    assert np.array_equal(expected.labels, result["predictions"])
    assert [tap.shape for tap in expected.taps] == [(20, 1, 7), (20, 1, 5)]
    assert np.array_equal(expected.taps[1][:, 0, :], result["hidden"][1])


def test_random_inputs_start_with_corners():
    manifest = random_manifest(np.random.default_rng(0), [6, 3], encoding="uint", bits=3)
    inputs = random_inputs(manifest, 5, np.random.default_rng(2))
    assert inputs.shape == (5, 1, 6)
    assert np.all(inputs[0] == 0)
    assert np.all(inputs[1] == 7)


def test_lif_vectors_have_time_axis():
    rng = np.random.default_rng(3)
    manifest = random_manifest(rng, [6, 5, 3], kind="lif", weight_kind="int", weight_bits=3, time_steps=4)
    inputs = random_inputs(manifest, 5, rng)
    expected = expected_outputs(manifest, inputs)
    result = reference.forward(manifest, inputs)
    assert inputs.shape == (5, 4, 6)
    assert set(np.unique(inputs)) <= {0, 1}
    assert np.array_equal(expected.scores, result["scores"])
    assert [tap.shape for tap in expected.taps] == [(5, 4, 5)]
    assert np.array_equal(expected.taps[0], result["hidden"][0])


@pytest.mark.parametrize(
    # the output layer's scores and whether the core's score field is signed
    ("kind", "output", "signed"),
    [("dense", None, True), ("lif", "spike_count", False), ("lif", "final_membrane", True)],
)
def test_score_sign_from_manifest(kind, output, signed):
    options = {} if output is None else {"kind": kind, "weight_kind": "int", "weight_bits": 2, "output": output}
    manifest = random_manifest(np.random.default_rng(0), [4, 2], **options)
    description = {"ports": {"o": {"label_bits": 1, "score_bits": 3, "n_classes": 2}}}
    assert with_score_sign(description, manifest)["ports"]["o"]["score_signed"] is signed
    assert "score_signed" not in description["ports"]["o"]
