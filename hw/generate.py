"""Emit Verilog, RTLIL and a JSON description of a network core."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil, verilog

from tangentcore.fileio import write_atomic
from tangentcore.hw.layers import Folding
from tangentcore.hw.network import Network, resolve_foldings
from tangentcore.manifest import Manifest

__all__ = ["GeneratedCore", "generate_core", "TOP_NAME"]

TOP_NAME = "tangentcore_net"


@dataclass(frozen=True)
class GeneratedCore:
    """Paths of a generated core and its description."""

    verilog: Path
    rtlil: Path
    description_path: Path
    description: dict


def generate_core(manifest: Manifest, out_dir: str | Path, fold=None, foldings: list[Folding] | None = None,
                  *, weight_storage: str = "auto") -> GeneratedCore:
    """Build the core for ``manifest`` and write ``<TOP_NAME>.v``, ``.il`` and ``core.json`` into ``out_dir``.

    ``fold`` is what :func:`~tangentcore.hw.network.resolve_foldings` takes
    (None for automatic, one ``(PE, SIMD)`` pair, or one pair per layer);
    ``foldings`` overrides it. ``weight_storage`` (``"auto"``, ``"rom"`` or
    ``"bram"``) applies to every layer. ``core.json`` is
    :meth:`~tangentcore.hw.network.Network.describe` plus the top module's
    name and the size of the Verilog.
    """
    out_dir = Path(out_dir)
    if foldings is None:
        foldings = resolve_foldings(manifest, fold)
    # Verilog and RTLIL each elaborate their own instance: a component is elaborated once per conversion.
    top = Network.from_manifest(manifest, foldings, weight_storage=weight_storage)
    verilog_text = verilog.convert(top, name=TOP_NAME, emit_src=False)
    rtlil_text = rtlil.convert(Network.from_manifest(manifest, foldings, weight_storage=weight_storage),
                               name=TOP_NAME, emit_src=False)
    description = {"top": TOP_NAME, **top.describe(), "verilog_bytes": len(verilog_text.encode("utf-8"))}
    paths = GeneratedCore(
        verilog=out_dir / f"{TOP_NAME}.v",
        rtlil=out_dir / f"{TOP_NAME}.il",
        description_path=out_dir / "core.json",
        description=description,
    )
    write_atomic(paths.verilog, verilog_text)
    write_atomic(paths.rtlil, rtlil_text)
    write_atomic(paths.description_path, json.dumps(description, indent=2) + "\n")
    return paths
