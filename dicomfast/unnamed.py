"""Files that have no name until they are whole (Linux O_TMPFILE).

A file written under a temporary name (``.dicomfast-*.part``) and renamed when
whole outlives a SIGKILL or a power cut if the process dies first, and nothing
ever removes it. Opened with O_TMPFILE instead, it is an inode without a
directory entry: the kernel frees it when the last descriptor closes, however the
process ends, and linkat(2) gives it its final name once it is complete (and
synced, where asked), as a rename would (open(2), "O_TMPFILE"). It is also one
change to the folder instead of two. The storage SCP streams objects into such
files, and :func:`dicomfast.atomic.write_file` writes its files so.

Linking goes through /proc/self/fd with AT_SYMLINK_FOLLOW, which needs no
privilege (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH). Where the folder's file
system, the kernel or a missing /proc does not allow this, ``supported`` says so
once, and callers fall back to named temporary files and rename.
"""

from __future__ import annotations

import errno
import os
import secrets

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)


#: What open(2) says where a file system or kernel has no O_TMPFILE (kernels before
#: 3.11 take the flag for O_DIRECTORY: EISDIR).
UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})


def open_unnamed(folder: str, mode: int = 0o600) -> int:
    """A write-only descriptor to a new file in `folder` that has no name yet."""
    return os.open(folder, _O_TMPFILE | os.O_WRONLY, mode)


def usable() -> bool:
    """Whether this process can link unnamed files in at all (Linux, /proc mounted);
    each file system says for itself when open_unnamed is tried there."""
    return bool(_O_TMPFILE) and os.path.isdir("/proc/self/fd")


def link(fd: int, dir_fd: int | None, name: str) -> None:
    """Give the unnamed file `fd` the name `name` in the folder `dir_fd` (None: `name`
    is a path).

    FileExistsError when the name is taken (linkat never replaces)."""
    # A directory descriptor makes Python call linkat(2), with AT_SYMLINK_FOLLOW,
    # rather than link(2), which would link the /proc symlink itself (EXDEV)
    # instead of the file it points to. Without a folder, the source's is given:
    # the source path is absolute, so the kernel ignores it.
    source = f"/proc/self/fd/{fd}"
    if dir_fd is None:
        os.link(source, name, src_dir_fd=fd, follow_symlinks=True)
    else:
        os.link(source, name, dst_dir_fd=dir_fd, follow_symlinks=True)


def link_replacing(fd: int, dir_fd: int | None, name: str, spare: str) -> None:
    """As `link`, replacing whatever `name` is now, atomically: linked under the free
    hidden name `spare` first, then renamed over it. Only the moment between the two
    calls can leave `spare` behind."""
    try:
        link(fd, dir_fd, name)
        return
    except FileExistsError:
        pass
    link(fd, dir_fd, spare)
    try:
        os.replace(spare, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(spare, dir_fd=dir_fd)
        raise


def supported(folder: str) -> bool:
    """Whether `folder` takes unnamed files and /proc links them in: tried once with
    an empty file that is linked, then removed."""
    if not usable():
        return False
    try:
        fd = open_unnamed(folder)
    except OSError:   # EOPNOTSUPP, EISDIR (kernels before 3.11), EINVAL
        return False
    dir_fd = -1
    probe = f".dicomfast-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        link(fd, dir_fd, probe)
        os.unlink(probe, dir_fd=dir_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        if dir_fd >= 0:
            os.close(dir_fd)
