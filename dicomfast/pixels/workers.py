"""One lasting pool of decode threads, shared by every batch decode.

A multi-frame decode on two threads takes about a millisecond for 16 CT frames, and
starting a ThreadPoolExecutor per call (two thread starts, then joins) would eat a
good part of what the second thread saves. So the pool lives as long as the process,
and the calling thread does a share of the work itself instead of waiting idle.

The codecs release the GIL, so the threads decode in parallel; the work items here
only take the next frame index and call into C.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_local = threading.local()


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, grown to at least `workers` threads."""
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < workers:
            old, _pool = _pool, ThreadPoolExecutor(max_workers=workers,
                                                   thread_name_prefix="dicomfast-decode")
            if old is not None:
                old.shutdown(wait=False)  # its idle threads exit; running work finishes
        return _pool


def _forget_pool() -> None:
    # A forked child (a DataLoader worker, a multiprocessing pool) has none of the
    # parent's threads: a pool inherited from it would queue work nobody runs.
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run(work: Callable[[int], None], n: int, threads: int | None) -> None:
    """Call work(k) for every k in range(n) on up to `threads` threads, the caller's
    included. The first exception stops the handing out of further items and is
    raised once every thread has finished the item it had. Nested calls (work that
    itself runs a batch) run serially, so the pool never waits on itself."""
    if threads is None or threads <= 1 or n <= 1 or getattr(_local, "inside", False):
        for k in range(n):
            work(k)
        return
    counter = itertools.count()
    failed = threading.Event()

    def drain() -> None:
        outer = getattr(_local, "inside", False)
        _local.inside = True
        try:
            while not failed.is_set():
                k = next(counter)  # atomic under the GIL
                if k >= n:
                    return
                work(k)
        except BaseException:
            failed.set()
            raise
        finally:
            _local.inside = outer

    helpers = min(threads, n) - 1
    pool = _executor(helpers)
    futures: list[Future[None]] = [pool.submit(drain) for _ in range(helpers)]
    try:
        drain()
    finally:
        wait(futures)
    for future in futures:
        future.result()
