"""C-FIND / C-MOVE / C-GET identifiers (PS3.4 §C.4.1.1.3, §K.6.1.1.3) between
data sets and plain ``{keyword: value}`` dicts.

In a dict a key's value is its text as in the identifier (``''``: a return key;
several values joined with ``\\``, or a list), or for a sequence a list of item
dicts (``[]``: return the sequence). Text is Python ``str``: identifiers received
in any Specific Character Set are decoded, and identifiers we send carry
``ISO_IR 192`` (UTF-8) when some value is not ASCII (PS3.5 §6.1.2.5).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.dictionary import dictionary_entry, tag_for_keyword
from dicomfast.errors import DicomfastError, DIMSEError
from dicomfast.part10 import read
from dicomfast.writer import encode_dataset

_SPECIFIC_CHARACTER_SET = 0x00080005
_NUMERIC_VRS = {"US": int, "SS": int, "UL": int, "SL": int, "FL": float, "FD": float}


@functools.lru_cache(maxsize=4096)
def _vr(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    entry = dictionary_entry(tag) if tag is not None else None
    if tag is None or entry is None:
        raise DIMSEError(f"{keyword!r} is not a DICOM keyword")
    return tag, entry.vr.split(" or ")[0]


def _non_ascii(value: Any) -> bool:
    if isinstance(value, str):
        return not value.isascii()
    if isinstance(value, (list, tuple)):
        return any(_non_ascii(v) for v in value)
    if isinstance(value, Mapping):
        return any(_non_ascii(v) for v in value.values())
    return False


def to_dataset(identifier: Mapping[str, Any], *, charset: bool = True) -> Dataset:
    """A data set from {keyword: value}; values None or '' are sent empty."""
    ds = Dataset()
    if charset and _non_ascii(identifier):
        ds.add_new(_SPECIFIC_CHARACTER_SET, "CS", "ISO_IR 192")
    for keyword, value in identifier.items():
        if keyword == "SpecificCharacterSet":
            if _SPECIFIC_CHARACTER_SET not in ds and value:
                ds.add_new(_SPECIFIC_CHARACTER_SET, "CS", value)
            continue
        tag, vr = _vr(keyword)
        if vr == "SQ":
            items = value if isinstance(value, (list, tuple)) else ([value] if value else [])
            ds.add_new(tag, "SQ", [to_dataset(item, charset=False) for item in items])
            continue
        if value is None:
            value = ""
        elif isinstance(value, (list, tuple)):
            value = "\\".join(str(v) for v in value)
        elif isinstance(value, (int, float)) and vr not in _NUMERIC_VRS:
            value = str(value)
        if vr in _NUMERIC_VRS and isinstance(value, str):
            value = _NUMERIC_VRS[vr](value) if value.strip() else None
        ds.add_new(tag, vr, value)
    return ds


def _text(value: Any) -> str:
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return ""
    if isinstance(value, (list, tuple)):
        return "\\".join(_text(v) for v in value)
    return str(value)


def to_dict(ds: Dataset, *, depth: int = 0) -> dict[str, Any]:
    """{keyword: text or list of item dicts} of a data set (Specific Character Set and
    private or unknown elements left out)."""
    out: dict[str, Any] = {}
    for el in ds:
        if el.tag == _SPECIFIC_CHARACTER_SET or el.tag >> 16 == 0:
            continue
        kw = el.keyword
        if not kw:
            continue
        try:
            value = el.value
        except DicomfastError:
            continue
        if el.VR == "SQ":
            out[kw] = [to_dict(item, depth=depth + 1) for item in (value or [])]
        else:
            out[kw] = _text(value)
    return out


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    return encode_dataset(ds, transfer_syntax)


_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
# Explicit VR with a 4-byte length (PS3.5 Table 7.1-1).
_LONG_TEXT_VRS = frozenset(["UC", "UR", "UT"])
_TEXT_VRS = frozenset(["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UI", "UR", "UT"])
_UTF8_CHARSET = struct.pack("<HH2sH", 8, 5, b"CS", 10) + b"ISO_IR 192"
_UTF8_CHARSET_IMPLICIT = struct.pack("<HHI", 8, 5, 10) + b"ISO_IR 192"


def encode_mapping(identifier: Mapping[str, Any], transfer_syntax: str) -> bytes:
    """:func:`to_dataset` then :func:`encode` in one step, for the C-FIND answers an
    SCP streams: text keys are encoded directly (UTF-8, declared as ISO_IR 192 when
    some value is not ASCII, PS3.5 §6.1.2.5); identifiers with other VRs (sequences,
    binary numbers), a given Specific Character Set, or another transfer syntax take
    the general path."""
    explicit = transfer_syntax == _EXPLICIT_LE
    if not explicit and transfer_syntax != _IMPLICIT_LE \
            or "SpecificCharacterSet" in identifier:
        return encode(to_dataset(identifier), transfer_syntax)
    items = []
    non_ascii = False
    for keyword, value in identifier.items():
        tag, vr = _vr(keyword)
        if vr not in _TEXT_VRS:
            return encode(to_dataset(identifier), transfer_syntax)
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        elif isinstance(value, (list, tuple)):
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        if text.isascii():
            raw = text.encode("ascii")
        else:
            raw = text.encode("utf-8")
            non_ascii = True
        if len(raw) & 1:
            raw += b"\0" if vr == "UI" else b" "
        items.append((tag, vr, raw))
    items.sort()
    out = [(_UTF8_CHARSET if explicit else _UTF8_CHARSET_IMPLICIT)] if non_ascii else []
    for tag, vr, raw in items:
        if not explicit:
            out.append(struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(raw)))
        elif vr in _LONG_TEXT_VRS:
            out.append(struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0,
                                   len(raw)))
        else:
            if len(raw) > 0xFFFF:
                return encode(to_dataset(identifier), transfer_syntax)
            out.append(struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(raw)))
        out.append(raw)
    return b"".join(out)


def decode(raw: bytes, transfer_syntax: str) -> Dataset:
    """A received identifier, read in the presentation context's transfer syntax (a
    File Meta group naming it goes in front, so nothing is guessed)."""
    uid = transfer_syntax.encode("ascii")
    if len(uid) & 1:
        uid += b"\0"
    ts_el = struct.pack("<HH2sH", 2, 0x10, b"UI", len(uid)) + uid
    head = b"\0" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(ts_el)) + ts_el
    try:
        ds = read(head + bytes(raw))
        ds.__dict__["file_meta"] = None
        return ds
    except (DicomfastError, ValueError, KeyError) as exc:
        raise DIMSEError(f"undecodable identifier: {exc}") from None
