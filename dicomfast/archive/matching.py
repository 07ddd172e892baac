"""C-FIND attribute matching (PS3.4 §C.2.2.2), over plain Python values.

One function, :func:`match_value`, decides whether one attribute of a candidate
entity matches one key of a C-FIND identifier; the archive index calls it from
SQL for the cases SQLite cannot express directly, and the worklist store calls
it on data sets, so both answer with the same semantics:

- an empty key (or one that is only ``*``) matches everything: universal
  matching (§C.2.2.2.3, §C.2.2.2.4);
- UI keys hold a list of UIDs (``\\``-separated); any one may match (§C.2.2.2.2);
- DA, TM and DT keys of the form ``a-b``, ``-b`` or ``a-`` are ranges, inclusive
  at both ends (§C.2.2.2.5); a partial time or date-time as the upper bound covers
  everything it starts (``-12`` runs to 12:59:59.999999);
- ``*`` and ``?`` are wildcards in the text VRs (§C.2.2.2.4);
- other keys are single values, matched exactly (§C.2.2.2.1); a key with several
  values (``CT\\MR``) matches an entity having any of them;
- PN keys match without regard to case (§C.2.2.2.1 leaves PN matching to the
  SCP), against the whole name or, when the key names no component group
  (``=``), against any one group (alphabetic, ideographic, phonetic);
- a sequence key holds one item; an entity matches when one of its items matches
  every non-empty key of that item, and an empty item matches any entity
  (§C.2.2.2.6, one level deep);
- an entity whose attribute is empty or absent matches only universal keys.

Values are text as decoded with the data set's Specific Character Set (Python
``str``), so names in any character set compare by their characters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from dicomfast.dictionary import dictionary_entry, tag_for_keyword
from dicomfast.errors import DicomfastError

#: VRs in which ``*`` and ``?`` are wildcards (PS3.4 §C.2.2.2.4).
WILDCARD_VRS = frozenset(["AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"])
RANGE_VRS = frozenset(["DA", "TM", "DT"])


class QueryError(DicomfastError, ValueError):
    """An identifier that cannot be matched: an unknown keyword, a level that does not
    exist, a malformed range."""


@functools.lru_cache(maxsize=4096)
def vr_of(keyword: str) -> str:
    """The dictionary VR of a keyword (the first of "US or SS"), or QueryError."""
    tag = tag_for_keyword(keyword)
    entry = dictionary_entry(tag) if tag is not None else None
    if entry is None:
        raise QueryError(f"{keyword!r} is not a DICOM keyword")
    return entry.vr.split(" or ")[0]


def is_universal(query: Any) -> bool:
    if query is None:
        return True
    if isinstance(query, list):  # a sequence key
        return not query or all(is_universal(v) for item in query for v in item.values())
    text = str(query).strip()
    return text == "" or text.strip("*") == "" and "*" in text


@functools.lru_cache(maxsize=1024)
def _wildcard(pattern: str, fold: bool) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if fold else 0))


def _time_key(text: str, upper: bool) -> str:
    """HHMMSS.FFFFFF for comparison; ':' of the ACR-NEMA form dropped; a partial upper
    bound is filled with 9s so that it covers the span it names."""
    text = text.replace(":", "").strip()
    whole, _, frac = text.partition(".")
    fill = "9" if upper else "0"
    whole = (whole + fill * 6)[:6]
    frac = (frac + fill * 6)[:6] if frac or upper else "000000"
    return f"{whole}.{frac}"


def _datetime_key(text: str, upper: bool) -> str:
    text = text.strip()
    # An offset from UTC (&ZZXX) is ignored: values compare as local date-times.
    m = re.match(r"(\d{4,14})(\.\d{1,6})?", text)
    if not m:
        raise QueryError(f"DT value {text!r} is not a date-time")
    digits, frac = m.group(1), (m.group(2) or "")[1:]
    fill = "9" if upper else "0"
    if len(digits) < 14:
        default = "99991231235959" if upper else "00000101000000"
        digits += default[len(digits):]
    frac = (frac + fill * 6)[:6] if frac or upper else "000000"
    return f"{digits}.{frac}"


def _norm(vr: str, text: str, upper: bool) -> str:
    if vr == "DA":
        return text.replace(".", "").strip()
    if vr == "TM":
        return _time_key(text, upper)
    return _datetime_key(text, upper)


def _split_range(vr: str, query: str) -> tuple[str, str] | None:
    if vr == "DT":
        # A '-' may also start an offset from UTC; a range separator follows the
        # digits of a date-time (or starts the value).
        m = re.fullmatch(r"([0-9.+]*(?:[+-]\d{4})?)-([0-9.+-]*)", query)
        if m is None:
            return None
        return m.group(1), m.group(2)
    if "-" not in query:
        return None
    low, _, high = query.partition("-")
    return low, high


def _match_range(vr: str, query: str, values: list[str]) -> bool:
    bounds = _split_range(vr, query)
    for value in values:
        if not value:
            continue
        try:
            if bounds is None:
                if vr == "DA":
                    if value == query:
                        return True
                    continue
                lo = _norm(vr, query, False)
                hi = _norm(vr, query, True)
            else:
                lo = _norm(vr, bounds[0], False) if bounds[0] else ""
                hi = _norm(vr, bounds[1], True) if bounds[1] else "~"
            v = _norm(vr, value, False)
        except QueryError:
            continue
        if lo <= v <= hi:
            return True
    return False


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    text = str(value)
    return text.split("\\") if text else []


def _pn_groups(value: str) -> list[str]:
    return [value] + [g for g in value.split("=") if g] if "=" in value else [value]


def match_value(vr: str, query: Any, candidate: Any) -> bool:
    """Whether `candidate` (the entity's value: text, a list of values, a list of
    item mappings for SQ, or None) matches the identifier key `query`."""
    if vr == "SQ":
        return match_sequence(query, candidate)
    if is_universal(query):
        return True
    values = [v.strip() if vr != "PN" else v.strip(" ") for v in _split(candidate)]
    values = [v for v in values if v]
    if not values:
        return False
    if isinstance(query, (list, tuple)):
        keys = [str(q) for q in query]
    else:
        keys = str(query).split("\\")
    if vr == "UI":
        wanted = {k.strip().rstrip("\0") for k in keys}
        return any(v.rstrip("\0") in wanted for v in values)
    if vr in RANGE_VRS:
        return any(_match_range(vr, k.strip(), values) for k in keys if k.strip())
    for key in keys:
        key = key.strip() if vr != "PN" else key.strip(" ")
        if not key:
            continue
        if vr == "PN":
            cands = [g for v in values for g in (_pn_groups(v) if "=" not in key else [v])]
            if "*" in key or "?" in key:
                rx = _wildcard(key, True)
                if any(rx.fullmatch(c) for c in cands):
                    return True
            elif any(c.casefold() == key.casefold() for c in cands):
                return True
        elif vr in WILDCARD_VRS and ("*" in key or "?" in key):
            rx = _wildcard(key, False)
            if any(rx.fullmatch(v) for v in values):
                return True
        elif key in values:
            return True
    return False


def match_sequence(query: Any, candidate: Any) -> bool:
    """Sequence matching one level deep (PS3.4 §C.2.2.2.6)."""
    if is_universal(query):
        return True
    if not candidate:
        return False
    item = query[0]
    for cand in candidate:
        if all(match_value(vr_of(kw), q, cand.get(kw)) for kw, q in item.items()
               if not is_universal(q)):
            return True
    return False


def matches(identifier: Mapping[str, Any], entity: Mapping[str, Any]) -> bool:
    """Whether an entity (keyword -> value) matches every key of an identifier."""
    for keyword, query in identifier.items():
        if is_universal(query):
            continue
        if not match_value(vr_of(keyword), query, entity.get(keyword)):
            return False
    return True


def sql_match(vr: str, query: str, candidate: str | None) -> int:
    """:func:`match_value` for SQLite (registered as ``dfmatch(vr, query, value)``)."""
    return 1 if match_value(vr, query, candidate) else 0
