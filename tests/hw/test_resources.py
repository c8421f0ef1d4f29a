"""The fitted resource model: loading, estimates, the layer shapes it prices, and the fit itself."""

import json
from pathlib import Path

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import Folding
from tangentcore.hw.network import Network
from tangentcore.hw.resources import (
    DELAY_FEATURES,
    FF_FEATURES,
    LOGIC_FEATURES,
    MODEL_BOARDS,
    dsp_blocks,
    fit,
    fit_grid_file,
    layer_shapes,
    load_model,
    memory_mapping,
)
from tangentcore.manifest import random_manifest

GRID_FOLDER = Path(__file__).resolve().parents[2] / "bench" / "results"


def _digits_shape(hidden=64, weight_kind="binary", seed=0):
    return random_manifest(np.random.default_rng(seed), [64, hidden, 10], weight_kind=weight_kind, encoding="uint",
                           bits=4)


# board: every board with a shipped model
@pytest.mark.parametrize("board", MODEL_BOARDS)
def test_load_model_reads_board(board):
    model = load_model(board)
    assert model.board == board
    assert set(model.device) == {"logic", "ff", "bram", "dsp"}
    assert all(capacity > 0 for capacity in model.device.values()), model.device
    assert model.clock_mhz == {"icebreaker": 12.0, "ulx3s": 25.0}[board]
    assert set(model.logic_coefficients) == set(LOGIC_FEATURES)
    assert set(model.ff_coefficients) == set(FF_FEATURES)
    assert set(model.delay_coefficients_ns) == set(DELAY_FEATURES)


def test_load_model_unknown_board():
    with pytest.raises(TangentcoreError, match=r"no resource model for board 'arty'.*icebreaker, ulx3s"):
        load_model("arty")


# board: every board with a shipped model
@pytest.mark.parametrize("board", MODEL_BOARDS)
def test_estimate_of_digits_network(board):
    estimate = load_model(board).estimate(_digits_shape(), [Folding(2, 16), Folding(2, 16)])
    assert estimate.logic > 0
    assert estimate.ff > 0
    assert estimate.bram >= 0
    assert 1 < estimate.fmax_mhz < 1000
    assert estimate.critical_layer in (0, 1)


# board: every board with a shipped model
@pytest.mark.parametrize("board", MODEL_BOARDS)
def test_estimate_grows_with_hidden_width(board):
    model = load_model(board)
    logic, ff = [], []
    for hidden in (16, 32, 64, 128):
        # LUT ROMs throughout: a deeper memory that moves to block RAM legitimately needs less logic.
        estimate = model.estimate(_digits_shape(hidden), [Folding(2, 16), Folding(2, 16)], weight_storage="rom")
        logic.append(estimate.logic)
        ff.append(estimate.ff)
    assert np.all(np.diff(logic) > 0), logic
    assert np.all(np.diff(ff) >= 0), ff


# board: every board with a shipped model
@pytest.mark.parametrize("board", MODEL_BOARDS)
def test_estimate_grows_with_pe(board):
    model = load_model(board)
    manifest = _digits_shape()
    logic = [model.estimate(manifest, [Folding(pe, 16), Folding(2, 16)], weight_storage="rom").logic
             for pe in (1, 2, 4, 8)]
    assert np.all(np.diff(logic) > 0), logic


def test_estimate_grows_with_weight_bits():
    model = load_model("ulx3s")
    foldings = [Folding(2, 16), Folding(2, 16)]
    logic = [model.estimate(_digits_shape(weight_kind=kind), foldings).logic for kind in ("binary", "ternary", "int")]
    assert np.all(np.diff(logic) > 0), logic


def test_estimate_rejects_lif_layers():
    manifest = random_manifest(np.random.default_rng(0), [16, 8, 4], kind="lif")
    with pytest.raises(TangentcoreError, match=r"layer 0 \(layer0\) is a lif layer.*dense layers only"):
        load_model("icebreaker").estimate(manifest, [Folding(2, 8), Folding(2, 8)])


def test_estimate_rejects_bad_foldings():
    model = load_model("icebreaker")
    manifest = _digits_shape()
    with pytest.raises(TangentcoreError, match=r"need one folding per layer \(2\), got 1"):
        model.estimate(manifest, [Folding(2, 16)])
    with pytest.raises(TangentcoreError, match=r"layer 0 \(layer0\): PE must divide the layer's 64 outputs, not 3"):
        model.estimate(manifest, [Folding(3, 16), Folding(2, 16)])
    with pytest.raises(TangentcoreError, match=r"weight_storage must be one of auto, rom, bram, not 'lut'"):
        model.estimate(manifest, [Folding(2, 16), Folding(2, 16)], weight_storage="lut")


# weight_kind, input encoding and bits: each datapath the dense layer builds
@pytest.mark.parametrize("weight_kind, encoding, bits", [("binary", "binary", 1), ("binary", "uint", 4),
                                                          ("ternary", "uint", 3), ("int", "binary", 1)])
# folds: a single row (constant), a LUT ROM and a block RAM memory
@pytest.mark.parametrize("folds", [[(64, 32), (10, 64)], [(8, 32), (5, 64)], [(2, 16), (2, 8)]])
def test_layer_shapes_match_core_description(weight_kind, encoding, bits, folds):
    manifest = random_manifest(np.random.default_rng(1), [32, 64, 10], weight_kind=weight_kind, encoding=encoding,
                               bits=bits)
    foldings = [Folding(pe=min(pe, layer.out_features), simd=min(simd, layer.in_features))
                for (pe, simd), layer in zip(folds, manifest.layers)]
    described = Network.from_manifest(manifest, foldings).describe()["layers"]
    for shape, layer in zip(layer_shapes(manifest, foldings), described):
        assert shape == {key: layer[key] for key in shape}


def _shape(depth, row_bits):
    """A hidden layer whose parameter memory has ``depth`` rows of ``row_bits`` bits (8-bit thresholds)."""
    return {"n_in": depth, "n_out": 1, "pe": 1, "simd": 1, "weight_kind": "int", "weight_bits": row_bits - 8,
            "input_encoding": "binary", "input_bits": 1, "acc_bits": 8, "weight_storage": "bram",
            "compute_cycles": depth, "output": "bits"}


def test_memory_mapping_follows_yosys_costs():
    # iCE40: 256 × 16 blocks at cost 64 against depth·width/16 in logic.
    assert memory_mapping(_shape(64, 16), "ice40") == ("logic", 0)  # 64 = 64: logic wins ties
    assert memory_mapping(_shape(128, 52), "ice40") == ("bram", 4)
    assert memory_mapping(_shape(512, 16), "ice40") == ("bram", 2)  # two blocks deep, no 512 × 16 shape
    # ECP5: 512 × 36 blocks at cost 128.
    assert memory_mapping(_shape(128, 72), "ecp5") == ("bram", 2)
    assert memory_mapping(_shape(32, 72), "ecp5") == ("logic", 0)
    rom = dict(_shape(128, 52), weight_storage="rom")
    assert memory_mapping(rom, "ice40") == ("logic", 0)


def test_dsp_blocks_per_multiplier_lane():
    shape = dict(_shape(64, 16), input_encoding="uint", input_bits=4, pe=4, simd=8)
    assert dsp_blocks(shape, "ecp5") == 32
    assert dsp_blocks(shape, "ice40") == 0
    assert dsp_blocks(dict(shape, input_encoding="binary", input_bits=1), "ecp5") == 0
    assert dsp_blocks(dict(shape, weight_kind="binary", weight_bits=1), "ecp5") == 0


def _synthetic_records(rng, family, logic_coefficients, ff_coefficients, delay_coefficients):
    """Grid records of random two-layer networks whose measurements follow known coefficients exactly."""
    from tangentcore.hw.resources import _delay_matrix, _network_features

    records = []
    for _ in range(60):
        n_in, hidden = int(rng.choice([16, 32, 64, 128])), int(rng.choice([16, 32, 64]))
        weight_kind = str(rng.choice(["binary", "ternary", "int"]))
        bits = int(rng.choice([1, 4]))
        manifest = random_manifest(rng, [n_in, hidden, 10], weight_kind=weight_kind,
                                   encoding="binary" if bits == 1 else "uint", bits=bits)
        first = Folding(pe=int(rng.choice([1, 2, 4, 8])), simd=int(rng.choice([4, 8, 16])))
        if rng.random() < 0.2:
            first = Folding(pe=hidden, simd=n_in)  # fully parallel: a constant parameter row
        foldings = [first, Folding(pe=int(rng.choice([1, 2, 5])), simd=int(rng.choice([4, 8, 16])))]
        shapes = layer_shapes(manifest, foldings)
        logic = _network_features(shapes, family, LOGIC_FEATURES) @ logic_coefficients
        ff = _network_features(shapes, family, FF_FEATURES) @ ff_coefficients
        period_ns = np.max(_delay_matrix(shapes) @ delay_coefficients)
        records.append({"layers": shapes, "fmax_mhz": 1000.0 / period_ns,
                         "utilization": {"lut": {"used": logic}, "ff": {"used": ff}, "ebr": {"used": 0}}})
    return records


def test_fit_recovers_known_coefficients():
    rng = np.random.default_rng(7)
    logic_coefficients = np.linspace(1.0, 3.0, len(LOGIC_FEATURES)) * np.array([300] + [1] * (len(LOGIC_FEATURES) - 1))
    ff_coefficients = np.linspace(0.5, 1.5, len(FF_FEATURES)) * np.array([200] + [1] * (len(FF_FEATURES) - 1))
    delay_coefficients = np.array([5.0, 1.5, 0.8, 0.2, 0.6, 0.7, 1.1])
    records = _synthetic_records(rng, "ecp5", logic_coefficients, ff_coefficients, delay_coefficients)
    model = fit("ulx3s", "ecp5", {"logic": 1, "ff": 1, "bram": 1}, 25.0, records)
    np.testing.assert_allclose([model.logic_coefficients[n] for n in LOGIC_FEATURES], logic_coefficients, rtol=1e-6)
    np.testing.assert_allclose([model.ff_coefficients[n] for n in FF_FEATURES], ff_coefficients, rtol=1e-6)
    np.testing.assert_allclose([model.delay_coefficients_ns[n] for n in DELAY_FEATURES], delay_coefficients,
                               rtol=1e-6)


def test_fit_rejects_empty_grid():
    with pytest.raises(TangentcoreError, match="no grid records to fit for board 'icebreaker'"):
        fit("icebreaker", "ice40", {"logic": 1, "ff": 1, "bram": 1}, 12.0, [])


# board: every board with a shipped model
@pytest.mark.parametrize("board", MODEL_BOARDS)
def test_shipped_model_equals_refit_of_grid(board):
    shipped = load_model(board)
    grid = GRID_FOLDER / shipped.source["grid"]
    assert grid.exists(), f"{grid} is missing; the shipped {board} model names it as its grid"
    refit, records = fit_grid_file(grid)
    assert shipped.source == refit.source
    assert shipped.device == refit.device
    assert shipped.clock_mhz == refit.clock_mhz
    for name in ("logic_coefficients", "ff_coefficients", "delay_coefficients_ns"):
        assert getattr(shipped, name) == pytest.approx(getattr(refit, name), rel=1e-9, abs=1e-9), name
    assert json.loads(grid.read_text())["board"] == board
    assert len(records) == shipped.source["points"]
