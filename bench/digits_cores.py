"""Generate digits cores at three foldings each and measure their cycles in Amaranth's simulator.

For the trained digits sign model (a manifest folder from ``tangentcore
train``) and a random LIF manifest of the same shape (64-64-10, T = 8, 4-bit
weights, spike inputs), the script generates Verilog and RTLIL at a fully
parallel and two folded foldings, simulates a few samples with the input
always valid and the output always ready, and compares the measured
latency and initiation interval with the cycle model of the core
description. It also checks every score against the reference.

    python bench/digits_cores.py SIGN_MANIFEST --out DIR [--samples N]

Cycles are exact counts; the Verilog size is what ``generate`` writes. No
synthesis runs here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tangentcore.config import config_from_dict
from tangentcore.hw.generate import generate_core
from tangentcore.hw.network import Network, parse_fold_spec, resolve_foldings
from tangentcore.hw.simulate import pack_vectors, run_stream, unpack_scores
from tangentcore.manifest import load_manifest, random_manifest
from tangentcore.pipeline import load_config_dataset
from tangentcore.sw import reference

FOLDS = ["64,64:10,64", "8,16:5,64", "4,8:2,8"]
# Folds of a 64-128-10 network: fully parallel, then two folded ones.
FOLDS_WIDE = ["128,64:10,128", "8,16:5,64", "4,8:2,8"]


def _digits_inputs(manifest, count: int) -> np.ndarray:
    """Return the first ``count`` encoded test inputs of the config the manifest was trained with."""
    recorded = manifest.provenance["config"]
    config = config_from_dict({"data": recorded["data"], "model": recorded["model"]})
    return load_config_dataset(config).x_test[:count]


def measure(manifest, x: np.ndarray, fold: str, out_dir: Path) -> dict:
    """Generate the core at ``fold``, simulate ``x`` and return the measured and modelled cycles."""
    foldings = resolve_foldings(manifest, parse_fold_spec(fold))
    core = generate_core(manifest, out_dir, foldings=foldings)
    network = Network.from_manifest(manifest, foldings)
    run = run_stream(network, pack_vectors(x.reshape(-1, manifest.input.size), manifest.input.bits), len(x))
    scores = np.array([unpack_scores(network, payload)[1] for payload in run.payloads])
    np.testing.assert_array_equal(scores, reference.forward(manifest, x)["scores"])
    return {
        "fold": fold,
        "measured_latency": run.output_valid[0] - run.input_handshakes[0],
        "model_latency": core.description["latency_cycles"],
        "measured_interval": run.output_valid[-1] - run.output_valid[-2],
        "model_interval": core.description["initiation_interval_cycles"],
        "verilog_bytes": core.description["verilog_bytes"],
        "storage": "/".join(layer["weight_storage"] for layer in core.description["layers"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure digits cores' cycles at three foldings.")
    parser.add_argument("sign_manifest", help="manifest folder of the trained digits sign model")
    parser.add_argument("--out", type=Path, required=True, help="folder for the generated cores")
    parser.add_argument("--samples", type=int, default=4, help="samples simulated per core (at least 3)")
    parser.add_argument("--models", default="sign,lif", help="which models to measure: 'sign', 'lif' or both")
    parser.add_argument("--lif-manifest", help="manifest folder of a trained digits LIF model (default: a random "
                                               "64-64-10 LIF manifest)")
    args = parser.parse_args(argv)

    sign = load_manifest(args.sign_manifest)
    lif = random_manifest(np.random.default_rng(0), [64, 64, 10], kind="lif", weight_kind="int", weight_bits=4,
                          time_steps=8, output="spike_count", membrane_bits=8, name="digits_lif_random")
    spikes = (np.random.default_rng(1).random((args.samples, 8, 64)) < 0.3).astype(np.int64)
    if args.lif_manifest:
        lif = load_manifest(args.lif_manifest)
        spikes = _digits_inputs(lif, args.samples)
    models = {"sign": (sign, _digits_inputs(sign, args.samples)), "lif": (lif, spikes)}
    print("| model | fold | weights | latency (measured / model) | interval (measured / model) | Verilog bytes |")
    print("|---|---|---|---|---|---|", flush=True)
    failed = False
    for key in args.models.split(","):
        manifest, x = models[key]
        hidden = manifest.layers[0].out_features
        for fold in FOLDS if hidden == 64 else FOLDS_WIDE:
            row = measure(manifest, x, fold, args.out / manifest.name / fold.replace(":", "_").replace(",", "x"))
            print(f"| {manifest.name} | {row['fold']} | {row['storage']} | {row['measured_latency']} / "
                  f"{row['model_latency']} | {row['measured_interval']} / {row['model_interval']} | "
                  f"{row['verilog_bytes']} |", flush=True)
            failed |= ((row["measured_latency"], row["measured_interval"])
                       != (row["model_latency"], row["model_interval"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
