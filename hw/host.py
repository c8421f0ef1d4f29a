"""Host side of the board's UART byte protocol (documented in ``tangentcore.hw.board``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.hw.board import REQUEST_SYNC, RESPONSE_SYNC, frame_bytes
from tangentcore.manifest import Manifest
from tangentcore.sim.vectors import decode_output

__all__ = ["ProtocolWidths", "encode_request", "decode_response", "InferenceClient"]


@dataclass(frozen=True)
class ProtocolWidths:
    """Field widths of requests and responses, derived from a manifest.

    ``time_steps`` is the number of input vectors per sample and request
    (``T`` of a spiking network, 1 for a dense one).
    """

    input_size: int
    input_bits: int
    label_bits: int
    score_bits: int
    n_classes: int
    score_signed: bool = True
    time_steps: int = 1

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> "ProtocolWidths":
        """Return the widths of ``manifest``'s board protocol."""
        return cls(
            input_size=manifest.input.size,
            input_bits=manifest.input.bits,
            label_bits=max(1, (manifest.n_classes - 1).bit_length()),
            score_bits=manifest.score_bits,
            n_classes=manifest.n_classes,
            score_signed=manifest.scores_signed,
            time_steps=manifest.time_steps,
        )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Return the array shape of one sample: ``(input_size,)`` for dense, ``(time_steps, input_size)`` for spiking."""
        if self.time_steps == 1:
            return (self.input_size,)
        return (self.time_steps, self.input_size)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one input vector (one time step) in a request."""
        return frame_bytes(self.input_size * self.input_bits)

    @property
    def request_bytes(self) -> int:
        """Bytes of a request after its sync byte: one frame per time step."""
        return self.time_steps * self.frame_bytes

    @property
    def response_bytes(self) -> int:
        """Bytes of a response after its sync byte."""
        return frame_bytes(self.label_bits + self.n_classes * self.score_bits)


def encode_request(sample, widths: ProtocolWidths) -> bytes:
    """Return the request frame of one sample: an input vector, or the ``(T, input_size)`` spike trains.

    Raises TangentcoreError for a sample of the wrong shape or with values out
    of the ``input_bits`` range.
    """
    sample = np.asarray(sample)
    if sample.shape != widths.sample_shape:
        subject = "an input vector" if widths.time_steps == 1 else f"a sample of {widths.time_steps} time steps"
        raise TangentcoreError(f"{subject} must have shape {widths.sample_shape}, not {sample.shape}")
    limit = 1 << widths.input_bits
    if sample.min() < 0 or sample.max() >= limit:
        raise TangentcoreError(f"input values must lie in [0, {limit - 1}] for {widths.input_bits}-bit inputs")
    frames = [bytes([REQUEST_SYNC])]
    for vector in sample.reshape(widths.time_steps, widths.input_size):
        payload = 0
        for index, value in enumerate(vector.tolist()):
            payload |= int(value) << (index * widths.input_bits)
        frames.append(payload.to_bytes(widths.frame_bytes, "little"))
    return b"".join(frames)


def decode_response(frame: bytes, widths: ProtocolWidths) -> tuple[int, list[int]]:
    """Return ``(label, scores)`` from a response frame (sync byte included)."""
    if len(frame) != 1 + widths.response_bytes or frame[0] != RESPONSE_SYNC:
        raise TangentcoreError(f"malformed response from the board: {frame.hex()} "
                               f"(expected 0x{RESPONSE_SYNC:02x} and {widths.response_bytes} bytes)")
    port = {"label_bits": widths.label_bits, "score_bits": widths.score_bits, "n_classes": widths.n_classes,
            "score_signed": widths.score_signed}
    return decode_output(int.from_bytes(frame[1:], "little"), port)


class InferenceClient:
    """Sends samples to a board over a serial port and reads back label and scores."""

    def __init__(self, port: str, manifest: Manifest, *, baud: int = 115200, timeout_s: float = 2.0):
        import serial

        self.widths = ProtocolWidths.from_manifest(manifest)
        try:
            self.serial = serial.Serial(port, baudrate=baud, timeout=timeout_s)
        except serial.SerialException as error:
            raise TangentcoreError(f"cannot open serial port {port}: {error}") from None

    def infer(self, sample) -> tuple[int, list[int]]:
        """Send one sample (see :func:`encode_request`) and return the board's ``(label, scores)``."""
        self.serial.write(encode_request(sample, self.widths))
        self.serial.flush()
        # Skip anything before the response's sync byte, such as a line's power-up glitch.
        while True:
            first = self.serial.read(1)
            if not first:
                raise TangentcoreError("timed out waiting for the board's response; check the port, the baud "
                                       "rate and that the board runs this manifest's bitstream")
            if first[0] == RESPONSE_SYNC:
                break
        rest = self.serial.read(self.widths.response_bytes)
        return decode_response(first + rest, self.widths)

    def close(self) -> None:
        self.serial.close()
