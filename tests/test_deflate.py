"""Deflated Image Frame Compression (PS3.5 §8.2.16, §A.4.13) through zlib.

Frames are deflated here by Python's zlib (an independent encoder) and decoded
by dicomfast; dicomfast's encoder is checked by inflating with Python's zlib.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import find
from pydicom.encaps import encapsulate

import dicomfast
from dicomfast.errors import DecodeError, EncodeError
from dicomfast.pixels import ImageParams, decode_frame, encode_frame, pixel_source

try:
    from dicomfast._native import _deflate
except ImportError:
    pytest.skip("dicomfast was built without zlib (cmake/zlib.cmake found no library)",
                allow_module_level=True)

DEFLATED = "1.2.840.10008.1.2.8.1"
SAMPLES = Path(dicomfast.__file__).parent / "samples"
# 16-bit signed, multi-frame, RGB, 16-bit RGB, YBR_FULL_422, 1-bit, palette, planar RGB
SOURCES = ["MR_small.dcm", "emri_small.dcm", "SC_rgb.dcm", "SC_rgb_16bit_2frame.dcm",
           "SC_ybr_full_422_uncompressed.dcm", "liver.dcm", "OBXXXX1A.dcm", "rgb_planar.dcm"]


def _raw_deflate(data: bytes, wbits: int = -15) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    out = c.compress(data) + c.flush()
    return out + b"\0" * (len(out) & 1)  # §A.4.13: even length, NUL pad


def _native_frames(name):
    path = find(name) or (SAMPLES / name if (SAMPLES / name).is_file() else None)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = dicomfast.read(path)
    buf, tag, little, encapsulated, _ = pixel_source(ds)
    assert little and not encapsulated
    params = ImageParams.from_dataset(ds, tag)
    raw = bytes(memoryview(buf).cast("B"))
    n = params.number_of_frames
    if params.bits_allocated == 1:
        # each frame's bits start a new byte stream (pydicom's per-frame split)
        bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
        per = params.pixels_per_frame
        frames = [np.packbits(bits[i * per:(i + 1) * per], bitorder="little").tobytes()
                  for i in range(n)]
    else:
        size = len(raw) // n
        frames = [raw[i * size:(i + 1) * size] for i in range(n)]
    return ds, params, frames


@pytest.mark.parametrize("name", SOURCES)
def test_frames_decode_to_the_native_pixels(name):
    ds, params, frames = _native_frames(name)
    expected = ds.pixel_array
    expected = expected if params.number_of_frames > 1 else expected[None]
    one = replace(params, number_of_frames=1)
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(decode_frame(_raw_deflate(frame), one, DEFLATED),
                                      expected[i])


@pytest.mark.parametrize("name", [n for n in SOURCES if "422" not in n])
def test_encoder_output_is_raw_deflate(name):
    ds, params, frames = _native_frames(name)
    arr = ds.pixel_array
    arr = arr if params.number_of_frames > 1 else arr[None]
    one = replace(params, number_of_frames=1)
    for i, frame in enumerate(frames):
        encoded = encode_frame(arr[i], DEFLATED, one)
        assert len(encoded) % 2 == 0
        assert zlib.decompressobj(-15).decompress(encoded) == frame
        np.testing.assert_array_equal(decode_frame(encoded, one, DEFLATED), arr[i])


def test_ybr_full_422_is_not_encoded():
    ds, params, _ = _native_frames("SC_ybr_full_422_uncompressed.dcm")
    with pytest.raises(EncodeError):
        encode_frame(ds.pixel_array, DEFLATED, params)


def test_whole_file(tmp_path):
    # pydicom 3.0 cannot write this transfer syntax: write a same-length stand-in
    # UID and put the real one into the file meta afterwards.
    src = find("emri_small.dcm")
    if src is None:
        pytest.skip("emri_small.dcm is not in the corpus")
    ds = pydicom.dcmread(src)
    n = int(ds.NumberOfFrames)
    size = len(ds.PixelData) // n
    ds.PixelData = encapsulate([_raw_deflate(ds.PixelData[i * size:(i + 1) * size])
                                for i in range(n)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue().replace(b"1.2.840.10008.1.2.4.50", DEFLATED.encode() + b"\0", 1)
    ours = dicomfast.read(data)
    np.testing.assert_array_equal(ours.pixel_array, dicomfast.read(src).pixel_array)
    np.testing.assert_array_equal(ours.frames(threads=3), dicomfast.read(src).pixel_array)


def test_zlib_wrapper_is_lenient_unless_strict():
    _, params, frames = _native_frames("MR_small.dcm")
    wrapped = _raw_deflate(frames[0], wbits=15)
    expected = decode_frame(_raw_deflate(frames[0]), params, DEFLATED)
    np.testing.assert_array_equal(decode_frame(wrapped, params, DEFLATED), expected)
    with pytest.raises(DecodeError):
        decode_frame(wrapped, params, DEFLATED, strict=True)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "short", "long"])
def test_corrupt_frames_raise_decode_error(capfd, damage):
    _, params, frames = _native_frames("MR_small.dcm")
    good = frames[0]
    bad = {
        "empty": b"",
        "truncated": _raw_deflate(good)[:500],
        "garbage": bytes([0xFF, 0xFF]) + _raw_deflate(good)[2:],
        "short": _raw_deflate(good[:-2]),
        "long": _raw_deflate(good + b"\0\0"),
    }[damage]
    strict = damage == "long"  # data past the frame is only an error when strict
    with pytest.raises(DecodeError) as exc:
        decode_frame(bad, params, DEFLATED, strict=strict)
    assert exc.value.codec == "Deflate"
    assert capfd.readouterr() == ("", "")
    if damage == "long":
        np.testing.assert_array_equal(decode_frame(bad, params, DEFLATED),
                                      decode_frame(_raw_deflate(good), params, DEFLATED))


def test_levels():
    data = bytes(range(256)) * 64
    sizes = [len(_deflate.deflate(data, level)) for level in (0, 1, 9)]
    assert sizes[0] > sizes[1] >= sizes[2]
    for level in (0, 1, 9):
        assert zlib.decompressobj(-15).decompress(_deflate.deflate(data, level)) == data
    with pytest.raises(ValueError):
        _deflate.deflate(data, 12)

