"""Build networks that are not in the calibration grid and compare them with the resource model's estimates.

The held-out networks have the digits model's shape (64-64-10, 4-bit
inputs) with binary or int weights at several foldings. A three-layer
network tests the whole-network sum on a depth that the two-layer grid
does not contain.

    python bench/validate_resources.py --board icebreaker --out bench/results/heldout-icebreaker.json

The output file is rewritten after every build, and a rerun skips the
networks it already contains and rescores all of them with the shipped model.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.hw.network import Network, parse_fold_spec, resolve_foldings
from tangentcore.hw.resources import load_model
from tangentcore.manifest import random_manifest

from resource_grid import build_summary  # this folder is on sys.path when the script runs

# (layer sizes, weight kind, fold spec as `tangentcore build --fold` takes it) per board.
CASES = {
    "icebreaker": [
        ([64, 64, 10], "binary", "2,16"),
        ([64, 64, 10], "binary", "8,16:5,64"),
        ([64, 64, 10], "binary", "4,8:2,8"),
        ([64, 64, 10], "int", "2,16"),
        ([64, 32, 32, 10], "binary", "4,16:4,16:2,16"),
    ],
    "ulx3s": [
        ([64, 64, 10], "binary", "2,16"),
        ([64, 64, 10], "binary", "8,16:5,64"),
        ([64, 64, 10], "binary", "8,64:5,64"),
        ([64, 64, 10], "int", "4,16:2,16"),
        ([64, 32, 32, 10], "binary", "4,16:4,16:2,16"),
    ],
}
QUANTITIES = ("logic", "ff", "bram", "dsp", "fmax_mhz")


def held_out_network(sizes: list[int], weight_kind: str, fold: str):
    """Return the manifest (random weights, 4-bit inputs) and foldings of one held-out network."""
    manifest = random_manifest(np.random.default_rng(1), sizes, weight_kind=weight_kind, encoding="uint", bits=4,
                               name="heldout")
    return manifest, resolve_foldings(manifest, parse_fold_spec(fold))


def predict(record: dict, board: str) -> dict:
    """Return the shipped model's estimate of a held-out record's network."""
    estimate = load_model(board).estimate(*held_out_network(record["sizes"], record["weight_kind"], record["fold"]))
    return {quantity: round(getattr(estimate, quantity), 2) for quantity in QUANTITIES}


def measure(sizes: list[int], weight_kind: str, fold: str, board: str, builds: Path | None) -> dict:
    """Build one held-out network and return its measurements."""
    manifest, foldings = held_out_network(sizes, weight_kind, fold)
    network = Network.from_manifest(manifest, foldings)
    started = time.perf_counter()
    design = f"heldout-{'-'.join(map(str, sizes))}-{weight_kind}-{fold.replace(':', '_').replace(',', 'x')}"
    summary = build_summary(network, design, board, builds)
    utilization = summary["utilization"]
    measured = {
        "logic": (utilization.get("lc") or utilization["lut"])["used"],
        "ff": utilization["ff"]["used"],
        "bram": utilization["ebr"]["used"],
        "dsp": utilization.get("dsp", {}).get("used", 0),
        "fmax_mhz": min(v["achieved_mhz"] for v in summary["fmax"].values()),
    }
    return {
        "sizes": sizes, "weight_kind": weight_kind, "fold": fold,
        "storage": [layer["weight_storage"] for layer in network.describe()["layers"]],
        "measured": measured,
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def summarize(records: list[dict]) -> dict:
    """Return the mean and max relative error per quantity, and the largest block RAM miss in blocks."""
    errors = {}
    for quantity in ("logic", "ff", "fmax_mhz"):
        relative = [abs(r["predicted"][quantity] / r["measured"][quantity] - 1) for r in records]
        errors[quantity] = {"mean": round(float(np.mean(relative)), 4), "max": round(float(np.max(relative)), 4)}
    for quantity in ("bram", "dsp"):
        # Records measured before DSP blocks were recorded have no "dsp" entry.
        off = [abs(r["predicted"][quantity] - r["measured"][quantity]) for r in records if quantity in r["measured"]]
        errors[f"{quantity}_max_blocks_off"] = max(off, default=None)
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker", choices=sorted(CASES), help="board to build for")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the comparisons")
    parser.add_argument("--builds", type=Path, help="folder to keep the builds and their logs in (default: delete them)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    document = {"board": args.board, "records": [], "rejected": []}
    if args.out.exists():
        document = json.loads(args.out.read_text())
    done = {(tuple(r["sizes"]), r["weight_kind"], r["fold"]) for r in document["records"] + document["rejected"]}
    cases = [case for case in CASES[args.board] if (tuple(case[0]), case[1], case[2]) not in done]
    for sizes, weight_kind, fold in tqdm(cases, desc=f"{args.board} held-out", unit="build"):
        try:
            document["records"].append(measure(sizes, weight_kind, fold, args.board, args.builds))
        except TangentcoreError as error:
            document["rejected"].append({"sizes": sizes, "weight_kind": weight_kind, "fold": fold,
                                         "error": str(error)})
        write_atomic(args.out, json.dumps(document, indent=1) + "\n")

    # Predictions come from the model shipped now, so a refit rescores the held-out builds without rebuilding.
    for record in document["records"]:
        record["predicted"] = predict(record, args.board)
    if document["records"]:
        document["errors"] = summarize(document["records"])
    write_atomic(args.out, json.dumps(document, indent=1) + "\n")
    print(json.dumps(document.get("errors"), indent=1))


if __name__ == "__main__":
    main()
