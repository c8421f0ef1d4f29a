"""Fit the resource model to a grid file of ``bench/resource_grid.py`` and print its errors.

    python bench/fit_resources.py bench/results/resources-icebreaker.json
"""

from __future__ import annotations

import argparse
import json

from tangentcore.hw.resources import fit, fit_errors, load_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", help="JSON file written by bench/resource_grid.py")
    args = parser.parse_args()
    board, records = load_records(args.grid)
    model = fit(board, records)
    print(json.dumps({"model": model.to_json(), "errors": fit_errors(model, records)}, indent=2))
    print("n_in n_out bits pe simd | logic measured predicted | fmax measured predicted")
    for r in records:
        measured = r["utilization"].get("lc", r["utilization"].get("lut"))["used"]
        predicted = model.logic(r["n_in"], r["n_out"], r["input_bits"], r["pe"], r["simd"], r["acc_bits"])
        print(f"{r['n_in']:4} {r['n_out']:4} {r['input_bits']:4} {r['pe']:2} {r['simd']:4} | "
              f"{measured:6} {predicted:8.0f} | {r['fmax_mhz']:6.1f} {model.fmax_mhz(r['simd'], r['input_bits']):6.1f}")


if __name__ == "__main__":
    main()
