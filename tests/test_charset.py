"""dicomfast.charset: Specific Character Set terms and ISO 2022 text decoding.

Expected names come from the character set examples of PS3.5 Annexes H, I, J
and K as stored in pydicom's charset_files (raw bytes read from the files);
term mapping is checked against pydicom's convert_encodings.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.charset import convert_encodings  # noqa: E402
from pydicom.dataelem import RawDataElement  # noqa: E402

from dicomfast.charset import (  # noqa: E402
    DEFAULT_ENCODING,
    decode_person_name_groups,
    decode_text,
    python_encodings,
)
from dicomfast.errors import CharsetWarning, MalformedDataError  # noqa: E402
from dicomfast.values import PersonName, decode_value  # noqa: E402

CHARSET_FILES = Path(pydicom.__file__).parent / "data" / "charset_files"

TERMS = [
    "ISO_IR 6", "ISO_IR 13", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110",
    "ISO_IR 126", "ISO_IR 127", "ISO_IR 138", "ISO_IR 144", "ISO_IR 148", "ISO_IR 166",
    "ISO_IR 192", "GB18030", "GBK", "ISO 2022 IR 6", "ISO 2022 IR 13", "ISO 2022 IR 87",
    "ISO 2022 IR 100", "ISO 2022 IR 101", "ISO 2022 IR 109", "ISO 2022 IR 110",
    "ISO 2022 IR 126", "ISO 2022 IR 127", "ISO 2022 IR 138", "ISO 2022 IR 144",
    "ISO 2022 IR 148", "ISO 2022 IR 149", "ISO 2022 IR 159", "ISO 2022 IR 166",
    "ISO 2022 IR 58",
]


def _pydicom_encodings(value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(convert_encodings(value))


@pytest.mark.parametrize("term", TERMS)
def test_terms_match_pydicom(term):
    assert python_encodings(term) == _pydicom_encodings(term)
    assert python_encodings([term]) == _pydicom_encodings([term])


@pytest.mark.parametrize("value", [
    None, "", [], [""], ["", "ISO 2022 IR 87"], ["ISO 2022 IR 13", "ISO 2022 IR 87"],
    ["ISO 2022 IR 6", "ISO 2022 IR 87", "ISO 2022 IR 159"], ["", "ISO 2022 IR 149"],
    ["ISO 2022 IR 100", "ISO 2022 IR 126", "ISO 2022 IR 144"], ["", "ISO 2022 IR 58"],
])
def test_values_match_pydicom(value):
    expected = _pydicom_encodings(value)
    assert python_encodings(value) == expected
    assert isinstance(python_encodings(value), tuple)


def test_default_repertoire():
    assert python_encodings(None) == (DEFAULT_ENCODING,) == ("iso8859",)
    # A backslash-joined string is split like the multi-valued element.
    assert python_encodings("\\ISO 2022 IR 87") == ("iso8859", "iso2022_jp")
    # CS: surrounding spaces are not significant (PS3.5 Table 6.2-1).
    assert python_encodings(" ISO_IR 100 ") == ("latin_1",)


@pytest.mark.parametrize("term,expected", [
    ("ISO IR 100", "latin_1"), ("ISO-IR 144", "iso_ir_144"), ("ISO 2022-IR 87", "iso2022_jp"),
    ("ISO_2022_IR_149", "euc_kr"),
])
def test_misspelt_terms_warn(term, expected):
    with pytest.warns(CharsetWarning):
        assert python_encodings(term) == (expected,) == _pydicom_encodings(term)


def test_unknown_terms_warn_every_time():
    for _ in range(2):  # a cached answer must not swallow the warning
        with pytest.warns(CharsetWarning):
            assert python_encodings("ISO_IR 999") == ("iso8859",)
        with pytest.warns(CharsetWarning):
            assert python_encodings(["ISO_IR 100", "NOT A CHARSET"]) == ("latin_1", "iso8859")


def test_python_codec_names_are_accepted():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert python_encodings("latin_1") == ("latin_1",)
    with pytest.warns(CharsetWarning):
        assert python_encodings("rot13") == ("iso8859",)  # not a text codec


def test_stand_alone_sets_take_no_extensions():
    # PS3.5 §6.1.2.5.4: UTF-8, GB18030 and GBK cannot be code extensions.
    with pytest.warns(CharsetWarning):
        assert python_encodings(["ISO_IR 192", "ISO 2022 IR 87"]) == ("UTF8",)
    with pytest.warns(CharsetWarning):
        assert python_encodings(["ISO 2022 IR 100", "GB18030", "ISO 2022 IR 126"]) == (
            "latin_1", "iso_ir_126")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for value in (["ISO_IR 192", "ISO 2022 IR 87"], ["", "GBK", "ISO 2022 IR 126"]):
            assert python_encodings(value) == _pydicom_encodings(value)


# --------------------------------------------------------------------------
# Patient's Name from the PS3.5 annex examples


def _raw_name(path: Path, tag: int = 0x00100010) -> tuple[bytes, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
    raw = ds._dict[tag]
    assert isinstance(raw, RawDataElement)
    charset = ds._dict.get(0x00080005)
    terms = decode_value("CS", charset.value) if isinstance(charset, RawDataElement) else (
        charset.value if charset is not None else None)
    return raw.value, terms


EXPECTED_NAMES = {
    "chrArab.dcm": "قباني^لنزار",
    "chrFren.dcm": "Buc^Jérôme",
    "chrGerm.dcm": "Äneas^Rüdiger",
    "chrGreek.dcm": "Διονυσιος",
    "chrH31.dcm": "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "chrH32.dcm": "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
    "chrHbrw.dcm": "שרון^דבורה",
    "chrI2.dcm": "Hong^Gildong=洪^吉洞=홍^길동",
    "chrJapMulti.dcm": "やまだ^たろう",
    "chrJapMultiExplicitIR6.dcm": "やまだ^たろう",
    "chrKoreanMulti.dcm": "김희중",
    "chrRuss.dcm": "Люкceмбypг",
    "chrX1.dcm": "Wang^XiaoDong=王^小東",
    "chrX2.dcm": "Wang^XiaoDong=王^小东",
}


@pytest.mark.parametrize("name,expected", sorted(EXPECTED_NAMES.items()))
def test_annex_patient_names(name, expected):
    raw, terms = _raw_name(CHARSET_FILES / name)
    pn = decode_value("PN", raw, True, python_encodings(terms))
    assert type(pn) is PersonName and pn == expected


def test_japanese_name_parts():
    raw, terms = _raw_name(CHARSET_FILES / "chrH32.dcm")
    pn = decode_value("PN", raw, True, python_encodings(terms))
    assert (pn.family_name, pn.given_name) == ("ﾔﾏﾀﾞ", "ﾀﾛｳ")
    assert (pn.ideographic, pn.phonetic) == ("山田^太郎", "やまだ^たろう")
    assert decode_person_name_groups(raw, python_encodings(terms)) == [
        ("ﾔﾏﾀﾞ^ﾀﾛｳ", "山田^太郎", "やまだ^たろう")]


def test_multi_valued_names():
    raw, terms = _raw_name(CHARSET_FILES / "chrKoreanMulti.dcm", 0x00101001)
    value = decode_value("PN", raw, True, python_encodings(terms))
    assert value == ["김희중", "김희중"] and all(type(v) is PersonName for v in value)
    raw, terms = _raw_name(CHARSET_FILES / "chrJapMulti.dcm", 0x00101001)
    assert decode_person_name_groups(raw, python_encodings(terms)) == [
        ("やまだ^たろう",), ("やまだ^たろう",)]


# --------------------------------------------------------------------------
# decode_text


def test_fast_path_and_default_repertoire_vrs():
    assert decode_text(b"abc", ("iso8859",), "LO") == "abc"
    assert decode_text("Jérôme".encode(), ("UTF8",), "LO") == "Jérôme"
    # PS3.5 §6.1.2.3: CS and other default-repertoire VRs ignore (0008,0005).
    assert decode_text("é".encode(), ("UTF8",), "CS") == "Ã©"
    # GBK: 0x5C can be a trail byte; decoding comes before splitting.
    raw = "乗\\表".encode("gbk")
    assert decode_value("LO", raw, True, ("GBK",)) == ["乗", "表"]
    assert raw[1:2] == b"\\"


def test_iso2022_jp():
    encodings = python_encodings(["", "ISO 2022 IR 87"])
    assert decode_text(b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B", encodings, "PN") == "山田^太郎"
    # ISO-IR 159 (JIS X 0212) characters, which JIS X 0208 does not have.
    encodings = python_encodings(["", "ISO 2022 IR 87", "ISO 2022 IR 159"])
    assert decode_text(b"\x1b$(D0!\x1b(B^\x1b$B;3\x1b(B", encodings, "PN") == "丂^山"
    # ISO-IR 13 as value 1: half-width katakana; ESC ( J selects JIS X 0201 romaji.
    encodings = python_encodings(["ISO 2022 IR 13", "ISO 2022 IR 87"])
    assert decode_text(b"\xd4\xcf\x1b$B;3\x1b(JABC", encodings, "LO") == "ﾔﾏ山ABC"


def test_korean_and_chinese():
    encodings = python_encodings(["", "ISO 2022 IR 149"])
    raw = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7"
    assert decode_text(raw, encodings, "PN") == "Hong^Gildong=洪^吉洞"
    encodings = python_encodings(["", "ISO 2022 IR 58"])
    raw = b"Wang^XiaoDong=\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab="
    assert decode_text(raw, encodings, "PN") == "Wang^XiaoDong=王^小东="
    assert decode_text("王小东".encode("gb18030"), ("GB18030",), "SH") == "王小东"


def test_delimiters_bring_back_the_initial_repertoire():
    # PS3.5 §6.1.2.5.3: CR, LF, TAB, FF and, in PN, "^" and "=".
    encodings = python_encodings(["ISO 2022 IR 100", "ISO 2022 IR 144"])
    raw = b"\x1b-L\xbb\xee\r\n\xbb\xee"
    assert decode_text(raw, encodings, "LT") == "Лю\r\n»î"
    assert decode_text(b"\x1b-L\xbb^\xbb=\xbb", encodings, "PN") == "Л^»=»"
    assert decode_text(b"\x1b-L\xbb^\xbb", encodings, "LO") == "Л^Л"
    assert decode_text(b"\x1b-L\xbb^\x1b-L\xbb", encodings, "PN") == "Л^Л"


def test_unknown_and_undeclared_escapes():
    encodings = python_encodings(["", "ISO 2022 IR 100"])
    with pytest.warns(CharsetWarning):
        assert decode_text(b"a\x1b%Gb", encodings, "LO") == "a\x1b%Gb"
    with pytest.warns(CharsetWarning):  # Cyrillic, not declared: kept as bytes
        assert decode_text(b"a\x1b-L\xbb", encodings, "LO") == "a\x1b-L\xbb"
    with pytest.raises(MalformedDataError):
        decode_text(b"a\x1b-L\xbb", encodings, "LO", strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Returning to ISO-IR 6 is always allowed.
        assert decode_text(b"\x1b-A\xe9\x1b(Bx", encodings, "LO") == "éx"


def test_undecodable_bytes():
    with pytest.warns(CharsetWarning):
        assert decode_text(b"ok\xff", ("UTF8",), "LO") == "ok\ufffd"
    encodings = python_encodings(["", "ISO 2022 IR 87"])
    with pytest.warns(CharsetWarning):
        decode_text(b"x\x1b$B\xff\xff\x1b(B", encodings, "LO")
    with pytest.raises(MalformedDataError):
        decode_text(b"ok\xff", ("UTF8",), "LO", strict=True)


def test_person_name_groups():
    encodings = ("iso8859",)
    assert decode_person_name_groups(b"A^B=C^D=E ", encodings) == [("A^B", "C^D", "E")]
    assert decode_person_name_groups(b"A==\\=B\\", encodings) == [("A",), ("", "B"), ()]
    # 0x3D ("=") and 0x5E ("^") inside JIS X 0208 characters (綾 is 0x30 0x3D,
    # ま is 0x24 0x5E) are not delimiters.
    encodings = python_encodings(["", "ISO 2022 IR 87"])
    raw = b"A=\x1b$B0=\x1b(B^\x1b$B$^\x1b(B=\x1b$B0=$^\x1b(B"
    assert decode_person_name_groups(raw, encodings) == [("A", "綾^ま", "綾ま")]
    pn = decode_value("PN", raw, True, encodings)
    assert pn.ideographic == "綾^ま" and pn.phonetic == "綾ま"
