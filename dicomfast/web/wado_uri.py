"""WADO-URI (PS3.18 §9): ``GET /wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..``.

Supported parameters (§9.1.2): ``contentType`` (application/dicom, image/png,
image/jpeg; a comma-separated list is tried in order; the default is image/jpeg
for images when Pillow is there, else image/png, and application/dicom for
objects without pixels, §9.1.2.1.3), ``transferSyntax`` (with application/dicom),
``frameNumber``, ``windowCenter`` and ``windowWidth`` (together), ``imageQuality``.
``anonymize``, ``annotation``, ``region``, ``rows``, ``columns`` and
``presentationUID`` are refused with 400 rather than ignored, since ignoring
them would return something other than what was asked.
"""

from __future__ import annotations

from typing import Any

from dicomfast.part10 import read
from dicomfast.render import jpeg_available
from dicomfast.web import wado
from dicomfast.web.http import HTTPError, Request, Response

_UNSUPPORTED = ("anonymize", "annotation", "region", "rows", "columns", "presentationUID",
                "presentationSeriesUID", "charset")


async def answer(app: Any, request: Request) -> Response:
    from dicomfast.web.app import _uid

    app._authorize(request)
    query: dict[str, str] = {}
    for name, value in request.query():
        if name in query:
            raise HTTPError(400, f"{name} is given more than once")
        query[name] = value
    if query.get("requestType") != "WADO":
        raise HTTPError(400, "requestType=WADO is required (PS3.18 §9.1.2.1.1)")
    for name in _UNSUPPORTED:
        if name in query:
            raise HTTPError(400, f"the {name} parameter is not supported")
    try:
        study = _uid(query["studyUID"], "studyUID")
        series = _uid(query["seriesUID"], "seriesUID")
        instance = _uid(query["objectUID"], "objectUID")
    except KeyError as exc:
        raise HTTPError(400, f"{exc.args[0]} is required (PS3.18 §9.1.2.1)") from None
    records = await app._thread(app.archive.instances, study, series, instance)
    if not records:
        raise HTTPError(404, "no such object")
    record = records[0]
    path = app._checked_path(record)
    wanted = [t.strip().split(";")[0].strip().lower()
              for t in query.get("contentType", "").split(",") if t.strip()]
    frame_text = query.get("frameNumber")
    center, width = query.get("windowCenter"), query.get("windowWidth")
    if (center is None) != (width is None):
        raise HTTPError(400, "windowCenter and windowWidth go together")
    window = wado.parse_window(f"{center},{width}") if center is not None else None
    quality = query.get("imageQuality", "90")
    if not quality.isdigit() or not 1 <= int(quality) <= 100:
        raise HTTPError(400, f"imageQuality={quality!r} is not 1-100")
    ts = query.get("transferSyntax")

    def build() -> tuple[bytes, str]:
        ds = read(path)
        has_pixels = "PixelData" in ds
        choices = wanted or (["image/jpeg", "image/png"] if has_pixels else
                             ["application/dicom"])
        for media in choices:
            if media == "application/dicom":
                if ts is not None and ts != record.transfer_syntax_uid:
                    wado.check_target_syntax(ts)
                    return wado.transcoded_instance(path, ts), media
                with open(path, "rb") as f:
                    return f.read(), media
            if media in wado.RENDERED_MEDIA and has_pixels:
                if media == "image/jpeg" and not jpeg_available():
                    continue
                frame = 0
                if frame_text is not None:
                    frame = wado.frame_numbers(frame_text, wado.number_of_frames(ds))[0] - 1
                return wado.rendered(ds, frame, media, window, int(quality)), media
        raise HTTPError(406, f"cannot answer with {', '.join(choices)}")

    data, media = await app._thread(build)
    headers = {}
    if media == "application/dicom":
        headers["Content-Disposition"] = f'attachment; filename="{instance}.dcm"'
    return Response(200, data, media, headers)
