"""Fit the resource model to a grid file of ``bench/resource_grid.py``, print its errors, and optionally ship it.

    python bench/fit_resources.py bench/results/grid-icebreaker.json [--write]

``--write`` stores the fitted coefficients in
``hw/resource_models/<board>.json``, the package data that
``tangentcore.hw.resources.load_model`` reads. The fit is deterministic, so
rerunning it on the same grid file writes the same coefficients.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tangentcore.fileio import write_atomic
from tangentcore.hw.resources import fit_errors, fit_grid_file, measured

MODELS_FOLDER = Path(__file__).resolve().parent.parent / "hw" / "resource_models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", help="JSON file written by bench/resource_grid.py")
    parser.add_argument("--write", action="store_true",
                        help="write the coefficients to hw/resource_models/<board>.json")
    args = parser.parse_args()
    model, records = fit_grid_file(args.grid)
    print(json.dumps({"model": model.to_json(), "errors": fit_errors(model, records)}, indent=2))

    print("layer 0: kind wbits ibits n_in n_out pe simd storage | logic meas pred | ff meas pred "
          "| ebr meas pred | fmax meas pred")
    for record in records:
        estimate = model.estimate_shapes(record["layers"])
        layer = record["layers"][0]
        print(f"{layer['weight_kind']:>7} {layer['weight_bits']} {layer['input_bits']} {layer['n_in']:4} "
              f"{layer['n_out']:4} {layer['pe']:2} {layer['simd']:3} {layer['weight_storage']:>8} | "
              f"{measured(record, 'logic'):6.0f} {estimate.logic:6.0f} | {measured(record, 'ff'):5.0f} "
              f"{estimate.ff:5.0f} | {measured(record, 'bram'):3.0f} {estimate.bram:3.0f} | "
              f"{measured(record, 'fmax_mhz'):6.1f} {estimate.fmax_mhz:6.1f}")

    if args.write:
        destination = MODELS_FOLDER / f"{model.board}.json"
        write_atomic(destination, json.dumps(model.to_json(), indent=1) + "\n")
        print(f"wrote {destination}")


if __name__ == "__main__":
    main()
