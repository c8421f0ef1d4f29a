"""The UART inference top in Amaranth's simulator, and the host client over a pseudo-terminal."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from amaranth.sim import Simulator

from tangentcore.errors import TangentcoreError
from tangentcore.hw.board import InferenceTop
from tangentcore.hw.host import InferenceClient, ProtocolWidths, decode_response, encode_request
from tangentcore.hw.network import SignNetwork, resolve_foldings
from tangentcore.hw.uart import uart_divisor
from tangentcore.manifest import random_manifest, save_manifest
from tangentcore.sw import reference

DIVISOR = 5


def _uart_frames(manifest, inputs, widths):
    """Run the UART top in Amaranth's simulator; return the response frames the host receives."""
    network = SignNetwork(manifest, resolve_foldings(manifest, None))
    top = InferenceTop(network, divisor=DIVISOR)
    frames = []

    async def host(ctx):
        for vector in inputs:
            # A stray byte before the request must be dropped.
            for byte in b"\x00" + encode_request(vector, widths):
                for bit in [0, *[(byte >> k) & 1 for k in range(8)], 1]:
                    ctx.set(top.rx, bit)
                    await ctx.tick().repeat(DIVISOR)

    async def listen(ctx):
        while len(frames) < len(inputs):
            frame = bytearray()
            for _ in range(1 + widths.response_bytes):
                await ctx.tick().until(top.tx == 0)
                await ctx.tick().repeat(DIVISOR + DIVISOR // 2)
                byte = 0
                for k in range(8):
                    byte |= ctx.get(top.tx) << k
                    await ctx.tick().repeat(DIVISOR)
                frame.append(byte)
            frames.append(bytes(frame))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(listen)
    sim.run()
    return frames


@pytest.mark.parametrize(
    # input encoding and bits of the network behind the UART
    "encoding,bits", [("binary", 1), ("uint", 3)],
)
def test_uart_top_matches_reference(encoding, bits):
    rng = np.random.default_rng(5)
    manifest = random_manifest(rng, [11, 6, 4], encoding=encoding, bits=bits)
    widths = ProtocolWidths.from_manifest(manifest)
    inputs = rng.integers(0, 1 << bits, size=(4, 11))
    expected = reference.forward(manifest, inputs)
    for index, frame in enumerate(_uart_frames(manifest, inputs, widths)):
        label, scores = decode_response(frame, widths)
        assert scores == expected["scores"][index].tolist()
        assert label == expected["predictions"][index]


def test_request_packs_little_endian():
    widths = ProtocolWidths(input_size=5, input_bits=3, label_bits=2, score_bits=4, n_classes=3)
    frame = encode_request(np.array([1, 2, 3, 4, 7]), widths)
    payload = 1 | 2 << 3 | 3 << 6 | 4 << 9 | 7 << 12
    assert frame == bytes([0xA5]) + payload.to_bytes(2, "little")


def test_response_decodes_signed_scores():
    widths = ProtocolWidths(input_size=5, input_bits=1, label_bits=2, score_bits=4, n_classes=3)
    value = 2 | (0b1111 << 2) | (0b0111 << 6) | (0b1000 << 10)
    label, scores = decode_response(bytes([0x5A]) + value.to_bytes(widths.response_bytes, "little"), widths)
    assert label == 2
    assert scores == [-1, 7, -8]


def test_request_rejects_out_of_range_values():
    widths = ProtocolWidths(input_size=3, input_bits=2, label_bits=1, score_bits=4, n_classes=2)
    with pytest.raises(TangentcoreError, match=r"must lie in \[0, 3\]"):
        encode_request(np.array([0, 4, 1]), widths)


def test_divisor_rejects_inexact_baud():
    assert uart_divisor(12e6, 115200) == 104
    with pytest.raises(TangentcoreError, match="too fast"):
        uart_divisor(12e6, 6_000_000)
    with pytest.raises(TangentcoreError, match="off with a"):
        uart_divisor(12e6, 1_600_000)


def _fake_board(master_fd, manifest, count, answer_wrong_at=None):
    """Reply to ``count`` requests on the master side of a pseudo-terminal with the reference's outputs."""
    widths = ProtocolWidths.from_manifest(manifest)
    for index in range(count):
        data = b""
        while len(data) < 1 + widths.request_bytes:
            data += os.read(master_fd, 1 + widths.request_bytes - len(data))
        payload = int.from_bytes(data[1:], "little")
        vector = [(payload >> (k * widths.input_bits)) & ((1 << widths.input_bits) - 1)
                  for k in range(widths.input_size)]
        result = reference.forward(manifest, np.array([vector]))
        label = int(result["predictions"][0]) ^ (1 if index == answer_wrong_at else 0)
        value = label
        for j, score in enumerate(result["scores"][0].tolist()):
            value |= (score & ((1 << widths.score_bits) - 1)) << (widths.label_bits + j * widths.score_bits)
        os.write(master_fd, b"\x5a" + value.to_bytes(widths.response_bytes, "little"))


@pytest.fixture
def pseudo_terminal():
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_client_over_serial(pseudo_terminal):
    master, port = pseudo_terminal
    rng = np.random.default_rng(2)
    manifest = random_manifest(rng, [10, 5, 3], encoding="uint", bits=2)
    inputs = rng.integers(0, 4, size=(5, 10))
    board = threading.Thread(target=_fake_board, args=(master, manifest, len(inputs)), daemon=True)
    board.start()
    client = InferenceClient(port, manifest, timeout_s=5.0)
    try:
        results = [client.infer(vector) for vector in inputs]
    finally:
        client.close()
    expected = reference.forward(manifest, inputs)
    assert [label for label, _ in results] == expected["predictions"].tolist()
    assert [scores for _, scores in results] == expected["scores"].tolist()


def test_infer_command_reports_mismatch(pseudo_terminal, tmp_path):
    master, port = pseudo_terminal
    rng = np.random.default_rng(3)
    manifest = random_manifest(rng, [10, 5, 3], encoding="binary")
    save_manifest(manifest, tmp_path / "m")
    inputs = rng.integers(0, 2, size=(3, 10))
    np.savetxt(tmp_path / "inputs.csv", inputs, fmt="%d", delimiter=",")
    board = threading.Thread(target=_fake_board, args=(master, manifest, 3, 1), daemon=True)
    board.start()
    result = subprocess.run([sys.executable, "-m", "tangentcore", "infer", str(tmp_path / "m"),
                             str(tmp_path / "inputs.csv"), "--port", port, "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("1: class")
    assert "MISMATCH" in lines[1]
    assert "3 vectors, 1 differ from the reference" in result.stdout


def test_spiking_manifest_rejected_for_board():
    manifest = random_manifest(np.random.default_rng(4), [6, 4, 3], kind="lif", time_steps=4,
                               output="spike_count")
    with pytest.raises(TangentcoreError, match="spiking network with 4 input vectors per sample"):
        ProtocolWidths.from_manifest(manifest)


def test_response_decodes_unsigned_spike_counts():
    widths = ProtocolWidths(input_size=5, input_bits=1, label_bits=2, score_bits=4, n_classes=2, score_signed=False)
    value = 1 | (0b1111 << 2) | (0b0011 << 6)
    label, scores = decode_response(bytes([0x5A]) + value.to_bytes(widths.response_bytes, "little"), widths)
    assert label == 1
    assert scores == [15, 3]
