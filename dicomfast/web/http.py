"""The HTTP side of the server: requests, responses and errors over plain ASGI 3.

The server is a bare ASGI application (no framework): DICOMweb needs a handful of
routes, a streamed request body fed to our own multipart parser, and streamed
responses; a framework would add a dependency and a second request model for
no gain. Any ASGI server runs it; the command line uses uvicorn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from dicomfast.web.multipart import MultipartError, parse_content_type

_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 206: "Partial Content",
            400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
            413: "Payload Too Large", 415: "Unsupported Media Type", 500: "Internal Server Error",
            503: "Service Unavailable"}


class HTTPError(Exception):
    """An error answer: status and a short plain-text reason for the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class Request:
    scope: dict
    receive: Any
    params: dict[str, str] = field(default_factory=dict)   # path parameters

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    def header(self, name: str) -> str | None:
        key = name.lower().encode("latin-1")
        found = [v.decode("latin-1") for k, v in self.scope.get("headers", []) if k == key]
        return ", ".join(found) if found else None

    def query(self) -> list[tuple[str, str]]:
        raw = self.scope.get("query_string", b"").decode("latin-1")
        try:
            return parse_qsl(raw, keep_blank_values=True, strict_parsing=False,
                             errors="strict", max_num_fields=1000)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"malformed query string: {exc}") from None

    @property
    def base_url(self) -> str:
        host = self.header("host")
        server = self.scope.get("server") or ("localhost", None)
        scheme = self.scope.get("scheme", "http")
        if not host:
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        elif ":" not in host.rsplit("]", 1)[-1] and server[1] not in (None, 80, 443) \
                and host == server[0]:
            # A Host without the port we answer on (dicomweb-client sends one): the URLs
            # we hand out (RetrieveURL, BulkDataURI) must still reach us.
            host = f"{host}:{server[1]}"
        return f"{scheme}://{host}{self.scope.get('root_path', '')}"

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "the client went away before the body was complete")
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] | AsyncIterator[bytes] = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, send: Any, head_only: bool = False) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                   for k, v in self.headers.items()]
        if self.content_type:
            headers.append((b"content-type", self.content_type.encode("latin-1")))
        if isinstance(self.body, bytes):
            headers.append((b"content-length", str(len(self.body)).encode()))
            await send({"type": "http.response.start", "status": self.status,
                        "headers": headers})
            await send({"type": "http.response.body",
                        "body": b"" if head_only else self.body})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        if hasattr(self.body, "__aiter__"):
            async for chunk in self.body:  # type: ignore[union-attr]
                if chunk and not head_only:
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
        else:
            for chunk in self.body:  # type: ignore[union-attr]
                if chunk and not head_only:
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def json_response(data: Any, status: int = 200, content_type: str = "application/dicom+json",
                  headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return Response(status, body, content_type, headers or {})


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> Response:
    return Response(status, (message + "\n").encode("utf-8"), "text/plain; charset=utf-8",
                    headers or {})


@dataclass(frozen=True)
class MediaRange:
    """One item of an Accept header (RFC 9110 §12.5.1)."""

    media: str
    params: dict[str, str]
    q: float

    def matches(self, media: str) -> bool:
        if self.media in ("*/*", media):
            return True
        return self.media.endswith("/*") and media.startswith(self.media[:-1])


def parse_accept(value: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, best first; ``*/*`` when there is none."""
    if not value or not value.strip():
        return [MediaRange("*/*", {}, 1.0)]
    out: list[tuple[float, int, MediaRange]] = []
    for i, item in enumerate(_split_commas(value)):
        if not item.strip():
            continue
        try:
            media, params = parse_content_type(item)
        except MultipartError:
            raise HTTPError(400, f"malformed Accept item {item.strip()!r}") from None
        q = 1.0
        if "q" in params:
            try:
                q = float(params.pop("q"))
            except ValueError:
                raise HTTPError(400, f"malformed q value in {item.strip()!r}") from None
            if not 0 <= q <= 1:
                raise HTTPError(400, f"q value out of range in {item.strip()!r}")
        if "/" not in media:
            raise HTTPError(400, f"malformed media range {media!r} in Accept")
        if q > 0:
            out.append((-q, i, MediaRange(media, params, q)))
    if not out:
        raise HTTPError(406, "the Accept header accepts nothing")
    return [m for _, _, m in sorted(out, key=lambda t: (t[0], t[1]))]


def _split_commas(value: str) -> list[str]:
    """Split an Accept header at commas outside quoted strings."""
    parts, current, quoted, escape = [], [], False, False
    for ch in value:
        if escape:
            current.append(ch)
            escape = False
        elif ch == "\\" and quoted:
            current.append(ch)
            escape = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def reason(status: int) -> str:
    return _REASONS.get(status, "")
