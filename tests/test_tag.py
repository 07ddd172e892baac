"""Tag parsing and printing, with pydicom's Tag as an oracle where the two overlap."""

from __future__ import annotations

import pytest

from dicomfast import _dictionary
from dicomfast.tag import Tag, tag_to_str

pydicom = pytest.importorskip("pydicom")


@pytest.mark.parametrize(
    "arg",
    [
        0x00100010,
        (0x0010, 0x0010),
        [0x0010, 0x0010],
        ("0010", "0010"),
        "PatientName",
        "(0010,0010)",
        "(0010, 0010)",
        " ( 0010 , 0010 ) ",
        "0010,0010",
        "0x00100010",
        "0X00100010",
        "00100010",
        "100010",
    ],
)
def test_forms_of_patient_name(arg):
    tag = Tag(arg)
    assert tag == 0x00100010
    assert type(tag) is Tag


def test_two_argument_form():
    assert Tag(0x7FE0, 0x0010) == 0x7FE00010
    assert Tag("7fe0", "10") == 0x7FE00010


def test_edges():
    assert Tag(0) == 0
    assert Tag(0xFFFFFFFF) == 0xFFFFFFFF
    assert Tag((0xFFFF, 0xFFFF)) == 0xFFFFFFFF
    assert Tag("(ffff,ffff)") == 0xFFFFFFFF
    assert Tag("(7fe0,10)") == 0x7FE00010
    assert Tag("10") == 0x10  # a short hex string is a number, as in pydicom
    t = Tag(0x00080005)
    assert Tag(t) is t


@pytest.mark.parametrize(
    "arg",
    [
        -1,
        0x100000000,
        (0x10000, 0),
        (0, 0x10000),
        (-1, 0),
        (1, 2, 3),
        (1,),
        "",
        "NotAKeyword",
        "patientname",  # keywords are case-sensitive
        "(0010,0010",
        "0010,0010)",
        "(00100,0010)",
        "0x100000000",
        "123456789",
        "(0010;0010)",
        "0x",
        ("0010", "zz"),
        "OverlayData",  # a repeater keyword names no single tag (as in pydicom)
    ],
)
def test_bad_values(arg):
    with pytest.raises(ValueError):
        Tag(arg)


@pytest.mark.parametrize(
    "arg",
    [None, 1.0, 16.0, b"00100010", True, (1.0, 2), ("0010", 16), object(), {0x10: 0x10}],
)
def test_bad_types(arg):
    with pytest.raises(TypeError):
        Tag(arg)


def test_index_types_are_accepted():
    np = pytest.importorskip("numpy")
    assert Tag(np.uint32(0x00100010)) == 0x00100010
    assert Tag(np.uint16(0x10), np.uint16(0x10)) == 0x00100010


def test_str_and_repr():
    assert str(Tag(0x7FE00010)) == "(7FE0,0010)"
    assert repr(Tag(0x0008000A)) == "(0008,000A)"
    assert tag_to_str(0x0008000A) == "(0008,000A)"
    assert tag_to_str(0) == "(0000,0000)"
    assert tag_to_str(0xFFFEE0DD) == "(FFFE,E0DD)"
    assert f"{Tag(0x00100010)}" == "(0010,0010)"


def test_properties():
    t = Tag(0x00291010)
    assert (t.group, t.element, t.elem) == (0x0029, 0x1010, 0x1010)
    assert t.is_private and not t.is_private_creator
    assert Tag(0x00290010).is_private_creator
    assert not Tag(0x00100010).is_private
    assert not Tag(0x00100010).is_private_creator
    assert Tag(0x00100010).json_key == "00100010"
    assert Tag(0x7FE00010).json_key == "7FE00010"


def test_behaves_as_an_int():
    t = Tag("PatientID")
    d = {0x00100020: "id"}
    assert d[t] == "id"
    assert {t: 1}[0x00100020] == 1
    assert hash(t) == hash(0x00100020)
    assert t < Tag("PatientName") or t > Tag("PatientName")
    assert sorted([Tag(0x20), Tag(0x10)]) == [0x10, 0x20]
    assert isinstance(t + 1, int)


def test_no_keyword_reads_as_hex():
    # A string is tried as a keyword before hex; no keyword may be ambiguous.
    hexdigits = set("0123456789abcdefABCDEF")
    for keyword in _dictionary.KEYWORDS:
        assert not set(keyword) <= hexdigits, keyword


def test_every_keyword_agrees_with_pydicom():
    from pydicom.tag import Tag as PdTag

    for keyword in _dictionary.KEYWORDS:
        try:
            expected = PdTag(keyword)
        except ValueError:
            continue  # a newer keyword pydicom lacks
        assert Tag(keyword) == expected, keyword


@pytest.mark.parametrize(
    "arg",
    [
        0x00100010,
        (0x10, 0x10),
        "0x00100010",
        "00100010",
        "PatientName",
        ("0010", "0010"),
        "7fe00010",
        0xFFFFFFFF,
        0,
    ],
)
def test_common_forms_agree_with_pydicom(arg):
    from pydicom.tag import Tag as PdTag

    assert Tag(arg) == PdTag(arg)
    assert str(Tag(arg)) == str(PdTag(arg))
