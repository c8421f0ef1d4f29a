"""A whole network core built from a manifest: sign layers chained by streams."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import Folding, SignLayer, auto_folding, check_folding
from tangentcore.manifest import Manifest

__all__ = ["SignNetwork", "resolve_foldings"]


def resolve_foldings(manifest: Manifest, fold: tuple[int, int] | None) -> list[Folding]:
    """Return one folding per layer: ``auto_folding`` for None, else ``(PE, SIMD)`` clipped to each layer.

    A requested PE or SIMD larger than a layer is clipped to the layer's size;
    one that does not divide the layer raises TangentcoreError naming the layer.
    """
    foldings = []
    for index, layer in enumerate(manifest.layers):
        if fold is None:
            folding = auto_folding(layer.in_features, layer.out_features)
        else:
            pe, simd = fold
            folding = Folding(pe=min(pe, layer.out_features), simd=min(simd, layer.in_features))
            check_folding(layer.in_features, layer.out_features, folding, where=f"layer {index} ({layer.name})")
        foldings.append(folding)
    return foldings


class SignNetwork(wiring.Component):
    """The network core: input vectors in, class scores and label out.

    Ports
        i: stream in; ``payload`` is the encoded input vector, value ``j`` at bits
            ``[j·input_bits, (j+1)·input_bits)``.
        o: stream out; ``payload.scores`` holds ``n_classes`` signed scores of
            ``score_bits`` each (score ``j`` at bits ``[j·score_bits, (j+1)·score_bits)``),
            ``payload.label`` the argmax, ties to the lowest index. In the
            flattened Verilog port ``o__payload``, ``label`` is the low
            ``label_bits`` bits and ``scores`` follow.

    Layers run as a pipeline: each accepts its next vector when it is idle,
    so several vectors are in flight and back-pressure on ``o`` stalls the
    chain without losing data. ``latency_cycles`` counts from the input
    handshake to the first cycle ``o.valid`` is high with a ready consumer,
    and ``initiation_interval_cycles`` is that of the slowest layer.
    """

    def __init__(self, manifest: Manifest, foldings: list[Folding] | None = None):
        if foldings is None:
            foldings = resolve_foldings(manifest, None)
        if len(foldings) != len(manifest.layers):
            raise TangentcoreError(f"need one folding per layer ({len(manifest.layers)}), got {len(foldings)}")
        for index, layer in enumerate(manifest.layers):
            if (layer.kind, layer.weight_kind) != ("dense", "binary"):
                raise TangentcoreError(
                    f"layer {index} ({layer.name}) is a {layer.kind} layer with {layer.weight_kind} weights, but "
                    "this core supports only dense layers with binary weights"
                )
        self.manifest = manifest
        self.foldings = foldings
        self.layers = []
        for layer, folding in zip(manifest.layers, foldings):
            self.layers.append(
                SignLayer(
                    weights=manifest.weights(layer),
                    thresholds=None if layer.output == "scores" else manifest.thresholds(layer),
                    input_encoding=layer.input_encoding,
                    input_bits=layer.input_bits,
                    acc_bits=layer.acc_bits,
                    folding=folding,
                )
            )
        last = self.layers[-1]
        self.input_bits_total = manifest.input.size * manifest.input.bits
        self.score_bits = last.acc_bits
        self.label_bits = last.label_bits
        self.payload_layout = data.StructLayout(
            {"label": self.label_bits, "scores": manifest.n_classes * self.score_bits}
        )
        super().__init__(
            {
                "i": In(stream.Signature(self.input_bits_total)),
                "o": Out(stream.Signature(self.payload_layout)),
            }
        )

    @property
    def latency_cycles(self) -> int:
        return sum(layer.latency_cycles for layer in self.layers)

    @property
    def initiation_interval_cycles(self) -> int:
        return max(layer.initiation_interval_cycles for layer in self.layers)

    def describe(self) -> dict:
        """Return the ports, widths and cycle counts of this core as plain data."""
        return {
            "name": self.manifest.name,
            "ports": {
                "i": {"payload_bits": self.input_bits_total, "input_size": self.manifest.input.size,
                      "input_bits": self.manifest.input.bits, "encoding": self.manifest.input.encoding},
                "o": {"payload_bits": self.payload_layout.size, "label_bits": self.label_bits,
                      "score_bits": self.score_bits, "n_classes": self.manifest.n_classes},
            },
            "layers": [
                {"name": spec.name, "n_in": spec.in_features, "n_out": spec.out_features,
                 "pe": layer.folding.pe, "simd": layer.folding.simd, "acc_bits": spec.acc_bits,
                 "compute_cycles": layer.compute_cycles, "latency_cycles": layer.latency_cycles,
                 "initiation_interval_cycles": layer.initiation_interval_cycles}
                for spec, layer in zip(self.manifest.layers, self.layers)
            ],
            "latency_cycles": self.latency_cycles,
            "initiation_interval_cycles": self.initiation_interval_cycles,
        }

    def elaborate(self, platform):
        m = Module()
        for index, layer in enumerate(self.layers):
            m.submodules[f"layer{index}"] = layer

        wiring.connect(m, wiring.flipped(self.i), self.layers[0].i)
        for upstream, downstream in zip(self.layers, self.layers[1:]):
            wiring.connect(m, upstream.o, downstream.i)

        last = self.layers[-1]
        m.d.comb += [
            self.o.valid.eq(last.o.valid),
            self.o.payload.scores.eq(last.o.payload),
            self.o.payload.label.eq(last.label),
            last.o.ready.eq(self.o.ready),
        ]
        return m
