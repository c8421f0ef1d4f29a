"""Folded matrix-vector layers: the dense threshold layer and the machinery it shares with LIF layers.

The arithmetic is the one stated in :mod:`tangentcore.sw.reference`; this
module only schedules it. A layer computes ``PE`` neurons in parallel over
``SIMD`` inputs per cycle, so one input vector takes
``⌈n_in/SIMD⌉ · ⌈n_out/PE⌉`` compute cycles (:func:`fold_cycles`).

Weights, and the per-neuron thresholds, sit in one parameter memory with one
row per compute cycle. The memory is a LUT ROM (asynchronous read) or block
RAM (a synchronous read port, which Yosys can map to iCE40/ECP5 EBR). Both
give the same cycle counts, and :func:`choose_weight_storage` states the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError
from tangentcore.sw.reference import accumulator_range, input_range, signed_width, weight_range

__all__ = [
    "Folding",
    "DenseLayer",
    "fold_cycles",
    "check_folding",
    "auto_folding",
    "choose_weight_storage",
    "WEIGHT_KINDS",
    "INPUT_ENCODINGS",
    "WEIGHT_STORAGES",
]

WEIGHT_KINDS = ("binary", "ternary", "int")
INPUT_ENCODINGS = ("binary", "uint", "spikes")
WEIGHT_STORAGES = ("auto", "rom", "bram")

# A parameter memory goes to block RAM when it has at least this many rows and bits: one iCE40 EBR
# holds 4 kbit, and a shallower or smaller memory would leave most of a block unused.
BRAM_MIN_DEPTH = 32
BRAM_MIN_BITS = 4096


@dataclass(frozen=True)
class Folding:
    """A layer's folding: ``pe`` neurons in parallel, ``simd`` inputs per cycle."""

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


def choose_weight_storage(depth: int, row_bits: int) -> str:
    """Return ``"bram"`` for a parameter memory of at least 32 rows and 4 kbit, else ``"rom"``.

    Block RAM has a synchronous read port and a fixed block size (4 kbit on
    iCE40), so it pays off only for deep, large memories; a fully parallel
    layer has one very wide row and belongs in LUTs.
    """
    return "bram" if depth >= BRAM_MIN_DEPTH and depth * row_bits >= BRAM_MIN_BITS else "rom"


def _tree_sum(values: list):
    """Add values in a balanced tree, so the adder depth is ⌈log2(len)⌉."""
    values = list(values)
    while len(values) > 1:
        paired = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            paired.append(values[-1])
        values = paired
    return values[0]


def _pack_words(values, bits: int) -> int:
    """Pack integers as two's-complement ``bits``-bit words, value ``k`` at bit ``k·bits``."""
    mask = (1 << bits) - 1
    word = 0
    for index, value in enumerate(values):
        word |= (int(value) & mask) << (index * bits)
    return word


class FoldedLayer(wiring.Component):
    """The folded matrix-vector unit that dense and LIF layers share.

    It validates the arrays, owns the parameter memory (weights, then one
    ``neuron_param_bits``-bit word per neuron, such as a threshold) and
    builds, in :meth:`_elaborate_mvu`, the counters and the PE partial sums
    over SIMD inputs per cycle. Subclasses add the neuron and the ports.

    Keyword-only parameters
        weights: (n_out, n_in) integers of ``weight_kind``: ``"binary"`` (±1),
            ``"ternary"`` ({−1, 0, +1}) or ``"int"`` (signed ``weight_bits``).
        input_encoding, input_bits: ``"binary"`` (bit 1 is +1), ``"uint"``
            (unsigned ``input_bits``) or ``"spikes"`` (0/1).
        acc_bits: signed accumulator width; must hold the worst-case ``Σ w·x``.
        folding: PE and SIMD; PE must divide n_out and SIMD must divide n_in.
        weight_storage: ``"rom"``, ``"bram"`` or ``"auto"`` (:func:`choose_weight_storage`).
    """

    def __init__(self, ports: dict, *, weights, weight_kind: str, weight_bits: int, input_encoding: str,
                 input_bits: int, acc_bits: int, folding: Folding, weight_storage: str = "auto"):
        # Until validation passes, a rejected layer must not also warn that it was never elaborated.
        self._MustUse__silence = True
        weights = np.asarray(weights)
        if weights.ndim != 2 or weights.dtype.kind not in "iu" or 0 in weights.shape:
            raise TangentcoreError(f"weights must be a non-empty 2-D integer array, not {weights.dtype} {weights.shape}")
        weights = weights.astype(np.int64)
        if weight_kind not in WEIGHT_KINDS:
            raise TangentcoreError(f"weight_kind must be one of {', '.join(WEIGHT_KINDS)}, not {weight_kind!r}")
        expected_bits = {"binary": 1, "ternary": 2}.get(weight_kind)
        if expected_bits is not None and weight_bits != expected_bits:
            raise TangentcoreError(f"weight_bits must be {expected_bits} for {weight_kind} weights, not {weight_bits}")
        if weight_kind == "int" and not 2 <= weight_bits <= 8:
            raise TangentcoreError(f"weight_bits must be from 2 to 8 for int weights, not {weight_bits}")
        w_min, w_max = weight_range(weight_kind, weight_bits)
        if weight_kind == "binary":
            valid = np.all(np.abs(weights) == 1)
        else:
            valid = weights.min() >= w_min and weights.max() <= w_max
        if not valid:
            allowed = "-1 and +1" if weight_kind == "binary" else f"integers in [{w_min}, {w_max}]"
            raise TangentcoreError(f"{weight_kind} weights must hold only {allowed}; found {weights.min()}..{weights.max()}")
        if input_encoding not in INPUT_ENCODINGS:
            raise TangentcoreError(f"input_encoding must be one of {', '.join(INPUT_ENCODINGS)}, not {input_encoding!r}")
        if input_encoding == "uint" and not 1 <= input_bits <= 16:
            raise TangentcoreError(f"input_bits must be from 1 to 16 for uint inputs, not {input_bits}")
        if weight_storage not in WEIGHT_STORAGES:
            raise TangentcoreError(f"weight_storage must be one of {', '.join(WEIGHT_STORAGES)}, not {weight_storage!r}")

        self.n_out, self.n_in = weights.shape
        check_folding(self.n_in, self.n_out, folding)
        self.weights = weights
        self.weight_kind = weight_kind
        self.weight_bits = weight_bits
        self.input_encoding = input_encoding
        self.input_bits = input_bits if input_encoding == "uint" else 1
        self.folding = folding

        x_min, x_max = input_range(input_encoding, self.input_bits)
        self.acc_range = accumulator_range(self.n_in, w_min, w_max, x_min, x_max)
        needed = signed_width(*self.acc_range)
        if acc_bits < needed:
            raise TangentcoreError(
                f"acc_bits {acc_bits} cannot hold the worst-case accumulator range {list(self.acc_range)} of "
                f"{self.n_in} {weight_kind} weights times {input_encoding} inputs; use at least {needed} bits"
            )
        self.acc_bits = acc_bits
        self._requested_storage = weight_storage
        self._check_neuron_params()
        super().__init__(ports)
        self._MustUse__silence = False

    # Subclasses set the per-neuron parameter words stored beside the weights.
    neuron_param_bits = 0

    def _neuron_params(self) -> np.ndarray | None:
        return None

    def _check_neuron_params(self) -> None:
        """Raise TangentcoreError unless the per-neuron parameters fit; called once sizes are known."""

    @property
    def synapse_folds(self) -> int:
        return self.n_in // self.folding.simd

    @property
    def neuron_folds(self) -> int:
        return self.n_out // self.folding.pe

    @property
    def compute_cycles(self) -> int:
        return fold_cycles(self.n_in, self.n_out, self.folding)

    @property
    def row_bits(self) -> int:
        """Width of one parameter memory row: PE·SIMD weights, then PE neuron parameter words."""
        pe, simd = self.folding.pe, self.folding.simd
        return pe * simd * self.weight_bits + pe * self.neuron_param_bits

    @property
    def weight_storage(self) -> str:
        """Where the parameters sit: ``"rom"`` (LUTs), ``"bram"`` (block RAM) or ``"constant"`` (a single row)."""
        if self.compute_cycles == 1:
            return "constant"
        if self._requested_storage == "auto":
            return choose_weight_storage(self.compute_cycles, self.row_bits)
        return self._requested_storage

    def _describe_mvu(self) -> dict:
        """Return the fields that every folded layer reports: sizes, folding, widths, storage and cycles."""
        return {
            "n_in": self.n_in, "n_out": self.n_out, "pe": self.folding.pe, "simd": self.folding.simd,
            "weight_kind": self.weight_kind, "weight_bits": self.weight_bits, "input_encoding": self.input_encoding,
            "input_bits": self.input_bits, "acc_bits": self.acc_bits, "weight_storage": self.weight_storage,
            "compute_cycles": self.compute_cycles, "latency_cycles": self.latency_cycles,
            "initiation_interval_cycles": self.initiation_interval_cycles,
        }

    def _memory_rows(self) -> list[int]:
        """Pack parameters into memory rows, one per compute cycle.

        Row ``nf·SF + sf``: the ``weight_bits``-bit word ``p·SIMD + s`` is the
        weight of neuron ``nf·PE + p`` for input ``sf·SIMD + s`` (binary: bit
        1 means +1; otherwise two's complement). The neuron parameter word of
        neuron ``nf·PE + p`` follows at bit ``PE·SIMD·weight_bits +
        p·neuron_param_bits``, repeated in every row of the group so that no
        second lookup is needed.
        """
        pe, simd = self.folding.pe, self.folding.simd
        codes = (self.weights > 0).astype(np.int64) if self.weight_kind == "binary" else self.weights
        params = self._neuron_params()
        rows = []
        for nf in range(self.neuron_folds):
            neurons = slice(nf * pe, (nf + 1) * pe)
            param_word = 0 if params is None else _pack_words(params[neurons], self.neuron_param_bits)
            for sf in range(self.synapse_folds):
                block = codes[neurons, sf * simd : (sf + 1) * simd].reshape(-1)
                weight_word = _pack_words(block, self.weight_bits)
                rows.append(weight_word | param_word << (pe * simd * self.weight_bits))
        return rows

    def _term(self, w, x):
        """Return one product ``w·x`` of a stored weight code and an encoded input."""
        if self.weight_kind == "binary":
            if self.input_encoding == "uint":
                return Mux(w, x, -x)
            return Mux(x, Mux(w, 1, -1), 0)  # spikes: +1/−1 where the input spikes
        w = w.as_signed()
        if self.input_encoding == "binary":
            return Mux(x, w, -w)
        if self.input_encoding == "spikes":
            return Mux(x, w, 0)
        return w * x

    def _partial_sum(self, weight_row, x_chunk, p: int):
        """Return ``Σ_s w·x`` over one SIMD chunk for PE lane ``p``."""
        simd, w_bits, in_bits = self.folding.simd, self.weight_bits, self.input_bits
        lane = weight_row[p * simd * w_bits : (p + 1) * simd * w_bits]
        if self.weight_kind == "binary" and self.input_encoding == "binary":
            matches = ~(lane ^ x_chunk)
            return 2 * _tree_sum([matches[s] for s in range(simd)]) - simd
        terms = [self._term(lane[s * w_bits : (s + 1) * w_bits], x_chunk[s * in_bits : (s + 1) * in_bits])
                 for s in range(simd)]
        return _tree_sum(terms)

    def _elaborate_mvu(self, m: Module, accept):
        """Build the folded matrix-vector unit in ``m``; return its signals as a dict.

        ``accept`` is the input handshake (``i.valid & i.ready``); it latches
        ``i.payload`` and starts the ``compute_cycles`` steps on the next
        cycle. Returned: ``running``, ``last_step``, ``neuron_done`` (the
        group's last synapse fold), ``nf`` (the group), ``sums`` (PE complete
        or partial sums, valid in every running cycle) and ``params`` (the
        group's neuron parameter words).
        """
        pe, simd, in_bits, acc_bits = self.folding.pe, self.folding.simd, self.input_bits, self.acc_bits
        total_folds = self.compute_cycles
        running = Signal()
        step = Signal(range(total_folds))
        sf = Signal(range(self.synapse_folds))
        nf = Signal(range(self.neuron_folds))
        last_step = step == total_folds - 1
        neuron_done = sf == self.synapse_folds - 1

        # Parameter rows: step k always sees row k. A single row is a constant; block RAM has its
        # next address presented one cycle ahead (address 0 while idle); a ROM is read combinationally.
        rows = self._memory_rows()
        if total_folds == 1:
            # In chunks: Amaranth's Python simulator writes each constant as a decimal literal, which
            # Python refuses beyond 4300 digits (a fully parallel 64×64 4-bit layer has 16 kbit).
            chunk_bits = 1024
            row = Cat(*[Const(rows[0] >> start, min(chunk_bits, self.row_bits - start))
                        for start in range(0, self.row_bits, chunk_bits)])
        else:
            # NOTE: memories with rows wider than about 14 kbit have not been run in Amaranth's Python
            # simulator, which may hit the same 4300-digit limit through their initial contents.
            m.submodules.parameters = parameters = Memory(shape=unsigned(self.row_bits), depth=total_folds,
                                                          init=rows)
            if self.weight_storage == "bram":
                row_port = parameters.read_port(domain="sync")
                m.d.comb += row_port.addr.eq(Mux(running & ~last_step, step + 1, 0))
            else:
                row_port = parameters.read_port(domain="comb")
                m.d.comb += row_port.addr.eq(step)
            row = row_port.data

        x_reg = Signal(self.n_in * in_bits)
        with m.If(accept):
            m.d.sync += [x_reg.eq(self.i.payload), running.eq(1), step.eq(0), sf.eq(0), nf.eq(0)]

        # Accumulate one SIMD chunk for PE neurons per cycle.
        acc = [Signal(signed(acc_bits), name=f"acc{p}") for p in range(pe)]
        x_chunk = x_reg.word_select(sf, simd * in_bits)
        sums = []
        for p in range(pe):
            total = Signal(signed(acc_bits), name=f"sum{p}")
            m.d.comb += total.eq(Mux(sf == 0, 0, acc[p]) + self._partial_sum(row, x_chunk, p))
            sums.append(total)

        with m.If(running):
            m.d.sync += step.eq(step + 1)
            with m.If(neuron_done):
                m.d.sync += [sf.eq(0), nf.eq(nf + 1)]
            with m.Else():
                m.d.sync += sf.eq(sf + 1)
                m.d.sync += [acc[p].eq(sums[p]) for p in range(pe)]
            with m.If(last_step):
                m.d.sync += running.eq(0)

        params_offset = pe * simd * self.weight_bits
        params = [row[params_offset + p * self.neuron_param_bits : params_offset + (p + 1) * self.neuron_param_bits]
                  for p in range(pe)] if self.neuron_param_bits else []
        return {"running": running, "last_step": last_step, "neuron_done": neuron_done, "nf": nf,
                "sums": sums, "params": params}


def running_argmax(m: Module, scores: list, group, first_group, enable, best_score, best_label) -> None:
    """Fold one group of PE scores into a running argmax held in ``best_score``/``best_label``.

    ``group`` is the group index (score ``p`` is neuron ``group·PE + p``);
    ``first_group`` restarts the maximum. Strict ``>`` keeps the lowest index
    on ties, as :func:`tangentcore.sw.reference.argmax_lowest` does.
    """
    # NOTE: this chain of PE comparisons limits the Fmax of wide output layers. A balanced tree would be
    # faster, but the resource model's Fmax fit counts the chain's length; change both together.
    pe = len(scores)
    score, label = best_score, best_label
    for p, candidate in enumerate(scores):
        better = candidate > score
        if p == 0:
            better = better | first_group
        score = Mux(better, candidate, score)
        label = Mux(better, group * pe + p, label)
    with m.If(enable):
        m.d.sync += [best_score.eq(score), best_label.eq(label)]


class DenseLayer(FoldedLayer):
    """A folded fully connected layer: threshold bits (hidden layer) or class scores (output layer).

    Keyword-only parameters: those of :class:`FoldedLayer`, plus
        thresholds: (n_out,) integers for a hidden layer (output bit
            ``acc ≥ T``), or None for the output layer (output the scores
            ``acc``); each must fit ``acc_bits``.

    Ports
        i: stream in. ``payload`` is the input vector, value ``j`` at bits
            ``[j·input_bits, (j+1)·input_bits)``. ``ready`` is high only
            while the layer is idle; ``valid`` strobed while ``ready`` is low
            is ignored, so the producer holds its payload until accepted.
        o: stream out. ``payload`` is ``n_out`` bits (hidden layer), or
            ``n_out`` signed scores of ``acc_bits`` each, score ``j`` at bits
            ``[j·acc_bits, (j+1)·acc_bits)`` (output layer). ``valid`` and
            ``payload`` are held until ``ready`` is high.
        label: out, output layer only: the argmax of the scores, ties to the
            lowest index; valid with ``o.valid``.

    Timing
        After an input handshake in cycle ``h`` the layer computes in cycles
        ``h+1 … h+compute_cycles`` and raises ``o.valid`` in cycle ``h +
        latency_cycles`` (``compute_cycles + 1``). It is ready again the
        cycle after the output handshake, so with a ready consumer the
        initiation interval is ``compute_cycles + 2`` cycles.
    """

    def __init__(self, *, weights, thresholds, weight_kind: str = "binary", weight_bits: int = 1,
                 input_encoding: str, input_bits: int, acc_bits: int, folding: Folding, weight_storage: str = "auto"):
        n_out, n_in = np.shape(weights) if np.ndim(weights) == 2 else (0, 0)
        is_output = thresholds is None
        in_bits = input_bits if input_encoding == "uint" else 1
        ports = {
            "i": In(stream.Signature(n_in * in_bits)),
            "o": Out(stream.Signature(n_out * (acc_bits if is_output else 1))),
        }
        self.label_bits = max(1, (n_out - 1).bit_length())
        if is_output:
            ports["label"] = Out(self.label_bits)
        self.is_output = is_output
        self.thresholds = None if is_output else np.asarray(thresholds)
        self.neuron_param_bits = 0 if is_output else acc_bits
        super().__init__(ports, weights=weights, weight_kind=weight_kind, weight_bits=weight_bits,
                         input_encoding=input_encoding, input_bits=input_bits, acc_bits=acc_bits, folding=folding,
                         weight_storage=weight_storage)
        self.score_bits = acc_bits
        self.score_signed = True

    def _neuron_params(self):
        return self.thresholds

    def _check_neuron_params(self) -> None:
        if self.is_output:
            return
        if self.thresholds.shape != (self.n_out,) or self.thresholds.dtype.kind not in "iu":
            raise TangentcoreError(
                f"thresholds must be integers of shape ({self.n_out},), not {self.thresholds.dtype} "
                f"{self.thresholds.shape}")
        lo, hi = -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1
        if self.thresholds.min() < lo or self.thresholds.max() > hi:
            acc_lo, acc_hi = self.acc_range
            raise TangentcoreError(
                f"thresholds must lie in [{lo}, {hi}] to fit acc_bits {self.acc_bits}; clip them to "
                f"[{acc_lo}, {acc_hi + 1}], which changes no output, or widen acc_bits"
            )

    @property
    def latency_cycles(self) -> int:
        return self.compute_cycles + 1

    @property
    def initiation_interval_cycles(self) -> int:
        return self.compute_cycles + 2

    def describe(self) -> dict:
        """Return the folding, widths, storage and cycle counts of this layer as plain data."""
        return {"kind": "dense", **self._describe_mvu(), "output": "scores" if self.is_output else "bits"}

    def elaborate(self, platform):
        m = Module()
        pe, acc_bits = self.folding.pe, self.acc_bits
        running = Signal()
        done = Signal()

        # Input handshake, then the folded accumulation.
        m.d.comb += self.i.ready.eq(~running & ~done)
        accept = self.i.valid & self.i.ready
        mvu = self._elaborate_mvu(m, accept)
        m.d.comb += running.eq(mvu["running"])
        sums, nf = mvu["sums"], mvu["nf"]
        group_end = running & mvu["neuron_done"]

        # Results of the neuron group that completes this cycle.
        if self.is_output:
            group_bits = Cat(*sums)
        else:
            group_bits = Cat(*[sums[p] >= mvu["params"][p].as_signed() for p in range(pe)])
        out_reg = Signal(self.n_out * (acc_bits if self.is_output else 1))
        with m.If(group_end):
            m.d.sync += out_reg.word_select(nf, len(group_bits)).eq(group_bits)

        if self.is_output:
            best_score = Signal(signed(acc_bits))
            best_label = Signal(self.label_bits)
            running_argmax(m, sums, nf, nf == 0, group_end, best_score, best_label)
            m.d.comb += self.label.eq(best_label)

        # Output handshake.
        with m.If(running & mvu["last_step"]):
            m.d.sync += done.eq(1)
        m.d.comb += [self.o.valid.eq(done), self.o.payload.eq(out_reg)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += done.eq(0)

        return m
