"""A whole network core: dense or LIF layers chained by valid/ready streams, built from a manifest."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError
from tangentcore.hw.layers import DenseLayer, Folding, auto_folding, check_folding
from tangentcore.hw.lif import LIFLayer
from tangentcore.hw.timing import StageTiming, network_cycles
from tangentcore.manifest import Manifest

__all__ = ["Network", "SignNetwork", "resolve_foldings", "parse_fold_spec", "layers_from_manifest", "core_cycles"]


def parse_fold_spec(text: str) -> list[tuple[int, int]] | None:
    """Parse ``--fold``: ``"auto"`` gives None, ``"PE,SIMD"`` one pair for every layer, ``"PE,SIMD:PE,SIMD:…"`` one per layer."""
    if text == "auto":
        return None
    pairs = []
    for part in text.split(":"):
        try:
            pe, simd = (int(value) for value in part.split(","))
        except ValueError:
            raise TangentcoreError(
                f"fold must be 'auto', 'PE,SIMD' or one 'PE,SIMD' per layer joined by ':' (such as '8,16:5,64'), "
                f"not {text!r}") from None
        if pe < 1 or simd < 1:
            raise TangentcoreError(f"fold PE and SIMD must be positive integers, not {part!r} in {text!r}")
        pairs.append((pe, simd))
    return pairs


def resolve_foldings(manifest: Manifest, fold) -> list[Folding]:
    """Return one folding per layer.

    ``fold`` is None (``auto_folding`` per layer), one ``(PE, SIMD)`` pair for
    every layer, or a list of pairs, one per layer. A PE or SIMD larger than
    its layer is clipped to the layer's size (so ``n_out,n_in`` of the widest
    layer requests a fully parallel core); one that does not divide the layer
    raises TangentcoreError naming the layer and the valid choices.
    """
    layers = manifest.layers
    if fold is None:
        return [auto_folding(layer.in_features, layer.out_features) for layer in layers]
    pairs = [fold] if isinstance(fold, tuple) else list(fold)
    if len(pairs) == 1:
        pairs = pairs * len(layers)
    if len(pairs) != len(layers):
        raise TangentcoreError(
            f"fold lists {len(pairs)} PE,SIMD pairs, but the network has {len(layers)} layers; give one pair for "
            f"all layers or one per layer")
    foldings = []
    for index, (layer, (pe, simd)) in enumerate(zip(layers, pairs)):
        folding = Folding(pe=min(pe, layer.out_features), simd=min(simd, layer.in_features))
        check_folding(layer.in_features, layer.out_features, folding, where=f"layer {index} ({layer.name})")
        foldings.append(folding)
    return foldings


def layers_from_manifest(manifest: Manifest, foldings: list[Folding], weight_storage: str = "auto") -> list:
    """Build one layer component per manifest layer with its folding."""
    components = []
    for layer, folding in zip(manifest.layers, foldings):
        common = {
            "weights": manifest.weights(layer),
            "weight_kind": layer.weight_kind,
            "weight_bits": layer.weight_bits,
            "input_encoding": layer.input_encoding,
            "input_bits": layer.input_bits,
            "acc_bits": layer.acc_bits,
            "folding": folding,
            "weight_storage": weight_storage,
        }
        try:
            if layer.kind == "dense":
                thresholds = None if layer.output == "scores" else manifest.thresholds(layer)
                components.append(DenseLayer(thresholds=thresholds, **common))
            elif layer.kind == "lif":
                components.append(LIFLayer(threshold=manifest.thresholds(layer), leak_shift=layer.leak_shift,
                                           reset=layer.reset, membrane_bits=layer.membrane_bits,
                                           time_steps=manifest.time_steps, output=layer.output, **common))
            else:
                raise TangentcoreError(f"kind must be 'dense' or 'lif', not {layer.kind!r}")
        except TangentcoreError as error:
            raise TangentcoreError(f"layer {layer.name!r}: {error}") from None
    return components


class Network(wiring.Component):
    """The network core: input vectors in, class scores and label out.

    Build it from layer components (:class:`~tangentcore.hw.layers.DenseLayer`,
    :class:`~tangentcore.hw.lif.LIFLayer`) or from a manifest with
    :meth:`from_manifest`. Every layer but the last has a bit-vector output
    (threshold bits or spikes) that is the next layer's input; the last
    layer has class scores.

    Ports
        i: stream in; ``payload`` is one encoded input vector, value ``j`` at
            bits ``[j·input_bits, (j+1)·input_bits)``. A dense network takes
            one vector per sample; an LIF network takes ``time_steps`` spike
            vectors per sample, steps ``0 … T−1`` in order, counted from
            reset. ``ready`` low means the first layer is busy; the producer
            holds ``valid`` and ``payload`` until the handshake.
        o: stream out, one per sample; ``payload.scores`` holds ``n_classes``
            scores of ``score_bits`` each (score ``j`` at bits
            ``[j·score_bits, (j+1)·score_bits)``; two's complement except
            for spike counts, which are unsigned), ``payload.label`` the
            argmax, ties to the lowest index. In the flattened Verilog port
            ``o__payload``, ``label`` is the low ``label_bits`` bits and
            ``scores`` follow. Held until ``ready``.

    Layers run as a pipeline: each accepts its next vector when it is idle,
    so several vectors are in flight, and back-pressure on ``o`` stalls the
    chain without losing data. Cycle counts come from
    :func:`tangentcore.hw.timing.network_cycles`: ``latency_cycles`` from a
    sample's first input handshake to its ``o.valid`` in an empty core, and
    ``initiation_interval_cycles`` between samples at full throughput.
    """

    def __init__(self, layers: list, *, time_steps: int = 1, name: str = "network",
                 layer_names: list[str] | None = None):
        self._MustUse__silence = True  # a rejected network must not also warn that it was never elaborated
        if not layers:
            raise TangentcoreError("a network needs at least one layer")
        if not isinstance(time_steps, int) or time_steps < 1:
            raise TangentcoreError(f"time_steps must be an integer ≥ 1, not {time_steps!r}")
        for index, layer in enumerate(layers):
            last = index == len(layers) - 1
            if layer.is_output != last:
                raise TangentcoreError(f"layer {index} must {'' if last else 'not '}be an output layer (class scores)")
            if isinstance(layer, LIFLayer) and layer.time_steps != time_steps:
                raise TangentcoreError(f"layer {index} has time_steps {layer.time_steps}, but the network has "
                                       f"{time_steps}; build every LIF layer with the network's time_steps")
        spiking = any(isinstance(layer, LIFLayer) for layer in layers)
        if spiking and not all(isinstance(layer, LIFLayer) for layer in layers):
            raise TangentcoreError("a network must be all dense or all LIF layers; mixed networks are not supported")
        if not spiking and time_steps != 1:
            raise TangentcoreError(f"a dense network has time_steps 1, not {time_steps}")
        for index, (upstream, downstream) in enumerate(zip(layers, layers[1:])):
            if upstream.n_out != downstream.n_in or downstream.input_bits != 1:
                raise TangentcoreError(
                    f"layer {index + 1} takes {downstream.n_in} inputs of {downstream.input_bits} bits, but layer "
                    f"{index} gives {upstream.n_out} bits")
        self.layers = layers
        self.layer_names = layer_names or [f"layer{index}" for index in range(len(layers))]
        self.time_steps = time_steps
        self.name = name
        self.spiking = spiking
        first, last = layers[0], layers[-1]
        self.input_size = first.n_in
        self.input_bits = first.input_bits
        self.input_encoding = first.input_encoding
        self.n_classes = last.n_out
        self.score_bits = last.score_bits
        self.label_bits = last.label_bits
        self.payload_layout = data.StructLayout({"label": self.label_bits, "scores": self.n_classes * self.score_bits})
        self.stage_timings = [
            StageTiming(layer.latency_cycles, time_steps if isinstance(layer, LIFLayer) and layer.is_output else 1)
            for layer in layers
        ]
        self.latency_cycles, self.initiation_interval_cycles = network_cycles(self.stage_timings, time_steps)
        super().__init__({
            "i": In(stream.Signature(self.input_size * self.input_bits)),
            "o": Out(stream.Signature(self.payload_layout)),
        })
        self._MustUse__silence = False

    @classmethod
    def from_manifest(cls, manifest: Manifest, foldings: list[Folding] | None = None, *,
                      weight_storage: str = "auto") -> Network:
        """Build the core of ``manifest``; ``foldings`` default to ``auto_folding`` per layer."""
        if foldings is None:
            foldings = resolve_foldings(manifest, None)
        if len(foldings) != len(manifest.layers):
            raise TangentcoreError(f"need one folding per layer ({len(manifest.layers)}), got {len(foldings)}")
        layers = layers_from_manifest(manifest, foldings, weight_storage)
        return cls(layers, time_steps=manifest.time_steps, name=manifest.name,
                   layer_names=[layer.name for layer in manifest.layers])

    def describe(self) -> dict:
        """Return the ports, stream widths, layers and cycle counts of this core as plain data."""
        return {
            "name": self.name,
            "time_steps": self.time_steps,
            "ports": {
                "i": {"payload_bits": self.input_size * self.input_bits, "input_size": self.input_size,
                      "input_bits": self.input_bits, "encoding": self.input_encoding,
                      "vectors_per_sample": self.time_steps},
                "o": {"payload_bits": self.payload_layout.size, "label_bits": self.label_bits,
                      "score_bits": self.score_bits, "score_signed": self.layers[-1].score_signed, "n_classes": self.n_classes},
            },
            "layers": [{"name": name, **layer.describe()} for name, layer in zip(self.layer_names, self.layers)],
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


def SignNetwork(manifest: Manifest, foldings: list[Folding] | None = None) -> Network:
    """Build a manifest's core; the name of :meth:`Network.from_manifest` before LIF layers existed."""
    return Network.from_manifest(manifest, foldings)


def core_cycles(manifest: Manifest, foldings: list[Folding]) -> tuple[int, int]:
    """Return the latency and the initiation interval in cycles of the core, without generating it."""
    network = Network.from_manifest(manifest, foldings)
    for part in (network, *network.layers):
        part._MustUse__silence = True  # built for its cycle counts only, never elaborated
    return network.latency_cycles, network.initiation_interval_cycles
