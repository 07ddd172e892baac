"""DICOM tags: (group, element) pairs held as one 32-bit ``int`` (PS3.5 §7.1).

The data set and the scanner use plain ints; :class:`Tag` is the friendly face for users
(parsing, printing). Being an ``int`` it hashes and compares like one, so ``Tag`` and
``int`` keys are interchangeable.
"""

from __future__ import annotations

import operator
import re
from typing import Any

__all__ = ["Tag", "tag_to_str"]

# "(0010,0010)", "0010,0010", with optional blanks; group and element 1-4 hex digits each.
_PAIR_RE = re.compile(r"\(?\s*([0-9A-Fa-f]{1,4})\s*,\s*([0-9A-Fa-f]{1,4})\s*\)?")
# "0x00100010", "00100010": up to 8 hex digits.
_HEX_RE = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{1,8})")


def tag_to_str(tag: int) -> str:
    """``0x00100010`` -> ``'(0010,0010)'``."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _index(value: Any, what: str) -> int:
    # bool is an int, but Tag(True) is surely a mistake.
    if isinstance(value, bool):
        raise TypeError(f"a tag {what} cannot be a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"a tag {what} must be an int, not {type(value).__name__}") from None


def _from_str(text: str) -> int:
    from dicomfast.dictionary import tag_for_keyword

    tag = tag_for_keyword(text)
    if tag is not None:
        return tag
    stripped = text.strip()
    m = _PAIR_RE.fullmatch(stripped)
    if m is not None and (stripped[0] == "(") == (stripped[-1] == ")"):
        return (int(m.group(1), 16) << 16) | int(m.group(2), 16)
    m = _HEX_RE.fullmatch(stripped)
    if m is not None:
        return int(m.group(1), 16)
    raise ValueError(f"{text!r} is neither a DICOM keyword nor a tag in hex")


def _from_pair(group: Any, element: Any) -> int:
    if isinstance(group, str) and isinstance(element, str):
        try:
            g, e = int(group, 16), int(element, 16)
        except ValueError:
            raise ValueError(f"({group!r}, {element!r}) is not a pair of hex numbers") from None
    else:
        g, e = _index(group, "group"), _index(element, "element")
    if not (0 <= g <= 0xFFFF and 0 <= e <= 0xFFFF):
        raise ValueError(f"group and element must be 0..0xFFFF, got ({g:#x}, {e:#x})")
    return (g << 16) | e


class Tag(int):
    """A DICOM tag.

    ``Tag(0x00100010)``, ``Tag(0x0010, 0x0010)``, ``Tag((0x0010, 0x0010))``,
    ``Tag('PatientName')``, ``Tag('(0010,0010)')``, ``Tag('0x00100010')`` and
    ``Tag('00100010')`` are all (0010,0010). A string is tried as a keyword first, then as
    hex. Bad values raise ``ValueError``; values of the wrong type ``TypeError``.
    """

    __slots__ = ()

    def __new__(cls, value: Any, element: Any = None) -> Tag:
        if element is not None:
            return int.__new__(cls, _from_pair(value, element))
        if type(value) is cls:
            return value
        if isinstance(value, str):
            tag = _from_str(value)
        elif isinstance(value, (tuple, list)):
            if len(value) != 2:
                raise ValueError(f"a (group, element) pair has 2 items, not {len(value)}")
            tag = _from_pair(value[0], value[1])
        else:
            tag = _index(value, "value")
        if not 0 <= tag <= 0xFFFFFFFF:
            raise ValueError(f"a tag is 0..0xFFFFFFFF, got {tag:#x}")
        return int.__new__(cls, tag)

    @property
    def group(self) -> int:
        return self >> 16

    @property
    def element(self) -> int:
        return self & 0xFFFF

    elem = element

    @property
    def is_private(self) -> bool:
        """Odd group (PS3.5 §7.8.1)."""
        return bool(self & 0x00010000)

    @property
    def is_private_creator(self) -> bool:
        """(gggg,0010)-(gggg,00FF) in an odd group (PS3.5 §7.8.1)."""
        return bool(self & 0x00010000) and 0x0010 <= (self & 0xFFFF) <= 0x00FF

    @property
    def json_key(self) -> str:
        """The key of this tag in the DICOM JSON model, 'GGGGEEEE' (PS3.18 §F.2.1.1)."""
        return f"{self:08X}"

    def __str__(self) -> str:
        return f"({self >> 16:04X},{self & 0xFFFF:04X})"

    __repr__ = __str__
