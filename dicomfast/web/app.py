"""The DICOMweb origin server: an ASGI 3 application over a :class:`~dicomfast.archive.Archive`.

Routes (PS3.18 §10, under ``base``, ``/dicom-web`` by default):

* QIDO-RS (§10.6): ``GET /studies``, ``/series``, ``/instances``,
  ``/studies/{study}/series``, ``/studies/{study}/instances``,
  ``/studies/{study}/series/{series}/instances``;
* WADO-RS (§10.4): ``GET /studies/{study}[/series/{series}[/instances/{instance}]]``
  (instances), ``.../metadata``, ``.../instances/{instance}/frames/{list}``,
  ``.../instances/{instance}/bulk/{path}``, ``.../instances/{instance}/rendered``,
  ``.../frames/{n}/rendered``, and thumbnails (§10.7) of a study, series, instance
  or frame (``.../thumbnail``);
* STOW-RS (§10.5): ``POST /studies``, ``POST /studies/{study}``;

and WADO-URI (§9) at ``GET /wado``, the OpenAPI description at ``GET /openapi.json``.

Nothing outside the archive can be reached: path parameters are UIDs (digits and
dots, PS3.5 §9.1) or frame numbers and tags, checked before use; files are found
only through the index, and a path the index gives that is not under the archive
root is refused. Blocking work (SQLite, file reads, codecs) runs on worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomfast.archive import Archive
from dicomfast.archive import keys as K
from dicomfast.errors import DicomfastError, UnsupportedTransferSyntaxError
from dicomfast.part10 import read
from dicomfast.web import qido, stow, wado
from dicomfast.web.http import (
    HTTPError,
    MediaRange,
    Request,
    Response,
    error_response,
    json_response,
    parse_accept,
)
from dicomfast.web.multipart import closing, make_boundary, part_header

__all__ = ["DicomWebApp", "ServerConfig", "create_app"]

log = logging.getLogger("dicomfast.web")
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")
Handler = Callable[[Request], Awaitable[Response]]


#: The side of a thumbnail, in pixels, when the request gives no viewport.
THUMBNAIL = 128


@dataclass
class ServerConfig:
    """Server settings. ``token``: require ``Authorization: Bearer <token>``;
    ``basic``: require HTTP Basic with ``(user, password)``; both may be set."""

    base: str = "/dicom-web"
    token: str | None = None
    basic: tuple[str, str] | None = None
    max_body_size: int = 4 << 30
    max_part_size: int = 2 << 30
    max_parts: int = 100000
    spool_dir: str | None = None
    # Transfer syntax of instances retrieved with no transfer-syntax parameter:
    # Explicit VR Little Endian, the PS3.18 §8.7.3.5.2 default; "*" sends them as
    # stored (no decoding, byte-identical), which clients get anyway by asking for
    # transfer-syntax=*.
    default_instance_syntax: str = "1.2.840.10008.1.2.1"


def _uid(value: str, what: str) -> str:
    if len(value) > 64 or not _UID.match(value):
        raise HTTPError(400, f"{what} {value[:80]!r} is not a valid UID (PS3.5 §9.1)")
    return value


class DicomWebApp:
    """``DicomWebApp(archive_or_root, config)``: call it as an ASGI application."""

    def __init__(self, archive: Archive | str | Path, config: ServerConfig | None = None):
        self.archive = archive if isinstance(archive, Archive) else Archive(archive)
        self.config = config or ServerConfig()
        self.base = self.config.base.rstrip("/")
        self.root = Path(self.archive.root).resolve()
        b = re.escape(self.base)
        uid = r"(?P<{}>[^/]+)"
        st, se, inst = uid.format("study"), uid.format("series"), uid.format("instance")
        instance = f"{b}/studies/{st}/series/{se}/instances/{inst}"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", rf"{b}/studies", self.qido_studies),
            ("GET", rf"{b}/series", self.qido_series),
            ("GET", rf"{b}/instances", self.qido_instances),
            ("GET", rf"{b}/studies/{st}/series", self.qido_series),
            ("GET", rf"{b}/studies/{st}/instances", self.qido_instances),
            ("GET", rf"{b}/studies/{st}/series/{se}/instances", self.qido_instances),
            ("GET", rf"{b}/studies/{st}", self.wado_instances),
            ("GET", rf"{b}/studies/{st}/series/{se}", self.wado_instances),
            ("GET", instance, self.wado_instances),
            ("GET", rf"{b}/studies/{st}/metadata", self.wado_metadata),
            ("GET", rf"{b}/studies/{st}/series/{se}/metadata", self.wado_metadata),
            ("GET", rf"{instance}/metadata", self.wado_metadata),
            ("GET", rf"{instance}/frames/(?P<frames>[^/]+)", self.wado_frames),
            ("GET", rf"{instance}/bulk/(?P<bulk>[0-9A-Fa-f/]+)", self.wado_bulk),
            ("GET", rf"{instance}/rendered", self.wado_rendered),
            ("GET", rf"{instance}/frames/(?P<frames>[^/]+)/rendered", self.wado_rendered),
            ("GET", rf"{b}/studies/{st}/thumbnail", self.wado_thumbnail),
            ("GET", rf"{b}/studies/{st}/series/{se}/thumbnail", self.wado_thumbnail),
            ("GET", rf"{instance}/thumbnail", self.wado_thumbnail),
            ("GET", rf"{instance}/frames/(?P<frames>[^/]+)/thumbnail", self.wado_thumbnail),
            ("POST", rf"{b}/studies", self.stow),
            ("POST", rf"{b}/studies/{st}", self.stow),
            ("GET", r"/wado", self.wado_uri),
            ("GET", r"/openapi.json", self.openapi),
        ]
        self.routes = [(m, re.compile(p + r"/?\Z"), h) for m, p, h in self.routes]

    # -- ASGI --------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        head = request.method == "HEAD"
        try:
            response = await self._dispatch(request)
        except HTTPError as exc:
            response = error_response(exc.status, str(exc), exc.headers)
        except UnsupportedTransferSyntaxError as exc:
            # No codec in this build for what the file holds or the client asked for.
            response = error_response(406, str(exc))
        except Exception:  # a bug or a broken file: say so, keep serving
            log.exception("error answering %s %s", request.method, request.path)
            response = error_response(500, "internal error")
        await response.send(send, head_only=head)

    async def _dispatch(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        allowed = []
        for m, pattern, handler in self.routes:
            found = pattern.match(request.path)
            if found is None:
                continue
            if m != method:
                allowed.append(m)
                continue
            if handler != self.openapi:
                self._authorize(request)
            request.params = {k: v for k, v in found.groupdict().items() if v is not None}
            for key in ("study", "series", "instance"):
                if key in request.params:
                    _uid(request.params[key], f"{key} UID")
            return await handler(request)
        if allowed:
            raise HTTPError(405, f"{request.method} is not allowed here",
                            {"Allow": ", ".join(sorted(set(allowed)))})
        raise HTTPError(404, f"no resource at {request.path[:200]!r}")

    def _authorize(self, request: Request) -> None:
        cfg = self.config
        if cfg.token is None and cfg.basic is None:
            return
        given = request.header("authorization") or ""
        scheme, _, credentials = given.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if cfg.token is not None and scheme == "bearer" and \
                hmac.compare_digest(credentials.encode(), cfg.token.encode()):
            return
        if cfg.basic is not None and scheme == "basic":
            expected = base64.b64encode(f"{cfg.basic[0]}:{cfg.basic[1]}".encode()).decode()
            if hmac.compare_digest(credentials.encode(), expected.encode()):
                return
        challenges = []
        if cfg.basic is not None:
            challenges.append('Basic realm="dicomweb"')
        if cfg.token is not None:
            challenges.append('Bearer realm="dicomweb"')
        raise HTTPError(401, "authentication required",
                        {"WWW-Authenticate": ", ".join(challenges)})

    def base_url(self, request: Request) -> str:
        return request.base_url + self.base

    # -- archive access (worker threads) ------------------------------------------------
    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def _checked_path(self, record: Any) -> str:
        path = Path(record.path).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise HTTPError(404, "the stored file is not available")
        return str(path)

    async def _records(self, request: Request) -> list[Any]:
        p = request.params
        records = await self._thread(self.archive.instances, p.get("study"), p.get("series"),
                                     p.get("instance"))
        if not records:
            raise HTTPError(404, "no such study, series or instance")
        return list(records)

    async def _one(self, request: Request) -> tuple[Any, str]:
        records = await self._records(request)
        return records[0], self._checked_path(records[0])

    # -- QIDO-RS -------------------------------------------------------------------------
    async def qido_studies(self, request: Request) -> Response:
        return await self._qido(request, "STUDY")

    async def qido_series(self, request: Request) -> Response:
        return await self._qido(request, "SERIES")

    async def qido_instances(self, request: Request) -> Response:
        return await self._qido(request, "IMAGE")

    async def _qido(self, request: Request, level: str) -> Response:
        accept = parse_accept(request.header("accept"))
        if not any(m.matches("application/dicom+json") or m.media == "application/json"
                   for m in accept):
            raise HTTPError(406, "QIDO-RS answers application/dicom+json")
        scope = {"StudyInstanceUID": request.params["study"]} if "study" in request.params \
            else {}
        if "series" in request.params:
            scope["SeriesInstanceUID"] = request.params["series"]
        chain = qido.ORDER[:qido.ORDER.index(level) + 1]
        search = qido.parse_search(level, request.query(), scope,
                                   lambda kw: _supported(kw, chain))
        results = await self._thread(self._search, search, chain, scope,
                                     self.base_url(request))
        headers = {}
        if search.warnings:
            headers["Warning"] = ", ".join(f'299 dicomfast "{w}"' for w in search.warnings)
        return json_response(results, headers=headers)

    def _search(self, search: qido.Search, chain: tuple[str, ...], scope: dict[str, str],
                base_url: str) -> list[dict[str, Any]]:
        level = search.level
        # Defaults of the level asked for, and of the levels above it that the path does
        # not already name (PS3.18 §10.6.3.3.1).
        returned: list[str] = []
        for lv in chain:
            if lv == level or (lv == "STUDY" and "StudyInstanceUID" not in scope) or \
                    (lv == "SERIES" and "SeriesInstanceUID" not in scope):
                returned.extend(qido.DEFAULTS[lv])
        returned.extend(qido.UNIQUE[lv] for lv in chain)
        extra: list[str] = []
        for kw in search.include:
            (returned if _supported(kw, chain) else extra).append(kw)
        if search.include_all:
            for lv in ("PATIENT",) + chain:
                returned.extend(k for k in K.LEVEL_KEYS[lv] if k not in K.SEQUENCE_KEYS)
            returned.extend(k for k, lv in K.COMPUTED.items()
                            if lv in chain or lv == "PATIENT")
        ident: dict[str, Any] = {kw: "" for kw in dict.fromkeys(returned)
                                 if _supported(kw, chain)}
        ident.update(search.filters)
        out: list[dict[str, Any]] = []
        if search.limit == 0:
            return out
        skipped = 0
        for row in self.archive.query(level, ident):
            if skipped < search.offset:
                skipped += 1
                continue
            obj = qido.row_to_json(row)
            url = f"{base_url}/studies/{row.get('StudyInstanceUID')}"
            if level != "STUDY":
                url += f"/series/{row.get('SeriesInstanceUID')}"
            if level == "IMAGE":
                url += f"/instances/{row.get('SOPInstanceUID')}"
            obj["00081190"] = {"vr": "UR", "Value": [url]}
            if extra or (search.include_all and level == "IMAGE"):
                obj.update(self._file_attributes(row, level, extra, search.include_all))
            out.append(dict(sorted(obj.items())))
            if search.limit is not None and len(out) >= search.limit:
                break
        return out

    def _file_attributes(self, row: dict[str, Any], level: str, extra: list[str],
                         include_all: bool) -> dict[str, Any]:
        """Attributes the index does not keep, from a stored file of the entity."""
        records = self.archive.instances(
            row.get("StudyInstanceUID"),
            row.get("SeriesInstanceUID") if level in ("SERIES", "IMAGE") else None,
            row.get("SOPInstanceUID") if level == "IMAGE" else None)
        if not records:
            return {}
        try:
            ds = read(self._checked_path(records[0]), stop_before_pixels=True)
        except (DicomfastError, OSError, HTTPError):
            return {}
        found = qido.header_attributes(ds, None if include_all and level == "IMAGE"
                                       else extra)
        return {k: v for k, v in found.items() if k[:4] != "0002"}

    # -- WADO-RS -------------------------------------------------------------------------
    async def wado_instances(self, request: Request) -> Response:
        accept = parse_accept(request.header("accept"))
        target = _instance_syntax(accept, self.config.default_instance_syntax)
        if target is not None:
            wado.check_target_syntax(target)
        records = await self._records(request)
        paths = await self._thread(lambda: [self._checked_path(r) for r in records])
        boundary = make_boundary()
        # The first transcoding is done before the answer starts, so a file that cannot
        # be transcoded gets a status (406), not a cut-off body.
        first = None
        if target is not None and target != records[0].transfer_syntax_uid:
            first = await self._thread(wado.transcoded_instance, paths[0], target)

        async def body() -> AsyncIterator[bytes]:
            i = 0
            while i < len(records):
                record, path = records[i], paths[i]
                ts = record.transfer_syntax_uid
                if (target is None or target == ts) and record.size <= _SMALL:
                    # A run of small files: read on one worker-thread hop, sent as one
                    # chunk (per-file hops and sends cost more than the reads).
                    j, total = i, 0
                    while j < len(records) and total < _BATCH and \
                            records[j].size <= _SMALL and \
                            (target is None or target == records[j].transfer_syntax_uid):
                        total += records[j].size
                        j += 1
                    yield await self._thread(_read_parts, boundary, records[i:j],
                                             paths[i:j], i == 0)
                    i = j
                    continue
                i += 1
                if target is not None and target != ts:
                    data = first if i == 1 and first is not None else \
                        await self._thread(wado.transcoded_instance, path, target)
                    ts = target
                    yield part_header(boundary, f"application/dicom; transfer-syntax={ts}",
                                      first=i == 1, length=len(data))
                    yield data
                    continue
                kind = f"application/dicom; transfer-syntax={ts}"
                size = await self._thread(os.path.getsize, path)
                yield part_header(boundary, kind, first=i == 1, length=size)
                chunks = wado.read_chunks(path)
                try:
                    while True:
                        chunk = await self._thread(next, chunks, None)
                        if chunk is None:
                            break
                        yield chunk
                finally:
                    chunks.close()
            yield closing(boundary)

        return Response(200, body(),
                        f'multipart/related; type="application/dicom"; boundary={boundary}')

    async def wado_metadata(self, request: Request) -> Response:
        accept = parse_accept(request.header("accept"))
        if not any(m.matches("application/dicom+json") or m.media == "application/json"
                   for m in accept):
            raise HTTPError(406, "metadata is application/dicom+json")
        records = await self._records(request)
        base = self.base_url(request)

        def build() -> list[dict[str, Any]]:
            out = []
            for r in records:
                ds = read(self._checked_path(r))
                url = (f"{base}/studies/{r.study_instance_uid}/series/"
                       f"{r.series_instance_uid}/instances/{r.sop_instance_uid}")
                out.append(wado.metadata(ds, url))
            return out

        return json_response(await self._thread(build))

    async def wado_bulk(self, request: Request) -> Response:
        _, path = await self._one(request)
        accept = parse_accept(request.header("accept"))

        def build() -> tuple[list[tuple[str, bytes]], str]:
            ds = read(path)
            el, _ = wado.bulk_value(ds, request.params["bulk"])
            if el.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
                n = wado.number_of_frames(ds)
                media, target = wado.choose_frame_media(
                    accept, getattr(ds.transfer_syntax, "uid", wado.EXPLICIT_VR_LE))
                if el.tag != 0x7FE00010:
                    media, target = "application/octet-stream", None
                    return [(wado.EXPLICIT_VR_LE, bytes(el.value or b""))], media
                return wado.frames(ds, list(range(1, n + 1)), target), media
            value = el.value
            if not isinstance(value, bytes | bytearray | memoryview):
                raise HTTPError(404, "that element holds no bulk data")
            return [(wado.EXPLICIT_VR_LE, bytes(value))], "application/octet-stream"

        parts, media = await self._thread(build)
        return _multipart(parts, media)

    async def wado_frames(self, request: Request) -> Response:
        _, path = await self._one(request)
        accept = parse_accept(request.header("accept"))

        def build() -> tuple[list[tuple[str, bytes]], str]:
            ds = read(path)
            if "PixelData" not in ds:
                raise HTTPError(404, "the instance has no Pixel Data frames")
            numbers = wado.frame_numbers(request.params["frames"], wado.number_of_frames(ds))
            stored = getattr(ds.transfer_syntax, "uid", wado.EXPLICIT_VR_LE)
            media, target = wado.choose_frame_media(accept, stored)
            return wado.frames(ds, numbers, target), media

        parts, media = await self._thread(build)
        return _multipart(parts, media)

    async def wado_rendered(self, request: Request) -> Response:
        _, path = await self._one(request)
        media, window, quality, viewport = self._render_query(request)

        def build() -> bytes:
            ds = read(path)
            return wado.rendered(ds, self._frame(request, ds, 0), media, window, quality,
                                 viewport)

        return Response(200, await self._thread(build), media)

    async def wado_thumbnail(self, request: Request) -> Response:
        """PS3.18 §10.7 thumbnails: the study's or series' representative image (the
        lowest-numbered series' middle instance by Instance Number), an instance's
        middle frame, or the frame asked for; at most THUMBNAIL pixels a side unless
        a viewport says otherwise."""
        p = request.params
        media, window, quality, viewport = self._render_query(request)
        record = await self._thread(self.archive.representative, p["study"], p.get("series"),
                                    p.get("instance"))
        if record is None:
            raise HTTPError(404, "no image here to show")
        path = self._checked_path(record)
        fit = viewport or wado.Viewport(THUMBNAIL, THUMBNAIL)

        def build() -> bytes:
            ds = read(path)
            middle = (wado.number_of_frames(ds) - 1) // 2
            return wado.rendered(ds, self._frame(request, ds, middle), media, window, quality,
                                 fit, upscale=viewport is not None)

        return Response(200, await self._thread(build), media)

    @staticmethod
    def _render_query(request: Request) -> tuple[str, Any, int, Any]:
        """The media type and the query of a rendered resource (PS3.18 §8.3.5.1)."""
        media = wado.choose_rendered_media(parse_accept(request.header("accept")))
        query = dict(request.query())
        for name in ("annotation", "iccprofile"):
            if name in query:
                # Ignoring it would return another image than the one asked for.
                raise HTTPError(400, f"the {name} parameter is not supported")
        window = wado.parse_window(query.get("window"))
        quality = query.get("quality", "90")
        if not quality.isdigit() or not 1 <= int(quality) <= 100:
            raise HTTPError(400, f"quality={quality!r} is not 1-100")
        return media, window, int(quality), wado.parse_viewport(query.get("viewport"))

    @staticmethod
    def _frame(request: Request, ds: Any, default: int) -> int:
        """The 0-based frame named in the path, else `default`."""
        if "frames" not in request.params:
            return default
        numbers = wado.frame_numbers(request.params["frames"], wado.number_of_frames(ds))
        if len(numbers) != 1:
            raise HTTPError(400, "a rendered frame is one frame number")
        return numbers[0] - 1

    # -- STOW-RS -------------------------------------------------------------------------
    async def stow(self, request: Request) -> Response:
        accept = parse_accept(request.header("accept"))
        if not any(m.matches("application/dicom+json") or m.media == "application/json"
                   for m in accept):
            raise HTTPError(406, "the STOW-RS response is application/dicom+json")
        cfg = self.config
        parts = await stow.receive_parts(request, max_body_size=cfg.max_body_size,
                                         max_part_size=cfg.max_part_size,
                                         max_parts=cfg.max_parts, spool_dir=cfg.spool_dir)
        base = self.base_url(request)
        study = request.params.get("study")
        result = await self._thread(stow.store_parts, self.archive, parts, study, base)
        status, body = stow.response_dataset(
            result, f"{base}/studies/{study}" if study else None)
        return json_response(body, status)

    # -- WADO-URI ------------------------------------------------------------------------
    async def wado_uri(self, request: Request) -> Response:
        from dicomfast.web.wado_uri import answer

        return await answer(self, request)

    # -- OpenAPI ---------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        from dicomfast.web.openapi import openapi_document

        return json_response(openapi_document(self.base), content_type="application/json")


_SMALL = 1 << 20     # files read whole
_BATCH = 4 << 20     # bytes of small files read per worker-thread hop


def _read_parts(boundary: str, records: list[Any], paths: list[str], first: bool) -> bytes:
    """Parts (delimiter, headers, file bytes) of several small stored files, joined."""
    out = []
    for k, (record, path) in enumerate(zip(records, paths, strict=True)):
        with open(path, "rb") as f:
            data = f.read()
        out.append(part_header(boundary, f"application/dicom; transfer-syntax="
                                         f"{record.transfer_syntax_uid}",
                                first=first and k == 0, length=len(data)))
        out.append(data)
    return b"".join(out)


def _supported(keyword: str, chain: tuple[str, ...]) -> bool:
    lv = K.KEY_LEVEL.get(keyword) or K.COMPUTED.get(keyword)
    return lv is not None and (lv == "PATIENT" or lv in chain) and \
        keyword not in K.SEQUENCE_KEYS


def _instance_syntax(accept: list[MediaRange], default: str) -> str | None:
    """The transfer syntax an instance retrieve asks for; None: as stored.

    ``transfer-syntax=*`` gets the instances as stored; a named transfer syntax
    gets them transcoded; none at all gets `default` (PS3.18 §8.7.3.5.2: Explicit
    VR Little Endian, unless the server is configured with "*").
    """
    for item in accept:
        media = item.media
        if media == "multipart/related":
            media = item.params.get("type", "application/dicom").lower()
        if media in ("*/*", "application/*", "application/dicom"):
            ts = item.params.get("transfer-syntax") or default
            return None if ts == "*" else ts
    raise HTTPError(406, 'instances are multipart/related; type="application/dicom"')


def _multipart(parts: list[tuple[str, bytes]], media: str) -> Response:
    boundary = make_boundary()
    chunks = []
    for i, (ts, data) in enumerate(parts):
        chunks.append(part_header(boundary, f"{media}; transfer-syntax={ts}", first=i == 0,
                                  length=len(data)))
        chunks.append(data)
    chunks.append(closing(boundary))
    return Response(200, b"".join(chunks),
                    f'multipart/related; type="{media}"; boundary={boundary}')


def create_app(root: str | Path | Archive, **config: Any) -> DicomWebApp:
    """An ASGI application serving the archive at `root` (created if missing)."""
    return DicomWebApp(root, ServerConfig(**config))
