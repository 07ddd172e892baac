"""Replay every file in tests/fuzz_regressions/<target>/ through the Python entry
point that reaches the same C code as the libFuzzer harness csrc/fuzz/fuzz_<target>.c.

tools/fuzz.sh copies each crasher, leak, timeout or out-of-memory input there
(crash-*, leak-*, timeout-*, oom-*); small inputs from the fuzzers' corpora that
reach deep paths are kept there too (corpus-*); read/ holds what tools/fuzz_python.py
found. Each file is decoded the way the
harness decodes it (its first byte or bytes choose the options, as the harness's
header comment says) and must give a result or a DicomfastError: any other
exception fails the test, and each replay runs in a child process, so a crash or a
hang (10 s) fails it too instead of killing the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "fuzz_regressions"
TARGETS = ("scan", "encaps", "swap", "rle", "ljpeg", "pdu", "inflate", "jpeg", "jpegls",
           "j2k", "htj2k",
           # atheris targets of tools/fuzz_python.py (their crashers are kept here too)
           "read")

# Frames the replays decode are capped like the harnesses cap them.
MAX_FRAME = 16 << 20

# One child runs every file of one target; it prints one line per file.
_REPLAY = textwrap.dedent(r'''
    import io, sys, warnings
    import numpy as np
    import dicomfast
    from dicomfast.errors import DicomfastError

    MAX_FRAME = %(max_frame)d
    target = sys.argv[1]

    def out_for(n):
        if n <= 0 or n > MAX_FRAME:
            raise DicomfastError("frame too large for the replay")
        return np.zeros(n, np.uint8)

    def scan(data):
        mode, body = data[0], data[1:]
        ds = dicomfast.read(io.BytesIO(body), force=True, strict=bool(mode & 4),
                            stop_before_pixels=bool(mode & 16))
        for el in ds:                       # value access decodes every element
            el.value
        if not mode & 16 and 0x7FE00010 in ds:
            ds.pixel_array

    def read(data):
        # tools/fuzz_python.py read: force when the first byte is 1, the rest as scan().
        ds = dicomfast.read(data, force=data[:1] == b"\x01")
        for part in (ds.file_meta, ds):
            for el in part or ():
                el.value
        if 0x7FE00010 in ds:
            ds.pixel_array

    def encaps(data):
        from dicomfast._native import _encaps
        marker = (data[0] >> 4) %% 3
        _encaps.frame_spans(data[1:], (data[0] & 0x0F) + 1, marker)

    def swap(data):
        from dicomfast._native import _pixels
        src = data[2:]
        width = 1 << (data[0] %% 4)
        n = min(len(src), 4096) // width * width  # a ragged length is a caller error
        _pixels.swap_bytes(src[:n], np.zeros(n, np.uint8), width)
        first = data[1] %% 64
        count = max(len(src) * 8 - first, 0)
        _pixels.unpack_bits(src, np.zeros(max(count, 1), np.uint8), first, count)

    # (rows, columns, samples, bits) of fuzz_rle.c's GEOMETRIES, in its order.
    RLE = [(8, 8, 1, 8), (1, 1, 1, 8), (3, 5, 1, 16), (16, 17, 3, 8), (7, 9, 3, 16),
           (5, 4, 1, 32), (2, 21, 3, 32), (4, 3, 1, 64), (33, 1, 2, 8), (1, 300, 4, 8),
           (64, 64, 1, 16), (2, 2, 5, 16)]

    def rle(data):
        from dicomfast._native import _rle
        r, c, s, b = RLE[data[0] %% len(RLE)]
        out = np.zeros(r * c * s * (b // 8), np.uint8)
        _rle.decode(data[2:], out, r, c, s, b, strict=bool(data[1] & 1))

    def ljpeg(data):
        from dicomfast._native import _ljpeg
        info = _ljpeg.info(data[1:])
        n = info["rows"] * info["columns"] * info["components"] * (2 if info["precision"] > 8 else 1)
        _ljpeg.decode(data[1:], out_for(n), bool(data[0] & 1), planar=bool(data[0] & 2))

    def pdu(data):
        from dicomfast.net import pdu as P
        framer = P.Framer(max_pdata_len=[0, 16, 16384, 1 << 20][(data[0] >> 1) & 3],
                          max_other_len=64 if data[0] & 8 else 1 << 20)
        framer.feed(data[1:])
        while (raw := framer.next()) is not None:
            P.decode(raw)

    def inflate(data):
        from dicomfast._native import _deflate
        n = (data[0] | data[1] << 8) + 1
        _deflate.inflate(data[3:], np.zeros(n, np.uint8), strict=bool(data[2] & 1))

    def jpeg(data):
        from dicomfast._native import _jpeg
        info = _jpeg.info(data[1:])
        n = info["rows"] * info["columns"] * max(info["components"], 3) * 2
        _jpeg.decode(data[1:], out_for(n), strict=bool(data[0] & 8))

    def jpegls(data):
        from dicomfast._native import _jpegls
        info = _jpegls.info(data)
        n = info["rows"] * info["columns"] * info["components"] * (2 if info["precision"] > 8 else 1)
        _jpegls.decode(data, out_for(n))

    def j2k_family(mod, data):
        info = mod.info(data[1:])
        n = info["rows"] * info["columns"] * info["components"] * 2
        mod.decode(data[1:], out_for(n), reduce=data[0] & 3)

    def j2k(data):
        from dicomfast._native import _j2k
        j2k_family(_j2k, data)

    def htj2k(data):
        # HTJ2K frames decode through OpenJPEG unless the caller picks OpenJPH for
        # input it trusts (dicomfast.pixels.codecs.set_htj2k_decoder): the Debian
        # OpenJPH (0.9) asserts on some malformed packet headers, crash-491f46cd034127a3
        # among them. So these inputs replay through the default path.
        from dicomfast._native import _j2k
        j2k_family(_j2k, data)

    warnings.simplefilter("ignore")
    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        if len(data) < 3:
            data = data + bytes(3 - len(data))
        try:
            globals()[target](data)
            print("ok", path, flush=True)
        except DicomfastError as exc:
            print("error", type(exc).__name__, path, flush=True)
''') % {"max_frame": MAX_FRAME}


def _files(target: str) -> list[Path]:
    folder = REGRESSIONS / target
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix != ".md")


def test_every_regression_folder_is_a_known_target():
    """A folder named after no harness would never be replayed."""
    if not REGRESSIONS.is_dir():
        pytest.fail("tests/fuzz_regressions is missing")
    unknown = [p.name for p in REGRESSIONS.iterdir() if p.is_dir() and p.name not in TARGETS]
    assert unknown == []


@pytest.mark.parametrize("target", TARGETS)
def test_replay(target, record_property):
    files = _files(target)
    if target in ("jpeg", "jpegls", "j2k", "htj2k"):
        mod = {"jpeg": "_jpeg", "jpegls": "_jpegls", "j2k": "_j2k", "htj2k": "_j2k"}[target]
        pytest.importorskip(f"dicomfast._native.{mod}", exc_type=ImportError)
    record_property("cases", len(files))
    print(f"{target}: {len(files)} regression inputs")
    if not files:
        return
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-c", _REPLAY, target, *map(str, files)],
                          capture_output=True, text=True, timeout=60 + 10 * len(files),
                          env=env)
    assert proc.returncode == 0, (
        f"replay of {target} died with {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.splitlines()
    assert len(lines) == len(files), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert all(line.split()[0] in ("ok", "error") for line in lines)


def test_oversized_code_blocks_are_refused_before_decoding():
    """fuzz_htj2k found a 32 x 32 HTJ2K frame whose COD asks for 2^85-sample-wide code
    blocks; OpenJPH then allocated ~20 GB. 15444-1 Table A.18 allows xcb, ycb <= 8 and
    xcb + ycb <= 8, and the header reader (df_j2k.c) now refuses anything else, for
    both decoders, before a library sees the frame."""
    from dicomfast.errors import DicomfastError
    crasher = REGRESSIONS / "htj2k" / "oom-048f2e5cdaec99e6"
    frame = crasher.read_bytes()[1:]   # byte 0 is the harness's options byte
    cod = frame.index(b"\xff\x52")
    # FF52, Lcod, Scod, SGcod (4 bytes), SPcod: levels, xcb, ycb (15444-1 Table A.12).
    xcb = cod + 10
    assert (frame[xcb], frame[xcb + 1]) == (0x53, 0x74)  # as found
    for name in ("_j2k", "_htj2k"):
        mod = pytest.importorskip(f"dicomfast._native.{name}", exc_type=ImportError)
        with pytest.raises(DicomfastError, match="code-block"):
            mod.info(frame)
        # The largest legal blocks (64 x 64) pass the same check.
        legal = bytearray(frame)
        legal[xcb:xcb + 2] = b"\x04\x04"
        assert mod.info(bytes(legal))["rows"] == 32


def test_a_second_cod_in_the_main_header_is_refused():
    """fuzz_htj2k found a main header with two COD segments, the second asking for 21
    decomposition levels that the QCD's 16 subbands cannot serve: the header reader
    took the first, OpenJPH the second, and OpenJPH's assert() ended the process.
    15444-1 Table A.2 allows one COD in a main header; both decoders now refuse a
    second before a library sees the frame."""
    from dicomfast.errors import DicomfastError
    frame = (REGRESSIONS / "htj2k" / "crash-7654b688ff605ba7").read_bytes()[1:]
    assert frame.count(b"\xff\x52\x00\x0c") == 2   # as found: two COD segments
    for name in ("_j2k", "_htj2k"):
        mod = pytest.importorskip(f"dicomfast._native.{name}", exc_type=ImportError)
        with pytest.raises(DicomfastError, match="second 0xFF52"):
            mod.info(frame)
