"""8N1 UART receiver and transmitter with byte streams.

Line format: idle high, one start bit (low), eight data bits LSB first, one
stop bit (high). ``divisor`` is the number of clock cycles per bit,
``round(clk_hz / baud)``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from tangentcore.errors import TangentcoreError

__all__ = ["UARTReceiver", "UARTTransmitter", "uart_divisor"]


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Return the clock cycles per bit; raise TangentcoreError when the baud rate error exceeds 2 %."""
    if baud <= 0 or clk_hz <= 0:
        raise TangentcoreError(f"clock {clk_hz} Hz and baud rate {baud} must be positive")
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise TangentcoreError(f"baud rate {baud} is too fast for a {clk_hz / 1e6:.3f} MHz clock; "
                               f"use at most {int(clk_hz // 4)}")
    error = abs(clk_hz / divisor - baud) / baud
    if error > 0.02:
        raise TangentcoreError(f"baud rate {baud} is {100 * error:.1f} % off with a {clk_hz / 1e6:.3f} MHz clock "
                               "(more than 2 %); choose a baud rate closer to a divisor of the clock")
    return divisor


class UARTReceiver(wiring.Component):
    """UART receiver.

    Ports
        rx: in, the serial line (synchronized internally with two flip-flops).
        o: stream out of received bytes. A byte is presented from the cycle
            after its stop bit is sampled. The payload is the receive shift
            register itself, so the consumer must take each byte before the
            next start bit arrives; the inference top does, because the host
            sends one request at a time.
    """

    def __init__(self, *, divisor: int):
        if divisor < 4:
            raise TangentcoreError(f"UART divisor must be at least 4 clock cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.o.payload.eq(shift)

        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    # Sample the first data bit in its middle: 1.5 bit times after the start edge.
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bit.eq(0)]
                    m.next = "data"
            with m.State("data"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bit.eq(bit + 1), timer.eq(self.divisor - 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("stop"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += self.o.valid.eq(1)
                    m.next = "idle"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTransmitter(wiring.Component):
    """UART transmitter.

    Ports
        i: stream in of bytes; a byte is accepted (``ready`` high) only while
            the line is idle, then sent in ``10·divisor`` cycles.
        tx: out, the serial line, high while idle.
    """

    def __init__(self, *, divisor: int):
        if divisor < 4:
            raise TangentcoreError(f"UART divisor must be at least 4 clock cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits_left = Signal(range(11))
        # Start bit, eight data bits, stop bit, sent LSB first.
        frame = Signal(10, init=0x3FF)

        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(bits_left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq((1 << 9) | (self.i.payload << 1)), bits_left.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq((1 << 9) | (frame >> 1)), bits_left.eq(bits_left - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
