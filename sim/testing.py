"""pytest support: co-simulate a generated design as an ordinary test.

Import the fixtures into a ``conftest.py``::

    from tangentcore.sim.testing import cosim, cosim_cache_dir  # noqa: F401

and call ``cosim(manifest, inputs)`` in a test: it generates the core into
the test's own ``tmp_path`` (so parallel workers of pytest-xdist never share
a build folder), co-simulates it on every available simulator and fails the
test with the first mismatch, or skips it naming a simulator that is not
installed. Built models are cached per test session in one folder that all
tests and workers share; builds are locked and renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tangentcore.hw.generate import generate_core
from tangentcore.sim.runner import CosimResult, default_simulators, run_cosim, simulator_missing

__all__ = ["assert_bit_exact", "cosim", "cosim_cache_dir", "simulator_params"]


def simulator_params() -> list:
    """Return ``pytest.param`` objects for the simulators of ``$TANGENTCORE_SIM``, marked and skipped if missing."""
    params = []
    for simulator in default_simulators():
        missing = simulator_missing(simulator)
        marks = [getattr(pytest.mark, simulator)]
        if missing:
            marks.append(pytest.mark.skip(reason=missing))
        params.append(pytest.param(simulator, marks=marks, id=simulator))
    return params


def assert_bit_exact(manifest, inputs, work_dir: str | Path, *, simulators: tuple[str, ...] | None = None,
                     fold: tuple[int, int] | None = None, seed: int = 0,
                     cache_dir="default") -> dict[str, CosimResult]:
    """Generate ``manifest``'s core and co-simulate it on ``inputs``; fail with the first mismatch.

    Returns each simulator's result. A simulator that is not installed skips
    the calling test with the reason.
    """
    simulators = default_simulators() if simulators is None else simulators
    for simulator in simulators:
        missing = simulator_missing(simulator)
        if missing:
            pytest.skip(missing)
    core = generate_core(manifest, Path(work_dir) / "core", fold=fold)
    results = {}
    for simulator in simulators:
        result = run_cosim(core, manifest, inputs, simulator, work_dir, seed=seed, cache_dir=cache_dir)
        if result.mismatches:
            first = result.first_mismatches[0]
            pytest.fail(f"{simulator}: {result.mismatches} mismatching outputs; first: sample {first['sample']} "
                        f"{first['output']}: expected {first['expected']}, got {first['actual']} at cycle "
                        f"{first['cycle']}; report {result.report_path}")
        if not result.passed:
            pytest.fail(f"{simulator}: measured latency {result.measured_latency_cycles} cycles, model "
                        f"{result.model_latency_cycles} (timed out: {result.timed_out}); report {result.report_path}")
        results[simulator] = result
    return results


@pytest.fixture(scope="session")
def cosim_cache_dir(tmp_path_factory) -> Path:
    """Return the folder where this test session caches built simulation models.

    pytest-xdist gives each worker its own temporary folder inside one per
    session; the cache goes into the session's, so workers share it.
    """
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "cosim-cache"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def cosim(tmp_path, cosim_cache_dir):
    """Return ``check(manifest, inputs, **options)``: :func:`assert_bit_exact` in this test's ``tmp_path``."""

    def check(manifest, inputs, **options):
        options.setdefault("cache_dir", cosim_cache_dir)
        return assert_bit_exact(manifest, inputs, tmp_path, **options)

    return check
