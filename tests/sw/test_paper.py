"""The SG-NTK paper experiments (``tangentcore paper --quick``), run through the command line."""

import json

import numpy as np
import pytest

from tangentcore.cli import main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    status = main(["paper", "--quick", "--out", str(out), "--seed", "3"])
    return status, out


def load(out, name):
    with open(out / f"{name}.json", encoding="utf-8") as stream:
        return json.load(stream)


def test_quick_run_writes_outputs(quick_run):
    status, out = quick_run
    assert status == 0
    for name in ("naive_ntk", "empirical_vs_analytic", "sgl_vs_sgntk_gp"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("naive", "empirical", "sgl", "summary"):
        assert load(out, name)
    assert not list(out.glob(".*.tmp"))


def test_naive_ntk_diagonal_grows(quick_run):
    _, out = quick_run
    depths = load(out, "naive")["depths"]
    # Θ(x, x) grows like m per hidden layer; off-diagonals and the SG-NTK converge.
    assert depths["1"]["diagonal_log_slope"] == pytest.approx(1.0, abs=0.05)
    assert depths["2"]["diagonal_log_slope"] == pytest.approx(2.0, abs=0.1)
    assert depths["1"]["diagonal_growth_ratio"] > 100
    for depth in ("1", "2"):
        assert depths[depth]["off_diagonal_relative_gap_to_sign"] < 1e-2
        assert depths[depth]["sgntk_diagonal_relative_gap_to_sign"] < 1e-2


def test_empirical_error_falls_with_width(quick_run):
    # Statistical (fixed seeds): widths 10 → 200 should cut the error by √20 ≈ 4.5.
    _, out = quick_run
    ratios = load(out, "empirical")["error_ratio_narrow_to_wide"]["2"]
    assert ratios["ntk_init"] > 2
    assert ratios["sgntk_init"] > 2


def test_sgl_ensemble_matches_gp(quick_run):
    _, out = quick_run
    sgl = load(out, "sgl")
    ensemble = sgl["widths"]["50"]
    gp_std = np.mean(sgl["sgntk_gp"]["std"])
    assert ensemble["train_rmse"] < 0.5 * np.sqrt(np.mean(np.square(sgl["train_targets"])))
    assert ensemble["std_ratio_to_sgntk_gp"] == pytest.approx(1.0, abs=0.3)
    # Statistical: the ensemble mean of 20 networks scatters by about σ/√20.
    assert ensemble["mean_rmse_to_sgntk_gp"] < 2.5 * gp_std / np.sqrt(sgl["networks"])


def test_unknown_experiment_exits_with_message(tmp_path, capsys):
    status = main(["paper", "--quick", "--out", str(tmp_path), "--experiments", "naive,foo"])
    assert status == 2
    assert "unknown experiment(s) ['foo']" in capsys.readouterr().err
