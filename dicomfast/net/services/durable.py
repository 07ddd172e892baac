"""Making received objects durable in groups (group commit).

A storage SCP may acknowledge an object only once it is on disk under its final
name: the file written and fsynced, linked (or renamed) into the folder, the
folder fsynced (POSIX; PS3.4 §B.2.3 asks only that a Success mean "stored"). Done
one object at a time, each of those steps hands the object between threads and
waits for its own journal commit.

Here one thread, the committer, takes every object that is complete at that moment
as one batch:

1. write what is left of each file, and start its writeback (Linux
   ``sync_file_range``), so the file system allocates all of them in one journal
   transaction;
2. fsync each file: the first waits for that transaction, the others mostly find
   their inode already committed;
3. give each its final name;
4. fsync the folder once for the whole batch.

Then each object's callback runs on its own event loop, one wake-up per loop and
batch. While a batch is being synced the next objects are received, so under load
batches grow by themselves and the cost per object falls.

The native version (``dicomfast._native._durable``) makes the system calls of a
whole batch in one stretch without the GIL. With it, a writer thread ahead of the
committer writes each whole object that is still in memory (every object smaller
than the SCP's flush size) by direct I/O, past the page cache (``direct_io``, on
by default; see ``_durable`` for why). :func:`commit_batch_py` is the same
sequence in Python, buffered, used where the native one is missing and as its
test oracle.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import mmap
import os
import queue
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dicomfast import unnamed

try:
    from dicomfast._native import _durable  # (a package import: the layering linter sees it)
except ImportError:  # not built, or not Linux
    _durable = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_PWRITEV = getattr(os, "pwritev", None)
_IOV_MAX = 512


# Spare names (for replacing an existing file atomically) are a random prefix drawn
# once per process, and a counter: unique without a system call per object.
_spare_prefix = ""
_spare_count = itertools.count()


def _new_spare_prefix() -> None:
    global _spare_prefix
    _spare_prefix = f".dicomfast-{secrets.token_hex(6)}-"


_new_spare_prefix()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_spare_prefix)


def _spare_name() -> str:
    return f"{_spare_prefix}{next(_spare_count)}.part"


@dataclass(eq=False)
class Job:
    """One object to make durable as `name` in the committer's folder.

    ``fd``: its file, or -1 when nothing has been written yet (the committer creates
    it). ``chunks`` are still to be written at ``offset``. ``tmp``: the path of a
    named temporary file (where unnamed files are not available), renamed rather than
    linked. After the commit, ``error`` is 0 (durable) or the errno that stopped it,
    and the file descriptor is closed either way."""
    fd: int
    chunks: list[Any]
    offset: int
    name: str
    tmp: str = ""
    error: int = 0
    spare: str = field(default_factory=lambda: _spare_name())


def write_all(fd: int, chunks: list[Any], offset: int) -> None:
    """Write `chunks` at `offset`, whatever partial writes the kernel makes."""
    views = [memoryview(c).cast("B") for c in chunks if len(c)]
    while views:
        if _PWRITEV is not None:
            n = _PWRITEV(fd, views[:_IOV_MAX], offset)
        else:
            n = os.pwrite(fd, views[0], offset)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


def create_file(folder: str, unnamed_files: bool) -> tuple[int, str]:
    """A new file for an object in `folder`: (descriptor, "") for an unnamed one, or
    (descriptor, name) of a hidden named temporary file."""
    if unnamed_files:
        return unnamed.open_unnamed(folder), ""
    fd, path = tempfile.mkstemp(prefix=".dicomfast-", suffix=".part", dir=folder)
    return fd, os.path.basename(path)


def close_quietly(fd: int) -> None:
    """Close a descriptor whose object is given up: an error closing it changes nothing."""
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def unlink_quietly(path: str) -> None:
    """Remove a temporary file that may already be gone."""
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def _close(job: Job) -> None:
    close_quietly(job.fd)
    job.fd = -1


def _fail(job: Job, exc: OSError, folder: str) -> None:
    job.error = exc.errno or errno.EIO
    _close(job)
    if job.tmp:
        unlink_quietly(os.path.join(folder, job.tmp))
        job.tmp = ""


def commit_batch_py(jobs: list[Job], folder: str, dir_fd: int, unnamed_files: bool,
                    fsync: bool) -> None:
    """The commit sequence for `jobs` (see the module docstring), in Python.

    `dir_fd` is an open descriptor of `folder`; `unnamed_files`: create missing files
    with O_TMPFILE and link them, rather than as named temporary files."""
    live = []
    for job in jobs:
        try:
            if job.fd < 0:
                job.fd, job.tmp = create_file(folder, unnamed_files)
            write_all(job.fd, job.chunks, job.offset)
            live.append(job)
        except OSError as exc:
            _fail(job, exc, folder)
    for job in live:
        try:
            if fsync:
                os.fsync(job.fd)
            if job.tmp:
                os.replace(job.tmp, job.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                job.tmp = ""
            else:
                unnamed.link_replacing(job.fd, dir_fd, job.name, job.spare)
            _close(job)
        except OSError as exc:
            _fail(job, exc, folder)
    if fsync and any(job.error == 0 for job in jobs):
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            for job in jobs:
                if job.error == 0:
                    job.error = exc.errno or errno.EIO


#: Objects per batch at most: a batch holds a file descriptor for each of its objects
#: at once, and 64 associations with full operations windows would otherwise ask for
#: a thousand. The rest wait for the next batch.
MAX_BATCH = 64

#: Whole objects up to this size are written by direct I/O (by the writer thread); a
#: storage SCP hands the committer at most its flush size plus one PDU of data.
DIRECT_STAGE = 4 << 20

#: The callback a submitter gets once its job is done (on its own event loop).
Done = Callable[[Job], None]


class Committer:
    """The threads that make jobs durable, for one folder: the committer, which
    commits batches (see the module docstring), and with direct I/O a writer ahead
    of it, which writes each whole object that is still in memory to a new file by
    direct I/O as soon as it is submitted, so that its device write overlaps the
    sync of the batch before it. A job goes from the writer to the committer
    directly, without passing through the submitter's event loop."""

    def __init__(self, folder: str, *, fsync: bool = True, native: bool = True,
                 direct_io: bool = True):
        self.folder = folder
        self.fsync = fsync
        self.unnamed_files = unnamed.supported(folder)
        self.dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        use_native = (native and _durable is not None and _durable.available
                      and self.unnamed_files)
        self._commit = self._native if use_native else self._python
        self._direct_io = use_native and direct_io and direct_io_supported(folder)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()    # to the committer
        self._writes: queue.SimpleQueue = queue.SimpleQueue()   # to the writer
        self._thread: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def native(self) -> bool:
        return self._commit == self._native

    @property
    def direct_io(self) -> bool:
        return self._direct_io

    def _native(self, jobs: list[Job]) -> None:
        _durable.commit_batch(jobs, self.dir_fd, self.fsync)

    def _python(self, jobs: list[Job]) -> None:
        commit_batch_py(jobs, self.folder, self.dir_fd, self.unnamed_files, self.fsync)

    def submit(self, job: Job, loop: asyncio.AbstractEventLoop, done: Done) -> None:
        """Commit `job`; `done(job)` then runs on `loop`."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    if self._direct_io:
                        self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                                        name="dicomfast-write")
                        self._writer.start()
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="dicomfast-commit")
                    self._thread.start()
        item = (job, loop, done)
        if self._direct_io and job.fd < 0 and job.offset == 0 and not job.tmp \
                and _size(job.chunks) <= DIRECT_STAGE:
            self._writes.put(item)
        else:
            self._queue.put(item)

    def _write_loop(self) -> None:
        # The staging buffer of direct I/O (see _durable): page-aligned, kept for the
        # thread's life so that its pages stay mapped; only touched as far as objects
        # fill it.
        stage = mmap.mmap(-1, DIRECT_STAGE)
        try:
            while True:
                item = self._writes.get()
                if item is None:
                    return
                job = item[0]
                try:
                    job.fd = _durable.create_whole(self.dir_fd, job.chunks, stage)
                    job.chunks = []
                except Exception as exc:  # OSError; MemoryError, a chunk that is no buffer
                    job.error = getattr(exc, "errno", None) or errno.EIO
                    self._report([item])
                    continue
                self._queue.put(item)
        finally:
            stage.close()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not None and len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None
            items = [item for item in batch if item is not None]
            if items:
                jobs = [job for job, _loop, _done in items]
                try:
                    self._commit(jobs)
                except Exception as exc:  # MemoryError, a chunk that is no buffer
                    for job in jobs:
                        if not job.error:
                            _fail(job, OSError(errno.EIO, str(exc)), self.folder)
                self._report(items)
            if stop:
                return

    @staticmethod
    def _report(items: list[tuple[Job, asyncio.AbstractEventLoop, Done]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Done, Job]]] = {}
        for job, loop, done in items:
            by_loop.setdefault(loop, []).append((done, job))
        for loop, calls in by_loop.items():
            try:
                loop.call_soon_threadsafe(_run_callbacks, calls)
            except RuntimeError:  # that loop is closed: nobody waits for an answer
                pass

    def close(self) -> None:
        """Finish what was submitted, then stop the threads and close the folder."""
        if self._writer is not None:
            self._writes.put(None)   # after every write, which go on to the committer
            self._writer.join()
            self._writer = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1


def direct_io_supported(folder: str) -> bool:
    """Whether `folder`'s file system takes direct I/O (O_DIRECT): tried once with an
    unnamed file, which vanishes when closed (Linux)."""
    tmpfile, direct = getattr(os, "O_TMPFILE", 0), getattr(os, "O_DIRECT", 0)
    if not (tmpfile and direct):
        return False
    try:
        fd = os.open(folder, tmpfile | direct | os.O_WRONLY, 0o600)
    except OSError:   # EINVAL: no direct I/O here; EISDIR, EOPNOTSUPP: no O_TMPFILE
        return False
    os.close(fd)
    return True


def _size(chunks: list[Any]) -> float:
    """Bytes in `chunks`; infinite when one is no buffer (the commit then fails it)."""
    try:
        return sum(memoryview(c).nbytes for c in chunks)
    except TypeError:
        return float("inf")


def _run_callbacks(calls: list[tuple[Done, Job]]) -> None:
    for done, job in calls:
        try:
            done(job)
        except Exception:  # a bug in one callback must not cost the others their answer
            log.exception("commit callback failed for %s", job.name)
