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

import os
import tempfile
from collections.abc import Iterable
from typing import Any

__all__ = ["fsync_folder", "write_file"]


def write_file(path: str | os.PathLike, chunks: Iterable[Any], *, fsync: bool = False,
               prefix: str = ".dicomfast-") -> None:
    """Write `chunks` (bytes-like objects, in order) as the file `path`, atomically;
    with `fsync`, durably."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync:
        fsync_folder(folder)


def fsync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder: makes the names created, renamed or removed in it durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
