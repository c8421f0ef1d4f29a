"""The command line as a user runs it: exit codes, messages and outputs."""

import json
import subprocess
import sys

import pytest

from ..conftest import SMALL_CONFIG, require_simulator


def _tangentcore(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tangentcore", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


def test_help_lists_commands(tmp_path):
    result = _tangentcore("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "train", "generate", "cosim"):
        assert command in result.stdout


def test_no_command_prints_help_and_fails(tmp_path):
    result = _tangentcore(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage" in result.stdout


def test_bad_config_exits_2_without_outputs(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[model]\nhidden = [0]\n")
    result = _tangentcore("run", config, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    assert "model.hidden must be a non-empty list of positive integers" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_generate_missing_manifest(tmp_path):
    result = _tangentcore("generate", tmp_path / "none", "--out", tmp_path / "core", cwd=tmp_path)
    assert result.returncode == 2
    assert "manifest not found" in result.stderr


@pytest.fixture(scope="module")
def trained_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    result = _tangentcore("train", SMALL_CONFIG, "--out", folder, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "manifest"


def test_train_writes_manifest_and_metrics(trained_manifest):
    assert (trained_manifest / "manifest.json").exists()
    metrics = json.loads((trained_manifest.parent / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_generate_reports_cycles(trained_manifest, tmp_path):
    result = _tangentcore("generate", trained_manifest, "--fold", "2,8", "--out", tmp_path / "core", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    description = json.loads((tmp_path / "core" / "core.json").read_text())
    # 64 inputs / SIMD 8 times 32 outputs / PE 2, then 32 / 8 times 10 / 2.
    assert [layer["compute_cycles"] for layer in description["layers"]] == [8 * 16, 4 * 5]
    assert f"latency {description['latency_cycles']} cycles" in result.stdout


def test_generate_bad_fold_names_layer(trained_manifest, tmp_path):
    result = _tangentcore("generate", trained_manifest, "--fold", "3,8", "--out", tmp_path / "core", cwd=tmp_path)
    assert result.returncode == 2
    assert "layer 0 (layer0): PE must divide the layer's 32 outputs, not 3" in result.stderr
    assert not (tmp_path / "core").exists()


@pytest.mark.icarus
def test_cosim_random_vectors(trained_manifest, tmp_path):
    require_simulator("icarus")
    result = _tangentcore("cosim", trained_manifest, "--vectors", 25, "--sim", "icarus", "--out", tmp_path,
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "icarus: 25 vectors, 0 mismatching outputs" in result.stdout


@pytest.mark.icarus
def test_run_json_ends_output(tmp_path):
    require_simulator("icarus")
    result = _tangentcore("run", SMALL_CONFIG, "--sim", "icarus", "--json", "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["mismatches"] == 0
    assert summary["simulators"]["icarus"]["vectors"] == 60
    assert set(summary["accuracy"]) == {"torch", "reference", "icarus"}
    assert summary["latency_cycles"] > 0
    assert (tmp_path / "run" / "summary.json").exists()
