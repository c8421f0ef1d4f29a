"""Config loading: defaults, the shipped examples and the errors."""

from pathlib import Path

import pytest

from tangentcore.config import Config, load_config, parse_fold
from tangentcore.errors import TangentcoreError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_default_is_the_digits_example():
    assert load_config(None) == load_config(EXAMPLES / "digits_sign.toml")


def test_default_values():
    config = load_config(None)
    assert config.data.dataset == "digits"
    assert config.model.hidden == (64,)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_loads(path):
    assert isinstance(load_config(path), Config)


def _write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    # each case: TOML text and the part of the message that names the problem
    "text,message",
    [
        ("[data]\nencoding = 'gray'", "data.encoding must be one of binary, uint, rate, latency, direct, not 'gray'"),
        ("[data]\nencoding = 'binary'\ninput_bits = 4", "data.input_bits must be 1 with the binary encoding"),
        ("[data]\nencoding = 'uint'\ninput_bits = 9", "data.input_bits must be an integer from 1 to 8"),
        ("[data]\ntest_fraction = 1.5", "data.test_fraction must be between 0 and 1"),
        ("[model]\nhidden = []", "model.hidden must be a non-empty list of positive integers"),
        ("[model]\nhidden = [64, 0]", "model.hidden must be a non-empty list of positive integers"),
        ("[model]\nsurrogate = 'relu'", "model.surrogate must be one of"),
        ("[train]\nepochs = 'ten'", "train.epochs must be an integer, not 'ten'"),
        ("[train]\nlearning_rate = -1.0", "train.learning_rate must be a positive number"),
        ("[train]\nepochs = true", "train.epochs must be an integer, not True"),
        ("[hardware]\nfold = '8'", "fold must be 'auto' or 'PE,SIMD'"),
        ("[hardware]\nsimulators = ['modelsim']", "hardware.simulators must be a list drawn from"),
        ("[data]\nbogus = 1", "unknown key data.bogus"),
        ("[optimizer]\nlr = 1", "unknown section [optimizer]"),
        ("name = 'has space'", "name must be a non-empty string"),
        ("[data\n", "is not valid TOML"),
    ],
)
def test_bad_config_names_key(tmp_path, text, message):
    with pytest.raises(TangentcoreError) as error:
        load_config(_write(tmp_path, text))
    assert message in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(TangentcoreError, match="config file not found"):
        load_config(tmp_path / "absent.toml")


def test_parse_fold():
    assert parse_fold("auto") is None
    assert parse_fold("8,16") == (8, 16)
    with pytest.raises(TangentcoreError, match="positive integers"):
        parse_fold("0,4")
