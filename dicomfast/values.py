"""Element values: raw value bytes to Python objects.

:func:`decode_value` turns the bytes of one element value into the object
pydicom's ``DataElement.value`` holds for it, so code written against pydicom
reads the same values here. Sequences (SQ) are built by the dataset, not here.

Value rules are those of PS3.5 §6.2 (Table 6.2-1): string values are split on
the backslash except for LT, ST, UT and UR, which may contain one; padding is
removed as pydicom removes it; binary numbers follow the transfer syntax's byte
order (PS3.5 §7.3); OB/OD/OF/OL/OV/OW/UN stay raw bytes in their encoded
byte order.
"""

from __future__ import annotations

import datetime
import re
import struct
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from dicomfast.charset import DEFAULT_ENCODING, decode_text
from dicomfast.errors import MalformedDataError, ValueWarning

__all__ = [
    "DSfloat",
    "IS",
    "MultiValue",
    "PersonName",
    "decode_value",
    "empty_value",
    "to_date",
    "to_datetime",
    "to_time",
]


# --------------------------------------------------------------------------
# Value types


class MultiValue(list):
    """The values of an element with VM > 1: a plain list with a DICOM name."""

    __slots__ = ()


class _KeepsText:
    """What DS and IS values share: they print, compare with text and pickle as the
    text they were read from (the subclass gives __eq__ and __hash__ of its number
    type, which must sit in the class itself)."""

    __slots__ = ()
    original_string: str

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __str__(self) -> str:
        return self.original_string

    def __repr__(self) -> str:
        return f"'{self.original_string}'"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.original_string,))


class DSfloat(_KeepsText, float):
    """A Decimal String (DS) value: a float that remembers its text.

    ``str()`` gives the text as it was stored (without padding), so a value
    written back is byte-identical; it compares equal to floats and to that
    text.
    """

    __slots__ = ("original_string",)
    original_string: str

    def __new__(cls, val: str | float | int) -> DSfloat:
        if isinstance(val, str):
            obj = float.__new__(cls, val)
            obj.original_string = val.strip()
        else:
            obj = float.__new__(cls, val)
            obj.original_string = getattr(val, "original_string", None) or repr(float(val))
        return obj

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.original_string == other
        return float.__eq__(self, other)

    __hash__ = float.__hash__


class IS(_KeepsText, int):
    """An Integer String (IS) value: an int that remembers its text.

    Like pydicom, text such as ``"1.0"`` that holds an integral number is
    accepted; ``str()`` gives the stored text.
    """

    original_string: str

    def __new__(cls, val: str | int | float) -> IS:
        if isinstance(val, str):
            obj = int.__new__(cls, _parse_is(val))
            obj.original_string = val.strip()
        else:
            if isinstance(val, float) and not val.is_integer():
                raise ValueError(f"{val!r} is not an integer")
            obj = int.__new__(cls, val)
            obj.original_string = getattr(val, "original_string", None) or str(int(val))
        return obj

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.original_string == other
        return int.__eq__(self, other)

    __hash__ = int.__hash__


def _parse_is(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # pydicom reads "1.0"-style integers; anything that is not integral
        # (or not a number at all) stays an error.
        f = float(text)
        if not f.is_integer():
            raise ValueError(f"IS value {text!r} is not an integer") from None
        return int(f)


class PersonName(str):
    """A Person Name (PN) value: the decoded text, with its parts as properties.

    ``str(pn)`` is the name as stored, ``==`` compares with ``str``. The three
    component groups (alphabetic, ideographic, phonetic) are separated by
    ``=`` and each has up to five ``^``-separated components (PS3.5 §6.2.1.1).
    Trailing empty groups are not significant and are dropped.
    """

    __slots__ = ()

    def __new__(cls, val: str = "") -> PersonName:
        return str.__new__(cls, str(val).rstrip("="))

    @property
    def components(self) -> tuple[str, ...]:
        """The component groups present: (alphabetic[, ideographic[, phonetic]])."""
        return tuple(self.split("=")) if self else ()

    def _group(self, i: int) -> str:
        groups = self.split("=")
        return groups[i] if i < len(groups) else ""

    def _part(self, i: int) -> str:
        parts = self.split("=", 1)[0].split("^")
        return parts[i] if i < len(parts) else ""

    @property
    def alphabetic(self) -> str:
        return self._group(0)

    @property
    def ideographic(self) -> str:
        return self._group(1)

    @property
    def phonetic(self) -> str:
        return self._group(2)

    @property
    def family_name(self) -> str:
        return self._part(0)

    @property
    def given_name(self) -> str:
        return self._part(1)

    @property
    def middle_name(self) -> str:
        return self._part(2)

    @property
    def name_prefix(self) -> str:
        return self._part(3)

    @property
    def name_suffix(self) -> str:
        return self._part(4)

    def family_comma_given(self) -> str:
        return f"{self.family_name}, {self.given_name}"


# --------------------------------------------------------------------------
# Empty values: pydicom's empty_value_for_VR (text VRs "", PN an empty name,
# everything else, DS and IS included, None).

_TEXT_VRS = ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT")
_EMPTY_PN = PersonName("")
_EMPTY: dict[str, Any] = {vr: "" for vr in _TEXT_VRS}
_EMPTY["PN"] = _EMPTY_PN
_NONE_VRS = (
    "AT", "DS", "FD", "FL", "IS", "OB", "OD", "OF", "OL", "OV", "OW", "SL", "SS", "SV", "UL",
    "UN", "US", "UV", "OB or OW", "US or SS", "US or OW", "US or SS or OW",
)
_EMPTY.update(dict.fromkeys(_NONE_VRS))


def empty_value(vr: str) -> Any:
    """The value an element of ``vr`` has when its value length is 0."""
    return _EMPTY.get(vr)


# --------------------------------------------------------------------------
# Decoders. Each takes (raw, little_endian, encodings, strict); raw is
# non-empty bytes.

_Decoder = Callable[[bytes, bool, Sequence[str], bool], Any]
_NATIVE_LE = sys.byteorder == "little"


def _bad_length(raw: bytes, vr: str, size: int, strict: bool) -> bytes:
    msg = f"{vr} value length {len(raw)} is not a multiple of {size}"
    if strict:
        raise MalformedDataError(msg)
    # decode_value's caller is four frames up.
    warnings.warn(f"{msg}; keeping the raw bytes", ValueWarning, stacklevel=4)
    return raw


def _make_number_decoder(vr: str, code: str, size: int) -> _Decoder:
    # struct's "<"/">" prefixes use standard sizes, and memoryview.cast uses
    # native ones; the codes are chosen so both mean the same width.
    one_le = struct.Struct("<" + code).unpack
    one_be = struct.Struct(">" + code).unpack
    cast_ok = _NATIVE_LE and struct.calcsize(code) == size

    def decode(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
        n = len(raw)
        if n == size:
            return one_le(raw)[0] if le else one_be(raw)[0]
        if n % size:
            return _bad_length(raw, vr, size, strict)
        if le and cast_ok:
            return MultiValue(memoryview(raw).cast(code).tolist())
        return MultiValue(struct.unpack(f"{'<' if le else '>'}{n // size}{code}", raw))

    return decode


def _dec_bytes(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> bytes:
    # pydicom keeps O* and UN values as encoded, without byte swapping.
    return raw


def _dec_at(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    # PS3.5 §6.2: an AT value is a pair of 16-bit unsigned ints, group first.
    n = len(raw)
    if n % 4:
        if strict:
            raise MalformedDataError(f"AT value length {n} is not a multiple of 4")
        warnings.warn(
            f"AT value length {n} is not a multiple of 4; ignoring the last {n % 4} bytes",
            ValueWarning,
            stacklevel=3,
        )
        raw = raw[: n - n % 4]
        n -= n % 4
        if not n:
            return MultiValue()
    words = struct.unpack(f"{'<' if le else '>'}{n // 2}H", raw)
    tags = [(words[i] << 16) | words[i + 1] for i in range(0, len(words), 2)]
    return tags[0] if len(tags) == 1 else MultiValue(tags)


def _split(s: str) -> Any:
    return MultiValue(s.split("\\")) if "\\" in s else s


def _dec_default(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    # AS CS DA DT TM: default repertoire, trailing space/NUL padding removed
    # from the whole value; leading spaces stay, as pydicom keeps them.
    return _split(raw.decode("latin-1").rstrip(" \x00"))


def _dec_ae(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    # PS3.5 Table 6.2-1: leading and trailing spaces of AE are not significant.
    s = raw.decode("latin-1")
    if "\\" not in s:
        return s.strip()
    return MultiValue([v.strip() for v in s.split("\\")])


def _dec_ui(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    # PS3.5 §9.1: a UID is padded with a single trailing NUL to even length;
    # pydicom also strips surrounding whitespace from each UID.
    s = raw.decode("latin-1").rstrip("\x00 ")
    if "\\" not in s:
        return s.strip()
    return MultiValue([v.strip() for v in s.split("\\")])


def _dec_ur(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> str:
    # PS3.5 Table 6.2-1: UR is single valued; trailing spaces are not significant.
    return raw.decode("latin-1").rstrip()


def _dec_multi_text(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    # SH LO UC: Specific Character Set applies, split, each value unpadded.
    # Splitting follows decoding: 0x5C can be the second byte of a GBK char.
    s = decode_text(raw, enc, "LO", strict=strict)
    if "\\" not in s:
        return s.rstrip("\x00 ")
    return MultiValue([v.rstrip("\x00 ") for v in s.split("\\")])


def _dec_single_text(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> str:
    # LT ST UT: never split (a backslash is an ordinary character), leading
    # spaces significant, trailing ones not (PS3.5 Table 6.2-1).
    return decode_text(raw, enc, "LT", strict=strict).rstrip("\x00 ")


def _dec_pn(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    s = decode_text(raw.rstrip(b"\x00 "), enc, "PN", strict=strict)
    new = str.__new__
    if "\\" not in s:
        return new(PersonName, s.rstrip("="))
    return MultiValue([new(PersonName, v.rstrip("=")) for v in s.split("\\")])


_float_new = float.__new__
_int_new = int.__new__

# PS3.5 Table 6.2-1 grammars, used when strict.
_DS_RE = re.compile(r" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *")
_IS_RE = re.compile(r" *[+-]?\d+ *")


def _not_a_number(raw: bytes, vr: str, item: str, enc: Sequence[str], strict: bool) -> Any:
    kind = "a decimal" if vr == "DS" else "an integer"
    msg = f"{vr} value {item!r} is not {kind} string (PS3.5 Table 6.2-1)"
    if strict:
        raise MalformedDataError(msg)
    # pydicom then reads the value as SH: text in the dataset's character set.
    warnings.warn(f"{msg}; keeping it as text", ValueWarning, stacklevel=4)
    return _dec_multi_text(raw, True, enc, False)


def _dec_ds(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    s = raw.decode("latin-1").strip().rstrip(" \x00")
    items = s.split("\\")
    out = []
    for item in items:
        text = item.strip()
        if not text:
            # An empty value (among several) stays text, as pydicom keeps it.
            out.append(item)
            continue
        if strict and _DS_RE.fullmatch(item) is None:
            return _not_a_number(raw, "DS", item, enc, strict)
        try:
            v = _float_new(DSfloat, item)
        except ValueError:
            return _not_a_number(raw, "DS", item, enc, strict)
        v.original_string = text
        out.append(v)
    return out[0] if len(out) == 1 else MultiValue(out)


def _dec_is(raw: bytes, le: bool, enc: Sequence[str], strict: bool) -> Any:
    s = raw.decode("latin-1").rstrip(" \x00")
    items = s.split("\\")
    out = []
    for item in items:
        text = item.strip()
        if not text:
            out.append(item)
            continue
        if strict and _IS_RE.fullmatch(item) is None:
            return _not_a_number(raw, "IS", item, enc, strict)
        try:
            v = _int_new(IS, item)
        except ValueError:
            try:
                v = _int_new(IS, _parse_is(item))
            except (ValueError, OverflowError):
                return _not_a_number(raw, "IS", item, enc, strict)
        v.original_string = text
        out.append(v)
    return out[0] if len(out) == 1 else MultiValue(out)


_DECODERS: dict[str, _Decoder] = {
    "AE": _dec_ae,
    "AS": _dec_default,
    "AT": _dec_at,
    "CS": _dec_default,
    "DA": _dec_default,
    "DS": _dec_ds,
    "DT": _dec_default,
    "FD": _make_number_decoder("FD", "d", 8),
    "FL": _make_number_decoder("FL", "f", 4),
    "IS": _dec_is,
    "LO": _dec_multi_text,
    "LT": _dec_single_text,
    "PN": _dec_pn,
    "SH": _dec_multi_text,
    "SL": _make_number_decoder("SL", "i", 4),
    "SS": _make_number_decoder("SS", "h", 2),
    "ST": _dec_single_text,
    "SV": _make_number_decoder("SV", "q", 8),
    "TM": _dec_default,
    "UC": _dec_multi_text,
    "UI": _dec_ui,
    "UL": _make_number_decoder("UL", "I", 4),
    "UR": _dec_ur,
    "US": _make_number_decoder("US", "H", 2),
    "UT": _dec_single_text,
    "UV": _make_number_decoder("UV", "Q", 8),
}
# Unresolved ambiguous VRs (PS3.6 "US or SS" ...) stay bytes until the dataset
# knows which one applies.
for _vr in _NONE_VRS:
    _DECODERS.setdefault(_vr, _dec_bytes)

_DEFAULT_ENCODINGS = (DEFAULT_ENCODING,)


def decode_value(
    vr: str,
    raw: bytes | bytearray | memoryview,
    little_endian: bool = True,
    encodings: Sequence[str] = _DEFAULT_ENCODINGS,
    strict: bool = False,
) -> Any:
    """Return the Python value of one element's raw value bytes.

    ``vr`` is the two-letter VR, ``encodings`` the Python codecs from
    :func:`dicomfast.charset.python_encodings` for the dataset's Specific
    Character Set. An empty value gives ``""`` for text VRs, an empty
    :class:`PersonName` for PN and ``None`` otherwise; several values give a
    :class:`MultiValue`.

    Values that break their VR's rules (a DS/IS that is not a number, binary
    numbers whose length is not a multiple of the item size, undecodable
    text, an unknown VR) warn with :class:`~dicomfast.errors.ValueWarning` or
    :class:`~dicomfast.errors.CharsetWarning` and are returned as text or bytes;
    with ``strict`` they raise :class:`~dicomfast.errors.MalformedDataError`.
    """
    if type(raw) is not bytes:
        raw = bytes(raw)
    try:
        decoder = _DECODERS[vr]
    except KeyError:
        if vr == "SQ":
            raise ValueError("SQ values are built by the dataset, not decode_value") from None
        msg = f"unknown VR {vr!r}"
        if strict:
            raise MalformedDataError(msg) from None
        warnings.warn(f"{msg}; keeping the raw bytes", ValueWarning, stacklevel=2)
        return raw or None
    if not raw:
        return _EMPTY[vr]
    return decoder(raw, little_endian, encodings, strict)


# --------------------------------------------------------------------------
# DA / TM / DT to datetime objects (PS3.5 §6.2, Table 6.2-1).

# DA is YYYYMMDD; YYYY.MM.DD is the ACR-NEMA 300 form PS3.5 §6.2 asks
# readers to accept.
_DA_RE = re.compile(r"(\d{4})(\d{2})(\d{2})|(\d{4})\.(\d{2})\.(\d{2})")
# TM is HH[MM[SS[.F{1,6}]]]; HH:MM:SS.frac is the ACR-NEMA 300 form.
_TM_RE = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{0,6}))?)?)?")
_TM_ACR_RE = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{0,6}))?)?)?")
# DT is YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX].
_DT_RE = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?"
)


def _bad_time(vr: str, value: str, exc: Exception | None = None) -> MalformedDataError:
    err = MalformedDataError(f"{vr} value {value!r} is not a valid {vr}")
    if exc is not None:
        err.__cause__ = exc
    return err


def _second(vr: str, value: str, second: int) -> int:
    # PS3.5 Table 6.2-1 allows a leap second (60); datetime cannot hold it.
    if second == 60:
        warnings.warn(
            f"{vr} value {value!r} has a leap second; using 59", ValueWarning, stacklevel=3
        )
        return 59
    return second


def _micro(frac: str | None) -> int:
    return int(frac.ljust(6, "0")) if frac else 0


def to_date(da: str) -> datetime.date | None:
    """Return a DA value as a :class:`datetime.date` (``None`` when empty).

    Raises :class:`~dicomfast.errors.MalformedDataError` (a ValueError) when
    the text is not a date.
    """
    s = da.strip(" \x00")
    if not s:
        return None
    m = _DA_RE.fullmatch(s)
    if m is None:
        raise _bad_time("DA", da)
    y, mo, d = (m[1], m[2], m[3]) if m[1] else (m[4], m[5], m[6])
    try:
        return datetime.date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise _bad_time("DA", da, exc) from exc


def to_time(tm: str) -> datetime.time | None:
    """Return a TM value as a :class:`datetime.time` (``None`` when empty).

    Partial values are allowed (PS3.5 §6.2): ``"14"`` is 14:00:00 and
    ``"1430"`` 14:30:00. The fraction has up to six digits.
    """
    s = tm.strip(" \x00")
    if not s:
        return None
    m = _TM_RE.fullmatch(s) or _TM_ACR_RE.fullmatch(s)
    if m is None:
        raise _bad_time("TM", tm)
    try:
        return datetime.time(
            int(m[1]),
            int(m[2] or 0),
            _second("TM", tm, int(m[3] or 0)),
            _micro(m[4]),
        )
    except ValueError as exc:
        raise _bad_time("TM", tm, exc) from exc


def to_datetime(dt: str) -> datetime.datetime | None:
    """Return a DT value as a :class:`datetime.datetime` (``None`` when empty).

    Missing trailing components take their lowest value (month and day 1,
    time 0), as PS3.5 §6.2 defines for partial DT values. A UTC offset
    suffix ``&ZZXX`` gives an aware datetime; without one it is naive.
    """
    s = dt.strip(" \x00")
    if not s:
        return None
    m = _DT_RE.fullmatch(s)
    if m is None:
        raise _bad_time("DT", dt)
    tz = None
    if m[8]:
        minutes = int(m[9]) * 60 + int(m[10])
        if int(m[10]) > 59 or minutes >= 24 * 60:
            raise _bad_time("DT", dt)
        offset = datetime.timedelta(minutes=-minutes if m[8] == "-" else minutes)
        tz = datetime.timezone(offset)
    try:
        return datetime.datetime(
            int(m[1]),
            int(m[2] or 1),
            int(m[3] or 1),
            int(m[4] or 0),
            int(m[5] or 0),
            _second("DT", dt, int(m[6] or 0)),
            _micro(m[7]),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise _bad_time("DT", dt, exc) from exc
