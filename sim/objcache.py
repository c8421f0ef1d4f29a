"""Reuse Verilator's runtime objects between builds.

Every Verilator model links the same runtime (``verilated.o``,
``verilated_vpi.o``, ``verilated_threads.o``, ``verilated_dpi.o``), which
does not depend on the design but takes most of the C++ build of a small
core. The runner's Verilator build restores these objects from a cache
folder before ``make`` and stores them after it; ``make`` then skips them
because each object is newer than its sources. The cache folder's name must
hold everything the objects depend on (Verilator version, compiler flags,
tracing); the runner derives it.

Run as ``python -m tangentcore.sim.objcache restore|store BUILD_DIR CACHE_DIR``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


def _files(folder: Path) -> list[Path]:
    return [folder / f"{name}{suffix}" for name in RUNTIME_OBJECTS for suffix in (".o", ".d")]


def restore(build_dir: Path, cache_dir: Path) -> int:
    """Copy the cached runtime objects into ``build_dir``, stamped now; return how many were copied."""
    cached = _files(cache_dir)
    if not all(path.exists() for path in cached):
        return 0
    for path in cached:
        target = build_dir / path.name
        shutil.copyfile(path, target)
        os.utime(target)
    return len(cached)


def store(build_dir: Path, cache_dir: Path) -> bool:
    """Copy the runtime objects of a finished build into ``cache_dir`` unless it has them; return whether it did."""
    built = _files(build_dir)
    if cache_dir.exists() or not all(path.exists() for path in built):
        return False
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
    for path in built:
        shutil.copyfile(path, staging / path.name)
    try:
        os.rename(staging, cache_dir)
    except OSError:
        # Another build stored the same objects first.
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("restore", "store"):
        print("usage: python -m tangentcore.sim.objcache restore|store BUILD_DIR CACHE_DIR", file=sys.stderr)
        return 2
    action, build_dir, cache_dir = argv[0], Path(argv[1]), Path(argv[2])
    if action == "restore":
        print(f"restored {restore(build_dir, cache_dir)} Verilator runtime files from {cache_dir}")
    else:
        print(f"stored Verilator runtime files in {cache_dir}: {store(build_dir, cache_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
