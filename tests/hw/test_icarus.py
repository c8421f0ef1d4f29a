"""Generated Verilog on Icarus Verilog: a minimal stream testbench, no cocotb.

Icarus 11 does not evaluate some combinational blocks at time 0 when their
inputs never change afterwards, so every weight storage variant (LUT ROM
read combinationally, block RAM, constant rows of fully parallel layers)
runs here against the reference.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from tangentcore.hw.layers import auto_folding
from tangentcore.hw.network import Network
from tangentcore.hw.simulate import pack_vectors, unpack_scores
from tangentcore.manifest import random_manifest
from tangentcore.sw import reference

from ..conftest import require_simulator

TESTBENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg rst = 1;
  reg o__ready = 0;
  integer sent = 0;
  integer taken = 0;
  integer cycles = 0;
  integer seed = 7;
  integer out_file;
  reg [{in_bits}-1:0] vectors [0:{n_in}-1];
  wire i__valid = !rst && sent < {n_in};
  wire [{in_bits}-1:0] i__payload = vectors[sent < {n_in} ? sent : 0];
  wire i__ready;
  wire o__valid;
  wire [{out_bits}-1:0] o__payload;
  tangentcore_net dut(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(i__ready), .i__payload(i__payload),
                      .o__valid(o__valid), .o__ready(o__ready), .o__payload(o__payload));
  always #5 clk = ~clk;
  initial begin
    $readmemh("vectors.hex", vectors);
    out_file = $fopen("outputs.hex", "w");
    repeat (3) @(posedge clk);
    rst <= 0;
  end
  always @(posedge clk) begin
    cycles <= cycles + 1;
    if (i__valid && i__ready) sent <= sent + 1;
    if (o__valid && o__ready) begin
      $fwrite(out_file, "%h\\n", o__payload);
      taken = taken + 1;
      if (taken == {n_out}) begin
        $fclose(out_file);
        $finish;
      end
    end
    // Back-pressure: ready low in about a quarter of the cycles.
    o__ready <= !rst && ($random(seed) & 3) != 0;
    if (cycles > {max_cycles}) begin
      $display("timeout");
      $finish;
    end
  end
endmodule
"""


def _run_icarus(network: Network, payloads: list[int], n_outputs: int, work) -> list[int]:
    (work / "net.v").write_text(verilog.convert(network, name="tangentcore_net", emit_src=False))
    (work / "vectors.hex").write_text("".join(f"{payload:x}\n" for payload in payloads))
    (work / "tb.v").write_text(TESTBENCH.format(in_bits=len(network.i.payload), n_in=len(payloads),
                                                out_bits=network.payload_layout.size, n_out=n_outputs,
                                                max_cycles=100 * len(payloads) * network.latency_cycles))
    subprocess.run([shutil.which("iverilog"), "-g2012", "-o", str(work / "tb.vvp"), str(work / "tb.v"),
                    str(work / "net.v")], check=True, capture_output=True)
    subprocess.run([shutil.which("vvp"), "-n", str(work / "tb.vvp")], check=True, capture_output=True, cwd=work)
    outputs = (work / "outputs.hex").read_text().split()
    assert "x" not in "".join(outputs).lower(), "the core drove unknown (X) bits"
    return [int(word, 16) for word in outputs]


# network kind and weight storage; 1024 folds every layer fully parallel (constant rows)
@pytest.mark.icarus
@pytest.mark.parametrize("kind,storage,fold", [
    ("dense", "rom", (2, 4)), ("dense", "bram", (2, 4)), ("dense", "auto", (1024, 1024)),
    ("lif", "rom", (2, 4)), ("lif", "bram", (1, 2)), ("lif", "auto", (1024, 1024)),
])
def test_icarus_runs_generated_network(kind, storage, fold, tmp_path):
    require_simulator("icarus")
    rng = np.random.default_rng(51)
    if kind == "lif":
        manifest = random_manifest(rng, [8, 6, 4], kind="lif", weight_kind="int", weight_bits=3, time_steps=3,
                                   output="spike_count", membrane_bits=5)
        x = rng.integers(0, 2, size=(6, 3, 8))
    else:
        manifest = random_manifest(rng, [8, 6, 4], weight_kind="ternary", encoding="uint", bits=3)
        x = rng.integers(0, 8, size=(6, 8))
    foldings = [auto_folding(layer.in_features, layer.out_features, max_pe=fold[0], max_simd=fold[1])
                for layer in manifest.layers]
    network = Network.from_manifest(manifest, foldings, weight_storage=storage)
    payloads = pack_vectors(x.reshape(-1, manifest.input.size), manifest.input.bits)
    outputs = _run_icarus(network, payloads, len(x), tmp_path)
    expected = reference.forward(manifest, x)
    decoded = [unpack_scores(network, payload) for payload in outputs]
    np.testing.assert_array_equal([scores for _, scores in decoded], expected["scores"])
    assert [label for label, _ in decoded] == expected["predictions"].tolist()
