"""Board builds with YoWASP Yosys and nextpnr: a small iCE40 build, its report and its reproducibility."""

import json

import numpy as np
import pytest
from amaranth.hdl import Fragment

from tangentcore.errors import TangentcoreError
from tangentcore.hw.build import _flip_flops, build_board, toolchain_missing
from tangentcore.hw.layers import Folding
from tangentcore.hw.network import Network, SignNetwork, resolve_foldings
from tangentcore.manifest import random_manifest


def _small_network(seed=0):
    manifest = random_manifest(np.random.default_rng(seed), [16, 8, 4], encoding="binary", name="small")
    return SignNetwork(manifest, [Folding(pe=2, simd=8), Folding(pe=2, simd=8)])


@pytest.fixture(scope="module")
def icebreaker_build(tmp_path_factory):
    missing = toolchain_missing("icebreaker")
    if missing:
        pytest.skip(missing)
    network = _small_network()
    out = tmp_path_factory.mktemp("bitstreams")
    return build_board(network, design="small", board="icebreaker", out_root=out,
                       cycles_per_inference=network.initiation_interval_cycles), out


def test_small_build_fits_and_meets_timing(icebreaker_build):
    result, _ = icebreaker_build
    summary = result.summary
    assert result.bitstream.stat().st_size > 0
    assert 0 < summary["utilization"]["lc"]["used"] <= summary["utilization"]["lc"]["available"]
    assert summary["timing_met"]
    (clock,) = summary["fmax"].values()
    assert clock["achieved_mhz"] >= clock["constraint_mhz"] == 12.0
    assert summary["fmax_margin_percent"] == pytest.approx(100 * (clock["achieved_mhz"] / 12.0 - 1), abs=0.05)


def test_summary_written_beside_bitstream(icebreaker_build):
    result, out = icebreaker_build
    written = json.loads((result.folder / "summary.json").read_text())
    assert written == result.summary
    assert written["inferences_per_second"] == pytest.approx(12e6 / written["cycles_per_inference"])
    assert (result.folder / "top.tim").exists()
    # The staging folder is renamed into place, so nothing else is left beside the board folder.
    assert sorted(p.name for p in (out / "small").iterdir()) == ["icebreaker"]


def test_same_inputs_same_bitstream(icebreaker_build, tmp_path):
    first, _ = icebreaker_build
    network = _small_network()
    second = build_board(network, design="small", board="icebreaker", out_root=tmp_path,
                         cycles_per_inference=network.initiation_interval_cycles)
    assert second.summary["bitstream_sha256"] == first.summary["bitstream_sha256"]
    assert second.bitstream.read_bytes() == first.bitstream.read_bytes()


def test_slow_lif_rejected_before_tools(tmp_path):
    missing = toolchain_missing("icebreaker")
    if missing:
        pytest.skip(missing)
    manifest = random_manifest(np.random.default_rng(1), [16, 8, 3], kind="lif", time_steps=4, name="slow")
    network = Network.from_manifest(manifest, resolve_foldings(manifest, (1, 1)))
    # At 3 Mbaud on the 12 MHz clock a 2-byte frame takes 80 cycles; layer 0 needs 8·16 + 3 = 131 per step.
    with pytest.raises(TangentcoreError, match="slowest layer of slow takes 131 cycles per time step"):
        build_board(network, design="slow", board="icebreaker", out_root=tmp_path, baud=3_000_000,
                    cycles_per_inference=network.initiation_interval_cycles)
    assert not (tmp_path / "slow").exists()
    Fragment.get(network, None)  # elaborated here only so that Amaranth does not warn it was never used


def test_unknown_board_rejected():
    with pytest.raises(TangentcoreError, match="board must be one of icebreaker, ulx3s, not 'nexys'"):
        toolchain_missing("nexys")


# Yosys 0.70's statistics of an iCE40 design whose cells count as submodules: each module's local
# count, then the design's total.
YOSYS_STATISTICS = """
2.50. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
       39 cells
       23   SB_RAM40_4K
      228   SB_DFF
      250   SB_DFFE
     3365   SB_LUT4

=== design hierarchy ===

        +----------Count including submodules.
        |
       39 cells
       23   SB_RAM40_4K
      228   SB_DFF
      250   SB_DFFE
     3365   SB_LUT4

2.51. Executing CHECK pass (checking for obvious problems).
"""


def test_flip_flops_counted_once():
    assert _flip_flops(YOSYS_STATISTICS) == 478
