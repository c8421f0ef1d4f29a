"""Drive a stream core in Amaranth's simulator: inputs with gaps, outputs under back-pressure.

:class:`StreamBench` runs a core with an ``i`` and an ``o`` stream (a layer
or a whole network) cycle by cycle in one testbench, so that every
handshake cycle is known exactly; the tests compare those cycles with
:mod:`tangentcore.hw.timing` and the payloads with :mod:`tangentcore.sw.reference`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from tangentcore.errors import TangentcoreError

__all__ = ["StreamBench", "StreamRun", "run_stream", "pack_vectors", "unpack_words", "unpack_scores"]


def pack_vectors(vectors: np.ndarray, bits: int) -> list[int]:
    """Pack each row of ``vectors`` into one payload integer, value ``j`` at bits ``[j·bits, (j+1)·bits)``."""
    mask = (1 << bits) - 1
    packed = []
    for row in np.asarray(vectors, dtype=np.int64).reshape(len(vectors), -1):
        word = 0
        for index, value in enumerate(row.tolist()):
            word |= (value & mask) << (index * bits)
        packed.append(word)
    return packed


def unpack_words(word: int, count: int, bits: int, *, signed: bool) -> list[int]:
    """Split a payload integer into ``count`` fields of ``bits`` bits, two's complement when ``signed``."""
    mask = (1 << bits) - 1
    fields = [(word >> (index * bits)) & mask for index in range(count)]
    if signed:
        fields = [value - (1 << bits) if value >> (bits - 1) else value for value in fields]
    return fields


@dataclass
class StreamRun:
    """Payloads and handshake cycles seen by one :meth:`StreamBench.run`, counted from the start of the simulation."""

    payloads: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    input_handshakes: list[int] = field(default_factory=list)
    output_valid: list[int] = field(default_factory=list)
    output_handshakes: list[int] = field(default_factory=list)


class StreamBench:
    """A cycle-exact stream driver and monitor for one core.

    ``input_gap`` is the probability that the driver leaves ``i.valid`` low
    in a cycle before presenting the next vector, ``stall`` the probability
    that the monitor holds ``o.ready`` low; both draw from ``random.Random(seed)``.
    ``sink_ready(cycle)``, when given, sets ``o.ready`` instead of ``stall``.
    """

    def __init__(self, dut, *, input_gap: float = 0.0, stall: float = 0.0, seed: int = 0, sink_ready=None):
        self.dut = dut
        self.input_gap = input_gap
        self.stall = stall
        self.sink_ready = sink_ready
        self.rng = random.Random(seed)
        self.cycle = 0
        self.top = Module()
        self.top.domains.sync = self.domain = ClockDomain("sync")
        self.top.submodules.dut = dut
        self._label = getattr(dut, "label", None)

    def simulate(self, script) -> None:
        """Run ``await script(ctx, bench)`` in Amaranth's simulator with a clock on the ``sync`` domain."""
        simulator = Simulator(self.top)
        simulator.add_clock(1e-6, domain="sync")

        async def testbench(ctx):
            await script(ctx, self)

        simulator.add_testbench(testbench)
        simulator.run()

    async def _tick(self, ctx, *signals):
        _, _, *values = await ctx.tick("sync").sample(*signals)
        self.cycle += 1
        return values

    async def reset(self, ctx, cycles: int = 1) -> None:
        """Hold the synchronous reset for ``cycles`` cycles with both streams idle."""
        ctx.set(self.dut.i.valid, 0)
        ctx.set(self.dut.o.ready, 0)
        ctx.set(self.domain.rst, 1)
        for _ in range(cycles):
            await self._tick(ctx)
        ctx.set(self.domain.rst, 0)

    async def idle(self, ctx, cycles: int) -> None:
        """Wait ``cycles`` cycles with ``i.valid`` and ``o.ready`` low."""
        ctx.set(self.dut.i.valid, 0)
        ctx.set(self.dut.o.ready, 0)
        for _ in range(cycles):
            await self._tick(ctx)

    async def run(self, ctx, payloads: list[int], n_outputs: int, *, max_cycles: int = 1_000_000) -> StreamRun:
        """Send ``payloads`` and take ``n_outputs`` outputs; return payloads and handshake cycles."""
        dut, result = self.dut, StreamRun()
        sent = 0
        offered = False
        valid_seen = False
        deadline = self.cycle + max_cycles
        while len(result.payloads) < n_outputs or sent < len(payloads):
            if self.cycle > deadline:
                raise TangentcoreError(
                    f"stream bench timed out after {max_cycles} cycles with {sent}/{len(payloads)} inputs sent and "
                    f"{len(result.payloads)}/{n_outputs} outputs taken")
            if not offered and sent < len(payloads) and self.rng.random() >= self.input_gap:
                offered = True
                ctx.set(dut.i.payload, payloads[sent])
            ctx.set(dut.i.valid, offered)
            if self.sink_ready is not None:
                ready = len(result.payloads) < n_outputs and self.sink_ready(self.cycle)
            else:
                ready = len(result.payloads) < n_outputs and self.rng.random() >= self.stall
            ctx.set(dut.o.ready, ready)
            sampled = [dut.i.ready, dut.o.valid, Value.cast(dut.o.payload)]
            if self._label is not None:
                sampled.append(self._label)
            cycle = self.cycle
            i_ready, o_valid, payload, *label = await self._tick(ctx, *sampled)
            if offered and i_ready:
                result.input_handshakes.append(cycle)
                sent += 1
                offered = False
            if o_valid and not valid_seen:
                result.output_valid.append(cycle)
            valid_seen = bool(o_valid)
            if o_valid and ready:
                result.output_handshakes.append(cycle)
                result.payloads.append(int(payload))
                if label:
                    result.labels.append(int(label[0]))
                valid_seen = False
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 0)
        return result


def run_stream(dut, payloads: list[int], n_outputs: int, *, input_gap: float = 0.0, stall: float = 0.0,
               seed: int = 0, sink_ready=None) -> StreamRun:
    """Simulate ``dut`` from reset: send ``payloads``, take ``n_outputs`` outputs, return what was seen."""
    bench = StreamBench(dut, input_gap=input_gap, stall=stall, seed=seed, sink_ready=sink_ready)
    runs = []

    async def script(ctx, bench):
        runs.append(await bench.run(ctx, payloads, n_outputs))

    bench.simulate(script)
    return runs[0]


def unpack_scores(network, payload: int) -> tuple[int, list[int]]:
    """Split a network's ``o.payload`` integer into ``(label, scores)``; :class:`~tangentcore.hw.network.Network` states the layout."""
    label = payload & ((1 << network.label_bits) - 1)
    scores = unpack_words(payload >> network.label_bits, network.n_classes, network.score_bits,
                          signed=network.layers[-1].score_signed)
    return label, scores
