"""Shared fixtures and simulator skips."""

from pathlib import Path

import pytest

from tangentcore.sim.runner import simulator_missing
from tangentcore.sim.testing import simulator_params

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL_CONFIG = EXAMPLES / "digits_binary_small.toml"


def require_simulator(name: str) -> None:
    """Skip the calling test, naming the tool and how to install it, when ``name`` is not installed."""
    missing = simulator_missing(name)
    if missing:
        pytest.skip(missing)


@pytest.fixture(params=simulator_params())
def simulator(request):
    """Each simulator of ``$TANGENTCORE_SIM`` (default both) in turn, marked with its name; a missing
    one skips with the reason."""
    return request.param
