"""Writing a file so that it appears whole or not at all.

The bytes go to a hidden temporary file in the target's own folder, optionally
fsynced, which is then renamed over the target: rename(2) within one file system
is atomic, so a reader sees the old file or the new one, never part of it. A
failure removes the temporary file; a process killed meanwhile leaves only a
hidden ``.<prefix>*.part`` behind, never a partial file under the final name.
With ``fsync``, the folder is fsynced after the rename as well, so that the new
name survives a power cut too (POSIX leaves a rename durable only then).
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

from dicomfast.errors import TruncatedDataError

__all__ = ["FileRange", "fsync_folder", "write_chunks", "write_file"]

# copy_file_range(2) refuses some pairs of files (across file systems before Linux
# 5.3 and again since 5.19 between different kinds, or on file systems without it):
# those are copied through user memory instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}
_COPY_CHUNK = 1 << 20
_IOV_MAX = 1024  # POSIX's minimum for writev(2)'s count, Linux's value


class FileRange(NamedTuple):
    """A chunk that is `length` bytes of the open file `fd` from `offset`: written by
    copying file to file in the kernel (copy_file_range(2)), so that the bytes never
    pass through this process's memory, and are not copied at all where the file
    system shares extents (XFS, Btrfs). `name` is for the error a short file raises."""

    fd: int
    offset: int
    length: int
    name: str = "the source file"


def write_file(path: str | os.PathLike, chunks: Iterable[Any], *, fsync: bool = False,
               prefix: str = ".dicomfast-", per_thread: bool = False) -> None:
    """Write `chunks` (bytes-like objects and :class:`FileRange` pieces, in order) as
    the file `path`, atomically; with `fsync`, durably.

    With `per_thread`, for batches: the hidden name is ``.NAME.PID-THREAD.part``
    next to the target, which no other writer uses at the same time, so it is
    opened without mkstemp's random names and retries; and the target's folder is
    made when it is missing (found by the open failing: not checked per file)."""
    folder = os.path.dirname(os.path.abspath(path))
    if per_thread:
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}-"
                                   f"{threading.get_ident()}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    try:
        try:
            write_chunks(fd, chunks)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync:
        fsync_folder(folder)


def write_chunks(fd: int, chunks: Iterable[Any]) -> None:
    """Write `chunks` in order to the open file `fd`: bytes-like objects, gathered into
    one writev(2) where they follow each other, and :class:`FileRange` pieces of
    other files."""
    pending: list[Any] = []
    for chunk in chunks:
        if type(chunk) is FileRange:
            _write_all(fd, pending)
            pending = []
            _copy_range(chunk, fd)
        elif len(chunk):
            pending.append(chunk)
    _write_all(fd, pending)


def _write_all(fd: int, buffers: list[Any]) -> None:
    while buffers:
        batch = buffers[:_IOV_MAX]
        done = os.writev(fd, batch)
        # A regular file takes everything at once unless the disk is full or a
        # signal interrupts; what a short write left is written again.
        for k, buf in enumerate(batch):
            size = len(buf) if type(buf) is not memoryview else buf.nbytes
            if done < size:
                buffers = [memoryview(buf).cast("B")[done:], *batch[k + 1:],
                           *buffers[len(batch):]]
                break
            done -= size
        else:
            buffers = buffers[len(batch):]


def _copy_range(piece: FileRange, fd: int) -> None:
    offset, left = piece.offset, piece.length
    kernel = hasattr(os, "copy_file_range")
    while left:
        if kernel:
            try:
                n = os.copy_file_range(piece.fd, fd, left, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel = False
                continue
        else:
            data = os.pread(piece.fd, min(left, _COPY_CHUNK), offset)
            n = len(data)
            _write_all(fd, [data])
        if n == 0:
            raise TruncatedDataError(
                f"{piece.name} ends before the {piece.length} bytes from byte "
                f"{piece.offset} on were copied (cut meanwhile?)", offset=offset)
        offset += n
        left -= n


def fsync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder: makes the names created, renamed or removed in it durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
