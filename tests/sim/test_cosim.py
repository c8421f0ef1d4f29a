"""Co-simulation of generated cores: bit-exact runs, simulator agreement, planted faults."""

import dataclasses
import json

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.hw.generate import generate_core
from tangentcore.manifest import random_manifest
from tangentcore.sim.runner import (SIMULATORS, default_simulators, run_cosim, simulate_units, simulator_missing,
                                    unit_for_core)
from tangentcore.sim.testing import simulator_params
from tangentcore.sim.vectors import expected_outputs, random_inputs


def _network(seed: int, sizes=(12, 8, 6, 4), **options):
    rng = np.random.default_rng(seed)
    options.setdefault("encoding", "uint" if options.get("kind") != "lif" else None)
    options.setdefault("bits", 3 if options["encoding"] == "uint" else 1)
    manifest = random_manifest(rng, list(sizes), name=f"net{seed}", **options)
    return manifest, random_inputs(manifest, 40, rng)


CORES = {
    "uint3-folded": ({"encoding": "uint", "bits": 3}, (2, 2)),
    "binary-auto": ({"encoding": "binary"}, None),
    "int4-weights": ({"weight_kind": "int", "weight_bits": 4, "encoding": "uint", "bits": 2}, (2, 2)),
    "lif-max-membrane": ({"kind": "lif", "weight_kind": "int", "weight_bits": 3, "time_steps": 3,
                          "output": "max_membrane"}, (2, 2)),
}


def _core_params() -> list:
    """Return (simulator, core) cases; Verilator leaves out the binary-auto core by default to save a build."""
    params = []
    for simulator in simulator_params():
        for name in CORES:
            marks = list(simulator.marks)
            if simulator.values[0] == "verilator" and name == "binary-auto":
                marks.append(pytest.mark.slow)
            params.append(pytest.param(simulator.values[0], name, marks=marks, id=f"{name}-{simulator.id}"))
    return params


# Axes: each available simulator; the core (input encoding and bits, weight kind, LIF or dense, folding).
@pytest.mark.parametrize(("simulator", "core"), _core_params())
def test_core_bit_exact(cosim, simulator, core):
    options, fold = CORES[core]
    manifest, inputs = _network(3, **options)
    result = cosim(manifest, inputs, simulators=(simulator,), fold=fold)[simulator]
    unit = result.units[0]
    assert result.vectors == 40
    assert unit.outputs_compared == 40 * (4 + 1) + 40 * manifest.time_steps * (8 + 6)
    assert unit.taps_compared == ["layer0", "layer1"]
    assert unit.measured_latency_cycles == unit.model_latency_cycles
    assert unit.measured_interval_cycles == unit.model_interval_cycles
    assert result.waves_path is None


def test_simulators_agree(tmp_path, cosim_cache_dir):
    for simulator in SIMULATORS:
        if simulator_missing(simulator):
            pytest.skip(simulator_missing(simulator))
    manifest, inputs = _network(4, sizes=(9, 6, 3), bits=2)
    core = generate_core(manifest, tmp_path / "core", fold=(3, 3))
    observed = {}
    for simulator in SIMULATORS:
        result = run_cosim(core, manifest, inputs, simulator, tmp_path, seed=7, cache_dir=cosim_cache_dir)
        assert result.passed, result.first_mismatches
        observed[simulator] = json.loads((tmp_path / simulator / "observed.json").read_text())
    # Same vectors and seed: every payload, tap beat and handshake cycle is the same.
    assert observed["verilator"] == observed["icarus"]


def _first_difference(true_manifest, corrupt_manifest, inputs):
    """Return (sample, output name, expected, actual) of the first output the fault changes, in scoreboard order."""
    true, corrupt = expected_outputs(true_manifest, inputs), expected_outputs(corrupt_manifest, inputs)
    for sample in range(len(inputs)):
        for layer, (want, got) in enumerate(zip(true.taps, corrupt.taps)):
            for step in range(want.shape[1]):
                differ = np.flatnonzero(want[sample, step] != got[sample, step])
                if differ.size:
                    neuron = int(differ[0])
                    name = f"tap {true_manifest.layers[layer].name}[t={step}][{neuron}]"
                    return sample, name, int(want[sample, step, neuron]), int(got[sample, step, neuron])
        differ = np.flatnonzero(true.scores[sample] != corrupt.scores[sample])
        if differ.size:
            index = int(differ[0])
            return sample, f"score[{index}]", int(true.scores[sample, index]), int(corrupt.scores[sample, index])
    return None


def _with_leak_shift(manifest, index: int, leak_shift: int):
    layers = list(manifest.layers)
    layers[index] = dataclasses.replace(layers[index], leak_shift=leak_shift)
    return dataclasses.replace(manifest, layers=layers)


def _plant(manifest, fault: str, inputs):
    """Return a copy of ``manifest`` with one planted fault that changes some output on ``inputs``."""
    if fault == "leak-shift":
        for index, layer in enumerate(manifest.layers):
            for leak_shift in (layer.leak_shift + 1, layer.leak_shift - 1):
                if 0 <= leak_shift < layer.membrane_bits:
                    corrupt = _with_leak_shift(manifest, index, leak_shift)
                    difference = _first_difference(manifest, corrupt, inputs)
                    if difference is not None:
                        return corrupt, difference
        raise AssertionError("no leak shift change alters an output on these inputs")
    hidden, output = manifest.layers[0], manifest.layers[-1]
    candidates = []
    for neuron in range(hidden.out_features):
        for delta in (1, -1):
            if fault == "threshold":
                candidates.append((hidden.threshold_key, (neuron,), delta))
            for column in range(hidden.in_features if fault == "hidden-weight" else 0):
                candidates.append((hidden.weight_key, (neuron, column), None))
    if fault == "output-weight":
        candidates = [(output.weight_key, (output.out_features - 1, output.in_features // 2), None)]
    for key, index, delta in candidates:
        arrays = {name: array.copy() for name, array in manifest.arrays.items()}
        arrays[key][index] = arrays[key][index] + delta if delta is not None else -arrays[key][index]
        corrupt = dataclasses.replace(manifest, arrays=arrays)
        difference = _first_difference(manifest, corrupt, inputs)
        if difference is not None:
            return corrupt, difference
    raise AssertionError(f"no {fault} fault changes an output on these inputs")


def _fault_params() -> list:
    """Return (simulator, fault) cases; on Verilator, whose builds cost most, only the threshold runs by default."""
    params = []
    for simulator in simulator_params():
        for fault in ("threshold", "hidden-weight", "output-weight", "leak-shift"):
            marks = list(simulator.marks)
            if simulator.values[0] == "verilator" and fault != "threshold":
                marks.append(pytest.mark.slow)
            params.append(pytest.param(simulator.values[0], fault, marks=marks, id=f"{fault}-{simulator.id}"))
    return params


# Axes: each available simulator; the planted fault (a hidden threshold off by one, a hidden or an output
# weight flipped, an LIF layer's leak shift off by one).
@pytest.mark.parametrize(("simulator", "fault"), _fault_params())
def test_planted_fault_found(tmp_path, cosim_cache_dir, simulator, fault):
    if fault == "leak-shift":
        manifest, inputs = _network(5, sizes=(10, 8, 4), kind="lif", weight_kind="int", weight_bits=3, time_steps=4,
                                    leak_shift=2)
    else:
        manifest, inputs = _network(5, sizes=(10, 8, 4), bits=2)
    corrupt, (sample, output, expected, actual) = _plant(manifest, fault, inputs)
    core = generate_core(corrupt, tmp_path / "core", fold=(2, 2))
    # The core is built from the corrupt arrays; the reference runs on the true manifest.
    result = run_cosim(core, manifest, inputs, simulator, tmp_path, cache_dir=cosim_cache_dir)
    first = result.units[0].mismatches[0]
    assert not result.passed
    assert first.sample == sample
    assert first.output == output
    assert first.expected == expected
    assert first.actual == actual
    assert first.cycle is not None
    assert result.waves_path is not None and result.waves_path.stat().st_size > 0
    assert result.waves_path.parent == result.report_path.parent
    report = json.loads(result.report_path.read_text())
    assert report["units"][0]["first_mismatches"][0]["output"] == output


def test_unavailable_tap_reported(tmp_path, cosim_cache_dir):
    simulator = "icarus"
    if simulator_missing(simulator):
        pytest.skip(simulator_missing(simulator))
    manifest, inputs = _network(6, sizes=(6, 4, 2), bits=1)
    core = generate_core(manifest, tmp_path / "core")
    unit = unit_for_core(core, manifest, inputs[:8])
    unit.description = {**unit.description, "taps": [{"layer": "layer0", "scope": ["no_such_layer"], "stream": "i"}]}
    result = simulate_units([unit], core.verilog, core.description["top"], simulator, tmp_path / "sim",
                            cache_dir=cosim_cache_dir)
    assert result.passed
    assert result.units[0].taps_compared == []
    assert "no_such_layer" in result.units[0].taps_unavailable["layer0"]


def test_simulator_choice_from_environment(monkeypatch):
    monkeypatch.setenv("TANGENTCORE_SIM", "icarus")
    assert default_simulators() == ("icarus",)
    assert default_simulators("both") == ("verilator", "icarus")
    monkeypatch.setenv("TANGENTCORE_SIM", "modelsim")
    with pytest.raises(TangentcoreError, match="TANGENTCORE_SIM must be 'verilator', 'icarus' or 'both', not 'modelsim'"):
        default_simulators()


def test_missing_simulator_names_install(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert simulator_missing("icarus") == (
        "Icarus Verilog (iverilog, vvp) is not on PATH; install it with 'apt-get install iverilog'"
    )


def test_verilator_cache_key_has_cocotb_path(monkeypatch):
    # A Verilator model links cocotb's VPI library by path: a model built in another environment must miss.
    import cocotb

    from tangentcore.sim import runner

    installed = runner._tool_version("verilator")
    monkeypatch.setattr(cocotb, "__file__", "/elsewhere/cocotb/__init__.py")
    assert runner._tool_version("verilator") != installed
