"""The multipart/related parser and writer (RFC 2046 §5.1, RFC 2387), against the
standard library's MIME parser and generator as the independent oracle."""

from __future__ import annotations

import email
import email.policy
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomfast.errors import DicomfastError, MalformedDataError
from dicomfast.web.multipart import (
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
    iter_multipart,
    make_boundary,
    parse_content_type,
    write_multipart,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def _stdlib_parts(body: bytes, boundary: str) -> list[bytes]:
    head = f'Content-Type: multipart/related; boundary="{boundary}"\r\n\r\n'.encode()
    msg = email.message_from_bytes(head + body, policy=email.policy.compat32)
    return [part.get_payload(decode=True) for part in msg.get_payload()]


payloads = st.lists(st.binary(max_size=300), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(payloads, st.lists(st.integers(0, 4000), max_size=12))
def test_round_trip_any_split(parts, cuts):
    boundary = make_boundary()
    body = b"".join(write_multipart([("application/dicom", p) for p in parts], boundary))
    got = list(iter_multipart(_chunks(body, cuts), boundary))
    assert [p.data for p in got] == parts
    assert all(p.content_type == "application/dicom" for p in got)
    # The standard library reads what we write the same way.
    assert _stdlib_parts(body, boundary) == parts


@settings(max_examples=60, deadline=None)
@given(payloads, st.lists(st.integers(0, 4000), max_size=8))
def test_reads_what_the_stdlib_writes(parts, cuts):
    msg = MIMEMultipart("related", type="application/dicom")
    for p in parts:
        msg.attach(MIMEApplication(p, "dicom"))
    raw = msg.as_bytes(policy=email.policy.HTTP)
    head, _, body = raw.partition(b"\r\n\r\n")
    boundary = boundary_of(email.message_from_bytes(raw)["Content-Type"]
                           .replace("\n", "").replace("\r", ""))
    got = list(iter_multipart(_chunks(body, cuts), boundary))
    # The stdlib writes base64 parts: compare the decoded payloads.
    assert [email.message_from_bytes(b"Content-Transfer-Encoding: base64\r\n\r\n" + g.data)
            .get_payload(decode=True) for g in got] == parts
    assert [g.headers["content-type"] for g in got] == ["application/dicom"] * len(parts)


def test_preamble_epilogue_padding_and_folded_headers():
    body = (b"preamble text\r\n--b1 \t\r\nContent-Type: application/dicom;\r\n"
            b" transfer-syntax=1.2.840.10008.1.2.1\r\n\r\nAB\r\n--b1\r\n\r\nC\r\n--b1--"
            b"\r\nepilogue")
    got = list(iter_multipart([body], "b1"))
    assert [g.data for g in got] == [b"AB", b"C"]
    assert got[0].headers["content-type"] == \
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    assert got[1].headers == {}


def test_memory_stays_bounded_for_a_large_part():
    boundary = "bound"
    parser = MultipartParser(boundary, max_part_size=1 << 30)
    parser.feed(b"--bound\r\nContent-Type: application/dicom\r\n\r\n")
    chunk = b"x" * 65536
    total = 0
    for _ in range(400):  # 25 MiB through the parser
        for event in parser.feed(chunk):
            assert isinstance(event, PartData)
            total += len(event.data)
        assert len(parser._buf) < len(parser.delimiter)
    events = parser.feed(b"\r\n--bound--\r\n")
    parser.close()
    total += sum(len(e.data) for e in events if isinstance(e, PartData))
    assert total == 400 * 65536
    assert isinstance(events[-1], PartEnd) and events[-1].size == total


@pytest.mark.parametrize("body, limits, status", [
    (b"--b\r\n\r\nabc", {}, 400),                                   # no closing delimiter
    (b"--b\r\n\r\nabc\r\n--b", {}, 400),                            # cut after a delimiter
    (b"nothing here", {}, 400),                                     # no delimiter at all
    (b"--b--\r\n", {}, 400),                                        # no parts
    (b"--bXYZ\r\n\r\na\r\n--b--", {}, 400),                          # junk after a boundary
    (b"--b\r\nno colon here\r\n\r\na\r\n--b--", {}, 400),            # malformed header
    (b"--b\r\nContent-Length: 2\r\n\r\nabc\r\n--b--", {}, 400),      # length mismatch
    (b"--b\r\nContent-Length: x\r\n\r\nabc\r\n--b--", {}, 400),      # length not a number
    (b"--b\r\nContent-Length: 99999999999\r\n\r\na\r\n--b--", {"max_part_size": 1000}, 413),
    (b"--b\r\n\r\n" + b"a" * 5000 + b"\r\n--b--", {"max_part_size": 1000}, 413),
    (b"--b\r\nX: " + b"h" * 5000 + b"\r\n\r\na\r\n--b--", {"max_header_size": 1000}, 413),
    (b"--b\r\n\r\na\r\n--b\r\n\r\nb\r\n--b--", {"max_parts": 1}, 413),
    (b"--b\r\n\r\n" + b"a" * 5000 + b"\r\n--b--", {"max_body_size": 1000}, 413),
])
def test_malformed_and_oversized_bodies(body, limits, status):
    with pytest.raises(MultipartError) as info:
        list(iter_multipart(_chunks(body, [3, 17, 40]), "b", **limits))
    assert info.value.status == status
    assert isinstance(info.value, MalformedDataError)
    assert isinstance(info.value, DicomfastError)


def test_declared_length_is_refused_before_the_data_arrives():
    parser = MultipartParser("b", max_part_size=10)
    with pytest.raises(MultipartError) as info:
        parser.feed(b"--b\r\nContent-Length: 11\r\n\r\n")
    assert info.value.status == 413


@pytest.mark.parametrize("value, status", [
    (None, 415),
    ("application/json", 415),
    ("multipart/form-data; boundary=x", 415),
    ("multipart/related", 400),
    ("multipart/related; boundary=", 400),
    ("multipart/related; boundary=" + "x" * 71, 400),
    ('multipart/related; boundary="ends with space "', 400),
    ("multipart/related; boundary=a\x00b", 400),
])
def test_bad_content_types(value, status):
    with pytest.raises(MultipartError) as info:
        boundary_of(value)
    assert info.value.status == status


def test_content_type_parameters():
    media, params = parse_content_type(
        'Multipart/Related; type="application/dicom"; Boundary="a b;c"; x=y')
    assert media == "multipart/related"
    assert params == {"type": "application/dicom", "boundary": "a b;c", "x": "y"}
    assert boundary_of('multipart/related; type="application/dicom"; boundary="a b:c"') == \
        "a b:c"
    with pytest.raises(MultipartError):
        parse_content_type('multipart/related; boundary="open')


def test_events_in_order():
    parser = MultipartParser("z")
    events = parser.feed(b"--z\r\nContent-Type: a/b\r\n\r\n12\r\n--z\r\n\r\n\r\n--z--")
    parser.close()
    kinds = [type(e) for e in events]
    assert kinds == [PartStart, PartData, PartEnd, PartStart, PartEnd]
    assert events[0].headers == {"content-type": "a/b"}
    assert parser.parts == 2
