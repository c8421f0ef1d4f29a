"""The UART board top in cocotb: bytes in, class and scores out, against the reference."""

from pathlib import Path

import numpy as np
import pytest

from tangentcore.config import load_config
from tangentcore.hw.network import resolve_foldings
from tangentcore.manifest import random_manifest
from tangentcore.pipeline import train_and_export
from tangentcore.sim.board_runner import run_uart_cosim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_uart_top_bit_exact(simulator, tmp_path):
    rng = np.random.default_rng(7)
    manifest = random_manifest(rng, [13, 6, 5], encoding="uint", bits=2)
    inputs = rng.integers(0, 4, size=(5, 13))
    result = run_uart_cosim(manifest, resolve_foldings(manifest, (1, 13)), inputs, simulator, tmp_path)
    assert result.vectors == 5
    assert result.mismatches == 0, result.first_mismatches


@pytest.mark.parametrize(
    # LIF output layer's scores: unsigned spike counts or signed membranes
    "output", ["spike_count", "final_membrane"],
)
def test_uart_top_lif_bit_exact(simulator, output, tmp_path):
    rng = np.random.default_rng(11)
    manifest = random_manifest(rng, [13, 6, 5], kind="lif", time_steps=6, output=output)
    inputs = rng.integers(0, 2, size=(4, 6, 13))
    # Folding 1,1 gives layer 0 6·13 + 3 = 81 cycles per step, more than one byte's 80 at 8 cycles
    # per bit, so each step's vector waits in the top while the next frame arrives.
    result = run_uart_cosim(manifest, resolve_foldings(manifest, (1, 1)), inputs, simulator, tmp_path)
    assert result.vectors == 4
    assert result.mismatches == 0, result.first_mismatches


@pytest.fixture(scope="module")
def digits_lif(tmp_path_factory):
    config = load_config(EXAMPLES / "digits_lif.toml")
    dataset, manifest, _, _ = train_and_export(config, tmp_path_factory.mktemp("digits_lif"), progress=False)
    return dataset, manifest


@pytest.mark.slow
def test_uart_top_digits_lif(digits_lif, simulator, tmp_path):
    dataset, manifest = digits_lif
    inputs = dataset.x_test[:24]
    # The iCEBreaker folding of docs/boards.md, at 8 cycles per bit so the simulation stays short.
    foldings = resolve_foldings(manifest, [(8, 8), (2, 16)])
    result = run_uart_cosim(manifest, foldings, inputs, simulator, tmp_path)
    assert result.vectors == 24
    assert result.mismatches == 0, result.first_mismatches
