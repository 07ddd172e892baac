"""Proof that a native call releases the GIL: count what this thread gets done
while the call runs on another thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def ticks_while(work: Callable[[], object]) -> int:
    """Iterations of a Python loop on this thread while `work` runs on another.

    If the call held the GIL, this thread could only run between its calls."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    ticks = 0
    worker = threading.Thread(target=run)
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0)
    worker.join()
    return ticks
