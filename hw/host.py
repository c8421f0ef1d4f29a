"""Host side of the board's UART byte protocol (documented in ``tangentcore.hw.board``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tangentcore.errors import TangentcoreError
from tangentcore.hw.board import REQUEST_SYNC, RESPONSE_SYNC, frame_bytes
from tangentcore.manifest import Manifest
from tangentcore.sim.vectors import decode_output

__all__ = ["ProtocolWidths", "encode_request", "decode_response", "InferenceClient", "reject_spiking"]


def reject_spiking(manifest: Manifest) -> None:
    """Raise TangentcoreError for a spiking manifest: a request carries one input vector, not T of them."""
    if manifest.is_spiking:
        raise TangentcoreError(
            f"{manifest.name} is a spiking network with {manifest.time_steps} input vectors per sample, but the "
            "board top and its UART protocol carry one vector per request; build a dense network instead"
        )


@dataclass(frozen=True)
class ProtocolWidths:
    """Field widths of requests and responses, derived from a manifest."""

    input_size: int
    input_bits: int
    label_bits: int
    score_bits: int
    n_classes: int
    score_signed: bool = True

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> "ProtocolWidths":
        """Return the widths of ``manifest``'s board protocol; raise TangentcoreError for spiking networks."""
        reject_spiking(manifest)
        return cls(
            input_size=manifest.input.size,
            input_bits=manifest.input.bits,
            label_bits=max(1, (manifest.n_classes - 1).bit_length()),
            score_bits=manifest.score_bits,
            n_classes=manifest.n_classes,
            score_signed=manifest.scores_signed,
        )

    @property
    def request_bytes(self) -> int:
        return frame_bytes(self.input_size * self.input_bits)

    @property
    def response_bytes(self) -> int:
        return frame_bytes(self.label_bits + self.n_classes * self.score_bits)


def encode_request(vector, widths: ProtocolWidths) -> bytes:
    """Return the request frame for one encoded input vector."""
    vector = np.asarray(vector)
    if vector.shape != (widths.input_size,):
        raise TangentcoreError(f"an input vector must have {widths.input_size} values, not shape {vector.shape}")
    limit = 1 << widths.input_bits
    if vector.min() < 0 or vector.max() >= limit:
        raise TangentcoreError(f"input values must lie in [0, {limit - 1}] for {widths.input_bits}-bit inputs")
    payload = 0
    for index, value in enumerate(vector.tolist()):
        payload |= int(value) << (index * widths.input_bits)
    return bytes([REQUEST_SYNC]) + payload.to_bytes(widths.request_bytes, "little")


def decode_response(frame: bytes, widths: ProtocolWidths) -> tuple[int, list[int]]:
    """Return ``(label, scores)`` from a response frame (sync byte included)."""
    if len(frame) != 1 + widths.response_bytes or frame[0] != RESPONSE_SYNC:
        raise TangentcoreError(f"malformed response from the board: {frame.hex()} "
                               f"(expected 0x{RESPONSE_SYNC:02x} and {widths.response_bytes} bytes)")
    port = {"label_bits": widths.label_bits, "score_bits": widths.score_bits, "n_classes": widths.n_classes,
            "score_signed": widths.score_signed}
    return decode_output(int.from_bytes(frame[1:], "little"), port)


class InferenceClient:
    """Sends input vectors to a board over a serial port and reads back label and scores."""

    def __init__(self, port: str, manifest: Manifest, *, baud: int = 115200, timeout_s: float = 2.0):
        import serial

        self.widths = ProtocolWidths.from_manifest(manifest)
        try:
            self.serial = serial.Serial(port, baudrate=baud, timeout=timeout_s)
        except serial.SerialException as error:
            raise TangentcoreError(f"cannot open serial port {port}: {error}") from None

    def infer(self, vector) -> tuple[int, list[int]]:
        """Return ``(label, scores)`` for one encoded input vector."""
        self.serial.write(encode_request(vector, self.widths))
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
