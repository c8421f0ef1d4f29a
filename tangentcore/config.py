"""The run configuration: a TOML file with the sections ``data``, ``model``,
``train`` and ``hardware``, validated on load.

Every key has a default, and the defaults together are the built-in example
(``examples/digits_sign.toml`` spells them out): a 64-64-10 sign MLP with
binary weights on scikit-learn's handwritten digits, with 4-bit inputs.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tangentcore.errors import TangentcoreError
from tangentcore.sw.surrogates import SURROGATE_NAMES

__all__ = ["Config", "DataConfig", "ModelConfig", "TrainConfig", "HardwareConfig", "load_config"]

DATASETS = ("digits",)
ENCODINGS = ("binary", "uint")
SIMULATORS = ("verilator", "icarus")


@dataclass(frozen=True)
class DataConfig:
    """Dataset, split and input encoding."""

    dataset: str = "digits"
    # "binary": bit = pixel >= threshold; "uint": unsigned input_bits-bit integers.
    encoding: str = "uint"
    input_bits: int = 4
    # Pixel threshold for the binary encoding, in the dataset's pixel units (digits: 0..16).
    threshold: float = 8.0
    test_fraction: float = 0.2
    # Limits the number of test images that are co-simulated; 0 keeps all of them.
    cosim_limit: int = 0
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Network topology and surrogate gradient."""

    kind: str = "sign_mlp"
    hidden: tuple[int, ...] = (64,)
    surrogate: str = "gaussian"
    surrogate_scale: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings."""

    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class HardwareConfig:
    """Folding of the generated core and the simulators that check it."""

    # "auto", or "PE,SIMD" applied to every layer (clipped to each layer's size).
    fold: str = "auto"
    simulators: tuple[str, ...] = SIMULATORS


@dataclass(frozen=True)
class Config:
    """A whole run configuration."""

    name: str = "digits_sign"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "hardware": HardwareConfig,
}


def _fail(key: str, requirement: str, value: Any) -> TangentcoreError:
    return TangentcoreError(f"config: {key} must be {requirement}, not {value!r}")


def _build_section(section: str, cls, values: Any):
    if not isinstance(values, dict):
        raise _fail(section, "a table", values)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TangentcoreError(
            f"config: unknown key {section}.{unknown[0]}; known keys are {', '.join(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        key = f"{section}.{name}"
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise _fail(key, "a list", value)
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise _fail(key, "true or false", value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(key, "an integer", value)
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _fail(key, "a number", value)
            value = float(value)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise _fail(key, "a string", value)
        kwargs[name] = value
    return cls(**kwargs)


def validate_config(config: Config) -> Config:
    """Check value ranges across the config; raise TangentcoreError naming the first bad key."""
    data, model, train, hardware = config.data, config.model, config.train, config.hardware
    if data.dataset not in DATASETS:
        raise _fail("data.dataset", f"one of {', '.join(DATASETS)}", data.dataset)
    if data.encoding not in ENCODINGS:
        raise _fail("data.encoding", f"one of {', '.join(ENCODINGS)}", data.encoding)
    if data.encoding == "binary" and data.input_bits != 1:
        raise _fail("data.input_bits", "1 with the binary encoding", data.input_bits)
    if data.encoding == "uint" and not 1 <= data.input_bits <= 8:
        raise _fail("data.input_bits", "an integer from 1 to 8 with the uint encoding", data.input_bits)
    if not 0.0 < data.test_fraction < 1.0:
        raise _fail("data.test_fraction", "between 0 and 1 (exclusive)", data.test_fraction)
    if not math.isfinite(data.threshold):
        raise _fail("data.threshold", "a finite number", data.threshold)
    if data.cosim_limit < 0:
        raise _fail("data.cosim_limit", "0 (all test images) or a positive count", data.cosim_limit)

    if model.kind != "sign_mlp":
        raise _fail("model.kind", "'sign_mlp'", model.kind)
    if not model.hidden or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in model.hidden):
        raise _fail("model.hidden", "a non-empty list of positive integers", list(model.hidden))
    if model.surrogate not in SURROGATE_NAMES:
        raise _fail("model.surrogate", f"one of {', '.join(SURROGATE_NAMES)}", model.surrogate)
    if not (math.isfinite(model.surrogate_scale) and model.surrogate_scale > 0):
        raise _fail("model.surrogate_scale", "a positive number", model.surrogate_scale)

    if train.epochs < 1:
        raise _fail("train.epochs", "a positive integer", train.epochs)
    if train.batch_size < 1:
        raise _fail("train.batch_size", "a positive integer", train.batch_size)
    if not (math.isfinite(train.learning_rate) and train.learning_rate > 0):
        raise _fail("train.learning_rate", "a positive number", train.learning_rate)

    parse_fold(hardware.fold)
    for simulator in hardware.simulators:
        if simulator not in SIMULATORS:
            raise _fail("hardware.simulators", f"a list drawn from {', '.join(SIMULATORS)}", list(hardware.simulators))
    return config


def parse_fold(text: str) -> tuple[int, int] | None:
    """Parse a folding: ``"auto"`` returns None, ``"PE,SIMD"`` returns ``(PE, SIMD)``."""
    if text == "auto":
        return None
    parts = text.split(",")
    try:
        pe, simd = (int(p) for p in parts)
    except ValueError:
        raise TangentcoreError(
            f"fold must be 'auto' or 'PE,SIMD' with two positive integers, such as '8,16'; not {text!r}"
        ) from None
    if pe < 1 or simd < 1:
        raise TangentcoreError(f"fold PE and SIMD must be positive integers, not {text!r}")
    return pe, simd


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from a parsed TOML document."""
    unknown = sorted(set(raw) - set(_SECTIONS) - {"name"})
    if unknown:
        raise TangentcoreError(
            f"config: unknown section [{unknown[0]}]; known sections are name, {', '.join(_SECTIONS)}"
        )
    kwargs: dict[str, Any] = {}
    if "name" in raw:
        name = raw["name"]
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise _fail("name", "a non-empty string of letters, digits, '-' and '_'", name)
        kwargs["name"] = name
    for section, cls in _SECTIONS.items():
        if section in raw:
            kwargs[section] = _build_section(section, cls, raw[section])
    return validate_config(Config(**kwargs))


def load_config(path: str | Path | None) -> Config:
    """Load a TOML config; ``None`` returns the built-in default example."""
    if path is None:
        return validate_config(Config())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TangentcoreError(f"config file not found: {path}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TangentcoreError(f"config {path} is not valid TOML: {error}") from None
    return config_from_dict(raw)
