"""The NumPy integer reference: the normative arithmetic of exported networks.

This docstring is the one statement of the integer semantics. The PyTorch
model in eval mode (``tangentcore.sw.models``), this reference and the RTL
(``tangentcore.hw``) implement it and must agree on every output bit.

Values
    A binary value is a bit: 1 means +1, 0 means -1, and ``sign(0) = +1``.
    Encoded inputs are bits (``binary``), unsigned k-bit integers (``uint``)
    or, for spiking networks, one 0/1 spike vector per time step
    (``spikes``). Spikes count as 0 and 1 in sums, not as ±1.

Weights
    ``binary``: ``w ∈ {−1, +1}``; ``ternary``: ``w ∈ {−1, 0, +1}``; ``int``:
    signed k-bit integers ``w ∈ [−2^(k−1), 2^(k−1) − 1]`` with ``2 ≤ k ≤ 8``.

Dense layer
    ``acc_j = Σ_i w_ji · x_i`` in exact integers, where ``x_i`` is ``±1`` for
    binary inputs and the unsigned integer itself for ``uint`` inputs. For
    binary weights and inputs this is ``2·popcount(xnor(a, w)) − n``.

Hidden output
    ``bit_j = acc_j ≥ T_j`` with an integer threshold per neuron. Export folds
    biases and scales into ``T`` and flips the weights of neurons whose scale
    is negative, so the comparison is always ``≥``. Thresholds are clipped to
    ``[acc_min, acc_max + 1]``, which changes no output.

Output layer
    ``acc`` itself is the vector of class scores. The predicted class is the
    argmax, ties going to the lowest index.

LIF layer (spiking; inputs are spikes ``s_i(t) ∈ {0, 1}``)
    Per neuron and time step ``t = 0 … T−1``, starting from ``v = 0``, in this
    fixed order: leak and integrate ``v ← v − (v >> k) + Σ_i w_i·s_i(t)``,
    where ``>>`` is an arithmetic shift (floor for negatives), so the leak
    is ``β = 1 − 2^−k``; saturate ``v`` to the signed ``B_v``-bit range;
    fire ``spike = v ≥ θ`` (``θ ≥ 1``); reset by subtraction
    ``v ← v − θ·spike`` or to zero ``v ← 0`` where ``spike``. A layer's
    spikes at step ``t`` are the next layer's inputs at the same step. The
    class scores are the output layer's spike counts over ``T`` steps, its
    final membrane (after the last reset) or its maximum membrane (over the
    post-saturation, pre-reset membrane of every step), as configured.

Widths
    Every accumulator holds the exact worst-case range of its sum: a signed
    width derived from fan-in, weight range and input range
    (:func:`accumulator_range`), so no sum can overflow. Only the LIF
    membrane saturates, and its saturation is part of the semantics.
"""

from __future__ import annotations

import numpy as np

from tangentcore.errors import TangentcoreError

__all__ = [
    "accumulator_range",
    "signed_width",
    "input_range",
    "weight_range",
    "input_values",
    "layer_accumulators",
    "forward",
    "predict",
    "argmax_lowest",
    "lif_integrate",
    "lif_fire",
    "lif_step",
    "lif_layer",
]


def signed_width(lo: int, hi: int) -> int:
    """Return the number of bits of the smallest two's-complement type holding ``[lo, hi]``."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


def input_range(encoding: str, bits: int) -> tuple[int, int]:
    """Return the integer range of one input value as the arithmetic sees it."""
    if encoding == "binary":
        return -1, 1
    if encoding == "spikes":
        return 0, 1
    return 0, (1 << bits) - 1


def weight_range(weight_kind: str, weight_bits: int) -> tuple[int, int]:
    """Return the smallest and largest weight of a weight kind: ±1, {−1, 0, +1} or signed ``weight_bits``-bit."""
    if weight_kind in ("binary", "ternary"):
        return -1, 1
    return -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1


def accumulator_range(n_in: int, weight_min: int, weight_max: int, x_min: int, x_max: int) -> tuple[int, int]:
    """Return the exact worst-case ``(min, max)`` of ``Σ w_i x_i`` over ``n_in`` terms."""
    products = [a * b for a in (weight_min, weight_max) for b in (x_min, x_max)]
    return n_in * min(products), n_in * max(products)


def input_values(x: np.ndarray, encoding: str) -> np.ndarray:
    """Map encoded inputs to the integers the arithmetic uses: bits to ±1, uint and spikes unchanged."""
    x = np.asarray(x, dtype=np.int64)
    if encoding == "binary":
        return 2 * x - 1
    return x


def layer_accumulators(weights: np.ndarray, x: np.ndarray, encoding: str) -> np.ndarray:
    """Return ``acc`` (batch, n_out) int64 of one layer for encoded inputs ``x`` (batch, n_in)."""
    return input_values(x, encoding) @ np.asarray(weights, dtype=np.int64).T


def argmax_lowest(scores: np.ndarray) -> np.ndarray:
    """Return the argmax along the last axis, ties going to the lowest index."""
    # np.argmax returns the first occurrence of the maximum, which is the lowest index.
    return np.argmax(scores, axis=-1)


def _check_inputs(manifest, x: np.ndarray) -> np.ndarray:
    """Return ``x`` as int64 with a batch axis; raise TangentcoreError on a wrong shape or out-of-range value."""
    x = np.asarray(x)
    if manifest.is_spiking:
        if x.ndim == 2:
            x = x[None]
        expected = f"(batch, {manifest.time_steps}, {manifest.input.size})"
        shape_ok = x.ndim == 3 and x.shape[1:] == (manifest.time_steps, manifest.input.size)
    else:
        if x.ndim == 1:
            x = x[None, :]
        expected = f"(batch, {manifest.input.size})"
        shape_ok = x.ndim == 2 and x.shape[1] == manifest.input.size
    if not shape_ok:
        raise TangentcoreError(f"inputs of {manifest.name!r} must have shape {expected}, not {x.shape}")
    if x.dtype.kind not in "iub":
        raise TangentcoreError(f"inputs of {manifest.name!r} must be integers, not {x.dtype}")
    top = 1 if manifest.input.encoding != "uint" else (1 << manifest.input.bits) - 1
    if x.size and (x.min() < 0 or x.max() > top):
        raise TangentcoreError(
            f"inputs of {manifest.name!r} must lie in [0, {top}] for {manifest.input.encoding} encoding, "
            f"but hold {x.min()} to {x.max()}"
        )
    return x.astype(np.int64)


def forward(manifest, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the integer network of ``manifest`` on encoded inputs.

    ``x`` is (batch, n_in) for dense networks and (batch, T, n_in) spike
    trains for LIF networks; a single sample without the batch axis is
    accepted too. Returns ``scores`` (batch, n_classes) int64,
    ``predictions`` (batch,) int64 (argmax, ties to the lowest index) and
    ``hidden``, the list of each hidden layer's outputs: bits (batch, n)
    uint8 for dense layers, spikes (batch, T, n) uint8 for LIF layers. LIF
    networks also return ``output_spikes`` (batch, T, n_classes) uint8 and
    ``output_membrane`` (batch, T, n_classes) int64 after reset, the output
    layer's traces. Raises TangentcoreError for inputs of the wrong shape or
    range.
    """
    x = _check_inputs(manifest, x)
    if manifest.is_spiking:
        return _forward_lif(manifest, x)
    encoding = manifest.input.encoding
    hidden = []
    for layer in manifest.layers[:-1]:
        acc = layer_accumulators(manifest.weights(layer), x, encoding)
        x = (acc >= manifest.thresholds(layer)[None, :]).astype(np.uint8)
        encoding = "binary"
        hidden.append(x)
    scores = layer_accumulators(manifest.weights(manifest.layers[-1]), x, encoding)
    return {"scores": scores, "predictions": argmax_lowest(scores), "hidden": hidden}


def _forward_lif(manifest, spikes: np.ndarray) -> dict[str, np.ndarray]:
    hidden = []
    for layer in manifest.layers:
        result = lif_layer(manifest.weights(layer), spikes, leak_shift=layer.leak_shift,
                           threshold=manifest.thresholds(layer), membrane_bits=layer.membrane_bits, reset=layer.reset)
        spikes = result["spikes"]
        if layer.output == "spikes":
            hidden.append(spikes)
    scores = result[manifest.layers[-1].output]
    return {
        "scores": scores,
        "predictions": argmax_lowest(scores),
        "hidden": hidden,
        "output_spikes": result["spikes"],
        "output_membrane": result["membrane"],
    }


def predict(manifest, x: np.ndarray) -> np.ndarray:
    """Return the predicted class of each encoded input row."""
    return forward(manifest, x)["predictions"]


def lif_integrate(v: np.ndarray, synaptic_input: np.ndarray, *, leak_shift: int, membrane_bits: int) -> np.ndarray:
    """Leak, integrate and saturate: return ``clip(v − (v >> k) + synaptic_input)`` to the ``B_v``-bit range."""
    low, high = -(1 << (membrane_bits - 1)), (1 << (membrane_bits - 1)) - 1
    return np.clip(v - (v >> leak_shift) + synaptic_input, low, high)


def lif_fire(v: np.ndarray, threshold: np.ndarray, reset: str) -> tuple[np.ndarray, np.ndarray]:
    """Fire ``v ≥ θ`` and reset; return ``(v after reset, spikes)``."""
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', not {reset!r}")
    spikes = v >= threshold
    if reset == "subtract":
        v = v - np.where(spikes, threshold, 0)
    else:
        v = np.where(spikes, 0, v)
    return v, spikes.astype(np.uint8)


def lif_step(v: np.ndarray, synaptic_input: np.ndarray, *, leak_shift: int, threshold: np.ndarray,
             membrane_bits: int, reset: str) -> tuple[np.ndarray, np.ndarray]:
    """Advance LIF membranes one time step; return ``(v, spikes)``.

    ``v`` and ``synaptic_input`` (``Σ_i w_i·s_i(t)``) are int64 arrays of the
    same shape (batch, n); ``threshold`` broadcasts against them. The order
    leak → integrate → saturate → fire → reset is the one in this module's
    docstring.
    """
    v = lif_integrate(v, synaptic_input, leak_shift=leak_shift, membrane_bits=membrane_bits)
    return lif_fire(v, threshold, reset)


def lif_layer(weights: np.ndarray, spikes_in: np.ndarray, *, leak_shift: int, threshold: np.ndarray,
              membrane_bits: int, reset: str) -> dict[str, np.ndarray]:
    """Run one LIF layer over all time steps of spike trains ``spikes_in`` (batch, T, n_in).

    The synaptic input of every step is one batched matrix product; only the
    membrane recursion runs step by step. Returns ``spikes`` (batch, T, n_out)
    uint8, ``membrane`` (batch, T, n_out) int64 after reset, ``spike_count``,
    ``final_membrane`` and ``max_membrane`` (batch, n_out) int64, where the
    maximum is taken over the post-saturation, pre-reset membrane of every step.
    """
    spikes_in = np.asarray(spikes_in, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    threshold = np.asarray(threshold, dtype=np.int64)
    batch, steps, _ = spikes_in.shape
    synaptic = spikes_in @ weights.T
    v = np.zeros((batch, weights.shape[0]), dtype=np.int64)
    low = -(1 << (membrane_bits - 1))
    spikes = np.zeros(synaptic.shape, dtype=np.uint8)
    membrane = np.zeros(synaptic.shape, dtype=np.int64)
    max_membrane = np.full(v.shape, low, dtype=np.int64)
    for t in range(steps):
        pre_reset = lif_integrate(v, synaptic[:, t], leak_shift=leak_shift, membrane_bits=membrane_bits)
        max_membrane = np.maximum(max_membrane, pre_reset)
        v, spikes[:, t] = lif_fire(pre_reset, threshold, reset)
        membrane[:, t] = v
    return {
        "spikes": spikes,
        "membrane": membrane,
        "spike_count": spikes.sum(axis=1, dtype=np.int64),
        "final_membrane": v,
        "max_membrane": max_membrane,
    }
