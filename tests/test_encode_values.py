"""dicomfast.encode: values back to bytes, against the corpus and pydicom.

* Corpus round trip: every element of every corpus file (sequence items
  included) is decoded as the dataset decodes it and encoded again. When the
  stored bytes are canonical (one pad byte only where PS3.5 §7.1.1 needs it,
  no insignificant spaces, escape sequences only where PS3.5 §6.1.2.5 needs
  them) the encoding must reproduce them exactly; otherwise decoding the
  encoding must give the value back. Coverage is counted per VR and must not
  drop.
* Differential: pydicom's ``write_data_element`` on synthetic values, the
  character set examples of PS3.5 Annexes H, I and K among them, and on
  property-based values; the few intended differences are pinned down.
* Validation: strict raises, lenient warns, in agreement with pydicom's
  validators where both check.
"""

from __future__ import annotations

import collections
import datetime
import math
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest

pydicom = pytest.importorskip("pydicom")

import corpus  # noqa: E402
from pydicom import config as pd_config  # noqa: E402
from pydicom.charset import decode_bytes as pd_decode_bytes  # noqa: E402
from pydicom.dataelem import DataElement as PdDataElement  # noqa: E402
from pydicom.filebase import DicomBytesIO  # noqa: E402
from pydicom.filewriter import write_data_element  # noqa: E402
from pydicom.valuerep import TEXT_VR_DELIMS  # noqa: E402
from pydicom.valuerep import validate_value as pd_validate_value  # noqa: E402

import dicomfast  # noqa: E402
from dicomfast.charset import python_encodings  # noqa: E402
from dicomfast.encode import (  # noqa: E402
    encode_text,
    encode_value,
    format_ds,
    swap_bytes,
    validate_value,
)
from dicomfast.errors import CharsetWarning, MalformedDataError, ValueWarning  # noqa: E402
from dicomfast.values import IS, DSfloat, PersonName, decode_value  # noqa: E402
from dicomfast.vr import BYTES_VRS, CHARSET_VRS, SINGLE_VALUE_TEXT_VRS, TEXT_VRS  # noqa: E402

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # the property tests below are then skipped
    given = None

CHARSET_FILES = Path(pydicom.__file__).parent / "data" / "charset_files"
_EL_FRAGMENTS = 0x0008
_EL_BIG_ENDIAN = 0x0040


# --------------------------------------------------------------------------
# Comparing values: floats by their bits (NaN, -0.0), '' and None are both
# "empty", bytes VRs gain the NUL that makes them even.


def _norm(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)  # float32 round trips may change a NaN's payload
        return ("f", struct.pack("<d", v), str(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return ("i", int(v), str(v))
    return v


def _same(vr: str, back: Any, v: Any) -> bool:
    if vr in BYTES_VRS and isinstance(v, bytes) and len(v) % 2:
        v = v + b"\x00"
    return _norm(back) == _norm(v)


# --------------------------------------------------------------------------
# Canonical stored values, judged from the bytes alone


_STRIP_BOTH = {"AE", "UI", "DS", "IS"}  # decode_value strips each value on both sides
_STRIP_EACH = {"LO", "SH", "UC", "PN"}  # ... strips each value on the right
_G0_MULTI = (b"\x1b$B", b"\x1b$(D")
_ESCAPE = re.compile(rb"\x1b(?:\$[()]?[A-Z@]|[()\-][A-Z])")


def _escapes_canonical(raw: bytes, encodings: tuple[str, ...]) -> bool:
    """Escape sequences only where PS3.5 §6.1.2.5.3 needs them: a return to the
    initial G0 set only after a two-byte G0 set, and to that set exactly."""
    # The bytes are not split on delimiters first: 0x5E ("^") and 0x3D ("=")
    # are also halves of JIS X 0208 characters.
    initial_g0 = b"\x1b(J" if encodings[0] == "shift_jis" else b"\x1b(B"
    in_multi = False
    for m in _ESCAPE.finditer(raw):
        esc = m.group()
        if esc in _G0_MULTI:
            in_multi = True
        elif esc in (b"\x1b(B", b"\x1b(J"):
            if not in_multi or esc != initial_g0:
                return False
            in_multi = False
    return not in_multi


def canonical(vr: str, raw: bytes, encodings: tuple[str, ...]) -> bool:
    if vr in BYTES_VRS:
        return len(raw) % 2 == 0
    if vr not in TEXT_VRS:
        return True
    if len(raw) % 2:
        return False
    pad = b"\x00" if vr == "UI" else b" "
    body = raw[:-1] if raw.endswith(pad) else raw
    if body is not raw and len(body) % 2 == 0:
        return False  # a pad byte where none was needed
    if body.endswith((b" ", b"\x00")):
        return False  # padding the decoder removes and the encoder does not write
    values = [body] if vr in SINGLE_VALUE_TEXT_VRS else body.split(b"\\")
    for v in values:
        if vr in _STRIP_BOTH and (v != v.strip(b" ") or b"\x00" in v):
            return False
        if vr in _STRIP_EACH and v.endswith((b" ", b"\x00")):
            return False
        if vr == "PN" and v.endswith(b"="):
            return False
    if vr in CHARSET_VRS and b"\x1b" in raw and len(encodings) > 1:
        return _escapes_canonical(body, encodings)
    return True


# --------------------------------------------------------------------------
# Corpus round trip


@pytest.fixture(scope="module")
def corpus_round_trip() -> dict[str, Any]:
    counts: collections.Counter = collections.Counter()
    problems: list[tuple] = []

    def walk(ds: Any, name: str) -> None:
        for el in ds:
            if el.VR == "SQ":
                try:
                    items = el.value
                except dicomfast.DicomfastError:
                    counts["skipped: unreadable sequence"] += 1
                    continue
                for item in items:
                    walk(item, name)
                continue
            if el._pos < 0:
                continue
            if el._flags & _EL_FRAGMENTS:
                counts["skipped: encapsulated pixel data"] += 1
                continue
            raw = ds._index.value_bytes(el._pos)
            try:
                value = el.value
            except dicomfast.DicomfastError:
                counts["skipped: value does not decode"] += 1
                continue
            vr = el.VR
            little = not el._flags & _EL_BIG_ENDIAN
            enc = ds._charset() if vr in CHARSET_VRS else ("iso8859",)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    out = encode_value(vr, value, little, enc)
                except MalformedDataError as exc:
                    if vr not in _ALL_VRS:
                        counts["skipped: unknown VR"] += 1
                        continue
                    problems.append((name, f"{el.tag:08X}", vr, "raised", repr(exc)))
                    continue
            if caught:
                # Text decode_value replaced (U+FFFD) cannot go back.
                counts["skipped: lossy decode"] += 1
                continue
            if canonical(vr, raw, enc):
                if out == raw:
                    counts["exact", vr] += 1
                else:
                    problems.append((name, f"{el.tag:08X}", vr, raw[:60], out[:60]))
            else:
                back = decode_value(vr, out, little, enc)
                if _same(vr, back, value):
                    counts["round trip", vr] += 1
                else:
                    problems.append((name, f"{el.tag:08X}", vr, repr(value)[:60],
                                     repr(back)[:60]))

    files = corpus.all_files()
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = dicomfast.read(str(path), force=True)
                walk(ds, corpus.file_id(path))
            except dicomfast.DicomfastError:
                counts["skipped: file does not read"] += 1
    return {"counts": counts, "problems": problems, "files": len(files)}


_ALL_VRS = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD",
            "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SS", "ST", "SV", "TM", "UC", "UI", "UL",
            "UN", "UR", "US", "UT", "UV"}

# Exact re-encodings per VR on the full corpus (pydicom's test and charset
# files, pydicom-data, ljdata): the floor the corpus test holds.
CORPUS_FILES = 333
MIN_EXACT = {
    "AE": 1, "AS": 131, "AT": 44, "CS": 4297, "DA": 1174, "DS": 2129, "DT": 94, "FD": 535,
    "FL": 316, "IS": 1584, "LO": 2724, "LT": 217, "OB": 113, "OF": 1, "OW": 171, "PN": 702,
    "SH": 2100, "SL": 679, "SS": 639, "ST": 167, "TM": 933, "UI": 2671, "UL": 1396,
    "UN": 147, "US": 3026, "UT": 15,
}


def test_corpus_round_trip(corpus_round_trip: dict[str, Any]) -> None:
    counts = corpus_round_trip["counts"]
    problems = corpus_round_trip["problems"]
    assert not problems, "\n".join(map(str, problems[:20]))
    exact = {k[1]: n for k, n in counts.items() if k[0] == "exact"}
    trip = {k[1]: n for k, n in counts.items() if k[0] == "round trip"}
    report = ", ".join(f"{vr} {exact.get(vr, 0)}+{trip.get(vr, 0)}"
                       for vr in sorted(set(exact) | set(trip)))
    print(f"\nencode coverage (exact+round trip) over {corpus_round_trip['files']} files: "
          f"{report}; total exact {sum(exact.values())}, round trip {sum(trip.values())}; "
          + ", ".join(f"{k} {n}" for k, n in counts.items() if isinstance(k, str)))
    if not exact:
        pytest.skip("no corpus files")
    # Canonical storage is the rule: nearly every element is byte exact.
    assert sum(exact.values()) >= 0.99 * (sum(exact.values()) + sum(trip.values()))
    if corpus_round_trip["files"] >= CORPUS_FILES:
        dropped = {vr: (exact.get(vr, 0), n) for vr, n in MIN_EXACT.items()
                   if exact.get(vr, 0) < n}
        assert not dropped, f"exact coverage dropped (now, floor): {dropped}"


# --------------------------------------------------------------------------
# The character set examples of PS3.5 Annexes H (Japanese), I (Korean),
# J and K (Chinese), as pydicom stores them: the bytes come back exactly.

ANNEX_EXACT = {
    # file: (tag, ...) whose stored bytes are canonical
    "chrArab.dcm": (0x00100010,), "chrFren.dcm": (0x00100010,),
    "chrFrenMulti.dcm": (0x00100010, 0x00101001), "chrGerm.dcm": (0x00100010,),
    "chrGreek.dcm": (0x00100010,), "chrH31.dcm": (0x00100010,), "chrH32.dcm": (0x00100010,),
    "chrHbrw.dcm": (0x00100010,), "chrI2.dcm": (0x00100010,), "chrRuss.dcm": (0x00100010,),
    "chrJapMulti.dcm": (0x00100010, 0x00101001, 0x001021B0),
    "chrJapMultiExplicitIR6.dcm": (0x00100010, 0x00101001, 0x001021B0),
}


def _charset_file(name: str) -> Any:
    path = CHARSET_FILES / name
    if not path.exists():
        pytest.skip(f"{name} not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dicomfast.read(str(path), force=True)


@pytest.mark.parametrize("name", sorted(ANNEX_EXACT))
def test_annex_examples_exact(name: str) -> None:
    ds = _charset_file(name)
    enc = ds._charset()
    for tag in ANNEX_EXACT[name]:
        el = ds[tag]
        raw = ds._index.value_bytes(el._pos)
        assert canonical(el.VR, raw, enc)
        assert encode_value(el.VR, el.value, True, enc) == raw


def _first_name(ds: Any) -> Any:
    """The dataset holding the first Patient's Name, searching sequence items."""
    if 0x00100010 in ds:
        return ds
    for el in ds:
        if el.VR == "SQ":
            for item in el.value:
                found = _first_name(item)
                if found is not None:
                    return found
    return None


@pytest.mark.parametrize("name", [
    "chrKoreanMulti.dcm",  # a needless ESC ( B after a G1 set
    "chrSQEncoding1.dcm",  # ESC ( B where ISO-IR 13's G0 is ESC ( J
    "chrX1.dcm",  # an empty trailing component group
    "chrX2.dcm",
])
def test_annex_like_files_not_canonical_round_trip(name: str) -> None:
    ds = _first_name(_charset_file(name))
    el = ds[0x00100010]
    raw = ds._index.value_bytes(el._pos)
    enc = ds._charset()
    assert not canonical(el.VR, raw, enc)
    out = encode_value(el.VR, el.value, True, enc)
    assert decode_value(el.VR, out, True, enc) == el.value
    assert canonical(el.VR, out, enc)


# --------------------------------------------------------------------------
# Differential: pydicom's element writer


def pydicom_bytes(vr: str, value: Any, little: bool = True, terms: Any = None) -> bytes:
    """The value bytes pydicom writes (implicit VR, so the header is 8 bytes)."""
    tag = 0x00100010 if vr == "PN" else 0x00091001
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elem = PdDataElement(tag, vr, value)
        fp = DicomBytesIO()
        fp.is_little_endian = little
        fp.is_implicit_VR = True
        enc = terms if isinstance(terms, list) else ([terms] if terms else None)
        write_data_element(fp, elem, enc)
    return fp.getvalue()[8:]


def ours(vr: str, value: Any, little: bool = True, terms: Any = None) -> bytes:
    return encode_value(vr, value, little, python_encodings(terms))


D = datetime
JP = ["", "ISO 2022 IR 87"]
SAME_AS_PYDICOM = [
    ("AE", "STORESCP", None), ("AE", "ODD", None), ("AS", "042Y", None),
    ("CS", ["ORIGINAL", "PRIMARY", "AXIAL"], None), ("CS", "ODD", None),
    ("DA", "20200102", None), ("DA", D.date(2020, 1, 2), None),
    ("DA", ["20200101", "20201231"], None),
    ("DS", 1.0, None), ("DS", [1.0, 2.5, -3.25], None), ("DS", "1.50", None),
    ("DS", DSfloat("  3.14 "), None), ("DS", 1e-7, None), ("DS", 12345678.0, None),
    ("DS", 5, None), ("DS", -0.0, None), ("DS", 1e16, None),
    ("DT", D.datetime(2020, 1, 2, 3, 4, 5), None),
    ("DT", D.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=D.timezone(D.timedelta(hours=-5))), None),
    ("DT", "20200102030405.123456+0100", None),
    ("FD", 1.5, None), ("FD", [1.5, -2.25, math.pi], None), ("FL", 0.1, None),
    ("FL", [1.0, 2.0], None), ("IS", 5, None), ("IS", [1, -2, 3], None), ("IS", "007", None),
    ("IS", 2.0, None), ("IS", IS("  12 "), None),
    ("LO", "Hello", None), ("LO", ["a", "bc"], None), ("LT", "line1\r\nline2", None),
    ("OB", b"\x01\x02\x03", None), ("OD", bytes(range(16)), None), ("OF", bytes(8), None),
    ("OL", bytes(range(8)), None), ("OV", bytes(range(16)), None), ("OW", b"\x01\x02\x03\x04", None),
    ("PN", "Doe^John", None), ("PN", PersonName("A^B=C^D"), None), ("PN", ["A^B", "C^D"], None),
    ("SH", "abc", None), ("SL", -5, None), ("SL", [1, -1, 2**31 - 1], None), ("SS", -2, None),
    ("ST", "x", None), ("SV", -(2**40), None), ("TM", "123456.789", None),
    ("TM", D.time(1, 2, 3), None), ("TM", D.time(1, 2, 3, 500), None), ("UC", "unlimited", None),
    ("UI", "1.2.840.10008.1.2", None), ("UI", ["1.2", "1.2.3"], None),
    ("UL", 2**32 - 1, None), ("UR", "http://example.com/a?b=c", None),
    ("US", [1, 2, 3], None), ("UT", "text", None), ("UV", 2**64 - 1, None),
    ("AT", 0x00100010, None), ("AT", [0x00100010, 0x7FE00010], None),
    ("AT", (0x0010, 0x0020), None),
    # Specific Character Set, single-byte and stand-alone multi-byte sets
    ("PN", "Buc^Jérôme", "ISO_IR 100"), ("LO", "Διονυσιος", "ISO_IR 126"),
    ("PN", "Люкceмбypг", "ISO_IR 144"), ("PN", "قباني^لنزار", "ISO_IR 127"),
    ("PN", "שרון^דבורה", "ISO_IR 138"), ("PN", "Wang^XiaoDong=王^小東", "ISO_IR 192"),
    ("PN", "Wang^XiaoDong=王^小东", "GB18030"), ("LO", ["乗", "表"], "GBK"),
    ("PN", "ﾔﾏﾀﾞ^ﾀﾛｳ", "ISO_IR 13"),
    # ISO 2022 code extensions: PS3.5 H.3.1, H.3.2, I.2 and a multi-valued name
    ("PN", "Yamada^Tarou=山田^太郎=やまだ^たろう", JP),
    ("PN", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", ["ISO 2022 IR 13", "ISO 2022 IR 87"]),
    ("PN", "Hong^Gildong=洪^吉洞=홍^길동", ["", "ISO 2022 IR 149"]),
    ("PN", ["やまだ^たろう", "やまだ^たろう"], JP), ("LT", "やまだ", JP),
    ("SH", "山田", ["ISO 2022 IR 6", "ISO 2022 IR 87"]),
]
BIG_ENDIAN = [("US", [1, 2]), ("SS", -2), ("UL", 7), ("SL", [-1, 5]), ("FL", 1.5), ("FD", -2.5),
              ("SV", -(2**40)), ("UV", 2**63), ("AT", [0x00100010, 0x00080005]), ("OB", b"\x01\x02")]


@pytest.mark.parametrize("vr,value,terms", SAME_AS_PYDICOM)
def test_same_bytes_as_pydicom(vr: str, value: Any, terms: Any) -> None:
    expected = pydicom_bytes(vr, value, True, terms)
    assert ours(vr, value, True, terms) == expected
    back = decode_value(vr, expected, True, python_encodings(terms))
    assert ours(vr, back, True, terms) == expected


@pytest.mark.parametrize("vr,value", BIG_ENDIAN)
def test_big_endian_same_as_pydicom(vr: str, value: Any) -> None:
    assert ours(vr, value, False) == pydicom_bytes(vr, value, False)
    assert ours(vr, value, False) != ours(vr, value, True) or vr == "OB"


def test_intended_differences_from_pydicom() -> None:
    # DS: at most 16 characters (PS3.5 Table 6.2-1); pydicom writes repr().
    assert ours("DS", 0.1 + 0.2) == b"0.30000000000000"
    assert pydicom_bytes("DS", 0.1 + 0.2) == b"0.30000000000000004 "
    # UN: even length (PS3.5 §7.1.1); pydicom leaves it odd.
    assert ours("UN", b"abc") == b"abc\x00" and pydicom_bytes("UN", b"abc") == b"abc"
    # GB 2312 as a code extension is designated by ESC $ ) A (PS3.3 Table
    # C.12-4, PS3.5 Annex K); pydicom writes its bytes with no escape.
    terms = ["", "ISO 2022 IR 58"]
    name = "Wang^XiaoDong=王^小东"
    ext = ours("PN", name, True, terms)
    assert ext == b"Wang^XiaoDong=\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab "
    assert b"\x1b" not in pydicom_bytes("PN", name, True, terms)
    assert decode_value("PN", ext, True, python_encodings(terms)) == name
    # ISO-IR 6 is ASCII once code extensions are in use: Latin-1 letters get
    # ESC - A; pydicom writes them unannounced.
    terms = ["", "ISO 2022 IR 100"]
    assert ours("LO", "Jérôme", True, terms) == b"\x1b-AJ\xe9r\xf4me "
    assert pydicom_bytes("LO", "Jérôme", True, terms) == b"J\xe9r\xf4me"
    # PS3.5 §6.1.2.5.3: after CR LF the initial set is active again, so the
    # Korean set is designated again; pydicom's own reader misreads its
    # output and reads ours.
    terms = ["", "ISO 2022 IR 149"]
    text = "홍\r\n길동"
    ext = ours("LT", text, True, terms)
    assert ext == b"\x1b$)C\xc8\xab\r\n\x1b$)C\xb1\xe6\xb5\xbf"
    pd_enc = ["iso8859", "euc_kr"]
    assert pd_decode_bytes(ext, pd_enc, TEXT_VR_DELIMS) == text
    assert pd_decode_bytes(pydicom_bytes("LT", text, True, terms), pd_enc, TEXT_VR_DELIMS) != text
    # Where ASCII and JIS X 0208 mix in one part, pydicom writes a needless
    # ESC ( B before the ASCII that starts it (ASCII is already active).
    assert ours("LO", "Yamada山田ABC", True, JP) == b"Yamada\x1b$B;3ED\x1b(BABC "
    assert pydicom_bytes("LO", "Yamada山田ABC", True, JP) == \
        b"\x1b(BYamada\x1b$B;3ED\x1b(BABC"


# --------------------------------------------------------------------------
# Property-based: decode(encode(v)) == v, and pydicom's bytes


if given is not None:
    _cs = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ", max_size=16).map(str.rstrip)
    _lo = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                         blacklist_characters="\\\x7f"), max_size=20)
    _finite = st.floats(allow_nan=False, allow_infinity=False)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_finite, min_size=1, max_size=4))
    def test_ds_floats_property(values: list[float]) -> None:
        value = values[0] if len(values) == 1 else values
        out = encode_value("DS", value)
        texts = out.decode().rstrip().split("\\")
        assert all(len(t) <= 16 for t in texts)
        back = decode_value("DS", out)
        back = back if isinstance(back, list) else [back]
        for t, b, v in zip(texts, back, values, strict=True):
            assert float(b) == float(t) and t == format_ds(v)
        if all(len(repr(v)) <= 16 for v in values):
            assert out == pydicom_bytes("DS", value)
            assert [float(b) for b in back] == values

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4),
           st.sampled_from(["IS", "SL"]), st.booleans())
    def test_integers_property(values: list[int], vr: str, little: bool) -> None:
        value = values[0] if len(values) == 1 else values
        out = encode_value(vr, value, little)
        assert out == pydicom_bytes(vr, value, little)
        assert _same(vr, decode_value(vr, out, little), value)

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(["US", "SS", "UL", "UV", "SV", "FL", "FD"]), st.data(),
           st.booleans())
    def test_binary_numbers_property(vr: str, data: Any, little: bool) -> None:
        lo, hi = {"US": (0, 0xFFFF), "SS": (-0x8000, 0x7FFF), "UL": (0, 2**32 - 1),
                  "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1)}.get(vr, (None, None))
        item = (st.integers(lo, hi) if lo is not None
                else st.floats(width=32 if vr == "FL" else 64))
        values = data.draw(st.lists(item, min_size=1, max_size=5))
        value = values[0] if len(values) == 1 else values
        out = encode_value(vr, value, little)
        assert out == pydicom_bytes(vr, value, little)
        assert _same(vr, decode_value(vr, out, little), value)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_cs, min_size=1, max_size=4), st.sampled_from(["CS", "SH", "LO", "UC"]))
    def test_text_property(values: list[str], vr: str) -> None:
        value = values[0] if len(values) == 1 else values
        out = encode_value(vr, value)
        assert out == pydicom_bytes(vr, value)
        assert _same(vr, decode_value(vr, out), value)

    @settings(max_examples=300, deadline=None)
    @given(_lo, st.sampled_from([None, "ISO_IR 100", ["", "ISO 2022 IR 100"]]))
    def test_latin1_text_property(text: str, terms: Any) -> None:
        text = text.strip(" \x00")
        enc = python_encodings(terms)
        for bad in "\r\n\t\x0c\x1b":
            text = text.replace(bad, "")
        out = encode_value("LO", text, True, enc)
        assert decode_value("LO", out, True, enc) == text
        if len(enc) == 1 or text.isascii():
            assert out == pydicom_bytes("LO", text, True, terms)

    _kana = st.text(alphabet="やまだたろう山田太郎ABC ", min_size=1, max_size=6).map(str.strip)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(_kana.filter(bool), min_size=1, max_size=3),
           st.sampled_from([JP, ["ISO 2022 IR 13", "ISO 2022 IR 87"]]))
    def test_iso2022_person_names_property(parts: list[str], terms: list[str]) -> None:
        name = "^".join(parts[:2]) + ("=" + parts[2] if len(parts) > 2 else "")
        enc = python_encodings(terms)
        out = encode_value("PN", name, True, enc)
        assert decode_value("PN", out, True, enc) == name
        assert canonical("PN", out, enc)
        mixed = any(not p.isascii() and re.search("[A-Z]", p) for p in parts)
        if terms is JP and not mixed:
            assert out == pydicom_bytes("PN", name, True, terms)


# --------------------------------------------------------------------------
# Details


def test_empty_values() -> None:
    for vr in sorted(_ALL_VRS):
        for empty in (None, "", []):
            assert encode_value(vr, empty) == b"", (vr, empty)
    assert encode_value("OB", b"") == b"" and encode_value("PN", PersonName("")) == b""


def test_padding() -> None:
    assert encode_value("UI", "1.2.3") == b"1.2.3\x00"
    assert encode_value("CS", "ABC") == b"ABC "
    assert encode_value("OB", b"\x01") == b"\x01\x00"
    assert encode_value("PN", "A^B=") == b"A^B "  # trailing empty group dropped
    assert all(len(encode_value("LO", "x" * n)) % 2 == 0 for n in range(6))


def test_at_forms() -> None:
    one = b"\x10\x00\x20\x00"
    assert encode_value("AT", 0x00100020) == one
    assert encode_value("AT", (0x0010, 0x0020)) == one
    assert encode_value("AT", "(0010,0020)") == one == encode_value("AT", "00100020")
    assert encode_value("AT", [(0x0010, 0x0020), 0x00100020]) == one * 2
    assert encode_value("AT", 0x00100020, False) == b"\x00\x10\x00\x20"
    assert decode_value("AT", encode_value("AT", [0x00100020, 0x7FE00010])) == [
        0x00100020, 0x7FE00010]


def test_other_vrs_from_numbers_and_swap() -> None:
    # Bytes are kept in their order; numbers are packed in the requested one.
    raw = b"\x01\x02\x03\x04"
    assert encode_value("OW", raw, False) == raw
    assert encode_value("OW", [0x0201, 0x0403]) == raw
    assert encode_value("OW", [0x0201, 0x0403], False) == b"\x02\x01\x04\x03"
    assert encode_value("OF", [1.0], False) == struct.pack(">f", 1.0)
    assert swap_bytes("OW", raw) == b"\x02\x01\x04\x03"
    assert swap_bytes("OL", raw) == raw[::-1] and swap_bytes("OB", raw) == raw
    assert swap_bytes("OD", bytes(range(8))) == bytes(range(8))[::-1]
    assert swap_bytes("AT", raw) == b"\x02\x01\x04\x03"
    np = pytest.importorskip("numpy")
    arr = np.array([1, 2], dtype="<u2")
    assert encode_value("OW", arr) == b"\x01\x00\x02\x00"
    assert encode_value("OW", arr, False) == b"\x00\x01\x00\x02"
    assert encode_value("US", np.array([1, 2], dtype=np.uint16)) == b"\x01\x00\x02\x00"


def test_number_strings_keep_their_text() -> None:
    assert encode_value("DS", decode_value("DS", b"1.50\\2.00 ")) == b"1.50\\2.00 "
    assert encode_value("IS", decode_value("IS", b"+007")) == b"+007"
    # A DSfloat made from a float keeps repr(); it is shortened only when needed.
    assert encode_value("DS", DSfloat(0.1 + 0.2)) == b"0.30000000000000"
    assert encode_value("DS", DSfloat(0.25)) == b"0.25"
    from decimal import Decimal
    assert encode_value("DS", Decimal("1.000")) == b"1.000 "
    assert encode_value("IS", Decimal("3")) == b"3 "
    # pydicom's own value types work too.
    from pydicom.valuerep import IS as PdIS
    from pydicom.valuerep import DSfloat as PdDSfloat
    assert encode_value("DS", PdDSfloat("  1.50")) == b"1.50"
    assert encode_value("IS", PdIS("012")) == b"012 "


def test_dates_and_times() -> None:
    assert encode_value("DA", [D.date(2020, 1, 2), "20200103"]) == b"20200102\\20200103 "
    assert encode_value("TM", D.time(23, 59, 59, 999999)) == b"235959.999999 "
    assert encode_value("DT", D.date(2020, 1, 2)) == b"20200102"
    tz = D.timezone(D.timedelta(hours=5, minutes=30))
    assert encode_value("DT", D.datetime(2020, 1, 2, 3, 4, 5, tzinfo=tz)) == \
        b"20200102030405+0530 "
    from pydicom.valuerep import DA, DT, TM
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert encode_value("DA", DA("20200102")) == b"20200102"
        assert encode_value("TM", TM("1010")) == b"1010"
        assert encode_value("DT", DT("2020")) == b"2020"


def test_unencodable_values_raise() -> None:
    for vr, value in [("US", 70000), ("US", -1), ("SS", 40000), ("US", "1"), ("US", 1.5),
                      ("UL", [1, None]), ("FL", "x"), ("IS", 1.5), ("AT", "xyz"),
                      ("AT", 2**32), ("OW", [70000]), ("US or SS", 5)]:
        with pytest.raises(MalformedDataError):
            encode_value(vr, value)
    with pytest.raises(ValueError):
        encode_value("SQ", [])
    with pytest.raises(MalformedDataError):
        encode_value("XX", "text")
    with pytest.warns(ValueWarning):
        assert encode_value("XX", b"abc") == b"abc\x00"
    assert encode_value("OB or OW", b"\x01\x02") == b"\x01\x02"


def test_characters_outside_the_character_sets() -> None:
    with pytest.warns(CharsetWarning):
        assert encode_value("LO", "Δ", True, ("latin_1",)) == b"? "
    with pytest.raises(MalformedDataError):
        encode_value("LO", "Δ", True, ("latin_1",), strict=True)
    with pytest.warns(CharsetWarning):
        assert encode_value("CS", "Δ") == b"? "
    # Only the character that no declared set has is replaced.
    with pytest.warns(CharsetWarning):
        out = encode_value("PN", "山田^홍", True, python_encodings(JP))
    assert out == b"\x1b$B;3ED\x1b(B^?"
    with pytest.raises(MalformedDataError):
        encode_value("PN", "山田^홍", True, python_encodings(JP), strict=True)
    # Latin-1 letters with only Japanese declared keep their Latin-1 bytes,
    # which the reader takes as Latin-1 (as pydicom's does).
    enc = python_encodings(JP)
    assert decode_value("LO", encode_value("LO", "é山", True, enc), True, enc) == "é山"


def test_encode_text_directly() -> None:
    enc = python_encodings(["", "ISO 2022 IR 87", "ISO 2022 IR 159"])
    # JIS X 0212 (ISO-IR 159) for a character JIS X 0208 lacks.
    out = encode_text("丂^山", enc, "PN")
    assert out == b"\x1b$(D0!\x1b(B^\x1b$B;3\x1b(B"
    assert decode_value("PN", out, True, enc) == "丂^山"
    assert encode_text("abc") == b"abc"
    assert encode_text("ﾔﾏ山ABC", python_encodings(["ISO 2022 IR 13", "ISO 2022 IR 87"])) == \
        b"\xd4\xcf\x1b$B;3\x1b(JABC"


# --------------------------------------------------------------------------
# Validation

BAD = [
    ("AE", "x" * 17), ("AE", "   "), ("AE", "A\nB"), ("AE", "A\\" + "x" * 17),
    ("AS", "42Y"),
    ("AS", "042X"), ("CS", "lower"), ("CS", "X" * 17), ("DA", "20201301"),
    ("DA", "2020.01.02"), ("DS", "1.2.3"), ("DS", "1" * 17), ("DS", float("nan")),
    ("DS", [1.0, "x"]), ("DT", "2020010203040506"), ("DT", "20201301"), ("IS", "1.5"),
    ("IS", "1" * 13), ("IS", 2**31), ("LO", "x" * 65), ("LO", "a\nb"),
    ("LT", "x" * 10241), ("LT", "a\x01b"), ("LT", ["a", "b"]), ("PN", "a=b=c=d"),
    ("PN", "x" * 65), ("PN", "a^b^c^d^e^f"), ("SH", "x" * 17), ("ST", "x" * 1025),
    ("TM", "2500"), ("TM", "12:30"), ("UI", "1.02"), ("UI", "1." * 40 + "1"), ("UI", "1.2a"),
    ("UR", "has space inside"), ("US", -1), ("US", 65536), ("SS", 40000), ("UL", -1),
    ("SL", 2**31), ("UV", -1), ("SV", 2**63), ("US", 1.5), ("FL", "x"), ("FL", 1e39),
    ("OW", b"\x01\x02\x03"), ("OF", b"\x01\x02"), ("OB", 5), ("AT", "zz"), ("US", b"\x01"),
]
GOOD = [
    ("AE", "STORESCP"), ("AE", " A B "), ("AS", "042Y"), ("CS", "ORIGINAL"), ("CS", ["A", "B_1"]),
    ("CS", "A\\B"), ("LO", "a\\" + "x" * 64),
    ("DA", "20200102"), ("DA", "20200101-20201231"), ("DA", "-20201231"),
    ("DA", D.date(2020, 1, 2)), ("DS", "1.5e3"), ("DS", " -.5 "), ("DS", 0.1 + 0.2),
    ("DS", [1.0, 2]), ("DT", "20200102030405.123456+0100"), ("DT", "2020"),
    ("IS", " 42 "), ("IS", -(2**31)), ("LO", "x" * 64), ("LT", "line\r\nline\tx"),
    ("PN", "Yamada^Tarou=山田^太郎=やまだ^たろう"), ("PN", "A^B^C^D^E"), ("SH", "x" * 16),
    ("TM", "235960.5"), ("TM", "1200-1300"), ("TM", D.time(1, 2, 3)),
    ("UI", "1.2.840.10008.1.2.1"), ("UI", "0.0"), ("UR", "http://a/b?c=d"), ("US", [0, 65535]),
    ("SS", -32768), ("UV", 2**64 - 1), ("FL", 1.5), ("FD", float("inf")), ("OB", b"\x01"),
    ("OW", b"\x01\x02"), ("AT", (0x0010, 0x0010)), ("UT", "x" * 100000), ("UC", "x" * 1000),
    ("US", None), ("LO", ""), ("US", b"\x01\x00"),
]


@pytest.mark.parametrize("vr,value", BAD)
def test_validation_flags_bad_values(vr: str, value: Any) -> None:
    with pytest.raises(MalformedDataError) as info:
        validate_value(vr, value, strict=True)
    assert info.value.tag is None
    with pytest.warns(ValueWarning):
        validate_value(vr, value)


@pytest.mark.parametrize("vr,value", GOOD)
def test_validation_passes_good_values(vr: str, value: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_value(vr, value, strict=True)
        validate_value(vr, value)


def _pydicom_flags(vr: str, value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    if vr not in SINGLE_VALUE_TEXT_VRS:
        # pydicom's DataElement splits a str on backslashes before validating.
        items = [x for v in items for x in (v.split("\\") if isinstance(v, str) else [v])]
    for item in items:
        try:
            pd_validate_value(vr, item, pd_config.RAISE)
        except (ValueError, TypeError):
            return True
    return False


def test_validation_agrees_with_pydicom() -> None:
    # Whatever pydicom's validators flag, validate_value flags; on the good
    # values pydicom agrees. The checks pydicom does not make are listed.
    not_in_pydicom = [("AE", "   "), ("AE", "A\nB"), ("IS", 2**31),
                      ("LO", "a\nb"), ("LT", "a\x01b"), ("PN", "a^b^c^d^e^f"),
                      ("DS", float("nan")), ("DS", [1.0, "x"]), ("LT", ["a", "b"]),
                      ("FL", 1e39), ("OW", b"\x01\x02\x03"), ("OF", b"\x01\x02"),
                      ("AT", "zz"), ("FL", "x"), ("US", b"\x01"), ("OB", 5)]
    for vr, value in BAD:
        if (vr, value) in not_in_pydicom:
            continue
        assert _pydicom_flags(vr, value), (vr, value)
    for vr, value in GOOD:
        if isinstance(value, bytes) or value is None:
            continue
        if vr in ("DS", "IS") and not isinstance(value, str):
            continue  # pydicom's validator takes DS/IS text; numbers are formatted first
        assert not _pydicom_flags(vr, value), (vr, value)


def test_encode_with_validation() -> None:
    with pytest.warns(ValueWarning):
        assert encode_value("CS", "lower", validate=True) == b"lower "
    with pytest.raises(MalformedDataError) as info:
        encode_value("CS", "lower", validate=True, strict=True)
    assert info.value.tag is None
    assert encode_value("CS", "UPPER", validate=True, strict=True) == b"UPPER "
    # Without validate= nothing is checked: the write path stays cheap.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert encode_value("CS", "lower", strict=True) == b"lower "
