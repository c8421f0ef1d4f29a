"""Randomized regression: many small random networks, each co-simulated on random vectors.

Each case is a random manifest (depth, widths, weight kind and bits, input
encoding and bits, thresholds, LIF parameters) with a random folding per
layer. Several cases share one
simulator build: :class:`CoreBundle` puts their cores side by side in one
design, each with its own streams, and the testbench drives all of them at
once. That keeps the cost of a Verilator build per regression, not per case.

Network kinds are drawn through :data:`KINDS`, one entry per kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.hw.layers import Folding
from tangentcore.hw.network import Network
from tangentcore.manifest import random_manifest
from tangentcore.sim.runner import CosimResult, CosimUnit, simulate_units, with_score_sign
from tangentcore.sim.vectors import as_time_major, expected_outputs, random_inputs

__all__ = ["Case", "CoreBundle", "KINDS", "draw_cases", "network_for", "run_regression", "BUNDLE_TOP"]

log = logging.getLogger(__name__)

BUNDLE_TOP = "tangentcore_bundle"


def network_for(manifest, foldings: list[Folding]) -> wiring.Component:
    """Return the network core that :func:`tangentcore.hw.generate.generate_core` builds for ``manifest``."""
    return Network.from_manifest(manifest, foldings)


@dataclass
class Case:
    """One random network of the regression and the folding of each of its layers."""

    manifest: object
    foldings: list[Folding]

    def describe(self) -> str:
        sizes = "-".join(str(n) for n in [self.manifest.input.size, *(l.out_features for l in self.manifest.layers)])
        folds = ",".join(f"{f.pe}x{f.simd}" for f in self.foldings)
        return (f"{self.manifest.name}: {sizes} {self.manifest.input.encoding}/{self.manifest.input.bits}, "
                f"PExSIMD {folds}")


def _random_divisor(rng: np.random.Generator, n: int) -> int:
    return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))


def _draw_sizes(rng: np.random.Generator) -> list[int]:
    """Draw layer sizes: 1 to 3 layers, 1 to 32 inputs, hidden widths 1 to 24, 1 to 10 classes."""
    depth = int(rng.integers(1, 4))
    return [int(rng.integers(1, 33))] + [int(rng.integers(1, 25)) for _ in range(depth - 1)] + [int(rng.integers(1, 11))]


def _draw_case(rng: np.random.Generator, sizes: list[int], **options) -> Case:
    """Return a random manifest of ``sizes`` (``options`` go to ``random_manifest``) with random divisor foldings."""
    manifest = random_manifest(rng, sizes, **options)
    foldings = [Folding(pe=_random_divisor(rng, n_out), simd=_random_divisor(rng, n_in))
                for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return Case(manifest, foldings)


def _draw_dense_inputs(rng: np.random.Generator) -> dict:
    encoding = str(rng.choice(["binary", "uint"]))
    return {"encoding": encoding, "bits": 1 if encoding == "binary" else int(rng.integers(1, 7))}


def draw_sign(rng: np.random.Generator, name: str) -> Case:
    """Draw a dense network with binary weights and binary or 1- to 6-bit unsigned inputs."""
    return _draw_case(rng, _draw_sizes(rng), name=name, **_draw_dense_inputs(rng))


def draw_dense_kbit(rng: np.random.Generator, name: str) -> Case:
    """Draw a dense network with ternary or signed 2- to 6-bit weights."""
    weight_kind = str(rng.choice(["ternary", "int"]))
    weight_bits = 2 if weight_kind == "ternary" else int(rng.integers(2, 7))
    return _draw_case(rng, _draw_sizes(rng), name=name, weight_kind=weight_kind, weight_bits=weight_bits,
                      **_draw_dense_inputs(rng))


def draw_lif(rng: np.random.Generator, name: str) -> Case:
    """Draw an LIF network: 1 to 5 time steps, leak shift 0 to 4, either reset, 4- to 8-bit membranes, any output."""
    weight_kind = str(rng.choice(["binary", "ternary", "int"]))
    weight_bits = {"binary": 1, "ternary": 2}.get(weight_kind, int(rng.integers(2, 6)))
    membrane_bits = int(rng.integers(4, 9))
    # Shifts beyond membrane_bits - 1 leak exactly as membrane_bits - 1 does, so the manifest rejects them.
    leak_shift = int(rng.integers(0, 5)) % membrane_bits
    return _draw_case(rng, _draw_sizes(rng), name=name, kind="lif", weight_kind=weight_kind, weight_bits=weight_bits,
                      time_steps=int(rng.integers(1, 6)), leak_shift=leak_shift,
                      reset=str(rng.choice(["subtract", "zero"])), membrane_bits=membrane_bits,
                      output=str(rng.choice(["spike_count", "final_membrane", "max_membrane"])))


# The kinds of network the regression draws, each a function (rng, name) -> Case.
KINDS = {
    "sign": draw_sign,
    "dense-kbit": draw_dense_kbit,
    "lif": draw_lif,
}


def draw_cases(count: int, rng: np.random.Generator, kinds: tuple[str, ...] | None = None) -> list[Case]:
    """Draw ``count`` random cases, cycling through ``kinds`` (default: every kind in :data:`KINDS`)."""
    kinds = tuple(KINDS) if kinds is None else kinds
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise TangentcoreError(f"network kinds must be among {', '.join(KINDS)}, not {', '.join(unknown) or 'none'}")
    return [KINDS[kinds[index % len(kinds)]](rng, f"{kinds[index % len(kinds)]}{index}") for index in range(count)]


class CoreBundle(wiring.Component):
    """Several network cores side by side in one design.

    Ports
        n{k}_i, n{k}_o: the ``i`` and ``o`` streams of core ``k``, unchanged
            (see the network core's own documentation). Core ``k`` is the
            instance ``net{k}``.
    """

    def __init__(self, networks: list[wiring.Component]):
        if not networks:
            raise TangentcoreError("a bundle needs at least one core")
        self.networks = networks
        members = {}
        for index, network in enumerate(networks):
            members[f"n{index}_i"] = network.signature.members["i"]
            members[f"n{index}_o"] = network.signature.members["o"]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for index, network in enumerate(self.networks):
            m.submodules[f"net{index}"] = network
            wiring.connect(m, wiring.flipped(getattr(self, f"n{index}_i")), network.i)
            wiring.connect(m, network.o, wiring.flipped(getattr(self, f"n{index}_o")))
        return m


def bundle_units(cases: list[Case], vectors: int, rng: np.random.Generator, out_dir: Path) -> tuple[Path, list[CosimUnit]]:
    """Write the Verilog of a bundle of ``cases`` into ``out_dir``; return it and one unit per case."""
    networks = [network_for(case.manifest, case.foldings) for case in cases]
    path = write_atomic(Path(out_dir) / f"{BUNDLE_TOP}.v",
                        verilog.convert(CoreBundle(networks), name=BUNDLE_TOP, emit_src=False))
    units = []
    for index, (case, network) in enumerate(zip(cases, networks)):
        inputs = as_time_major(case.manifest, random_inputs(case.manifest, vectors, rng))
        description = with_score_sign(network.describe(), case.manifest)
        units.append(CosimUnit(name=case.manifest.name, description=description, inputs=inputs,
                               expected=expected_outputs(case.manifest, inputs), prefix=f"n{index}_",
                               scope=(f"net{index}",)))
    return path, units


def run_regression(count: int, simulators: tuple[str, ...], work_dir: str | Path, *, seed: int = 0,
                   vectors: int = 24, cases_per_build: int = 25, kinds: tuple[str, ...] | None = None,
                   cache_dir="default", progress=None) -> dict[str, list[CosimResult]]:
    """Co-simulate ``count`` random networks on every simulator; return each simulator's results per build.

    Cases are bundled ``cases_per_build`` at a time; ``progress`` (a callable
    taking the number of cases finished) is called after each build's run.
    """
    if count < 1:
        raise TangentcoreError(f"the number of regression networks must be positive, not {count}")
    rng = np.random.default_rng(seed)
    cases = draw_cases(count, rng, kinds)
    results: dict[str, list[CosimResult]] = {simulator: [] for simulator in simulators}
    for start in range(0, count, cases_per_build):
        group = cases[start : start + cases_per_build]
        folder = Path(work_dir) / f"cases{start:04d}"
        verilog_path, units = bundle_units(group, vectors, rng, folder)
        for case in group:
            log.debug("regression case %s", case.describe())
        for simulator in simulators:
            result = simulate_units(units, verilog_path, BUNDLE_TOP, simulator, folder / simulator, seed=seed + start,
                                    cache_dir=cache_dir)
            results[simulator].append(result)
            if progress is not None:
                progress(len(group))
    return results
