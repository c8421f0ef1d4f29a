"""Synthesize, place and route a grid of single-layer cores and record their resources and Fmax.

Each point is one sign layer (n_in -> n_out, binary weights) behind the UART
board top, built with the same flow as ``tangentcore build``. The records
feed the resource model in ``tangentcore.hw.resources``.

    python bench/resource_grid.py --board icebreaker --out bench/results/resources-icebreaker.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tangentcore.fileio import write_atomic
from tangentcore.hw.build import build_board
from tangentcore.hw.layers import Folding
from tangentcore.hw.network import SignNetwork
from tangentcore.manifest import random_manifest

# Grid axes: fan-in, fan-out, input bits of the layer, and (PE, SIMD) foldings.
FAN_IN = (32, 64)
FAN_OUT = (16, 32)
INPUT_BITS = (1, 4)
FOLDINGS = ((1, 16), (2, 32), (4, 16), (8, 32))


def grid():
    for n_in, n_out, bits, (pe, simd) in itertools.product(FAN_IN, FAN_OUT, INPUT_BITS, FOLDINGS):
        if n_out % pe == 0 and n_in % simd == 0:
            yield n_in, n_out, bits, pe, simd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the records")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    records = []
    points = list(grid())
    for n_in, n_out, bits, pe, simd in tqdm(points, desc=f"{args.board} grid", unit="build"):
        encoding = "binary" if bits == 1 else "uint"
        # Two layers so that the second is the output layer; the first is the one the grid varies.
        manifest = random_manifest(np.random.default_rng(0), [n_in, n_out, 2], encoding=encoding, bits=bits,
                                   name="grid")
        network = SignNetwork(manifest, [Folding(pe=pe, simd=simd), Folding(pe=1, simd=min(n_out, 16))])
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            result = build_board(network, design="grid", board=args.board, out_root=scratch,
                                 cycles_per_inference=network.initiation_interval_cycles)
        records.append({
            "n_in": n_in, "n_out": n_out, "input_bits": bits, "pe": pe, "simd": simd,
            "acc_bits": manifest.layers[0].acc_bits,
            "utilization": result.summary["utilization"],
            "fmax_mhz": min(v["achieved_mhz"] for v in result.summary["fmax"].values()),
            "build_seconds": round(time.perf_counter() - started, 1),
        })
        write_atomic(args.out, json.dumps({"board": args.board, "records": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
