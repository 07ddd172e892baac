"""HTJ2K frames decode in helper processes (dicomfast/pixels/isolated.py): a library
that ends its process on a malformed frame ends only the helper, and the caller gets
a DecodeError."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dicomfast.errors import DecodeError
from dicomfast.pixels import ImageParams, decode_frame, encode_frame, isolated

_j2k = pytest.importorskip("dicomfast._native._j2k", exc_type=ImportError)
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
ABORTS = Path(__file__).resolve().parent / "known_library_aborts"


@pytest.fixture
def frame():
    params = ImageParams(48, 40, bits_allocated=16, bits_stored=12, pixel_representation=0)
    src = np.random.default_rng(11).integers(0, 4096, (48, 40), dtype=np.uint16)
    return params, src, encode_frame(src, HTJ2K_LOSSLESS, params)


@pytest.fixture(autouse=True)
def isolation_on():
    previous = isolated.set_isolation(True)
    yield
    isolated.set_isolation(previous)


def _helper_pids() -> list[int]:
    return [h.proc.pid for h in isolated._idle]


def test_same_pixels_as_in_process(frame):
    params, src, data = frame
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
    assert _helper_pids(), "the frame went to a helper, which is kept for the next one"
    isolated.set_isolation(False)
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_helper_runs_on_one_thread(frame, monkeypatch):
    """A helper decodes on its one thread: numpy's OpenBLAS would otherwise start a
    thread per core in every helper (the variable is unset here, as for most users)."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    params, src, data = frame
    isolated._close_all()
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
    (pid,) = _helper_pids()
    assert len(os.listdir(f"/proc/{pid}/task")) == 1


def test_helper_that_dies_is_a_decode_error_and_is_replaced(frame):
    params, src, data = frame
    isolated._close_all()
    decode_frame(data, params, HTJ2K_LOSSLESS)
    victims = _helper_pids()
    assert len(victims) == 1
    os.kill(victims[0], signal.SIGKILL)
    with pytest.raises(DecodeError, match="SIGKILL") as info:
        decode_frame(data, params, HTJ2K_LOSSLESS)
    assert info.value.codec == "HTJ2K"
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
    assert not set(_helper_pids()) & set(victims)


def test_helper_that_hangs_is_stopped(frame):
    """A helper that does not answer in time is killed: the frame is a DecodeError,
    and the next one gets a fresh helper."""
    params, src, data = frame
    isolated._close_all()
    decode_frame(data, params, HTJ2K_LOSSLESS)
    stuck = _helper_pids()
    assert len(stuck) == 1
    os.kill(stuck[0], signal.SIGSTOP)  # as if the library spun forever on a frame
    previous = isolated.set_timeout(0.5)
    try:
        with pytest.raises(DecodeError, match="longer than 0.5 s"):
            decode_frame(data, params, HTJ2K_LOSSLESS)
    finally:
        isolated.set_timeout(previous)
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
    assert not set(_helper_pids()) & set(stuck)
    with pytest.raises(ValueError):
        isolated.set_timeout(0)


def test_library_error_keeps_the_helper(frame):
    params, src, data = frame
    decode_frame(data, params, HTJ2K_LOSSLESS)
    pids = _helper_pids()
    broken = bytearray(data)
    broken[len(broken) // 2:] = b"\xff\x91" * ((len(broken) - len(broken) // 2) // 2)
    with pytest.raises(DecodeError):
        decode_frame(bytes(broken), params, HTJ2K_LOSSLESS)
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
    assert _helper_pids() == pids


def test_threads_each_get_a_helper(frame):
    """Decodes from several threads at once run in as many helpers, side by side."""
    from concurrent.futures import ThreadPoolExecutor

    params, src, data = frame
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: decode_frame(data, params, HTJ2K_LOSSLESS), range(32)))
    for got in results:
        np.testing.assert_array_equal(got, src)
    assert 1 <= len(_helper_pids()) <= 4


def test_ht_codestream_under_a_part1_syntax_is_isolated_too(frame, monkeypatch):
    """The transfer syntax does not decide: a JPEG 2000 (.90) frame whose codestream
    has HT code-blocks goes to a helper as well."""
    params, src, data = frame
    calls = []
    real = isolated.decode
    monkeypatch.setattr(isolated, "decode", lambda *a, **k: (calls.append(a[0]), real(*a, **k))[1])
    np.testing.assert_array_equal(decode_frame(data, params, J2K_LOSSLESS), src)
    assert calls == ["dicomfast._native._j2k"]


def test_tile_part_header_cannot_switch_to_ht(frame):
    """HT code-blocks need the main header's CAP (15444-15 §A.2); a COD in a tile-part
    header asking for them, in a codestream that announced none, is refused, so the
    main header alone decides whether a frame needs a helper."""
    params, src, _ = frame
    part1 = encode_frame(src, J2K_LOSSLESS, params)
    info = _j2k.info(part1)
    assert not info["htj2k"]
    sot = part1.index(b"\xff\x90")
    cod_at = part1.index(b"\xff\x52")
    cod_len = int.from_bytes(part1[cod_at + 2:cod_at + 4], "big")
    cod = bytearray(part1[cod_at:cod_at + 2 + cod_len])
    cod[2 + 2 + 1 + 4 + 3] |= 0x40  # code-block style: HT
    psot = int.from_bytes(part1[sot + 6:sot + 10], "big")
    forged = bytearray(part1[:sot + 12] + bytes(cod) + part1[sot + 12:])
    forged[sot + 6:sot + 10] = (psot + len(cod)).to_bytes(4, "big")
    with pytest.raises(DecodeError, match="HT code-blocks"):
        _j2k.decode(bytes(forged), np.empty(src.nbytes, np.uint8))


_HAMMER = r"""
import sys
import numpy as np
from dicomfast.errors import DecodeError
from dicomfast.pixels import isolated
data = open(sys.argv[1], "rb").read()[1:]   # byte 0: the fuzz harness's options
outcomes = {}
for module in isolated.MODULES[:1]:
    for _ in range(int(sys.argv[2])):
        try:
            isolated.decode(module, data, np.zeros(32 * 32 * 3 * 2, np.uint8), codec="HTJ2K")
            key = "ok"
        except DecodeError as exc:
            key = "ended" if "decoding process ended" in str(exc) else "error"
        outcomes[key] = outcomes.get(key, 0) + 1
print(outcomes)
"""


@pytest.mark.parametrize("path", sorted(ABORTS.glob("openjpeg-*")), ids=lambda p: p.name)
def test_known_library_abort_stays_in_the_helper(path):
    """The frame that can make Debian 12's OpenJPEG fail an assert() (see
    test_known_library_aborts.py), decoded many times through the helpers: the
    calling process always survives and sees only DecodeErrors."""
    proc = subprocess.run([sys.executable, "-c", _HAMMER, str(path), "300"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcomes = ast.literal_eval(proc.stdout)
    assert sum(outcomes.values()) == 300 and "ok" not in outcomes, outcomes
