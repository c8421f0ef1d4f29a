"""A folded, time-multiplexed layer of leaky integrate-and-fire neurons.

The neuron dynamics (leak by shift, integrate, saturate, fire, reset, and
the class scores over ``T`` steps) are those of :mod:`tangentcore.sw.reference`
(its module docstring and ``lif_step``/``lif_layer``); this module only
schedules them. The synaptic input of every time step is the folded
matrix-vector product of :class:`tangentcore.hw.layers.FoldedLayer`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import FoldedLayer, Folding, running_argmax

__all__ = ["LIFLayer", "LIF_OUTPUTS", "LIF_RESETS"]

LIF_OUTPUTS = ("spikes", "spike_count", "final_membrane", "max_membrane")
LIF_RESETS = ("subtract", "zero")


class LIFLayer(FoldedLayer):
    """A layer of LIF neurons whose membranes live in a memory, ``PE`` neurons updated per cycle.

    Keyword-only parameters: those of :class:`~tangentcore.hw.layers.FoldedLayer`
    (inputs are normally ``"spikes"``), plus
        threshold: (n_out,) integers θ with ``1 ≤ θ ≤ 2^(membrane_bits−1) − 1``.
        leak_shift: k ≥ 0; the leak is ``v >> k`` (β = 1 − 2^−k).
        reset: ``"subtract"`` or ``"zero"``.
        membrane_bits: signed, saturating membrane width B_v, at least 2.
        time_steps: T ≥ 1, the input vectors per sample.
        output: ``"spikes"`` (hidden layer) or the class scores of an output
            layer: ``"spike_count"``, ``"final_membrane"`` or ``"max_membrane"``.

    Ports
        i: stream in. ``payload`` is one input vector of one time step, value
            ``j`` at bits ``[j·input_bits, (j+1)·input_bits)``. The layer
            counts accepted vectors: after reset, vectors ``0 … T−1`` are the
            steps of the first sample, the next ``T`` those of the second, and
            so on. ``ready`` is high only while the layer is idle; ``valid``
            strobed while ``ready`` is low is ignored.
        o: stream out, held until ``ready``. Hidden layer: ``payload`` is the
            ``n_out`` spikes of the step, one per input vector. Output layer:
            one ``payload`` per sample, after its last step: ``n_out`` scores
            of ``score_bits`` each, score ``j`` at bits ``[j·score_bits,
            (j+1)·score_bits)``: unsigned spike counts of ``bit_length(T)``
            bits, or signed membranes of ``membrane_bits`` bits.
        label: out, output layer only: the argmax of the scores, ties to the
            lowest index; valid with ``o.valid``.

    Timing
        An input vector accepted in cycle ``h`` is integrated in cycles
        ``h+1 … h+compute_cycles``; each neuron group's membrane update
        follows its last synapse fold one cycle later, so the step ends in
        cycle ``h + compute_cycles + 1``. A step with an output raises
        ``o.valid`` in cycle ``h + latency_cycles`` (``compute_cycles + 2``)
        and is ready again the cycle after the output handshake; a step of an
        output layer without an output (every step but the last) is ready
        again in cycle ``h + latency_cycles``. Reset ends the current sample:
        the next accepted vector is step 0 of a new one (membranes are not
        cleared in memory, step 0 reads them as zero).
    """

    def __init__(self, *, weights, threshold, leak_shift: int, reset: str, membrane_bits: int, time_steps: int,
                 output: str, weight_kind: str = "int", weight_bits: int = 2, input_encoding: str = "spikes",
                 input_bits: int = 1, acc_bits: int, folding: Folding, weight_storage: str = "auto"):
        self._MustUse__silence = True  # until FoldedLayer has validated everything
        if output not in LIF_OUTPUTS:
            raise TangentcoreError(f"LIF output must be one of {', '.join(LIF_OUTPUTS)}, not {output!r}")
        if reset not in LIF_RESETS:
            raise TangentcoreError(f"LIF reset must be one of {', '.join(LIF_RESETS)}, not {reset!r}")
        if not isinstance(leak_shift, int) or leak_shift < 0:
            raise TangentcoreError(f"leak_shift must be an integer ≥ 0, not {leak_shift!r}")
        if not isinstance(membrane_bits, int) or membrane_bits < 2:
            raise TangentcoreError(f"membrane_bits must be an integer ≥ 2, not {membrane_bits!r}")
        if not isinstance(time_steps, int) or time_steps < 1:
            raise TangentcoreError(f"time_steps must be an integer ≥ 1, not {time_steps!r}")
        n_out, n_in = np.shape(weights) if np.ndim(weights) == 2 else (0, 0)
        in_bits = input_bits if input_encoding == "uint" else 1
        self.output = output
        self.is_output = output != "spikes"
        self.leak_shift = leak_shift
        self.reset = reset
        self.membrane_bits = membrane_bits
        self.time_steps = time_steps
        self.count_bits = time_steps.bit_length()
        self.score_bits = self.count_bits if output == "spike_count" else membrane_bits
        self.score_signed = output != "spike_count"
        self.label_bits = max(1, (n_out - 1).bit_length())
        self.neuron_param_bits = membrane_bits
        ports = {
            "i": In(stream.Signature(n_in * in_bits)),
            "o": Out(stream.Signature(n_out * (self.score_bits if self.is_output else 1))),
        }
        if self.is_output:
            ports["label"] = Out(self.label_bits)
        self.threshold = np.asarray(threshold)
        super().__init__(ports, weights=weights, weight_kind=weight_kind, weight_bits=weight_bits,
                         input_encoding=input_encoding, input_bits=input_bits, acc_bits=acc_bits, folding=folding,
                         weight_storage=weight_storage)

    def _neuron_params(self):
        return self.threshold

    def _check_neuron_params(self) -> None:
        v_max = (1 << (self.membrane_bits - 1)) - 1
        if self.threshold.shape != (self.n_out,) or self.threshold.dtype.kind not in "iu":
            raise TangentcoreError(
                f"threshold must be integers of shape ({self.n_out},), not {self.threshold.dtype} {self.threshold.shape}")
        if self.threshold.min() < 1 or self.threshold.max() > v_max:
            raise TangentcoreError(
                f"threshold must lie in [1, {v_max}] for membrane_bits {self.membrane_bits}, not "
                f"{self.threshold.min()}..{self.threshold.max()}; widen membrane_bits or clip the thresholds"
            )

    @property
    def latency_cycles(self) -> int:
        return self.compute_cycles + 2

    @property
    def initiation_interval_cycles(self) -> int:
        """Cycles between accepted vectors with a ready consumer: one more on steps that emit an output."""
        return self.compute_cycles + 3

    def describe(self) -> dict:
        """Return the folding, widths, storage and cycle counts of this layer as plain data."""
        return {
            "kind": "lif", **self._describe_mvu(), "output": self.output, "membrane_bits": self.membrane_bits,
            "leak_shift": self.leak_shift, "reset": self.reset, "time_steps": self.time_steps,
            "idle_step_interval_cycles": self.latency_cycles,
        }

    def _neuron_update(self, m: Module, v_old, synaptic, threshold):
        """Return ``(pre_reset, v_new, spike)`` of one neuron, the order of ``sw.reference.lif_step``."""
        bits, k = self.membrane_bits, self.leak_shift
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        wide = Signal(signed(max(bits, self.acc_bits) + 2))
        m.d.comb += wide.eq(v_old - (v_old >> k) + synaptic)
        pre_reset = Signal(signed(bits))
        m.d.comb += pre_reset.eq(Mux(wide > high, high, Mux(wide < low, low, wide)))
        spike = pre_reset >= threshold
        if self.reset == "subtract":
            v_new = Mux(spike, pre_reset - threshold, pre_reset)
        else:
            v_new = Mux(spike, 0, pre_reset)
        return pre_reset, v_new, spike

    def elaborate(self, platform):
        m = Module()
        pe, bits, steps = self.folding.pe, self.membrane_bits, self.time_steps
        running = Signal()
        post = Signal()      # the membrane update stage holds a group this cycle
        post_last = Signal()  # ... and it is the step's last group
        done = Signal()

        # Input handshake, then the folded synaptic sums of this time step.
        m.d.comb += self.i.ready.eq(~running & ~post & ~done)
        accept = self.i.valid & self.i.ready
        mvu = self._elaborate_mvu(m, accept)
        m.d.comb += running.eq(mvu["running"])
        group_end = running & mvu["neuron_done"]

        # Time step of the current sample, advanced when a step's last group is updated.
        t = Signal(range(steps))
        first_step = t == 0
        last_step_of_sample = t == steps - 1
        with m.If(post & post_last):
            m.d.sync += t.eq(Mux(last_step_of_sample, 0, t + 1))

        # Stage register between the synaptic sums and the membrane update; the membrane memory
        # is read (synchronously) in the same cycle, so both arrive together.
        synaptic = [Signal(signed(self.acc_bits), name=f"synaptic{p}") for p in range(pe)]
        threshold = [Signal(unsigned(bits), name=f"threshold{p}") for p in range(pe)]
        group = Signal.like(mvu["nf"])
        m.d.sync += [post.eq(group_end), post_last.eq(group_end & mvu["last_step"])]
        with m.If(group_end):
            m.d.sync += [s.eq(v) for s, v in zip(synaptic, mvu["sums"])]
            m.d.sync += [s.eq(v) for s, v in zip(threshold, mvu["params"])]
            m.d.sync += group.eq(mvu["nf"])

        m.submodules.membranes = membranes = Memory(shape=unsigned(pe * bits), depth=self.neuron_folds, init=[])
        v_read = membranes.read_port(domain="sync")
        v_write = membranes.write_port()
        m.d.comb += [v_read.addr.eq(mvu["nf"]), v_read.en.eq(group_end)]

        # Membrane update of the PE neurons of one group: leak, integrate, saturate, fire, reset.
        spikes, v_new, pre_reset = [], [], []
        for p in range(pe):
            v_old = Mux(first_step, 0, v_read.data.word_select(p, bits).as_signed())
            pre, new, spike = self._neuron_update(m, v_old, synaptic[p], threshold[p].as_signed())
            pre_reset.append(pre)
            v_new.append(new)
            spikes.append(spike)
        m.d.comb += [v_write.addr.eq(group), v_write.data.eq(Cat(*[v.as_signed()[:bits] for v in v_new])),
                     v_write.en.eq(post)]

        if self.is_output:
            self._elaborate_scores(m, post, group, first_step, last_step_of_sample, spikes, v_new, pre_reset)
        else:
            out_reg = Signal(self.n_out)
            with m.If(post):
                m.d.sync += out_reg.word_select(group, pe).eq(Cat(*spikes))
            m.d.comb += self.o.payload.eq(out_reg)

        # Output handshake: every step for a hidden layer, the last step of a sample for an output layer.
        emits = post & post_last
        if self.is_output:
            emits = emits & last_step_of_sample
        with m.If(emits):
            m.d.sync += done.eq(1)
        m.d.comb += self.o.valid.eq(done)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += done.eq(0)

        return m

    def _elaborate_scores(self, m, post, group, first_step, last_step_of_sample, spikes, v_new, pre_reset):
        """Build the per-neuron score state, the score output and the argmax of an output layer."""
        pe, bits, score_bits = self.folding.pe, self.membrane_bits, self.score_bits
        state_bits = {"spike_count": self.count_bits, "max_membrane": bits}.get(self.output, 0)
        state = Signal(self.n_out * state_bits) if state_bits else None
        group_scores = []
        for p in range(pe):
            if self.output == "spike_count":
                old = state.word_select(group * pe + p, state_bits)
                new = Mux(first_step, 0, old) + spikes[p]
                score = Signal(unsigned(score_bits), name=f"score{p}")
                m.d.comb += score.eq(new)
            elif self.output == "max_membrane":
                old = state.word_select(group * pe + p, state_bits).as_signed()
                score = Signal(signed(bits), name=f"score{p}")
                m.d.comb += score.eq(Mux(first_step | (pre_reset[p] > old), pre_reset[p], old))
            else:
                score = Signal(signed(bits), name=f"score{p}")
                m.d.comb += score.eq(v_new[p])
            group_scores.append(score)
        with m.If(post):
            if state is not None:
                m.d.sync += state.word_select(group, pe * state_bits).eq(
                    Cat(*[s[:state_bits] for s in group_scores]))

        out_reg = Signal(self.n_out * score_bits)
        best_score = Signal(signed(score_bits) if self.score_signed else unsigned(score_bits))
        best_label = Signal(self.label_bits)
        scoring = post & last_step_of_sample
        with m.If(scoring):
            m.d.sync += out_reg.word_select(group, pe * score_bits).eq(Cat(*group_scores))
        running_argmax(m, group_scores, group, group == 0, scoring, best_score, best_label)
        m.d.comb += [self.o.payload.eq(out_reg), self.label.eq(best_label)]
        return group_scores
