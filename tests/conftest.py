"""Shared fixtures and simulator skips."""

from pathlib import Path

import pytest

from tangentcore.sim.runner import simulator_missing

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL_CONFIG = EXAMPLES / "digits_binary_small.toml"


def require_simulator(name: str) -> None:
    """Skip the calling test, naming the tool and how to install it, when ``name`` is not installed."""
    missing = simulator_missing(name)
    if missing:
        pytest.skip(missing)


@pytest.fixture(params=[pytest.param("verilator", marks=pytest.mark.verilator),
                        pytest.param("icarus", marks=pytest.mark.icarus)])
def simulator(request):
    """Each simulator in turn, marked with its name; a missing one skips with the reason."""
    require_simulator(request.param)
    return request.param
