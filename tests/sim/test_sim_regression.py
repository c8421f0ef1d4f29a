"""Randomized regression: random small networks co-simulated bit-exact on random vectors."""

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.sim.regression import KINDS, draw_cases, run_regression
from tangentcore.sim.testing import simulator_params


def test_draw_cases_cover_kinds_and_folds():
    cases = draw_cases(60, np.random.default_rng(0))
    assert {case.manifest.input.encoding for case in cases} == {"binary", "uint", "spikes"}
    assert {layer.weight_kind for case in cases for layer in case.manifest.layers} == {"binary", "ternary", "int"}
    assert {case.manifest.layers[-1].output for case in cases} == {"scores", "spike_count", "final_membrane",
                                                                     "max_membrane"}
    assert any(case.manifest.time_steps > 1 for case in cases)
    assert any(len(case.manifest.layers) == 1 for case in cases)
    assert any(len(case.manifest.layers) == 3 for case in cases)
    assert any(fold.pe > 1 and fold.simd > 1 for case in cases for fold in case.foldings)


def test_draw_cases_rejects_unknown_kind():
    with pytest.raises(TangentcoreError, match="network kinds must be among sign, dense-kbit, lif, not bogus"):
        draw_cases(2, np.random.default_rng(0), kinds=("sign", "bogus"))


def _assert_clean(results):
    for simulator, runs in results.items():
        for run in runs:
            assert not run.timed_out, simulator
            for unit in run.units:
                assert unit.mismatches == [], (simulator, unit.name, unit.mismatches[:3])
                assert unit.measured_latency_cycles == unit.model_latency_cycles, (simulator, unit.name)


@pytest.mark.parametrize("simulator", simulator_params())  # each available simulator
def test_regression_reduced(tmp_path, cosim_cache_dir, simulator):
    results = run_regression(8, (simulator,), tmp_path, seed=11, vectors=16, cache_dir=cosim_cache_dir)
    assert sum(len(run.units) for run in results[simulator]) == 8
    _assert_clean(results)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", simulator_params())  # each available simulator
def test_regression_full(tmp_path, cosim_cache_dir, simulator):
    results = run_regression(60, (simulator,), tmp_path, seed=12, vectors=32, cases_per_build=30,
                             kinds=tuple(KINDS), cache_dir=cosim_cache_dir)
    assert sum(run.vectors for run in results[simulator]) == 60 * 32
    _assert_clean(results)
