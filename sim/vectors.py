"""Stimulus and expected outputs of a co-simulation, as plain data.

Co-simulation vectors always carry a time axis, shape ``(n, T, n_in)``: a
sample is ``T`` input beats (``T = 1`` for non-spiking networks, which may
also be given as ``(n, n_in)``). The expected outputs come from
:func:`tangentcore.sw.reference.forward` on the same manifest. This module
only reshapes them, and packs inputs the way the core's stream ports carry
them: value ``j`` at bits ``[j·bits, (j+1)·bits)``, as ``core.json`` describes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.sw import reference

__all__ = ["Expected", "time_steps", "as_time_major", "expected_outputs", "pack_rows", "unpack_bits",
           "decode_output", "random_inputs"]


def time_steps(manifest) -> int:
    """Return the manifest's time steps ``T``; 1 for networks without time (schema version 1)."""
    return int(getattr(manifest, "time_steps", 1))


def as_time_major(manifest, inputs) -> np.ndarray:
    """Return ``inputs`` as int64 ``(n, T, n_in)``, accepting ``(n, n_in)`` when ``T = 1``."""
    inputs = np.asarray(inputs)
    steps, size = time_steps(manifest), manifest.input.size
    if inputs.ndim == 2 and steps == 1:
        inputs = inputs[:, None, :]
    if inputs.ndim != 3 or inputs.shape[1:] != (steps, size) or len(inputs) == 0:
        expected = f"(n >= 1, {steps}, {size})" + (f" or (n >= 1, {size})" if steps == 1 else "")
        raise TangentcoreError(f"co-simulation inputs must have shape {expected}, not {inputs.shape}")
    if inputs.dtype.kind not in "iub":
        raise TangentcoreError(f"co-simulation inputs must be integers, not {inputs.dtype}")
    high = (1 << manifest.input.bits) - 1
    if inputs.min() < 0 or inputs.max() > high:
        raise TangentcoreError(
            f"co-simulation inputs must lie in [0, {high}] for {manifest.input.bits}-bit "
            f"{manifest.input.encoding} inputs, not [{inputs.min()}, {inputs.max()}]"
        )
    return inputs.astype(np.int64)


@dataclass
class Expected:
    """The reference's outputs for every sample: ``scores`` (n, C), ``labels`` (n,), ``taps``.

    ``taps[k]`` is hidden layer ``k``'s output bits shaped ``(n, beats, width)``,
    ``beats`` being the number of output beats per sample (1 for sign layers,
    ``T`` for LIF layers, whose spikes come one vector per time step).
    """

    scores: np.ndarray
    labels: np.ndarray
    taps: list[np.ndarray]


def expected_outputs(manifest, inputs: np.ndarray) -> Expected:
    """Run the reference on time-major ``inputs`` (n, T, n_in) and return what the core must output."""
    spiking = getattr(manifest, "is_spiking", False)
    result = reference.forward(manifest, inputs if spiking else inputs[:, 0, :])
    taps = [np.asarray(hidden).reshape(len(inputs), -1, np.shape(hidden)[-1]) for hidden in result["hidden"]]
    return Expected(scores=np.asarray(result["scores"], dtype=np.int64),
                    labels=np.asarray(result["predictions"], dtype=np.int64), taps=taps)


def pack_rows(rows: np.ndarray, bits: int) -> list[int]:
    """Pack each row of unsigned values into one integer, value ``j`` at bits ``[j·bits, (j+1)·bits)``."""
    rows = np.asarray(rows, dtype=np.int64)
    weights = [1 << (j * bits) for j in range(rows.shape[-1])]
    return [sum(int(value) * weight for value, weight in zip(row.tolist(), weights)) for row in rows]


def unpack_bits(value: int, width: int) -> list[int]:
    """Return the ``width`` low bits of ``value``, bit 0 first."""
    return [(value >> j) & 1 for j in range(width)]


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def decode_output(payload: int, port: dict) -> tuple[int, list[int]]:
    """Split an output payload into ``(label, scores)`` as the core's ``o`` port description lays it out.

    ``label`` is the low ``label_bits`` bits and the ``n_classes`` scores of
    ``score_bits`` each follow; scores are signed unless the port description
    sets ``"score_signed": false`` (spike counts).
    """
    label_bits, score_bits = port["label_bits"], port["score_bits"]
    signed = port.get("score_signed", True)
    label = payload & ((1 << label_bits) - 1)
    field = payload >> label_bits
    mask = (1 << score_bits) - 1
    scores = []
    for j in range(port["n_classes"]):
        raw = (field >> (j * score_bits)) & mask
        scores.append(_signed(raw, score_bits) if signed else raw)
    return label, scores


def random_inputs(manifest, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``count`` random time-major input vectors that cover every input value.

    The first samples are the corners (every input at its minimum, then at
    its maximum) so that the extremes of every accumulator are exercised.
    """
    if count < 1:
        raise TangentcoreError(f"the number of vectors must be positive, not {count}")
    shape = (count, time_steps(manifest), manifest.input.size)
    high = (1 << manifest.input.bits) - 1
    inputs = rng.integers(0, high + 1, size=shape, dtype=np.int64)
    inputs[0] = 0
    if count > 1:
        inputs[1] = high
    return inputs
