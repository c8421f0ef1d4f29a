"""A resource and Fmax model of whole dense network cores behind the UART top, fitted to real builds.

Sizing prices a candidate network without building it::

    model = load_model("icebreaker")
    estimate = model.estimate(manifest, foldings)
    estimate.logic, estimate.ff, estimate.bram, estimate.dsp, estimate.fmax_mhz

A design's logic cells and flip-flops are a constant (the UART top and its
control) plus a sum over layers of per-layer features that follow the
datapath of :class:`tangentcore.hw.layers.DenseLayer` (:func:`layer_features`).
Non-negative least squares of the relative error fits their coefficients.
Block RAM and DSP blocks are counted from the parameter memories' geometry
and the multiplier lanes (:func:`memory_mapping`, :func:`dsp_blocks`). The
clock period is the largest per-layer delay, an affine function of the
layer's logic depths (:func:`layer_delay_features`).

``bench/resource_grid.py`` builds the calibration grid, and
``bench/fit_resources.py --write`` fits it and writes the coefficients to
``resource_models/<board>.json`` beside this module, which
:func:`load_model` reads. ``docs/resource_model.md`` records the errors.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass, field
from importlib import resources as package_resources
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import WEIGHT_STORAGES, Folding, check_folding, choose_weight_storage, fold_cycles
from tangentcore.manifest import Manifest

__all__ = [
    "Estimate",
    "ResourceModel",
    "MODEL_BOARDS",
    "load_model",
    "layer_shapes",
    "layer_features",
    "layer_delay_features",
    "memory_mapping",
    "dsp_blocks",
    "fit",
    "fit_grid_file",
    "fit_errors",
    "load_records",
    "measured",
]

# Boards that have a fitted model in resource_models/.
MODEL_BOARDS = ("icebreaker", "ulx3s")

LOGIC_FEATURES = ("constant", "lane_multiplier_bits", "lane_term_bits", "constant_lane_term_bits", "accumulator_bits",
                  "input_register_bits", "output_register_bits", "rom_lut4")
FF_FEATURES = ("constant", "accumulator_bits", "input_register_bits", "output_register_bits", "read_register_bits",
               "counter_bits")
DELAY_FEATURES = ("constant", "tree_levels", "product_levels", "accumulator_bits", "rom_levels", "chunk_mux_levels",
                  "argmax_levels")

# Block RAMs as Yosys's memory_libmap pass prices them (YoWASP Yosys 0.70, share/ice40/brams.txt and
# share/lattice/brams_16kd.txt): the cost of one block and its (depth, width) shapes. iCE40
# SB_RAM40_4K is 4 kbit; the ECP5 DP16KD stores 16 kbit of data and reads 36 bits wide as PDPW16KD.
BRAM_LIBRARY = {
    "ice40": (64, ((256, 16), (512, 8), (1024, 4), (2048, 2))),
    "ecp5": (128, ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))),
}
# memory_libmap's cost of a ROM bit lowered to logic (its -logic-cost-rom default).
LOGIC_COST_PER_ROM_BIT = 1 / 16
# memory_libmap's cost of each bit of the read multiplexer over blocks stacked in depth.
MUX_COST_PER_BIT = 0.5


@dataclass(frozen=True)
class Estimate:
    """Predicted resources of one design: the network core behind the UART top.

    ``logic`` is iCE40 logic cells or ECP5 LUTs, ``ff`` flip-flops, ``bram``
    block RAMs (iCE40 4 kbit EBR, ECP5 DP16KD), ``fmax_mhz`` the Fmax of the
    slowest layer and ``critical_layer`` that layer's index. ``dsp`` counts
    ECP5 MULT18X18D blocks, one per multiplier lane (see :func:`dsp_blocks`).
    """

    logic: float
    ff: float
    bram: float
    fmax_mhz: float
    critical_layer: int
    dsp: float = 0.0


def layer_shapes(manifest: Manifest, foldings: list[Folding], weight_storage: str = "auto") -> list[dict]:
    """Return each layer's shape as :meth:`DenseLayer.describe` reports it, without building the core.

    Raises TangentcoreError for a folding that does not divide its layer, a
    folding count that differs from the layer count, and LIF layers, which
    the model has no calibration for.
    """
    if len(foldings) != len(manifest.layers):
        raise TangentcoreError(f"need one folding per layer ({len(manifest.layers)}), got {len(foldings)}")
    if weight_storage not in WEIGHT_STORAGES:
        raise TangentcoreError(f"weight_storage must be one of {', '.join(WEIGHT_STORAGES)}, not {weight_storage!r}")
    shapes = []
    for index, (layer, folding) in enumerate(zip(manifest.layers, foldings)):
        if layer.kind != "dense":
            raise TangentcoreError(
                f"layer {index} ({layer.name}) is a {layer.kind} layer, but the resource model is calibrated "
                f"on dense layers only, because LIF cores have no board build to calibrate it on yet")
        check_folding(layer.in_features, layer.out_features, folding, where=f"layer {index} ({layer.name})")
        compute_cycles = fold_cycles(layer.in_features, layer.out_features, folding)
        neuron_param_bits = layer.acc_bits if layer.output == "bits" else 0
        row_bits = folding.pe * folding.simd * layer.weight_bits + folding.pe * neuron_param_bits
        if compute_cycles == 1:
            storage = "constant"
        elif weight_storage == "auto":
            storage = choose_weight_storage(compute_cycles, row_bits)
        else:
            storage = weight_storage
        shapes.append({
            "n_in": layer.in_features, "n_out": layer.out_features, "pe": folding.pe, "simd": folding.simd,
            "weight_kind": layer.weight_kind, "weight_bits": layer.weight_bits,
            "input_encoding": layer.input_encoding, "input_bits": layer.input_bits, "acc_bits": layer.acc_bits,
            "weight_storage": storage, "compute_cycles": compute_cycles, "output": layer.output,
        })
    return shapes


def _row_bits(shape: dict) -> int:
    """Width of the layer's parameter memory row: PE·SIMD weights, then one threshold per hidden neuron."""
    neuron_param_bits = shape["acc_bits"] if shape["output"] == "bits" else 0
    return shape["pe"] * shape["simd"] * shape["weight_bits"] + shape["pe"] * neuron_param_bits


def _term_bits(shape: dict) -> int:
    """Return the width of one lane's product term as :meth:`FoldedLayer._term` builds it.

    Binary weights and inputs make a 1-bit match that a popcount adds up.
    Binary weights negate a uint input (input_bits + 1), and binary inputs
    negate an int weight (weight_bits + 1). Spikes gate the weight
    (weight_bits, or 2 for ±1). Int weights times uint inputs are a full
    product (weight_bits + input_bits).
    """
    weight_bits, input_bits = shape["weight_bits"], shape["input_bits"]
    encoding, binary_weights = shape["input_encoding"], shape["weight_kind"] == "binary"
    if encoding == "binary":
        return 1 if binary_weights else weight_bits + 1
    if encoding == "spikes":
        return 2 if binary_weights else weight_bits
    return input_bits + 1 if binary_weights else weight_bits + input_bits


def layer_features(shape: dict, family: str) -> dict[str, float]:
    """Return the resource features of one layer shape (a :func:`layer_shapes` entry) on an FPGA family.

    - ``lane_multiplier_bits``: PE·SIMD·input_bits·weight_bits for int or
      ternary weights times uint inputs, the only lanes with a multiplier;
    - ``lane_term_bits``: PE·SIMD times the width of one product term (see
      :func:`_term_bits`), the negations and the adder tree over each SIMD
      chunk;
    - ``constant_lane_term_bits``: the same for a fully parallel layer, whose
      weights are constants that Yosys folds into the lanes (the two lane
      features above are then 0);
    - ``accumulator_bits``: PE·acc_bits, the accumulators, their adders and
      the threshold comparators or argmax;
    - ``input_register_bits``: n_in·input_bits, the latched input vector and
      its SIMD chunk multiplexer;
    - ``output_register_bits``: n_out bits, or n_out·acc_bits scores;
    - ``rom_lut4``: the 4-input LUTs of a parameter memory in logic (see
      :func:`memory_mapping`), row_bits·(2·⌈depth/16⌉ − 1): one LUT per 16
      rows of each bit and the multiplexer tree over them;
    - ``read_register_bits``: row_bits flip-flops of a synchronous read port
      that Yosys left in logic;
    - ``counter_bits``: the step and fold counters, 2·⌈log2(depth + 1)⌉.
    """
    pe, simd = shape["pe"], shape["simd"]
    input_bits, weight_bits, acc_bits = shape["input_bits"], shape["weight_bits"], shape["acc_bits"]
    depth = shape["compute_cycles"]
    multiplies = shape["weight_kind"] != "binary" and shape["input_encoding"] == "uint"
    constant = shape["weight_storage"] == "constant"
    in_logic = memory_mapping(shape, family)[0] == "logic"
    row_bits = _row_bits(shape)
    return {
        "lane_multiplier_bits": float(pe * simd * input_bits * weight_bits if multiplies and not constant else 0),
        "lane_term_bits": float(0 if constant else pe * simd * _term_bits(shape)),
        "constant_lane_term_bits": float(pe * simd * _term_bits(shape) if constant else 0),
        "accumulator_bits": float(pe * acc_bits),
        "input_register_bits": float(shape["n_in"] * input_bits),
        "output_register_bits": float(shape["n_out"] * (acc_bits if shape["output"] == "scores" else 1)),
        "rom_lut4": float(row_bits * (2 * -(-depth // 16) - 1) if in_logic else 0),
        "read_register_bits": float(row_bits if in_logic and shape["weight_storage"] == "bram" else 0),
        "counter_bits": float(2 * math.ceil(math.log2(depth + 1))),
    }


def layer_delay_features(shape: dict) -> dict[str, float]:
    """Return the critical-path features of one layer shape.

    The path runs from the parameter row and the input chunk through one
    lane's product and the SIMD adder tree into the accumulator, and in the
    output layer on through the argmax:

    - ``tree_levels``: log2(SIMD);
    - ``product_levels``: log2(input_bits·weight_bits);
    - ``accumulator_bits``: the carry chain of the accumulator and comparator;
    - ``rom_levels``: log2(depth) of a LUT ROM's read multiplexer (0 for
      block RAM, whose read port is registered, and for a constant row);
    - ``chunk_mux_levels``: log2(n_in/SIMD) of the multiplexer that selects
      the input chunk;
    - ``argmax_levels``: PE for the output layer, whose running argmax
      compares the PE scores one after another, else 0.
    """
    rom_levels = math.log2(shape["compute_cycles"]) if shape["weight_storage"] == "rom" else 0.0
    return {
        "constant": 1.0,
        "tree_levels": math.log2(shape["simd"]),
        "product_levels": math.log2(shape["input_bits"] * shape["weight_bits"]),
        "accumulator_bits": float(shape["acc_bits"]),
        "rom_levels": rom_levels,
        "chunk_mux_levels": math.log2(shape["n_in"] // shape["simd"]),
        "argmax_levels": float(shape["pe"] if shape["output"] == "scores" else 0),
    }


def memory_mapping(shape: dict, family: str) -> tuple[str, int]:
    """Return where Yosys puts a layer's parameter memory, ``"logic"``, ``"bram"`` or ``"none"``, and its blocks.

    A constant single row needs no memory, and a LUT ROM's asynchronous read
    port cannot use block RAM. A ``"bram"`` memory has a synchronous read
    port. Yosys's memory_libmap pass puts it in the cheapest block shape
    unless logic costs no more. Logic costs ``depth·width/16``, and blocks
    cost the block cost times the block count, plus ``width/2`` per extra
    block in depth for the read multiplexer. With the iCE40's cost of 64
    per block, a memory of at most about 64 rows stays in logic whatever
    its width.
    """
    storage = shape["weight_storage"]
    if storage == "constant":
        return "none", 0
    if storage == "rom":
        return "logic", 0
    depth, width = shape["compute_cycles"], _row_bits(shape)
    block_cost, block_shapes = BRAM_LIBRARY[family]
    best_cost, best_blocks = math.inf, 0
    for block_depth, block_width in block_shapes:
        stacked = -(-depth // block_depth)
        blocks = -(-(stacked * width) // block_width)
        cost = block_cost * blocks + MUX_COST_PER_BIT * (stacked - 1) * width
        if cost < best_cost:
            best_cost, best_blocks = cost, blocks
    if depth * width * LOGIC_COST_PER_ROM_BIT <= best_cost:
        return "logic", 0
    return "bram", best_blocks


def dsp_blocks(shape: dict, family: str) -> int:
    """Return the DSP blocks of a layer: on ECP5 one MULT18X18D per multiplier lane, on iCE40 none.

    Yosys's synth_ecp5 maps each lane's int or ternary weight times uint
    input product to a MULT18X18D, which the grid builds confirm (PE·SIMD
    blocks per layer). synth_ice40 as the build runs it uses no SB_MAC16.
    """
    multiplies = shape["weight_kind"] != "binary" and shape["input_encoding"] == "uint"
    if family != "ecp5" or not multiplies:
        return 0
    # NOTE: no grid point has a fully parallel multiplier layer. Yosys may fold its constant weights into
    # shifts and adds instead of DSP blocks, so the count is then an upper bound.
    return shape["pe"] * shape["simd"]


def _network_features(shapes: list[dict], family: str, names: tuple[str, ...]) -> np.ndarray:
    """Sum the layers' features over the network; ``constant`` is 1 for the whole design."""
    totals = dict.fromkeys(names, 0.0)
    totals["constant"] = 1.0
    for shape in shapes:
        features = layer_features(shape, family)
        for name in names:
            if name != "constant":
                totals[name] += features[name]
    return np.array([totals[name] for name in names])


def _delay_matrix(shapes: list[dict]) -> np.ndarray:
    """Return the delay features of every layer, one row per layer."""
    return np.array([[layer_delay_features(shape)[name] for name in DELAY_FEATURES] for shape in shapes])


@dataclass(frozen=True)
class ResourceModel:
    """Fitted coefficients of one board, and its device capacities and clock."""

    board: str
    family: str  # "ice40" or "ecp5"
    device: dict[str, int]  # capacities: "logic", "ff", "bram", "dsp"
    clock_mhz: float
    logic_coefficients: dict[str, float]
    ff_coefficients: dict[str, float]
    delay_coefficients_ns: dict[str, float]
    source: dict = field(default_factory=dict)  # the grid file and fit that produced the coefficients

    def estimate_shapes(self, shapes: list[dict]) -> Estimate:
        """Predict the resources and Fmax of a network given as :func:`layer_shapes`."""
        logic_features = _network_features(shapes, self.family, LOGIC_FEATURES)
        ff_features = _network_features(shapes, self.family, FF_FEATURES)
        logic = logic_features @ np.array([self.logic_coefficients[name] for name in LOGIC_FEATURES])
        ff = ff_features @ np.array([self.ff_coefficients[name] for name in FF_FEATURES])
        bram = sum(memory_mapping(shape, self.family)[1] for shape in shapes)
        delays_ns = _delay_matrix(shapes) @ np.array([self.delay_coefficients_ns[name] for name in DELAY_FEATURES])
        critical = int(np.argmax(delays_ns))
        dsp = sum(dsp_blocks(shape, self.family) for shape in shapes)
        return Estimate(logic=float(logic), ff=float(ff), bram=float(bram), fmax_mhz=float(1000.0 / delays_ns[critical]),
                        critical_layer=critical, dsp=float(dsp))

    def estimate(self, manifest: Manifest, foldings: list[Folding], weight_storage: str = "auto") -> Estimate:
        """Predict the resources and Fmax of ``manifest`` built with ``foldings`` (one per layer) on this board.

        Raises TangentcoreError for LIF layers and for foldings that do not
        fit the layers (see :func:`layer_shapes`).
        """
        return self.estimate_shapes(layer_shapes(manifest, foldings, weight_storage))

    def to_json(self) -> dict:
        return {
            "board": self.board, "family": self.family, "device": self.device, "clock_mhz": self.clock_mhz,
            "logic_coefficients": self.logic_coefficients, "ff_coefficients": self.ff_coefficients,
            "delay_coefficients_ns": self.delay_coefficients_ns, "source": self.source,
        }

    @classmethod
    def from_json(cls, document: dict) -> ResourceModel:
        return cls(**document)


def load_model(board: str) -> ResourceModel:
    """Load the fitted model of ``board`` shipped in ``resource_models/``; raises TangentcoreError for other boards."""
    if board not in MODEL_BOARDS:
        raise TangentcoreError(f"no resource model for board {board!r}; boards with a model: {', '.join(MODEL_BOARDS)}")
    text = package_resources.files("tangentcore.hw").joinpath("resource_models", f"{board}.json").read_text()
    return ResourceModel.from_json(json.loads(text))


def load_records(path: str | Path) -> tuple[str, list[dict]]:
    """Read a grid file written by ``bench/resource_grid.py``; return its board and the records of builds that fit."""
    document = json.loads(Path(path).read_text())
    return document["board"], document["records"]


def measured(record: dict, quantity: str) -> float:
    """Return a grid record's measured ``logic``, ``ff``, ``bram``, ``dsp`` or ``fmax_mhz``."""
    utilization = record["utilization"]
    if quantity == "fmax_mhz":
        return float(record["fmax_mhz"])
    if quantity == "logic":
        return float(utilization["lc"]["used"] if "lc" in utilization else utilization["lut"]["used"])
    if quantity == "dsp" and "dsp" not in utilization:
        return 0.0
    return float(utilization[{"ff": "ff", "bram": "ebr", "dsp": "dsp"}[quantity]]["used"])


def _fit_delay(records: list[dict], random_starts: int = 20, iterations: int = 50) -> np.ndarray:
    """Fit per-layer delay coefficients so that the largest layer delay matches each build's clock period.

    The critical layer of each build is unknown, so the fit alternates: guess
    each build's critical layer, fit, reassign each build's critical layer
    to the one with the largest predicted delay, and refit until the
    assignment no longer changes. The alternation finds a local optimum, so
    it starts from the first layers, from the last layers and from
    ``random_starts`` seeded random guesses, and keeps the fit with the
    smallest squared period error.
    """
    matrices = [_delay_matrix(record["layers"]) for record in records]
    period_ns = np.array([1000.0 / record["fmax_mhz"] for record in records])
    rng = np.random.default_rng(0)
    starts = [[0] * len(records), [len(matrix) - 1 for matrix in matrices]]
    starts += [[int(rng.integers(len(matrix))) for matrix in matrices] for _ in range(random_starts)]

    best_error, best_coefficients = math.inf, np.zeros(len(DELAY_FEATURES))
    for critical in starts:
        for _ in range(iterations):
            rows = np.array([matrix[index] for matrix, index in zip(matrices, critical)])
            coefficients, _ = nnls(rows, period_ns)
            updated = [int(np.argmax(matrix @ coefficients)) for matrix in matrices]
            if updated == critical:
                break
            critical = updated
        predicted_ns = np.array([np.max(matrix @ coefficients) for matrix in matrices])
        error = float(np.sum((predicted_ns - period_ns) ** 2))
        if error < best_error:
            best_error, best_coefficients = error, coefficients
    return best_coefficients


def fit(board: str, family: str, device: dict[str, int], clock_mhz: float, records: list[dict],
        source: dict | None = None) -> ResourceModel:
    """Fit the logic, flip-flop and delay coefficients to grid records of one board."""
    if not records:
        raise TangentcoreError(f"no grid records to fit for board {board!r}; run bench/resource_grid.py first")
    fitted = {}
    for quantity, names in (("logic", LOGIC_FEATURES), ("ff", FF_FEATURES)):
        features = np.array([_network_features(record["layers"], family, names) for record in records])
        target = np.array([measured(record, quantity) for record in records])
        # Rows scaled by 1/measured, so the fit minimizes the relative error that fit_errors reports.
        coefficients, _ = nnls(features / target[:, None], np.ones_like(target))
        fitted[quantity] = {name: float(value) for name, value in zip(names, coefficients)}
    delay = _fit_delay(records)
    return ResourceModel(board=board, family=family, device=dict(device), clock_mhz=float(clock_mhz),
                         logic_coefficients=fitted["logic"], ff_coefficients=fitted["ff"],
                         delay_coefficients_ns={name: float(value) for name, value in zip(DELAY_FEATURES, delay)},
                         source=dict(source or {}))


def board_clock_mhz(board: str) -> float:
    """Return the default clock of the board's amaranth-boards platform in MHz."""
    from tangentcore.hw.build import BOARDS

    module_name, class_name = BOARDS[board].platform_path.split(":")
    platform = getattr(importlib.import_module(module_name), class_name)()
    return platform.default_clk_frequency / 1e6


def _device_capacities(records: list[dict]) -> dict[str, int]:
    """Read the device's logic, flip-flop and block RAM capacities from nextpnr's utilization in the records."""
    utilization = records[0]["utilization"]
    logic = utilization["lc"]["available"] if "lc" in utilization else utilization["lut"]["available"]
    # Yosys counts the iCE40 flip-flops but reports no capacity; every iCE40 logic cell has one flip-flop.
    ff = utilization.get("ff", {}).get("available") or logic
    return {"logic": logic, "ff": ff, "bram": utilization["ebr"]["available"], "dsp": utilization["dsp"]["available"]}


def fit_grid_file(path: str | Path) -> tuple[ResourceModel, list[dict]]:
    """Fit the model of the board in a grid file, as ``bench/fit_resources.py --write`` ships it.

    Returns the model and the records it was fitted to.
    """
    from tangentcore.hw.build import BOARDS

    board, records = load_records(path)
    if board not in BOARDS:
        raise TangentcoreError(f"grid file {path} is for board {board!r}; boards: {', '.join(BOARDS)}")
    source = {"grid": Path(path).name, "points": len(records)}
    model = fit(board, BOARDS[board].family, _device_capacities(records), board_clock_mhz(board), records, source)
    return model, records


def fit_errors(model: ResourceModel, records: list[dict]) -> dict:
    """Return the relative errors |predicted/measured − 1| of ``model`` on ``records``, mean and max per quantity.

    Block RAM counts of zero are compared as absolute differences, since a
    relative error of a zero count is undefined.
    """
    errors = {"points": len(records)}
    estimates = [model.estimate_shapes(record["layers"]) for record in records]
    for quantity in ("logic", "ff", "fmax_mhz"):
        relative = [abs(getattr(estimate, quantity) / measured(record, quantity) - 1)
                    for estimate, record in zip(estimates, records)]
        errors[f"{quantity}_mean"] = float(np.mean(relative))
        errors[f"{quantity}_max"] = float(np.max(relative))
    for quantity in ("bram", "dsp"):
        difference = [abs(getattr(estimate, quantity) - measured(record, quantity))
                      for estimate, record in zip(estimates, records)]
        errors[f"{quantity}_max_blocks_off"] = float(np.max(difference))
        errors[f"{quantity}_exact_points"] = int(sum(value == 0 for value in difference))
    return errors
