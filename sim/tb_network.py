"""cocotb testbench of a generated network core.

The runner (:mod:`tangentcore.sim.runner`) passes three files through the
environment: ``TANGENTCORE_VECTORS`` (an ``.npz`` with ``inputs`` and the
reference's ``scores`` and ``predictions``), ``TANGENTCORE_CORE`` (the
core's ``core.json``) and ``TANGENTCORE_RESULTS`` (where this testbench
writes its JSON report). ``TANGENTCORE_SEED`` seeds the random input gaps and
back-pressure.

A driver feeds the input stream with random gaps, a monitor takes outputs
under random back-pressure, and every score and label is compared with the
reference. The test fails on any mismatch.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

# Probability that the driver inserts an idle cycle before a vector, and that the monitor holds ready low.
INPUT_GAP_PROBABILITY = 0.3
BACKPRESSURE_PROBABILITY = 0.3


def _pack(row: np.ndarray, bits: int) -> int:
    value = 0
    for index, element in enumerate(row.tolist()):
        value |= int(element) << (index * bits)
    return value


def _to_signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


class Counter:
    """Counts rising clock edges since reset release."""

    def __init__(self, clock):
        self.clock = clock
        self.cycle = 0

    async def run(self):
        while True:
            await RisingEdge(self.clock)
            self.cycle += 1


async def _reset(dut):
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def _send(dut, payload: int, counter: Counter) -> int:
    """Hold one vector on the input stream until it is accepted; return the handshake cycle."""
    dut.i__payload.value = payload
    dut.i__valid.value = 1
    while True:
        await ReadOnly()
        accepted = int(dut.i__ready.value) == 1
        cycle = counter.cycle
        await RisingEdge(dut.clk)
        if accepted:
            dut.i__valid.value = 0
            return cycle


async def _receive(dut, counter: Counter, backpressure: random.Random | None) -> tuple[int, int]:
    """Take one output (ready held low at random when ``backpressure`` is given); return (payload, cycle)."""
    while True:
        ready = 1 if backpressure is None or backpressure.random() >= BACKPRESSURE_PROBABILITY else 0
        dut.o__ready.value = ready
        await ReadOnly()
        taken = ready and int(dut.o__valid.value) == 1
        payload = dut.o__payload.value.to_unsigned() if taken else 0
        cycle = counter.cycle
        await RisingEdge(dut.clk)
        if taken:
            dut.o__ready.value = 0
            return payload, cycle


def _decode(payload: int, label_bits: int, score_bits: int, n_classes: int) -> tuple[int, list[int]]:
    label = payload & ((1 << label_bits) - 1)
    scores_field = payload >> label_bits
    mask = (1 << score_bits) - 1
    scores = [_to_signed((scores_field >> (j * score_bits)) & mask, score_bits) for j in range(n_classes)]
    return label, scores


@cocotb.test()
async def network_matches_reference(dut):
    """Every score and label of every vector equals the reference."""
    vectors = np.load(os.environ["TANGENTCORE_VECTORS"], allow_pickle=False)
    with open(os.environ["TANGENTCORE_CORE"], encoding="utf-8") as handle:
        core = json.load(handle)
    results_path = os.environ["TANGENTCORE_RESULTS"]
    seed = int(os.environ.get("TANGENTCORE_SEED", "0"))
    inputs, expected_scores, expected_labels = vectors["inputs"], vectors["scores"], vectors["predictions"]
    port_in, port_out = core["ports"]["i"], core["ports"]["o"]
    label_bits, score_bits, n_classes = port_out["label_bits"], port_out["score_bits"], port_out["n_classes"]
    count = len(inputs)
    started = time.perf_counter()

    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut)
    counter = Counter(dut.clk)
    cocotb.start_soon(counter.run())

    # One vector alone, with a ready consumer, measures the latency from input handshake to o.valid.
    measured_latency = None
    outputs: list[tuple[int, int]] = []
    if count:
        sent_cycle = await _send(dut, _pack(inputs[0], port_in["input_bits"]), counter)
        payload, cycle = await _receive(dut, counter, None)
        measured_latency = cycle - sent_cycle
        outputs.append((payload, cycle))

    # The rest streams with random input gaps and random back-pressure.
    gaps = random.Random(seed)
    backpressure = random.Random(seed + 1)
    first_stream_cycle = counter.cycle

    async def drive():
        for row in inputs[1:]:
            while gaps.random() < INPUT_GAP_PROBABILITY:
                await RisingEdge(dut.clk)
            await _send(dut, _pack(row, port_in["input_bits"]), counter)

    driver = cocotb.start_soon(drive())
    for _ in range(count - 1):
        outputs.append(await _receive(dut, counter, backpressure))
    await driver
    stream_cycles = counter.cycle - first_stream_cycle

    mismatches = []
    for sample, (payload, cycle) in enumerate(outputs):
        label, scores = _decode(payload, label_bits, score_bits, n_classes)
        for index, (actual, expected) in enumerate(zip(scores, expected_scores[sample].tolist())):
            if actual != expected:
                mismatches.append({"sample": sample, "output": f"score[{index}]", "expected": expected,
                                   "actual": actual, "cycle": cycle})
        if label != int(expected_labels[sample]):
            mismatches.append({"sample": sample, "output": "label", "expected": int(expected_labels[sample]),
                               "actual": label, "cycle": cycle})

    report = {
        "vectors": count,
        "outputs_compared": count * (n_classes + 1),
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:20],
        "measured_latency_cycles": measured_latency,
        "model_latency_cycles": core["latency_cycles"],
        "stream_cycles": stream_cycles,
        "labels": [_decode(p, label_bits, score_bits, n_classes)[0] for p, _ in outputs],
        "wall_seconds": time.perf_counter() - started,
    }
    tmp = results_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    os.replace(tmp, results_path)

    assert not mismatches, f"{len(mismatches)} mismatching outputs; first: {mismatches[0]}"
    assert measured_latency == core["latency_cycles"], (
        f"measured latency {measured_latency} cycles, model {core['latency_cycles']}"
    )
