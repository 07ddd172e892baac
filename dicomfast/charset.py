"""Specific Character Set handling: DICOM terms to Python codecs, and text decoding.

(0008,0005) Specific Character Set names the character repertoires a dataset's
text uses (PS3.3 C.12.1.1.2). Value 1 (or the default repertoire, ISO-IR 6,
when it is empty) is active at the start of every value; further values are
code extensions reached through ISO 2022 escape sequences (PS3.5 §6.1.2.5).

The Python codec names follow pydicom, so the tuples this module returns can
be handed to either library.
"""

from __future__ import annotations

import codecs
import re
import warnings
from collections.abc import Sequence

from dicomfast.errors import CharsetWarning, MalformedDataError

__all__ = [
    "DEFAULT_ENCODING",
    "decode_person_name_groups",
    "decode_text",
    "python_encodings",
]

# The default repertoire (PS3.5 §6.1.2.1) is ISO-IR 6, i.e. ASCII. Bytes above
# 0x7F are not allowed there, but are common in practice; decoding them as
# Latin-1 keeps them readable and never fails, which is also pydicom's choice.
DEFAULT_ENCODING = "iso8859"

# PS3.3 Tables C.12-2 (single-byte, no extensions), C.12-3 (single-byte with
# extensions), C.12-4 (multi-byte with extensions) and C.12-5 (multi-byte
# without extensions).
_TERM_TO_CODEC: dict[str, str] = {
    "": DEFAULT_ENCODING,
    "ISO_IR 6": DEFAULT_ENCODING,
    "ISO_IR 13": "shift_jis",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 126": "iso_ir_126",
    "ISO_IR 127": "iso_ir_127",
    "ISO_IR 138": "iso_ir_138",
    "ISO_IR 144": "iso_ir_144",
    "ISO_IR 148": "iso_ir_148",
    "ISO_IR 166": "iso_ir_166",
    "ISO 2022 IR 6": DEFAULT_ENCODING,
    "ISO 2022 IR 13": "shift_jis",
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 100": "latin_1",
    "ISO 2022 IR 101": "iso8859_2",
    "ISO 2022 IR 109": "iso8859_3",
    "ISO 2022 IR 110": "iso8859_4",
    "ISO 2022 IR 126": "iso_ir_126",
    "ISO 2022 IR 127": "iso_ir_127",
    "ISO 2022 IR 138": "iso_ir_138",
    "ISO 2022 IR 144": "iso_ir_144",
    "ISO 2022 IR 148": "iso_ir_148",
    "ISO 2022 IR 149": "euc_kr",
    "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 166": "iso_ir_166",
    "ISO 2022 IR 58": "iso_ir_58",
    "ISO_IR 192": "UTF8",
    "GB18030": "GB18030",
    "GBK": "GBK",
    # Spellings used by CP 1234 drafts and seen in the wild.
    "ISO 2022 GBK": "GBK",
    "ISO 2022 58": "GB2312",
}

# PS3.5 §6.1.2.5.4 d / PS3.3 Table C.12-5: these cannot take code extensions.
_STAND_ALONE = frozenset({"ISO_IR 192", "GBK", "GB18030"})

# PS3.3 Tables C.12-3 and C.12-4: the escape sequence that designates each
# repertoire, and the codec that decodes the bytes following it.
_ESCAPE_TO_CODEC: dict[bytes, str] = {
    b"\x1b(B": DEFAULT_ENCODING,  # ISO-IR 6 into G0
    b"\x1b-A": "latin_1",  # ISO-IR 100 into G1
    b"\x1b)I": "shift_jis",  # ISO-IR 13 (JIS X 0201 Katakana) into G1
    b"\x1b(J": "shift_jis",  # ISO-IR 14 (JIS X 0201 Romaji) into G0
    b"\x1b$B": "iso2022_jp",  # ISO-IR 87 (JIS X 0208) into G0
    b"\x1b-B": "iso8859_2",
    b"\x1b-C": "iso8859_3",
    b"\x1b-D": "iso8859_4",
    b"\x1b-F": "iso_ir_126",
    b"\x1b-G": "iso_ir_127",
    b"\x1b-H": "iso_ir_138",
    b"\x1b-L": "iso_ir_144",
    b"\x1b-M": "iso_ir_148",
    b"\x1b-T": "iso_ir_166",
    b"\x1b$)C": "euc_kr",  # ISO-IR 149 (KS X 1001) into G1
    b"\x1b$(D": "iso2022_jp_2",  # ISO-IR 159 (JIS X 0212) into G0
    b"\x1b$)A": "iso_ir_58",  # ISO-IR 58 (GB 2312) into G1
}

# JIS X 0208 / 0212 are designated into G0, so their bytes overlap ASCII and
# only a stateful ISO 2022 codec can read them: it is handed the escape
# sequence too. Every other extension lives in G1 (the high half), where the
# plain 8-bit codec (EUC-KR, EUC-CN, ISO 8859-x) reads the bytes once the
# escape sequence is removed.
_CODEC_READS_ESCAPE = frozenset({"iso2022_jp", "iso2022_jp_2"})

# Spell the common codecs the way CPython's bytes.decode fast path recognises
# them; the aliases go through the codec registry and cost several times more.
_FAST_NAME = {
    "iso8859": "latin-1",
    "latin_1": "latin-1",
    "UTF8": "utf-8",
    "ascii": "ascii",
}

# PS3.5 §6.1.2.5.3: the initial repertoire is active again at a control
# character (CR, LF, TAB, FF) and, in PN values, at the "^" and "="
# delimiters; a writer that needs another repertoire after them designates it
# again (as the Korean examples of PS3.5 Annex I do after each "^").
_TEXT_DELIMS = re.compile(b"[\r\n\t\x0c]")
_PN_DELIMS = re.compile(b"[\r\n\t\x0c^=]")

# PS3.5 §6.1.2.3: only these VRs use the Specific Character Set; every other
# string VR is in the default repertoire.
_CUSTOMIZABLE = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})

_ESC = 0x1B
_DEFAULT = (DEFAULT_ENCODING,)

# Conversions that raised no warning, by their terms; the ones that warn are
# not kept so every offending dataset warns.
_cache: dict[tuple[str, ...], tuple[str, ...]] = {}


def _warn(message: str) -> None:
    warnings.warn(message, CharsetWarning, stacklevel=3)


def _is_text_codec(name: str) -> bool:
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL inside the term
        return False
    return getattr(info, "_is_text_encoding", True)


def _codec_for_term(term: str, problems: list[str]) -> str:
    codec = _TERM_TO_CODEC.get(term)
    if codec is not None:
        return codec
    # Common misspellings: "ISO IR 100", "ISO-IR 100", "ISO 2022-IR 87", ...
    patched = None
    if re.match("^ISO[^_]IR", term):
        patched = "ISO_IR" + term[6:]
    elif re.match("^(?=ISO.2022.IR.)(?!ISO 2022 IR )", term):
        patched = "ISO 2022 IR " + term[12:]
    if patched is not None:
        codec = _TERM_TO_CODEC.get(patched)
        if codec is not None:
            problems.append(f"incorrect Specific Character Set term {term!r}, assuming {patched!r}")
            return codec
    elif _is_text_codec(term):
        # Some writers store a Python/IANA codec name; it is usable as is.
        return term
    problems.append(f"unknown Specific Character Set term {term!r}, using the default repertoire")
    return DEFAULT_ENCODING


def python_encodings(specific_character_set: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return the Python codecs for a (0008,0005) Specific Character Set value.

    ``None``, ``""`` or an empty value 1 mean the default repertoire. Unknown
    terms warn with :class:`~dicomfast.errors.CharsetWarning` and fall back to
    the default repertoire; misspelt terms are corrected with a warning. A
    stand-alone repertoire (UTF-8, GBK, GB18030) ignores, with a warning, any
    term that would make it a code extension (PS3.5 §6.1.2.5.4).
    """
    if isinstance(specific_character_set, (bytes, bytearray, memoryview)):
        # (0008,0005) with a wrong VR (OB, UN) arrives undecoded: CS is ASCII.
        specific_character_set = bytes(specific_character_set).decode("latin-1")
    if not specific_character_set:
        terms: tuple[str, ...] = ("",)
    elif isinstance(specific_character_set, str):
        terms = tuple(specific_character_set.split("\\"))
    else:
        try:
            terms = tuple(specific_character_set)
        except TypeError:  # a number (a wrong VR): an unknown term, below
            terms = (str(specific_character_set),)
    # CS values: leading and trailing spaces are not significant (PS3.5 §6.2). Terms
    # that are not text (a wrong VR) become unknown terms: a warning, not a TypeError.
    terms = tuple((t if isinstance(t, str) else str(t) if t is not None else "").strip()
                  for t in terms) or ("",)
    cached = _cache.get(terms)
    if cached is not None:
        return cached

    problems: list[str] = []
    result = [_codec_for_term(t, problems) for t in terms]
    if len(terms) > 1:
        if terms[0] in _STAND_ALONE:
            problems.append(
                f"Specific Character Set {terms[0]!r} does not allow code extensions, "
                f"ignoring {', '.join(terms[1:])}"
            )
            result = result[:1]
        else:
            for i in range(len(terms) - 1, 0, -1):
                if terms[i] in _STAND_ALONE:
                    problems.append(f"{terms[i]!r} cannot be a code extension, ignoring it")
                    del result[i]
    for message in problems:
        warnings.warn(message, CharsetWarning, stacklevel=2)
    if not problems:
        if len(_cache) >= 256:  # terms come from untrusted files: stay bounded
            _cache.clear()
        _cache[terms] = tuple(result)
    return tuple(result)


def _fail(raw: bytes, encodings: Sequence[str], strict: bool, exc: Exception) -> str:
    if strict:
        raise MalformedDataError(
            f"value does not decode with {', '.join(encodings)}: {exc}"
        ) from exc
    _warn(
        f"value does not decode with {', '.join(encodings)}; "
        "using replacement characters"
    )
    return raw.decode(_FAST_NAME.get(encodings[0], encodings[0]), errors="replace")


def _decode_escaped(
    frag: bytes, encodings: Sequence[str], delims: re.Pattern[bytes], strict: bool
) -> str:
    """Decode one fragment that starts with ESC (PS3.5 §6.1.2.5)."""
    # Designations of multi-byte sets are four bytes (ESC $ ( F, ESC $ ) F),
    # of single-byte sets three (PS3.3 Tables C.12-3 and C.12-4).
    n = 4 if frag[1:3] in (b"$(", b"$)") else 3
    codec = _ESCAPE_TO_CODEC.get(frag[:n])
    if codec is None or (codec not in encodings and codec != DEFAULT_ENCODING):
        # An unknown escape sequence, or one selecting a repertoire (0008,0005)
        # does not declare (PS3.5 §6.1.2.5.4 forbids both): the bytes stay as
        # they are, read with the initial repertoire, as pydicom reads them.
        what = "unknown" if codec is None else f"undeclared ({codec})"
        if strict:
            raise MalformedDataError(f"{what} escape sequence {frag[:n]!r} in text value")
        _warn(f"{what} escape sequence {frag[:n]!r} in text value")
        first = encodings[0]
        return frag.decode(_FAST_NAME.get(first, first), errors="replace")
    try:
        if codec in _CODEC_READS_ESCAPE:
            return frag.decode(codec)
        body = frag[n:]
        name = _FAST_NAME.get(codec, codec)
        m = delims.search(body)
        if m is None:
            return body.decode(name)
        # The initial repertoire is active again from the first delimiter on.
        first = encodings[0]
        i = m.start()
        return body[:i].decode(name) + body[i:].decode(_FAST_NAME.get(first, first))
    except UnicodeError as exc:
        return _fail(frag, encodings, strict, exc)


def decode_text(
    raw: bytes, encodings: Sequence[str], vr: str = "LO", *, strict: bool = False
) -> str:
    """Decode a text value with the dataset's character sets.

    ``encodings`` comes from :func:`python_encodings`. VRs outside PS3.5
    §6.1.2.3's list (SH LO ST LT UC UT PN) are always in the default repertoire.
    Parts of the value introduced by an ISO 2022 escape sequence are decoded
    with the repertoire it designates; undecodable bytes become U+FFFD with a
    :class:`~dicomfast.errors.CharsetWarning`, or raise
    :class:`~dicomfast.errors.MalformedDataError` when ``strict``.
    No padding is removed and multiple values are not split.
    """
    if vr not in _CUSTOMIZABLE:
        return raw.decode("latin-1")
    if not encodings:
        encodings = _DEFAULT
    first = encodings[0]
    if _ESC not in raw:
        try:
            return raw.decode(_FAST_NAME.get(first, first))
        except UnicodeError as exc:
            return _fail(raw, encodings, strict, exc)
        except LookupError:
            if strict:
                raise
            _warn(f"unknown codec {first!r}, using the default repertoire")
            return raw.decode("latin-1")
    delims = _PN_DELIMS if vr == "PN" else _TEXT_DELIMS
    pieces = raw.split(b"\x1b")
    out = []
    if pieces[0]:
        try:
            out.append(pieces[0].decode(_FAST_NAME.get(first, first)))
        except UnicodeError as exc:
            out.append(_fail(pieces[0], encodings, strict, exc))
    for piece in pieces[1:]:
        out.append(_decode_escaped(b"\x1b" + piece, encodings, delims, strict))
    return "".join(out)


def decode_person_name_groups(
    raw: bytes, encodings: Sequence[str], *, strict: bool = False
) -> list[tuple[str, ...]]:
    """Return the component groups of each name in a PN value.

    One tuple per value (values are separated by backslashes), each holding the
    alphabetic, ideographic and phonetic groups present (PS3.5 §6.2.1.1);
    trailing empty groups are dropped. The value is decoded before it is split
    because a 0x3D ("=") or 0x5C byte may be half of a JIS X 0208 or GBK
    character.
    """
    text = decode_text(raw.rstrip(b"\x00 "), encodings, "PN", strict=strict)
    names = (v.rstrip("=") for v in text.split("\\"))
    return [tuple(name.split("=")) if name else () for name in names]
