"""Decoding in helper processes, for libraries that can end the process on bad input.

Both libraries that decode HTJ2K here stop the whole process with a failed
``assert()`` on some malformed frames: Debian 12's OpenJPEG 2.5.0 in its HT block
decoder (``ht_dec.c`` asserts on MEL, VLC and refinement-pass data), OpenJPH 0.9 in
its packet-header parser. No check of the codestream beforehand can rule that out
short of decoding every code-block, so a frame with HT code-blocks is decoded by a
helper process running the same native module. A library abort then ends only the
helper: the caller gets a :class:`~dicomfast.errors.DecodeError` naming the signal,
and the next frame starts a fresh helper.

The codestream and the decoded pixels travel through memory shared with the
helper (a memfd, or an unlinked temporary file where there is none); the pipes
to its stdin and stdout (private copies: the library cannot write into them by
accident) carry only:

- request: ``<BIQQQ`` (module index, options length, codestream length, output
  length, shared size) and the options as JSON;
- answer: ``<BQ``: (0, n), n decoded bytes in the shared memory, or (1, m) and
  m bytes of JSON ``[error class, codec, message]``. The parent never unpickles
  anything the helper sends: a helper that a hostile frame took over can only
  send bytes, and a count the parent checks.

Costs: a helper starts once per concurrent decoding thread (under 0.1 s); then
each frame is copied into the shared memory and its pixels out of it (about a
millisecond for 7 MB, next to tens of milliseconds of decoding).
``set_isolation(False)`` or ``DICOMFAST_ISOLATE=0`` decodes in this process
instead, for input you trust.

A helper that has not answered within ``timeout()`` seconds (120 by default;
``set_timeout`` or ``DICOMFAST_DECODE_TIMEOUT``) is killed and the frame is a
DecodeError: a crafted frame cannot hang the caller either.
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
from typing import Any

from dicomfast.errors import DecodeError, DicomfastError

MODULES = ("dicomfast._native._j2k", "dicomfast._native._htj2k")
_REQUEST = struct.Struct("<BIQQQ")
_ANSWER = struct.Struct("<BQ")
_MAX_MESSAGE = 1 << 16

_enabled = os.environ.get("DICOMFAST_ISOLATE", "1").strip().lower() not in ("0", "off", "no",
                                                                         "false")


def set_isolation(enabled: bool) -> bool:
    """Decode HTJ2K frames in helper processes (True, the default) or in this process.
    Returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def isolation() -> bool:
    return _enabled


_timeout = float(os.environ.get("DICOMFAST_DECODE_TIMEOUT", "120"))


def set_timeout(seconds: float) -> float:
    """How long a helper may take over one frame before it is killed and the frame
    is a DecodeError. Returns the previous value."""
    global _timeout
    if not seconds > 0:
        raise ValueError(f"a decode timeout of {seconds!r} s: it must be positive")
    previous, _timeout = _timeout, float(seconds)
    return previous


def timeout() -> float:
    return _timeout


class _HelperEnded(Exception):
    pass


class _HelperTooSlow(Exception):
    pass


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_into(fd: int, view: memoryview) -> None:
    while view:
        n = os.readv(fd, [view])
        if n == 0:
            raise _HelperEnded
        view = view[n:]


def _read(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    _read_into(fd, memoryview(buf))
    return buf


def _readable(fd: int, seconds: float) -> bool:
    """Whether `fd` has something to read (or hit its end) within `seconds`; poll
    rather than select, which refuses descriptors above 1023."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(seconds * 1000)))
    return bool(select.select([fd], [], [], seconds)[0])


# The helper's main program. It needs this module, numpy and a native codec module,
# not the rest of dicomfast: the two packages above it are put in place without
# running their __init__ (which imports the whole library), so a helper starts in
# about half the time.
_HELPER_MAIN = """
import importlib.util, sys, types
try:
    for name in ("dicomfast", "dicomfast.pixels"):
        spec = importlib.util.find_spec(name)
        package = types.ModuleType(name)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules[name] = package
except Exception:  # an unusual installation: import the packages the usual way
    for name in ("dicomfast", "dicomfast.pixels"):
        sys.modules.pop(name, None)
from dicomfast.pixels.isolated import _serve
_serve(int(sys.argv[1]))
"""


# Blocks below this come from the helper's heap and are reused (glibc's own dynamic
# threshold stops at 32 MiB as well).
_MMAP_THRESHOLD = 32 << 20


def _output_offset(n_src: int) -> int:
    return (n_src + 63) & ~63  # decoded samples start cache-line aligned


class _Helper:
    """One helper process and its shared memory; used by one thread at a time."""

    def __init__(self) -> None:
        self.stderr = tempfile.TemporaryFile()
        if hasattr(os, "memfd_create"):
            self.shared_fd = os.memfd_create("dicomfast-decode")
            self._shared_file = None
        else:
            self._shared_file = tempfile.TemporaryFile()
            self.shared_fd = self._shared_file.fileno()
        self.size = 0
        self.map: mmap.mmap | None = None
        env = dict(os.environ)
        # The decoders allocate and free tens of MB per frame. With glibc's defaults
        # each large block is a fresh mmap, so every frame pays page faults on memory
        # the kernel zeroes again (a third of a 7 MB HTJ2K decode). The helper keeps
        # such blocks for the next frame instead: a few MB more resident, as measured.
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(_MMAP_THRESHOLD))
        env.setdefault("MALLOC_TRIM_THRESHOLD_", str(2 * _MMAP_THRESHOLD))
        # The helper imports numpy but never does linear algebra: without this, its
        # OpenBLAS starts a thread per core in every helper (63 idle threads per
        # helper on a 64-core machine, one helper per decoding thread).
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        # The helper imports the same dicomfast as this process, wherever it lives.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER_MAIN, str(self.shared_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
            bufsize=0, pass_fds=(self.shared_fd,))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.to_helper = self.proc.stdin.fileno()
        self.from_helper = self.proc.stdout.fileno()

    def _shared(self, size: int) -> memoryview:
        if size > self.size or self.map is None:
            size = max(size, 2 * self.size, mmap.PAGESIZE)
            os.ftruncate(self.shared_fd, size)
            if self.map is not None:
                self.map.close()
            self.map = mmap.mmap(self.shared_fd, size)
            self.size = size
        return memoryview(self.map)

    def decode(self, module: int, data: Any, out: memoryview, options: dict[str, Any]) -> int:
        opts = json.dumps(options).encode()
        src = memoryview(data).cast("B")
        offset = _output_offset(len(src))
        shared = self._shared(offset + len(out))
        try:
            shared[:len(src)] = src
            try:
                _write_all(self.to_helper, _REQUEST.pack(module, len(opts), len(src), len(out),
                                                         self.size) + opts)
                if not _readable(self.from_helper, _timeout):
                    raise _HelperTooSlow
                kind, n = _ANSWER.unpack(_read(self.from_helper, _ANSWER.size))
                if kind == 0:
                    if n > len(out):
                        raise _HelperEnded
                    out[:n] = shared[offset:offset + n]
                    return n
                if n > _MAX_MESSAGE:
                    raise _HelperEnded
                message = _read(self.from_helper, n)
            except (BrokenPipeError, ConnectionResetError):
                raise _HelperEnded from None
        finally:
            shared.release()
        raise _error(message)

    def ended(self) -> str:
        """Why the helper is gone (it is reaped and closed here), for the error."""
        try:
            self.proc.kill()
        except OSError:
            pass
        code = self.proc.wait()
        if code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
        else:
            how = f"exit status {code}"
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - 2000))
        lines = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
        self.close()
        return f"the decoding process ended ({how})" + (f": {lines[-1][:300]}" if lines else "")

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        if self.map is not None:
            self.map.close()
            self.map = None
        if self._shared_file is not None:
            self._shared_file.close()
        elif self.shared_fd >= 0:
            os.close(self.shared_fd)
        self.shared_fd = -1
        self.stderr.close()


def _error(message: bytes) -> DicomfastError:
    try:
        kind, codec, text = json.loads(message)
        codec, text = str(codec) if codec else None, str(text)
    except (ValueError, TypeError):
        return DecodeError("the decoding process sent an unreadable answer")
    if kind == "MemoryError":
        return DecodeError(f"out of memory: {text}", codec=codec)
    return DecodeError(text, codec=codec)


_lock = threading.Lock()
_idle: list[_Helper] = []
_started = True  # False once a helper could not be started: decode in this process
_warned = False


def decode(module: str, data: Any, out: Any, *, codec: str, **options: Any) -> int:
    """``module.decode(data, out, **options)``, run in a helper process; returns the
    number of bytes written to `out` (flat uint8). A helper that ends while decoding
    is a DecodeError naming `codec`."""
    global _started, _warned
    index = MODULES.index(module)
    with _lock:
        helper = _idle.pop() if _idle else None
    if helper is None and _started:
        try:
            helper = _Helper()
        except OSError as exc:
            _started = False
            if not _warned:
                _warned = True
                warnings.warn(f"dicomfast: cannot start a decoding process ({exc}); HTJ2K "
                              f"frames decode in this process", RuntimeWarning, stacklevel=3)
    if helper is None:
        import importlib

        return int(importlib.import_module(module).decode(data, out, **options))
    try:
        n = helper.decode(index, data, memoryview(out).cast("B"), options)
    except _HelperEnded:
        raise DecodeError(helper.ended(), codec=codec) from None
    except _HelperTooSlow:
        helper.ended()
        raise DecodeError(f"the decoding process took longer than {_timeout:g} s and was "
                          f"stopped", codec=codec) from None
    except DicomfastError:
        _give_back(helper)  # it answered in full: ready for the next frame
        raise
    except BaseException:
        helper.ended()  # interrupted half way through a request
        raise
    _give_back(helper)
    return n


def _give_back(helper: _Helper) -> None:
    with _lock:
        _idle.append(helper)


def _close_all() -> None:
    with _lock:
        helpers = list(_idle)
        _idle.clear()
    for helper in helpers:
        helper.close()  # end of input: the helper exits
        try:
            helper.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            helper.proc.kill()
            helper.proc.wait()


def _forget_helpers() -> None:
    # A forked child shares the parent's pipes; it must start its own helpers.
    global _lock
    _idle.clear()
    _lock = threading.Lock()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


# -- the helper's side ----------------------------------------------------------------

def _serve(shared_fd: int) -> None:
    import importlib

    import numpy as np

    # Private copies of the pipes; whatever a library prints goes to stderr.
    requests, answers = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    modules: dict[int, Any] = {}
    shared: mmap.mmap | None = None
    while True:
        try:
            head = _read(requests, _REQUEST.size)
        except _HelperEnded:
            return
        index, n_opts, n_src, n_out, size = _REQUEST.unpack(head)
        options = json.loads(_read(requests, n_opts))
        if shared is None or len(shared) != size:
            if shared is not None:
                shared.close()
            shared = mmap.mmap(shared_fd, size)
        region = np.frombuffer(shared, np.uint8)
        offset = _output_offset(n_src)
        try:
            if index not in modules:
                modules[index] = importlib.import_module(MODULES[index])
            n = int(modules[index].decode(region[:n_src], region[offset:offset + n_out],
                                          **options))
        except Exception as exc:  # sent to the parent as text
            codec = getattr(exc, "codec", None)
            text = getattr(exc, "detail", None) or str(exc)
            message = json.dumps([type(exc).__name__, codec, text[:4000]]).encode()
            _write_all(answers, _ANSWER.pack(1, len(message)) + message)
            continue
        finally:
            del region  # no view may outlive the mapping when it is replaced
        _write_all(answers, _ANSWER.pack(0, n))


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
