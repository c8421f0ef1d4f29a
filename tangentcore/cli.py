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
        description="Train a sign MLP with surrogate gradients, export it as an integer manifest, generate its "
                    "Amaranth core and check every output of the RTL against the NumPy reference in cocotb.",
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
    parser = subparsers.add_parser("generate", help="generate Verilog and RTLIL for a manifest")
    parser.add_argument("manifest", help="manifest folder or its manifest.json")
    parser.add_argument("--fold", default="auto",
                        help="'auto', or 'PE,SIMD' for every layer (clipped to each layer's size); "
                             "PE must divide each layer's outputs and SIMD its inputs")
    parser.add_argument("--out", type=Path, required=True, help="output folder")


def _cmd_generate(args) -> int:
    from tangentcore.config import parse_fold
    from tangentcore.hw.generate import generate_core
    from tangentcore.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    core = generate_core(manifest, args.out, fold=parse_fold(args.fold))
    description = core.description
    print(f"{manifest.name}: wrote {core.verilog}, {core.rtlil} and {core.description_path}")
    for layer in description["layers"]:
        print(f"  {layer['name']}: {layer['n_in']}->{layer['n_out']}, PE {layer['pe']}, SIMD {layer['simd']}, "
              f"{layer['compute_cycles']} compute cycles")
    print(f"  latency {description['latency_cycles']} cycles, "
          f"initiation interval {description['initiation_interval_cycles']} cycles")
    return 0


def _add_cosim(subparsers) -> None:
    parser = subparsers.add_parser("cosim", help="co-simulate a manifest's core against the reference")
    parser.add_argument("manifest", help="manifest folder or its manifest.json")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=("test",), help="use the test split of the manifest's training config")
    source.add_argument("--vectors", type=int, help="use N random input vectors (seeded)")
    parser.add_argument("--sim", choices=SIMULATOR_CHOICES, default="both", help="simulator (default: both)")
    parser.add_argument("--fold", default="auto", help="'auto' or 'PE,SIMD', as for generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of random vectors, gaps and back-pressure")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<name>/cosim-cli)")


def _cmd_cosim(args) -> int:
    import numpy as np

    from tangentcore.config import config_from_dict, parse_fold
    from tangentcore.hw.generate import generate_core
    from tangentcore.manifest import load_manifest
    from tangentcore.sim.runner import run_cosim, simulator_missing
    from tangentcore.sw.data import load_dataset

    manifest = load_manifest(args.manifest)
    out_dir = args.out or Path("runs") / manifest.name / "cosim-cli"
    if args.vectors is not None:
        if args.vectors < 1:
            raise TangentcoreError(f"--vectors must be a positive count, not {args.vectors}")
        rng = np.random.default_rng(args.seed)
        inputs = rng.integers(0, 1 << manifest.input.bits, size=(args.vectors, manifest.input.size))
    else:
        raw = manifest.provenance.get("config")
        if not isinstance(raw, dict):
            raise TangentcoreError("the manifest records no training config, so --dataset test cannot be "
                                   "rebuilt; use --vectors N instead")
        data = config_from_dict({"data": raw["data"]}).data
        inputs = load_dataset(data.dataset, encoding=data.encoding, input_bits=data.input_bits,
                              threshold=data.threshold, test_fraction=data.test_fraction, seed=data.seed).x_test
    core = generate_core(manifest, out_dir / "core", fold=parse_fold(args.fold))
    failed = False
    for simulator in _simulators(args.sim):
        missing = simulator_missing(simulator)
        if missing:
            raise TangentcoreError(missing)
        result = run_cosim(core, manifest, inputs, simulator, out_dir, seed=args.seed)
        rate = result.vectors / result.simulate_seconds if result.simulate_seconds else float("inf")
        print(f"{simulator}: {result.vectors} vectors, {result.mismatches} mismatching outputs, "
              f"{rate:.0f} vectors/s, latency {result.measured_latency_cycles} cycles "
              f"(model {result.model_latency_cycles}); log {result.log_path}")
        for mismatch in result.first_mismatches[:5]:
            print(f"  vector {mismatch['sample']} {mismatch['output']}: expected {mismatch['expected']}, "
                  f"got {mismatch['actual']} (cycle {mismatch['cycle']})")
        failed |= not result.passed
    return 1 if failed else 0


COMMANDS = {
    "run": (_add_run, _cmd_run),
    "train": (_add_train, _cmd_train),
    "generate": (_add_generate, _cmd_generate),
    "cosim": (_add_cosim, _cmd_cosim),
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
