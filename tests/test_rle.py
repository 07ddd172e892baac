"""RLE Lossless (PS3.5 Annex G): the C codec through dicomfast._native._rle.

Oracles: pydicom's own decoders (pure Python and pylibjpeg-rle), the
uncompressed twins in the corpus, and DCMTK's dcmcrle / dcmdrle.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import time
import warnings

import numpy as np
import pydicom
import pytest
from corpus import all_files, file_id, find
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.rle import _rle_decode_frame

import dicomfast
from dicomfast._native import _rle
from dicomfast.errors import DecodeError, EncodeError

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
DCMCRLE = shutil.which("dcmcrle")
DCMDRLE = shutil.which("dcmdrle")
needs_dcmtk = pytest.mark.skipif(DCMCRLE is None or DCMDRLE is None,
                                 reason="DCMTK (dcmcrle/dcmdrle) is not installed")


# -- helpers ------------------------------------------------------------------------------

def _quiet_pydicom(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _rle_files():
    out = []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            if str(ds.file_meta.get("TransferSyntaxUID", "")) == RLE_LOSSLESS:
                out.append(path)
        except Exception:
            continue
    return out


RLE_FILES = _rle_files()


def _geometry(ds):
    frames = int(ds.get("NumberOfFrames") or 1)
    return (int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel), int(ds.BitsAllocated),
            frames)


def _frames(path):
    """(geometry, [frame bytes]) of an encapsulated file, found through dicomfast's index.

    Fragments are grouped into frames by the Basic Offset Table when it has
    entries (PS3.5 A.4: offsets from the first fragment's item tag), else one
    fragment per frame, or all fragments for a single frame.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dicomfast.DicomfastWarning)
        ds = dicomfast.read(path)
    geom = _geometry(ds)
    index, pos, _tag = ds._pixel_value_view()
    spans = index.fragment_spans(pos)
    src = memoryview(index.source).cast("B")
    (bot_at, bot_len), frags = spans[0], spans[1:]
    n = geom[4]
    if bot_len:
        offsets = list(struct.unpack(f"<{bot_len // 4}I", src[bot_at:bot_at + bot_len]))
        first_item = frags[0][0] - 8
        bounds = offsets[1:] + [1 << 62]
        frames = [b"".join(bytes(src[o:o + ln]) for o, ln in frags
                           if start <= o - 8 - first_item < stop)
                  for start, stop in zip(offsets, bounds, strict=True)]
    elif len(frags) == n:
        frames = [bytes(src[o:o + ln]) for o, ln in frags]
    else:
        assert n == 1, "several fragments per frame need a Basic Offset Table"
        frames = [b"".join(bytes(src[o:o + ln]) for o, ln in frags)]
    assert len(frames) == n
    return geom, frames


def _decode(frame, rows, cols, spp, bits, strict=False):
    out = np.empty(rows * cols * spp * bits // 8, np.uint8)
    assert _rle.decode(frame, out, rows, cols, spp, bits, strict) == out.size
    return out


def _decode_all(geom, frames, strict=False):
    rows, cols, spp, bits, _n = geom
    return b"".join(_decode(f, rows, cols, spp, bits, strict).tobytes() for f in frames)


def _native_bytes(arr):
    """pydicom's array as little-endian, pixel-interleaved bytes."""
    return np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()


def _pydicom_pixels(path, plugin=""):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.pixels.pixel_array(str(path), raw=True, decoding_plugin=plugin)


def _pylibjpeg_rle(frame, rows, cols, spp, bits):
    """pylibjpeg-rle's decode, reordered from planar to pixel-interleaved."""
    from rle.utils import decode_pixel_data

    planar = np.frombuffer(decode_pixel_data(frame, version=2, rows=rows, columns=cols,
                                             bits_allocated=bits), np.uint8)
    return planar.reshape(spp, rows * cols, bits // 8).transpose(1, 0, 2).tobytes()


def _pydicom_rle(frame, rows, cols, spp, bits):
    """pydicom's pure-Python decode, reordered from planar to pixel-interleaved."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        planar = np.frombuffer(_rle_decode_frame(frame, rows, cols, spp, bits), np.uint8)
    return planar.reshape(spp, rows * cols, bits // 8).transpose(1, 0, 2).tobytes()


def _check_conformant(frame, rows, cols, spp, bits):
    """The encoder's output follows PS3.5 G.3 and G.5 to the letter."""
    nseg = spp * bits // 8
    header = struct.unpack("<16I", frame[:64])
    assert header[0] == nseg
    offsets = list(header[1:1 + nseg])
    assert offsets[0] == 64 and all(o == 0 for o in header[1 + nseg:])
    for start, stop in zip(offsets, offsets[1:] + [len(frame)], strict=True):
        seg = frame[start:stop]
        assert len(seg) % 2 == 0
        produced = i = 0
        while produced < rows * cols:
            h = seg[i]
            assert h != 128  # an encoder has no use for the no-op
            length, i = (h + 1, i + h + 2) if h < 128 else (257 - h, i + 2)
            assert i <= len(seg)
            assert length >= 2 or h < 128
            # G.3.1: each row is encoded on its own; no run crosses its end.
            assert produced // cols == (produced + length - 1) // cols
            produced += length
        assert produced == rows * cols
        assert seg[i:] in (b"", b"\x00")  # G.5: padded to even length with a zero


# -- the corpus ---------------------------------------------------------------------------

def test_corpus_has_rle_files():
    assert len(RLE_FILES) >= 10


@pytest.mark.parametrize("path", RLE_FILES, ids=file_id)
@pytest.mark.parametrize("strict", [False, True])
def test_corpus_matches_pydicom(path, strict):
    geom, frames = _frames(path)
    got = _decode_all(geom, frames, strict)
    assert got == _native_bytes(_pydicom_pixels(path, "pydicom"))
    assert got == _native_bytes(_pydicom_pixels(path, "pylibjpeg"))


@pytest.mark.parametrize("path", RLE_FILES, ids=file_id)
def test_corpus_frames_match_peer_decoders(path):
    geom, frames = _frames(path)
    rows, cols, spp, bits, _n = geom
    for frame in frames:
        got = _decode(frame, rows, cols, spp, bits).tobytes()
        assert got == _pylibjpeg_rle(frame, rows, cols, spp, bits)
        assert got == _pydicom_rle(frame, rows, cols, spp, bits)


def _twin(path):
    stem = path.stem.replace("_RLE", "").replace("_rle", "")
    twin = path.with_name(stem + path.suffix)
    return twin if twin.exists() else find(twin.name)


TWINS = [p for p in RLE_FILES if _twin(p) is not None]


def test_corpus_has_twins():
    names = {p.name for p in TWINS}
    assert {"OBXXXX1A_rle.dcm", "SC_rgb_rle.dcm", "MR_small_RLE.dcm", "emri_small_RLE.dcm",
            "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm", "rtdose_rle.dcm"} <= names


@pytest.mark.parametrize("path", TWINS, ids=file_id)
def test_corpus_matches_uncompressed_twin(path):
    geom, frames = _frames(path)
    assert _decode_all(geom, frames) == _native_bytes(_pydicom_pixels(_twin(path)))


# -- DCMTK --------------------------------------------------------------------------------

DCMTK_SOURCES = [
    "OBXXXX1A.dcm",            # 8 bits, one sample, 600 x 800
    "OBXXXX1A_2frame.dcm",     # 8 bits, two frames
    "MR_small.dcm",            # 16 bits signed
    "CT_small.dcm",            # 16 bits signed
    "emri_small.dcm",          # 16 bits, ten frames
    "SC_rgb.dcm",              # 8 bits, three samples
    "SC_rgb_2frame.dcm",
    "SC_rgb_16bit.dcm",        # 16 bits, three samples
    "SC_rgb_32bit_2frame.dcm", # 32 bits, three samples, two frames
    "rtdose.dcm",              # 32 bits, implicit VR, fifteen frames
    "SC_rgb_small_odd.dcm",    # 3 x 3: odd sizes
    "examples_rgb_color.dcm",
]


def _source(name):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    return path


def _dcmcrle(src, out, *args):
    subprocess.run([DCMCRLE, *args, str(src), str(out)], check=True, capture_output=True)
    return out


@needs_dcmtk
@pytest.mark.parametrize("name", DCMTK_SOURCES)
@pytest.mark.parametrize("args", [(), ("+fs", "1")], ids=["fragment-per-frame", "1k-fragments"])
def test_dcmcrle_output_decodes_to_source(name, args, tmp_path):
    src = _source(name)
    rle = _dcmcrle(src, tmp_path / "rle.dcm", *args)
    geom, frames = _frames(rle)
    assert _decode_all(geom, frames, strict=True) == _native_bytes(_pydicom_pixels(src))


def _write_encapsulated(template, frames, out):
    """A copy of an RLE Lossless file (from dcmcrle) with its frames replaced."""
    ds = _quiet_pydicom(template)
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(out, enforce_file_format=True)
    return out


@needs_dcmtk
@pytest.mark.parametrize("name", DCMTK_SOURCES)
def test_our_encoding_decodes_with_dcmdrle(name, tmp_path):
    src = _source(name)
    expected = _native_bytes(_pydicom_pixels(src))
    geom = _geometry(_quiet_pydicom(src))
    rows, cols, spp, bits, n = geom
    size = len(expected) // n
    frames = [_rle.encode(expected[i * size:(i + 1) * size], rows, cols, spp, bits)
              for i in range(n)]
    for frame in frames:
        _check_conformant(frame, rows, cols, spp, bits)
    template = _dcmcrle(src, tmp_path / "template.dcm")
    ours = _write_encapsulated(template, frames, tmp_path / "ours.dcm")
    subprocess.run([DCMDRLE, str(ours), str(tmp_path / "plain.dcm")], check=True,
                   capture_output=True)
    assert _native_bytes(_pydicom_pixels(tmp_path / "plain.dcm")) == expected
    # ... and with pylibjpeg-rle, pydicom and ourselves.
    for i, frame in enumerate(frames):
        want = expected[i * size:(i + 1) * size]
        assert _pylibjpeg_rle(frame, rows, cols, spp, bits) == want
        assert _pydicom_rle(frame, rows, cols, spp, bits) == want
        assert _decode(frame, rows, cols, spp, bits, strict=True).tobytes() == want


# -- round trips --------------------------------------------------------------------------

def _images(rng, rows, cols, spp, dtype):
    shape = (rows, cols, spp)
    n = rows * cols * spp
    info = np.iinfo(dtype)
    yield "noise", rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    yield "constant", np.full(shape, rng.integers(info.min, info.max, dtype=dtype), dtype)
    yield "zeros", np.zeros(shape, dtype)
    lengths = rng.integers(1, 300, n // 2 + 2)
    values = rng.integers(0, 4, len(lengths)).astype(dtype)
    yield "runs", np.repeat(values, lengths)[:n].reshape(shape)
    # Alternating short runs of one and two bytes, the hardest case for run choice.
    pattern = np.resize(np.array([1, 2, 2, 3, 4, 4, 4, 5], dtype), n)
    yield "short-runs", pattern.reshape(shape)
    ramp = np.arange(n, dtype=np.uint64).astype(dtype)
    yield "ramp", ramp.reshape(shape)


WIDTHS = [1, 2, 3, 127, 128, 129, 255, 256, 257]


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.uint64])
@pytest.mark.parametrize("spp", [1, 3])
def test_round_trip(dtype, spp):
    bits = np.dtype(dtype).itemsize * 8
    if spp * bits // 8 > 15:
        pytest.skip("more than 15 segments")
    rng = np.random.default_rng(1234 + bits + spp)
    for cols in WIDTHS:
        rows = int(rng.integers(1, 6))
        for kind, arr in _images(rng, rows, cols, spp, dtype):
            raw = arr.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
            frame = _rle.encode(raw, rows, cols, spp, bits)
            assert len(frame) <= _rle.encode_bound(rows, cols, spp, bits), kind
            _check_conformant(frame, rows, cols, spp, bits)
            out = np.empty((rows, cols, spp), np.dtype(dtype).newbyteorder("<"))
            _rle.decode(frame, out, rows, cols, spp, bits, strict=True)
            np.testing.assert_array_equal(out, arr, err_msg=f"{kind} {rows}x{cols}")
            assert _pylibjpeg_rle(frame, rows, cols, spp, bits) == raw


def test_round_trip_large_frames_cross_chunks():
    # Frames of several stack-buffer chunks, with runs cut at chunk ends.
    rng = np.random.default_rng(7)
    for rows, cols, spp, dtype in [(300, 257, 3, np.uint8), (129, 1000, 1, np.uint16),
                                   (50, 333, 3, np.uint16), (64, 513, 3, np.uint32),
                                   (40, 300, 1, np.float64), (70, 70, 2, np.uint8)]:
        bits = np.dtype(dtype).itemsize * 8
        lengths = rng.integers(1, 400, rows * cols * spp)
        flat = np.repeat(rng.integers(0, 3, len(lengths)), lengths)[:rows * cols * spp]
        arr = flat.astype(dtype).reshape(rows, cols, spp)
        frame = _rle.encode(arr, rows, cols, spp, bits)
        out = np.empty_like(arr)
        _rle.decode(frame, out, rows, cols, spp, bits, strict=True)
        np.testing.assert_array_equal(out, arr)


def test_noop_bytes_and_planes_of_one_run():
    # 2 x 3, 8 bits: -128 no-ops between runs are skipped (PS3.5 G.3.2).
    seg = bytes([0x80, 0xFE, 7, 0x80, 0x02, 1, 2, 3, 0x80, 0x80])
    frame = struct.pack("<16I", 1, 64, *[0] * 14) + seg
    np.testing.assert_array_equal(_decode(frame, 2, 3, 1, 8, strict=True), [7, 7, 7, 1, 2, 3])


def test_out_may_be_any_contiguous_buffer():
    arr = np.arange(64 * 65 * 3, dtype="<u2").reshape(64, 65, 3)
    frame = _rle.encode(arr, 64, 65, 3, 16)
    out = np.zeros((3, 64, 65, 3), "<u2")
    _rle.decode(frame, out[1], 64, 65, 3, 16)  # a frame of a batch, typed dtype
    np.testing.assert_array_equal(out[1], arr)
    batch = bytearray(2 * arr.nbytes)
    _rle.decode(bytearray(frame), memoryview(batch)[arr.nbytes:], 64, 65, 3, 16)
    assert bytes(batch[arr.nbytes:]) == arr.tobytes()


@pytest.mark.parametrize("bits", [8, 16, 32, 64])
@pytest.mark.parametrize("spp", [1, 3])
def test_decode_without_out_makes_the_array(bits, spp):
    if spp * bits // 8 > 15:
        pytest.skip("more than 15 segments")
    dtype = np.dtype(f"<u{bits // 8}")
    arr = np.random.default_rng(bits + spp).integers(0, 250, (9, 11, spp)).astype(dtype)
    frame = _rle.encode(arr, 9, 11, spp, bits)
    got = _rle.decode(frame, None, 9, 11, spp, bits)
    assert got.dtype == dtype and got.flags.c_contiguous and got.flags.writeable
    assert got.shape == ((9, 11) if spp == 1 else (9, 11, spp))
    np.testing.assert_array_equal(got.reshape(arr.shape), arr)


def test_out_must_be_writable_and_contiguous_whatever_its_type():
    arr = np.arange(8 * 8, dtype="<u2").reshape(8, 8, 1)
    frame = _rle.encode(arr, 8, 8, 1, 16)
    read_only = np.empty_like(arr)
    read_only.flags.writeable = False
    strided = np.empty((16, 8, 1), "<u2")[::2]
    for out in (read_only, strided, bytes(arr.nbytes)):
        with pytest.raises((ValueError, TypeError, BufferError)):
            _rle.decode(frame, out, 8, 8, 1, 16)
    with pytest.raises(ValueError, match="needs 128"):
        _rle.decode(frame, np.empty(65, "<u2"), 8, 8, 1, 16)


# -- malformed input ----------------------------------------------------------------------

def _valid_frame():
    rng = np.random.default_rng(99)
    lengths = rng.integers(1, 20, 2000)
    arr = np.repeat(rng.integers(0, 3000, 2000), lengths)[:33 * 31 * 3]
    arr = arr.astype("<u2").reshape(33, 31, 3)
    return arr, _rle.encode(arr, 33, 31, 3, 16)


GEOM = (33, 31, 3, 16)


def _header(count, *offsets):
    offs = list(offsets) + [0] * (15 - len(offsets))
    return struct.pack("<16I", count, *offs)


def _segments(frame):
    header = struct.unpack("<16I", frame[:64])
    offs = list(header[1:1 + header[0]])
    return [frame[a:b] for a, b in zip(offs, offs[1:] + [len(frame)], strict=True)]


def _assemble(segments):
    offs, pos = [], 64
    for s in segments:
        offs.append(pos)
        pos += len(s)
    return _header(len(segments), *offs) + b"".join(segments)


def _expect_error(frame, geom=GEOM, strict=False):
    rows, cols, spp, bits = geom
    out = np.empty(rows * cols * spp * bits // 8, np.uint8)
    with pytest.raises(DecodeError) as info:
        _rle.decode(frame, out, rows, cols, spp, bits, strict)
    assert info.value.codec == "RLE Lossless"


@pytest.mark.parametrize("strict", [False, True])
def test_truncated_frames(strict):
    arr, frame = _valid_frame()
    last_segment = struct.unpack("<16I", frame[:64])[6]
    errors = 0
    for cut in range(len(frame)):
        out = np.empty(arr.nbytes, np.uint8)
        try:
            _rle.decode(frame[:cut], out, *GEOM, strict=strict)
        except DecodeError:
            errors += 1
            continue
        # Cutting only what is not needed may still decode, and then correctly.
        assert cut > last_segment
        assert out.tobytes() == arr.tobytes()
    assert errors >= len(frame) - 4


@pytest.mark.parametrize("strict", [False, True])
def test_bit_flips_never_crash(strict):
    arr, frame = _valid_frame()
    rng = np.random.default_rng(5)
    positions = list(range(64)) + list(rng.integers(64, len(frame), 400))
    out = np.empty(arr.nbytes, np.uint8)
    for pos in positions:
        for bit in range(8):
            bad = bytearray(frame)
            bad[pos] ^= 1 << bit
            try:
                _rle.decode(bad, out, *GEOM, strict=strict)
            except DecodeError:
                pass


def test_random_garbage_never_crashes():
    rng = np.random.default_rng(11)
    out = np.empty(8 * 9 * 3 * 2, np.uint8)
    for _ in range(2000):
        n = int(rng.integers(0, 400))
        body = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        frame = _header(6, *(64 + int(x) for x in np.sort(rng.integers(0, n + 1, 6)))) + body
        for strict in (False, True):
            try:
                _rle.decode(frame, out, 8, 9, 3, 16, strict)
            except DecodeError:
                pass


@pytest.mark.parametrize("case", [
    "count-0", "count-16", "count-mismatch", "offset-past-end", "offset-at-end",
    "offsets-decreasing", "offsets-equal", "offset-in-header", "short-header", "empty",
])
@pytest.mark.parametrize("strict", [False, True])
def test_forged_headers(case, strict):
    _arr, frame = _valid_frame()
    segs = _segments(frame)
    offs = list(struct.unpack("<16I", frame[:64])[1:7])
    body = frame[64:]
    forged = {
        "count-0": _header(0, *offs) + body,
        "count-16": struct.pack("<I", 16) + frame[4:],
        "count-mismatch": _assemble(segs[:5]),
        "offset-past-end": _header(6, *offs[:5], len(frame) + 10) + body,
        "offset-at-end": _header(6, *offs[:5], len(frame)) + body,
        "offsets-decreasing": _header(6, offs[0], offs[2], offs[1], *offs[3:]) + body,
        "offsets-equal": _header(6, offs[0], offs[1], offs[1], *offs[3:]) + body,
        "offset-in-header": _header(6, 60, *offs[1:]) + body,
        "short-header": frame[:63],
        "empty": b"",
    }[case]
    _expect_error(forged, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_segment_too_short(strict):
    # 4 x 4, 8 bits: the only segment yields 15 of 16 bytes.
    frame = _header(1, 64) + bytes([0xF2, 9])
    _expect_error(frame, (4, 4, 1, 8), strict)
    arr, good = _valid_frame()
    segs = _segments(good)
    segs[2] = bytes([0xF2, 9, 0x00])  # a 15-byte plane where 33 * 31 are needed
    _expect_error(_assemble(segs), strict=strict)


def test_overshooting_run_is_clipped_unless_strict():
    # 2 x 2, 8 bits: a replicate run of 6 for a plane of 4 bytes.
    frame = _header(1, 64) + bytes([0xFB, 5])
    np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 8), [5, 5, 5, 5])
    _expect_error(frame, (2, 2, 1, 8), strict=True)
    # Same with a literal run of 6 bytes, and inside a multi-segment frame.
    frame = _header(1, 64) + bytes([0x05, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 8), [1, 2, 3, 4])
    _expect_error(frame, (2, 2, 1, 8), strict=True)
    frame = _assemble([bytes([0xFB, 5]), bytes([0xFD, 6])])
    np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 16).view("<u2"), [0x0506] * 4)
    _expect_error(frame, (2, 2, 1, 16), strict=True)


def test_literal_crossing_segment_end():
    # 2 x 2 x 16 bits: the first segment's literal claims 4 bytes, 3 remain.
    # Lenient: the literal is cut at the segment end, leaving the plane short.
    frame = _assemble([bytes([0x03, 1, 2, 3]), bytes([0xFD, 6])])
    _expect_error(frame, (2, 2, 1, 16), strict=False)
    _expect_error(frame, (2, 2, 1, 16), strict=True)
    # ... and at the frame's end, where the cut literal still completes the plane.
    frame = _header(1, 64) + bytes([0x05, 1, 2, 3, 4])
    np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 8), [1, 2, 3, 4])
    _expect_error(frame, (2, 2, 1, 8), strict=True)


def test_trailing_bytes():
    plane = bytes([0xFD, 3])  # four 3s
    for tail, strict_ok in [(b"", True), (b"\x00", True), (b"\x80\x80\x80", True),
                            (b"\x00\x00", False), (b"\x01\x02\x03", False)]:
        frame = _header(1, 64) + plane + tail
        np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 8), [3, 3, 3, 3])
        if strict_ok:
            np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 8, strict=True), [3] * 4)
        else:
            _expect_error(frame, (2, 2, 1, 8), strict=True)


def test_header_leniency():
    plane = bytes([0xFD, 3])
    late_start = _header(1, 66) + b"\x00\x00" + plane      # first segment not at 64
    stray_offset = _header(1, 64, 999) + plane              # an unused offset not zero
    for frame in (late_start, stray_offset):
        np.testing.assert_array_equal(_decode(frame, 2, 2, 1, 8), [3, 3, 3, 3])
        _expect_error(frame, (2, 2, 1, 8), strict=True)


def test_bad_arguments():
    arr, frame = _valid_frame()
    out = np.empty(arr.nbytes, np.uint8)
    with pytest.raises(ValueError):
        _rle.decode(frame, out[:-1], *GEOM)
    with pytest.raises(ValueError):
        _rle.decode(frame, np.empty(arr.nbytes + 2, np.uint8), *GEOM)
    with pytest.raises((TypeError, ValueError, BufferError)):
        _rle.decode(frame, bytes(arr.nbytes), *GEOM)  # read-only
    with pytest.raises((TypeError, ValueError, BufferError)):
        _rle.decode(frame, np.empty(arr.nbytes * 2, np.uint8)[::2], *GEOM)
    with pytest.raises(TypeError):
        _rle.decode(None, out, *GEOM)
    with pytest.raises(ValueError):
        _rle.decode(frame, out, 0, 31, 3, 16)
    with pytest.raises(ValueError):
        _rle.decode(frame, out, -1, 31, 3, 16)
    with pytest.raises(DecodeError):
        _rle.decode(frame, np.empty(33 * 31 * 2, np.uint8), 33, 31, 1, 12)  # not whole bytes
    with pytest.raises(DecodeError):
        _rle.decode(frame, np.empty(33 * 31 * 24, np.uint8), 33, 31, 3, 64)  # 24 segments
    with pytest.raises(ValueError):
        _rle.encode(arr.tobytes()[:-1], *GEOM)
    with pytest.raises(EncodeError):
        _rle.encode(bytes(33 * 31 * 3 * 3), 33, 31, 3, 24)
    with pytest.raises(EncodeError):
        _rle.encode(bytes(4 * 4 * 16), 4, 4, 16, 8)


# -- the GIL ------------------------------------------------------------------------------

def test_decode_releases_the_gil():
    # A frame of many short runs decodes slowly enough (tens of milliseconds)
    # that the main thread, if the GIL is free, runs in the middle of the call.
    # With the GIL held it never can; a busy machine may keep it off the CPU
    # for one call, so a few calls are allowed.
    rows, cols = 2048, 6144
    run = bytes([0x00, 1, 0xFF, 2])  # a 1-byte literal and a 2-byte replicate run
    frame = _header(1, 64) + run * (rows * cols // 3)
    out = np.empty(rows * cols, np.uint8)
    seen = []
    for _attempt in range(5):
        span = {}

        def work(span=span):
            span["start"] = time.perf_counter()
            _rle.decode(frame, out, rows, cols, 1, 8)
            span["stop"] = time.perf_counter()

        ticks = []
        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            ticks.append(time.perf_counter())
        worker.join()
        start, stop = span["start"], span["stop"]
        quarter = (stop - start) / 4
        seen.append(sum(1 for t in ticks if start + quarter < t < stop - quarter))
        if seen[-1] > 10:
            break
    assert seen[-1] > 10, f"main-thread steps in the middle of each decode: {seen}"
    assert out[:6].tolist() == [1, 2, 2, 1, 2, 2]


# -- many frames in one call -------------------------------------------------------------

def _multi_frame_rle(tmp_path, n=7, rows=10, cols=12):
    """A multi-frame RLE file written by pydicom (the independent encoder)."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 4000, (n, rows, cols), dtype=np.uint16)
    encoded = [_rle.encode(f.astype("<u2").tobytes(), rows, cols, 1, 16) for f in frames]
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.5"
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.481.2", "1.2.3.4"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, n
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    path = tmp_path / "multi.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, frames, encoded


def test_spans_decode_equals_frame_by_frame(tmp_path):
    path, frames, encoded = _multi_frame_rle(tmp_path)
    joined = b"".join(encoded)
    spans, pos = [], 0
    for e in encoded:
        spans.append((pos, len(e)))
        pos += len(e)
    out = np.empty(frames.shape, "<u2")
    _rle.decode_spans(joined, spans, out, 10, 12, 1, 16)
    np.testing.assert_array_equal(out, frames)
    ds = dicomfast.read(path)
    for threads in (None, 2, 3, 16):
        np.testing.assert_array_equal(ds.frames(threads=threads), frames)
    np.testing.assert_array_equal(ds.frames([5, 1], threads=2), frames[[5, 1]])
    np.testing.assert_array_equal(ds.pixel_array, pydicom.dcmread(path).pixel_array)


def test_spans_decode_names_the_bad_frame(tmp_path):
    path, frames, encoded = _multi_frame_rle(tmp_path)
    data = bytearray(path.read_bytes())
    # Forge frame 4's header: 15 segments, more than a 16-bit single-sample frame has.
    at = data.find(encoded[4])
    data[at:at + 4] = struct.pack("<I", 15)
    ds = dicomfast.read(bytes(data))
    for threads in (None, 2):
        with pytest.raises(DecodeError) as info:
            ds.frames(threads=threads)
        assert info.value.frame == 4
        assert info.value.codec == "RLE Lossless"
    with pytest.raises(DecodeError) as info:
        ds.frames([6, 4, 0])
    assert info.value.frame == 4
    np.testing.assert_array_equal(ds.frame(3), frames[3])


def test_spans_decode_checks_its_arguments():
    frame = _rle.encode(bytes(6), 2, 3, 1, 8)
    out = np.empty((2, 2, 3), np.uint8)
    with pytest.raises(ValueError):
        _rle.decode_spans(frame, [(0, len(frame)), (1, len(frame))], out, 2, 3, 1, 8)
    with pytest.raises(ValueError):
        _rle.decode_spans(frame, [(0, len(frame))], out, 2, 3, 1, 8)  # out too big
    with pytest.raises((ValueError, OverflowError)):
        _rle.decode_spans(frame, [(-1, 2), (0, 1)], out, 2, 3, 1, 8)
    _rle.decode_spans(frame, [(0, len(frame))] * 2, out, 2, 3, 1, 8)
    assert not out.any()
