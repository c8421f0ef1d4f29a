"""Export trained sign MLPs and LIF networks to manifests of exact integers."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from tangentcore import __version__
from tangentcore.manifest import InputSpec, Manifest, make_layer, validate_manifest
from tangentcore.sw.models import SignMLP
from tangentcore.sw.spiking import LIFMLP

__all__ = ["export_sign_mlp", "export_lif_mlp", "export_model"]


def _provenance(model, provenance: dict | None) -> dict:
    return {
        "tangentcore_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "surrogate": {"name": model.surrogate.name, "scale": model.surrogate.scale},
        **(provenance or {}),
    }


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
        layer = make_layer(f"layer{index}", n_in, n_out, encoding, bits, "scores" if last else "bits",
                           weight_kind=model.weight_kind, weight_bits=model.weight_bits)
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
        provenance=_provenance(model, provenance),
    )
    validate_manifest(manifest)
    return manifest


def export_lif_mlp(model: LIFMLP, *, name: str, provenance: dict | None = None) -> Manifest:
    """Turn a trained :class:`LIFMLP` (trained with ``qat=True``) into a validated manifest."""
    if not model.qat:
        raise ValueError("only a model trained with qat=True computes integers and can be exported")
    model.eval()
    weights = [w.numpy().astype(np.int8) for w in model.integer_weights()]
    thresholds = [t.numpy() for t in model.integer_thresholds()]
    sizes = model.sizes
    layers = []
    arrays: dict[str, np.ndarray] = {}
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = index == len(sizes) - 2
        layer = make_layer(f"layer{index}", n_in, n_out, "spikes", 1, model.output if last else "spikes",
                           kind="lif", weight_kind=model.weight_kind, weight_bits=model.weight_bits,
                           leak_shift=model.leak_shift, reset=model.reset, membrane_bits=model.membrane_bits)
        layers.append(layer)
        arrays[layer.weight_key] = weights[index]
        arrays[layer.threshold_key] = thresholds[index]
    manifest = Manifest(
        name=name,
        input=InputSpec(size=sizes[0], encoding="spikes", bits=1),
        layers=layers,
        n_classes=sizes[-1],
        arrays=arrays,
        provenance=_provenance(model, provenance),
        time_steps=model.time_steps,
    )
    validate_manifest(manifest)
    return manifest


def export_model(model, *, name: str, provenance: dict | None = None) -> Manifest:
    """Export a :class:`SignMLP` or :class:`LIFMLP`."""
    if isinstance(model, LIFMLP):
        return export_lif_mlp(model, name=name, provenance=provenance)
    return export_sign_mlp(model, name=name, provenance=provenance)
