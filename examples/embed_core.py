"""Embed a generated tangentcore network inside your own Amaranth design.

The user design here is a small wrapper that a real board design would
look like: a FIFO buffers input vectors from some producer (a UART, a
camera, a CPU bus) in front of the core, and the wrapper keeps the last
predicted class in a register for a LED or a status register. The core
comes from a manifest alone; its ``i`` and ``o`` ports are
``amaranth.lib.stream`` interfaces, connected with ``wiring.connect``.

Run it with a manifest folder (``tangentcore train`` writes one), or with no
argument to use a small random network::

    python examples/embed_core.py [MANIFEST] [--fold PE,SIMD]

It simulates a few inputs in Amaranth's simulator and checks every
prediction against the NumPy reference.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from tangentcore.hw.network import Network, parse_fold_spec, resolve_foldings
from tangentcore.hw.simulate import StreamBench, pack_vectors
from tangentcore.manifest import load_manifest, random_manifest
from tangentcore.sw import reference


class Classifier(wiring.Component):
    """The user's design: a 4-deep input FIFO, the network core, and the last label in a register.

    Ports
        i: stream in of encoded input vectors (the core's input layout).
        o: stream out of the core's scores and label, passed through.
        last_label: out, the label of the most recent output handshake.
    """

    def __init__(self, network: Network):
        self.network = network
        super().__init__({
            "i": In(stream.Signature(len(network.i.payload))),
            "o": Out(stream.Signature(network.payload_layout)),
            "last_label": Out(network.label_bits),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.network
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=len(self.i.payload), depth=4)

        # Producer → FIFO → core: the FIFO's w_*/r_* ports are plain valid/ready signals.
        m.d.comb += [
            queue.w_data.eq(self.i.payload),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            core.i.payload.eq(queue.r_data),
            core.i.valid.eq(queue.r_rdy),
            queue.r_en.eq(core.i.ready),
        ]

        # Core → consumer, remembering the label of every output taken.
        wiring.connect(m, core.o, wiring.flipped(self.o))
        label = Signal(self.network.label_bits)
        with m.If(core.o.valid & core.o.ready):
            m.d.sync += label.eq(core.o.payload.label)
        m.d.comb += self.last_label.eq(label)
        return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", nargs="?", help="manifest folder (default: a small random network)")
    parser.add_argument("--fold", default="auto", help="'auto', 'PE,SIMD' or one 'PE,SIMD' per layer joined by ':'")
    parser.add_argument("--samples", type=int, default=8, help="input samples to simulate")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    if args.manifest:
        manifest = load_manifest(args.manifest)
    else:
        manifest = random_manifest(rng, [16, 8, 4], weight_kind="int", weight_bits=3, encoding="uint", bits=4)
    network = Network.from_manifest(manifest, resolve_foldings(manifest, parse_fold_spec(args.fold)))
    design = Classifier(network)

    size, bits = manifest.input.size, manifest.input.bits
    if manifest.is_spiking:
        x = rng.integers(0, 2, size=(args.samples, manifest.time_steps, size))
    else:
        x = rng.integers(0, 1 << bits, size=(args.samples, size))
    payloads = pack_vectors(x.reshape(-1, size), bits)

    labels = []

    async def script(ctx, bench):
        run = await bench.run(ctx, payloads, args.samples)
        labels.extend(payload & ((1 << network.label_bits) - 1) for payload in run.payloads)
        labels.append(ctx.get(design.last_label))

    StreamBench(design, input_gap=0.2, stall=0.2, seed=1).simulate(script)
    expected = reference.predict(manifest, x).tolist()
    print(f"{manifest.name}: latency {network.latency_cycles} cycles, "
          f"initiation interval {network.initiation_interval_cycles} cycles")
    print(f"predicted {labels[:-1]}, reference {expected}, last_label {labels[-1]}")
    return 0 if labels[:-1] == expected and labels[-1] == expected[-1] else 1


if __name__ == "__main__":
    sys.exit(main())
