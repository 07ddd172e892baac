"""Hostile input for the reader: what comes out of dicomfast.read must be a dataset
or a DicomfastError, never another exception, a crash, a hang or a memory blow-up.

Inputs are real files (pydicom's test files, the package samples) cut short or with
one field forged, plus what only an encoder can make (10,000-deep sequences, deflate
bombs); a small encoder below builds those. Where the reader is lenient the test says
which DicomfastWarning it expects; where the scanner reports an offset, the test
checks it against the header it forged. Some tests pin reader
behaviour that was wrong once; they stay as regression tests.
"""

from __future__ import annotations

import os
import random
import struct
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from corpus import find
from gil import ticks_while

import dicomfast
from dicomfast._native import _scan
from dicomfast.errors import (
    DicomfastError,
    DicomfastWarning,
    EncodingWarning,
    InvalidDicomError,
    MalformedDataError,
    TruncatedDataError,
    UnsupportedTransferSyntaxError,
)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIM = 0xFFFEE00D
SEQ_DELIM = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
SQ_TAG = 0x00081115  # Referenced Series Sequence: SQ in the dictionary, for implicit VR
PATIENT_NAME = 0x00100010
MODALITY = 0x00080060

# Flags of df_element (df_scan.h), as the index reports them.
EL_FRAGMENTS = 0x0008
EL_IMPLICIT = 0x0020
EL_BIG_ENDIAN = 0x0040
EL_ODD_LENGTH = 0x0200
# df_scan_result.warnings bits (df_scan.h).
WARN_TRAILING_BYTES = 0x01
WARN_ODD_LENGTH = 0x02
WARN_STRAY_DELIMITER = 0x04
WARN_MISSING_DELIMITER = 0x40
WARN_TRUNCATED_VALUE = 0x80


# ------------------------------------------------------------------------------------
# A small encoder (PS3.5 §7.1 element headers, §7.5 items, PS3.10 §7.1 File Meta)

_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def _tag(tag: int, little: bool = True) -> bytes:
    return struct.pack("<HH" if little else ">HH", tag >> 16, tag & 0xFFFF)


def elem(tag: int, vr: str, value: bytes = b"", *, explicit: bool = True,
         little: bool = True, length: int | None = None) -> bytes:
    """One element; `length` overrides the length field (the value is still appended)."""
    n = len(value) if length is None else length
    e = "<" if little else ">"
    if not explicit:
        head = _tag(tag, little) + struct.pack(e + "I", n)
    elif vr in _LONG_VRS:
        head = _tag(tag, little) + vr.encode() + b"\0\0" + struct.pack(e + "I", n)
    else:
        head = _tag(tag, little) + vr.encode() + struct.pack(e + "H", n)
    return head + value


def item(content: bytes = b"", *, length: int | None = None, little: bool = True) -> bytes:
    n = len(content) if length is None else length
    return _tag(ITEM, little) + struct.pack("<I" if little else ">I", n) + content


def delimiter(tag: int, little: bool = True) -> bytes:
    return _tag(tag, little) + b"\0\0\0\0"


def text(s: str) -> bytes:
    b = s.encode("ascii")
    return b + b" " * (len(b) & 1)


def uid(s: str | bytes) -> bytes:
    b = s.encode("ascii") if isinstance(s, str) else s
    return b + b"\0" * (len(b) & 1)


def file_meta(ts: str | bytes | None = EXPLICIT_LE) -> bytes:
    """Preamble, 'DICM' and a File Meta group (always explicit VR LE, PS3.10 §7.1)."""
    body = (elem(0x00020001, "OB", b"\0\1")
            + elem(0x00020002, "UI", uid("1.2.840.10008.5.1.4.1.1.7"))
            + elem(0x00020003, "UI", uid("1.2.3.4.5.6.7")))
    if ts is not None:
        body += elem(0x00020010, "UI", uid(ts))
    body += elem(0x00020012, "UI", uid("1.2.3.4.99"))
    return b"\0" * 128 + b"DICM" + elem(0x00020000, "UL", struct.pack("<I", len(body))) + body


def nested(depth: int, *, explicit: bool = True, undefined: bool = False) -> bytes:
    """`depth` sequences, each holding one item holding the next; the innermost item
    holds Patient Name 'Deep^Value'. Built front to back in O(depth): a defined length
    is the arithmetic size of what is inside, never measured by re-encoding."""
    inner = elem(PATIENT_NAME, "PN", text("Deep^Value"), explicit=explicit)
    sq_head = 12 if explicit else 8
    per_level = sq_head + 8
    parts = []
    for level in range(depth):
        if undefined:
            sq_len = item_len = UNDEFINED
        else:
            item_len = (depth - level - 1) * per_level + len(inner)
            sq_len = item_len + 8
        parts.append(elem(SQ_TAG, "SQ", explicit=explicit, length=sq_len))
        parts.append(item(length=item_len))
    parts.append(inner)
    if undefined:
        parts.append((delimiter(ITEM_DELIM) + delimiter(SEQ_DELIM)) * depth)
    return b"".join(parts)


def deflate(chunks: Iterable[bytes]) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return b"".join(c.compress(chunk) for chunk in chunks) + c.flush()


def zero_bomb(n_mib: int) -> bytes:
    """A raw deflate stream of n_mib MiB of zeros, ~1 KiB per MiB.

    One MiB is compressed once and ended with a full flush, which byte-aligns the
    output and empties the window, so the same bytes repeated are a valid stream
    (RFC 1951 §3.2.3); an empty final block ends it. The test never holds the
    inflated data."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    return block * n_mib + end


# ------------------------------------------------------------------------------------
# Real files and reading everything in them

SAMPLES = sorted((Path(dicomfast.__file__).parent / "samples").glob("*.dcm"))
PYDICOM_FILES = ["CT_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "image_dfl.dcm",
                 "JPEG2000.dcm", "MR_small_RLE.dcm"]
TRUNCATION_FILES = ([pytest.param(n, id=n) for n in PYDICOM_FILES]
                    + [pytest.param(str(p), id=p.name) for p in SAMPLES])


def real(name: str) -> bytes:
    if os.path.sep in name:
        return Path(name).read_bytes()
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the test corpus")
    return path.read_bytes()


def _comparable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        return ("bytes", len(b), zlib.crc32(b))
    return repr(value)  # repr: NaN compares equal to itself, PersonName to PersonName


def flatten(ds: Any, path: tuple = ()) -> list[tuple]:
    """(path, VR, value) of every element in preorder, every value decoded."""
    out: list[tuple] = []
    if ds is None:
        return out
    for el in ds:
        here = (*path, el.tag)
        if el.VR == "SQ":
            out.append((here, "SQ", None))
            for i, sub in enumerate(el.value):
                out.extend(flatten(sub, (*here, i)))
        else:
            out.append((here, el.VR, _comparable(el.value)))
    return out


def read_everything(data: bytes, **kw: Any) -> tuple[Any, list[tuple], list[type]]:
    """read() then decode every value and the pixel data, as a user would.

    Returns (dataset, flattened elements of meta then data set, warning categories).
    Only DicomfastError may come out; every warning must be a DicomfastWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = dicomfast.read(data, **kw)
        flat = flatten(ds.file_meta, ("meta",)) + flatten(ds)
        if any(t in ds for t in (PIXEL_DATA, 0x7FE00008, 0x7FE00009)):
            try:
                ds.pixel_array  # noqa: B018 - decoding is the point
            except DicomfastError:
                pass  # cut-short or undecodable pixel data: a named error is right
    stray = [w for w in caught if not issubclass(w.category, DicomfastWarning)]
    assert not stray, f"non-dicomfast warnings: {[str(w.message) for w in stray]}"
    return ds, flat, [w.category for w in caught]


class Entry(NamedTuple):
    tag: int
    vr: str
    flags: int
    header: int  # absolute offset of the tag
    value: int  # absolute offset of the value
    length: int


def entries(ds: Any) -> list[Entry]:
    """The scanner's index of a dataset read from a file, in stream order."""
    idx = ds._index
    return [Entry(idx.tag(i), idx.vr(i), idx.flags(i), idx.header_offset(i), idx.offset(i),
                  idx.length(i)) for i in range(idx.count)]


def top_level_headers(ds: Any) -> list[int]:
    idx = ds._index
    out, j = [], 0
    while j < idx.count:
        out.append(idx.header_offset(j))
        j = idx.end(j)
    return out


def find_entry(data: bytes, tag: int, nth: int = 0, *, meta: bool = False) -> Entry:
    ds = dicomfast.read(data)
    found = [e for e in entries(ds.file_meta if meta else ds) if e.tag == tag]
    e = found[nth]
    # Cross-check the index against the bytes: the tag is where it says it is.
    little = not e.flags & EL_BIG_ENDIAN
    assert data[e.header:e.header + 4] == _tag(tag, little)
    return e


def forge_length(data: bytes, e: Entry, value: int) -> bytes:
    """`data` with the length field of entry `e` set to `value`.

    The length field ends where the value starts: 2 bytes for explicit VR short
    forms (8-byte header), else 4 (PS3.5 §7.1.2, §7.1.3, §7.5)."""
    little = not e.flags & EL_BIG_ENDIAN
    short = (e.value - e.header == 8 and e.tag >> 16 != 0xFFFE
             and not e.flags & EL_IMPLICIT)
    size = 2 if short else 4
    out = bytearray(data)
    out[e.value - size:e.value] = value.to_bytes(size, "little" if little else "big")
    return bytes(out)


def raises_at(data: bytes, exc_type: type[MalformedDataError], offset: int, tag: int,
              **kw: Any) -> MalformedDataError:
    with pytest.raises(exc_type) as info:
        read_everything(data, **kw)
    assert (info.value.offset, info.value.tag) == (offset, tag), str(info.value)
    return info.value


# ------------------------------------------------------------------------------------
# Truncation at every 97th byte


@pytest.fixture(scope="module")
def full_reads() -> Any:
    """name -> (bytes, flattened full read, offsets where an element starts, deflated)."""
    cache: dict[str, tuple[list[tuple], set[int], bool]] = {}

    def get(name: str) -> tuple[bytes, list[tuple], set[int], bool]:
        data = real(name)
        if name not in cache:
            ds, flat, caught = read_everything(data)
            assert not caught, f"{name} itself reads with warnings {caught}"
            deflated = ds.transfer_syntax is not None and ds.transfer_syntax.is_deflated
            bounds = {len(data)} | set(top_level_headers(ds.file_meta))
            bounds.add(_meta_end(data))
            if deflated:
                # A deflated data set's offsets are in the inflated bytes; what can be
                # cut without loss is only what follows the deflate stream (image_dfl.dcm
                # has 8 bytes there).
                bounds |= set(range(_deflate_end(data), len(data)))
            else:
                bounds |= set(top_level_headers(ds))
            cache[name] = (flat, bounds, deflated)
        return (data, *cache[name])

    return get


def _meta_end(data: bytes) -> int:
    return max(e.value + e.length for e in entries(dicomfast.read(data).file_meta))


def _deflate_end(data: bytes) -> int:
    """Where the deflate stream after the File Meta ends (PS3.5 §A.5)."""
    probe = zlib.decompressobj(-zlib.MAX_WBITS)
    probe.decompress(data[_meta_end(data):])
    assert probe.eof
    return len(data) - len(probe.unused_data)


def _cuts(data: bytes) -> range:
    return range(0, len(data), 97)


# The 'DICM' prefix ends at 132 and the File Meta needs 2 more bytes to be recognised;
# a file cut before that is not recognisable as DICOM at all.
_PREFIX_LEN = 134


@pytest.mark.parametrize("name", TRUNCATION_FILES)
def test_truncated_strict(name, full_reads):
    """strict: a cut file raises MalformedDataError (TruncatedDataError mostly), or
    InvalidDicomError before the prefix is complete; it reads only when the cut is
    on an element boundary, and then gives a prefix of the full file's elements."""
    data, full, bounds, deflated = full_reads(name)
    for cut in _cuts(data):
        try:
            _, flat, caught = read_everything(data[:cut], strict=True)
        except InvalidDicomError:
            assert cut < _PREFIX_LEN, f"cut {cut}: InvalidDicomError after a complete prefix"
            continue
        except MalformedDataError:
            continue
        except Exception as exc:
            raise AssertionError(f"cut {cut}: {type(exc).__name__} escaped") from exc
        assert not caught, f"cut {cut}: strict read warned {caught}"
        assert flat == full[:len(flat)], f"cut {cut}: not a prefix of the full read"
        if not deflated:  # deflated: see test_truncated_deflate_stream_is_an_error
            assert cut in bounds, f"cut {cut} inside an element read without error"


@pytest.mark.parametrize("name", TRUNCATION_FILES)
def test_truncated_lenient(name, full_reads):
    """lenient: a DicomfastError, or a dataset whose elements are the full file's up to
    the last one (which may be cut short); every value and the pixel data decode or
    raise a DicomfastError (cut pixel data: MalformedDataError, never numpy's)."""
    data, full, _, _ = full_reads(name)
    for cut in _cuts(data):
        try:
            _, flat, _ = read_everything(data[:cut])
        except DicomfastError:
            continue
        except Exception as exc:
            raise AssertionError(f"cut {cut}: {type(exc).__name__} escaped") from exc
        if flat:
            n = len(flat)
            assert flat[:-1] == full[:n - 1], f"cut {cut}: not a prefix of the full read"
            assert flat[-1][0] == full[n - 1][0], f"cut {cut}: last element is not the next"


def test_truncated_lenient_never_silent(full_reads):
    silent = []
    for param in TRUNCATION_FILES:
        name = param.values[0]
        data, _, bounds, _ = full_reads(name)
        for cut in _cuts(data):
            try:
                _, _, caught = read_everything(data[:cut])
            except DicomfastError:
                continue
            if not caught and cut not in bounds:
                silent.append((Path(name).name, cut))
    assert not silent, f"read without error or warning: {silent[:10]} ..."


@pytest.mark.parametrize("name", [
    pytest.param("image_dfl.dcm", id="image_dfl"),
    pytest.param(str(Path(dicomfast.__file__).parent / "samples" / "ct_deflated.dcm"),
                 id="ct_deflated")])
def test_truncated_deflate_stream_is_an_error(name):
    data = real(name)
    for cut in range(_meta_end(data), _deflate_end(data), 7):
        with pytest.raises(MalformedDataError):
            read_everything(data[:cut], strict=True)


def test_cut_pixel_data_is_a_named_error():
    data = real("CT_small.dcm")
    pixels = find_entry(data, PIXEL_DATA)
    cut = data[:pixels.value + 1001]  # inside the value, an odd number of bytes in
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(cut)
    assert ds[PIXEL_DATA].length == 1001
    with pytest.raises(MalformedDataError) as info:
        ds.pixel_array  # noqa: B018
    assert info.value.tag == PIXEL_DATA
    raises_at(cut, TruncatedDataError, pixels.header, PIXEL_DATA, strict=True)


def test_cut_inside_long_header():
    """8 to 11 bytes of a 12-byte explicit VR header (OB/OW/SQ/UN/UT...) left: strict
    raises at the header. Lenient raises too today, while it ignores a header cut
    to fewer than 8 bytes; either a named error or a warning is acceptable."""
    data = real("CT_small.dcm")
    pixels = find_entry(data, PIXEL_DATA)
    cut = data[:pixels.header + 10]
    raises_at(cut, TruncatedDataError, pixels.header, PIXEL_DATA, strict=True)
    try:
        _, flat, caught = read_everything(cut)
    except TruncatedDataError as exc:
        assert (exc.offset, exc.tag) == (pixels.header, PIXEL_DATA)
    else:
        assert caught and PIXEL_DATA not in [f[0][0] for f in flat]


# ------------------------------------------------------------------------------------
# Forged lengths: the error names the forged element and its header's offset


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm"])
def test_forged_top_level_short_length(name):
    """A 16-bit length past the end: truncation. strict raises at the header; lenient
    keeps the rest of the file as the value and warns."""
    data = real(name)
    e = find_entry(data, PATIENT_NAME)
    bad = forge_length(data, e, 0xFFFE)
    raises_at(bad, TruncatedDataError, e.header, PATIENT_NAME, strict=True)
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(bad)
    assert ds.keys()[-1] == PATIENT_NAME  # everything after it became its value
    assert ds[PATIENT_NAME].length == len(data) - e.value


@pytest.mark.parametrize("value", [0xFFFFFFF0, 0x7FFFFFFF])
def test_forged_pixel_data_length(value):
    data = real("CT_small.dcm")
    e = find_entry(data, PIXEL_DATA)
    raises_at(forge_length(data, e, value), TruncatedDataError, e.header, PIXEL_DATA,
              strict=True)


def test_forged_length_inside_defined_item():
    """rtplan: implicit VR, defined-length sequences and items. A value running past
    its item is an error in both modes: the item's end is known, so it is not a cut."""
    data = real("rtplan.dcm")
    e = find_entry(data, 0x300A0012)  # Fraction Group Number, in the first item
    for value in (e.length + 200, 0xFFFFFFF0):
        bad = forge_length(data, e, value)
        for strict in (True, False):
            exc = raises_at(bad, MalformedDataError, e.header, 0x300A0012, strict=strict)
            assert not isinstance(exc, TruncatedDataError)


def test_forged_item_length():
    data = real("rtplan.dcm")
    e = find_entry(data, ITEM)  # first item of (300A,0010), a defined-length sequence
    bad = forge_length(data, e, 0xFFFFF0)
    for strict in (True, False):
        raises_at(bad, TruncatedDataError, e.header, ITEM, strict=strict)


def test_forged_top_level_sequence_length():
    data = real("rtplan.dcm")
    e = find_entry(data, 0x300A0010)
    bad = forge_length(data, e, 0xFFFFF0)
    raises_at(bad, TruncatedDataError, e.header, 0x300A0010, strict=True)
    # Lenient takes it for a cut file, the sequence swallows the top-level elements
    # after it, and the first of those is not an item.
    with pytest.raises(MalformedDataError):
        read_everything(bad)


def test_forged_nested_sequence_length():
    data = real("rtplan.dcm")
    e = find_entry(data, 0x300C0004)  # a sequence inside an item
    bad = forge_length(data, e, 0xFFFFF0)
    for strict in (True, False):
        raises_at(bad, MalformedDataError, e.header, 0x300C0004, strict=strict)


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "MR_small_RLE.dcm"])
@pytest.mark.parametrize("which", [0, 1], ids=["offset_table", "first_fragment"])
def test_forged_fragment_length(name, which):
    data = real(name)
    pixels = find_entry(data, PIXEL_DATA)
    assert pixels.flags & EL_FRAGMENTS
    items = [e for e in entries(dicomfast.read(data)) if e.tag == ITEM]
    e = [e for e in items if e.header >= pixels.value][which]
    raises_at(forge_length(data, e, 0xFFFFF0), TruncatedDataError, e.header, ITEM,
              strict=True)
    # Lenient: the encapsulated data is undefined-length and so runs to the end of the
    # data; a fragment past it looks like a cut file: kept short, with a warning.
    assert EncodingWarning in read_everything(forge_length(data, e, 0xFFFFF0))[2]
    for strict in (True, False):  # PS3.5 §A.4: fragments have defined lengths
        raises_at(forge_length(data, e, UNDEFINED), MalformedDataError, e.header, ITEM,
                  strict=strict)


def test_undefined_length_on_ut():
    """PS3.5 §7.1.2: only SQ, UN and encapsulated OB/OW may have undefined length."""
    data = real("reportsi.dcm")  # explicit VR LE SR; Text Value (0040,A160) is UT
    e = find_entry(data, 0x0040A160)
    assert e.vr == "UT"
    for strict in (True, False):
        raises_at(forge_length(data, e, UNDEFINED), MalformedDataError, e.header,
                  0x0040A160, strict=strict)


@pytest.mark.parametrize("name,tag", [("rtplan.dcm", 0x00080012),
                                      ("CT_small.dcm", 0x00020001)],
                         ids=["implicit_DA", "explicit_OB_meta"])
def test_undefined_length_on_non_container_names_the_element(name, tag):
    data = real(name)
    e = find_entry(data, tag, meta=tag >> 16 == 2)
    raises_at(forge_length(data, e, UNDEFINED), MalformedDataError, e.header, tag)


def test_undefined_length_on_non_sq_is_an_error():
    """An undefined length on a DA: a named error at the element's header."""
    data = real("rtplan.dcm")
    e = find_entry(data, 0x00080012)
    with pytest.raises(MalformedDataError) as info:
        read_everything(forge_length(data, e, UNDEFINED))
    assert info.value.offset == e.header


# ------------------------------------------------------------------------------------
# Deep nesting (PS3.5 §7.5): a depth limit, no recursion, bounded memory

_DEEP_CASES = [
    pytest.param(True, False, id="explicit-defined"),
    pytest.param(True, True, id="explicit-undefined"),
    pytest.param(False, False, id="implicit-defined"),
    pytest.param(False, True, id="implicit-undefined"),
]


def _deep_file(depth: int, explicit: bool, undefined: bool) -> tuple[bytes, int, int]:
    """(file, offset of the first sequence header, bytes per level)."""
    meta = file_meta(EXPLICIT_LE if explicit else IMPLICIT_LE)
    data = meta + nested(depth, explicit=explicit, undefined=undefined)
    per_level = (12 if explicit else 8) + 8  # sequence header + item header
    return data, len(meta), per_level


def _innermost(ds: Any, depth: int) -> Any:
    for _ in range(depth):
        seq = ds[SQ_TAG].value
        assert len(seq) == 1
        ds = seq[0]
    return ds


@pytest.mark.parametrize("explicit,undefined", _DEEP_CASES)
def test_10000_deep_hits_the_depth_limit(explicit, undefined):
    data, base, per_level = _deep_file(10_000, explicit, undefined)
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        for strict in (True, False):
            # Level 64 (0-based) is depth 65, one past the default limit of 64.
            raises_at(data, MalformedDataError, base + 64 * per_level, SQ_TAG, strict=strict)
        # The highest limit allowed, 512, is still a limit.
        raises_at(data, MalformedDataError, base + 512 * per_level, SQ_TAG, max_depth=512)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 10, "a hang guard, not a benchmark"
    assert peak < 16 << 20, f"{peak} bytes traced for a {len(data)}-byte input"


@pytest.mark.parametrize("explicit,undefined", _DEEP_CASES)
def test_depth_limit_is_exact_and_configurable(explicit, undefined):
    for depth, max_depth in ((63, None), (64, None), (8, 8), (200, 200), (512, 512)):
        data, base, per_level = _deep_file(depth, explicit, undefined)
        kw = {} if max_depth is None else {"max_depth": max_depth}
        ds = dicomfast.read(data, strict=True, **kw)
        assert _innermost(ds, depth).PatientName == "Deep^Value"
        limit = max_depth or 64
        raises_at(_deep_file(limit + 1, explicit, undefined)[0], MalformedDataError,
                  base + limit * per_level, SQ_TAG, **kw)
    # Lowering the limit refuses what the default reads.
    data, base, per_level = _deep_file(10, explicit, undefined)
    raises_at(data, MalformedDataError, base + 3 * per_level, SQ_TAG, max_depth=3)


def test_depth_limit_has_a_hard_ceiling():
    data, _, _ = _deep_file(600, True, True)
    with pytest.raises(ValueError) as info:
        dicomfast.read(data, max_depth=10_000)
    assert not isinstance(info.value, DicomfastError)  # an argument error, not the data's


# ------------------------------------------------------------------------------------
# Transfer syntax, File Meta and prefix


def _with_ts(data: bytes, value: bytes) -> bytes:
    """A real file with its Transfer Syntax UID value replaced by `value`, padded or
    cut to the same length so that nothing else moves."""
    e = find_entry(data, 0x00020010, meta=True)
    value = value[:e.length].ljust(e.length, b"\0")
    return data[:e.value] + value + data[e.value + e.length:]


@pytest.mark.parametrize("value", [b"1.2.3.4.5", b"1.2.840.10008.1.1",
                                   b"\xff\xfe\x80garbage\x01\x02", b"1.2.840.10008.1.2.9"],
                         ids=["unknown", "sop_class", "garbage", "near_miss"])
@pytest.mark.parametrize("strict", [True, False])
def test_bogus_transfer_syntax(value, strict):
    data = _with_ts(real("CT_small.dcm"), value)
    with pytest.raises(UnsupportedTransferSyntaxError):
        dicomfast.read(data, strict=strict)


def test_empty_transfer_syntax():
    """An empty (all-NUL) UID: strict refuses the File Meta; lenient reads the data
    set as explicit VR LE, or implicit if the first element says so (PS3.5 §A.1
    heuristics), silently."""
    for name, implicit in (("CT_small.dcm", False), ("rtplan.dcm", True)):
        data = _with_ts(real(name), b"")
        with pytest.raises(InvalidDicomError):
            dicomfast.read(data, strict=True)
        ds, _, caught = read_everything(data)
        assert caught == []
        assert ds.transfer_syntax is None and ds.is_implicit_VR is implicit
        assert flatten(ds) == flatten(dicomfast.read(real(name)))


@pytest.mark.parametrize("name,implicit", [("CT_small.dcm", False), ("rtplan.dcm", True)])
def test_missing_file_meta(name, implicit):
    """Preamble + 'DICM' then directly the data set: strict raises InvalidDicomError;
    lenient guesses explicit VR LE / implicit VR LE from the first element and reads
    the data set, today without a warning and with file_meta None."""
    data = real(name)
    ds_full = dicomfast.read(data)
    start = top_level_headers(ds_full)[0]
    bare = data[:132] + data[start:]
    with pytest.raises(InvalidDicomError):
        dicomfast.read(bare, strict=True)
    ds, flat, caught = read_everything(bare)
    assert caught == []
    assert ds.file_meta is None and ds.transfer_syntax is None
    assert ds.is_implicit_VR is implicit
    assert flat == flatten(ds_full)
    # Without the prefix either it is not recognisably DICOM unless forced.
    with pytest.raises(InvalidDicomError):
        dicomfast.read(data[start:])
    assert flatten(dicomfast.read(data[start:], force=True)) == flat


@pytest.mark.parametrize("data", [b"", b"\0", b"DIC", b"\0" * 7],
                         ids=["empty", "1", "3", "7"])
@pytest.mark.parametrize("force", [False, True])
def test_too_short_is_not_dicom(data, force):
    """Fewer than 8 bytes cannot hold one element header: not DICOM, forced or not."""
    with pytest.raises(InvalidDicomError):
        dicomfast.read(data, force=force)


@pytest.mark.parametrize("data,strict_error", [
    (b"DICM", InvalidDicomError), (b"\0" * 128 + b"DICM", InvalidDicomError),
    (b"DICM\2\0", TruncatedDataError)], ids=["bare_prefix", "preamble_prefix", "prefix+2"])
def test_prefix_only(data, strict_error):
    """'DICM' (with or without the preamble) and nothing usable after it: strict says it
    is not DICOM, or that the File Meta group it starts is cut short; lenient returns an
    empty data set, today without a warning."""
    with pytest.raises(strict_error):
        dicomfast.read(data, strict=True)
    try:
        ds, flat, _ = read_everything(data)
    except DicomfastError:
        return
    assert flat == []
    assert ds.file_meta is None or len(ds.file_meta) == 0


def test_zeros_not_dicom_unless_forced():
    data = b"\0" * 131  # no 'DICM' at 128, no group 0002 at 0
    with pytest.raises(InvalidDicomError):
        dicomfast.read(data)
    try:
        read_everything(data, force=True)  # zeros are implicit VR (0000,0000) UL, empty
    except DicomfastError:
        pass


def test_random_bytes():
    """Random input, bare or behind a valid prefix and File Meta: a DicomfastError or
    a dataset whose every value decodes (or raises a DicomfastError)."""
    rng = random.Random(20240601)
    prefixes = [b"", b"\0" * 128 + b"DICM", file_meta(EXPLICIT_LE), file_meta(IMPLICIT_LE),
                file_meta("1.2.840.10008.1.2.2"), file_meta(DEFLATED_LE)]
    for i in range(600):
        body = rng.randbytes(rng.choice([1, 3, 8, 13, 64, 300, 2000]))
        data = prefixes[i % len(prefixes)] + body
        for strict in (False, True):
            for force in (False, True):
                try:
                    read_everything(data, strict=strict, force=force)
                except DicomfastError:
                    pass
                except Exception as exc:
                    raise AssertionError(f"case {i}: {type(exc).__name__} escaped") from exc


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "JPEG2000.dcm",
                                  "MR_small_bigendian.dcm", "reportsi.dcm"])
def test_mutated_real_files(name):
    """A few hundred files each with up to 8 random bytes overwritten."""
    data = real(name)
    rng = random.Random(name)
    for i in range(300):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            bad[rng.randrange(132, len(bad))] = rng.choice([0, 0xFF, 0xFE, rng.randrange(256)])
        for strict in (False, True):
            try:
                read_everything(bytes(bad), strict=strict)
            except DicomfastError:
                pass
            except Exception as exc:
                raise AssertionError(f"mutation {i}: {type(exc).__name__} escaped") from exc


# ------------------------------------------------------------------------------------
# Deflate (PS3.5 §A.5)

_BOMB_MIB = 1024  # inflates to 1 GiB; the stream is about 1 MiB


@pytest.fixture(scope="module")
def bomb() -> bytes:
    payload = zero_bomb(_BOMB_MIB)
    probe = zlib.decompressobj(-zlib.MAX_WBITS)  # the stream is what it claims
    assert probe.decompress(payload, 1 << 22) == bytes(1 << 22)
    return file_meta(DEFLATED_LE) + payload


def _peak_of(fn: Any) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("strict", [True, False])
def test_deflate_bomb_is_refused(bomb, strict):
    t0 = time.perf_counter()
    with pytest.raises(MalformedDataError):
        dicomfast.read(bomb, strict=strict)
    assert time.perf_counter() - t0 < 30, "a hang guard, not a benchmark"


def test_deflate_bomb_memory_is_bounded_by_the_limit(bomb):
    """With max_inflated_size the memory used stays a small multiple of it."""
    limit = 32 << 20

    def attempt() -> None:
        with pytest.raises(MalformedDataError):
            dicomfast.read(bomb, max_inflated_size=limit)

    assert _peak_of(attempt) < 3 * limit


def test_deflate_bomb_default_memory(bomb):
    """The default limit (the larger of 64 MiB and 64 x the compressed size) refuses the
    1 GiB bomb well below its size: < 200 MB traced over the baseline."""

    def attempt() -> None:
        with pytest.raises(MalformedDataError):
            dicomfast.read(bomb)

    assert _peak_of(attempt) < 200 << 20


def _large_deflated(value_len: int) -> bytes:
    """A legitimate deflated file whose data set is ~value_len bytes (mostly zeros)."""
    head = elem(MODALITY, "CS", text("OT")) + elem(0x00091010, "OB", length=value_len)
    chunks = [head] + [bytes(1 << 20)] * (value_len >> 20) + [bytes(value_len & 0xFFFFF)]
    return file_meta(DEFLATED_LE) + deflate(chunks)


def test_max_inflated_size_lets_a_large_file_through():
    size = 72 << 20  # past the 64 MiB floor of the default limit, 1000:1 compressed
    data = _large_deflated(size)
    with pytest.raises(MalformedDataError):
        dicomfast.read(data)
    ds = dicomfast.read(data, max_inflated_size=size + 1024)
    assert ds.Modality == "OT"
    assert ds[0x00091010].length == size


def test_max_inflated_size_boundary_on_a_real_file():
    data = real("image_dfl.dcm")
    inflated = len(zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[_meta_end(data):]))
    keys = dicomfast.read(data).keys()
    assert dicomfast.read(data, max_inflated_size=inflated).keys() == keys
    with pytest.raises(MalformedDataError):
        dicomfast.read(data, max_inflated_size=inflated - 1)


def test_corrupt_deflate_stream():
    data = real("image_dfl.dcm")
    start = _meta_end(data)
    bad = data[:start] + b"\xff" * 16 + data[start + 16:]  # block type 0b11 is reserved
    for strict in (True, False):
        with pytest.raises(MalformedDataError) as info:
            dicomfast.read(bad, strict=strict)
        assert info.value.offset == start


# ------------------------------------------------------------------------------------
# Encoding oddities in explicit VR: invalid VRs, stray delimiters, odd lengths


def _replace(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


def test_invalid_vr_bytes():
    """VR bytes that are not two upper-case letters: an error in both modes, at the
    offset of the VR bytes (header + 4)."""
    data = real("CT_small.dcm")
    e = find_entry(data, PATIENT_NAME)
    bad = _replace(data, e.header + 4, b"p\x01")
    for strict in (True, False):
        raises_at(bad, MalformedDataError, e.header + 4, PATIENT_NAME, strict=strict)


def test_unknown_vr():
    """Upper-case but not in PS3.5 Table 6.2-1: strict raises at the VR bytes; lenient
    reads it in the long form (PS3.5 §7.1.2 for VRs newer than the reader) and warns."""
    data = real("CT_small.dcm")
    e = find_entry(data, PATIENT_NAME)
    raises_at(_replace(data, e.header + 4, b"ZZ"), MalformedDataError, e.header + 4,
              PATIENT_NAME, strict=True)
    good = file_meta() + elem(MODALITY, "CS", text("CT"))
    longer = good + _tag(PATIENT_NAME) + b"ZZ\0\0" + struct.pack("<I", 4) + b"Doe^" + \
        elem(0x00100020, "LO", text("ID7"))
    _, flat, caught = read_everything(longer)
    assert EncodingWarning in caught
    assert [f[0] for f in flat if f[0][0] != "meta"] == [(MODALITY,), (PATIENT_NAME,),
                                                          (0x00100020,)]


def test_implicit_data_in_explicit_file():
    """The first element decides (PS3.5 §A.1 heuristics): lenient switches to implicit
    VR and warns; strict refuses at the first element's VR bytes."""
    ds_bytes = elem(MODALITY, "CS", text("CT"), explicit=False) + \
        elem(PATIENT_NAME, "PN", text("Doe^Jane"), explicit=False)
    data = file_meta(EXPLICIT_LE) + ds_bytes
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(data)
    assert ds.is_implicit_VR and ds.PatientName == "Doe^Jane"
    raises_at(data, MalformedDataError, len(file_meta()) + 4, MODALITY, strict=True)


@pytest.mark.parametrize("tag", [ITEM_DELIM, SEQ_DELIM], ids=["item_delim", "seq_delim"])
def test_stray_delimiter_at_top_level(tag):
    """Inserted between two top-level elements of a real file: lenient skips it with a
    warning and loses nothing; strict raises at it."""
    data = real("CT_small.dcm")
    e = find_entry(data, PATIENT_NAME)
    bad = data[:e.header] + delimiter(tag) + data[e.header:]
    raises_at(bad, MalformedDataError, e.header, tag, strict=True)
    _, flat, caught = read_everything(bad)
    assert EncodingWarning in caught
    assert flat == read_everything(data)[1]


def test_item_tag_at_top_level():
    data = real("CT_small.dcm")
    e = find_entry(data, PATIENT_NAME)
    bad = data[:e.header] + item() + data[e.header:]
    for strict in (True, False):
        raises_at(bad, MalformedDataError, e.header, ITEM, strict=strict)


def _seq_file(*parts: bytes) -> tuple[bytes, int]:
    """(file, offset of the first of `parts`): File Meta, Modality, then `parts`."""
    head = file_meta() + elem(MODALITY, "CS", text("CT"))
    return head + b"".join(parts), len(head)


def test_sequence_delimiter_in_defined_length_sequence():
    content = item(elem(PATIENT_NAME, "PN", text("A^B"))) + delimiter(SEQ_DELIM)
    data, at = _seq_file(elem(SQ_TAG, "SQ", content))
    delim_at = at + 12 + len(content) - 8
    raises_at(data, MalformedDataError, delim_at, SEQ_DELIM, strict=True)
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(data)
    assert ds[SQ_TAG].value[0].PatientName == "A^B"


def test_item_delimiter_where_an_item_should_start():
    content = delimiter(ITEM_DELIM) + item(elem(PATIENT_NAME, "PN", text("A^B"))) + \
        delimiter(SEQ_DELIM)
    data, at = _seq_file(elem(SQ_TAG, "SQ", content, length=UNDEFINED))
    raises_at(data, MalformedDataError, at + 12, ITEM_DELIM, strict=True)
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(data)
    assert ds[SQ_TAG].value[0].PatientName == "A^B"


def test_missing_item_delimiter():
    """An undefined-length item ended by the sequence delimiter: lenient closes both."""
    inner = elem(PATIENT_NAME, "PN", text("A^B"))
    content = item(inner, length=UNDEFINED) + delimiter(SEQ_DELIM)
    data, at = _seq_file(elem(SQ_TAG, "SQ", content, length=UNDEFINED),
                         elem(0x00100020, "LO", text("ID")))
    raises_at(data, MalformedDataError, at + 12 + 8 + len(inner), SEQ_DELIM, strict=True)
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(data)
    assert ds[SQ_TAG].value[0].PatientName == "A^B" and ds.PatientID == "ID"


def test_missing_sequence_delimiter_at_end():
    content = item(elem(PATIENT_NAME, "PN", text("A^B")), length=UNDEFINED)
    data, _ = _seq_file(elem(SQ_TAG, "SQ", content, length=UNDEFINED))
    with pytest.raises(TruncatedDataError) as info:
        dicomfast.read(data, strict=True)
    assert info.value.offset == len(data)
    with pytest.warns(EncodingWarning):
        ds = dicomfast.read(data)
    assert ds[SQ_TAG].value[0].PatientName == "A^B"


def test_odd_length():
    """PS3.5 §7.1.1 wants even lengths. A real element made odd (its pad byte dropped):
    strict raises at its header; lenient reads the same value, and the scanner flags
    the element and sets DF_WARN_ODD_LENGTH."""
    data = real("CT_small.dcm")
    e = find_entry(data, PATIENT_NAME)
    assert data[e.value + e.length - 1:e.value + e.length] == b" "  # a pad byte
    bad = forge_length(data[:e.value + e.length - 1] + data[e.value + e.length:], e,
                       e.length - 1)
    raises_at(bad, MalformedDataError, e.header, PATIENT_NAME, strict=True)
    ds, flat, caught = read_everything(bad)
    assert all(issubclass(c, DicomfastWarning) for c in caught)
    assert flat == read_everything(data)[1]
    start = top_level_headers(ds)[0]
    index = _scan.scan(bad, start=start)
    assert index.warnings == WARN_ODD_LENGTH
    pos = [index.tag(i) for i in range(index.count)].index(PATIENT_NAME)
    assert index.flags(pos) & EL_ODD_LENGTH


def test_trailing_bytes():
    """Fewer than 8 bytes after the last element: ignored by lenient (DF_WARN_TRAILING_BYTES,
    not surfaced by read() today), an error for strict."""
    data = real("CT_small.dcm")
    bad = data + b"\0" * 5
    with pytest.raises(TruncatedDataError) as info:
        dicomfast.read(bad, strict=True)
    assert info.value.offset == len(data)
    assert read_everything(bad)[1] == read_everything(data)[1]
    start = top_level_headers(dicomfast.read(data))[0]
    assert _scan.scan(bad, start=start).warnings == WARN_TRAILING_BYTES


# ------------------------------------------------------------------------------------
# The scanner releases the GIL


def test_scan_releases_the_gil():
    """This thread keeps running Python while another scans a large buffer.

    The buffer is 1,000,000 stray item delimiters (which a lenient scan skips) and
    300 small elements: both passes of _scan.scan (count, then fill the index) walk
    all of it in C without the GIL, while the index it allocates and frees with the
    GIL held stays tiny. Held, the loop in ticks_while would run about once per call;
    released, many times per call. (A wall-clock speed-up of two scanning threads
    says the same but depends on a second core being free at that moment.)"""
    buf = delimiter(ITEM_DELIM) * 1_000_000 + elem(0x00091010, "US", b"\x07\x00") * 300
    index = _scan.scan(buf)
    assert index.count == 300 and index.warnings == WARN_STRAY_DELIMITER
    calls = 20
    assert ticks_while(lambda: [_scan.scan(buf) for _ in range(calls)]) > 2 * calls + 50
