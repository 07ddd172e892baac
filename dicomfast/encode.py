"""Element values: Python objects to value bytes, the inverse of :func:`decode_value`.

:func:`encode_value` turns the value of one element into the bytes of its
Value Field, so that ``decode_value(vr, encode_value(vr, v, ...), ...) == v``
for every value :func:`~dicomfast.values.decode_value` returns, and so that a
value read from a file whose encoding already follows the rules below is
written back byte for byte.

The rules are those of PS3.5 §6.2 (Table 6.2-1) and §7.1: string values are
joined with a backslash, a Value Field has an even length (text is padded with
a space, UI and OB/UN with a NUL byte), binary numbers take the transfer
syntax's byte order (PS3.5 §7.3). Text in SH LO ST LT UC UT PN uses the
dataset's character sets with the ISO 2022 code extension rules of PS3.5
§6.1.2.5. Sequences (SQ) are written by the dataset writer, not here.

:func:`validate_value` checks a value against its VR's length, character and
range rules; it is separate so the write path pays for it only when asked.
"""

from __future__ import annotations

import datetime
import math
import numbers
import re
import struct
import warnings
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from dicomfast.charset import DEFAULT_ENCODING
from dicomfast.errors import CharsetWarning, MalformedDataError, ValueWarning
from dicomfast.values import IS, DSfloat, MultiValue, PersonName

__all__ = ["encode_text", "encode_value", "format_ds", "swap_bytes", "validate_value"]

_DEFAULT_ENCODINGS = (DEFAULT_ENCODING,)


# --------------------------------------------------------------------------
# Shared helpers


def _is_multi(value: Any) -> bool:
    """Whether ``value`` holds several values (VM > 1) rather than one."""
    t = type(value)
    if t is list or t is MultiValue or t is tuple:
        return True
    if isinstance(value, (str, bytes, bytearray, memoryview, int, float, Decimal, dict,
                          datetime.date, datetime.time)):
        return False
    # pydicom's MultiValue, numpy arrays and other sized iterables.
    return hasattr(value, "__iter__") and hasattr(value, "__len__")


def _items(value: Any) -> list[Any] | tuple[Any, ...]:
    if _is_multi(value):
        if hasattr(value, "tolist"):
            return value.tolist()  # type: ignore[no-any-return]
        return value if type(value) in (list, MultiValue, tuple) else list(value)
    return (value,)


def _fail(vr: str, message: str, strict: bool, exc: Exception | None = None) -> None:
    """A value that breaks its VR's rules: raise when strict, else warn."""
    if strict:
        raise MalformedDataError(f"{vr} value {message}") from exc
    warnings.warn(f"{vr} value {message}", ValueWarning, stacklevel=4)


def _cannot(vr: str, value: Any, why: str, exc: Exception | None = None) -> MalformedDataError:
    """A value that has no encoding at all, whatever the leniency."""
    err = MalformedDataError(f"{vr} value {value!r} cannot be encoded: {why}")
    if exc is not None:
        err.__cause__ = exc
    return err


def _pad(b: bytes, pad: bytes = b" ") -> bytes:
    # PS3.5 §7.1.1: every Value Field has an even length.
    return b + pad if len(b) & 1 else b


# --------------------------------------------------------------------------
# Text in the default repertoire (AE AS CS DA DS DT IS TM UI UR): latin-1,
# the superset of ISO-IR 6 that decode_value reads, so any value read back
# is written as it was.


def _latin1(vr: str, text: str, strict: bool) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        if strict:
            raise MalformedDataError(
                f"{vr} value {text!r} has characters outside the default repertoire "
                "(PS3.5 §6.1.2.3)") from exc
        warnings.warn(f"{vr} value {text!r} has characters outside the default repertoire; "
                      "writing '?' for them", CharsetWarning, stacklevel=4)
        return text.encode("latin-1", errors="replace")


def _str_item(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("latin-1")
    return str(v)


def _make_text_encoder(vr: str, pad: bytes, fmt: Callable[[Any], str]) -> _Encoder:
    # DS and IS text loses its surrounding spaces, as pydicom's does.
    as_is = vr not in ("DS", "IS")

    def encode(value: Any, le: bool, enc: Sequence[str], strict: bool) -> bytes:
        t = type(value)
        if t is str and as_is:
            text = value
        elif t is MultiValue or t is list or t is tuple:
            text = "\\".join([fmt(v) for v in value])
        elif t is DSfloat or t is IS or t is float or t is int:
            text = fmt(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            return _pad(bytes(value), pad)
        elif _is_multi(value):
            text = "\\".join([fmt(v) for v in _items(value)])
        else:
            text = fmt(value)
        try:
            b = text.encode("latin-1")
        except UnicodeEncodeError:
            b = _latin1(vr, text, strict)
        return b + pad if len(b) & 1 else b

    return encode


# DA / TM / DT from datetime objects (PS3.5 Table 6.2-1). pydicom's DA, TM
# and DT subclasses keep the text they were read from in original_string.


def _da_text(v: Any) -> str:
    if isinstance(v, datetime.date):
        s = getattr(v, "original_string", None)
        if s is not None:
            return str(s)
        return f"{v.year:04d}{v.month:02d}{v.day:02d}"
    return _str_item(v)


def _tm_of(t: datetime.time | datetime.datetime) -> str:
    s = f"{t.hour:02d}{t.minute:02d}{t.second:02d}"
    return f"{s}.{t.microsecond:06d}" if t.microsecond else s


def _tm_text(v: Any) -> str:
    if isinstance(v, (datetime.time, datetime.datetime)):
        s = getattr(v, "original_string", None)
        return str(s) if s is not None else _tm_of(v)
    return _str_item(v)


def _utc_offset(dt: datetime.datetime) -> str:
    # &ZZXX (PS3.5 Table 6.2-1): sign, hours and minutes of the UTC offset.
    off = dt.utcoffset()
    if off is None:
        return ""
    minutes = int(off.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _dt_text(v: Any) -> str:
    if isinstance(v, datetime.datetime):
        s = getattr(v, "original_string", None)
        if s is not None:
            return str(s)
        return f"{v.year:04d}{v.month:02d}{v.day:02d}{_tm_of(v)}{_utc_offset(v)}"
    if isinstance(v, datetime.date):
        return _da_text(v)
    return _str_item(v)


# --------------------------------------------------------------------------
# Decimal and integer strings


def format_ds(value: float | Decimal) -> str:
    """Return the text of a finite number in at most 16 characters (a valid DS).

    Python's shortest round-tripping text is used when it fits, so most values
    keep full precision; longer ones are rounded, in scientific notation when
    that keeps more digits (below 1e-4, or from 1e14 up, 1e13 if negative).
    The result is what pydicom's ``format_number_as_ds`` gives.
    """
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no decimal string form (PS3.5 Table 6.2-1)")
    text = str(value)
    if len(text) <= 16:
        return text
    negative = value < 0
    magnitude = math.log10(abs(value))
    if magnitude < -4 or magnitude >= (13 if negative else 14):
        # d.ddddddddde+XX is 15 characters; a sign or a 3-digit exponent
        # costs one digit each.
        digits = 9 if negative else 10
        text = f"{value:.{digits}e}"
        return text if len(text) <= 16 else f"{value:.{digits - 1}e}"
    # Fixed point: what is left of 16 after the sign, the integer digits
    # and the point goes to the fraction.
    whole = math.floor(magnitude) if magnitude >= 1 else 0
    return f"{value:.{14 - negative - whole}f}"


def _ds_text(v: Any) -> str:
    t = type(v)
    if t is DSfloat or t is IS:
        s = v.original_string
        # DSfloat(x) for a float keeps repr(x) as its text, which may not fit.
        if len(s) > 16 and t is DSfloat and math.isfinite(v) and s == repr(float(v)):
            return format_ds(float(v))
        return s  # type: ignore[no-any-return]
    if t is str:
        return v.strip()  # type: ignore[no-any-return]
    if t is float:
        return format_ds(v) if math.isfinite(v) else repr(v)
    if t is int:
        # pydicom writes an int DS as its float: 5 -> "5.0".
        return format_ds(float(v))
    if v is None:
        return ""
    s = getattr(v, "original_string", None)
    if s is not None:
        return str(s)
    if isinstance(v, Decimal):
        return format_ds(v) if v.is_finite() else str(v)
    if isinstance(v, float):
        return format_ds(float(v)) if math.isfinite(v) else repr(float(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return format_ds(float(v))
    return _str_item(v).strip()


def _is_text(v: Any) -> str:
    t = type(v)
    if t is IS:
        return v.original_string  # type: ignore[no-any-return]
    if t is int:
        return str(v)
    if t is str:
        return v.strip()  # type: ignore[no-any-return]
    if v is None:
        return ""
    s = getattr(v, "original_string", None)
    if s is not None:
        return str(s)
    if isinstance(v, (float, Decimal)):
        if not (math.isfinite(v) and v == int(v)):
            raise _cannot("IS", v, "not an integer")
        return str(int(v))
    if isinstance(v, int):
        return str(int(v))
    return _str_item(v).strip()


# --------------------------------------------------------------------------
# Text with the Specific Character Set (SH LO ST LT UC UT PN)

# PS3.3 Tables C.12-3 and C.12-4: the escape sequence designating each
# repertoire, and whether it goes into G0 (replacing ASCII) or G1.
_G0, _G1 = 0, 1
_DESIGNATION: dict[str, tuple[int, bytes]] = {
    "iso8859": (_G0, b"\x1b(B"),  # ISO-IR 6, ASCII
    "shift_jis": (_G1, b"\x1b)I"),  # ISO-IR 13, JIS X 0201 katakana
    "iso2022_jp": (_G0, b"\x1b$B"),  # ISO-IR 87, JIS X 0208
    "iso2022_jp_2": (_G0, b"\x1b$(D"),  # ISO-IR 159, JIS X 0212
    "latin_1": (_G1, b"\x1b-A"),
    "iso8859_2": (_G1, b"\x1b-B"),
    "iso8859_3": (_G1, b"\x1b-C"),
    "iso8859_4": (_G1, b"\x1b-D"),
    "iso_ir_126": (_G1, b"\x1b-F"),
    "iso_ir_127": (_G1, b"\x1b-G"),
    "iso_ir_138": (_G1, b"\x1b-H"),
    "iso_ir_144": (_G1, b"\x1b-L"),
    "iso_ir_148": (_G1, b"\x1b-M"),
    "iso_ir_166": (_G1, b"\x1b-T"),
    "euc_kr": (_G1, b"\x1b$)C"),  # ISO-IR 149, KS X 1001
    "iso_ir_58": (_G1, b"\x1b$)A"),  # ISO-IR 58, GB 2312
}
_ASCII_G0 = b"\x1b(B"
_ROMAJI_G0 = b"\x1b(J"  # ISO-IR 14, G0 of ISO-IR 13 (PS3.3 Table C.12-3)
_FAST_NAME = {"iso8859": "latin-1", "latin_1": "latin-1", "UTF8": "utf-8"}

# PS3.5 §6.1.2.5.3: the initial repertoire is active again at these, so a
# value is encoded piece by piece between them.
_TEXT_SPLIT = re.compile("([\r\n\t\x0c])")
_PN_SPLIT = re.compile("([\r\n\t\x0c^=])")


def _jis_x_0201(text: str) -> bytes:
    # ISO-IR 13 holds JIS X 0201 only: one byte per character. Python's
    # shift_jis also writes JIS X 0208 as two bytes, which ISO-IR 13 lacks.
    b = text.encode("shift_jis")
    if len(b) != len(text):
        for i, c in enumerate(text):
            if len(c.encode("shift_jis")) != 1:
                raise UnicodeEncodeError("shift_jis", text, i, i + 1, "not in JIS X 0201")
    return b


def _jis_run(text: str, codec: str, escape: bytes) -> bytes:
    """Bytes of ``text`` in the two-byte set designated by ``escape``, without
    escapes; UnicodeEncodeError at the first character outside that set."""
    b = text.encode(codec)
    n = len(escape)
    if b.startswith(escape) and b.endswith(_ASCII_G0) and b.count(b"\x1b") == 2:
        return b[n:-3]
    # Mixed with ASCII or another set: find the first character that is not.
    for i, c in enumerate(text):
        if not c.encode(codec).startswith(escape):
            raise UnicodeEncodeError(codec, text, i, i + 1, "not in this character set")
    raise UnicodeEncodeError(codec, text, 0, 1, "not in this character set")  # pragma: no cover


def _raw(text: str, codec: str) -> bytes:
    """``text`` in one repertoire, without escape sequences."""
    if codec == "iso8859":
        # ISO-IR 6 is ASCII; its G1 is empty once code extensions are in use.
        return text.encode("ascii")
    if codec == "shift_jis":
        return _jis_x_0201(text)
    if codec == "iso2022_jp":
        return _jis_run(text, codec, b"\x1b$B")
    if codec == "iso2022_jp_2":
        return _jis_run(text, codec, b"\x1b$(D")
    return text.encode(codec)


def _longest(text: str, codec: str) -> tuple[int, bytes]:
    try:
        return len(text), _raw(text, codec)
    except UnicodeEncodeError as exc:
        n = exc.start
        return n, (_raw(text[:n], codec) if n else b"")


class _Code2022:
    """Encoder of text with code extensions (PS3.5 §6.1.2.5) for one set of codecs."""

    def __init__(self, encodings: tuple[str, ...]) -> None:
        self.initial = encodings[0]
        first = _DESIGNATION.get(self.initial, (_G0, _ASCII_G0))
        # The G0/G1 sets active at the start of every value and after each
        # delimiter: value 1 of (0008,0005), or ASCII for the default.
        if self.initial == "shift_jis":
            self.g0, self.g1 = _ROMAJI_G0, first[1]
        elif first[0] == _G0:
            self.g0, self.g1 = first[1], b""
        else:
            self.g0, self.g1 = _ASCII_G0, first[1]
        self.extensions = tuple(e for e in encodings[1:] if e in _DESIGNATION)

    def __call__(self, text: str, pn: bool) -> bytes:
        try:
            return _raw(text, self.initial)
        except UnicodeEncodeError:
            pass
        parts = (_PN_SPLIT if pn else _TEXT_SPLIT).split(text)
        out = []
        for i, part in enumerate(parts):
            if i & 1:
                out.append(part.encode("ascii"))  # a delimiter
            elif part:
                out.append(self._piece(part))
        return b"".join(out)

    def _piece(self, text: str) -> bytes:
        try:
            return _raw(text, self.initial)
        except UnicodeEncodeError:
            pass
        runs: list[tuple[str, bytes]] = []
        for codec in self.extensions:
            try:
                runs = [(codec, _raw(text, codec))]
                break
            except UnicodeEncodeError:
                continue
        else:
            runs = self._runs(text)
        return self._join(runs)

    def _runs(self, text: str) -> list[tuple[str, bytes]]:
        # The repertoire that covers the longest prefix, then the same for
        # the rest: few switches, as few escape sequences.
        runs = []
        rest = text
        candidates = (self.initial, *self.extensions)
        while rest:
            best, best_codec, best_raw = 0, "", b""
            for codec in candidates:
                n, raw = _longest(rest, codec)
                if n > best:
                    best, best_codec, best_raw = n, codec, raw
                    if n == len(rest):
                        break
            if not best:
                c = rest[0]
                if self.initial == "iso8859" and ord(c) < 0x100:
                    # No declared repertoire has it; the bytes decode_value
                    # reads as latin-1 keep the character.
                    best, best_codec, best_raw = 1, "", c.encode("latin-1")
                else:
                    i = len(text) - len(rest)
                    raise UnicodeEncodeError(self.initial, text, i, i + 1,
                                             "in none of the declared character sets")
            runs.append((best_codec, best_raw))
            rest = rest[best:]
        return runs

    def _join(self, runs: list[tuple[str, bytes]]) -> bytes:
        out = bytearray()
        g0, g1 = self.g0, self.g1
        for codec, raw in runs:
            if codec == self.initial or not codec:
                want0, want1 = self.g0, self.g1
            else:
                which, esc = _DESIGNATION[codec]
                want0, want1 = (esc, g1) if which == _G0 else (_ASCII_G0, esc)
            if g0 != want0 and (want0 != _ASCII_G0 or g0 not in (_ASCII_G0, _ROMAJI_G0)):
                out += want0
                g0 = want0
            if g1 != want1 and want1 and any(b >= 0x80 for b in raw):
                out += want1
                g1 = want1
            out += raw
        if g0 != self.g0:
            # PS3.5 §6.1.2.5.3: the initial G0 set is active again before the
            # end of the value and before every delimiter.
            out += self.g0
        return bytes(out)


_CODE_2022: dict[tuple[str, ...], _Code2022] = {}


def _charset_failed(text: str, encodings: Sequence[str], vr: str, strict: bool,
                    exc: UnicodeError) -> bytes:
    if strict:
        raise MalformedDataError(
            f"{vr} value {text!r} cannot be encoded with {', '.join(encodings)}: {exc}") from exc
    warnings.warn(f"{vr} value {text!r} cannot be encoded with {', '.join(encodings)}; "
                  "writing it with replacements", CharsetWarning, stacklevel=5)
    first = encodings[0]
    if len(encodings) > 1:
        coder = _coder(tuple(encodings))
        kept = "".join(c if _encodable(coder, c) else "?" for c in text)
        return coder(kept, vr == "PN")
    return text.encode(_FAST_NAME.get(first, first), errors="replace")


def _encodable(coder: _Code2022, c: str) -> bool:
    try:
        coder(c, False)
    except UnicodeEncodeError:
        return False
    return True


def _coder(encodings: tuple[str, ...]) -> _Code2022:
    coder = _CODE_2022.get(encodings)
    if coder is None:
        if len(_CODE_2022) >= 64:
            _CODE_2022.clear()
        coder = _CODE_2022[encodings] = _Code2022(encodings)
    return coder


def encode_text(text: str, encodings: Sequence[str] = _DEFAULT_ENCODINGS, vr: str = "LO",
                *, strict: bool = False) -> bytes:
    """Encode one text value with the dataset's character sets.

    The inverse of :func:`dicomfast.charset.decode_text`: ``encodings`` comes
    from :func:`~dicomfast.charset.python_encodings`. With one character set
    the text is simply encoded with it. With code extensions (PS3.5
    §6.1.2.5) each part between delimiters (CR, LF, TAB, FF, and in PN also
    ``^`` and ``=``) starts in the initial repertoire; a part that needs
    another is written with the escape sequence designating it (PS3.3 Tables
    C.12-3/4) and, for the G0 sets of JIS X 0208/0212, followed by the one
    returning to the initial set, as in the examples of PS3.5 Annexes H and I.
    No padding is added and multiple values are not joined.

    Characters no declared repertoire has raise
    :class:`~dicomfast.errors.MalformedDataError` when ``strict``, else are
    written as ``?`` with a :class:`~dicomfast.errors.CharsetWarning`.
    """
    if not encodings:
        encodings = _DEFAULT_ENCODINGS
    try:
        if len(encodings) == 1:
            first = encodings[0]
            if first == "shift_jis":
                return _jis_x_0201(text)
            return text.encode(_FAST_NAME.get(first, first))
        return _coder(tuple(encodings))(text, vr == "PN")
    except UnicodeEncodeError as exc:
        return _charset_failed(text, encodings, vr, strict, exc)


def _text_items(value: Any, fmt: Callable[[Any], str]) -> list[str]:
    return [fmt(v) for v in _items(value)]


def _make_charset_encoder(vr: str, fmt: Callable[[Any], str]) -> _Encoder:
    pn = vr == "PN"

    def encode(value: Any, le: bool, enc: Sequence[str], strict: bool) -> bytes:
        if not enc:
            enc = _DEFAULT_ENCODINGS
        t = type(value)
        if t is str or t is PersonName:
            # PS3.5 §6.2.1.1: trailing empty component groups are not written.
            text = value.rstrip("=") if pn else value
        elif isinstance(value, (bytes, bytearray, memoryview)):
            return _pad(bytes(value))
        elif len(enc) > 1 and _is_multi(value):
            # Each value starts in the initial repertoire (PS3.5 §6.1.2.5.3).
            b = b"\\".join([encode_text(t, enc, vr, strict=strict)
                            for t in _text_items(value, fmt)])
            return b + b" " if len(b) & 1 else b
        elif _is_multi(value):
            text = "\\".join(_text_items(value, fmt))
        else:
            text = fmt(value)
        if len(enc) == 1 and enc[0] != "shift_jis":
            first = enc[0]
            try:
                b = text.encode(_FAST_NAME.get(first, first))
            except UnicodeEncodeError as exc:
                b = _charset_failed(text, enc, vr, strict, exc)
        else:
            b = encode_text(text, enc, vr, strict=strict)
        return b + b" " if len(b) & 1 else b

    return encode


_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def _pn_text(v: Any) -> str:
    """The text of one PN value: a str, a PersonName (dicomfast's or pydicom's),
    or a DICOM JSON style mapping of component groups (PS3.18 §F.2.2)."""
    if v is None:
        return ""
    if isinstance(v, dict):
        groups = [v.get(k) or "" for k in _PN_GROUPS]
        text = "=".join(groups)
    elif isinstance(v, (bytes, bytearray)):
        text = bytes(v).decode("latin-1")
    else:
        text = str(v)
    # PS3.5 §6.2.1.1: trailing empty component groups are not written.
    return text.rstrip("=")


# --------------------------------------------------------------------------
# Binary VRs

_Encoder = Callable[[Any, bool, Sequence[str], bool], bytes]


def _make_number_encoder(vr: str, code: str) -> _Encoder:
    one_le = struct.Struct("<" + code).pack
    one_be = struct.Struct(">" + code).pack
    integral = code not in "fd"

    def encode(value: Any, le: bool, enc: Sequence[str], strict: bool) -> bytes:
        t = type(value)
        try:
            if t is int or t is float:
                return one_le(value) if le else one_be(value)
            if isinstance(value, (bytes, bytearray, memoryview)):
                # Already encoded (decode_value keeps a value of the wrong
                # length as bytes).
                return _pad(bytes(value), b"\x00")
            if _is_multi(value):
                items = _items(value)
                return struct.pack(f"{'<' if le else '>'}{len(items)}{code}", *items)
            if integral and isinstance(value, str):
                raise TypeError("a number is needed, not str")
            return one_le(value) if le else one_be(value)
        except (struct.error, TypeError, OverflowError) as exc:
            raise _cannot(vr, value, str(exc), exc) from exc

    return encode


def _tag_of(v: Any) -> int:
    if isinstance(v, int):
        return int(v)
    if isinstance(v, tuple) and len(v) == 2:
        return (int(v[0]) << 16) | int(v[1])
    if isinstance(v, str):
        s = v.strip().strip("()").replace(",", "")
        return int(s, 16)
    raise TypeError(f"not a tag: {v!r}")


def _at_tags(value: Any) -> list[int]:
    # A tuple of two 16-bit ints is one (group, element) tag, not two tags.
    if (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(x, int) and 0 <= x <= 0xFFFF for x in value)):
        return [_tag_of(value)]
    if _is_multi(value):
        return [_tag_of(v) for v in _items(value)]
    return [_tag_of(value)]


def _enc_at(value: Any, le: bool, enc: Sequence[str], strict: bool) -> bytes:
    # PS3.5 §6.2: a tag is written as two 16-bit values, group first.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    try:
        tags = _at_tags(value)
        words = []
        for t in tags:
            words.append(t >> 16)
            words.append(t & 0xFFFF)
        return struct.pack(f"{'<' if le else '>'}{len(words)}H", *words)
    except (struct.error, TypeError, ValueError) as exc:
        raise _cannot("AT", value, str(exc), exc) from exc


# O* item formats, for values given as numbers rather than bytes.
_OTHER_CODE = {"OB": "B", "OW": "H", "OF": "f", "OD": "d", "OL": "L", "OV": "Q", "UN": "B"}
_SWAP = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _make_bytes_encoder(vr: str) -> _Encoder:
    code = _OTHER_CODE.get(vr, "B")
    size = struct.calcsize("<" + code)

    def encode(value: Any, le: bool, enc: Sequence[str], strict: bool) -> bytes:
        # Bytes are taken as already in the transfer syntax's byte order, as
        # decode_value returns them (and as pydicom keeps them).
        if type(value) is bytes:
            return value + b"\x00" if len(value) & 1 else value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _pad(bytes(value), b"\x00")
        try:
            if hasattr(value, "dtype") and hasattr(value, "tobytes"):
                # A numpy array: its items in the requested byte order.
                if value.dtype.itemsize > 1:
                    value = value.astype(value.dtype.newbyteorder("<" if le else ">"))
                return _pad(value.tobytes(), b"\x00")
            items = _items(value)
            data = struct.pack(f"{'<' if le else '>'}{len(items)}{code}", *items)
        except (struct.error, TypeError, OverflowError) as exc:
            raise _cannot(vr, value, str(exc), exc) from exc
        return _pad(data, b"\x00") if size == 1 else data

    return encode


def swap_bytes(vr: str, data: bytes) -> bytes:
    """Return O*/AT value bytes in the other byte order (PS3.5 §7.3).

    OW, OF, OL, OD, OV and AT values are swapped per item (2, 4, 4, 8, 8 and 2
    bytes); OB and UN are byte streams and come back unchanged. Use it to
    write bytes read in one byte order to a transfer syntax with the other.
    """
    size = 2 if vr == "AT" else _SWAP.get(vr, 1)
    if size == 1:
        return bytes(data)
    n = len(data) - len(data) % size
    mv = memoryview(data)
    out = bytearray(data)
    for k in range(size):
        out[k:n:size] = mv[size - 1 - k:n:size]
    return bytes(out)


# --------------------------------------------------------------------------
# Dispatch


def _enc_unknown_bytes(value: Any, le: bool, enc: Sequence[str], strict: bool) -> bytes:
    # Ambiguous VRs ('US or SS', 'OB or OW', ...) that were never resolved:
    # decode_value keeps their bytes, written back unchanged.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _pad(bytes(value), b"\x00")
    raise _cannot("ambiguous VR", value, "resolve the VR first (PS3.5 Annex A)")


def _build() -> dict[str, _Encoder]:
    enc: dict[str, _Encoder] = {
        "AE": _make_text_encoder("AE", b" ", _str_item),
        "AS": _make_text_encoder("AS", b" ", _str_item),
        "CS": _make_text_encoder("CS", b" ", _str_item),
        "DA": _make_text_encoder("DA", b" ", _da_text),
        "DS": _make_text_encoder("DS", b" ", _ds_text),
        "DT": _make_text_encoder("DT", b" ", _dt_text),
        "IS": _make_text_encoder("IS", b" ", _is_text),
        "TM": _make_text_encoder("TM", b" ", _tm_text),
        # PS3.5 §9.1: a UID is padded with a single trailing NUL.
        "UI": _make_text_encoder("UI", b"\x00", _str_item),
        "UR": _make_text_encoder("UR", b" ", _str_item),
        "AT": _enc_at,
        "PN": _make_charset_encoder("PN", _pn_text),
    }
    for vr in ("SH", "LO", "UC", "LT", "ST", "UT"):
        enc[vr] = _make_charset_encoder(vr, _str_item)
    for vr, code in (("US", "H"), ("SS", "h"), ("UL", "L"), ("SL", "l"), ("FL", "f"),
                     ("FD", "d"), ("SV", "q"), ("UV", "Q")):
        enc[vr] = _make_number_encoder(vr, code)
    for vr in ("OB", "OD", "OF", "OL", "OV", "OW", "UN"):
        enc[vr] = _make_bytes_encoder(vr)
    for vr in ("US or SS", "OB or OW", "US or OW", "US or SS or OW"):
        enc[vr] = _enc_unknown_bytes
    return enc


_ENCODERS = _build()


def encode_value(
    vr: str,
    value: Any,
    little_endian: bool = True,
    encodings: Sequence[str] = _DEFAULT_ENCODINGS,
    *,
    strict: bool = False,
    validate: bool = False,
) -> bytes:
    """Return the Value Field bytes of one element: the inverse of ``decode_value``.

    ``value`` is what :func:`~dicomfast.values.decode_value` returns or what a
    pydicom user would assign: a str, number, ``PersonName``, ``DSfloat``,
    ``IS``, date/time object, tag, bytes, or a list/tuple/``MultiValue`` of
    them. ``None``, ``""`` and ``[]`` give ``b""``. ``encodings`` (from
    :func:`~dicomfast.charset.python_encodings`) applies to SH LO ST LT UC UT
    PN. The result always has an even length.

    DS and IS values that remember their text (``original_string``) are
    written with it; floats for DS take at most 16 characters
    (:func:`format_ds`). A ``(group, element)`` tuple is one AT value. Bytes
    for OW/OF/OD/OL/OV are taken as already in the target byte order; numbers
    for them, and all binary numbers, are packed in it.

    ``validate=True`` first runs :func:`validate_value`. Text that the
    character sets cannot hold warns with
    :class:`~dicomfast.errors.CharsetWarning` and is written with ``?`` (with
    ``strict``, raises :class:`~dicomfast.errors.MalformedDataError`). A value
    that has no encoding at all (a US of 70000, an IS of 1.5, a str for a US)
    always raises :class:`~dicomfast.errors.MalformedDataError`.
    """
    if validate:
        validate_value(vr, value, strict=strict)
    try:
        encoder = _ENCODERS[vr]
    except KeyError:
        if vr == "SQ":
            raise ValueError("SQ values are written by the dataset writer, not encode_value") \
                from None
        if isinstance(value, (bytes, bytearray, memoryview)):
            _fail(vr, "has an unknown VR; writing its bytes unchanged", strict)
            return _pad(bytes(value), b"\x00")
        raise MalformedDataError(f"unknown VR {vr!r}") from None
    if value is None or (type(value) is str and not value):
        return b""
    return encoder(value, little_endian, encodings, strict)


# --------------------------------------------------------------------------
# Validation (PS3.5 Table 6.2-1)

# Maximum length of one value, in characters.
_MAX_LEN = {"AE": 16, "AS": 4, "CS": 16, "DS": 16, "IS": 12, "LO": 64, "LT": 10240,
            "SH": 16, "ST": 1024, "UI": 64}
_PN_GROUP_LEN = 64


def _range(one: str) -> re.Pattern[str]:
    # PS3.4 §C.2.2.2.5: DA, TM and DT may be ranges in a query ("a-b", "-b", "a-").
    return re.compile(rf"(?:{one})|-(?:{one})|(?:{one})-|(?:{one})-(?:{one})")


_DA_ONE = r"\d{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_TM_ONE = r"(?:[01]\d|2[0-3])(?:[0-5]\d(?:(?:[0-5]\d|60)(?:\.\d{1,6})?)?)?"
_DT_ONE = (r"\d{4}(?:(?:0[1-9]|1[0-2])(?:(?:0[1-9]|[12]\d|3[01])(?:(?:[01]\d|2[0-3])"
           r"(?:[0-5]\d(?:(?:[0-5]\d|60)(?:\.\d{1,6})?)?)?)?)?)?(?:[+-](?:[01]\d|2[0-3])[0-5]\d)?")
_PATTERNS = {
    "AE": re.compile(r"[\x20-\x5b\x5d-\x7e]*"),  # no control characters, no backslash
    "AS": re.compile(r"\d{3}[DWMY]"),
    "CS": re.compile(r"[A-Z0-9 _]*"),
    "DS": re.compile(r" *[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)? *"),
    "IS": re.compile(r" *[+-]?\d+ *"),
    "DA": _range(_DA_ONE),
    "TM": _range(_TM_ONE),
    "DT": _range(_DT_ONE),
    "UI": re.compile(r"(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))*"),
    # RFC 3986 characters; trailing spaces are padding (PS3.5 Table 6.2-1).
    "UR": re.compile(r"[A-Za-z0-9_:/?#\[\]@!$&'()*+,;=%\-.~]* *"),
}
# PS3.5 §6.1.3: control characters allowed in each text VR (none for the rest).
_CONTROL = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")  # all but ESC
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")  # and not TAB LF FF CR
_INT_RANGE = {"US": (0, 0xFFFF), "SS": (-0x8000, 0x7FFF), "UL": (0, 0xFFFFFFFF),
              "SL": (-0x80000000, 0x7FFFFFFF), "UV": (0, 0xFFFFFFFFFFFFFFFF),
              "SV": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF)}
_FLOAT_MAX = 3.4028234663852886e38
_NUMBER_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "UV": 8, "SV": 8, "FL": 4, "FD": 8}
_TEXT_FORMAT: dict[str, Callable[[Any], str]] = {
    "DA": _da_text, "DT": _dt_text, "TM": _tm_text, "DS": _ds_text, "IS": _is_text,
    "PN": _pn_text,
}


def _text_problems(vr: str, texts: list[str]) -> list[str]:
    problems = []
    limit = _MAX_LEN.get(vr)
    pattern = _PATTERNS.get(vr)
    for s in texts:
        if not s:
            continue
        if limit is not None and len(s) > limit:
            problems.append(f"{s!r} is longer than {limit} characters (PS3.5 Table 6.2-1)")
        if pattern is not None and pattern.fullmatch(s) is None:
            problems.append(f"{s!r} is not a valid {vr} (PS3.5 Table 6.2-1)")
        elif vr == "AE" and not s.strip():
            problems.append("is all spaces, which PS3.5 Table 6.2-1 forbids for AE")
        elif vr == "IS" and not -0x80000000 <= int(s) <= 0x7FFFFFFF:
            problems.append(f"{s!r} is outside -2**31 .. 2**31-1 (PS3.5 Table 6.2-1)")
        if vr in ("SH", "LO", "UC", "PN"):
            if _CONTROL.search(s):
                problems.append(f"{s!r} has control characters (PS3.5 §6.1.3)")
        elif vr in ("ST", "LT", "UT") and _CONTROL_TEXT.search(s):
            problems.append(f"{s!r} has control characters other than TAB, LF, FF, CR "
                            "(PS3.5 §6.1.3)")
        if vr == "PN":
            groups = s.split("=")
            if len(groups) > 3:
                problems.append(f"{s!r} has more than 3 component groups (PS3.5 §6.2.1.1)")
            for g in groups:
                if len(g) > _PN_GROUP_LEN:
                    problems.append(f"component group {g!r} is longer than 64 characters "
                                    "(PS3.5 Table 6.2-1)")
                if g.count("^") > 4:
                    problems.append(f"component group {g!r} has more than 5 components "
                                    "(PS3.5 §6.2.1.1)")
    return problems


def _number_problems(vr: str, items: Sequence[Any]) -> list[str]:
    problems = []
    lo_hi = _INT_RANGE.get(vr)
    for v in items:
        if v is None:
            continue
        if lo_hi is not None:
            if not hasattr(v, "__index__"):
                problems.append(f"{v!r} is not an integer")
            elif not lo_hi[0] <= int(v) <= lo_hi[1]:
                problems.append(f"{v!r} is outside {lo_hi[0]} .. {lo_hi[1]}")
        elif not isinstance(v, numbers.Real):
            problems.append(f"{v!r} is not a number")
        elif vr == "FL" and math.isfinite(v) and abs(v) > _FLOAT_MAX:
            problems.append(f"{v!r} is too large for a 32-bit float (IEEE 754)")
    return problems


def validate_value(vr: str, value: Any, *, strict: bool = False) -> None:
    """Check ``value`` against the rules of its VR (PS3.5 Table 6.2-1).

    Checked: the maximum length of each value (PN per component group), the
    characters and syntax of AE AS CS DA DS DT IS TM UI UR (DA/DT/TM ranges
    of PS3.4 §C.2.2.2.5 are accepted), control characters in text (PS3.5
    §6.1.3), the range of binary integers and of IS, the type of binary
    values, and that LT ST UT UR hold one value. A backslash in a str
    separates values, as in the encoded text. pydicom checks the same
    lengths, syntax and ranges (warning by default); control characters,
    all-space AE, PN components, the IS range, O* lengths and the VM of
    LT/ST/UT/UR are checked here as well.

    Each problem warns with :class:`~dicomfast.errors.ValueWarning`; with
    ``strict`` the first one raises
    :class:`~dicomfast.errors.MalformedDataError` (``tag`` None).
    """
    if value is None:
        return
    problems: list[str]
    if vr in _INT_RANGE or vr in ("FL", "FD"):
        if isinstance(value, (bytes, bytearray, memoryview)):
            size = _NUMBER_SIZE[vr]
            problems = ([] if len(value) % size == 0 else
                        [f"of {len(value)} bytes is not a multiple of {size}"])
        else:
            problems = _number_problems(vr, _items(value))
    elif vr in _SWAP or vr in ("OB", "UN"):
        if isinstance(value, (bytes, bytearray, memoryview)):
            size = _SWAP.get(vr, 1)
            problems = ([] if len(value) % size == 0 else
                        [f"of {len(value)} bytes is not a multiple of {size}"])
        elif hasattr(value, "tobytes") or _is_multi(value):
            problems = []
        else:
            problems = [f"of type {type(value).__name__} is not bytes"]
    elif vr == "AT":
        problems = []
        try:
            tags = _at_tags(value)
            problems = [f"{t!r} is not a tag" for t in tags if not 0 <= t <= 0xFFFFFFFF]
        except (TypeError, ValueError) as exc:
            problems = [f"{value!r} is not a tag ({exc})"]
    elif vr in ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                "TM", "UC", "UI", "UR", "UT"):
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("latin-1")
        fmt = _TEXT_FORMAT.get(vr, _str_item)
        try:
            items = _items(value)
            texts = [fmt(v) for v in items]
        except MalformedDataError:
            problems = [f"{value!r} cannot be written as {vr}"]
        else:
            if vr not in ("LT", "ST", "UT", "UR"):
                # A backslash separates values (PS3.5 §6.4), in a str too.
                texts = [x for t in texts for x in t.split("\\")]
            if vr in ("DS", "IS"):
                texts = [t.strip() for t in texts]
            problems = _text_problems(vr, texts)
            if vr in ("LT", "ST", "UT", "UR") and len(items) > 1:
                problems.append(f"has {len(items)} values; {vr} has one (PS3.5 §6.4)")
    else:
        problems = []  # SQ and unknown VRs: nothing to check here
    if not problems:
        return
    if strict:
        raise MalformedDataError(f"{vr} value {problems[0]}")
    for p in problems:
        warnings.warn(f"{vr} value {p}", ValueWarning, stacklevel=2)
