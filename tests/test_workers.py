"""The shared decode thread pool (dicomfast.pixels.workers): every item runs once, the
caller's thread takes part, errors stop the batch and come back, nesting and fork do
not deadlock."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from corpus import find

import dicomfast
from dicomfast.pixels import workers


def test_every_item_runs_once_and_on_several_threads():
    seen: list[int] = []
    names: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(k: int) -> None:
        if k < 2:
            barrier.wait()  # items 0 and 1 must run at the same time
        seen.append(k)
        names.add(threading.current_thread().name)

    workers.run(work, 100, threads=2)
    assert sorted(seen) == list(range(100))
    assert threading.current_thread().name in names
    assert any(name.startswith("dicomfast-decode") for name in names)


def test_one_thread_runs_in_order_on_the_caller():
    seen: list[tuple[int, str]] = []
    workers.run(lambda k: seen.append((k, threading.current_thread().name)), 5, threads=1)
    assert seen == [(k, threading.current_thread().name) for k in range(5)]


def test_the_first_error_stops_the_batch_and_is_raised():
    done: list[int] = []

    def work(k: int) -> None:
        if k == 3:
            raise KeyError("frame 3")
        time.sleep(0.001)
        done.append(k)

    with pytest.raises(KeyError, match="frame 3"):
        workers.run(work, 10_000, threads=2)
    assert len(done) < 100  # items after the failure were not handed out
    # The pool is still usable afterwards.
    out: list[int] = []
    workers.run(out.append, 50, threads=2)
    assert sorted(out) == list(range(50))


def test_nested_batches_run_serially_instead_of_waiting_on_the_pool():
    totals: list[int] = []

    def outer(k: int) -> None:
        inner: list[int] = []
        workers.run(inner.append, 20, threads=4)
        totals.append(len(inner))

    done = threading.Event()
    thread = threading.Thread(target=lambda: (workers.run(outer, 8, threads=4), done.set()))
    thread.start()
    assert done.wait(30), "nested batches deadlocked"
    assert totals == [20] * 8


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_pool():
    workers.run(lambda k: None, 4, threads=2)  # the parent's pool exists
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the inherited pool has no threads; a new one must be made
        try:
            got: list[int] = []
            workers.run(got.append, 10, threads=2)
            os.write(write_end, b"ok" if sorted(got) == list(range(10)) else b"no")
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the inherited pool")
    assert os.read(read_end, 2) == b"ok"


def test_threaded_frames_equal_serial_frames():
    path = find("emri_small_RLE.dcm")
    if path is None:
        pytest.skip("emri_small_RLE.dcm missing")
    ds = dicomfast.read(path)
    np.testing.assert_array_equal(ds.frames(threads=3), ds.frames(threads=1))
