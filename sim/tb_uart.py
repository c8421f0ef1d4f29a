"""cocotb testbench of the UART inference top (``tangentcore.hw.board.InferenceTop``).

It plays the host of the byte protocol documented in ``tangentcore.hw.board``:
it sends each sample (``T`` input vectors, one frame each, back to back) as
a request on ``rx``, decodes the response on ``tx`` and compares the label
and every score with the reference. Inputs are time-major, (n, T, n_in).
Files come through the environment as for ``tb_network``:
``TANGENTCORE_VECTORS``, ``TANGENTCORE_CORE`` (``core.json`` plus
``uart_divisor``) and ``TANGENTCORE_RESULTS``.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from tangentcore.hw.board import REQUEST_SYNC, RESPONSE_SYNC, frame_bytes
from tangentcore.sim.vectors import decode_output, pack_rows


async def _send_byte(dut, value: int, divisor: int) -> None:
    for bit in [0, *[(value >> k) & 1 for k in range(8)], 1]:
        dut.rx.value = bit
        await ClockCycles(dut.clk, divisor)


async def _receive_byte(dut, divisor: int) -> int:
    """Wait for a start bit on ``tx`` and sample the eight data bits in their middles."""
    while int(dut.tx.value) == 1:
        await FallingEdge(dut.clk)
    await ClockCycles(dut.clk, divisor + divisor // 2)
    value = 0
    for k in range(8):
        value |= int(dut.tx.value) << k
        await ClockCycles(dut.clk, divisor)
    return value


@cocotb.test()
async def uart_top_matches_reference(dut):
    """Check that every response over the UART equals the reference's label and scores."""
    vectors = np.load(os.environ["TANGENTCORE_VECTORS"], allow_pickle=False)
    with open(os.environ["TANGENTCORE_CORE"], encoding="utf-8") as handle:
        core = json.load(handle)
    divisor = core["uart_divisor"]
    port_in, port_out = core["ports"]["i"], core["ports"]["o"]
    vector_bytes = frame_bytes(port_in["payload_bits"])
    response_bytes = frame_bytes(port_out["payload_bits"])

    Clock(dut.clk, 10, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    mismatches = []
    for sample, steps in enumerate(vectors["inputs"]):
        # A stray byte before the sync byte must be ignored.
        frame = [0x00, REQUEST_SYNC]
        for payload in pack_rows(steps, port_in["input_bits"]):
            frame += [(payload >> (8 * k)) & 0xFF for k in range(vector_bytes)]
        sender = cocotb.start_soon(_send_frame(dut, frame, divisor))
        response = [await _receive_byte(dut, divisor) for _ in range(1 + response_bytes)]
        await sender
        if response[0] != RESPONSE_SYNC:
            mismatches.append({"sample": sample, "output": "sync", "expected": RESPONSE_SYNC, "actual": response[0]})
            continue
        value = sum(byte << (8 * k) for k, byte in enumerate(response[1:]))
        label, scores = decode_output(value, port_out)
        expected_scores = vectors["scores"][sample].tolist()
        for index, (actual, expected) in enumerate(zip(scores, expected_scores)):
            if actual != expected:
                mismatches.append({"sample": sample, "output": f"score[{index}]", "expected": expected, "actual": actual})
        if label != int(vectors["predictions"][sample]):
            mismatches.append({"sample": sample, "output": "label", "expected": int(vectors["predictions"][sample]),
                               "actual": label})

    report = {"vectors": len(vectors["inputs"]), "mismatches": len(mismatches), "first_mismatches": mismatches[:20]}
    tmp = os.environ["TANGENTCORE_RESULTS"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    os.replace(tmp, os.environ["TANGENTCORE_RESULTS"])
    assert not mismatches, f"{len(mismatches)} mismatching outputs; first: {mismatches[0]}"


async def _send_frame(dut, frame: list[int], divisor: int) -> None:
    for value in frame:
        await _send_byte(dut, value, divisor)
