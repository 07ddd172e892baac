"""dicomfast.atomic: a file appears whole or not at all."""

from __future__ import annotations

import os

import pytest

from dicomfast.atomic import write_file


def test_writes_the_chunks_and_replaces_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    write_file(target, [b"ab", bytearray(b"cd"), memoryview(b"ef")])
    assert target.read_bytes() == b"abcdef"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failure_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def chunks():
        yield b"new bytes, half written"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_file(target, chunks())
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(TypeError):
        write_file(tmp_path / "other.bin", [b"x", 42])
    assert os.listdir(tmp_path) == ["out.bin"]


def test_fsync_syncs_the_file_then_its_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd")
                      else None)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_file(tmp_path / "a.bin", [b"x"], fsync=True)
    write_file(tmp_path / "b.bin", [b"y"])
    assert len(synced) == 2
    if synced[0] is not None:
        assert synced == [False, True]   # the file, then the folder
    assert (tmp_path / "a.bin").read_bytes() == b"x"


def test_per_thread_names_make_the_folder_and_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "new" / "folder" / "out.bin"
    write_file(target, [b"ab", b"cd"], per_thread=True)
    assert target.read_bytes() == b"abcd"
    assert os.listdir(target.parent) == ["out.bin"]

    seen = []

    def chunks():
        yield b"new bytes"
        seen.extend(os.listdir(target.parent))
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_file(target, chunks(), per_thread=True)
    import threading

    part = f".out.bin.{os.getpid()}-{threading.get_ident()}.part"
    assert sorted(seen) == sorted(["out.bin", part])  # the hidden name, next to the target
    assert target.read_bytes() == b"abcd"
    assert os.listdir(target.parent) == ["out.bin"]
