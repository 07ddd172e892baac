"""QIDO-RS search (PS3.18 §10.6) over the archive index.

A search is answered with C-FIND semantics (PS3.18 §10.6.1.2 defers to PS3.4
§C.2.2.2), level by level as a hierarchical C-FIND would: studies first, then
series within each matching study, then instances within each matching series,
so keys of an upper level filter the lower ones (/series?PatientID=X). Keys the
index does not hold are answered from a stored file's header when they are only
to be returned (``includefield``), and are not matched: the response then
carries a ``Warning: 299`` header naming them (PS3.18 §8.3.4.1 lets an origin
server ignore matching keys it does not support, and says so in a warning).

``fuzzymatching=true`` is accepted and not performed: PN matching is already
case-insensitive (the archive's rule); a 299 warning says literal matching was
used, as PS3.18 §8.3.4.1 requires.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dicomfast.dictionary import dictionary_entry, keyword_for_tag, tag_for_keyword
from dicomfast.json_model import dataset_to_json_dict
from dicomfast.web.http import HTTPError

# PS3.18 Tables 10.6.3-3 (study), 10.6.3-4 (series), 10.6.3-5 (instance): the
# attributes returned when includefield does not say more.
STUDY_DEFAULTS = ("StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy",
                  "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate",
                  "PatientSex", "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances")
SERIES_DEFAULTS = ("Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber",
                   "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate",
                   "PerformedProcedureStepStartTime")
INSTANCE_DEFAULTS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns",
                     "BitsAllocated", "NumberOfFrames")
DEFAULTS = {"STUDY": STUDY_DEFAULTS, "SERIES": SERIES_DEFAULTS, "IMAGE": INSTANCE_DEFAULTS}
ORDER = ("STUDY", "SERIES", "IMAGE")
UNIQUE = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
RESERVED = ("includefield", "limit", "offset", "fuzzymatching")
MAX_LIMIT = 100000
_TAG_HEX = re.compile(r"[0-9A-Fa-f]{8}\Z")
_NUMBER_VRS = frozenset(("IS", "DS", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"))


@dataclass
class Search:
    """A parsed QIDO-RS query: the level, the matching keys and what to return."""

    level: str
    filters: dict[str, str]
    include: list[str]
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    warnings: list[str] = field(default_factory=list)


def _keyword(name: str) -> str:
    """A query parameter name (a keyword or 8 hex digits, PS3.18 §8.3.4.1) as a keyword."""
    if _TAG_HEX.match(name):
        kw = keyword_for_tag(int(name, 16))
        if not kw:
            raise HTTPError(400, f"{name} is not a public attribute with a keyword")
        return kw
    if "." in name:
        raise HTTPError(400, f"sequence matching ({name!r}) is not supported")
    if tag_for_keyword(name) is None:
        raise HTTPError(400, f"{name!r} is not a DICOM attribute keyword or tag")
    return name


def _int_param(name: str, text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise HTTPError(400, f"{name}={text!r} is not a non-negative integer")
    return int(text)


def parse_search(level: str, query: list[tuple[str, str]], scope: dict[str, str],
                 supported: Callable[[str], bool]) -> Search:
    """Parse the query parameters of a QIDO-RS request (PS3.18 §8.3.4)."""
    search = Search(level, dict(scope), [])
    fuzzy = False
    ignored: list[str] = []
    for name, value in query:
        if name == "includefield":
            for item in value.split(","):
                item = item.strip()
                if item == "all":
                    search.include_all = True
                elif item:
                    search.include.append(_keyword(item))
        elif name == "limit":
            search.limit = min(_int_param(name, value), MAX_LIMIT)
        elif name == "offset":
            search.offset = _int_param(name, value)
        elif name == "fuzzymatching":
            if value not in ("true", "false"):
                raise HTTPError(400, f"fuzzymatching={value!r} is not true or false")
            fuzzy = value == "true"
        else:
            kw = _keyword(name)
            if kw in scope and value != scope[kw]:
                # The path names the entity: a different value matches nothing.
                search.filters[kw] = value
                search.limit = 0
                continue
            if kw in scope:
                continue
            if not supported(kw):
                ignored.append(kw)
                search.include.append(kw)
                continue
            if "\x00" in value or len(value) > 1024:
                raise HTTPError(400, f"{kw}: value is not a valid matching key")
            search.filters[kw] = value
    if fuzzy:
        search.warnings.append("The fuzzymatching parameter is not supported. "
                               "Only literal matching has been performed.")
    if ignored:
        search.warnings.append("The following attributes are not supported as matching "
                               "keys and were ignored: " + ", ".join(ignored))
    return search


def value_to_json(keyword: str, value: Any) -> dict[str, Any] | None:
    """The DICOM JSON (PS3.18 §F.2) of one attribute of an index row."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    entry = dictionary_entry(tag)
    vr = entry.vr.split(" or ")[0] if entry is not None else "UN"
    obj: dict[str, Any] = {"vr": vr}
    if value is None or value == "" or value == []:
        return obj
    if vr == "SQ":
        if isinstance(value, list):
            obj["Value"] = [row_to_json(item) for item in value if isinstance(item, dict)]
        return obj
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float) and vr in _NUMBER_VRS:
        obj["Value"] = [value]
        return obj
    text = value if isinstance(value, str) else "\\".join(str(v) for v in value) \
        if isinstance(value, list | tuple) else str(value)
    items = text.split("\\")
    if vr in _NUMBER_VRS:
        # The index keeps numbers as their text (binary VRs included).
        try:
            if vr in ("DS", "FL", "FD"):
                obj["Value"] = [float(v) if v.strip() else None for v in items]
            else:
                obj["Value"] = [int(float(v)) if v.strip() else None for v in items]
        except ValueError:
            obj["Value"] = items  # PS3.18 §F.2.3 allows a string that is not a number
        return obj
    if vr == "PN":
        out = []
        for name in items:
            groups = name.split("=")
            pn = {k: g for k, g in zip(("Alphabetic", "Ideographic", "Phonetic"), groups,
                                       strict=False) if g}
            out.append(pn or None)
        obj["Value"] = out
        return obj
    obj["Value"] = [v if v else None for v in items]
    return obj


def row_to_json(row: dict[str, Any], keep: set[str] | None = None) -> dict[str, Any]:
    """A DICOM JSON object of an index row, keys in tag order (PS3.18 §F.2.2)."""
    out: dict[str, Any] = {}
    for kw, value in row.items():
        if keep is not None and kw not in keep:
            continue
        obj = value_to_json(kw, value)
        if obj is not None:
            out[f"{tag_for_keyword(kw):08X}"] = obj
    return dict(sorted(out.items()))


def header_attributes(ds: Any, keywords: list[str] | None) -> dict[str, Any]:
    """DICOM JSON of a stored file's attributes (all but bulk data when `keywords` is None)."""
    full = dataset_to_json_dict(ds, bulk_data_threshold=1 << 62)
    if keywords is None:
        # includefield=all: the header without binary values and pixel data.
        return {k: v for k, v in full.items()
                if "InlineBinary" not in v and not k.startswith("7FE0")}
    wanted = {f"{tag_for_keyword(kw):08X}" for kw in keywords if tag_for_keyword(kw)}
    return {k: v for k, v in full.items() if k in wanted}
