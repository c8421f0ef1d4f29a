"""The cosim command as a user runs it, on manifests written to disk."""

import dataclasses

import numpy as np
import pytest

import tangentcore.hw.generate
from tangentcore.cli import main
from tangentcore.manifest import random_manifest, save_manifest
from tangentcore.sim.runner import simulator_missing

pytestmark = [
    pytest.mark.icarus,
    pytest.mark.skipif(simulator_missing("icarus") is not None, reason=str(simulator_missing("icarus"))),
]


@pytest.fixture
def manifest_dir(tmp_path):
    manifest = random_manifest(np.random.default_rng(8), [12, 6, 3], encoding="uint", bits=2, name="cli_net")
    save_manifest(manifest, tmp_path / "manifest")
    return tmp_path / "manifest"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TANGENTCORE_CACHE", str(tmp_path / "cache"))


def test_cosim_vectors_bit_exact(manifest_dir, tmp_path, capsys):
    status = main(["cosim", str(manifest_dir), "--vectors", "12", "--sim", "icarus", "--out", str(tmp_path / "out")])
    output = capsys.readouterr().out
    assert status == 0
    assert "icarus: 12 vectors, 0 mismatching outputs" in output
    assert "cycles per inference: latency" in output
    assert "hidden-layer taps compared: layer0" in output
    assert output.rstrip().endswith("result: bit-exact on icarus")


def test_cosim_sim_from_environment(manifest_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TANGENTCORE_SIM", "icarus")
    assert main(["cosim", str(manifest_dir), "--vectors", "3", "--out", str(tmp_path / "out")]) == 0
    assert "on icarus;" in capsys.readouterr().out


def test_cosim_mismatch_exits_1(manifest_dir, tmp_path, capsys, monkeypatch):
    real_generate = tangentcore.hw.generate.generate_core

    def generate_flipped(manifest, out_dir, **options):
        arrays = {name: array.copy() for name, array in manifest.arrays.items()}
        arrays["layer1.weight"][2, 0] *= -1
        return real_generate(dataclasses.replace(manifest, arrays=arrays), out_dir, **options)

    monkeypatch.setattr(tangentcore.hw.generate, "generate_core", generate_flipped)
    status = main(["cosim", str(manifest_dir), "--vectors", "6", "--sim", "icarus", "--out", str(tmp_path / "out")])
    output = capsys.readouterr().out
    assert status == 1
    assert "first mismatch in cli_net: sample 0 score[2]: expected" in output
    assert "waveform: " in output
    assert (tmp_path / "out" / "icarus" / "waves.fst").exists()
    assert output.rstrip().endswith("result: FAILED")


def test_cosim_regression(tmp_path, capsys):
    status = main(["cosim", "--regression", "3", "--vectors", "4", "--sim", "icarus", "--out", str(tmp_path / "reg")])
    output = capsys.readouterr().out
    assert status == 0
    assert "icarus: 3 random networks, 12 vectors, 0 mismatching outputs, 0 failed cores" in output


@pytest.mark.parametrize(
    # arguments that the command rejects, and the message it names
    ("arguments", "message"),
    [
        (["--vectors", "0"], "--vectors must be a positive count, not 0"),
        (["--regression", "0"], "--regression must be a positive count, not 0"),
        ([], "a manifest is required unless --regression N is given"),
    ],
    ids=["zero-vectors", "zero-regression", "no-manifest"],
)
def test_cosim_rejects(arguments, message, capsys):
    assert main(["cosim", "--sim", "icarus", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_cosim_test_split_of_a_trained_lif_manifest(tmp_path, capsys):
    # The test split is rebuilt from the manifest's config, spike encoding and time steps included.
    config = tmp_path / "lif.toml"
    config.write_text('name = "tiny_lif"\n[data]\nencoding = "rate"\ntime_steps = 3\n'
                      '[model]\nkind = "lif_mlp"\nhidden = [8]\nweight_kind = "int"\nweight_bits = 4\n'
                      '[train]\nepochs = 1\n')
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    status = main(["cosim", str(tmp_path / "run" / "manifest"), "--sim", "icarus", "--out", str(tmp_path / "out")])
    output = capsys.readouterr().out
    assert status == 0
    assert "icarus: 360 vectors, 0 mismatching outputs" in output
