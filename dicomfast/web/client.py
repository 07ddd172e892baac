"""A DICOMweb client: QIDO-RS search, WADO-RS retrieve (streamed to disk), metadata,
frames and rendered images, STOW-RS store (PS3.18 §10).

HTTP goes through urllib3: one well-kept library that pools connections, streams
request and response bodies, and has explicit connect/read timeouts, and that
``requests`` itself is built on; the standard library's http.client has no pool
and no timeouts per phase. Retries are ours (not urllib3's), because a retried
STOW must rebuild its streamed body: connection errors and 5xx answers are
retried ``retries`` times with exponential backoff; 4xx answers are not.
Multipart responses are read with the same streaming parser as the server uses,
so a retrieved study never has to fit in memory.
"""

from __future__ import annotations

import base64
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from dicomfast.errors import DicomfastError
from dicomfast.web.multipart import (
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
    closing,
    make_boundary,
    parse_content_type,
    part_header,
)

__all__ = ["Client", "DicomWebError"]

_RETRY_STATUS = frozenset((500, 502, 503, 504))


class DicomWebError(DicomfastError):
    """An HTTP request that failed: ``status`` (None for a connection failure), ``body``."""

    def __init__(self, message: str, *, status: int | None = None, body: bytes = b""):
        super().__init__(message)
        self.status = status
        self.body = body


class Client:
    """``Client("http://host:port/dicom-web", auth=..., timeout=30, retries=3)``.

    ``auth``: ``(user, password)`` for HTTP Basic, or a string sent as a bearer token.
    """

    def __init__(self, url: str, *, auth: tuple[str, str] | str | None = None,
                 timeout: float = 30.0, retries: int = 3, backoff: float = 0.25,
                 pool_size: int = 4):
        self.url = url.rstrip("/")
        self.retries = max(int(retries), 0)
        self.backoff = backoff
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.headers: dict[str, str] = {}
        if isinstance(auth, tuple):
            raw = f"{auth[0]}:{auth[1]}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        elif isinstance(auth, str):
            self.headers["Authorization"] = f"Bearer {auth}"
        self.pool = urllib3.PoolManager(maxsize=pool_size, retries=False,
                                        timeout=self.timeout)

    def close(self) -> None:
        self.pool.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------
    def _request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                 body: Callable[[], Any] | None = None, stream: bool = False,
                 ok: Iterable[int] = (200,)) -> Any:
        url = path if path.startswith(("http://", "https://")) else self.url + path
        all_headers = {**self.headers, **(headers or {})}
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.pool.request(method, url, headers=all_headers,
                                             body=body() if body is not None else None,
                                             preload_content=not stream, retries=False,
                                             timeout=self.timeout)
            except urllib3.exceptions.HTTPError as exc:
                if last:
                    raise DicomWebError(f"{method} {url}: {exc}") from exc
                time.sleep(delay * (1 + random.random() / 2))
                delay *= 2
                continue
            if response.status in _RETRY_STATUS and not last:
                response.drain_conn()
                response.release_conn()
                time.sleep(delay * (1 + random.random() / 2))
                delay *= 2
                continue
            if response.status not in ok:
                data = response.data if not stream else response.read(65536)
                response.release_conn()
                raise DicomWebError(f"{method} {url}: HTTP {response.status} "
                                    f"{data[:300].decode('utf-8', 'replace').strip()}",
                                    status=response.status, body=data)
            return response
        raise AssertionError("unreachable")

    def _json(self, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
              ok: Iterable[int] = (200,)) -> Any:
        # Wildcards, PN separators and lists stay literal: RFC 3986 §3.4 allows them in a
        # query, and some servers (Orthanc 1.10) match on the undecoded text.
        query = f"?{urlencode(params, doseq=True, safe='*^?,:', quote_via=quote)}" \
            if params else ""
        response = self._request("GET", path + query,
                                 headers={"Accept": "application/dicom+json"}, ok=(*ok, 204))
        if response.status == 204 or not response.data:
            return []
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise DicomWebError(f"GET {path}: the answer is not JSON") from exc

    @staticmethod
    def _path(study: str | None = None, series: str | None = None,
              instance: str | None = None) -> str:
        path = ""
        if study is not None:
            path += f"/studies/{quote(study, safe='')}"
        if series is not None:
            path += f"/series/{quote(series, safe='')}"
        if instance is not None:
            path += f"/instances/{quote(instance, safe='')}"
        return path

    def _parts(self, response: Any, chunk_size: int = 1 << 20
               ) -> Iterator[tuple[dict[str, str], Iterator[bytes]]]:
        """The parts of a streamed multipart response, each with an iterator over its bytes."""
        boundary = boundary_of(response.headers.get("Content-Type"))
        parser = MultipartParser(boundary, max_part_size=1 << 40, max_parts=1 << 24)
        stream = response.stream(chunk_size)

        def events() -> Iterator[Any]:
            for chunk in stream:
                yield from parser.feed(chunk)
            parser.close()

        it = events()
        for event in it:
            if not isinstance(event, PartStart):
                continue  # the rest of a part the caller did not read

            def body(it: Iterator[Any] = it) -> Iterator[bytes]:
                for ev in it:
                    if isinstance(ev, PartData):
                        yield ev.data
                    elif isinstance(ev, PartEnd):
                        return

            yield event.headers, body()
        response.release_conn()

    # -- QIDO-RS -----------------------------------------------------------------------
    def search(self, level: str = "studies", filters: dict[str, Any] | None = None, *,
               study: str | None = None, series: str | None = None,
               includefield: Iterable[str] | None = None, limit: int | None = None,
               offset: int | None = None, fuzzymatching: bool | None = None
               ) -> list[dict[str, Any]]:
        """QIDO-RS: ``level`` is "studies", "series" or "instances" (PS3.18 §10.6)."""
        if level not in ("studies", "series", "instances"):
            raise ValueError(f"level {level!r} is not studies, series or instances")
        if level == "studies" and (study or series):
            raise ValueError("a study search takes no study or series")
        params: list[tuple[str, Any]] = list((filters or {}).items())
        if includefield:
            params.append(("includefield", ",".join(includefield)))
        if limit is not None:
            params.append(("limit", limit))
        if offset is not None:
            params.append(("offset", offset))
        if fuzzymatching is not None:
            params.append(("fuzzymatching", "true" if fuzzymatching else "false"))
        return list(self._json(self._path(study, series) + f"/{level}", params))

    def search_studies(self, filters: dict[str, Any] | None = None, **kw: Any) -> list[dict]:
        return self.search("studies", filters, **kw)

    def search_series(self, filters: dict[str, Any] | None = None, **kw: Any) -> list[dict]:
        return self.search("series", filters, **kw)

    def search_instances(self, filters: dict[str, Any] | None = None, **kw: Any
                         ) -> list[dict]:
        return self.search("instances", filters, **kw)

    # -- WADO-RS -----------------------------------------------------------------------
    def iter_instances(self, study: str, series: str | None = None,
                       instance: str | None = None, *, transfer_syntax: str | None = None
                       ) -> Iterator[bytes]:
        """The Part 10 bytes of each instance, one at a time."""
        for _, body in self._retrieve(study, series, instance, transfer_syntax):
            yield b"".join(body)

    def _retrieve(self, study: str, series: str | None, instance: str | None,
                  transfer_syntax: str | None) -> Iterator[tuple[dict[str, str], Iterator]]:
        # transfer-syntax=* asks for the instances as stored (PS3.18 §8.7.3.5.2);
        # without it the standard's default is Explicit VR Little Endian, which makes
        # servers that follow it (Orthanc) decompress, or fail on codecs they lack.
        accept = 'multipart/related; type="application/dicom"; ' \
            f"transfer-syntax={transfer_syntax or '*'}"
        response = self._request("GET", self._path(study, series, instance),
                                 headers={"Accept": accept}, stream=True)
        yield from self._parts(response)

    def retrieve(self, study: str, series: str | None = None, instance: str | None = None,
                 *, output_dir: str | os.PathLike, transfer_syntax: str | None = None,
                 progress: Callable[[Path, int], None] | None = None) -> list[Path]:
        """WADO-RS: save the instances of a study, series or instance under `output_dir`
        as ``<SOPInstanceUID>.dcm``, streaming each to disk; returns the paths."""
        from dicomfast.part10 import read

        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        for _, body in self._retrieve(study, series, instance, transfer_syntax):
            fd, tmp = tempfile.mkstemp(dir=out, prefix=".wado-", suffix=".part")
            size = 0
            try:
                with os.fdopen(fd, "wb") as f:
                    for chunk in body:
                        f.write(chunk)
                        size += len(chunk)
                ds = read(tmp, stop_before_pixels=True)
                uid = str(ds.get("SOPInstanceUID") or "").strip()
                if not uid or not all(c in "0123456789." for c in uid):
                    raise DicomWebError(f"a retrieved instance has no valid SOP Instance UID "
                                        f"({uid[:64]!r})")
                dest = out / f"{uid}.dcm"
                os.replace(tmp, dest)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            saved.append(dest)
            if progress is not None:
                progress(dest, size)
        return saved

    def metadata(self, study: str, series: str | None = None, instance: str | None = None
                 ) -> list[dict[str, Any]]:
        """WADO-RS metadata: DICOM JSON of each instance, binary values as BulkDataURIs."""
        return list(self._json(self._path(study, series, instance) + "/metadata"))

    def frames(self, study: str, series: str, instance: str, numbers: Iterable[int], *,
               media_type: str = "application/octet-stream",
               transfer_syntax: str | None = None) -> list[bytes]:
        """WADO-RS frames (1-based numbers), as `media_type` (PS3.18 Table 8.7.3-5)."""
        accept = f'multipart/related; type="{media_type}"'
        if transfer_syntax:
            accept += f"; transfer-syntax={transfer_syntax}"
        path = self._path(study, series, instance) + "/frames/" + \
            ",".join(str(int(n)) for n in numbers)
        response = self._request("GET", path, headers={"Accept": accept}, stream=True)
        return [b"".join(body) for _, body in self._parts(response)]

    def bulkdata(self, uri: str) -> bytes:
        """The value behind a BulkDataURI (the first part of its multipart answer)."""
        response = self._request("GET", uri, headers={
            "Accept": 'multipart/related; type="application/octet-stream"'}, stream=True)
        parts = [b"".join(body) for _, body in self._parts(response)]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def rendered(self, study: str, series: str, instance: str, *, frame: int | None = None,
                 media_type: str = "image/png", window: tuple[float, float] | None = None
                 ) -> bytes:
        path = self._path(study, series, instance)
        path += f"/frames/{int(frame)}/rendered" if frame is not None else "/rendered"
        if window is not None:
            path += f"?window={window[0]},{window[1]}"
        return bytes(self._request("GET", path, headers={"Accept": media_type}).data)

    # -- STOW-RS -----------------------------------------------------------------------
    def store(self, sources: Iterable[str | os.PathLike | bytes], *, study: str | None = None,
              progress: Callable[[Any, int], None] | None = None) -> dict[str, Any]:
        """STOW-RS: store files (paths) or Part 10 bytes in one request; returns the
        response data set (DICOM JSON). Raises DicomWebError when nothing was stored
        (409) or the request failed; a 202 (some failed) returns normally: look at
        ``Failed SOP Sequence`` (00081198)."""
        items = list(sources)
        boundary = make_boundary()
        sizes = [len(s) if isinstance(s, bytes | bytearray) else os.path.getsize(s)
                 for s in items]
        heads = [part_header(boundary, "application/dicom", first=i == 0, length=n)
                 for i, n in enumerate(sizes)]
        tail = closing(boundary)
        length = sum(sizes) + sum(len(h) for h in heads) + len(tail)

        def body() -> Iterator[bytes]:
            for head, item, size in zip(heads, items, sizes, strict=True):
                yield head
                if isinstance(item, bytes | bytearray):
                    yield bytes(item)
                else:
                    with open(item, "rb") as f:
                        while chunk := f.read(1 << 20):
                            yield chunk
                if progress is not None:
                    progress(item, size)
            yield tail

        headers = {"Content-Type": f'multipart/related; type="application/dicom"; '
                                   f'boundary={boundary}',
                   "Accept": "application/dicom+json", "Content-Length": str(length)}
        response = self._request("POST", self._path(study) or "/studies", headers=headers,
                                 body=body, ok=(200, 202))
        if not response.data:
            return {}
        media, _ = parse_content_type(response.headers.get("Content-Type", ""))
        if "json" not in media:
            raise DicomWebError(f"STOW-RS answered {media!r}, not DICOM JSON",
                                status=response.status, body=response.data)
        return dict(json.loads(response.data))
