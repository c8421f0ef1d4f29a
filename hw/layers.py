"""Folded matrix-vector-threshold layers with binary weights.

The arithmetic is the one stated in :mod:`tangentcore.sw.reference`; this
module only schedules it. A layer computes ``PE`` neurons in parallel over
``SIMD`` inputs per cycle, so one input vector takes
``⌈n_in/SIMD⌉ · ⌈n_out/PE⌉`` compute cycles (:func:`fold_cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError

__all__ = ["Folding", "SignLayer", "fold_cycles", "check_folding", "auto_folding"]


@dataclass(frozen=True)
class Folding:
    """How a layer is folded: ``pe`` neurons in parallel, ``simd`` inputs per cycle."""

    pe: int
    simd: int


def fold_cycles(n_in: int, n_out: int, folding: Folding) -> int:
    """Return the compute cycles of one input vector: ``⌈n_in/SIMD⌉ · ⌈n_out/PE⌉``."""
    return -(-n_in // folding.simd) * -(-n_out // folding.pe)


def check_folding(n_in: int, n_out: int, folding: Folding, where: str = "layer") -> None:
    """Raise TangentcoreError unless PE divides n_out and SIMD divides n_in.

    The folded layer has no padding: every cycle processes full SIMD chunks
    for PE whole neurons.
    """
    if folding.pe < 1 or folding.pe > n_out or n_out % folding.pe:
        divisors = [d for d in range(1, n_out + 1) if n_out % d == 0]
        raise TangentcoreError(
            f"{where}: PE must divide the layer's {n_out} outputs, not {folding.pe}; choose one of {divisors}"
        )
    if folding.simd < 1 or folding.simd > n_in or n_in % folding.simd:
        divisors = [d for d in range(1, n_in + 1) if n_in % d == 0]
        raise TangentcoreError(
            f"{where}: SIMD must divide the layer's {n_in} inputs, not {folding.simd}; choose one of {divisors}"
        )


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def auto_folding(n_in: int, n_out: int, max_pe: int = 8, max_simd: int = 64) -> Folding:
    """Pick a folding: the largest divisors of n_out and n_in up to ``max_pe`` and ``max_simd``."""
    return Folding(pe=_largest_divisor_at_most(n_out, max_pe), simd=_largest_divisor_at_most(n_in, max_simd))


def _tree_sum(values: list):
    """Add values in a balanced tree, so the adder depth is ⌈log2(len)⌉."""
    values = list(values)
    while len(values) > 1:
        paired = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            paired.append(values[-1])
        values = paired
    return values[0]


class SignLayer(wiring.Component):
    """A folded fully connected layer with binary weights (±1) and an integer threshold or score output.

    Parameters (keyword-only)
        weights: (n_out, n_in) array of ±1.
        thresholds: (n_out,) integers for a hidden layer (output bit ``acc ≥ T``),
            or None for the output layer (output the scores ``acc``).
        input_encoding, input_bits: ``"binary"`` (bit 1 is +1) or ``"uint"`` k-bit inputs.
        acc_bits: signed accumulator width; must hold the worst-case ``acc`` and every threshold.
        folding: PE and SIMD; PE must divide n_out and SIMD must divide n_in.

    Ports
        i: stream in. ``payload`` is the input vector, value ``j`` at bits
            ``[j·input_bits, (j+1)·input_bits)``. Accepted (``ready`` high)
            only while the layer is idle, one vector at a time.
        o: stream out. ``payload`` is ``n_out`` bits (hidden layer), or
            ``n_out`` signed scores of ``acc_bits`` each, score ``j`` at bits
            ``[j·acc_bits, (j+1)·acc_bits)`` (output layer). For the output
            layer, ``label`` carries the argmax with ties to the lowest index;
            it is valid with ``o.valid``. The output is held until ``o.ready``.

    Timing
        After an input handshake the layer computes for ``compute_cycles``
        cycles, then holds ``o.valid`` from the next cycle on; it returns to
        idle the cycle after the output handshake. So ``latency_cycles`` from
        input handshake to ``o.valid`` is ``compute_cycles + 1`` and the
        initiation interval with a ready consumer is ``compute_cycles + 2``.
    """

    def __init__(self, *, weights, thresholds, input_encoding: str, input_bits: int, acc_bits: int, folding: Folding):
        weights = np.asarray(weights, dtype=np.int64)
        if weights.ndim != 2 or not np.all(np.abs(weights) == 1):
            raise TangentcoreError("SignLayer weights must be a 2-D array of -1 and +1")
        self.n_out, self.n_in = weights.shape
        check_folding(self.n_in, self.n_out, folding)
        if input_encoding not in ("binary", "uint"):
            raise TangentcoreError(f"input_encoding must be 'binary' or 'uint', not {input_encoding!r}")
        self.weights = weights
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.int64)
        self.input_encoding = input_encoding
        self.input_bits = 1 if input_encoding == "binary" else input_bits
        self.acc_bits = acc_bits
        self.folding = folding
        x_max = 1 if input_encoding == "binary" else (1 << self.input_bits) - 1
        worst = self.n_in * x_max
        limit_lo, limit_hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
        if -worst < limit_lo or worst > limit_hi:
            raise TangentcoreError(
                f"acc_bits {acc_bits} cannot hold the worst-case accumulator range [{-worst}, {worst}]; "
                f"use at least {int(worst).bit_length() + 1} bits"
            )
        if self.thresholds is not None:
            if self.thresholds.shape != (self.n_out,):
                raise TangentcoreError(f"thresholds must have shape ({self.n_out},), not {self.thresholds.shape}")
            if self.thresholds.min() < limit_lo or self.thresholds.max() > limit_hi:
                raise TangentcoreError(
                    f"thresholds must lie in [{limit_lo}, {limit_hi}] to fit acc_bits {acc_bits}; clip them to "
                    f"[{-worst}, {worst + 1}], which changes no output"
                )
        self.is_output = self.thresholds is None
        self.label_bits = max(1, (self.n_out - 1).bit_length())
        ports = {
            "i": In(stream.Signature(self.n_in * self.input_bits)),
            "o": Out(stream.Signature(self.n_out * (acc_bits if self.is_output else 1))),
        }
        if self.is_output:
            ports["label"] = Out(self.label_bits)
        super().__init__(ports)

    @property
    def compute_cycles(self) -> int:
        return fold_cycles(self.n_in, self.n_out, self.folding)

    @property
    def latency_cycles(self) -> int:
        return self.compute_cycles + 1

    @property
    def initiation_interval_cycles(self) -> int:
        return self.compute_cycles + 2

    @property
    def row_bits(self) -> int:
        """Width of one parameter memory row: PE·SIMD weight bits, then PE thresholds for hidden layers."""
        pe, simd = self.folding.pe, self.folding.simd
        return pe * simd + (0 if self.is_output else pe * self.acc_bits)

    def _memory_rows(self) -> list[int]:
        """Pack parameters into memory rows, one per compute cycle.

        Row ``nf·SF + sf``: bit ``p·SIMD + s`` is the weight of neuron
        ``nf·PE + p`` for input ``sf·SIMD + s`` (1 meaning +1); for a hidden
        layer, the ``acc_bits``-bit two's-complement threshold of neuron
        ``nf·PE + p`` follows at bit ``PE·SIMD + p·acc_bits`` (repeated in
        every row of the group, so that no combinational lookup is needed).
        """
        pe, simd, acc_bits = self.folding.pe, self.folding.simd, self.acc_bits
        bits = (self.weights > 0).astype(np.int64)
        rows = []
        for nf in range(self.n_out // pe):
            thresholds = 0
            if not self.is_output:
                for p in range(pe):
                    value = int(self.thresholds[nf * pe + p]) & ((1 << acc_bits) - 1)
                    thresholds |= value << (p * acc_bits)
            for sf in range(self.n_in // simd):
                block = bits[nf * pe : (nf + 1) * pe, sf * simd : (sf + 1) * simd].reshape(-1)
                weights = int(sum(int(b) << k for k, b in enumerate(block)))
                rows.append(weights | thresholds << (pe * simd))
        return rows

    def _partial_sum(self, w_row, x_chunk, p: int):
        """Return ``Σ_s w·x`` over one SIMD chunk for PE lane ``p``."""
        simd, in_bits = self.folding.simd, self.input_bits
        w_bits = w_row[p * simd : (p + 1) * simd]
        if self.input_encoding == "binary":
            matches = ~(w_bits ^ x_chunk)
            popcount = _tree_sum([matches[s] for s in range(simd)])
            return 2 * popcount - simd
        terms = []
        for s in range(simd):
            x = x_chunk[s * in_bits : (s + 1) * in_bits]
            terms.append(Mux(w_bits[s], x, -x))
        return _tree_sum(terms)

    def elaborate(self, platform):
        m = Module()
        pe, simd, in_bits, acc_bits = self.folding.pe, self.folding.simd, self.input_bits, self.acc_bits
        synapse_folds = self.n_in // simd
        neuron_folds = self.n_out // pe
        total_folds = synapse_folds * neuron_folds

        m.submodules.parameters = parameters = Memory(shape=unsigned(self.row_bits), depth=total_folds,
                                                      init=self._memory_rows())
        row_port = parameters.read_port(domain="sync")

        x_reg = Signal(self.n_in * in_bits)
        step = Signal(range(total_folds))
        sf = Signal(range(synapse_folds))
        nf = Signal(range(neuron_folds))
        acc = [Signal(signed(acc_bits), name=f"acc{p}") for p in range(pe)]
        out_width = self.n_out * (acc_bits if self.is_output else 1)
        out_reg = Signal(out_width)
        running = Signal()
        done = Signal()

        # Synchronous parameter read: the address of the next step is presented one cycle ahead,
        # and address 0 is held while idle, so step k always sees row k.
        last_step = step == total_folds - 1
        m.d.comb += row_port.addr.eq(Mux(running & ~last_step, step + 1, 0))

        # Input handshake.
        m.d.comb += self.i.ready.eq(~running & ~done)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [x_reg.eq(self.i.payload), running.eq(1), step.eq(0), sf.eq(0), nf.eq(0)]

        # Accumulate one SIMD chunk for PE neurons per cycle.
        x_chunk = x_reg.word_select(sf, simd * in_bits)
        sums = []
        for p in range(pe):
            partial = self._partial_sum(row_port.data, x_chunk, p)
            total = Signal(signed(acc_bits), name=f"sum{p}")
            m.d.comb += total.eq(Mux(sf == 0, 0, acc[p]) + partial)
            sums.append(total)
        neuron_done = sf == synapse_folds - 1

        # Results of the neuron group that completes this cycle.
        if self.is_output:
            group_bits = Cat(*sums)
        else:
            group_thresholds = row_port.data[pe * simd :]
            group_bits = Cat(*[sums[p] >= group_thresholds.word_select(p, acc_bits).as_signed() for p in range(pe)])

        # Running argmax for the output layer: strict > keeps the lowest index on ties.
        if self.is_output:
            best_score = Signal(signed(acc_bits))
            best_label = Signal(self.label_bits)
            score, label = best_score, best_label
            for p in range(pe):
                candidate_label = nf * pe + p
                better = sums[p] > score
                if p == 0:
                    # The first neuron of the first group starts the running maximum.
                    better = better | (nf == 0)
                score = Mux(better, sums[p], score)
                label = Mux(better, candidate_label, label)
            m.d.comb += self.label.eq(best_label)

        with m.If(running):
            m.d.sync += step.eq(step + 1)
            with m.If(neuron_done):
                m.d.sync += [sf.eq(0), nf.eq(nf + 1)]
                m.d.sync += out_reg.word_select(nf, len(group_bits)).eq(group_bits)
                if self.is_output:
                    m.d.sync += [best_score.eq(score), best_label.eq(label)]
            with m.Else():
                m.d.sync += sf.eq(sf + 1)
                m.d.sync += [acc[p].eq(sums[p]) for p in range(pe)]
            with m.If(last_step):
                m.d.sync += [running.eq(0), done.eq(1)]

        # Output handshake.
        m.d.comb += [self.o.valid.eq(done), self.o.payload.eq(out_reg)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += done.eq(0)

        return m
