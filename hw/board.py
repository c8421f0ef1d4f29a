"""A network core behind a UART, and its placement on a board.

Byte protocol (8N1, both directions; multi-byte fields little-endian):

- host → board: ``0xA5``, then the input vector as ``⌈input_bits/8⌉`` bytes.
  Bit ``j`` of the network's input payload is bit ``j mod 8`` of byte
  ``⌊j/8⌋``, and unused high bits of the last byte are ignored. Bytes before
  a ``0xA5`` are dropped, so a host can resynchronize by sending it again.
  The host sends the next request only after the response to the last one.
- board → host: ``0x5A``, then the output payload as ``⌈output_bits/8⌉``
  bytes packed the same way: the label in the low ``label_bits`` bits, then
  ``n_classes`` two's-complement scores of ``score_bits`` each.

``core.json`` of the generated core gives every width; the host client
(``tangentcore infer``) reads it from there.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tangentcore.hw.uart import UARTReceiver, UARTTransmitter

__all__ = ["InferenceTop", "BoardTop", "REQUEST_SYNC", "RESPONSE_SYNC", "frame_bytes"]

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A


def frame_bytes(bits: int) -> int:
    """Return the number of bytes that carry a ``bits``-bit payload."""
    return (bits + 7) // 8


class InferenceTop(wiring.Component):
    """A network core between a UART receiver and transmitter.

    Ports
        rx: in, the UART line from the host.
        tx: out, the UART line to the host, high while idle.

    One request is handled at a time: the network receives the vector as
    soon as its last byte arrives, and the response is sent when the
    network's output is valid. A request that arrives while a response is
    still being sent waits in the network's input stage.
    """

    def __init__(self, network, *, divisor: int):
        self.network = network
        self.divisor = divisor
        self.input_bits = len(network.i.payload)
        self.output_bits = len(network.o.payload.as_value())
        self.input_bytes = frame_bytes(self.input_bits)
        self.output_bytes = frame_bytes(self.output_bits)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = network = self.network
        m.submodules.receiver = receiver = UARTReceiver(divisor=self.divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(divisor=self.divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx)]

        # Request: sync byte, then the vector's bytes shifted in from the top, so byte 0 ends lowest.
        vector = Signal(8 * self.input_bytes)
        received = Signal(range(self.input_bytes + 1))
        m.d.comb += network.i.payload.eq(vector[: self.input_bits])
        with m.FSM(name="request"):
            with m.State("sync"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid & (receiver.o.payload == REQUEST_SYNC)):
                    m.d.sync += received.eq(0)
                    m.next = "payload"
            with m.State("payload"):
                m.d.comb += receiver.o.ready.eq(1)
                with m.If(receiver.o.valid):
                    m.d.sync += [vector.eq(Cat(vector[8:], receiver.o.payload)), received.eq(received + 1)]
                    with m.If(received == self.input_bytes - 1):
                        m.next = "submit"
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
        uart = platform.request("uart", 0)
        m.d.comb += [top.rx.eq(uart.rx.i), uart.tx.o.eq(top.tx)]
        return m
