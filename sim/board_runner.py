"""Co-simulate the UART inference top of a network against the reference."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import output_redirected_to, patched_environment, write_atomic
from tangentcore.hw.board import InferenceTop
from tangentcore.hw.network import Network
from tangentcore.manifest import Manifest
from tangentcore.sim.runner import _build_args, _simulator_environment, simulator_missing
from tangentcore.sim.vectors import as_time_major, expected_outputs

__all__ = ["UARTCosimResult", "run_uart_cosim", "UART_TOP_NAME"]

UART_TOP_NAME = "tangentcore_uart_top"


@dataclass
class UARTCosimResult:
    """The report of one simulator on the UART top."""

    simulator: str
    vectors: int
    mismatches: int
    first_mismatches: list[dict]
    seconds: float
    log_path: Path


def run_uart_cosim(manifest: Manifest, foldings, inputs: np.ndarray, simulator: str, build_dir: str | Path,
                   *, divisor: int = 8) -> UARTCosimResult:
    """Generate the UART top with ``divisor`` clock cycles per bit, send ``inputs`` over its UART and
    compare every response with the reference.

    ``inputs`` are (n, n_in) vectors for dense networks and (n, T, n_in)
    spike trains for spiking ones, one request each.
    """
    missing = simulator_missing(simulator)
    if missing:
        raise TangentcoreError(missing)
    from cocotb_tools.runner import get_runner

    work = Path(build_dir).resolve() / f"uart-{simulator}"
    work.mkdir(parents=True, exist_ok=True)
    inputs = as_time_major(manifest, inputs)
    network = Network.from_manifest(manifest, foldings)
    description = {**network.describe(), "uart_divisor": divisor}
    top = InferenceTop(network, divisor=divisor)
    verilog_path = write_atomic(work / f"{UART_TOP_NAME}.v", verilog.convert(top, name=UART_TOP_NAME, emit_src=False))
    core_path = write_atomic(work / "core.json", json.dumps(description, indent=2))
    expected = expected_outputs(manifest, inputs)
    vectors_path = work / "vectors.npz"
    np.savez(vectors_path, inputs=inputs, scores=expected.scores, predictions=expected.labels)
    results_path = work / "results.json"
    results_path.unlink(missing_ok=True)
    log_path = work / "sim.log"
    log_path.write_text("")

    started = time.perf_counter()
    with patched_environment(_simulator_environment(simulator)):
        runner = get_runner(simulator)
        with output_redirected_to(log_path):
            runner.build(sources=[verilog_path], hdl_toplevel=UART_TOP_NAME, build_dir=work / "build",
                         build_args=_build_args(simulator), timescale=("1ns", "1ps"), always=True)
            runner.test(hdl_toplevel=UART_TOP_NAME, test_module="tangentcore.sim.tb_uart", build_dir=work / "build",
                        test_dir=work, extra_env={"TANGENTCORE_VECTORS": str(vectors_path),
                                                  "TANGENTCORE_CORE": str(core_path),
                                                  "TANGENTCORE_RESULTS": str(results_path)})
    if not results_path.exists():
        raise TangentcoreError(f"{simulator} UART co-simulation wrote no report; see its log {log_path}")
    report = json.loads(results_path.read_text())
    return UARTCosimResult(simulator=simulator, vectors=report["vectors"], mismatches=report["mismatches"],
                           first_mismatches=report["first_mismatches"], seconds=time.perf_counter() - started,
                           log_path=log_path)
