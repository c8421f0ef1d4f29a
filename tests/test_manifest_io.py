"""Manifest round trip and the errors of load_manifest."""

import json

import numpy as np
import pytest

from tangentcore.errors import TangentcoreError
from tangentcore.manifest import ARRAYS_FILE, MANIFEST_FILE, load_manifest, random_manifest, save_manifest
from tangentcore.sw import reference


@pytest.fixture
def saved(tmp_path):
    manifest = random_manifest(np.random.default_rng(0), [9, 7, 4], encoding="uint", bits=3, name="net")
    save_manifest(manifest, tmp_path / "m")
    return manifest, tmp_path / "m"


def _edit_json(folder, edit):
    path = folder / MANIFEST_FILE
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def test_round_trip_keeps_everything(saved):
    manifest, folder = saved
    loaded = load_manifest(folder)
    assert loaded.name == "net"
    assert loaded.input == manifest.input
    assert loaded.layers == manifest.layers
    assert sorted(loaded.arrays) == sorted(manifest.arrays)
    for key, value in manifest.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[key], value)
    x = np.random.default_rng(1).integers(0, 8, size=(50, 9))
    np.testing.assert_array_equal(reference.forward(loaded, x)["scores"], reference.forward(manifest, x)["scores"])


def test_load_accepts_json_path(saved):
    _, folder = saved
    assert load_manifest(folder / MANIFEST_FILE).name == "net"


def test_save_leaves_no_temporary_files(saved):
    _, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == sorted([ARRAYS_FILE, MANIFEST_FILE])


def test_missing_manifest_names_path(tmp_path):
    with pytest.raises(TangentcoreError, match="manifest not found"):
        load_manifest(tmp_path / "nothing")


def test_invalid_json(saved):
    _, folder = saved
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(TangentcoreError, match="not valid JSON"):
        load_manifest(folder)


def test_wrong_format(saved):
    _, folder = saved
    _edit_json(folder, lambda d: d.update(format="something-else"))
    with pytest.raises(TangentcoreError, match="not a tangentcore manifest"):
        load_manifest(folder)


def test_newer_schema_version(saved):
    _, folder = saved
    _edit_json(folder, lambda d: d.update(schema_version=99))
    with pytest.raises(TangentcoreError, match="schema_version is 99"):
        load_manifest(folder)


def test_missing_field_named(saved):
    _, folder = saved
    _edit_json(folder, lambda d: d["layers"][1].pop("acc_bits"))
    with pytest.raises(TangentcoreError, match=r"layers\[1\]\.acc_bits is missing"):
        load_manifest(folder)


def test_wrong_field_type_named(saved):
    _, folder = saved
    _edit_json(folder, lambda d: d["input"].update(size="9"))
    with pytest.raises(TangentcoreError, match=r"input\.size must be of type int"):
        load_manifest(folder)


def test_too_narrow_accumulator(saved):
    _, folder = saved
    _edit_json(folder, lambda d: d["layers"][0].update(acc_bits=3))
    with pytest.raises(TangentcoreError, match=r"layers\[0\]\.acc_bits is 3.*set it to"):
        load_manifest(folder)


def test_layer_chain_mismatch(saved):
    _, folder = saved
    _edit_json(folder, lambda d: d["layers"][1].update(in_features=8))
    with pytest.raises(TangentcoreError, match=r"layers\[1\]\.in_features is 8, but its input has 7 values"):
        load_manifest(folder)


def test_changed_arrays_fail_hash(saved):
    manifest, folder = saved
    arrays = dict(manifest.arrays)
    arrays["layer0.weight"] = -arrays["layer0.weight"]
    np.savez(folder / ARRAYS_FILE, **arrays)
    with pytest.raises(TangentcoreError, match="sha256"):
        load_manifest(folder)


def test_non_binary_weights_rejected(saved, tmp_path):
    manifest, _ = saved
    manifest.arrays["layer0.weight"] = manifest.arrays["layer0.weight"].copy()
    manifest.arrays["layer0.weight"][0, 0] = 2
    with pytest.raises(TangentcoreError, match="only -1 and \\+1"):
        save_manifest(manifest, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_threshold_out_of_range_rejected(saved, tmp_path):
    manifest, _ = saved
    lo, hi = manifest.layers[0].acc_range()
    manifest.arrays["layer0.threshold"] = manifest.arrays["layer0.threshold"].copy()
    manifest.arrays["layer0.threshold"][0] = hi + 2
    with pytest.raises(TangentcoreError, match=rf"must lie in \[{lo}, {hi + 1}\]"):
        save_manifest(manifest, tmp_path / "bad")


def test_pickled_arrays_refused(saved):
    _, folder = saved
    blob_path = folder / ARRAYS_FILE
    np.savez(blob_path, **{"layer0.weight": np.array([object()], dtype=object)})
    import hashlib

    digest = hashlib.sha256(blob_path.read_bytes()).hexdigest()
    _edit_json(folder, lambda d: d["arrays"].update(sha256=digest))
    with pytest.raises(TangentcoreError, match="without pickle"):
        load_manifest(folder)
