"""Benchmark the analytic kernels of tangentcore, optionally beside neural-tangents.

Workload: N inputs of dimension D (standard normal, seed 0), an MLP with three
hidden layers in the NTK parametrization (σ_w = 1, σ_b = 0), float64, the full
N × N train-train block of the NNGP kernel plus one tangent kernel:

- ``tangentcore sign + gaussian SG-NTK``: sign activation, gaussian surrogate
  of scale 1, ``MLPKernel.kernels`` (NNGP and SG-NTK in one pass);
- ``tangentcore erf NTK``: erf(u) with its true derivative, the same call.

With ``--peer-python PATH`` the same workload also runs in that interpreter
with neural-tangents (``stax.serial`` of Dense/Erf, ``get=("nngp", "ntk")``,
jit-compiled, x64 enabled), alternating with tangentcore so that both see the
same machine load. neural-tangents lives in its own environment because it
needs an older JAX than this project can install beside PyTorch.

Prints one JSON object: median and all wall-clock times per method and peak
memory (tracemalloc peak of NumPy allocations for tangentcore, the process's
maximum resident set size for both).

    python bench/bench_kernels.py --peer-python /tmp/nt-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from tangentcore.sw.kernels import MLPKernel, erf_activation, sign_activation
from tangentcore.sw.surrogates import get_surrogate

# Runs inside the peer interpreter: times neural-tangents on the same inputs.
PEER_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
from neural_tangents import stax

n, d, depth, repeats, activation = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = np.random.default_rng(0).standard_normal((n, d))
layers = []
for _ in range(depth):
    layers += [stax.Dense(512, W_std=1.0, b_std=0.0), {"erf": stax.Erf, "sign": stax.Sign}[activation]()]
layers.append(stax.Dense(1, W_std=1.0, b_std=0.0))
_, _, kernel_fn = stax.serial(*layers)
kernel_fn = jax.jit(kernel_fn, static_argnames="get")
start = time.perf_counter()
result = kernel_fn(x, None, get=("nngp", "ntk"))
result.ntk.block_until_ready()
first = time.perf_counter() - start
times = []
for _ in range(repeats):
    start = time.perf_counter()
    result = kernel_fn(x, None, get=("nngp", "ntk"))
    result.ntk.block_until_ready()
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "first_call": first, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ntk_00": float(result.ntk[0, 0]), "nngp_01": float(result.nngp[0, 1])}))
"""


def time_tangentcore(kernel: MLPKernel, x: np.ndarray, tangent: str, repeats: int) -> dict:
    kernel.kernels(x, tangent=tangent)  # Warm-up: imports, thread pool, first-touch of pages.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = kernel.kernels(x, tangent=tangent)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    kernel.kernels(x, tangent=tangent)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"times": times, "tracemalloc_peak_mib": peak / 2**20,
            "tangent_00": float(result.tangent[0, 0]), "nngp_01": float(result.nngp[0, 1])}


def time_peer(python: str, n: int, d: int, depth: int, repeats: int, activation: str) -> dict:
    completed = subprocess.run(
        [python, "-c", PEER_SCRIPT, str(n), str(d), str(depth), str(repeats), activation],
        capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"peer benchmark failed with exit status {completed.returncode}:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=2000, help="number of inputs N (default 2000)")
    parser.add_argument("--dimension", type=int, default=64, help="input dimension D (default 64)")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of all methods (default 3)")
    parser.add_argument("--peer-python", help="Python interpreter with neural-tangents installed")
    args = parser.parse_args()

    x = np.random.default_rng(0).standard_normal((args.inputs, args.dimension))
    methods = {
        "tangentcore sign + gaussian SG-NTK": (
            MLPKernel(args.depth, sign_activation(), get_surrogate("gaussian", 1.0)), "sgntk"),
        "tangentcore erf NTK": (MLPKernel(args.depth, erf_activation(1.0)), "ntk"),
    }
    records: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, (kernel, tangent) in methods.items():
            run = time_tangentcore(kernel, x, tangent, args.repeats)
            record = records.setdefault(name, {"times": []})
            record["times"] += run.pop("times")
            record.update(run)
        if args.peer_python:
            for activation in ("erf", "sign"):
                run = time_peer(args.peer_python, args.inputs, args.dimension, args.depth, args.repeats, activation)
                record = records.setdefault(f"neural-tangents {activation} NTK", {"times": []})
                record["times"] += run.pop("times")
                record.update(run)

    for record in records.values():
        record["median_s"] = float(np.median(record["times"]))
    records["tangentcore sign + gaussian SG-NTK"]["max_rss_mib"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    report = {
        "workload": {"inputs": args.inputs, "dimension": args.dimension, "hidden_layers": args.depth,
                     "dtype": "float64", "repeats": args.repeats, "rounds": args.rounds},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "load_average_at_end": os.getloadavg()},
        "methods": records,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
