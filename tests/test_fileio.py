"""The native whole-file and head reads, against plain Python reads of the same files."""

from __future__ import annotations

import pytest
from corpus import all_files

from dicomfast._native import _fileio


def test_heads_equal_python_reads(tmp_path):
    files = [str(p) for p in all_files()[:50]]
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    missing = str(tmp_path / "missing.dcm")
    paths = files + [str(empty), missing, str(tmp_path)]
    got = _fileio.read_heads(paths, 4096)
    assert len(got) == len(paths)
    for path, head in zip(files, got[:len(files)], strict=True):
        with open(path, "rb") as f:
            data = f.read()
        assert head == (data[:4096], len(data))
        assert _fileio.read_head(path, 4096) == head
        assert _fileio.read_head(path, 1 << 40) == (data, len(data))
        assert _fileio.read_small_file(path) == data
    # Not a plain file with bytes: left to the caller. A missing one: its error.
    assert got[-3] is None and got[-1] is None
    assert isinstance(got[-2], FileNotFoundError) and got[-2].filename == missing
    with pytest.raises(FileNotFoundError):
        _fileio.read_head(missing, 10)
    with pytest.raises(ValueError):
        _fileio.read_heads(files, 0)
    assert _fileio.read_heads([], 10) == []

