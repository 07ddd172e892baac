"""Group commit of received objects (dicomfast.net.services.durable): the native
batch and the Python one leave the same files, fail the same way, and the
committer thread reports every job on its own event loop."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from dicomfast import unnamed
from dicomfast.net.services import durable
from dicomfast.net.services.durable import Committer, Job, commit_batch_py

NATIVE = durable._durable is not None and durable._durable.available


def _open_fds() -> set[int]:
    """The descriptors open now (the listing's own, closed by then, left out). Tests
    look for descriptors a call left open that were not open before: comparing
    counts would also see an earlier test's object closing its file meanwhile."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue
        fds.add(int(name))
    return fds


def _folder(tmp_path, name: str) -> tuple[str, int]:
    folder = tmp_path / name
    folder.mkdir()
    if not unnamed.supported(str(folder)):
        pytest.skip("this file system or kernel has no O_TMPFILE")
    return str(folder), os.open(folder, os.O_RDONLY)


def _jobs(folder: str) -> tuple[list[Job], dict[str, bytes]]:
    """Three objects: one not started, one half written already (by a writer thread,
    as a large object is), one of a name that exists and is replaced."""
    head, body = b"HEAD" * 33, os.urandom(300_000)
    started = unnamed.open_unnamed(folder)
    os.pwrite(started, head + body[:1000], 0)
    with open(os.path.join(folder, "3.dcm"), "wb") as f:
        f.write(b"old contents")
    jobs = [Job(-1, [head, memoryview(body)], 0, "1.dcm"),
            Job(started, [memoryview(body)[1000:], b""], len(head) + 1000, "2.dcm"),
            Job(-1, [b"new", bytearray(b" contents")], 0, "3.dcm")]
    return jobs, {"1.dcm": head + body, "2.dcm": head + body, "3.dcm": b"new contents"}


def _commit(kind: str, jobs: list[Job], folder: str, dir_fd: int) -> None:
    if kind == "native":
        if not NATIVE:
            pytest.skip("the native group commit is built on Linux only")
        durable._durable.commit_batch(jobs, dir_fd, True)
    else:
        commit_batch_py(jobs, folder, dir_fd, True, True)


@pytest.mark.parametrize("kind", ["native", "python"])
def test_batch_leaves_whole_files_under_their_names(tmp_path, kind):
    folder, dir_fd = _folder(tmp_path, kind)
    old_inode = None
    try:
        jobs, expected = _jobs(folder)
        old_inode = os.stat(os.path.join(folder, "3.dcm")).st_ino
        started = jobs[1].fd
        before = _open_fds()
        _commit(kind, jobs, folder, dir_fd)
        after = _open_fds()
        assert not after - before and started not in after   # the started file's, closed
    finally:
        os.close(dir_fd)
    assert [job.error for job in jobs] == [0, 0, 0]
    assert all(job.fd == -1 for job in jobs)
    assert sorted(os.listdir(folder)) == sorted(expected)   # no spare name left over
    for name, data in expected.items():
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            assert f.read() == data
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(folder, "3.dcm")).st_ino != old_inode


@pytest.mark.parametrize("kind", ["native", "python"])
def test_one_failure_costs_only_its_own_object(tmp_path, kind):
    folder, dir_fd = _folder(tmp_path, kind)
    try:
        jobs = [Job(-1, [b"a"], 0, "1.dcm"),
                Job(-1, [b"b"], 0, os.path.join("missing", "2.dcm")),  # ENOENT at link
                Job(-1, [b"c"], 0, "3.dcm")]
        before = _open_fds()
        _commit(kind, jobs, folder, dir_fd)
        assert not _open_fds() - before
    finally:
        os.close(dir_fd)
    assert [job.error for job in jobs] == [0, errno.ENOENT, 0]
    assert sorted(os.listdir(folder)) == ["1.dcm", "3.dcm"]


def test_native_refuses_named_temporary_files(tmp_path):
    if not NATIVE:
        pytest.skip("the native group commit is built on Linux only")
    with pytest.raises(ValueError):
        durable._durable.commit_batch([Job(-1, [], 0, "x.dcm", tmp="x.part")], -1, True)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_committer_reports_each_job_on_its_loop(tmp_path, native, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    monkeypatch.setattr(durable, "MAX_BATCH", 4)
    committer = Committer(str(folder), native=native)
    assert committer.native == (native and NATIVE and committer.unnamed_files)
    sizes: list[int] = []
    commit = committer._commit

    def counted(jobs: list[Job]) -> None:
        sizes.append(len(jobs))
        commit(jobs)

    committer._commit = counted  # type: ignore[method-assign]

    async def main() -> list[Job]:
        loop = asyncio.get_running_loop()
        futures = []
        for i in range(40):
            fut = loop.create_future()
            job = Job(-1, [f"object {i}".encode()], 0, f"{i}.dcm")
            committer.submit(job, loop, fut.set_result)
            futures.append(fut)
        # A chunk that is no buffer fails its batch, and the thread goes on.
        bad = loop.create_future()
        committer.submit(Job(-1, [12345], 0, "bad.dcm"), loop, bad.set_result)
        done = await asyncio.gather(*futures, bad)
        good = loop.create_future()
        committer.submit(Job(-1, [b"after"], 0, "after.dcm"), loop, good.set_result)
        return [*done, await good]

    try:
        jobs = asyncio.run(main())
    finally:
        committer.close()
    assert sum(sizes) == 42 and max(sizes) <= 4   # every job, in batches of at most 4
    bad, after = jobs[-2], jobs[-1]
    assert bad.error == errno.EIO and bad.fd == -1 and after.error == 0
    for i, job in enumerate(jobs[:40]):
        # Jobs batched with the bad one share its fate; the others are stored.
        path = folder / f"{i}.dcm"
        assert (job.error == 0) == path.exists()
        if job.error == 0:
            assert path.read_bytes() == f"object {i}".encode()
    assert (folder / "after.dcm").read_bytes() == b"after"
    assert not (folder / "bad.dcm").exists()
    assert not [n for n in os.listdir(folder) if n.startswith(".")]


# -- direct I/O ------------------------------------------------------------------------------

def _resident_pages(path: str) -> list[bool]:
    """Which pages of `path` are in the page cache (mincore(2) on a private mapping,
    which reports the file's own pages until they are written to)."""
    import ctypes
    import mmap

    size = os.path.getsize(path)
    if size == 0:
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vec = (ctypes.c_ubyte * pages)()
        anchor = ctypes.c_char.from_buffer(m)
        try:
            rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)),
                              ctypes.c_size_t(size), vec)
        finally:
            del anchor
        assert rc == 0, os.strerror(ctypes.get_errno())
        return [bool(v & 1) for v in vec]
    finally:
        m.close()


# Sizes around the 4 KiB blocks direct I/O writes whole, and one larger than the
# staging buffer (written buffered).
_DIRECT_SIZES = [0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 60_000, 200_000]
_STAGE = 128 << 10


def test_direct_io_leaves_every_size_exact(tmp_path):
    """Whole objects written through the staging buffer (create_whole), split into
    chunks at odd places, committed beside an object a writer thread has started
    (buffered, at its offset): every file is its bytes exactly, and the staged ones
    never went through the page cache."""
    import mmap

    if not NATIVE:
        pytest.skip("the native group commit is built on Linux only")
    folder, dir_fd = _folder(tmp_path, "direct")
    if not durable.direct_io_supported(folder):
        os.close(dir_fd)
        pytest.skip("this file system has no direct I/O (O_DIRECT)")
    expected = {}
    jobs = []
    for size in _DIRECT_SIZES:
        data = os.urandom(size)
        cuts = [0, size // 3, size // 3 + 1, size - 5, size]
        cuts = sorted({min(max(c, 0), size) for c in cuts})
        chunks = [memoryview(data)[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        jobs.append(Job(-1, chunks, 0, f"{size}.dcm"))
        expected[f"{size}.dcm"] = data
    started = unnamed.open_unnamed(folder)
    os.pwrite(started, b"x" * 5000, 0)
    stage = mmap.mmap(-1, _STAGE)
    try:
        before = _open_fds()
        for job in jobs:
            job.fd = durable._durable.create_whole(dir_fd, job.chunks, stage)
            job.chunks = []
        jobs.append(Job(started, [b"y" * 3000], 5000, "started.dcm"))
        expected["started.dcm"] = b"x" * 5000 + b"y" * 3000
        durable._durable.commit_batch(jobs, dir_fd, True)
        after = _open_fds()
        assert not after - before and started not in after
        with pytest.raises(OSError):   # a bad folder: nothing is left open
            durable._durable.create_whole(-1, [b"z" * 10_000], stage)
        assert not _open_fds() - after
    finally:
        os.close(dir_fd)
        stage.close()
    assert [job.error for job in jobs] == [0] * len(jobs)
    assert sorted(os.listdir(folder)) == sorted(expected)
    for size in _DIRECT_SIZES:   # before anything reads the files back
        whole_blocks = size // 4096 if size <= _STAGE else 0
        resident = _resident_pages(os.path.join(folder, f"{size}.dcm"))
        assert not any(resident[:whole_blocks]), size   # written past the page cache
        if size > _STAGE:
            assert all(resident), size   # too large to stage: buffered, like the rest
    for name, data in expected.items():
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            assert f.read() == data, name
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_buffered_commit_fills_the_page_cache(tmp_path):
    """The control for the test above: the commit writes through the page cache (so
    mincore does see written pages)."""
    if not NATIVE:
        pytest.skip("the native group commit is built on Linux only")
    folder, dir_fd = _folder(tmp_path, "buffered")
    data = os.urandom(60_000)
    try:
        durable._durable.commit_batch([Job(-1, [data], 0, "a.dcm")], dir_fd, True)
    finally:
        os.close(dir_fd)
    assert all(_resident_pages(os.path.join(folder, "a.dcm")))


@pytest.mark.parametrize("direct_io", [True, False])
def test_committer_direct_io_option(tmp_path, direct_io):
    committer = Committer(str(tmp_path), direct_io=direct_io)
    try:
        assert committer.direct_io == (direct_io and committer.native
                                       and durable.direct_io_supported(str(tmp_path)))

        async def main() -> Job:
            fut = asyncio.get_running_loop().create_future()
            committer.submit(Job(-1, [b"z" * 10_000], 0, "z.dcm"), asyncio.get_running_loop(),
                             fut.set_result)
            return await fut

        job = asyncio.run(main())
    finally:
        committer.close()
    assert job.error == 0 and (tmp_path / "z.dcm").read_bytes() == b"z" * 10_000


def test_writer_sends_whole_objects_past_the_page_cache(tmp_path, monkeypatch):
    """With direct I/O, whole objects go through the writer thread (direct I/O, no
    page cache) before the commit; one larger than the staging buffer, or one
    already started by a writer thread of the SCP, is written by the committer."""
    monkeypatch.setattr(durable, "DIRECT_STAGE", 64 << 10)
    committer = Committer(str(tmp_path))
    if not committer.direct_io:   # not Linux, or a file system without O_DIRECT
        committer.close()
        pytest.skip("no native group commit with direct I/O here")
    sizes = [1, 4096, 60_001, 100_000]
    data = {size: os.urandom(size) for size in sizes}
    started = unnamed.open_unnamed(str(tmp_path))
    os.pwrite(started, b"s" * 9000, 0)

    async def main() -> list[Job]:
        loop = asyncio.get_running_loop()
        futures = []
        jobs = [Job(-1, [d[:3], memoryview(d)[3:]], 0, f"{n}.dcm") for n, d in data.items()]
        jobs.append(Job(started, [b"t" * 100], 9000, "started.dcm"))
        for job in jobs:
            fut = loop.create_future()
            committer.submit(job, loop, fut.set_result)
            futures.append(fut)
        return await asyncio.gather(*futures)

    try:
        jobs = asyncio.run(main())
    finally:
        committer.close()
    assert [job.error for job in jobs] == [0] * len(jobs)
    for size in sizes:   # before anything reads the files back
        resident = _resident_pages(str(tmp_path / f"{size}.dcm"))
        if size <= 64 << 10:
            assert not any(resident[:size // 4096]), size
        else:
            assert all(resident), size
    for size, d in data.items():
        assert (tmp_path / f"{size}.dcm").read_bytes() == d
    assert (tmp_path / "started.dcm").read_bytes() == b"s" * 9000 + b"t" * 100
