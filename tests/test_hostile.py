"""Hostile-input families for the reader and the pixel decoders, generated from real
files and from the small encoder of test_malformed.py (which holds the single-case
tests: truncation, one forged length, 10,000-deep nesting, data set deflate bombs).

Every family runs all its cases in a child interpreter, so that a crash is a failed
test rather than a dead run. For each case the child reads the bytes, decodes every
value, reads the pixel data, and writes down what came out: a result, a
DicomfastError, or anything else (a failure). It also times each case (the 2 s
watchdog) and reports its peak RSS. Each family records how many cases it tried
(`record_property("cases", n)`, and printed with -s).
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from corpus import find
from test_malformed import (
    DEFLATED_LE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    ITEM,
    ITEM_DELIM,
    PIXEL_DATA,
    SEQ_DELIM,
    _tag,
    delimiter,
    elem,
    entries,
    file_meta,
    forge_length,
    item,
    nested,
    text,
    zero_bomb,
)

import dicomfast

HERE = Path(__file__).resolve().parent
WATCHDOG_S = 2.0           # per case, for the families that could loop
PEAK_RSS_BOUND_MB = 1024   # a child's peak RSS, whole interpreter included
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"   # Deflated Image Frame Compression (PS3.5 §8.2.16)
RLE_LOSSLESS = "1.2.840.10008.1.2.5"


def _us(v: int) -> bytes:
    return struct.pack("<H", v)


def _real(name: str) -> bytes:
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the test corpus")
    return path.read_bytes()


def image(rows: int = 4, cols: int = 4, frames: int | None = None, spp: int = 1,
          ba: int = 16, pixels: bytes | None = None, *, ts: str = EXPLICIT_LE,
          extra: bytes = b"", override: dict[int, bytes] | None = None) -> bytes:
    """A small image file; `override` replaces whole elements (tag -> encoded element,
    b"" drops it). Pixel data defaults to the right size for the attributes."""
    stored = min(ba, 16) if ba else 0
    els = {
        0x00280002: elem(0x00280002, "US", _us(spp)),
        0x00280004: elem(0x00280004, "CS", text("MONOCHROME2" if spp == 1 else "RGB")),
        0x00280006: elem(0x00280006, "US", _us(0)) if spp > 1 else b"",
        0x00280008: elem(0x00280008, "IS", text(str(frames))) if frames is not None else b"",
        0x00280010: elem(0x00280010, "US", _us(rows)),
        0x00280011: elem(0x00280011, "US", _us(cols)),
        0x00280100: elem(0x00280100, "US", _us(ba)),
        0x00280101: elem(0x00280101, "US", _us(stored)),
        0x00280102: elem(0x00280102, "US", _us(max(stored - 1, 0))),
        0x00280103: elem(0x00280103, "US", _us(0)),
    }
    els.update(override or {})
    if pixels is None:
        pixels = bytes(rows * cols * spp * max(ba, 8) // 8 * (frames or 1))
    pix = pixels if isinstance(pixels, bytes) else b""
    pix_el = (pixels if pixels.startswith(_tag(PIXEL_DATA)) else
              elem(PIXEL_DATA, "OW" if ba > 8 else "OB", pix + b"\0" * (len(pix) & 1)))
    body = b"".join(els[t] for t in sorted(els)) + extra + pix_el
    return file_meta(ts) + body


def encapsulated(fragments: list[bytes], bot: list[int] | None = None) -> bytes:
    """An encapsulated Pixel Data element (PS3.5 §A.4) with the given offset table."""
    table = b"".join(struct.pack("<I", o) for o in (bot or []))
    body = item(table) + b"".join(item(f + b"\0" * (len(f) & 1)) for f in fragments)
    return (_tag(PIXEL_DATA) + b"OB\0\0" + struct.pack("<I", 0xFFFFFFFF) + body
            + delimiter(SEQ_DELIM))


# ------------------------------------------------------------------------------------
# The child: reads every case, classifies, times


def _consume(data: bytes, kw: dict[str, Any]) -> str:
    import warnings

    from dicomfast.errors import DicomfastError, DicomfastWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dicomfast.read(data, **kw)
            for part in (ds.file_meta, ds):
                _walk(part)
            if any(t in ds for t in (PIXEL_DATA, 0x7FE00008, 0x7FE00009)):
                ds.pixel_array  # noqa: B018 - decoding is the point
            outcome = "ok"
        except DicomfastError as exc:
            outcome = "error:" + type(exc).__name__
    stray = [str(w.message) for w in caught if not issubclass(w.category, DicomfastWarning)]
    if stray:
        return "bad-warning:" + stray[0][:200]
    return outcome


def _walk(ds: Any) -> None:
    if ds is None:
        return
    stack = [iter(ds)]
    while stack:  # iterative: a deep file must not need deep Python recursion here
        el = next(stack[-1], None)
        if el is None:
            stack.pop()
            continue
        value = el.value
        if el.VR == "SQ":
            for sub in value:
                stack.append(iter(sub))
        else:
            str(value)


def _peak_rss_mb() -> int:
    """This process's peak RSS. VmHWM, not getrusage: ru_maxrss survives exec, so a
    child of a large pytest process would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _child(family: str, arg: str) -> None:
    import time
    cases = FAMILIES[family](arg)
    tried, outcomes, bad, slow = 0, {}, [], []
    for label, data, kw in cases:
        t0 = time.perf_counter()
        try:
            outcome = _consume(data, kw)
        except BaseException as exc:  # noqa: BLE001 - anything else is the finding
            outcome = f"bad:{type(exc).__name__}: {str(exc)[:200]}"
        dt = time.perf_counter() - t0
        tried += 1
        key = outcome.split(":")[0] if not outcome.startswith("error") else outcome
        outcomes[key] = outcomes.get(key, 0) + 1
        if outcome.startswith("bad"):
            bad.append((label, outcome))
        if dt > WATCHDOG_S:
            slow.append((label, round(dt, 2)))
    rss_mb = _peak_rss_mb()
    print(json.dumps({"tried": tried, "outcomes": outcomes, "bad": bad[:20],
                      "slow": slow[:20], "rss_mb": rss_mb}))


def run_family(family: str, record_property: Any, arg: str = "", timeout: float = 120) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    code = f"import test_hostile as t; t._child({family!r}, {arg!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(HERE))
    assert proc.returncode == 0, (
        f"{family}: the child died with {proc.returncode} (a crash counts as a failure)\n"
        f"{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    record_property("cases", result["tried"])
    record_property("peak_rss_mb", result["rss_mb"])
    print(f"\n{family}{'/' + arg if arg else ''}: {result['tried']} cases, 0 crashes, "
          f"outcomes {result['outcomes']}, peak RSS {result['rss_mb']} MB")
    assert result["tried"] > 0
    assert result["bad"] == [], result["bad"]
    assert result["slow"] == [], f"cases over the {WATCHDOG_S} s watchdog: {result['slow']}"
    assert result["rss_mb"] < PEAK_RSS_BOUND_MB
    return result


# ------------------------------------------------------------------------------------
# Families (each returns a list of (label, bytes, read kwargs))

FORGE_FILES = ["CT_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "MR_small_RLE.dcm"]


def _forged_lengths(name: str) -> list:
    """The length field of every element, item and fragment, meta included, set
    past the bytes that remain (short forms: to 0xFFFE), read strict and lenient."""
    data = find(name).read_bytes()
    ds = dicomfast.read(data)
    cases = []
    for e in entries(ds.file_meta) + entries(ds):
        remaining = len(data) - e.value
        short = (e.value - e.header == 8 and e.tag >> 16 != 0xFFFE
                 and not e.flags & 0x0020)
        for value in ((0xFFFE,) if short else (remaining + 1, remaining + 0x10000, 0xFFFFFFFE)):
            bad = forge_length(data, e, value)
            for strict in (False, True):
                cases.append((f"{e.tag:08X}@{e.header}={value}", bad, {"strict": strict}))
    return cases


def _ladders(_: str) -> list:
    """Sequence-in-item ladders up to 100,000 levels (PS3.5 §7.5), every encoding, with
    the default and the largest depth limits; also a ladder whose last levels are cut."""
    cases = []
    for depth in (100, 10_000, 100_000):
        for explicit in (True, False):
            for undefined in (True, False):
                data = file_meta(EXPLICIT_LE if explicit else IMPLICIT_LE) + nested(
                    depth, explicit=explicit, undefined=undefined)
                for kw in ({}, {"max_depth": 512}, {"strict": True}):
                    cases.append((f"{depth}/{explicit}/{undefined}/{kw}", data, kw))
                cases.append((f"{depth}/cut", data[:len(data) * 2 // 3], {}))
    return cases


def _delimiters(name: str) -> list:
    """Item and sequence delimiters and item tags where they do not belong: inserted
    at element boundaries, replacing headers, and the delimiters of undefined-length
    sequences removed or doubled."""
    rng = random.Random(f"delim-{name}")
    data = find(name).read_bytes()
    ds = dicomfast.read(data)
    ents = entries(ds)
    stray = [delimiter(ITEM_DELIM), delimiter(SEQ_DELIM), _tag(ITEM) + b"\0\0\0\0",
             _tag(ITEM) + b"\xff\xff\xff\xff", _tag(ITEM) + b"\x10\0\0\0",
             delimiter(ITEM_DELIM) * 3]
    cases = []
    for e in ents:
        for s in stray:
            cases.append((f"insert@{e.header}", data[:e.header] + s + data[e.header:], {}))
        s = rng.choice(stray)
        cases.append((f"replace@{e.header}", data[:e.header] + s[:8] + data[e.header + 8:], {}))
    # Remove or double each delimiter that the file has.
    for needle in (_tag(ITEM_DELIM) + b"\0\0\0\0", _tag(SEQ_DELIM) + b"\0\0\0\0"):
        pos = data.find(needle)
        while pos != -1:
            cases.append((f"drop@{pos}", data[:pos] + data[pos + 8:], {}))
            cases.append((f"double@{pos}", data[:pos] + needle + data[pos:], {}))
            pos = data.find(needle, pos + 1)
    return [(lbl, d, kw) for lbl, d, kw in cases] + [
        (lbl + "/strict", d, {"strict": True}) for lbl, d, kw in cases[::7]]


_WRONG_VALUES = [
    ("OB-2", lambda t: elem(t, "OB", b"\x10\x00")),
    ("OB-0", lambda t: elem(t, "OB", b"")),
    ("OW-4", lambda t: elem(t, "OW", b"\x10\x00\x10\x00")),
    ("FD", lambda t: elem(t, "FD", struct.pack("<d", 1e308))),
    ("FL-nan", lambda t: elem(t, "FL", struct.pack("<f", float("nan")))),
    ("SQ", lambda t: elem(t, "SQ", item(b""))),
    ("UN", lambda t: elem(t, "UN", b"\xff\xff")),
    ("LO-text", lambda t: elem(t, "LO", text("abcd"))),
    ("IS-huge", lambda t: elem(t, "IS", text("99999999999"))),
    ("IS-neg", lambda t: elem(t, "IS", text("-5"))),
    ("US-vm2", lambda t: elem(t, "US", _us(4) + _us(4))),
    ("US-empty", lambda t: elem(t, "US", b"")),
    ("US-odd", lambda t: elem(t, "US", b"\x04")),
    ("SS-neg", lambda t: elem(t, "SS", struct.pack("<h", -1))),
    ("UL-big", lambda t: elem(t, "UL", struct.pack("<I", 0xFFFFFFFF))),
    ("AT", lambda t: elem(t, "AT", struct.pack("<HH", 0x0028, 0x0010))),
]
_INTERPRETED = [0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010, 0x00280011,
                0x00280100, 0x00280101, 0x00280102, 0x00280103]


def _wrong_vr(_: str) -> list:
    """Every interpreted Image Pixel attribute (PS3.3 C.7.6.3) with a wrong VR or an
    impossible value, native and RLE; Pixel Data with a non-byte VR; and Bits Allocated
    0 / 3 / 64 with integer data."""
    cases = []
    for tag in _INTERPRETED:
        for label, make in _WRONG_VALUES:
            for ts in (EXPLICIT_LE, RLE_LOSSLESS):
                pix = (encapsulated([b"\0" * 64]) if ts == RLE_LOSSLESS else None)
                cases.append((f"{tag:08X}/{label}/{ts}",
                              image(ts=ts, pixels=pix, override={tag: make(tag)}), {}))
        cases.append((f"{tag:08X}/missing", image(override={tag: b""}), {}))
    # Pixel Data itself with a VR that holds no bytes (found by tools/fuzz_python.py).
    for label, make in _WRONG_VALUES:
        cases.append((f"7FE00010/{label}", image(pixels=make(PIXEL_DATA)), {}))
    for ba in (0, 1, 3, 12, 24, 64, 65535):
        for pixvr in ("OB", "OW"):
            px = elem(PIXEL_DATA, pixvr, bytes(64))
            cases.append((f"ba={ba}/{pixvr}", image(ba=ba, pixels=px), {}))
    return cases


def _overflow(_: str) -> list:
    """Rows x Columns x Frames x Samples x Bits chosen so that the product overflows
    32 and 64 bits, with a few bytes of pixel data, native and encapsulated."""
    cases = []
    dims = [(65535, 65535), (65535, 1), (1, 65535), (0, 4), (4, 0), (32768, 32768)]
    frames = [None, 1, 65536, 2**31 - 1, 2**32 + 1, 10**18, 0, -1]
    for rows, cols in dims:
        for nf in frames:
            for spp, ba in ((1, 16), (3, 8), (4, 32), (65535, 64)):
                override = {0x00280008: elem(0x00280008, "IS", text(str(nf)))} if nf is not None else {}
                cases.append((f"{rows}x{cols}x{nf}x{spp}x{ba}",
                              image(rows, cols, None, spp, ba, pixels=bytes(16), override=override), {}))
            cases.append((f"{rows}x{cols}x{nf}/rle",
                           image(rows, cols, None, 1, 16, ts=RLE_LOSSLESS,
                                 pixels=encapsulated([b"\0" * 64]),
                                 override={0x00280008: elem(0x00280008, "IS", text(str(nf)))}
                                 if nf is not None else {}), {}))
    return cases


def _frames(_: str) -> list:
    """Number of Frames larger than the data, native and encapsulated; and offset
    tables (Basic and Extended, PS3.5 §A.4) pointing outside the fragments."""
    cases = []
    for nf in (2, 3, 100, 65535):
        cases.append((f"native/{nf}", image(4, 4, nf, pixels=bytes(32)), {}))
        for n_frags in (1, 2):
            frags = [b"\0" * 64] * n_frags
            cases.append((f"rle/{nf}/{n_frags}",
                          image(4, 4, nf, ts=RLE_LOSSLESS, pixels=encapsulated(frags)), {}))
    bad_bots = [[0, 1 << 30], [0, 0xFFFFFFFF], [100, 0], [0, 8, 4], [0, 7], [0xFFFFFFF0],
                [0, 72, 144, 216]]
    for bot in bad_bots:
        nf = max(len(bot), 1)
        cases.append((f"bot/{bot}", image(4, 4, nf, ts=RLE_LOSSLESS,
                                          pixels=encapsulated([b"\0" * 64] * 2, bot)), {}))
    for offsets, lengths in (([0, 1 << 40], [64, 64]), ([0, 0], [64, 1 << 33]),
                             ([0, 72], [64]), ([2**64 - 8], [16]), ([0], [2**64 - 1])):
        eot = (elem(0x7FE00001, "OV", b"".join(struct.pack("<Q", o) for o in offsets))
               + elem(0x7FE00002, "OV", b"".join(struct.pack("<Q", n) for n in lengths)))
        cases.append((f"eot/{offsets}/{lengths}",
                      image(4, 4, len(offsets), ts=RLE_LOSSLESS, extra=eot,
                            pixels=encapsulated([b"\0" * 64] * 2)), {}))
    return cases


def _frame_bombs(_: str) -> list:
    """Deflated image frames (PS3.5 §8.2.16) that inflate far past Rows x Columns,
    and data set bombs (§A.5) nested in a sequence, with tight and default caps."""
    bomb = zero_bomb(64)   # 64 MiB of zeros in ~64 KiB
    cases = []
    for rows, cols in ((4, 4), (256, 256)):
        px = encapsulated([bomb])
        for strict in (False, True):
            cases.append((f"frame-bomb/{rows}x{cols}/{strict}",
                          image(rows, cols, 1, 1, 8, ts=DEFLATED_FRAMES, pixels=px),
                          {"strict": strict}))
        cases.append((f"frame-bomb-2/{rows}x{cols}",
                      image(rows, cols, 2, 1, 8, ts=DEFLATED_FRAMES,
                            pixels=encapsulated([bomb, bomb])), {}))
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    inner = elem(0x00081115, "SQ", length=0xFFFFFFFF) + item(length=0xFFFFFFFF)
    stream = c.compress(inner) + c.flush(zlib.Z_FULL_FLUSH)
    for cap in (None, 1 << 20, 1):
        kw = {} if cap is None else {"max_inflated_size": cap}
        cases.append((f"dataset-bomb/{cap}", file_meta(DEFLATED_LE) + stream + bomb, kw))
    return cases


_EXECUTABLE_PREAMBLES = [b"MZ\x90\x00\x03", b"\x7fELF\x02\x01\x01", b"\xcf\xfa\xed\xfe",
                         b"\xca\xfe\xba\xbe", b"#!/bin/sh\n", b"PK\x03\x04"]


def _charsets(_: str) -> list:
    """Specific Character Set values and ISO 2022 escape sequences (PS3.5 §6.1.2.5)
    that are unknown, cut short, or switch to a set that is not declared."""
    terms = [b"ISO 2022 IR 87", b"ISO 2022 IR 13\\ISO 2022 IR 87", b"ISO_IR 192",
             b"ISO 2022 IR 149", b"ISO_IR 999", b"\\\\\\", b"ISO 2022 IR 6\\ISO 2022 IR 58",
             b"GB18030", b"", b"ISO_IR 100\\ISO_IR 100\\ISO_IR 100"]
    values = [b"\x1b", b"\x1b$", b"\x1b$B", b"\x1b$B\x30", b"\x1b$B\x30\x21\x1b(B",
              b"Yamada^\x1b$B;3ED\x1b(B", b"\x1b(Z\x41", b"\x1b$)C\xb1\xe8",
              b"\x1b$(D\x21\x21", b"\xff\xfe\xfd", b"\x1b-A\xe9", b"\x1b$B" * 200,
              b"A=\x1b$B=\x1b(B=", b"\x8e\xa1\x1b", b"\xe9\x80"]
    cases = []
    for term in terms:
        for value in values:
            v = value + b" " * (len(value) & 1)
            body = (elem(0x00080005, "CS", term + b" " * (len(term) & 1))
                    + elem(0x00080080, "LO", v) + elem(0x00100010, "PN", v)
                    + elem(0x00321032, "PN", v + b"\\" + v[::-1] if len(v) < 300 else v))
            cases.append((f"{term!r}/{value[:12]!r}", file_meta() + body, {}))
    # Specific Character Set itself with a wrong VR (it is interpreted, PS3.3 C.12.1.1.2).
    pn = elem(0x00100010, "PN", b"Yamada^\x1b$B;3ED\x1b(B ")
    for label, make in _WRONG_VALUES + [("CS-nul", lambda t: elem(t, "CS", b"ISO_IR\x00100"))]:
        cases.append((f"0008,0005/{label}", file_meta() + make(0x00080005) + pn, {}))
    return cases


def _preambles(_: str) -> list:
    data = Path(dicomfast.__file__).parent.joinpath("samples", "ct_explicit_le.dcm").read_bytes()
    return [(repr(p), p + data[len(p):], {}) for p in _EXECUTABLE_PREAMBLES]


FAMILIES = {
    "forged_lengths": _forged_lengths,
    "ladders": _ladders,
    "delimiters": _delimiters,
    "wrong_vr": _wrong_vr,
    "overflow": _overflow,
    "frames": _frames,
    "frame_bombs": _frame_bombs,
    "charsets": _charsets,
    "preambles": _preambles,
}


# ------------------------------------------------------------------------------------
# The tests


@pytest.mark.parametrize("name", FORGE_FILES)
def test_length_past_the_end_at_every_element(name, record_property):
    _real(name)
    run_family("forged_lengths", record_property, name)


def test_nesting_ladders_to_100000_levels(record_property):
    run_family("ladders", record_property, timeout=180)


@pytest.mark.parametrize("name", ["rtplan.dcm", "CT_small.dcm"])
def test_delimiter_confusion_with_watchdog(name, record_property):
    _real(name)
    run_family("delimiters", record_property, name)


def test_wrong_vr_on_interpreted_attributes(record_property):
    result = run_family("wrong_vr", record_property)
    assert any(k.startswith("error") for k in result["outcomes"])


def test_size_products_overflowing_32_and_64_bits(record_property):
    result = run_family("overflow", record_property)
    # 16 bytes of pixel data under a forged size: nothing may decode.
    assert "ok" not in result["outcomes"]


def test_frames_and_offset_tables_outside_the_data(record_property):
    run_family("frames", record_property)


def test_deflate_bombs_in_frames_and_nested_data_sets(record_property):
    """Lenient reads may keep the first Rows x Columns bytes of a frame bomb (inflate
    stops there); strict ones refuse it. Either way the peak RSS stays bounded."""
    result = run_family("frame_bombs", record_property)
    refused = sum(n for k, n in result["outcomes"].items() if k.startswith("error"))
    assert refused >= 5  # the strict frame bombs and the data set bombs


def test_invalid_character_set_escapes(record_property):
    run_family("charsets", record_property)


def test_executable_preamble_is_reported_and_never_written_back(tmp_path, record_property):
    run_family("preambles", record_property)
    for label, data, _ in _preambles(""):
        ds = dicomfast.read(data)
        assert ds.preamble_is_suspicious, label
        out = tmp_path / "copy.dcm"
        dicomfast.write(ds, out)
        written = out.read_bytes()
        assert written[:128] == bytes(128) and written[128:132] == b"DICM"
        assert not dicomfast.read(written).preamble_is_suspicious
    clean = Path(dicomfast.__file__).parent.joinpath("samples", "ct_explicit_le.dcm")
    assert not dicomfast.read(clean).preamble_is_suspicious
    # A TIFF header is a legitimate preamble (PS3.10 §7.5), zeros are the default.
    tiff = b"II*\x00" + clean.read_bytes()[4:]
    assert not dicomfast.read(tiff).preamble_is_suspicious


def test_endless_command_set_is_refused():
    """A peer that never sets the last-fragment bit of a command set (PS3.8 Annex E)
    gets a DIMSEError (the association aborts) once dimse.MAX_COMMAND_SET is passed."""
    from dicomfast.errors import DIMSEError
    from dicomfast.net import dimse
    r = dimse.Reassembler()
    fed = 0
    with pytest.raises(DIMSEError):
        while fed <= 2 * dimse.MAX_COMMAND_SET:
            r.feed(1, 0x01, b"\0" * 4096)  # command, not last
            fed += 4096
    # `fed` stops before the fragment that was refused.
    assert dimse.MAX_COMMAND_SET < fed + 4096 <= dimse.MAX_COMMAND_SET + 4096
