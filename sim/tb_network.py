"""cocotb testbench of generated network cores: a driver and a monitor per core, no checking.

The runner (:mod:`tangentcore.sim.runner`) writes a plan (JSON, path in
``TANGENTCORE_PLAN``) and reads back what this testbench observed (JSON,
path in ``TANGENTCORE_OBSERVED``); the comparison with the reference is the
runner's scoreboard (:mod:`tangentcore.sim.scoreboard`), so a mismatch never
fails the cocotb test itself.

A plan holds one or more units, each a network core under the top level: the
generated top itself (port prefix ``""``) or one of several cores bundled
into one design (prefix ``"n3_"``). Every unit has a stream ``i`` (input
beats; ``T`` beats make one sample) and a stream ``o`` (one output per
sample). All units run at once, in one loop that is clocked once per cycle:

1. Sample 0 alone, with a ready consumer: measures the latency from the
   handshake of the sample's first input beat to the output handshake.
2. A burst of samples at full rate with a ready consumer: measures the
   interval between outputs (the initiation interval).
3. The rest with random input gaps and random back-pressure (``o.ready``
   low), both seeded by the plan's ``seed``.

Taps are streams inside the core (the stream into hidden layer ``k + 1``,
which carries hidden layer ``k``'s output); every handshake on them is
recorded with its cycle. A tap whose signals the simulator does not expose
is reported unavailable with the reason.
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

log = logging.getLogger(__name__)

RESET_CYCLES = 3


def _unsigned(handle) -> int:
    """Return a signal's value as an unsigned integer; 1-bit signals hold a Logic, wider ones a LogicArray."""
    value = handle.value
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


def _handle(root, path: list[str]):
    for name in path:
        root = getattr(root, name)
    return root


class Unit:
    """Driver and monitor state of one core under test."""

    def __init__(self, dut, plan: dict, gaps: random.Random, backpressure: random.Random, settings: dict):
        prefix = plan["prefix"]
        self.name = plan["name"]
        self.i_valid = getattr(dut, f"{prefix}i__valid")
        self.i_ready = getattr(dut, f"{prefix}i__ready")
        self.i_payload = getattr(dut, f"{prefix}i__payload")
        self.o_valid = getattr(dut, f"{prefix}o__valid")
        self.o_ready = getattr(dut, f"{prefix}o__ready")
        self.o_payload = getattr(dut, f"{prefix}o__payload")
        self.samples = [[int(beat, 16) for beat in sample] for sample in plan["inputs"]]
        self.beats_per_sample = len(self.samples[0])
        self.burst = min(settings["burst_samples"], len(self.samples) - 1)
        self.gap_probability = settings["gap_probability"]
        self.backpressure_probability = settings["backpressure_probability"]
        self.gaps, self.backpressure = gaps, backpressure
        self.next_sample, self.next_beat = 0, 0
        self.presenting = False
        self.accepted_cycles: list[int] = []
        self.outputs: list[list] = []
        self.taps = [self._tap(dut, tap) for tap in plan["taps"]]

    @staticmethod
    def _tap(dut, tap: dict) -> dict:
        record = {"layer": tap["layer"], "available": False, "reason": "", "beats": []}
        path = tap["scope"]
        try:
            record["handles"] = tuple(_handle(dut, [*path, f"{tap['stream']}__{name}"])
                                      for name in ("valid", "ready", "payload"))
            record["available"] = True
        except AttributeError as error:
            record["reason"] = f"the simulator exposes no stream {'.'.join(path)}.{tap['stream']}: {error}"
        return record

    @property
    def done(self) -> bool:
        return len(self.outputs) == len(self.samples)

    def _in_random_phase(self) -> bool:
        return self.next_sample > self.burst

    def drive(self) -> None:
        """Set the input stream and ``o.ready`` for this cycle."""
        if not self.presenting and self.next_sample < len(self.samples):
            # Sample 0 travels alone: the next one waits until its output has left.
            waiting = self.next_sample == 1 and not self.outputs
            gap = self._in_random_phase() and self.gaps.random() < self.gap_probability
            if not waiting and not gap:
                self.i_payload.value = self.samples[self.next_sample][self.next_beat]
                self.presenting = True
        self.i_valid.value = int(self.presenting)
        measured = len(self.outputs) <= self.burst
        ready = measured or self.backpressure.random() >= self.backpressure_probability
        self.o_ready.value = int(ready)

    def sample(self, cycle: int) -> None:
        """Record the handshakes of this cycle; call in the read-only phase."""
        if self.presenting and self.i_ready.value == 1:
            self.presenting = False
            if self.next_beat == 0:
                self.accepted_cycles.append(cycle)
            self.next_beat += 1
            if self.next_beat == self.beats_per_sample:
                self.next_sample, self.next_beat = self.next_sample + 1, 0
        if self.o_valid.value == 1 and self.o_ready.value == 1:
            self.outputs.append([format(_unsigned(self.o_payload), "x"), cycle])
        for tap in self.taps:
            if tap["available"]:
                valid, ready, payload = tap["handles"]
                if valid.value == 1 and ready.value == 1:
                    tap["beats"].append([format(_unsigned(payload), "x"), cycle])

    def report(self) -> dict:
        return {
            "name": self.name,
            "accepted_cycles": self.accepted_cycles,
            "outputs": self.outputs,
            "burst_samples": self.burst,
            "taps": [{key: value for key, value in tap.items() if key != "handles"} for tap in self.taps],
        }


@cocotb.test()
async def network_streams(dut):
    """Stream every unit's samples through its core and record every output and tap handshake."""
    with open(os.environ["TANGENTCORE_PLAN"], encoding="utf-8") as handle:
        plan = json.load(handle)
    observed_path = os.environ["TANGENTCORE_OBSERVED"]
    seed = plan["seed"]
    cycle = 0
    timed_out = False
    error = None
    units: list[Unit] = []
    try:
        units = [Unit(dut, unit, random.Random(f"{seed}-gaps-{index}"), random.Random(f"{seed}-ready-{index}"),
                      plan) for index, unit in enumerate(plan["units"])]
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        for unit in units:
            unit.i_valid.value = 0
            unit.o_ready.value = 0
        await ClockCycles(dut.clk, RESET_CYCLES)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

        while not all(unit.done for unit in units):
            if cycle >= plan["max_cycles"]:
                timed_out = True
                log.error("stopped after %d cycles with outputs missing", cycle)
                break
            for unit in units:
                unit.drive()
            await ReadOnly()
            for unit in units:
                unit.sample(cycle)
            await RisingEdge(dut.clk)
            cycle += 1
    except Exception as caught:
        # The report still goes out, so that the runner can name the error.
        error = f"{type(caught).__name__}: {caught}"
        raise
    finally:
        report = {"cycles": cycle, "timed_out": timed_out, "error": error,
                  "units": [unit.report() for unit in units]}
        temporary = observed_path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
        os.replace(temporary, observed_path)
