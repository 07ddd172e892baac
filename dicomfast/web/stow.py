"""STOW-RS (PS3.18 §10.5): receive a multipart/related body of instances and store them.

The body is parsed as it arrives and each part is spooled to its own temporary
file, so memory stays bounded. Nothing reaches the archive until the whole body
has parsed: a malformed body, a wrong media type or a broken limit is a 4xx and
stores nothing. Then each instance is stored on its own; one that cannot be
(not DICOM, missing UIDs, a Study Instance UID other than the one in the URL)
is listed in the Failed SOP Sequence with its reason, the others are stored and
listed in the Referenced SOP Sequence (PS3.18 §10.5.3, Table 10.5.3-1).
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dicomfast.errors import DicomfastError
from dicomfast.part10 import read
from dicomfast.web.http import HTTPError, Request
from dicomfast.web.multipart import (
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
    parse_content_type,
)

# Failure Reason (0008,1197) values (PS3.18 §10.5.3, PS3.4 Annex B.2.3).
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
CANNOT_UNDERSTAND = 0xC000
#: Error: cannot understand (the Cxxx range of PS3.4 Table B.2-1 is the SCP's to
#: refine): the instance belongs to another study than the request URL names.
STUDY_UID_MISMATCH = 0xC409
#: Instances of one request stored at once.
STORE_THREADS = 8


@dataclass
class SpooledPart:
    path: str
    content_type: str
    size: int = 0


@dataclass
class StowResult:
    stored: list[dict[str, Any]] = field(default_factory=list)   # record + retrieve url
    failed: list[dict[str, Any]] = field(default_factory=list)


async def receive_parts(request: Request, *, max_body_size: int, max_part_size: int,
                        max_parts: int, spool_dir: str | None) -> list[SpooledPart]:
    """Spool the parts of a STOW-RS request body to temporary files.

    Raises HTTPError (4xx) for a wrong Content-Type, a malformed body or a broken
    limit, after removing what was spooled.
    """
    content_type = request.header("content-type")
    try:
        boundary = boundary_of(content_type)
        _, params = parse_content_type(content_type or "")
    except MultipartError as exc:
        raise HTTPError(exc.status, str(exc)) from None
    kind = params.get("type", "application/dicom").lower()
    if kind != "application/dicom":
        raise HTTPError(415, f"multipart/related type {kind!r}: only application/dicom "
                             "instances are accepted (PS3.18 §10.5.1.1)")
    declared = request.header("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_body_size:
        raise HTTPError(413, f"body of {declared} bytes exceeds {max_body_size}")
    parser = MultipartParser(boundary, max_part_size=max_part_size, max_parts=max_parts,
                             max_body_size=max_body_size)
    parts: list[SpooledPart] = []
    current = None
    try:
        async for chunk in request.chunks():
            for event in parser.feed(chunk):
                if isinstance(event, PartStart):
                    fd, path = tempfile.mkstemp(prefix="stow-", suffix=".part", dir=spool_dir)
                    current = os.fdopen(fd, "wb")
                    parts.append(SpooledPart(path, event.headers.get("content-type", "")))
                elif isinstance(event, PartData):
                    assert current is not None
                    current.write(event.data)
                    parts[-1].size += len(event.data)
                elif isinstance(event, PartEnd):
                    assert current is not None
                    current.close()
                    current = None
        parser.close()
    except MultipartError as exc:
        if current is not None:
            current.close()
        discard(parts)
        raise HTTPError(exc.status, f"malformed multipart body: {exc}") from None
    except BaseException:
        if current is not None:
            current.close()
        discard(parts)
        raise
    return parts


def discard(parts: list[SpooledPart]) -> None:
    for part in parts:
        try:
            os.unlink(part.path)
        except OSError:
            pass


def store_parts(archive: Any, parts: list[SpooledPart], study_uid: str | None,
                base_url: str) -> StowResult:
    """Store each spooled instance (worker thread); the temporary files are removed."""
    results = [StowResult() for _ in parts]
    try:
        if len(parts) > 1:
            # Each store waits on its own fsyncs (file, folder, index); several in flight
            # let the disk flush them together. The archive serialises index writes.
            with ThreadPoolExecutor(max_workers=min(STORE_THREADS, len(parts))) as pool:
                list(pool.map(lambda k: _store_one(archive, parts[k], study_uid, base_url,
                                                   results[k]), range(len(parts))))
        elif parts:
            _store_one(archive, parts[0], study_uid, base_url, results[0])
    finally:
        discard(parts)
    result = StowResult()
    for r in results:  # in the order of the parts
        result.stored += r.stored
        result.failed += r.failed
    return result


def _store_one(archive: Any, part: SpooledPart, study_uid: str | None, base_url: str,
               result: StowResult) -> None:
    sop_class = sop_instance = ""
    media, _ = _media(part.content_type)
    if media not in ("application/dicom", ""):
        result.failed.append({"sop_class": "", "sop_instance": "",
                              "reason": CANNOT_UNDERSTAND})
        return
    try:
        ds = read(part.path, stop_before_pixels=True)
        sop_class = str(ds.get("SOPClassUID") or "").strip()
        sop_instance = str(ds.get("SOPInstanceUID") or "").strip()
        study = str(ds.get("StudyInstanceUID") or "").strip()
        if ds.file_meta is None:
            raise DicomfastError("not a Part 10 file")
    except (DicomfastError, OSError, ValueError):
        result.failed.append({"sop_class": sop_class, "sop_instance": sop_instance,
                              "reason": CANNOT_UNDERSTAND})
        return
    if study_uid is not None and study != study_uid:
        result.failed.append({"sop_class": sop_class, "sop_instance": sop_instance,
                              "reason": STUDY_UID_MISMATCH})
        return
    try:
        record = archive.store(part.path)
    except OSError:
        result.failed.append({"sop_class": sop_class, "sop_instance": sop_instance,
                              "reason": PROCESSING_FAILURE})
        return
    except DicomfastError:
        result.failed.append({"sop_class": sop_class, "sop_instance": sop_instance,
                              "reason": CANNOT_UNDERSTAND})
        return
    url = (f"{base_url}/studies/{record.study_instance_uid}/series/"
           f"{record.series_instance_uid}/instances/{record.sop_instance_uid}")
    result.stored.append({"sop_class": record.sop_class_uid,
                          "sop_instance": record.sop_instance_uid,
                          "study": record.study_instance_uid, "url": url})


def _media(content_type: str) -> tuple[str, dict[str, str]]:
    try:
        return parse_content_type(content_type)
    except MultipartError:
        return "invalid", {}


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def response_dataset(result: StowResult, study_url: str | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, the STOW-RS response data set as DICOM JSON) (PS3.18 §10.5.3)."""
    out: dict[str, Any] = {}
    studies = {s["study"] for s in result.stored}
    if study_url is not None:
        out["00081190"] = {"vr": "UR", "Value": [study_url]}
    elif len(studies) == 1 and result.stored:
        url = result.stored[0]["url"]
        out["00081190"] = {"vr": "UR", "Value": [url.split("/series/")[0]]}
    failed = [{"00081150": _ui(f["sop_class"]), "00081155": _ui(f["sop_instance"]),
               "00081197": {"vr": "US", "Value": [f["reason"]]}} for f in result.failed]
    stored = [{"00081150": _ui(s["sop_class"]), "00081155": _ui(s["sop_instance"]),
               "00081190": {"vr": "UR", "Value": [s["url"]]}} for s in result.stored]
    out["00081198"] = {"vr": "SQ", "Value": failed} if failed else {"vr": "SQ"}
    out["00081199"] = {"vr": "SQ", "Value": stored} if stored else {"vr": "SQ"}
    # PS3.18 §10.5.3: 200 all stored, 202 some stored, 409 none stored.
    status = 200 if not failed else (202 if stored else 409)
    return status, out
