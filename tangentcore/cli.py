"""The ``tangentcore`` command line.

Each subcommand has an ``_add_<name>`` function that declares its arguments
and a ``_cmd_<name>`` function that runs it and returns the exit status.
Errors of the user's input raise TangentcoreError, which is printed without
a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tangentcore import __version__
from tangentcore.errors import TangentcoreError

SIMULATOR_CHOICES = ("verilator", "icarus", "both")


def _simulators(choice: str | None) -> tuple[str, ...] | None:
    if choice is None:
        return None
    return ("verilator", "icarus") if choice == "both" else (choice,)


def _add_run(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train, export, generate and co-simulate one config (default: the built-in digits example)",
        description="Train a sign MLP or LIF network with surrogate gradients, export it as an integer manifest, "
                    "generate its Amaranth core and check every output of the RTL against the NumPy reference in cocotb.",
    )
    parser.add_argument("config", nargs="?", help="TOML config; omit it for the built-in digits example")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<config name>)")
    parser.add_argument("--sim", choices=SIMULATOR_CHOICES,
                        help="simulators to co-simulate on (default: the config's, both unless set)")
    parser.add_argument("--json", action="store_true", help="end the output with one JSON object of the results")


def _cmd_run(args) -> int:
    from tangentcore.config import load_config
    from tangentcore.pipeline import format_summary, run_pipeline

    config = load_config(args.config)
    out_dir = args.out or Path("runs") / config.name
    summary = run_pipeline(config, out_dir, simulators=_simulators(args.sim), progress=sys.stderr.isatty())
    print(format_summary(summary))
    if args.json:
        print(json.dumps(summary.to_dict()))
    return 0 if summary.ok else 1


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a config and write its manifest and metrics",
        description="Train a sign MLP or LIF network with surrogate gradients, check the exported integer "
                    "manifest against the trained model on every test image, and write the manifest, "
                    "metrics.json and checkpoint.pt (saved after every epoch) into the output folder.",
    )
    parser.add_argument("config", nargs="?", help="TOML config; omit it for the built-in digits example")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the output folder's checkpoint.pt, written by the same config")


def _cmd_train(args) -> int:
    from tangentcore.config import load_config
    from tangentcore.pipeline import train_and_export

    config = load_config(args.config)
    out_dir = args.out or Path("runs") / config.name
    dataset, manifest, _, seconds = train_and_export(config, out_dir, progress=sys.stderr.isatty(),
                                                     resume=args.resume)
    metrics = manifest.provenance["metrics"]
    print(f"{config.name}: test accuracy {100 * metrics['test_accuracy']:.1f} % on {len(dataset.x_test)} images, "
          f"trained in {seconds:.1f} s")
    if "baseline" in metrics:
        print(f"  ReLU baseline (float weights): test accuracy {100 * metrics['baseline']['test_accuracy']:.1f} %")
    print(f"  manifest: {out_dir / 'manifest'} (bit-exact with the trained model on every test image)")
    print(f"  metrics: {out_dir / 'metrics.json'}")
    return 0


def _add_generate(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate Verilog, RTLIL and a JSON description for a manifest")
    parser.add_argument("manifest", help="manifest folder or its manifest.json")
    parser.add_argument("--fold", default="auto",
                        help="'auto'; 'PE,SIMD' for every layer (clipped to each layer's size, so a large pair "
                             "such as '1024,1024' gives a fully parallel core); or one 'PE,SIMD' per layer "
                             "joined by ':', such as '8,16:5,64'. PE must divide the layer's outputs and SIMD "
                             "its inputs")
    parser.add_argument("--weights", choices=("auto", "rom", "bram"), default="auto",
                        help="where weights and thresholds sit: LUT ROM, block RAM, or 'auto' (block RAM for "
                             "memories of at least 32 rows and 4 kbit; default)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")


def _cmd_generate(args) -> int:
    from tangentcore.hw.generate import generate_core
    from tangentcore.hw.network import parse_fold_spec
    from tangentcore.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    core = generate_core(manifest, args.out, fold=parse_fold_spec(args.fold), weight_storage=args.weights)
    description = core.description
    print(f"{manifest.name}: wrote {core.verilog} ({description['verilog_bytes']} bytes), {core.rtlil} and "
          f"{core.description_path}")
    for layer in description["layers"]:
        print(f"  {layer['name']}: {layer['kind']} {layer['n_in']}->{layer['n_out']}, PE {layer['pe']}, "
              f"SIMD {layer['simd']}, weights in {layer['weight_storage']}, "
              f"{layer['compute_cycles']} compute cycles per input vector")
    steps = description["time_steps"]
    per_sample = f" ({steps} input vectors per sample)" if steps > 1 else ""
    print(f"  latency {description['latency_cycles']} cycles, "
          f"initiation interval {description['initiation_interval_cycles']} cycles per sample{per_sample}")
    return 0


def _add_cosim(subparsers) -> None:
    parser = subparsers.add_parser(
        "cosim", help="co-simulate a manifest's core against the reference, or run the random regression",
        description="Generate the manifest's core, stream vectors through it in cocotb with random input gaps "
                    "and back-pressure, and compare every score, label and hidden-layer bit with the NumPy "
                    "reference. Exits with status 1 on any mismatch.",
    )
    parser.add_argument("manifest", nargs="?", help="manifest folder or its manifest.json (not with --regression)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=("test",), help="use the test split of the manifest's training config "
                                                             "(the default)")
    source.add_argument("--vectors", type=int, help="use N random input vectors (seeded); with --regression, "
                                                    "N vectors per network (default 24)")
    parser.add_argument("--regression", type=int, metavar="N",
                        help="co-simulate N random small networks on random vectors instead of a manifest")
    parser.add_argument("--sim", choices=SIMULATOR_CHOICES,
                        help="simulators (default: $TANGENTCORE_SIM, else both)")
    parser.add_argument("--waves", action="store_true",
                        help="write a waveform of every run (failing runs always get one)")
    parser.add_argument("--fold", default="auto", help="'auto' or 'PE,SIMD', as for generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of random vectors, networks, gaps and back-pressure")
    parser.add_argument("--no-cache", action="store_true", help="build the simulation models without the cache")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<name>/cosim-cli, "
                                                 "runs/regression for --regression)")


def _cosim_inputs(args, manifest):
    import numpy as np

    from tangentcore.config import config_from_dict
    from tangentcore.pipeline import load_config_dataset
    from tangentcore.sim.vectors import random_inputs

    if args.vectors is not None:
        return random_inputs(manifest, args.vectors, np.random.default_rng(args.seed))
    raw = manifest.provenance.get("config")
    if not isinstance(raw, dict):
        raise TangentcoreError("the manifest records no training config, so --dataset test cannot be "
                               "rebuilt; use --vectors N instead")
    # The data section is checked against the model kind (spike encodings need lif_mlp), so both come along.
    config = config_from_dict({section: raw[section] for section in ("data", "model") if section in raw})
    return load_config_dataset(config).x_test


def _print_cosim_result(result) -> None:
    units = result.units
    line = (f"{result.simulator}: {result.vectors} vectors, {result.mismatches} mismatching outputs, "
            f"{result.vectors_per_second:.0f} vectors/s (build {result.build_seconds:.1f} s"
            f"{', cached' if result.build_cached else ''}, simulation {result.simulate_seconds:.1f} s)")
    print(line)
    if len(units) == 1:
        unit = units[0]
        print(f"  cycles per inference: latency {unit.measured_latency_cycles} (model {unit.model_latency_cycles}), "
              f"interval {unit.measured_interval_cycles} (model {unit.model_interval_cycles})")
        taps = ", ".join(unit.taps_compared) or "none"
        print(f"  hidden-layer taps compared: {taps}")
        for layer, reason in unit.taps_unavailable.items():
            print(f"  tap {layer} unavailable: {reason}")
    else:
        failed = [unit for unit in units if not unit.passed]
        print(f"  {len(units)} cores, {len(failed)} failed")
        for unit in failed[:5]:
            print(f"  {unit.name}: {len(unit.mismatches)} mismatching outputs, latency "
                  f"{unit.measured_latency_cycles} (model {unit.model_latency_cycles})")
    if result.timed_out:
        print(f"  stopped after {result.cycles} cycles with outputs missing")
    for unit in units:
        if unit.mismatches:
            print(f"  first mismatch in {unit.name}: {unit.mismatches[0].describe()}")
    if result.waves_path:
        print(f"  waveform: {result.waves_path}")
    print(f"  report: {result.report_path}; log {result.log_path}")


def _cmd_cosim(args) -> int:
    from tangentcore.config import parse_fold
    from tangentcore.hw.generate import generate_core
    from tangentcore.manifest import load_manifest
    from tangentcore.sim.runner import default_simulators, run_cosim, simulator_missing

    simulators = default_simulators(args.sim)
    for simulator in simulators:
        missing = simulator_missing(simulator)
        if missing:
            raise TangentcoreError(missing)
    if args.vectors is not None and args.vectors < 1:
        raise TangentcoreError(f"--vectors must be a positive count, not {args.vectors}")
    cache_dir = None if args.no_cache else "default"
    if args.regression is not None:
        if args.manifest or args.dataset:
            raise TangentcoreError("--regression draws its own networks and vectors; leave out the manifest "
                                   "and --dataset, or drop --regression")
        return _cosim_regression(args, simulators, cache_dir)
    if not args.manifest:
        raise TangentcoreError("a manifest is required unless --regression N is given")

    manifest = load_manifest(args.manifest)
    out_dir = args.out or Path("runs") / manifest.name / "cosim-cli"
    inputs = _cosim_inputs(args, manifest)
    core = generate_core(manifest, out_dir / "core", fold=parse_fold(args.fold))
    print(f"{manifest.name}: {len(inputs)} vectors on {', '.join(simulators)}; core {core.verilog}")
    failed = False
    for simulator in simulators:
        result = run_cosim(core, manifest, inputs, simulator, out_dir, seed=args.seed, waves=args.waves,
                           cache_dir=cache_dir)
        _print_cosim_result(result)
        failed |= not result.passed
    print("result: " + ("FAILED" if failed else "bit-exact on " + " and ".join(simulators)))
    return 1 if failed else 0


def _cosim_regression(args, simulators, cache_dir) -> int:
    from tqdm import tqdm

    from tangentcore.sim.regression import run_regression

    if args.regression < 1:
        raise TangentcoreError(f"--regression must be a positive count, not {args.regression}")
    out_dir = args.out or Path("runs") / "regression"
    vectors = args.vectors or 24
    total = args.regression * len(simulators)
    with tqdm(total=total, desc="regression", unit="core", disable=not sys.stderr.isatty()) as bar:
        results = run_regression(args.regression, simulators, out_dir, seed=args.seed, vectors=vectors,
                                 cache_dir=cache_dir, progress=bar.update)
    failed = False
    for simulator, runs in results.items():
        cores = sum(len(run.units) for run in runs)
        vectors_total = sum(run.vectors for run in runs)
        mismatches = sum(run.mismatches for run in runs)
        bad = [unit for run in runs for unit in run.units if not unit.passed]
        seconds = sum(run.build_seconds + run.simulate_seconds for run in runs)
        print(f"{simulator}: {cores} random networks, {vectors_total} vectors, {mismatches} mismatching outputs, "
              f"{len(bad)} failed cores, {seconds:.1f} s in {len(runs)} builds")
        for run in runs:
            for unit in run.units:
                if unit.mismatches:
                    print(f"  {unit.name}: {unit.mismatches[0].describe()}; report {run.report_path}")
        failed |= bool(bad) or any(run.timed_out for run in runs)
    print("result: " + ("FAILED" if failed else "0 mismatches"))
    return 1 if failed else 0


def _add_build(subparsers) -> None:
    from tangentcore.hw.build import BOARDS

    parser = subparsers.add_parser("build", help="build a bitstream for a board with Yosys and nextpnr (YoWASP)")
    parser.add_argument("manifest", help="manifest folder or its manifest.json")
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    parser.add_argument("--fold", default="auto",
                        help="'auto', 'PE,SIMD' for every layer or one 'PE,SIMD' per layer joined by ':', as for "
                             "generate")
    parser.add_argument("--baud", type=int, default=115200, help="UART baud rate of the board top (default 115200)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    parser.add_argument("--out", type=Path, default=Path("bitstreams"),
                        help="output root; the build goes to OUT/<design>/<board>/ (default bitstreams)")


def _cmd_build(args) -> int:
    from tangentcore.hw.build import build_board
    from tangentcore.hw.network import Network, parse_fold_spec, resolve_foldings
    from tangentcore.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    network = Network.from_manifest(manifest, resolve_foldings(manifest, parse_fold_spec(args.fold)))
    result = build_board(network, design=manifest.name, board=args.board, out_root=args.out, seed=args.seed,
                         baud=args.baud, cycles_per_inference=network.initiation_interval_cycles)
    summary = result.summary
    used = ", ".join(f"{name} {entry['used']}" + (f"/{entry['available']}" if entry["available"] else "")
                     for name, entry in summary["utilization"].items())
    print(f"{manifest.name} on {args.board} ({summary['device']}): {used}")
    for clock, fmax in summary["fmax"].items():
        print(f"  {clock}: Fmax {fmax['achieved_mhz']:.2f} MHz (constraint {fmax['constraint_mhz']:.2f} MHz)")
    if summary["fmax_margin_percent"] is not None:
        print(f"  timing margin {summary['fmax_margin_percent']:.1f} % over the {summary['board_clock_mhz']:.1f} MHz "
              "board clock")
    print(f"  {summary['inferences_per_second']:,.0f} inferences/s at {summary['board_clock_mhz']:.1f} MHz "
          f"({summary['cycles_per_inference']} cycles each)")
    print(f"  bitstream: {result.bitstream}")
    return 0


def _add_infer(subparsers) -> None:
    parser = subparsers.add_parser("infer", help="classify samples on a board over its serial port")
    parser.add_argument("manifest", help="manifest folder or its manifest.json (the one the bitstream was built from)")
    parser.add_argument("inputs", type=Path,
                        help="encoded samples: .npy, .npz (array 'inputs') or CSV. A dense network takes one "
                             "input vector per row, shape (n, n_in); a spiking network takes spike trains of "
                             "shape (n, T, n_in), or (n, T*n_in) with a sample's time steps back to back in "
                             "one row, as in CSV")
    parser.add_argument("--port", required=True, help="serial device, such as /dev/ttyUSB1")
    parser.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    parser.add_argument("--check", action="store_true", help="also compare every response with the reference")


def _load_inputs(path: Path):
    import numpy as np

    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "inputs" not in archive.files:
                    raise TangentcoreError(f"{path} has no array named 'inputs' (it has {', '.join(archive.files)})")
                return archive["inputs"]
        return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except FileNotFoundError:
        raise TangentcoreError(f"inputs file not found: {path}") from None
    except ValueError as error:
        raise TangentcoreError(f"cannot read inputs from {path}: {error}") from None


def _infer_samples(inputs, manifest, path: Path):
    """Return ``inputs`` as one sample per row: (n, n_in) for dense, (n, T, n_in) for spiking networks."""
    steps, size = manifest.time_steps, manifest.input.size
    if inputs.dtype.kind not in "iub":
        raise TangentcoreError(f"inputs in {path} must be integers (encoded inputs), not {inputs.dtype}")
    if not manifest.is_spiking:
        if inputs.ndim != 2 or inputs.shape[1] != size:
            raise TangentcoreError(f"inputs in {path} must have shape (n, {size}), not {inputs.shape}")
        return inputs
    if inputs.ndim == 2 and inputs.shape[1] == steps * size:
        inputs = inputs.reshape(len(inputs), steps, size)
    if inputs.ndim != 3 or inputs.shape[1:] != (steps, size):
        raise TangentcoreError(
            f"inputs in {path} must have shape (n, {steps}, {size}) for the spiking network {manifest.name} "
            f"({steps} time steps of {size} spikes), or (n, {steps * size}) with a sample's steps back to back "
            f"in one row; not {inputs.shape}")
    return inputs


def _cmd_infer(args) -> int:
    from tangentcore.hw.host import InferenceClient
    from tangentcore.manifest import load_manifest
    from tangentcore.sw import reference

    manifest = load_manifest(args.manifest)
    samples = _infer_samples(_load_inputs(args.inputs), manifest, args.inputs)
    expected = reference.forward(manifest, samples) if args.check else None
    client = InferenceClient(args.port, manifest, baud=args.baud)
    mismatches = 0
    try:
        for index, sample in enumerate(samples):
            label, scores = client.infer(sample)
            line = f"{index}: class {label}, scores {' '.join(map(str, scores))}"
            if expected is not None:
                same = label == expected["predictions"][index] and scores == expected["scores"][index].tolist()
                mismatches += not same
                line += "" if same else "  MISMATCH with the reference"
            print(line)
    finally:
        client.close()
    if expected is not None:
        print(f"{len(samples)} samples, {mismatches} differ from the reference")
    return 1 if mismatches else 0


def _add_paper(subparsers) -> None:
    from tangentcore.sw import paper

    paper.add_parser(subparsers)


def _cmd_paper(args) -> int:
    args.handler(args)
    return 0


def _add_size(subparsers) -> None:
    from tangentcore.sizing import DEFAULT_LAYER_CYCLES, DEFAULT_WEIGHTS, DEFAULT_WIDTHS

    parser = subparsers.add_parser(
        "size", help="pick the cheapest core that meets an accuracy target, from kernel predictions",
        description="Predict the accuracy of every hidden width and weight precision from the surrogate-gradient "
                    "NTK and a finite-width law fitted on short runs of the smallest widths, price every folding "
                    "with the calibrated resource model, and pick the cheapest design that meets the targets. "
                    "--verify then trains, co-simulates and builds the pick and its Pareto neighbours.")
    parser.add_argument("config", nargs="?", help="TOML config of a sign MLP; omit it for the built-in digits example")
    parser.add_argument("--target-accuracy", type=float, required=True,
                        help="test accuracy to meet, as a fraction (0.95) or in percent (95)")
    parser.add_argument("--board", required=True, help="board to fit: icebreaker or ulx3s")
    parser.add_argument("--throughput", type=float, default=0.0, help="inferences per second to meet (default: none)")
    parser.add_argument("--verify", action="store_true",
                        help="train, co-simulate and build the pick and its neighbours on the Pareto front")
    parser.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)), help="hidden widths to sweep")
    parser.add_argument("--weights", default=",".join(DEFAULT_WEIGHTS),
                        help="weight precisions to sweep: binary, ternary, int2 … int8")
    parser.add_argument("--layer-cycles", default=",".join(map(str, DEFAULT_LAYER_CYCLES)),
                        help="foldings to sweep, as targets of cycles per layer (FINN-style balanced folding)")
    parser.add_argument("--calibration-widths",
                        help="widths of the short calibration runs (default: the three smallest swept widths)")
    parser.add_argument("--calibration-seeds", type=int, default=2, help="seeds per calibration width (default 2)")
    parser.add_argument("--z", type=float, default=1.0,
                        help="a design meets the accuracy target if mean − z·std does (default 1)")
    parser.add_argument("--no-rank", action="store_true", help="skip the kernel ranking of architecture choices")
    parser.add_argument("--sim", choices=SIMULATOR_CHOICES, default="verilator",
                        help="simulators of --verify's co-simulation (default verilator)")
    parser.add_argument("--scheduler", help="address of a running dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster (default 2)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every task instead of reusing results")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/size-<config name>-<board>)")


def _cmd_size(args) -> int:
    from tangentcore.config import load_config
    from tangentcore.distributed import TaskRunner
    from tangentcore.sizing import SizingOptions, parse_weight_choices, parse_widths, size
    from tangentcore.sizing_report import format_report

    config = load_config(args.config)
    if not 0 < args.target_accuracy < 100:
        raise TangentcoreError(f"--target-accuracy must be a fraction such as 0.95 or a percentage such as 95, "
                               f"above 0 and below 100; not {args.target_accuracy:g}")
    target = args.target_accuracy / 100 if args.target_accuracy >= 1 else args.target_accuracy
    options = SizingOptions(
        target_accuracy=target, board=args.board, throughput=args.throughput, widths=tuple(parse_widths(args.widths)),
        weights=tuple(parse_weight_choices(args.weights)),
        layer_cycles=tuple(parse_widths(args.layer_cycles, "--layer-cycles")),
        calibration_widths=tuple(parse_widths(args.calibration_widths, "--calibration-widths"))
        if args.calibration_widths else (),
        calibration_seeds=args.calibration_seeds, z=args.z, rank=not args.no_rank)
    out_dir = args.out or Path("runs") / f"size-{config.name}-{args.board}"
    with TaskRunner(scheduler=args.scheduler, workers=args.workers, use_cache=not args.no_cache,
                    progress=sys.stderr.isatty()) as runner:
        report = size(config, options, runner, out_dir, verify=args.verify, simulators=_simulators(args.sim))
    print(format_report(report), end="")
    print(f"report: {out_dir / 'report.md'}, {out_dir / 'report.json'}; plots in {out_dir}")
    if report.chosen is None:
        return 1
    if args.verify:
        measured = report.chosen.measured
        build = measured["build"]
        mismatches = sum(r["mismatches"] for r in measured["cosim"].values())
        if measured["accuracy"] < target or mismatches or not build.get("ok"):
            print("verify: the pick does not meet its targets as built; see the table above", file=sys.stderr)
            return 1
    return 0


COMMANDS = {
    "run": (_add_run, _cmd_run),
    "train": (_add_train, _cmd_train),
    "generate": (_add_generate, _cmd_generate),
    "cosim": (_add_cosim, _cmd_cosim),
    "build": (_add_build, _cmd_build),
    "infer": (_add_infer, _cmd_infer),
    "paper": (_add_paper, _cmd_paper),
    "size": (_add_size, _cmd_size),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tangentcore",
        description="FPGA co-design for binary and spiking neural networks: train with surrogate gradients, "
                    "generate Amaranth cores, prove them bit-exact in cocotb.",
    )
    parser.add_argument("--version", action="version", version=f"tangentcore {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command][1](args)
    except TangentcoreError as error:
        print(f"tangentcore {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
