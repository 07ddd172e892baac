"""Helpers shared by the network tests: ports, DCMTK processes, test objects, comparisons.

Everything runs on 127.0.0.1 with bounded waits, so no test can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from corpus import find  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Until something accepts connections on `port` (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


@functools.cache
@contextlib.contextmanager
def serving_in_thread(start: Callable[[], Awaitable[Any]]) -> Iterator[Any]:
    """Run `await start()` on an event loop of its own in a daemon thread, for a
    blocking peer (pynetdicom, a CLI) to talk to; yield what it returned. It must
    return a server (anything with an async close()) or a tuple ending in one; the
    server is closed and the loop stopped when the block ends."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            try:
                started = await start()
            except BaseException as exc:  # reported in the test's thread
                box["error"] = exc
                ready.set()
                return
            box.update(started=started, stop=asyncio.Event(), loop=asyncio.get_running_loop())
            ready.set()
            await box["stop"].wait()
            await (started[-1] if isinstance(started, tuple) else started).close()
        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the server did not start within 10 s"
    if "error" in box:
        raise box["error"]
    try:
        yield box["started"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


def dcmtk(tool: str) -> str | None:
    """The DCMTK binary (pynetdicom installs look-alike scripts with the same names)."""
    candidates = [f"/usr/bin/{tool}", f"/usr/local/bin/{tool}", shutil.which(tool)]
    for path in candidates:
        if path and os.path.exists(path):
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True,
                                     timeout=10).stdout
            except (OSError, subprocess.TimeoutExpired):
                continue
            if "dcmtk" in out.lower():
                return path
    return None


def need_dcmtk(*tools: str) -> None:
    for tool in tools:
        if dcmtk(tool) is None:
            pytest.skip(f"DCMTK {tool} not installed")


def dcmtk_env() -> dict[str, str]:
    # Debian's DCMTK leaves Nagle on unless told (see dcmnet's TCP_NODELAY variable).
    return {**os.environ, "TCP_NODELAY": "1"}


@contextlib.contextmanager
def dcmtk_storescp(folder: Path, aet: str = "DCMTKSCP", extra: tuple[str, ...] = ("+xa",)
                   ) -> Iterator[int]:
    need_dcmtk("storescp")
    port = free_port()
    proc = subprocess.Popen([dcmtk("storescp"), "-aet", aet, "-od", str(folder), "-ta", "10",
                             "-ts", "10", *extra, str(port)], env=dcmtk_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()


@contextlib.contextmanager
def dicomfast_storescp_process(folder: Path, port: int, *args: str) -> Iterator[subprocess.Popen]:
    """`python -m dicomfast.net.cli storescp` in a child process."""
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast.net.cli", "storescp",
                             "--port", str(port), "--output-dir", str(folder), "--host", HOST,
                             *args], cwd=str(ROOT / "tests"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stderr.close()


def make_objects(folder: Path, names: tuple[str, ...], copies: int = 1) -> list[Path]:
    """Copies of corpus files with fresh, distinct SOP Instance UIDs (pydicom writes them,
    keeping each file's transfer syntax and pixel data bytes)."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        src = find(name)
        if src is None:
            pytest.skip(f"corpus file {name} missing")
        ds = pydicom.dcmread(src)
        for i in range(copies):
            uid = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
            ds.SOPInstanceUID = uid
            ds.file_meta.MediaStorageSOPInstanceUID = uid
            path = folder / f"{Path(name).stem}_{i:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            out.append(path)
    return out


def by_instance_uid(folder: Path) -> dict[str, Path]:
    import pydicom

    out = {}
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith("."):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            out[str(ds.SOPInstanceUID)] = path
    return out


def same_dataset(sent: Path, stored: Path, *, same_syntax: bool = False,
                 pixels_decoded: bool = False) -> None:
    """Element for element, as pydicom reads them (File Meta aside). `same_syntax`: the
    transfer syntax must be the sent file's too; `pixels_decoded`: the receiver got
    compressed pixel data decoded, so Pixel Data is compared by the caller."""
    import pydicom

    a, b = pydicom.dcmread(sent), pydicom.dcmread(stored)
    for ds in (a, b):
        # Data Set Trailing Padding "may be removed" by any receiver (PS3.10 §7.2).
        if 0xFFFCFFFC in ds:
            del ds[0xFFFCFFFC]
    ts_a, ts_b = a.file_meta.TransferSyntaxUID, b.file_meta.TransferSyntaxUID
    if same_syntax:
        assert ts_a == ts_b
    for el in a:
        if el.tag != 0x7FE00010:
            assert el.tag in b and b[el.tag].value == el.value, (stored, el)
    assert {el.tag for el in b} == {el.tag for el in a}, stored
    if "PixelData" in a and not pixels_decoded:
        if ts_a == ts_b or (ts_a.is_little_endian == ts_b.is_little_endian
                            and not ts_a.is_compressed and not ts_b.is_compressed):
            assert a.PixelData == b.PixelData, stored
        else:  # re-encoded in another byte order: the same pixel values
            assert (a.pixel_array == b.pixel_array).all(), stored
    assert b.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert b.file_meta.MediaStorageSOPClassUID == a.SOPClassUID


STANDARD_SET = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm",
                "rtplan.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm", "SC_rgb.dcm")


def test_helpers_find_corpus():
    assert find("CT_small.dcm") is not None
