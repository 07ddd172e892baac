"""Group commit of received objects (dicomfast.net.services.durable): the native
batch and the Python one leave the same files, fail the same way, and the
committer thread reports every job on its own event loop."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from dicomfast.net.services import durable, unnamed
from dicomfast.net.services.durable import Committer, Job, commit_batch_py

NATIVE = durable._durable is not None and durable._durable.available


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


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
        before = _open_fds()
        _commit(kind, jobs, folder, dir_fd)
        assert _open_fds() == before - 1   # the started file's descriptor, closed
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
        assert _open_fds() == before
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
