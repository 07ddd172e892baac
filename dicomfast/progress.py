"""A small progress line for long command-line work (stderr, only on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    """``with Progress(total, "files") as p: ... p.advance(nbytes)``"""

    def __init__(self, total: int, unit: str = "files", stream: IO[str] | None = None,
                 force: bool = False):
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = force or (hasattr(self.stream, "isatty") and self.stream.isatty())
        self.done = 0
        self.bytes = 0
        self.failed = 0
        self.start = time.monotonic()
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._draw(final=True)

    def advance(self, nbytes: int = 0, failed: bool = False) -> None:
        self.done += 1
        self.bytes += nbytes
        self.failed += failed
        now = time.monotonic()
        if now - self._last > 0.1:
            self._last = now
            self._draw()

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        width = 30
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.bytes / elapsed / 1e6
        fails = f", {self.failed} failed" if self.failed else ""
        line = (f"\r[{bar}] {self.done}/{self.total} {self.unit} "
                f"{rate:7.1f} MB/s {elapsed:6.1f}s{fails}")
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()
