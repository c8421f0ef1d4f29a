"""The scoreboard: compare what a core output in simulation with what the reference expects.

The testbench (:mod:`tangentcore.sim.tb_network`) only records handshakes;
this module decodes them and compares every output bit. Outputs leave a
core in sample order, so output ``k`` belongs to sample ``k``, and tap beat
``b`` of a layer with ``beats`` beats per sample belongs to sample
``b // beats``, time step ``b % beats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tangentcore.sim.vectors import Expected, decode_output, unpack_bits

__all__ = ["Mismatch", "UnitResult", "score_unit"]


@dataclass(frozen=True)
class Mismatch:
    """One output that differs from the reference.

    ``output`` names it: ``"score[3]"``, ``"label"``, ``"missing"`` (the core
    never output the sample) or ``"tap layer0[t=0][17]"`` (hidden layer
    ``layer0``, time step 0, neuron 17). ``cycle`` counts clock cycles from
    the release of reset to the output's handshake.
    """

    sample: int
    output: str
    expected: int
    actual: int | None
    cycle: int | None

    def describe(self) -> str:
        where = f" at cycle {self.cycle}" if self.cycle is not None else ""
        return f"sample {self.sample} {self.output}: expected {self.expected}, got {self.actual}{where}"

    def to_dict(self) -> dict:
        return {"sample": self.sample, "output": self.output, "expected": self.expected,
                "actual": self.actual, "cycle": self.cycle}


@dataclass
class UnitResult:
    """The verdict on one core: every mismatch, taps and measured cycle counts."""

    name: str
    vectors: int
    outputs_compared: int
    mismatches: list[Mismatch]
    labels: list[int]
    taps_compared: list[str]
    taps_unavailable: dict[str, str]
    measured_latency_cycles: int | None
    model_latency_cycles: int
    measured_interval_cycles: int | None
    model_interval_cycles: int
    output_cycles: list[int] = field(default_factory=list)

    @property
    def latency_ok(self) -> bool:
        return self.measured_latency_cycles == self.model_latency_cycles

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.latency_ok

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "vectors": self.vectors,
            "outputs_compared": self.outputs_compared,
            "mismatches": len(self.mismatches),
            "first_mismatches": [mismatch.to_dict() for mismatch in self.mismatches[:20]],
            "taps_compared": self.taps_compared,
            "taps_unavailable": self.taps_unavailable,
            "measured_latency_cycles": self.measured_latency_cycles,
            "model_latency_cycles": self.model_latency_cycles,
            "measured_interval_cycles": self.measured_interval_cycles,
            "model_interval_cycles": self.model_interval_cycles,
            "passed": self.passed,
        }


def _compare_outputs(observed: dict, expected: Expected, port: dict) -> tuple[list[Mismatch], list[int], int]:
    mismatches, labels, compared = [], [], 0
    for sample in range(len(expected.labels)):
        if sample >= len(observed["outputs"]):
            mismatches.append(Mismatch(sample, "missing", int(expected.labels[sample]), None, None))
            continue
        payload, cycle = observed["outputs"][sample]
        label, scores = decode_output(int(payload, 16), port)
        labels.append(label)
        for index, (actual, expected_score) in enumerate(zip(scores, expected.scores[sample].tolist())):
            if actual != expected_score:
                mismatches.append(Mismatch(sample, f"score[{index}]", expected_score, actual, cycle))
        if label != int(expected.labels[sample]):
            mismatches.append(Mismatch(sample, "label", int(expected.labels[sample]), label, cycle))
        compared += len(scores) + 1
    return mismatches, labels, compared


def _compare_tap(tap: dict, expected_bits, samples: int) -> tuple[list[Mismatch], int]:
    """Compare one hidden layer's recorded beats with ``expected_bits`` (n, beats, width)."""
    mismatches, compared = [], 0
    beats_per_sample, width = expected_bits.shape[1], expected_bits.shape[2]
    beats = tap["beats"]
    for sample in range(samples):
        for step in range(beats_per_sample):
            index = sample * beats_per_sample + step
            if index >= len(beats):
                # A missing tap beat is reported once, through the missing output.
                return mismatches, compared
            payload, cycle = beats[index]
            actual = unpack_bits(int(payload, 16), width)
            for neuron, (bit, expected_bit) in enumerate(zip(actual, expected_bits[sample, step].tolist())):
                if bit != expected_bit:
                    mismatches.append(Mismatch(sample, f"tap {tap['layer']}[t={step}][{neuron}]",
                                               int(expected_bit), bit, cycle))
            compared += width
    return mismatches, compared


def _interval(observed: dict) -> int | None:
    """Return the largest interval between consecutive outputs of the full-rate burst, or None without one."""
    cycles = [cycle for _, cycle in observed["outputs"][1 : observed["burst_samples"] + 1]]
    # The first output of the burst still reflects the pipeline filling up; the rest are steady state.
    intervals = [later - earlier for earlier, later in zip(cycles[1:], cycles[2:])]
    return max(intervals) if intervals else None


def score_unit(observed: dict, expected: Expected, description: dict) -> UnitResult:
    """Compare one unit's observations with ``expected``; return every mismatch, sorted by sample.

    Mismatches of one sample are ordered from the first hidden layer to the
    label, so the first one in the list points at the earliest place where
    the core and the reference part.
    """
    samples = len(expected.labels)
    mismatches, labels, compared = _compare_outputs(observed, expected, description["ports"]["o"])
    taps_compared, unavailable = [], {}
    for tap, expected_bits in zip(observed["taps"], expected.taps):
        if not tap["available"]:
            unavailable[tap["layer"]] = tap["reason"]
            continue
        tap_mismatches, tap_compared = _compare_tap(tap, expected_bits, samples)
        mismatches += tap_mismatches
        compared += tap_compared
        taps_compared.append(tap["layer"])
    layer_rank = {tap["layer"]: rank for rank, tap in enumerate(observed["taps"])}

    def position(mismatch: Mismatch) -> tuple:
        if mismatch.output.startswith("tap "):
            layer = mismatch.output[4:].split("[", 1)[0]
            return mismatch.sample, 0, layer_rank.get(layer, 0)
        return mismatch.sample, 1, 0

    mismatches.sort(key=position)
    accepted = observed["accepted_cycles"]
    latency = None
    if observed["outputs"] and accepted:
        latency = observed["outputs"][0][1] - accepted[0]
    return UnitResult(
        name=observed["name"],
        vectors=samples,
        outputs_compared=compared,
        mismatches=mismatches,
        labels=labels,
        taps_compared=taps_compared,
        taps_unavailable=unavailable,
        measured_latency_cycles=latency,
        model_latency_cycles=description["latency_cycles"],
        measured_interval_cycles=_interval(observed),
        model_interval_cycles=description["initiation_interval_cycles"],
        output_cycles=[cycle for _, cycle in observed["outputs"]],
    )
