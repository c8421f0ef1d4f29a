"""``examples/embed_core.py`` runs as documented: a generated core inside a user's Amaranth design."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tangentcore.manifest import random_manifest, save_manifest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed_core.py"


def _run_example(*args, cwd):
    return subprocess.run([sys.executable, str(EXAMPLE), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_embed_example_default_network(tmp_path):
    result = _run_example(cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "latency" in result.stdout


# manifest: a folded dense network, or an LIF network (T vectors per sample)
@pytest.mark.parametrize("kind,fold", [("dense", "2,4"), ("lif", "4,8:2,4")])
def test_embed_example_saved_manifest(kind, fold, tmp_path):
    rng = np.random.default_rng(71)
    if kind == "lif":
        manifest = random_manifest(rng, [16, 8, 4], kind="lif", time_steps=3)
    else:
        manifest = random_manifest(rng, [16, 8, 4], weight_kind="ternary", encoding="uint", bits=2)
    folder = save_manifest(manifest, tmp_path / "manifest").parent
    result = _run_example(folder, "--fold", fold, "--samples", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
