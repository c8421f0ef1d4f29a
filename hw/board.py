"""A network core behind a UART, and its placement on a board.

Byte protocol (8N1, both directions; multi-byte fields little-endian):

- host → board: ``0xA5``, then one whole sample as ``T`` frames back to back,
  time step 0 first. ``T`` is the network's ``time_steps`` (1 for a dense
  network, whose sample is one input vector). A frame is one input vector in
  ``⌈input_bits/8⌉`` bytes, where ``input_bits`` is the width of one vector:
  bit ``j`` of the vector is bit ``j mod 8`` of the frame's byte ``⌊j/8⌋``,
  and unused high bits of the frame's last byte are ignored. Bytes before a
  ``0xA5`` are dropped, so a host can resynchronize by sending it again. The
  host sends the next request only after the response to the last one.
- board → host: ``0x5A``, then the output payload as ``⌈output_bits/8⌉``
  bytes packed the same way: the label in the low ``label_bits`` bits, then
  ``n_classes`` scores of ``score_bits`` each (two's complement, except LIF
  spike counts, which are unsigned).

``core.json`` of the generated core gives every width and ``T``
(``ports.i.vectors_per_sample``); the host client (``tangentcore infer``)
derives them from the manifest.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError
from tangentcore.hw.uart import UARTReceiver, UARTTransmitter

__all__ = ["InferenceTop", "BoardTop", "REQUEST_SYNC", "RESPONSE_SYNC", "check_step_rate", "frame_bytes"]

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A


def frame_bytes(bits: int) -> int:
    """Return the number of bytes that carry a ``bits``-bit payload."""
    return (bits + 7) // 8


def check_step_rate(network, divisor: int) -> None:
    """Raise TangentcoreError if a spiking network's slowest layer needs more cycles per time step than
    one frame of a request takes on the line at ``divisor`` cycles per bit.

    The UART has no flow control, so a time step's vector that the network has
    not taken when the next frame is complete would be overwritten. Dense
    networks take one vector per request and always pass.
    """
    if network.time_steps == 1:
        return
    frame_cycles = 10 * divisor * frame_bytes(len(network.i.payload))
    step_cycles = max(layer.initiation_interval_cycles for layer in network.layers)
    if step_cycles > frame_cycles:
        raise TangentcoreError(
            f"the slowest layer of {network.name} takes {step_cycles} cycles per time step, but a request "
            f"frame arrives every {frame_cycles} cycles at {divisor} cycles per bit, so input would be lost; "
            f"fold the layers less (larger PE or SIMD) or lower the baud rate")


class InferenceTop(wiring.Component):
    """A network core between a UART receiver and transmitter.

    Ports
        rx: in, the UART line from the host.
        tx: out, the UART line to the host, high while idle.

    One request is handled at a time. A dense network receives the vector as
    soon as its last byte arrives; a request that arrives while a response
    is still being sent waits in the network's input stage. A spiking
    network receives each time step's vector as soon as that frame's last
    byte arrives, through a one-vector buffer, while the next frame is
    being received. The response is sent when the network's output is valid.

    The UART has no flow control, so the slowest layer of a spiking network
    must accept a vector every frame time (``10·divisor`` cycles per byte);
    ``__init__`` raises TangentcoreError when it cannot (:func:`check_step_rate`).
    """

    def __init__(self, network, *, divisor: int):
        self._MustUse__silence = True  # a rejected top must not also warn that it was never elaborated
        check_step_rate(network, divisor)
        self.network = network
        self.divisor = divisor
        self.time_steps = network.time_steps
        self.input_bits = len(network.i.payload)
        self.output_bits = len(network.o.payload.as_value())
        self.frame_bytes = frame_bytes(self.input_bits)
        self.output_bytes = frame_bytes(self.output_bits)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})
        self._MustUse__silence = False

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = network = self.network
        m.submodules.receiver = receiver = UARTReceiver(divisor=self.divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(divisor=self.divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx)]

        # Request: sync byte, then each frame's bytes shifted in from the top, so byte 0 ends lowest.
        vector = Signal(8 * self.frame_bytes)
        received = Signal(range(self.frame_bytes + 1))
        step = Signal(range(self.time_steps))
        vector_next = Cat(vector[8:], receiver.o.payload)
        buffered = self.time_steps > 1
        if buffered:
            # The complete frame waits here for the network while the next frame comes in.
            pending = Signal(self.input_bits)
            pending_valid = Signal()
            m.d.comb += [network.i.payload.eq(pending), network.i.valid.eq(pending_valid)]
            with m.If(network.i.valid & network.i.ready):
                m.d.sync += pending_valid.eq(0)
        else:
            m.d.comb += network.i.payload.eq(vector[: self.input_bits])

        with m.FSM(name="request"):
            with m.State("sync"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid & (receiver.o.payload == REQUEST_SYNC)):
                    m.d.sync += [received.eq(0), step.eq(0)]
                    m.next = "payload"
            with m.State("payload"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid):
                    m.d.sync += [vector.eq(vector_next), received.eq(received + 1)]
                    with m.If(received == self.frame_bytes - 1):
                        if buffered:
                            m.d.sync += [pending.eq(vector_next[: self.input_bits]), pending_valid.eq(1),
                                         received.eq(0), step.eq(step + 1)]
                            with m.If(step == self.time_steps - 1):
                                m.next = "sync"
                        else:
                            m.next = "submit"
            if not buffered:
                with m.State("submit"):
                    m.d.comb += network.i.valid.eq(1)
                    with m.If(network.i.ready):
                        m.next = "sync"

        # Response: latch the output, then send the sync byte and the payload bytes, lowest first.
        response = Signal(8 * self.output_bytes)
        sent = Signal(range(self.output_bytes + 1))
        with m.FSM(name="response"):
            with m.State("wait"):
                m.d.comb += network.o.ready.eq(1)
                with m.If(network.o.valid):
                    m.d.sync += [response.eq(network.o.payload.as_value()), sent.eq(0)]
                    m.next = "sync"
            with m.State("sync"):
                m.d.comb += [transmitter.i.valid.eq(1), transmitter.i.payload.eq(RESPONSE_SYNC)]
                with m.If(transmitter.i.ready):
                    m.next = "payload"
            with m.State("payload"):
                m.d.comb += [transmitter.i.valid.eq(1), transmitter.i.payload.eq(response[:8])]
                with m.If(transmitter.i.ready):
                    m.d.sync += [response.eq(response >> 8), sent.eq(sent + 1)]
                    with m.If(sent == self.output_bytes - 1):
                        m.next = "wait"
        return m


class BoardTop(Elaboratable):
    """The inference top wired to a board's first UART, clocked by the board's default clock."""

    def __init__(self, network, *, baud: int):
        self.network = network
        self.baud = baud

    def elaborate(self, platform):
        from tangentcore.hw.uart import uart_divisor

        m = Module()
        divisor = uart_divisor(platform.default_clk_frequency, self.baud)
        m.submodules.top = top = InferenceTop(self.network, divisor=divisor)
        # Raw ports with explicit I/O buffers, because Amaranth 0.5 deprecates platform.request without dir="-".
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buffer.i), tx_buffer.o.eq(top.tx)]
        return m
