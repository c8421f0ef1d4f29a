"""`tangentcore size` as a user runs it: the report, exit codes and errors for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
SMALL = 'name = "small"\n[model]\nhidden = [16]\n[train]\nepochs = 5\n'
SWEEP = ("--widths", "8,16", "--weights", "binary", "--layer-cycles", "1024", "--calibration-seeds", "1",
         "--no-rank")


def _size(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tangentcore", "size", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TANGENTCORE_CACHE": str(cwd / "cache")})


def test_size_prints_the_pick_and_writes_the_report(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL)
    result = _size("small.toml", "--target-accuracy", "30", "--board", "icebreaker", *SWEEP, "--out", "sized",
                   cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pick: w" in result.stdout
    assert "Pareto front" in result.stdout
    report = json.loads((tmp_path / "sized" / "report.json").read_text())
    assert report["pick"] in report["pareto_front"]
    assert report["options"]["target_accuracy"] == 0.3  # 30 is read as percent

    # The same sweep again comes from the cache.
    again = _size("small.toml", "--target-accuracy", "0.3", "--board", "icebreaker", *SWEEP, "--out", "sized",
                  cwd=tmp_path)
    assert "tasks: 0 computed, 3 from the cache" in again.stdout


def test_size_without_a_feasible_design_exits_1(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL)
    result = _size("small.toml", "--target-accuracy", "99.9", "--board", "icebreaker", *SWEEP, "--verify",
                   "--out", "sized", cwd=tmp_path)
    assert result.returncode == 1
    assert "No candidate meets every target" in result.stdout
    # The report is still written, and nothing was verified.
    assert json.loads((tmp_path / "sized" / "report.json").read_text())["verified"] == []


# each bad argument and the words its error must contain
@pytest.mark.parametrize("args, message", [
    (("--target-accuracy", "0", "--board", "icebreaker"), "not 0"),
    (("--target-accuracy", "150", "--board", "icebreaker"), "not 150"),
    (("--target-accuracy", "95", "--board", "de10nano"), "de10nano"),
    (("--target-accuracy", "95", "--board", "icebreaker", "--weights", "int12"), "int12"),
    (("--target-accuracy", "95", "--board", "icebreaker", "--widths", "16,abc"), "--widths"),
    (("--target-accuracy", "95", "--board", "icebreaker", "--workers", "0"), "workers"),
])
def test_bad_arguments_exit_2_with_the_value(tmp_path, args, message):
    result = _size(*args, "--out", "sized", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "sized").exists()


def test_lif_configs_are_refused(tmp_path):
    result = _size(EXAMPLES / "digits_lif.toml", "--target-accuracy", "95", "--board", "icebreaker", cwd=tmp_path)
    assert result.returncode == 2
    assert "sign_mlp" in result.stderr


@pytest.mark.slow
def test_digits_pick_meets_95_percent_on_icebreaker(tmp_path):
    # The pick, trained, built and co-simulated, meets the target, fits, matches the reference on every
    # output, and its predicted accuracy lies within 5 points of the measured one.
    result = _size("--target-accuracy", "95", "--board", "icebreaker", "--verify", "--out", "sized", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "sized" / "report.json").read_text())
    (pick,) = [design for design in report["verified"] if design["id"] == report["pick"]]
    measured = pick["measured"]
    assert measured["accuracy"] >= 0.95
    assert all(run["mismatches"] == 0 for run in measured["cosim"].values())
    assert measured["build"]["ok"]
    assert abs(pick["predicted"]["accuracy"] - measured["accuracy"]) <= 0.05
