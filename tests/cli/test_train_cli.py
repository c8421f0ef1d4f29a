"""``tangentcore train`` on config files, as a user runs it, and the config keys of training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tangentcore.cli import main
from tangentcore.config import load_config
from tangentcore.errors import TangentcoreError
from tangentcore.manifest import load_manifest

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))

TINY = """
name = "cli_lif"
[data]
encoding = "latency"
time_steps = 3
[model]
kind = "lif_mlp"
hidden = [8]
weight_kind = "int"
weight_bits = 2
membrane_bits = 6
output = "max_membrane"
[train]
epochs = {epochs}
batch_size = 256
baseline = true
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])  # every shipped example
def test_example_config_loads(path):
    config = load_config(path)
    assert config.name == path.stem


def test_examples_exist():
    assert {path.stem for path in EXAMPLES} >= {"digits_sign", "digits_lif", "mnist_sign"}


def test_train_writes_manifest_and_metrics(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY.format(epochs=1))
    assert main(["train", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "run")]) == 0
    manifest = load_manifest(tmp_path / "run" / "manifest")
    assert manifest.is_spiking
    assert manifest.time_steps == 3
    assert manifest.layers[-1].output == "max_membrane"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["torch_vs_reference_mismatches"] == 0
    assert len(metrics["history"]) == 1
    assert "baseline" in metrics
    assert "ReLU baseline" in capsys.readouterr().out


def test_train_resume_continues(tmp_path):
    (tmp_path / "one.toml").write_text(TINY.format(epochs=2))
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "one.toml"), "--out", str(out)]) == 0
    first = json.loads((out / "metrics.json").read_text())["history"]
    assert main(["train", str(tmp_path / "one.toml"), "--out", str(out), "--resume"]) == 0
    # The checkpoint is after the last epoch, so resuming trains nothing and reproduces the history.
    assert json.loads((out / "metrics.json").read_text())["history"] == first


def test_train_resume_without_checkpoint(tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY.format(epochs=1))
    assert main(["train", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


# a config fragment with a bad training key, and the message that names it
BAD_CONFIGS = [
    ('[model]\nkind = "cnn"', "config: model.kind must be one of sign_mlp, lif_mlp, not 'cnn'"),
    ('[model]\nweight_kind = "int"\nweight_bits = 9', "model.weight_bits must be an integer from 2 to 8"),
    ('[model]\nweight_kind = "ternary"', "model.weight_bits must be 2 with ternary weights, not 1"),
    ('[model]\nkind = "lif_mlp"\n[data]\nencoding = "uint"', "data.encoding must be a spike encoding"),
    ('[data]\nencoding = "rate"\ntime_steps = 4', "data.encoding must be binary or uint for model.kind sign_mlp"),
    ('[data]\ntime_steps = 4', "data.time_steps must be 1 with the uint encoding"),
    ('[model]\nkind = "lif_mlp"\nmembrane_bits = 30\n[data]\nencoding = "rate"',
     "model.membrane_bits must be an integer from 2 to 24, not 30"),
    ('[model]\nkind = "lif_mlp"\nleak_shift = 12\n[data]\nencoding = "rate"',
     "model.leak_shift must be an integer from 0 to membrane_bits - 1 = 11, not 12"),
    ('[model]\nkind = "lif_mlp"\nthreshold = 5000\n[data]\nencoding = "rate"',
     "model.threshold must be 0 (automatic) or an integer from 1 to 2047"),
    ('[model]\nkind = "lif_mlp"\nreset = "hold"\n[data]\nencoding = "rate"', "model.reset must be one of subtract, zero"),
    ('[model]\nkind = "lif_mlp"\noutput = "mean"\n[data]\nencoding = "rate"', "model.output must be one of"),
    ('[model]\nlearn_threshold = 1', "model.learn_threshold must be true or false, not 1"),
    ('[data]\ndataset = "npz"', "data.path must be the npz file to read"),
    ('[data]\ndataset = "idx"\npath = "a"', "data.labels_path must be the IDX labels file"),
    ('[data]\npath = "a.npz"', "data.path must be empty for dataset 'digits'"),
    ('[data]\npixel_max = -1.0', "data.pixel_max must be 0 (the dataset's own) or a positive number"),
    ("[data]\naugment_shift = 5", "data.augment_shift must be an integer from 0 (off) to 4 pixels"),
    ('[train]\nbaseline = "yes"', "train.baseline must be true or false"),
]


@pytest.mark.parametrize("fragment, message", BAD_CONFIGS)
def test_bad_config_names_key(tmp_path, fragment, message):
    (tmp_path / "bad.toml").write_text(fragment + "\n")
    with pytest.raises(TangentcoreError) as error:
        load_config(tmp_path / "bad.toml")
    assert message in str(error.value)


def test_bad_config_exits_2(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text('[model]\nkind = "cnn"\n')
    assert main(["train", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "run")]) == 2
    assert "model.kind must be one of" in capsys.readouterr().err
