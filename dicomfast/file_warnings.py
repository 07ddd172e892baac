"""Warnings kept with the file whose work raised them, for batch commands.

A command that works through many files (``dicomfast deid``, ``dicomfast
transcode``) cannot leave what reading a file warns about (a value cut short by
the file's end, a data set encoded otherwise than its transfer syntax says) to
Python's warnings: shown as usual, a warning raised at the same place is shown
once per process, and it does not say which file it concerns. While
:func:`collecting` runs (or, in a worker process, after :func:`collect`), the
dicomfast warnings raised on a thread inside :func:`kept` go to the list it gives,
every time, for the caller to report with the file's name; other warnings, and
warnings raised outside :func:`kept`, are shown as before.

    >>> with file_warnings.collecting():
    ...     for path in paths:
    ...         with file_warnings.kept() as found:
    ...             work_on(path)
    ...         report(path, found)
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dicomfast.errors import DicomfastWarning

__all__ = ["collect", "collecting", "kept"]

_current = threading.local()  # .found: the list of the file this thread works on


def _keeper(show: Callable[..., None]) -> Callable[..., None]:
    """A warnings.showwarning that keeps dicomfast warnings raised inside kept() and
    passes everything else on to `show`."""
    def keep(message: Any, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        found = getattr(_current, "found", None)
        if found is None or not issubclass(category, DicomfastWarning):
            show(message, category, filename, lineno, file, line)
        else:
            found.append(str(message))
    return keep


def collect() -> None:
    """Keep dicomfast warnings raised inside kept() from now on, in this process
    (a worker's, which does nothing else)."""
    warnings.simplefilter("always", DicomfastWarning)  # every time, not once
    warnings.showwarning = _keeper(warnings.showwarning)


@contextmanager
def collecting() -> Iterator[None]:
    """collect() until the block ends: the warning settings are restored then."""
    with warnings.catch_warnings():
        collect()
        yield


@contextmanager
def kept() -> Iterator[list[str]]:
    """The messages of the dicomfast warnings this thread raises in the block, each
    once, in order (when collecting; else the list stays empty)."""
    outer = getattr(_current, "found", None)
    _current.found = found = []
    try:
        yield found
    finally:
        _current.found = outer
        found[:] = dict.fromkeys(found)
