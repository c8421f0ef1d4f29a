"""The manifest: the one contract between training, hardware and simulation.

A manifest is a folder with ``manifest.json`` (schema-versioned topology,
encodings, widths, provenance and the hash of the arrays) and
``arrays.npz`` (integer weights and thresholds). Hardware generation and
co-simulation read nothing else. :func:`load_manifest` validates everything
and names the field and the fix in its errors.

The arithmetic the arrays mean is stated in :mod:`tangentcore.sw.reference`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import write_atomic
from tangentcore.sw.reference import accumulator_range, input_range, signed_width

__all__ = ["Manifest", "LayerSpec", "InputSpec", "load_manifest", "save_manifest", "MANIFEST_FILE", "ARRAYS_FILE"]

FORMAT = "tangentcore-manifest"
SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"


class ManifestError(TangentcoreError):
    """A manifest that cannot be used, with the field and the fix."""


@dataclass(frozen=True)
class InputSpec:
    """The encoded input vector the network takes."""

    size: int
    encoding: str  # "binary" or "uint"
    bits: int  # 1 for binary


@dataclass(frozen=True)
class LayerSpec:
    """One fully connected layer with binary weights (see sw.reference for its arithmetic)."""

    name: str
    kind: str  # "sign": binary weights ±1
    in_features: int
    out_features: int
    weight_bits: int  # 1: binary ±1
    input_encoding: str  # "binary" or "uint"
    input_bits: int
    output: str  # "bits" (hidden, thresholded) or "scores" (output layer)
    acc_bits: int  # signed accumulator width, derived from the ranges

    @property
    def weight_key(self) -> str:
        return f"{self.name}.weight"

    @property
    def threshold_key(self) -> str:
        return f"{self.name}.threshold"

    def acc_range(self) -> tuple[int, int]:
        """Return the exact worst-case accumulator range of this layer."""
        x_min, x_max = input_range(self.input_encoding, self.input_bits)
        return accumulator_range(self.in_features, -1, 1, x_min, x_max)


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

    def weights(self, layer: LayerSpec) -> np.ndarray:
        return self.arrays[layer.weight_key]

    def thresholds(self, layer: LayerSpec) -> np.ndarray:
        return self.arrays[layer.threshold_key]

    @property
    def score_bits(self) -> int:
        return self.layers[-1].acc_bits

    def to_json(self, arrays_sha256: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "input": asdict(self.input),
            "layers": [asdict(layer) for layer in self.layers],
            "n_classes": self.n_classes,
            "decision": "argmax, ties to the lowest index",
            "arrays": {"file": ARRAYS_FILE, "sha256": arrays_sha256},
            "provenance": self.provenance,
        }


def make_layer(name: str, in_features: int, out_features: int, input_encoding: str, input_bits: int, output: str) -> LayerSpec:
    """Build a sign-layer spec with its accumulator width derived from the ranges."""
    x_min, x_max = input_range(input_encoding, input_bits)
    lo, hi = accumulator_range(in_features, -1, 1, x_min, x_max)
    return LayerSpec(
        name=name,
        kind="sign",
        in_features=in_features,
        out_features=out_features,
        weight_bits=1,
        input_encoding=input_encoding,
        input_bits=input_bits,
        output=output,
        acc_bits=signed_width(lo, hi + 1),
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


def _parse_layer(document: dict, index: int) -> LayerSpec:
    where = f"layers[{index}]."
    values = {}
    for name, kind in LayerSpec.__annotations__.items():
        python_type = {"str": str, "int": int}[kind]
        values[name] = _require(document, name, python_type, where)
    layer = LayerSpec(**values)
    if layer.kind != "sign" or layer.weight_bits != 1:
        raise ManifestError(
            f"manifest field {where}kind must be 'sign' with weight_bits 1 in schema version {SCHEMA_VERSION}, "
            f"not {layer.kind!r} with {layer.weight_bits}"
        )
    if layer.output not in ("bits", "scores"):
        raise ManifestError(f"manifest field {where}output must be 'bits' or 'scores', not {layer.output!r}")
    if layer.in_features < 1 or layer.out_features < 1:
        raise ManifestError(f"manifest fields {where}in_features and out_features must be positive")
    expected = make_layer(layer.name, layer.in_features, layer.out_features, layer.input_encoding, layer.input_bits, layer.output)
    if layer.acc_bits < expected.acc_bits:
        raise ManifestError(
            f"manifest field {where}acc_bits is {layer.acc_bits}, but the worst-case accumulator range "
            f"{layer.acc_range()} needs {expected.acc_bits} bits; set it to {expected.acc_bits}"
        )
    return layer


def validate_manifest(manifest: Manifest) -> None:
    """Check topology, encodings and arrays against each other; raise ManifestError on the first problem."""
    if manifest.input.encoding not in ("binary", "uint"):
        raise ManifestError(f"manifest field input.encoding must be 'binary' or 'uint', not {manifest.input.encoding!r}")
    if manifest.input.encoding == "binary" and manifest.input.bits != 1:
        raise ManifestError(f"manifest field input.bits must be 1 for binary inputs, not {manifest.input.bits}")
    if manifest.input.encoding == "uint" and not 1 <= manifest.input.bits <= 16:
        raise ManifestError(f"manifest field input.bits must be from 1 to 16, not {manifest.input.bits}")
    if not manifest.layers:
        raise ManifestError("manifest field layers is empty; a network needs at least an output layer")
    size, encoding, bits = manifest.input.size, manifest.input.encoding, manifest.input.bits
    for index, layer in enumerate(manifest.layers):
        where = f"layers[{index}]"
        if layer.in_features != size:
            raise ManifestError(f"manifest field {where}.in_features is {layer.in_features}, but its input has {size} values")
        if (layer.input_encoding, layer.input_bits) != (encoding, bits):
            raise ManifestError(
                f"manifest field {where}.input_encoding/input_bits is {layer.input_encoding}/{layer.input_bits}, "
                f"but its input is {encoding}/{bits}"
            )
        last = index == len(manifest.layers) - 1
        if (layer.output == "scores") != last:
            raise ManifestError(f"manifest field {where}.output must be 'scores' for the last layer and 'bits' before it")
        weights = manifest.arrays.get(layer.weight_key)
        if weights is None:
            raise ManifestError(f"manifest arrays lack {layer.weight_key!r}; regenerate the manifest")
        if weights.shape != (layer.out_features, layer.in_features) or weights.dtype.kind not in "iu":
            raise ManifestError(
                f"manifest array {layer.weight_key!r} must be integer with shape "
                f"({layer.out_features}, {layer.in_features}), not {weights.dtype} {weights.shape}"
            )
        if not np.all(np.abs(weights) == 1):
            raise ManifestError(f"manifest array {layer.weight_key!r} must hold only -1 and +1 (binary weights)")
        if not last:
            thresholds = manifest.arrays.get(layer.threshold_key)
            if thresholds is None:
                raise ManifestError(f"manifest arrays lack {layer.threshold_key!r}; regenerate the manifest")
            if thresholds.shape != (layer.out_features,) or thresholds.dtype.kind not in "iu":
                raise ManifestError(
                    f"manifest array {layer.threshold_key!r} must be integer with shape ({layer.out_features},), "
                    f"not {thresholds.dtype} {thresholds.shape}"
                )
            lo, hi = layer.acc_range()
            if thresholds.min() < lo or thresholds.max() > hi + 1:
                raise ManifestError(
                    f"manifest array {layer.threshold_key!r} must lie in [{lo}, {hi + 1}] (the accumulator range "
                    f"plus one); clip it there, which changes no output"
                )
        size, encoding, bits = layer.out_features, "binary", 1
    if manifest.layers[-1].out_features != manifest.n_classes:
        raise ManifestError(
            f"manifest field n_classes is {manifest.n_classes}, but the output layer has {manifest.layers[-1].out_features} outputs"
        )


def load_manifest(path: str | Path) -> Manifest:
    """Load and validate a manifest from its folder or its ``manifest.json``."""
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
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest field schema_version is {version!r}, but this tangentcore reads version {SCHEMA_VERSION}; "
            "regenerate the manifest with this version"
        )
    name = _require(document, "name", str, "")
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
        layers.append(_parse_layer(layer_doc, index))
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
    manifest = Manifest(name=name, input=input_spec, layers=layers, n_classes=n_classes, arrays=arrays, provenance=provenance, path=path)
    validate_manifest(manifest)
    return manifest


def random_manifest(rng: np.random.Generator, sizes: list[int], *, encoding: str = "binary", bits: int = 1,
                    name: str = "random") -> Manifest:
    """Return a valid manifest with random ±1 weights and thresholds spread over each accumulator range.

    Thresholds are drawn around zero, with a few at the ends of the range, so
    that ties (``acc == T``) and always-on or always-off neurons all occur.
    """
    layers, arrays = [], {}
    layer_encoding, layer_bits = encoding, bits
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = index == len(sizes) - 2
        layer = make_layer(f"layer{index}", n_in, n_out, layer_encoding, layer_bits, "scores" if last else "bits")
        layers.append(layer)
        arrays[layer.weight_key] = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_out, n_in))
        if not last:
            lo, hi = layer.acc_range()
            spread = max(1, int(np.sqrt(n_in)) * (hi // n_in))
            thresholds = rng.integers(-spread, spread + 1, size=n_out)
            ends = rng.random(n_out) < 0.1
            thresholds[ends] = rng.choice(np.array([lo, hi + 1]), size=int(ends.sum()))
            arrays[layer.threshold_key] = thresholds.astype(np.int64)
        layer_encoding, layer_bits = "binary", 1
    manifest = Manifest(
        name=name,
        input=InputSpec(size=sizes[0], encoding=encoding, bits=bits),
        layers=layers,
        n_classes=sizes[-1],
        arrays=arrays,
        provenance={"source": "random_manifest"},
    )
    validate_manifest(manifest)
    return manifest
