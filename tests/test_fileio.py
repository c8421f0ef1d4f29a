"""Atomic writes: content, replacement, permissions and no leftovers on failure."""

import stat

import pytest

from tangentcore.fileio import write_atomic


def test_write_atomic_replaces_readable_file(tmp_path):
    path = tmp_path / "out" / "summary.json"
    write_atomic(path, "first")
    write_atomic(path, b"second")
    assert path.read_text() == "second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_write_atomic_failure_leaves_no_temporary_file(tmp_path):
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "bad.json", 42)
    assert list(tmp_path.iterdir()) == []
