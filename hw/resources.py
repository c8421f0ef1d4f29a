"""A resource and Fmax model of folded sign layers, fitted to real builds.

``bench/resource_grid.py`` builds a grid of single-layer cores behind the
UART top and records nextpnr's utilization and Fmax. :func:`fit` turns the
records into a :class:`ResourceModel`: non-negative least squares of the
logic count on features that follow the datapath's structure, and of the
critical-path delay on the adder-tree depth. The model's error on its own
grid is reported by :func:`fit_errors` and recorded in
``docs/resource_model.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

__all__ = ["ResourceModel", "layer_features", "fit", "fit_errors", "load_records"]

FEATURE_NAMES = ("constant", "pe_simd_bits", "pe_acc_bits", "input_register_bits", "n_out")


def layer_features(n_in: int, n_out: int, input_bits: int, pe: int, simd: int, acc_bits: int) -> np.ndarray:
    """Return the features of one layer: the XNOR/mux lanes and adder tree (``PE·SIMD·bits``), the
    accumulators and comparators (``PE·acc_bits``), the input register and chunk multiplexer
    (``n_in·bits``) and the output register (``n_out``)."""
    return np.array([1.0, pe * simd * input_bits, pe * acc_bits, n_in * input_bits, n_out], dtype=np.float64)


def _depth(simd: int, input_bits: int) -> float:
    """Adder-tree depth of one SIMD chunk, the part of the critical path that grows with folding."""
    return math.log2(max(2, simd * input_bits))


@dataclass(frozen=True)
class ResourceModel:
    """Fitted coefficients of one FPGA family."""

    board: str
    logic_coefficients: tuple[float, ...]
    delay_coefficients: tuple[float, float]  # nanoseconds: constant, per adder-tree level

    def logic(self, n_in, n_out, input_bits, pe, simd, acc_bits) -> float:
        """Predict the logic cells (iCE40 LCs, ECP5 LUTs) of a network with this one varying layer."""
        return float(layer_features(n_in, n_out, input_bits, pe, simd, acc_bits) @ np.array(self.logic_coefficients))

    def fmax_mhz(self, simd: int, input_bits: int) -> float:
        """Predict Fmax from the adder-tree depth."""
        constant, per_level = self.delay_coefficients
        return 1000.0 / (constant + per_level * _depth(simd, input_bits))

    def to_json(self) -> dict:
        return {"board": self.board, "logic_features": FEATURE_NAMES,
                "logic_coefficients": self.logic_coefficients, "delay_coefficients_ns": self.delay_coefficients}


def load_records(path: str | Path) -> tuple[str, list[dict]]:
    """Read a grid file written by ``bench/resource_grid.py``."""
    document = json.loads(Path(path).read_text())
    return document["board"], document["records"]


def _logic_used(record: dict) -> int:
    utilization = record["utilization"]
    return utilization["lc"]["used"] if "lc" in utilization else utilization["lut"]["used"]


def fit(board: str, records: list[dict]) -> ResourceModel:
    """Fit the logic and delay models to grid records of one board."""
    features = np.array([layer_features(r["n_in"], r["n_out"], r["input_bits"], r["pe"], r["simd"], r["acc_bits"])
                         for r in records])
    logic = np.array([_logic_used(r) for r in records], dtype=np.float64)
    logic_coefficients, _ = nnls(features, logic)
    depth = np.array([[1.0, _depth(r["simd"], r["input_bits"])] for r in records])
    delay_ns = np.array([1000.0 / r["fmax_mhz"] for r in records])
    delay_coefficients, _ = nnls(depth, delay_ns)
    return ResourceModel(board, tuple(float(c) for c in logic_coefficients),
                         (float(delay_coefficients[0]), float(delay_coefficients[1])))


def fit_errors(model: ResourceModel, records: list[dict]) -> dict:
    """Return the relative errors of ``model`` on ``records``: mean and max of |predicted/measured − 1|."""
    logic = [abs(model.logic(r["n_in"], r["n_out"], r["input_bits"], r["pe"], r["simd"], r["acc_bits"])
                 / _logic_used(r) - 1) for r in records]
    fmax = [abs(model.fmax_mhz(r["simd"], r["input_bits"]) / r["fmax_mhz"] - 1) for r in records]
    return {"points": len(records),
            "logic_mean": float(np.mean(logic)), "logic_max": float(np.max(logic)),
            "fmax_mean": float(np.mean(fmax)), "fmax_max": float(np.max(fmax))}
