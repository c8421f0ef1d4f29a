"""The cycle model of a chain of layers joined by valid/ready streams.

Each layer is described by :class:`StageTiming`: it accepts an input only
while idle, raises ``o.valid`` ``latency_cycles`` after the input handshake
(or, on inputs that produce no output, becomes idle again then), holds the
output until the consumer takes it, and is idle again the next cycle. These
are the handshake rules that :class:`~tangentcore.hw.layers.DenseLayer` and
:class:`~tangentcore.hw.lif.LIFLayer` document, so :func:`schedule` replays
the exact cycles of a network core; the tests compare it with the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass

from tangentcore.errors import TangentcoreError

__all__ = ["StageTiming", "Schedule", "schedule", "network_cycles"]


@dataclass(frozen=True)
class StageTiming:
    """Handshake timing of one layer.

    ``latency_cycles`` counts from the input handshake to ``o.valid``; the
    layer produces an output on input ``k`` only when ``k % inputs_per_output
    == inputs_per_output − 1`` (1 for every input; ``T`` for an LIF output
    layer, which emits once per sample).
    """

    latency_cycles: int
    inputs_per_output: int = 1


@dataclass(frozen=True)
class Schedule:
    """Cycles of one simulated run, counted from the first cycle after reset (cycle 0)."""

    input_handshakes: list[int]  # cycle of each input vector's handshake on the first layer
    output_valid: list[int]  # first cycle ``o.valid`` is high for each output of the last layer
    output_handshakes: list[int]  # cycle each output is taken


def schedule(stages: list[StageTiming], n_inputs: int, *, sink_ready=lambda cycle: True,
             max_cycles: int = 10_000_000) -> Schedule:
    """Replay the handshakes of ``n_inputs`` vectors through ``stages``, input always valid.

    ``sink_ready(cycle)`` is the consumer's ``ready`` in each cycle. Runs
    until the last expected output is taken.
    """
    if not stages:
        raise TangentcoreError("a schedule needs at least one stage")
    outputs_expected = n_inputs
    for stage in stages:
        outputs_expected //= stage.inputs_per_output
    idle = [True] * len(stages)
    holding = [False] * len(stages)
    busy_until = [None] * len(stages)
    busy_emits = [False] * len(stages)
    accepted = [0] * len(stages)
    result = Schedule([], [], [])
    cycle = 0
    while len(result.output_handshakes) < outputs_expected:
        if cycle > max_cycles:
            raise TangentcoreError(f"schedule did not finish within {max_cycles} cycles")
        # Busy stages finish: they hold an output or are idle again.
        for index, until in enumerate(busy_until):
            if until == cycle:
                busy_until[index] = None
                if busy_emits[index]:
                    holding[index] = True
                    if index == len(stages) - 1:
                        result.output_valid.append(cycle)
                else:
                    idle[index] = True

        # Handshakes of this cycle, all decided on the state at its start.
        takes_input = [False] * len(stages)
        gives_output = [False] * len(stages)
        takes_input[0] = idle[0] and accepted[0] < n_inputs
        for index in range(1, len(stages)):
            if holding[index - 1] and idle[index]:
                takes_input[index] = gives_output[index - 1] = True
        if holding[-1] and sink_ready(cycle):
            gives_output[-1] = True
            result.output_handshakes.append(cycle)
        if takes_input[0]:
            result.input_handshakes.append(cycle)

        # State of the next cycle.
        for index, stage in enumerate(stages):
            if gives_output[index]:
                holding[index] = False
                idle[index] = True
            if takes_input[index]:
                idle[index] = False
                busy_until[index] = cycle + stage.latency_cycles
                busy_emits[index] = accepted[index] % stage.inputs_per_output == stage.inputs_per_output - 1
                accepted[index] += 1
        cycle += 1
    return result


def network_cycles(stages: list[StageTiming], inputs_per_sample: int) -> tuple[int, int]:
    """Return ``(latency_cycles, initiation_interval_cycles)`` per sample, input always valid, output always ready.

    The latency runs from the handshake of a sample's first input vector to
    its ``o.valid`` in an empty core. The initiation interval is the steady
    cycles between consecutive outputs of a full pipeline; the replay runs
    until two consecutive intervals agree.
    """
    single = schedule(stages, inputs_per_sample)
    latency = single.output_valid[0] - single.input_handshakes[0]
    samples = len(stages) + 2
    while True:
        run = schedule(stages, samples * inputs_per_sample)
        gaps = [b - a for a, b in zip(run.output_valid, run.output_valid[1:])]
        if len(gaps) >= 3 and gaps[-1] == gaps[-2] == gaps[-3]:
            return latency, gaps[-1]
        samples *= 2
