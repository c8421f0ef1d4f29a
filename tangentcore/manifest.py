"""The manifest: the one contract between training, hardware and simulation.

A manifest is a folder with ``manifest.json`` (schema-versioned topology,
encodings, widths, neuron parameters, provenance and the hash of the arrays)
and ``arrays.npz`` (integer weights and thresholds). Hardware generation and
co-simulation read nothing else. :func:`load_manifest` validates everything
and names the field and the fix in its errors; it reads schema versions 1
and 2 and :func:`save_manifest` writes version 2. ``docs/manifest.md``
describes both versions field by field.

The arithmetic the arrays mean is stated in :mod:`tangentcore.sw.reference`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.sw.reference import accumulator_range, input_range, signed_width, weight_range

__all__ = [
    "Manifest",
    "LayerSpec",
    "InputSpec",
    "ManifestError",
    "load_manifest",
    "save_manifest",
    "validate_manifest",
    "make_layer",
    "random_manifest",
    "MANIFEST_FILE",
    "ARRAYS_FILE",
    "SCHEMA_VERSION",
]

FORMAT = "tangentcore-manifest"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"

INPUT_ENCODINGS = ("binary", "uint", "spikes")
LAYER_KINDS = ("dense", "lif")
WEIGHT_KINDS = ("binary", "ternary", "int")
RESETS = ("subtract", "zero")
LIF_SCORE_OUTPUTS = ("spike_count", "final_membrane", "max_membrane")
# Limits that keep every sum and membrane of the int64 reference far from overflow.
MAX_INPUT_BITS = 16
MAX_MEMBRANE_BITS = 32
MAX_WEIGHT_BITS = 8


class ManifestError(TangentcoreError):
    """A manifest that cannot be used, with the field and the fix."""


@dataclass(frozen=True)
class InputSpec:
    """The encoded input vector the network takes (one vector per time step for spikes)."""

    size: int
    encoding: str  # "binary", "uint" or "spikes"
    bits: int  # 1 for binary and spikes


@dataclass(frozen=True)
class LayerSpec:
    """One fully connected layer; :mod:`tangentcore.sw.reference` states its arithmetic.

    The LIF fields ``leak_shift``, ``reset`` and ``membrane_bits`` are None
    for dense layers and absent from their JSON.
    """

    name: str
    kind: str  # "dense" or "lif"
    in_features: int
    out_features: int
    weight_kind: str  # "binary" (±1), "ternary" ({−1, 0, +1}) or "int" (signed weight_bits-bit)
    weight_bits: int  # 1 for binary, 2 for ternary, 2..8 for int
    input_encoding: str  # "binary", "uint" or "spikes"
    input_bits: int
    output: str  # dense: "bits" or "scores"; lif: "spikes", "spike_count", "final_membrane" or "max_membrane"
    acc_bits: int  # signed width of the worst-case Σ w·x (plus one for the threshold acc_max + 1)
    leak_shift: int | None = None
    reset: str | None = None
    membrane_bits: int | None = None

    @property
    def weight_key(self) -> str:
        return f"{self.name}.weight"

    @property
    def threshold_key(self) -> str:
        return f"{self.name}.threshold"

    @property
    def has_threshold(self) -> bool:
        """Whether the layer has a ``NAME.threshold`` array: every layer but a dense output layer."""
        return self.kind == "lif" or self.output == "bits"

    @property
    def is_output(self) -> bool:
        return self.output not in ("bits", "spikes")

    def weight_range(self) -> tuple[int, int]:
        """Return the smallest and largest weight the layer's ``weight_kind`` and ``weight_bits`` allow."""
        return weight_range(self.weight_kind, self.weight_bits)

    def acc_range(self) -> tuple[int, int]:
        """Return the exact worst-case accumulator range ``(min, max)`` of this layer."""
        x_min, x_max = input_range(self.input_encoding, self.input_bits)
        w_min, w_max = self.weight_range()
        return accumulator_range(self.in_features, w_min, w_max, x_min, x_max)

    def membrane_range(self) -> tuple[int, int]:
        """Return the signed ``membrane_bits`` range an LIF membrane saturates to."""
        return -(1 << (self.membrane_bits - 1)), (1 << (self.membrane_bits - 1)) - 1

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        if self.kind != "lif":
            for key in _LIF_FIELDS:
                del document[key]
        return document


_LIF_FIELDS = ("leak_shift", "reset", "membrane_bits")
_LAYER_FIELD_TYPES = {"name": str, "kind": str, "output": str, "weight_kind": str, "input_encoding": str, "reset": str}


@dataclass
class Manifest:
    """A validated network: specs plus integer arrays."""

    name: str
    input: InputSpec
    layers: list[LayerSpec]
    n_classes: int
    arrays: dict[str, np.ndarray]
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    time_steps: int = 1

    def weights(self, layer: LayerSpec) -> np.ndarray:
        return self.arrays[layer.weight_key]

    def thresholds(self, layer: LayerSpec) -> np.ndarray:
        return self.arrays[layer.threshold_key]

    @property
    def is_spiking(self) -> bool:
        return self.layers[0].kind == "lif"

    @property
    def score_bits(self) -> int:
        """Width of one class score: ``acc_bits``, ``bit_length(T)`` for spike counts, or ``membrane_bits``."""
        last = self.layers[-1]
        if last.output == "spike_count":
            return self.time_steps.bit_length()
        if last.output in ("final_membrane", "max_membrane"):
            return last.membrane_bits
        return last.acc_bits

    @property
    def scores_signed(self) -> bool:
        """Whether scores are two's complement; spike counts are unsigned."""
        return self.layers[-1].output != "spike_count"

    def to_json(self, arrays_sha256: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "time_steps": self.time_steps,
            "input": dataclasses.asdict(self.input),
            "layers": [layer.to_json() for layer in self.layers],
            "n_classes": self.n_classes,
            "decision": "argmax, ties to the lowest index",
            "arrays": {"file": ARRAYS_FILE, "sha256": arrays_sha256},
            "provenance": self.provenance,
        }


def required_acc_bits(in_features: int, weight_kind: str, weight_bits: int, input_encoding: str,
                      input_bits: int) -> int:
    """Return the smallest ``acc_bits`` for a layer: the signed width of ``[acc_min, acc_max + 1]``.

    The ``+ 1`` makes room for the dense threshold ``acc_max + 1`` (always 0);
    LIF layers use the same rule so that one formula covers every kind.
    """
    x_min, x_max = input_range(input_encoding, input_bits)
    w_min, w_max = weight_range(weight_kind, weight_bits)
    lo, hi = accumulator_range(in_features, w_min, w_max, x_min, x_max)
    return signed_width(lo, hi + 1)


def make_layer(name: str, in_features: int, out_features: int, input_encoding: str, input_bits: int, output: str,
               *, kind: str = "dense", weight_kind: str = "binary", weight_bits: int = 1,
               leak_shift: int | None = None, reset: str | None = None,
               membrane_bits: int | None = None) -> LayerSpec:
    """Build a layer spec with its accumulator width derived from the ranges.

    The defaults build a dense layer with binary weights, the sign layer of
    schema version 1.
    """
    return LayerSpec(
        name=name,
        kind=kind,
        in_features=in_features,
        out_features=out_features,
        weight_kind=weight_kind,
        weight_bits=weight_bits,
        input_encoding=input_encoding,
        input_bits=input_bits,
        output=output,
        acc_bits=required_acc_bits(in_features, weight_kind, weight_bits, input_encoding, input_bits),
        leak_shift=leak_shift,
        reset=reset,
        membrane_bits=membrane_bits,
    )


def save_manifest(manifest: Manifest, folder: str | Path) -> Path:
    """Validate and write ``manifest.json`` and ``arrays.npz`` into ``folder``; return the JSON path.

    Each file is written to a temporary name and renamed, arrays first, so a
    reader never sees a manifest whose arrays are missing or half-written.
    """
    validate_manifest(manifest)
    folder = Path(folder)
    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.ascontiguousarray(value) for key, value in sorted(manifest.arrays.items())})
    blob = buffer.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    write_atomic(folder / ARRAYS_FILE, blob)
    document = json.dumps(manifest.to_json(digest), indent=2, sort_keys=False) + "\n"
    write_atomic(folder / MANIFEST_FILE, document)
    manifest.path = folder / MANIFEST_FILE
    return manifest.path


def _require(document: dict, key: str, kind: type | tuple, where: str) -> Any:
    if key not in document:
        raise ManifestError(f"manifest field {where}{key} is missing; regenerate the manifest with 'tangentcore train'")
    value = document[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ManifestError(f"manifest field {where}{key} must be of type {names}, not {value!r}")
    return value


def _parse_layer(document: dict, index: int, version: int) -> LayerSpec:
    """Read one layer object; a version 1 ``sign`` layer becomes a dense layer with binary weights."""
    where = f"layers[{index}]."
    if version == 1:
        kind = _require(document, "kind", str, where)
        if kind != "sign":
            raise ManifestError(f"manifest field {where}kind must be 'sign' in schema version 1, not {kind!r}")
        document = {**document, "kind": "dense", "weight_kind": "binary"}
    known = {f.name for f in dataclasses.fields(LayerSpec)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ManifestError(f"manifest field {where}{unknown[0]} is unknown; known layer fields are {', '.join(known)}")
    kind = _require(document, "kind", str, where)
    values = {}
    for spec_field in dataclasses.fields(LayerSpec):
        name = spec_field.name
        if name in _LIF_FIELDS and kind != "lif":
            if name in document:
                raise ManifestError(f"manifest field {where}{name} is only for kind 'lif'; remove it from this "
                                    f"{kind!r} layer")
            continue
        values[name] = _require(document, name, _LAYER_FIELD_TYPES.get(name, int), where)
    return LayerSpec(**values)


def _check_choice(where: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ManifestError(f"manifest field {where} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def _check_input(manifest: Manifest) -> None:
    spec = manifest.input
    _check_choice("input.encoding", spec.encoding, INPUT_ENCODINGS)
    if spec.size < 1:
        raise ManifestError(f"manifest field input.size must be a positive integer, not {spec.size}")
    if spec.encoding in ("binary", "spikes") and spec.bits != 1:
        raise ManifestError(f"manifest field input.bits must be 1 for {spec.encoding} inputs, not {spec.bits}")
    if spec.encoding == "uint" and not 1 <= spec.bits <= MAX_INPUT_BITS:
        raise ManifestError(f"manifest field input.bits must be from 1 to {MAX_INPUT_BITS}, not {spec.bits}")
    if manifest.time_steps < 1:
        raise ManifestError(f"manifest field time_steps must be a positive integer, not {manifest.time_steps}")


def _check_layer_fields(layer: LayerSpec, where: str, last: bool, time_steps: int) -> None:
    """Check one layer's own fields (kinds, bit widths, outputs, LIF parameters, acc_bits)."""
    if layer.in_features < 1 or layer.out_features < 1:
        raise ManifestError(f"manifest fields {where}.in_features and out_features must be positive, not "
                            f"{layer.in_features} and {layer.out_features}")
    _check_choice(f"{where}.weight_kind", layer.weight_kind, WEIGHT_KINDS)
    fixed_bits = {"binary": 1, "ternary": 2}.get(layer.weight_kind)
    if fixed_bits is not None and layer.weight_bits != fixed_bits:
        raise ManifestError(f"manifest field {where}.weight_bits must be {fixed_bits} for {layer.weight_kind} "
                            f"weights, not {layer.weight_bits}")
    if layer.weight_kind == "int" and not 2 <= layer.weight_bits <= MAX_WEIGHT_BITS:
        raise ManifestError(f"manifest field {where}.weight_bits must be from 2 to {MAX_WEIGHT_BITS} for int "
                            f"weights, not {layer.weight_bits}")

    lif_values = [getattr(layer, key) for key in _LIF_FIELDS]
    if layer.kind == "lif" and None in lif_values:
        missing = _LIF_FIELDS[lif_values.index(None)]
        raise ManifestError(f"manifest field {where}.{missing} is missing; every LIF layer needs "
                            f"{', '.join(_LIF_FIELDS)}")
    if layer.kind == "dense" and any(value is not None for value in lif_values):
        raise ManifestError(f"manifest fields {where}.{'/'.join(_LIF_FIELDS)} are only for kind 'lif'; "
                            "remove them from this dense layer")

    if layer.kind == "dense":
        if time_steps != 1:
            raise ManifestError(f"manifest field time_steps must be 1 for a network of dense layers, not {time_steps}")
        expected = "scores" if last else "bits"
        if layer.output != expected:
            raise ManifestError(f"manifest field {where}.output must be {expected!r} for a dense "
                                f"{'output' if last else 'hidden'} layer, not {layer.output!r}")
    else:
        if last:
            _check_choice(f"{where}.output", layer.output, LIF_SCORE_OUTPUTS)
        elif layer.output != "spikes":
            raise ManifestError(f"manifest field {where}.output must be 'spikes' for a hidden LIF layer, "
                                f"not {layer.output!r}")
        _check_choice(f"{where}.reset", layer.reset, RESETS)
        if not 2 <= layer.membrane_bits <= MAX_MEMBRANE_BITS:
            raise ManifestError(f"manifest field {where}.membrane_bits must be from 2 to {MAX_MEMBRANE_BITS}, "
                                f"not {layer.membrane_bits}")
        if not 0 <= layer.leak_shift < layer.membrane_bits:
            raise ManifestError(
                f"manifest field {where}.leak_shift must be from 0 to membrane_bits - 1 = {layer.membrane_bits - 1}, "
                f"not {layer.leak_shift}; every larger shift leaks exactly as membrane_bits - 1 does"
            )

    required = required_acc_bits(layer.in_features, layer.weight_kind, layer.weight_bits,
                                 layer.input_encoding, layer.input_bits)
    if layer.acc_bits < required:
        raise ManifestError(
            f"manifest field {where}.acc_bits is {layer.acc_bits}, but the worst-case accumulator range "
            f"{layer.acc_range()} needs {required} bits; set it to {required}"
        )


def _check_integer_array(manifest: Manifest, key: str, shape: tuple[int, ...]) -> np.ndarray:
    array = manifest.arrays.get(key)
    if array is None:
        raise ManifestError(f"manifest arrays lack {key!r}; regenerate the manifest")
    if array.shape != shape or array.dtype.kind not in "iu":
        raise ManifestError(f"manifest array {key!r} must be integer with shape {shape}, not {array.dtype} {array.shape}")
    return array


def _check_layer_arrays(manifest: Manifest, layer: LayerSpec) -> None:
    weights = _check_integer_array(manifest, layer.weight_key, (layer.out_features, layer.in_features))
    if layer.weight_kind == "binary":
        if not np.all(np.abs(weights) == 1):
            raise ManifestError(f"manifest array {layer.weight_key!r} must hold only -1 and +1 (binary weights)")
    else:
        w_min, w_max = layer.weight_range()
        if weights.min() < w_min or weights.max() > w_max:
            raise ManifestError(
                f"manifest array {layer.weight_key!r} must lie in [{w_min}, {w_max}] for {layer.weight_kind} "
                f"weights of {layer.weight_bits} bits, but holds {weights.min()} to {weights.max()}"
            )
    if not layer.has_threshold:
        if layer.threshold_key in manifest.arrays:
            raise ManifestError(f"manifest array {layer.threshold_key!r} is unexpected: a dense output layer "
                                "outputs its scores without a threshold; remove it")
        return
    thresholds = _check_integer_array(manifest, layer.threshold_key, (layer.out_features,))
    if layer.kind == "dense":
        lo, hi = layer.acc_range()
        if thresholds.min() < lo or thresholds.max() > hi + 1:
            raise ManifestError(
                f"manifest array {layer.threshold_key!r} must lie in [{lo}, {hi + 1}] (the accumulator range "
                f"plus one); clip it there, which changes no output"
            )
    else:
        v_max = layer.membrane_range()[1]
        if thresholds.min() < 1 or thresholds.max() > v_max:
            raise ManifestError(
                f"manifest array {layer.threshold_key!r} must lie in [1, {v_max}] (positive and within the "
                f"{layer.membrane_bits}-bit membrane), but holds {thresholds.min()} to {thresholds.max()}"
            )


def validate_manifest(manifest: Manifest) -> None:
    """Check topology, encodings, parameters and arrays against each other; raise ManifestError on the first problem."""
    _check_input(manifest)
    if not manifest.layers:
        raise ManifestError("manifest field layers is empty; a network needs at least an output layer")
    for index, layer in enumerate(manifest.layers):
        _check_choice(f"layers[{index}].kind", layer.kind, LAYER_KINDS)
    kinds = {layer.kind for layer in manifest.layers}
    if len(kinds) > 1:
        raise ManifestError(f"manifest layers mix kinds {sorted(kinds)}; a network is all 'dense' or all 'lif'")
    spiking = manifest.layers[0].kind == "lif"
    if spiking != (manifest.input.encoding == "spikes"):
        raise ManifestError(
            f"manifest field input.encoding is {manifest.input.encoding!r}, but LIF networks take 'spikes' and "
            "dense networks take 'binary' or 'uint'; encode the inputs to match the layers"
        )
    size, encoding, bits = manifest.input.size, manifest.input.encoding, manifest.input.bits
    names = set()
    for index, layer in enumerate(manifest.layers):
        where = f"layers[{index}]"
        if layer.name in names:
            raise ManifestError(f"manifest field {where}.name {layer.name!r} is used twice; layer names must be unique")
        names.add(layer.name)
        last = index == len(manifest.layers) - 1
        _check_layer_fields(layer, where, last, manifest.time_steps)
        if layer.in_features != size:
            raise ManifestError(f"manifest field {where}.in_features is {layer.in_features}, but its input has {size} values")
        if (layer.input_encoding, layer.input_bits) != (encoding, bits):
            raise ManifestError(
                f"manifest field {where}.input_encoding/input_bits is {layer.input_encoding}/{layer.input_bits}, "
                f"but its input is {encoding}/{bits}"
            )
        _check_layer_arrays(manifest, layer)
        size, encoding, bits = layer.out_features, ("spikes" if spiking else "binary"), 1

    expected_keys = {layer.weight_key for layer in manifest.layers}
    expected_keys |= {layer.threshold_key for layer in manifest.layers if layer.has_threshold}
    unexpected = sorted(set(manifest.arrays) - expected_keys)
    if unexpected:
        raise ManifestError(f"manifest array {unexpected[0]!r} belongs to no layer; remove it or fix the layer names")
    if manifest.layers[-1].out_features != manifest.n_classes:
        raise ManifestError(
            f"manifest field n_classes is {manifest.n_classes}, but the output layer has {manifest.layers[-1].out_features} outputs"
        )


def load_manifest(path: str | Path) -> Manifest:
    """Load and validate a manifest (schema version 1 or 2) from its folder or its ``manifest.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}; pass a manifest folder or its {MANIFEST_FILE}") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"manifest {path} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ManifestError(f"{path} is not a tangentcore manifest (field format must be {FORMAT!r})")
    version = document.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise ManifestError(
            f"manifest field schema_version is {version!r}, but this tangentcore reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; regenerate the manifest with this version"
        )
    name = _require(document, "name", str, "")
    time_steps = _require(document, "time_steps", int, "") if version >= 2 else 1
    input_doc = _require(document, "input", dict, "")
    input_spec = InputSpec(
        size=_require(input_doc, "size", int, "input."),
        encoding=_require(input_doc, "encoding", str, "input."),
        bits=_require(input_doc, "bits", int, "input."),
    )
    layer_docs = _require(document, "layers", list, "")
    layers = []
    for index, layer_doc in enumerate(layer_docs):
        if not isinstance(layer_doc, dict):
            raise ManifestError(f"manifest field layers[{index}] must be an object")
        layers.append(_parse_layer(layer_doc, index, version))
    n_classes = _require(document, "n_classes", int, "")
    arrays_doc = _require(document, "arrays", dict, "")
    arrays_file = path.parent / _require(arrays_doc, "file", str, "arrays.")
    expected_digest = _require(arrays_doc, "sha256", str, "arrays.")
    try:
        blob = arrays_file.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"manifest arrays file not found: {arrays_file}") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected_digest:
        raise ManifestError(
            f"manifest arrays {arrays_file} have sha256 {digest[:12]}…, but the manifest records {expected_digest[:12]}…; "
            "the arrays were changed or belong to another manifest"
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as error:
        raise ManifestError(f"manifest arrays {arrays_file} cannot be read without pickle: {error}") from None
    provenance = document.get("provenance", {})
    manifest = Manifest(name=name, input=input_spec, layers=layers, n_classes=n_classes, arrays=arrays,
                        provenance=provenance, path=path, time_steps=time_steps)
    validate_manifest(manifest)
    return manifest


def _random_weights(rng: np.random.Generator, layer: LayerSpec) -> np.ndarray:
    """Draw weights uniformly over the layer's range; about 10 % of rows are all ≥ 0 and 10 % all ≤ 0.

    The one-signed rows drive their membranes or sums to the ends of the range.
    """
    shape = (layer.out_features, layer.in_features)
    if layer.weight_kind == "binary":
        weights = rng.choice(np.array([-1, 1]), size=shape)
    else:
        w_min, w_max = layer.weight_range()
        weights = rng.integers(w_min, w_max + 1, size=shape)
    drive = rng.random(layer.out_features)
    weights[drive < 0.1] = np.abs(weights[drive < 0.1]).clip(max=layer.weight_range()[1])
    weights[drive > 0.9] = -np.abs(weights[drive > 0.9])
    return weights.astype(np.int8)


def _random_dense_thresholds(rng: np.random.Generator, layer: LayerSpec) -> np.ndarray:
    """Draw thresholds around the typical ``|acc|``, with about 10 % at the ends of the range."""
    lo, hi = layer.acc_range()
    spread = max(1, int(np.sqrt(layer.in_features)) * (max(-lo, hi) // layer.in_features))
    thresholds = rng.integers(-spread, spread + 1, size=layer.out_features)
    ends = rng.random(layer.out_features) < 0.1
    thresholds[ends] = rng.choice(np.array([lo, hi + 1]), size=int(ends.sum()))
    return np.clip(thresholds, lo, hi + 1).astype(np.int64)


def _random_lif_thresholds(rng: np.random.Generator, layer: LayerSpec) -> np.ndarray:
    """Draw thresholds from 1 up to the membrane maximum, most of them small.

    Small thresholds make neurons fire and reset often, large ones let the
    membrane reach saturation; about 10 % sit at 1 or at the membrane maximum.
    """
    v_max = layer.membrane_range()[1]
    w_max = max(1, -layer.weight_range()[0])
    typical = max(1, min(v_max, int(np.sqrt(layer.in_features)) * w_max))
    thresholds = rng.integers(1, typical + 1, size=layer.out_features)
    ends = rng.random(layer.out_features) < 0.1
    thresholds[ends] = rng.choice(np.array([1, v_max]), size=int(ends.sum()))
    return thresholds.astype(np.int64)


def random_manifest(rng: np.random.Generator, sizes: list[int], *, kind: str = "dense", weight_kind: str = "binary",
                    weight_bits: int | None = None, encoding: str | None = None, bits: int = 1,
                    time_steps: int | None = None, leak_shift: int = 2, reset: str = "subtract",
                    membrane_bits: int = 6, output: str = "spike_count", name: str = "random") -> Manifest:
    """Return a valid manifest with random weights and thresholds for layer sizes ``sizes``.

    ``kind`` is "dense" or "lif" for every layer. ``weight_bits`` defaults to
    1, 2 and 4 for binary, ternary and int weights; ``encoding`` to "binary"
    for dense and "spikes" for LIF networks; ``time_steps`` to 1 for dense and
    8 for LIF networks. ``output`` sets the LIF output layer's scores.

    Weights are uniform over the whole range of their kind, including the
    most negative int value, with some rows of one sign only. Dense thresholds are drawn around zero with a few
    at the ends of the accumulator range, so ties (``acc == T``) and
    always-on or always-off neurons occur. LIF thresholds are mostly small with
    a few at 1 and at the membrane maximum, and the default 6-bit membrane is
    narrow, so firing, saturation and negative membranes under the shift leak
    all occur.
    """
    if weight_bits is None:
        weight_bits = {"binary": 1, "ternary": 2}.get(weight_kind, 4)
    if encoding is None:
        encoding = "spikes" if kind == "lif" else "binary"
    if time_steps is None:
        time_steps = 8 if kind == "lif" else 1
    lif = {"leak_shift": leak_shift, "reset": reset, "membrane_bits": membrane_bits} if kind == "lif" else {}
    layers, arrays = [], {}
    layer_encoding, layer_bits = encoding, bits
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = index == len(sizes) - 2
        if kind == "lif":
            layer_output = output if last else "spikes"
        else:
            layer_output = "scores" if last else "bits"
        layer = make_layer(f"layer{index}", n_in, n_out, layer_encoding, layer_bits, layer_output, kind=kind,
                           weight_kind=weight_kind, weight_bits=weight_bits, **lif)
        layers.append(layer)
        arrays[layer.weight_key] = _random_weights(rng, layer)
        if kind == "lif":
            arrays[layer.threshold_key] = _random_lif_thresholds(rng, layer)
        elif not last:
            arrays[layer.threshold_key] = _random_dense_thresholds(rng, layer)
        layer_encoding, layer_bits = ("spikes" if kind == "lif" else "binary"), 1
    manifest = Manifest(
        name=name,
        input=InputSpec(size=sizes[0], encoding=encoding, bits=bits),
        layers=layers,
        n_classes=sizes[-1],
        arrays=arrays,
        provenance={"source": "random_manifest"},
        time_steps=time_steps,
    )
    validate_manifest(manifest)
    return manifest
