"""The UART board top in cocotb: bytes in, class and scores out, against the reference."""

import numpy as np

from tangentcore.hw.network import resolve_foldings
from tangentcore.manifest import random_manifest
from tangentcore.sim.board_runner import run_uart_cosim


def test_uart_top_bit_exact(simulator, tmp_path):
    rng = np.random.default_rng(7)
    manifest = random_manifest(rng, [13, 6, 5], encoding="uint", bits=2)
    inputs = rng.integers(0, 4, size=(5, 13))
    result = run_uart_cosim(manifest, resolve_foldings(manifest, (1, 13)), inputs, simulator, tmp_path)
    assert result.vectors == 5
    assert result.mismatches == 0, result.first_mismatches
