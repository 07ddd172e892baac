"""Look-ups in the DICOM data dictionary (PS3.6 §6, PS3.7 Annex E).

Tags are plain ``int``s here (``0x00100010``); :class:`dicomfast.tag.Tag` is an ``int`` too,
so it works everywhere. Private tags (odd groups, PS3.5 §7.8.1) are never in the public
dictionary: every function answers for them as for an unknown tag.
"""

from __future__ import annotations

from typing import NamedTuple

from dicomfast._dictionary import DICTIONARY, KEYWORDS, REPEATERS

__all__ = [
    "DictEntry",
    "dictionary_entry",
    "dictionary_has_tag",
    "dictionary_vr",
    "implicit_vr_table",
    "is_private",
    "is_private_creator",
    "keyword_for_tag",
    "private_creator_tag",
    "repeater_has_keyword",
    "repeater_tag_for_keyword",
    "tag_for_keyword",
]


class DictEntry(NamedTuple):
    """One data dictionary row. ``vr`` may be ambiguous ('US or SS', 'OB or OW',
    'US or SS or OW', 'US or OW') or 'NONE' for the item and delimitation tags."""

    vr: str
    vm: str
    name: str
    keyword: str
    retired: bool


# Repeating-group keywords (OverlayData, CurveData, ...) -> (mask, value) of their entry.
_REPEATER_KEYWORDS: dict[str, tuple[int, int]] = {
    e[3]: (mask, value) for mask, value, e in REPEATERS if e[3]
}


def _repeater_entry(tag: int) -> tuple[str, str, str, str, bool] | None:
    # Every mask holds the group's lowest bit, so odd (private) groups never match.
    for mask, value, entry in REPEATERS:
        if tag & mask == value:
            return entry
    return None


def dictionary_entry(tag: int) -> DictEntry | None:
    """The dictionary row for ``tag``: the exact entry, else the repeating-group entry
    ((60xx,3000), (0028,04x0), ...), else ``None``."""
    entry = DICTIONARY.get(tag)
    if entry is None:
        entry = _repeater_entry(tag)
        if entry is None:
            return None
    return DictEntry._make(entry)


def dictionary_has_tag(tag: int) -> bool:
    """Whether ``tag`` has an exact or repeating-group entry."""
    return tag in DICTIONARY or _repeater_entry(tag) is not None


def dictionary_vr(tag: int) -> str:
    """The VR of ``tag`` (possibly ambiguous, e.g. 'US or SS'); ``KeyError`` if unknown."""
    entry = DICTIONARY.get(tag)
    if entry is None:
        entry = _repeater_entry(tag)
        if entry is None:
            raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not in the DICOM dictionary")
    return entry[0]


def keyword_for_tag(tag: int) -> str:
    """The keyword of ``tag``, or '' if it has none (unknown, private, or a retired
    entry without a keyword)."""
    entry = DICTIONARY.get(tag)
    if entry is None:
        entry = _repeater_entry(tag)
        if entry is None:
            return ""
    return entry[3]


def tag_for_keyword(keyword: str) -> int | None:
    """The tag of a keyword with an exact entry, else ``None``.

    Repeating-group keywords return ``None`` here, as in pydicom: 'OverlayData' names
    (6000,3000), (6002,3000), ... alike, and a caller that wants one must say which; see
    :func:`repeater_tag_for_keyword`.
    """
    return KEYWORDS.get(keyword)


def repeater_has_keyword(keyword: str) -> bool:
    """Whether ``keyword`` belongs to a repeating-group entry (OverlayData, CurveData, ...)."""
    return keyword in _REPEATER_KEYWORDS


def repeater_tag_for_keyword(keyword: str, index: int = 0) -> int | None:
    """A tag that the repeating-group ``keyword`` names, or ``None`` if it is not one.

    Where the ``xx`` is in the group, ``index`` picks the group, two at a time because
    repeating groups are even (PS3.5 §7.6): 'OverlayData' is (6000,3000) at index 0 and
    (6002,3000) at index 1. Elsewhere ((0028,04x0), (1000,xxx0), ...) only ``index=0`` is
    defined: the lowest tag of the range that no exact entry takes ((0028,0400) is
    Transform Label, so 'RowsForNthOrderCoefficients' gives (0028,0410)).
    ``ValueError`` for an index out of range.
    """
    found = _REPEATER_KEYWORDS.get(keyword)
    if found is None:
        return None
    mask, value = found
    if mask & 0x00FF0000 == 0x00010000 and mask & 0xFFFF == 0xFFFF:
        if not 0 <= index < 0x80:
            raise ValueError(f"{keyword}: no group number {index}")
        tag = value + (index << 17)
        if tag in DICTIONARY:  # (7FE0,0010) is Pixel Data, not Variable Pixel Data
            raise ValueError(f"{keyword}: group number {index} belongs to another attribute")
        return tag
    if index != 0:
        raise ValueError(f"{keyword}: only index 0 is defined")
    last = value | (~mask & 0xFFFFFFFF)
    for tag in range(value, last + 1):
        if tag & mask == value and tag not in DICTIONARY:
            return tag
    return None


def implicit_vr_table() -> tuple[list[tuple[int, str]], list[tuple[int, int, str]]]:
    """The dictionary laid out for the C scanner's implicit VR look-up.

    ``exact`` is ``[(tag, vr), ...]`` sorted by tag, for a binary search; ``masks`` is
    ``[(mask, value, vr), ...]`` sorted by value, tried in order after an exact miss (a tag
    matches when ``tag & mask == value``; the masks are disjoint). Group lengths
    (gggg,0000) (PS3.5 §7.2) and private tags (PS3.5 §7.8.1) are rules, not rows: the
    scanner applies them itself.
    """
    exact = [(tag, entry[0]) for tag, entry in sorted(DICTIONARY.items())]
    masks = [(mask, value, entry[0]) for mask, value, entry in REPEATERS]
    return exact, masks


def is_private(tag: int) -> bool:
    """Whether ``tag`` is in an odd, hence private, group (PS3.5 §7.8.1).

    The groups 0001, 0003, 0005, 0007 and FFFF that PS3.5 forbids outright count as private
    here too, as any odd group does, so a reader never looks them up in the public
    dictionary.
    """
    return bool(tag & 0x00010000)


def is_private_creator(tag: int) -> bool:
    """Whether ``tag`` is a Private Creator slot (gggg,0010)-(gggg,00FF) of an odd group
    (PS3.5 §7.8.1)."""
    return bool(tag & 0x00010000) and 0x0010 <= (tag & 0xFFFF) <= 0x00FF


def private_creator_tag(tag: int) -> int | None:
    """The Private Creator slot (gggg,00xx) that reserves the private element (gggg,xxyy)
    (PS3.5 §7.8.1), or ``None`` if ``tag`` is not such an element (even group, group length,
    creator slot, or an element below (gggg,1000))."""
    if not tag & 0x00010000:
        return None
    block = (tag & 0xFFFF) >> 8
    if block < 0x10:
        return None
    return (tag & 0xFFFF0000) | block
