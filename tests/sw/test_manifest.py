"""Schema version 2 of the manifest: round trips, every validation error, version 1 files."""

from __future__ import annotations

import copy
import hashlib
import io
import json

import numpy as np
import pytest

from tangentcore.manifest import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    ManifestError,
    load_manifest,
    random_manifest,
    save_manifest,
)
from tangentcore.sw import reference


def _write(folder, document: dict, arrays: dict[str, np.ndarray], *, digest: str | None = None):
    """Write a manifest folder by hand, recording the arrays' true SHA-256 unless ``digest`` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    blob = buffer.getvalue()
    (folder / ARRAYS_FILE).write_bytes(blob)
    document = {**document, "arrays": {"file": ARRAYS_FILE, "sha256": digest or hashlib.sha256(blob).hexdigest()}}
    (folder / MANIFEST_FILE).write_text(json.dumps(document))
    return folder


def _saved_parts(tmp_path, manifest):
    """Save ``manifest`` and return its JSON document and arrays for mutation."""
    save_manifest(manifest, tmp_path / "original")
    document = json.loads((tmp_path / "original" / MANIFEST_FILE).read_text())
    return document, dict(manifest.arrays)


def _dense(rng=None):
    rng = rng or np.random.default_rng(0)
    return random_manifest(rng, [6, 5, 3], weight_kind="int", weight_bits=4, encoding="uint", bits=3)


def _lif(rng=None):
    rng = rng or np.random.default_rng(0)
    return random_manifest(rng, [6, 5, 3], kind="lif", weight_kind="int", weight_bits=3, time_steps=4)


# kind and weight_kind of every layer, the input encoding and its bits, and the LIF score output
ROUND_TRIP_CASES = [
    ("dense", "binary", 1, "binary", 1, None),
    ("dense", "ternary", 2, "uint", 4, None),
    ("dense", "int", 8, "uint", 8, None),
    ("dense", "int", 2, "binary", 1, None),
    ("lif", "binary", 1, "spikes", 1, "spike_count"),
    ("lif", "ternary", 2, "spikes", 1, "final_membrane"),
    ("lif", "int", 5, "spikes", 1, "max_membrane"),
]


@pytest.mark.parametrize("kind, weight_kind, weight_bits, encoding, bits, output", ROUND_TRIP_CASES)
def test_round_trip(tmp_path, kind, weight_kind, weight_bits, encoding, bits, output):
    rng = np.random.default_rng(1)
    options = {"output": output, "time_steps": 5, "reset": "zero", "leak_shift": 3} if kind == "lif" else {}
    manifest = random_manifest(rng, [7, 4, 4, 3], kind=kind, weight_kind=weight_kind, weight_bits=weight_bits,
                               encoding=encoding, bits=bits, **options)
    save_manifest(manifest, tmp_path)
    loaded = load_manifest(tmp_path)
    assert loaded.layers == manifest.layers
    assert loaded.input == manifest.input
    assert loaded.time_steps == manifest.time_steps
    assert loaded.n_classes == manifest.n_classes
    assert loaded.arrays.keys() == manifest.arrays.keys()
    for key, array in manifest.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[key], array)


def test_saved_json_is_version_2(tmp_path):
    save_manifest(_lif(), tmp_path)
    document = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert document["schema_version"] == 2
    assert document["time_steps"] == 4
    assert document["layers"][0]["reset"] == "subtract"


def test_dense_json_has_no_lif_fields(tmp_path):
    save_manifest(_dense(), tmp_path)
    document = json.loads((tmp_path / MANIFEST_FILE).read_text())
    for layer in document["layers"]:
        assert not {"leak_shift", "reset", "membrane_bits"} & set(layer)


def test_acc_bits_cover_int_weights():
    manifest = _dense()
    layer = manifest.layers[0]
    # 6 inputs of 3 bits (0..7) times 4-bit weights (-8..7): [-336, 294], plus one for the threshold 295.
    assert layer.acc_range() == (-336, 294)
    assert layer.acc_bits == reference.signed_width(-336, 295)


def test_score_bits_per_output(tmp_path):
    rng = np.random.default_rng(2)
    counts = random_manifest(rng, [4, 3], kind="lif", time_steps=16, output="spike_count")
    membrane = random_manifest(rng, [4, 3], kind="lif", membrane_bits=10, output="max_membrane")
    assert (counts.score_bits, counts.scores_signed) == (5, False)
    assert (membrane.score_bits, membrane.scores_signed) == (10, True)
    assert (_dense().score_bits, _dense().scores_signed) == (_dense().layers[-1].acc_bits, True)


def _set(path: str, value):
    """Return a mutation that sets the JSON field at dotted ``path`` (list indices as numbers)."""
    def mutate(document, arrays):
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return mutate


def _array(key: str, value):
    """Return a mutation that replaces (or with ``_DELETE`` removes) array ``key``."""
    def mutate(document, arrays):
        if value is _DELETE:
            del arrays[key]
        else:
            arrays[key] = value(arrays.get(key)) if callable(value) else value
    return mutate


def _make_dense(path: str):
    """Return a mutation that turns the LIF layer at ``path`` into a dense layer."""
    def mutate(document, arrays):
        for key in ("leak_shift", "reset", "membrane_bits"):
            _set(f"{path}.{key}", _DELETE)(document, arrays)
        _set(f"{path}.kind", "dense")(document, arrays)
    return mutate


_DELETE = object()

# network the mutation starts from, the mutation, and a fragment the error message must contain
SCHEMA_ERRORS = {
    "format": ("dense", _set("format", "other"), "is not a tangentcore manifest"),
    "schema_version": ("dense", _set("schema_version", 3), "schema_version is 3, but this tangentcore reads versions 1, 2"),
    "time_steps missing": ("lif", _set("time_steps", _DELETE), "time_steps is missing"),
    "time_steps zero": ("lif", _set("time_steps", 0), "time_steps must be a positive integer, not 0"),
    "time_steps dense": ("dense", _set("time_steps", 2), "time_steps must be 1 for a network of dense layers, not 2"),
    "time_steps type": ("lif", _set("time_steps", 2.5), "time_steps must be of type int, not 2.5"),
    "input encoding": ("dense", _set("input.encoding", "float"), "input.encoding must be one of 'binary', 'uint', 'spikes'"),
    "input bits binary": ("dense", _set("input.encoding", "binary"), "input.bits must be 1 for binary inputs, not 3"),
    "input bits uint": ("dense", _set("input.bits", 17), "input.bits must be from 1 to 16, not 17"),
    "input size": ("dense", _set("input.size", 0), "input.size must be a positive integer, not 0"),
    "layers empty": ("dense", _set("layers", []), "layers is empty"),
    "layer object": ("dense", _set("layers.0", 5), "layers[0] must be an object"),
    "layer kind": ("dense", _set("layers.0.kind", "conv"), "layers[0].kind must be one of 'dense', 'lif', not 'conv'"),
    "layer field type": ("dense", _set("layers.0.in_features", "6"), "layers[0].in_features must be of type int, not '6'"),
    "layer field missing": ("dense", _set("layers.1.acc_bits", _DELETE), "layers[1].acc_bits is missing"),
    "layer field unknown": ("dense", _set("layers.0.bias", 1), "layers[0].bias is unknown"),
    "layer name twice": ("dense", _set("layers.1.name", "layer0"), "layers[1].name 'layer0' is used twice"),
    "weight kind": ("dense", _set("layers.0.weight_kind", "float"), "layers[0].weight_kind must be one of"),
    "binary weight bits": ("dense", _set("layers.0.weight_kind", "binary"), "weight_bits must be 1 for binary weights, not 4"),
    "ternary weight bits": ("dense", _set("layers.0.weight_kind", "ternary"), "weight_bits must be 2 for ternary weights, not 4"),
    "int weight bits": ("dense", _set("layers.0.weight_bits", 9), "weight_bits must be from 2 to 8 for int weights, not 9"),
    "dense hidden output": ("dense", _set("layers.0.output", "scores"), "layers[0].output must be 'bits' for a dense hidden layer"),
    "dense last output": ("dense", _set("layers.1.output", "bits"), "layers[1].output must be 'scores' for a dense output layer"),
    "lif hidden output": ("lif", _set("layers.0.output", "bits"), "layers[0].output must be 'spikes' for a hidden LIF layer"),
    "lif last output": ("lif", _set("layers.1.output", "mean"), "layers[1].output must be one of 'spike_count', 'final_membrane', 'max_membrane'"),
    "lif reset": ("lif", _set("layers.0.reset", "hold"), "layers[0].reset must be one of 'subtract', 'zero', not 'hold'"),
    "membrane bits": ("lif", _set("layers.0.membrane_bits", 1), "layers[0].membrane_bits must be from 2 to 32, not 1"),
    "leak shift negative": ("lif", _set("layers.0.leak_shift", -1), "layers[0].leak_shift must be from 0 to membrane_bits - 1 = 5, not -1"),
    "leak shift large": ("lif", _set("layers.0.leak_shift", 6), "leak_shift must be from 0 to membrane_bits - 1 = 5, not 6"),
    "lif field missing": ("lif", _set("layers.1.reset", _DELETE), "layers[1].reset is missing"),
    "lif field on dense": ("dense", _set("layers.0.reset", "zero"), "layers[0].reset is only for kind 'lif'"),
    "acc bits": ("dense", _set("layers.0.acc_bits", 9), "layers[0].acc_bits is 9, but the worst-case accumulator range (-336, 294) needs 10 bits"),
    "in features": ("dense", _set("layers.1.in_features", 4), "layers[1].in_features is 4, but its input has 5 values"),
    "input encoding chain": ("dense", _set("layers.1.input_encoding", "uint"), "layers[1].input_encoding/input_bits is uint/1, but its input is binary/1"),
    "mixed kinds": ("lif", _make_dense("layers.1"), "mix kinds ['dense', 'lif']"),
    "lif input encoding": ("lif", _set("input.encoding", "binary"), "LIF networks take 'spikes'"),
    "n_classes": ("dense", _set("n_classes", 4), "n_classes is 4, but the output layer has 3 outputs"),
    "weight missing": ("dense", _array("layer0.weight", _DELETE), "arrays lack 'layer0.weight'"),
    "weight shape": ("dense", _array("layer0.weight", lambda w: w.T), "'layer0.weight' must be integer with shape (5, 6)"),
    "weight dtype": ("dense", _array("layer0.weight", lambda w: w.astype(np.float32)), "must be integer with shape (5, 6), not float32"),
    "int weight range": ("dense", _array("layer0.weight", lambda w: np.full_like(w, 8)), "'layer0.weight' must lie in [-8, 7]"),
    "binary weight zero": ("lif", _array("layer0.weight", lambda w: np.zeros_like(w)), None),
    "threshold missing": ("lif", _array("layer1.threshold", _DELETE), "arrays lack 'layer1.threshold'"),
    "dense threshold range": ("dense", _array("layer0.threshold", lambda t: np.full_like(t, 296)), "'layer0.threshold' must lie in [-336, 295]"),
    "lif threshold zero": ("lif", _array("layer0.threshold", lambda t: np.zeros_like(t)), "'layer0.threshold' must lie in [1, 31]"),
    "lif threshold large": ("lif", _array("layer1.threshold", lambda t: np.full_like(t, 32)), "'layer1.threshold' must lie in [1, 31]"),
    "dense output threshold": ("dense", _array("layer1.threshold", np.zeros(3, dtype=np.int64)), "'layer1.threshold' is unexpected"),
    "stray array": ("dense", _array("extra", np.zeros(2, dtype=np.int64)), "'extra' belongs to no layer"),
}


@pytest.mark.parametrize("case", list(SCHEMA_ERRORS))
def test_schema_error(tmp_path, case):
    network, mutate, message = SCHEMA_ERRORS[case]
    if case == "binary weight zero":
        manifest = random_manifest(np.random.default_rng(0), [6, 5, 3], kind="lif")
        message = "'layer0.weight' must hold only -1 and +1 (binary weights)"
    else:
        manifest = _dense() if network == "dense" else _lif()
    document, arrays = _saved_parts(tmp_path, manifest)
    document = copy.deepcopy(document)
    mutate(document, arrays)
    _write(tmp_path / "broken", document, arrays)
    with pytest.raises(ManifestError) as error:
        load_manifest(tmp_path / "broken")
    assert message in str(error.value)


def test_sha256_mismatch(tmp_path):
    document, arrays = _saved_parts(tmp_path, _dense())
    _write(tmp_path / "broken", document, arrays, digest="0" * 64)
    with pytest.raises(ManifestError, match="the arrays were changed or belong to another manifest"):
        load_manifest(tmp_path / "broken")


def test_arrays_file_missing(tmp_path):
    save_manifest(_dense(), tmp_path)
    (tmp_path / ARRAYS_FILE).unlink()
    with pytest.raises(ManifestError, match="manifest arrays file not found"):
        load_manifest(tmp_path)


def test_not_json(tmp_path):
    (tmp_path / MANIFEST_FILE).write_text("{")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        load_manifest(tmp_path)


def test_manifest_not_found(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "nowhere")


def test_save_rejects_invalid(tmp_path):
    manifest = _lif()
    manifest.time_steps = 0
    with pytest.raises(ManifestError, match="time_steps must be a positive integer"):
        save_manifest(manifest, tmp_path)
    assert not (tmp_path / MANIFEST_FILE).exists()


def _version_1_document() -> tuple[dict, dict]:
    """Return a schema version 1 manifest as the version 1 writer produced it: a 4-bit 3-2-2 sign MLP."""
    document = {
        "format": "tangentcore-manifest",
        "schema_version": 1,
        "name": "old",
        "input": {"size": 3, "encoding": "uint", "bits": 4},
        "layers": [
            {"name": "layer0", "kind": "sign", "in_features": 3, "out_features": 2, "weight_bits": 1,
             "input_encoding": "uint", "input_bits": 4, "output": "bits", "acc_bits": 8},
            {"name": "layer1", "kind": "sign", "in_features": 2, "out_features": 2, "weight_bits": 1,
             "input_encoding": "binary", "input_bits": 1, "output": "scores", "acc_bits": 3},
        ],
        "n_classes": 2,
        "decision": "argmax, ties to the lowest index",
        "provenance": {},
    }
    arrays = {
        "layer0.weight": np.array([[1, -1, 1], [-1, -1, 1]], dtype=np.int8),
        "layer0.threshold": np.array([0, 5], dtype=np.int64),
        "layer1.weight": np.array([[1, 1], [1, -1]], dtype=np.int8),
    }
    return document, arrays


def test_version_1_loads_as_dense_binary(tmp_path):
    document, arrays = _version_1_document()
    manifest = load_manifest(_write(tmp_path, document, arrays))
    assert [layer.kind for layer in manifest.layers] == ["dense", "dense"]
    assert [layer.weight_kind for layer in manifest.layers] == ["binary", "binary"]
    assert manifest.time_steps == 1
    assert manifest.layers[0].leak_shift is None


def test_version_1_forward(tmp_path):
    document, arrays = _version_1_document()
    manifest = load_manifest(_write(tmp_path, document, arrays))
    # acc0 = (3 - 1 + 15, -3 - 1 + 15) = (17, 11) >= (0, 5): bits (1, 1) -> ±1 (1, 1); scores (2, 0).
    result = reference.forward(manifest, np.array([[3, 1, 15]]))
    np.testing.assert_array_equal(result["hidden"][0], [[1, 1]])
    np.testing.assert_array_equal(result["scores"], [[2, 0]])


def test_version_1_resaves_as_version_2(tmp_path):
    document, arrays = _version_1_document()
    manifest = load_manifest(_write(tmp_path / "v1", document, arrays))
    save_manifest(manifest, tmp_path / "v2")
    resaved = json.loads((tmp_path / "v2" / MANIFEST_FILE).read_text())
    assert resaved["schema_version"] == 2
    assert resaved["layers"][0]["kind"] == "dense"
    assert load_manifest(tmp_path / "v2").layers == manifest.layers


def test_version_1_rejects_other_kinds(tmp_path):
    document, arrays = _version_1_document()
    document["layers"][0]["kind"] = "dense"
    with pytest.raises(ManifestError, match="kind must be 'sign' in schema version 1, not 'dense'"):
        load_manifest(_write(tmp_path, document, arrays))


# layer kind, weight kind and bits of random_manifest
@pytest.mark.parametrize("kind, weight_kind, weight_bits", [
    ("dense", "binary", None), ("dense", "ternary", None), ("dense", "int", 6),
    ("lif", "binary", None), ("lif", "ternary", None), ("lif", "int", 2),
])
def test_random_manifest_uses_whole_weight_range(kind, weight_kind, weight_bits):
    manifest = random_manifest(np.random.default_rng(3), [32, 16, 4], kind=kind, weight_kind=weight_kind,
                               weight_bits=weight_bits)
    values = np.unique(np.concatenate([manifest.weights(layer).ravel() for layer in manifest.layers]))
    w_min, w_max = manifest.layers[0].weight_range()
    expected = [-1, 1] if weight_kind == "binary" else list(range(w_min, w_max + 1))
    assert values.tolist() == expected
