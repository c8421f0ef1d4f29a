"""Export trained sign MLPs to manifests, and fold float thresholds into integers."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from tangentcore import __version__
from tangentcore.manifest import InputSpec, Manifest, make_layer, validate_manifest
from tangentcore.sw.models import SignMLP

__all__ = ["export_sign_mlp"]


def export_sign_mlp(model: SignMLP, *, name: str, provenance: dict | None = None) -> Manifest:
    """Turn a trained :class:`SignMLP` into a validated manifest (arrays in memory)."""
    model.eval()
    weights = [w.numpy().astype(np.int8) for w in model.integer_weights()]
    folded = [(t.numpy().astype(np.int64), f.numpy()) for t, f in model.folded_thresholds()]
    sizes = model.sizes
    layers = []
    arrays: dict[str, np.ndarray] = {}
    encoding, bits = model.input_encoding, model.input_bits
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = index == len(sizes) - 2
        layer = make_layer(f"layer{index}", n_in, n_out, encoding, bits, "scores" if last else "bits")
        layers.append(layer)
        if last:
            arrays[layer.weight_key] = weights[index]
        else:
            thresholds, flip = folded[index]
            # A neuron with a negative gain compares -acc: negate its weights instead.
            arrays[layer.weight_key] = np.where(flip[:, None], -weights[index], weights[index]).astype(np.int8)
            arrays[layer.threshold_key] = thresholds
        encoding, bits = "binary", 1
    manifest = Manifest(
        name=name,
        input=InputSpec(size=sizes[0], encoding=model.input_encoding, bits=model.input_bits),
        layers=layers,
        n_classes=sizes[-1],
        arrays=arrays,
        provenance={
            "tangentcore_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "surrogate": {"name": model.surrogate.name, "scale": model.surrogate.scale},
            **(provenance or {}),
        },
    )
    validate_manifest(manifest)
    return manifest
