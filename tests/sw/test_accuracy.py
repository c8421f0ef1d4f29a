"""Full-size training runs of the shipped examples: accuracy targets and exact export (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tangentcore.config import load_config
from tangentcore.pipeline import train_and_export

EXAMPLES = Path(__file__).parents[2] / "examples"

# example config and the test accuracy it must reach
TARGETS = [
    ("digits_sign.toml", 0.95),  # binary weights, 4-bit inputs
    ("digits_lif.toml", 0.96),  # 4-bit weights, T = 16
    ("mnist_sign.toml", 0.92),  # 4-bit weights, 4-bit inputs, 1,000 test images
]


@pytest.mark.slow
@pytest.mark.parametrize("example, target", TARGETS, ids=["digits_sign", "digits_lif", "mnist_sign"])
def test_example_reaches_accuracy(tmp_path, example, target):
    config = load_config(EXAMPLES / example)
    # train_and_export raises if the manifest disagrees with the trained model on any test score.
    dataset, manifest, _, _ = train_and_export(config, tmp_path, progress=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["torch_vs_reference_mismatches"] == 0
    assert metrics["test_accuracy"] >= target
    assert manifest.layers[0].weight_bits <= 4
