"""The whole slice on real digits: train, export, generate, co-simulate on both simulators."""

import numpy as np
import pytest

from tangentcore.config import load_config, parse_fold
from tangentcore.hw.generate import generate_core
from tangentcore.pipeline import train_and_export
from tangentcore.sim.runner import run_cosim
from tangentcore.sw import reference

from ..conftest import SMALL_CONFIG


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = load_config(SMALL_CONFIG)
    out_dir = tmp_path_factory.mktemp("slice")
    dataset, manifest, torch_scores, _ = train_and_export(config, out_dir, progress=False)
    core = generate_core(manifest, out_dir / "core", fold=parse_fold(config.hardware.fold))
    return config, dataset, manifest, torch_scores, core, out_dir


def test_small_config_learns_digits(trained):
    _, dataset, manifest, _, _, _ = trained
    accuracy = np.mean(reference.predict(manifest, dataset.x_test) == dataset.y_test)
    # A 64-32-10 binary network after 30 epochs; chance is 10 %.
    assert accuracy > 0.8


def test_torch_equals_reference_on_test_split(trained):
    _, dataset, manifest, torch_scores, _, _ = trained
    np.testing.assert_array_equal(torch_scores, reference.forward(manifest, dataset.x_test)["scores"])


def test_rtl_bit_exact(trained, simulator):
    config, dataset, manifest, _, core, out_dir = trained
    inputs = dataset.x_test[: config.data.cosim_limit]
    result = run_cosim(core, manifest, inputs, simulator, out_dir / "cosim", seed=1)
    assert result.vectors == len(inputs)
    assert result.mismatches == 0, result.first_mismatches
    assert result.measured_latency_cycles == core.description["latency_cycles"]
    np.testing.assert_array_equal(result.labels, reference.predict(manifest, inputs))
