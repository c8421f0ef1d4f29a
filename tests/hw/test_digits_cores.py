"""Digits-sized cores (64-64-10) at three foldings: outputs and cycles in Amaranth's simulator (slow)."""

import numpy as np
import pytest

from tangentcore.hw.network import Network, parse_fold_spec, resolve_foldings
from tangentcore.hw.simulate import pack_vectors, run_stream, unpack_scores
from tangentcore.hw.timing import schedule
from tangentcore.manifest import random_manifest
from tangentcore.sw import reference


# network: the digits sign MLP's shape with 4-bit inputs, or an LIF network of the same shape
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dense", "lif"])
# fold: fully parallel, and two folded
@pytest.mark.parametrize("fold", ["64,64:10,64", "8,16:5,64", "4,8:2,8"])
def test_digits_core_cycles_equal_model(kind, fold):
    rng = np.random.default_rng(81)
    if kind == "lif":
        manifest = random_manifest(rng, [64, 64, 10], kind="lif", weight_kind="int", weight_bits=4, time_steps=8,
                                   membrane_bits=8)
        x = (rng.random((3, 8, 64)) < 0.3).astype(np.int64)
    else:
        manifest = random_manifest(rng, [64, 64, 10], encoding="uint", bits=4)
        x = rng.integers(0, 16, size=(3, 64))
    network = Network.from_manifest(manifest, resolve_foldings(manifest, parse_fold_spec(fold)))
    run = run_stream(network, pack_vectors(x.reshape(-1, 64), manifest.input.bits), len(x))
    scores = np.array([unpack_scores(network, payload)[1] for payload in run.payloads])
    np.testing.assert_array_equal(scores, reference.forward(manifest, x)["scores"])
    model = schedule(network.stage_timings, len(x) * manifest.time_steps)
    assert run.output_valid == model.output_valid
    assert run.output_valid[0] - run.input_handshakes[0] == network.latency_cycles
    assert run.output_valid[-1] - run.output_valid[-2] == network.initiation_interval_cycles
