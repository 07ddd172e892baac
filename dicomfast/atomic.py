"""Writing a file so that it appears whole or not at all.

Where the file system allows (Linux O_TMPFILE: ext4, XFS, Btrfs, tmpfs), the bytes
go to a file in the target's folder that has no name yet, optionally fsynced,
which is then linked in under the target's name (:mod:`dicomfast.unnamed`): a
process killed meanwhile leaves nothing behind, and it is one change to the
folder where a rename takes two (10 to 15 us less per file here). Elsewhere they
go to a hidden temporary file, renamed over the target when whole. Either way a
reader sees the old file or the new one, never part of it, and a failure leaves
no trace; a killed process can leave only a hidden ``.<prefix>*.part`` behind,
never a partial file under the final name. With ``fsync``, the folder is fsynced
after the name is made as well, so that it survives a power cut too (POSIX
leaves a rename durable only then).
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from dicomfast import unnamed
from dicomfast.errors import TruncatedDataError

__all__ = ["FileRange", "fsync_folder", "write_chunks", "write_file"]

# copy_file_range(2) refuses some pairs of files (across file systems before Linux
# 5.3 and again since 5.19 between different kinds, or on file systems without it):
# those are copied through user memory instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}
_COPY_CHUNK = 1 << 20
_IOV_MAX = 1024  # POSIX's minimum for writev(2)'s count, Linux's value
# Whether files are made without a name first; turned off for the process if
# linking one in is refused (a sandbox, a security module).
_unnamed = unnamed.usable()
_LINK_REFUSED = {errno.EPERM, errno.EACCES, errno.ENOENT, errno.EXDEV, errno.ENOSYS,
                 errno.EOPNOTSUPP}


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

    With `per_thread`, for batches: the target's folder is made when it is missing
    (found by the open failing: not checked per file), the file's mode is the
    usual 0o666 less the umask (else 0o600), and a hidden name, where one is
    needed, is ``.NAME.PID-THREAD.part`` next to the target, which no other writer
    uses at the same time, so it is opened without mkstemp's random names and
    retries."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if type(chunks) is not list:
        chunks = list(chunks)  # a second try, with a name, writes them again
    if _unnamed and _write_unnamed(path, folder, chunks, fsync, per_thread, prefix):
        return
    if per_thread:
        tmp = _hidden_name(path, folder, per_thread, prefix)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        fd = _create(lambda: os.open(tmp, flags, 0o666), folder, per_thread)
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


def _hidden_name(path: str, folder: str, per_thread: bool, prefix: str) -> str:
    if per_thread:
        return os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}-"
                                    f"{threading.get_ident()}.part")
    return os.path.join(folder, f"{prefix}{secrets.token_hex(8)}.part")


def _create(opener: Callable[[], int], folder: str, make_folder: bool) -> int:
    try:
        return opener()
    except FileNotFoundError:
        if not make_folder:
            raise
        os.makedirs(folder, exist_ok=True)
        return opener()


def _write_unnamed(path: str, folder: str, chunks: list[Any], fsync: bool,
                   per_thread: bool, prefix: str) -> bool:
    """write_file through a file without a name; False where that cannot be done
    (nothing written then)."""
    global _unnamed
    try:
        fd = _create(lambda: unnamed.open_unnamed(folder, 0o666 if per_thread else 0o600),
                     folder, per_thread)
    except OSError as exc:
        if exc.errno in unnamed.UNSUPPORTED:
            return False  # this file system: named files
        raise
    try:
        write_chunks(fd, chunks)
        if fsync:
            os.fsync(fd)
        try:
            unnamed.link_replacing(fd, None, path, _hidden_name(path, folder, per_thread, prefix))
        except OSError as exc:
            if exc.errno not in _LINK_REFUSED:
                raise
            _unnamed = False
            return False
    finally:
        os.close(fd)
    if fsync:
        fsync_folder(folder)
    return True


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
