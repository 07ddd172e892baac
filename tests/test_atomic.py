"""dicomfast.atomic: a file appears whole or not at all."""

from __future__ import annotations

import os
import threading

import pytest

from dicomfast import atomic, unnamed
from dicomfast.atomic import FileRange, write_file
from dicomfast.errors import TruncatedDataError


@pytest.fixture(params=["unnamed", "named"])
def way(request, tmp_path, monkeypatch):
    """Both ways a file is held until whole: without a name (O_TMPFILE, linked in)
    and under a hidden name (renamed)."""
    if request.param == "unnamed" and not unnamed.supported(str(tmp_path)):
        pytest.skip("this file system or kernel has no O_TMPFILE")
    monkeypatch.setattr(atomic, "_unnamed", request.param == "unnamed")
    return request.param


def _failing_copy(seen, folder):
    """A _copy_range that notes the folder's names, then fails as a full disk does."""
    def copy(piece, fd):
        seen.extend(os.listdir(folder))
        raise OSError(28, "No space left on device")
    return copy


def test_writes_the_chunks_and_replaces_the_old_file(tmp_path, way):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    write_file(target, [b"ab", bytearray(b"cd"), memoryview(b"ef")])
    assert target.read_bytes() == b"abcdef"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failure_leaves_the_old_file_and_no_temporary_one(tmp_path, way):
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


def test_fsync_syncs_the_file_then_its_folder(tmp_path, monkeypatch, way):
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


def test_per_thread_names_make_the_folder_and_leave_nothing_on_failure(tmp_path, way,
                                                                       monkeypatch):
    target = tmp_path / "new" / "folder" / "out.bin"
    write_file(target, [b"ab", b"cd"], per_thread=True)
    assert target.read_bytes() == b"abcd"
    assert os.listdir(target.parent) == ["out.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    write_file(tmp_path / "plain.bin", [b"x"])
    assert (tmp_path / "plain.bin").stat().st_mode & 0o777 == 0o600

    seen: list[str] = []
    monkeypatch.setattr(atomic, "_copy_range", _failing_copy(seen, target.parent))
    with open(target, "rb") as source:
        with pytest.raises(OSError, match="No space"):
            write_file(target, [b"new bytes", FileRange(source.fileno(), 0, 4)],
                       per_thread=True)
    part = f".out.bin.{os.getpid()}-{threading.get_ident()}.part"
    # While it is written, the file has no name, or the hidden one next to the target.
    assert sorted(seen) == (["out.bin"] if way == "unnamed" else sorted(["out.bin", part]))
    assert target.read_bytes() == b"abcd"
    assert os.listdir(target.parent) == ["out.bin"]


def test_a_source_cut_short_is_an_error_and_writes_nothing(tmp_path, way):
    source = tmp_path / "source.bin"
    source.write_bytes(b"0123456789")
    with open(source, "rb") as f:
        write_file(tmp_path / "ok.bin", [b"<", FileRange(f.fileno(), 2, 8), b">"])
        with pytest.raises(TruncatedDataError, match="byte 4"):
            write_file(tmp_path / "cut.bin", [b"<", FileRange(f.fileno(), 4, 100)])
    assert (tmp_path / "ok.bin").read_bytes() == b"<23456789>"
    assert sorted(os.listdir(tmp_path)) == ["ok.bin", "source.bin"]


def test_a_refused_link_falls_back_to_named_files_for_good(tmp_path, monkeypatch):
    if not unnamed.supported(str(tmp_path)):
        pytest.skip("this file system or kernel has no O_TMPFILE")
    monkeypatch.setattr(atomic, "_unnamed", True)
    calls = []

    def refuse(fd, dir_fd, path):
        calls.append(path)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(unnamed, "link", refuse)
    write_file(tmp_path / "a.bin", [b"a"], per_thread=True)
    write_file(tmp_path / "b.bin", [b"b"])
    assert len(calls) == 1 and not atomic._unnamed  # tried once, then named files
    assert (tmp_path / "a.bin").read_bytes() == b"a"
    assert (tmp_path / "b.bin").read_bytes() == b"b"
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"]


def test_a_folder_in_the_way_is_an_error_and_leaves_nothing(tmp_path, way):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError):
        write_file(tmp_path / "taken", [b"x"])
    with pytest.raises(IsADirectoryError):
        write_file(tmp_path / "taken", [b"x"], per_thread=True)
    assert os.listdir(tmp_path) == ["taken"] and not os.listdir(tmp_path / "taken")
    assert atomic._unnamed == (way == "unnamed")  # a mistake of the caller's, not the way's
