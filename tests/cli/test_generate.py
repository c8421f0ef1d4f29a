"""``tangentcore generate`` on manifests saved to disk: files, core description, fold errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tangentcore.manifest import random_manifest, save_manifest


def _tangentcore(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tangentcore", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifests")
    rng = np.random.default_rng(61)
    dense = random_manifest(rng, [16, 8, 4], weight_kind="int", weight_bits=3, encoding="uint", bits=2, name="dense")
    lif = random_manifest(rng, [16, 8, 4], kind="lif", time_steps=4, output="max_membrane", name="lif")
    return {"dense": save_manifest(dense, folder / "dense").parent, "lif": save_manifest(lif, folder / "lif").parent}


# manifest: dense or LIF
@pytest.mark.parametrize("kind", ["dense", "lif"])
def test_generate_writes_core_and_description(manifests, kind, tmp_path):
    result = _tangentcore("generate", manifests[kind], "--fold", "4,8:2,4", "--weights", "bram", "--out",
                          tmp_path / "core", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tangentcore_net.v" in result.stdout
    verilog = (tmp_path / "core" / "tangentcore_net.v").read_text()
    assert "module tangentcore_net" in verilog
    assert (tmp_path / "core" / "tangentcore_net.il").stat().st_size > 0
    description = json.loads((tmp_path / "core" / "core.json").read_text())
    assert description["verilog_bytes"] == len(verilog.encode("utf-8"))
    assert [(layer["pe"], layer["simd"]) for layer in description["layers"]] == [(4, 8), (2, 4)]
    assert [layer["compute_cycles"] for layer in description["layers"]] == [4, 4]
    assert {layer["weight_storage"] for layer in description["layers"]} == {"bram"}
    assert {layer["kind"] for layer in description["layers"]} == {kind}
    assert description["time_steps"] == (4 if kind == "lif" else 1)
    ports = description["ports"]
    assert ports["i"]["payload_bits"] == 16 * (2 if kind == "dense" else 1)
    assert ports["o"]["payload_bits"] == ports["o"]["label_bits"] + 4 * ports["o"]["score_bits"]
    assert description["latency_cycles"] > 0
    assert description["initiation_interval_cycles"] > 0


# fold: PE not dividing a layer, SIMD wider than the fan-in clipped then not dividing, malformed
@pytest.mark.parametrize("fold,message", [
    ("3,4", "layer 0 (layer0): PE must divide the layer's 8 outputs, not 3; choose one of [1, 2, 4, 8]"),
    ("8,16:4,3", "layer 1 (layer1): SIMD must divide the layer's 8 inputs, not 3; choose one of [1, 2, 4, 8]"),
    ("8;16", "fold must be 'auto', 'PE,SIMD' or one 'PE,SIMD' per layer joined by ':'"),
])
def test_generate_rejects_bad_fold(manifests, fold, message, tmp_path):
    result = _tangentcore("generate", manifests["dense"], "--fold", fold, "--out", tmp_path / "core", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "core").exists()
