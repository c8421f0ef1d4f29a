"""Synthesize, place and route a grid of two-layer cores and record their resources and Fmax.

Each point is a two-layer dense network behind the UART board top, built
with the same flow as ``tangentcore build``. The first layer varies in size,
weight kind, input bits and folding; the second is a 10-class output layer.
The records, with each layer's description, feed the resource model in
``tangentcore.hw.resources``.

    python bench/resource_grid.py --board icebreaker --out bench/results/grid-icebreaker.json

The output file is rewritten after every build, and a rerun skips the points
it already holds, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.hw.build import build_board
from tangentcore.hw.layers import Folding
from tangentcore.hw.network import Network
from tangentcore.manifest import random_manifest

N_CLASSES = 10
# Version of the output file's layout; a rerun resumes only a file of this version.
FORMAT = 2

# First-layer datapaths as (weight kind, weight bits, input bits), each with its own shapes
# (n_in, n_out, PE, SIMD). Costlier products get fewer lanes, so that most points fit the UP5K's
# 5,280 LCs. The shapes mix shallow memories (LUT ROM) with deep ones of 32 to 128 rows, which
# request block RAM once they reach 4 kbit.
GRID = {
    ("binary", 1, 1): [(32, 16, 1, 16), (64, 32, 2, 32), (64, 32, 4, 32), (64, 32, 8, 32), (128, 64, 8, 16),
                       (64, 16, 1, 8), (128, 64, 4, 64)],
    ("binary", 1, 4): [(32, 16, 1, 16), (64, 32, 2, 16), (64, 32, 4, 16), (64, 32, 8, 16), (128, 32, 4, 32)],
    ("int", 4, 1): [(32, 16, 1, 16), (64, 32, 2, 16), (64, 32, 4, 16), (64, 32, 8, 16), (64, 16, 1, 8),
                    (128, 32, 2, 32)],
    ("int", 4, 4): [(32, 16, 1, 8), (32, 16, 1, 16), (64, 32, 2, 16), (64, 32, 4, 8), (64, 32, 4, 16),
                    (128, 16, 1, 16)],
    ("ternary", 2, 1): [(32, 16, 1, 16), (64, 32, 4, 16), (64, 32, 8, 32), (64, 16, 1, 8), (128, 32, 4, 32)],
    ("ternary", 2, 4): [(32, 16, 1, 16), (64, 32, 4, 16), (64, 32, 2, 8)],
}
# Fully parallel layers (a constant parameter row) on every board, and larger layers that only the
# ECP5 has room for. They come after GRID, so that adding them kept the keys of the points before.
LATER = {
    "icebreaker": {("binary", 1, 1): [(32, 16, 16, 32)], ("binary", 1, 4): [(32, 8, 8, 32)]},
    "ulx3s": {("binary", 1, 1): [(32, 16, 16, 32), (128, 64, 16, 64)], ("binary", 1, 4): [(32, 8, 8, 32), (64, 64, 8, 64)],
              ("int", 4, 1): [(64, 64, 8, 32)], ("int", 4, 4): [(64, 32, 8, 16)], ("ternary", 2, 4): [(64, 64, 8, 32)]},
}
# The output layer's PE cycles through these divisors of 10, so that its cost is not a constant.
OUTPUT_PE = (1, 2, 5)


def grid(board: str) -> list[dict]:
    """Return the grid points of ``board`` as dicts of the first layer's parameters and the output layer's folding."""
    points = []
    for layers in (GRID, LATER[board]):
        for (weight_kind, weight_bits, input_bits), shapes in layers.items():
            for n_in, n_out, pe, simd in shapes:
                points.append({"weight_kind": weight_kind, "weight_bits": weight_bits, "input_bits": input_bits,
                               "n_in": n_in, "n_out": n_out, "pe": pe, "simd": simd,
                               "output_pe": OUTPUT_PE[len(points) % len(OUTPUT_PE)],
                               "output_simd": min(n_out, 16)})
    return points


def point_key(point: dict) -> tuple:
    return tuple(point[name] for name in ("weight_kind", "weight_bits", "input_bits", "n_in", "n_out", "pe", "simd",
                                          "output_pe", "output_simd"))


def build_summary(network: Network, design: str, board: str, out_root: Path | None = None) -> dict:
    """Build ``network`` and return its ``summary.json``, also when it misses the board clock.

    A build that misses the clock still places and routes, and its
    measurements are as valid for the model as any other. The build goes to
    ``out_root/design/board`` or, without ``out_root``, to a scratch folder
    that is deleted. Raises TangentcoreError when the design does not fit.
    """
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(out_root or scratch)
        try:
            return build_board(network, design=design, board=board, out_root=root,
                               cycles_per_inference=network.initiation_interval_cycles).summary
        except TangentcoreError:
            summary_path = root / design / board / "summary.json"
            if not summary_path.exists():
                raise
            return json.loads(summary_path.read_text())


def build_point(point: dict, board: str) -> dict:
    """Build one grid point and return its record; raises TangentcoreError if it does not fit."""
    encoding = "binary" if point["input_bits"] == 1 else "uint"
    manifest = random_manifest(np.random.default_rng(0), [point["n_in"], point["n_out"], N_CLASSES],
                               weight_kind=point["weight_kind"], weight_bits=point["weight_bits"],
                               encoding=encoding, bits=point["input_bits"], name="grid")
    foldings = [Folding(pe=point["pe"], simd=point["simd"]),
                Folding(pe=point["output_pe"], simd=point["output_simd"])]
    network = Network.from_manifest(manifest, foldings)
    started = time.perf_counter()
    summary = build_summary(network, "grid", board)
    return {
        **point,
        "layers": network.describe()["layers"],
        "utilization": summary["utilization"],
        "fmax_mhz": min(v["achieved_mhz"] for v in summary["fmax"].values()),
        "timing_met": summary["timing_met"],
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="icebreaker", choices=sorted(LATER), help="board to build for")
    parser.add_argument("--out", type=Path, required=True,
                        help="JSON file of the records; points already in it are skipped")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    document = {"board": args.board, "format": FORMAT, "records": [], "rejected": []}
    if args.out.exists():
        document = json.loads(args.out.read_text())
        if document.get("board") != args.board or document.get("format") != FORMAT:
            raise SystemExit(f"{args.out} contains a grid of board {document.get('board')!r}, format "
                             f"{document.get('format')!r}, not {args.board!r} format {FORMAT}; choose another --out file")
    done = {point_key(entry) for entry in document["records"] + document["rejected"]}
    points = [point for point in grid(args.board) if point_key(point) not in done]

    for point in tqdm(points, desc=f"{args.board} grid", unit="build"):
        try:
            document["records"].append(build_point(point, args.board))
        except TangentcoreError as error:
            # A point that does not fit is kept apart with its message; the model is fitted to the rest.
            document["rejected"].append({**point, "error": str(error)})
        write_atomic(args.out, json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
