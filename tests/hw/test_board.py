"""The UART inference top in Amaranth's simulator, and the host client over a pseudo-terminal."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from tangentcore.errors import TangentcoreError
from tangentcore.hw.board import InferenceTop
from tangentcore.hw.host import InferenceClient, ProtocolWidths, decode_response, encode_request
from tangentcore.hw.network import Network, resolve_foldings
from tangentcore.hw.uart import uart_divisor
from tangentcore.manifest import random_manifest, save_manifest
from tangentcore.sw import reference

DIVISOR = 5


def _uart_frames(manifest, inputs, widths, fold=None):
    """Run the UART top in Amaranth's simulator; return the response frames the host receives."""
    network = Network.from_manifest(manifest, resolve_foldings(manifest, fold))
    top = InferenceTop(network, divisor=DIVISOR)
    frames = []

    async def host(ctx):
        for sample in inputs:
            # A stray byte before the request must be dropped.
            for byte in b"\x00" + encode_request(sample, widths):
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


@pytest.mark.parametrize(
    # LIF output layer's scores, which set the score width and signedness of the response
    "output", ["spike_count", "max_membrane"],
)
def test_uart_top_lif_matches_reference(output):
    rng = np.random.default_rng(6)
    manifest = random_manifest(rng, [12, 5, 3], kind="lif", time_steps=4, output=output)
    widths = ProtocolWidths.from_manifest(manifest)
    inputs = rng.integers(0, 2, size=(3, 4, 12))
    expected = reference.forward(manifest, inputs)
    # Folding 1,1 gives layer 0 12·5 + 3 = 63 cycles per step, more than the 50 of one byte, so the
    # top must hold a step's vector while the next frame arrives.
    frames = _uart_frames(manifest, inputs, widths, fold=(1, 1))
    assert len(frames) == len(inputs)
    for index, frame in enumerate(frames):
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


def test_request_packs_time_steps_in_order():
    widths = ProtocolWidths(input_size=10, input_bits=1, label_bits=2, score_bits=3, n_classes=3,
                            score_signed=False, time_steps=3)
    steps = np.zeros((3, 10), dtype=np.int64)
    steps[0, 0] = steps[1, 9] = steps[2, 8] = 1
    frame = encode_request(steps, widths)
    assert frame == bytes([0xA5, 0x01, 0x00, 0x00, 0x02, 0x00, 0x01])


def test_request_rejects_wrong_sample_shape():
    widths = ProtocolWidths(input_size=10, input_bits=1, label_bits=2, score_bits=3, n_classes=3, time_steps=3)
    with pytest.raises(TangentcoreError, match=r"a sample of 3 time steps must have shape \(3, 10\), not \(10,\)"):
        encode_request(np.zeros(10, dtype=np.int64), widths)


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
        steps = []
        for step in range(widths.time_steps):
            start = 1 + step * widths.frame_bytes
            payload = int.from_bytes(data[start:start + widths.frame_bytes], "little")
            steps.append([(payload >> (k * widths.input_bits)) & ((1 << widths.input_bits) - 1)
                          for k in range(widths.input_size)])
        sample = np.array(steps).reshape(widths.sample_shape)
        result = reference.forward(manifest, sample[None])
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
    assert "3 samples, 1 differ from the reference" in result.stdout


def test_infer_command_lif_over_serial(pseudo_terminal, tmp_path):
    master, port = pseudo_terminal
    rng = np.random.default_rng(8)
    manifest = random_manifest(rng, [9, 6, 4], kind="lif", time_steps=5)
    save_manifest(manifest, tmp_path / "m")
    inputs = rng.integers(0, 2, size=(4, 5, 9))
    # Each CSV row contains one sample, its five time steps back to back.
    np.savetxt(tmp_path / "inputs.csv", inputs.reshape(4, 45), fmt="%d", delimiter=",")
    board = threading.Thread(target=_fake_board, args=(master, manifest, 4), daemon=True)
    board.start()
    result = subprocess.run([sys.executable, "-m", "tangentcore", "infer", str(tmp_path / "m"),
                             str(tmp_path / "inputs.csv"), "--port", port, "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = reference.forward(manifest, inputs)
    lines = result.stdout.splitlines()
    for index in range(4):
        scores = " ".join(map(str, expected["scores"][index].tolist()))
        assert lines[index] == f"{index}: class {expected['predictions'][index]}, scores {scores}"
    assert "4 samples, 0 differ from the reference" in result.stdout


def test_infer_command_rejects_wrong_lif_shape(tmp_path):
    manifest = random_manifest(np.random.default_rng(9), [9, 6, 4], kind="lif", time_steps=5, name="spiky")
    save_manifest(manifest, tmp_path / "m")
    np.save(tmp_path / "inputs.npy", np.zeros((4, 9), dtype=np.int64))
    result = subprocess.run([sys.executable, "-m", "tangentcore", "infer", str(tmp_path / "m"),
                             str(tmp_path / "inputs.npy"), "--port", "/dev/null"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "must have shape (n, 5, 9) for the spiking network spiky" in result.stderr
    assert "not (4, 9)" in result.stderr


def test_uart_top_rejects_slow_lif_fold():
    manifest = random_manifest(np.random.default_rng(10), [16, 8, 3], kind="lif", time_steps=4, name="slow")
    network = Network.from_manifest(manifest, resolve_foldings(manifest, (1, 1)))
    # Layer 0 takes 8·16 + 3 = 131 cycles per step, but a 2-byte frame takes 2·10·5 = 100 cycles.
    with pytest.raises(TangentcoreError, match="slowest layer of slow takes 131 cycles per time step, but a "
                                               "request frame arrives every 100 cycles"):
        InferenceTop(network, divisor=DIVISOR)
    # At 7 cycles per bit a frame takes 140 cycles, enough for the same network.
    Fragment.get(InferenceTop(network, divisor=7), None)


def test_response_decodes_unsigned_spike_counts():
    widths = ProtocolWidths(input_size=5, input_bits=1, label_bits=2, score_bits=4, n_classes=2, score_signed=False)
    value = 1 | (0b1111 << 2) | (0b0011 << 6)
    label, scores = decode_response(bytes([0x5A]) + value.to_bytes(widths.response_bytes, "little"), widths)
    assert label == 1
    assert scores == [15, 3]


def _serve_simulated_top(top, master_fd, client):
    """Simulate ``top`` with its UART on the master side of a pseudo-terminal until ``client`` exits."""
    os.set_blocking(master_fd, False)

    async def host_to_board(ctx):
        while client.poll() is None:
            try:
                data = os.read(master_fd, 4096)
            except BlockingIOError:
                data = b""
            if not data:
                await ctx.tick().repeat(20)
            for byte in data:
                for bit in [0, *[(byte >> k) & 1 for k in range(8)], 1]:
                    ctx.set(top.rx, bit)
                    await ctx.tick().repeat(DIVISOR)

    async def board_to_host(ctx):
        while client.poll() is None:
            await ctx.tick()
            if ctx.get(top.tx):
                continue
            # Start bit seen: sample the eight data bits in their middles.
            await ctx.tick().repeat(DIVISOR // 2)
            byte = 0
            for k in range(8):
                await ctx.tick().repeat(DIVISOR)
                byte |= ctx.get(top.tx) << k
            await ctx.tick().repeat(DIVISOR)
            os.write(master_fd, bytes([byte]))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(host_to_board)
    sim.add_testbench(board_to_host)
    sim.run()


@pytest.mark.parametrize(
    # network kind behind the simulated UART top: sign layers on 3-bit inputs, or LIF over 5 time steps
    "kind", ["dense", "lif"],
)
def test_infer_command_against_simulated_top(kind, pseudo_terminal, tmp_path):
    master, port = pseudo_terminal
    rng = np.random.default_rng(12)
    if kind == "dense":
        manifest = random_manifest(rng, [10, 6, 4], encoding="uint", bits=3)
        inputs = rng.integers(0, 8, size=(3, 10))
    else:
        manifest = random_manifest(rng, [10, 6, 4], kind="lif", time_steps=5)
        inputs = rng.integers(0, 2, size=(3, 5, 10))
    save_manifest(manifest, tmp_path / "m")
    np.save(tmp_path / "inputs.npy", inputs)
    top = InferenceTop(Network.from_manifest(manifest, resolve_foldings(manifest, None)), divisor=DIVISOR)
    client = subprocess.Popen([sys.executable, "-m", "tangentcore", "infer", str(tmp_path / "m"),
                               str(tmp_path / "inputs.npy"), "--port", port, "--check"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _serve_simulated_top(top, master, client)
    stdout, stderr = client.communicate(timeout=60)
    assert client.returncode == 0, stderr
    assert "3 samples, 0 differ from the reference" in stdout
