"""Encapsulated frames: each frame's bytes equal pydicom's generate_frames."""

from __future__ import annotations

import struct
import warnings

import pydicom
import pytest
from corpus import all_files, file_id
from pydicom.encaps import generate_frames

import dicomfast
from dicomfast.errors import DicomfastError
from dicomfast.pixels.encaps import split_frames


def _encapsulated_files():
    out = []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
                if "PixelData" in ds and ds["PixelData"].is_undefined_length:
                    out.append(path)
        except Exception:
            continue
    return out


FILES = _encapsulated_files()


def test_enough_files():
    assert len(FILES) > 60


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_frames_match_pydicom(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = pydicom.dcmread(path)
        n = int(pd.get("NumberOfFrames", 1) or 1)
        try:
            expected = list(generate_frames(pd.PixelData, number_of_frames=n))
        except Exception:
            expected = None
        ds = dicomfast.read(path)
    value = ds.PixelData
    ts = str(ds.file_meta.TransferSyntaxUID)
    eot = ds.get("ExtendedOffsetTable")
    eot_lengths = ds.get("ExtendedOffsetTableLengths")
    try:
        frames = split_frames(value, n, ts, eot=eot, eot_lengths=eot_lengths)
    except DicomfastError:
        assert expected is None or len(expected) != n, "pydicom finds the frames"
        return
    assert len(frames) == n
    if expected is not None and len(expected) == n:
        for i in range(n):
            assert bytes(frames.frame(i)) == expected[i], f"frame {i}"


def _item(data: bytes) -> bytes:
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(data)) + data


def test_offset_table_and_split_fragments():
    f0, f1a, f1b = b"\xff\xd8AAAA", b"\xff\xd8BB", b"CC\xff\xd9"
    bot = struct.pack("<2I", 0, 8 + len(f0))
    value = _item(bot) + _item(f0) + _item(f1a) + _item(f1b)
    frames = split_frames(value, 2, "1.2.840.10008.1.2.4.70")
    assert bytes(frames.frame(0)) == f0
    assert bytes(frames.frame(1)) == f1a + f1b
    # Without a table the JPEG start markers split the fragments the same way.
    value = _item(b"") + _item(f0) + _item(f1a) + _item(f1b)
    frames = split_frames(value, 2, "1.2.840.10008.1.2.4.70")
    assert bytes(frames.frame(1)) == f1a + f1b
    # RLE has no markers: 3 fragments for 2 frames cannot be split.
    with pytest.raises(DicomfastError):
        split_frames(value, 2, "1.2.840.10008.1.2.5")


def test_extended_offset_table():
    f0, f1 = b"\x01\x02\x03\x04", b"\x05\x06"
    value = _item(b"") + _item(f0) + _item(f1)
    eot = struct.pack("<2Q", 0, 8 + len(f0))
    lengths = struct.pack("<2Q", len(f0), len(f1))
    frames = split_frames(value, 2, "1.2.840.10008.1.2.5", eot=eot, eot_lengths=lengths)
    assert bytes(frames.frame(0)) == f0 and bytes(frames.frame(1)) == f1


@pytest.mark.parametrize("bad", [
    _item(struct.pack("<I", 99)) + _item(b"abcd"),                 # offset not a fragment
    _item(b"") + struct.pack("<HHI", 0xFFFE, 0xE000, 400) + b"xx",  # fragment past the end
    struct.pack("<HHI", 0x7FE0, 0x0010, 0),                          # not an item
    b"",                                                             # no table at all
])
def test_malformed(bad):
    with pytest.raises(DicomfastError):
        split_frames(bad, 1, "1.2.840.10008.1.2.4.70")


@pytest.mark.parametrize("cap", [None, 4, 6])
def test_encapsulate_then_split(cap):
    from pydicom.encaps import generate_frames

    from dicomfast.pixels.encaps import encapsulate

    frames = [b"\xff\xd8" + bytes(range(k, k + 11)) + b"\xff\xd9" for k in range(5)]
    value, eot, lengths = encapsulate(frames, max_fragment_size=cap)
    found = split_frames(value, 5, "1.2.840.10008.1.2.4.70")
    assert [bytes(found.frame(i)).rstrip(b"\0") for i in range(5)] == frames
    assert [f.rstrip(b"\0") for f in generate_frames(value, number_of_frames=5)] == frames
    no_bot, _, _ = encapsulate(frames, with_offset_table=False, max_fragment_size=cap)
    found = split_frames(no_bot, 5, "1.2.840.10008.1.2.4.70", eot=eot, eot_lengths=lengths)
    assert [bytes(found.frame(i)) for i in range(5)] == frames
