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


@pytest.fixture(params=["verilator", "icarus"])
def simulator(request):
    """Each simulator in turn; a missing one skips with the reason."""
    request.applymarker(getattr(pytest.mark, request.param))
    require_simulator(request.param)
    return request.param
