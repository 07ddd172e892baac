"""multipart/related bodies (RFC 2387 over RFC 2046 §5.1): a streaming parser and writer.

DICOMweb moves instances, frames and bulk data as ``multipart/related`` (PS3.18
§8.6.1.2). The parser is sans-IO: :meth:`MultipartParser.feed` takes whatever
bytes the transport delivered and returns the events they complete, holding at
most one delimiter's worth of bytes back, so memory stays bounded whatever the
body size. Limits are explicit: a part's header block, a part's size (declared
by its Content-Length or counted as it streams), the number of parts and the
whole body. Breaking one raises :class:`MultipartError` with the HTTP status a
server answers with (400 malformed, 413 too large, 415 wrong media type).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from dicomfast.errors import MalformedDataError

__all__ = ["MultipartError", "MultipartParser", "Part", "PartData", "PartEnd", "PartStart",
           "boundary_of", "iter_multipart", "make_boundary", "parse_content_type",
           "part_header"]

# RFC 2046 §5.1.1: 1-70 characters from bchars, not ending with a space.
_BCHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_HEADER = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]")


class MultipartError(MalformedDataError):
    """A multipart body, or its Content-Type, that cannot be accepted.

    ``status`` is the HTTP status a server answers with: 400 for a malformed body,
    413 when a limit is passed, 415 for a media type that is not multipart/related.
    """

    def __init__(self, message: str, *, status: int = 400, offset: int | None = None):
        super().__init__(message, offset=offset)
        self.status = status


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """(media type in lower case, {parameter: value}) of a Content-Type or Accept item.

    Parameters follow RFC 9110 §5.6.6: ``token=token`` or ``token="quoted string"``;
    names are case-insensitive, values are kept as written.
    """
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        if i >= n:
            break
        m = _TOKEN.match(rest, i)
        if m is None or m.end() >= n or rest[m.end()] != "=":
            raise MultipartError(f"malformed media type parameters in {value!r}")
        name = m.group().lower()
        i = m.end() + 1
        if i < n and rest[i] == '"':
            i += 1
            chars = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise MultipartError(f"unterminated quoted string in {value!r}")
            i += 1
            params[name] = "".join(chars)
        else:
            j = i
            while j < n and rest[j] not in " \t;":
                j += 1
            params[name] = rest[i:j]
            i = j
    return media.strip().lower(), params


def boundary_of(content_type: str | None, *, expect: str = "multipart/related") -> str:
    """The boundary of a multipart Content-Type, checked (RFC 2046 §5.1.1)."""
    if not content_type:
        raise MultipartError("no Content-Type: a multipart/related body is required",
                             status=415)
    media, params = parse_content_type(content_type)
    if media != expect:
        raise MultipartError(f"Content-Type {media!r} is not {expect}", status=415)
    boundary = params.get("boundary")
    if not boundary or not _BCHARS.match(boundary):
        raise MultipartError(f"Content-Type {content_type!r} has no valid boundary "
                             "(RFC 2046 §5.1.1)")
    return boundary


def make_boundary() -> str:
    return "dicomfast-" + secrets.token_hex(16)


@dataclass
class PartStart:
    headers: dict[str, str]   # names in lower case


@dataclass
class PartData:
    data: bytes


@dataclass
class PartEnd:
    size: int


_PREAMBLE, _AFTER_BOUNDARY, _HEADERS, _BODY, _EPILOGUE = range(5)


class MultipartParser:
    """Incremental parser of one multipart body.

    ``feed(data)`` returns a list of :class:`PartStart`, :class:`PartData` and
    :class:`PartEnd` events; ``close()`` checks the body ended with its closing
    delimiter. The first delimiter may open the body without a leading CRLF
    (RFC 2046 §5.1.1); data before it (the preamble) and after the closing one
    (the epilogue) are ignored, within the size limit.
    """

    def __init__(self, boundary: str, *, max_part_size: int = 1 << 30,
                 max_parts: int = 10000, max_header_size: int = 16384,
                 max_body_size: int | None = None):
        self.delimiter = b"\r\n--" + boundary.encode("ascii")
        self.max_part_size = max_part_size
        self.max_parts = max_parts
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self._buf = bytearray(b"\r\n")  # so a delimiter at offset 0 is found like the others
        self._state = _PREAMBLE
        self._offset = -2               # body offset of _buf[0]
        self._received = 0
        self._parts = 0
        self._part_size = 0
        self._declared: int | None = None

    @property
    def parts(self) -> int:
        return self._parts

    def _fail(self, message: str, status: int = 400) -> MultipartError:
        return MultipartError(message, status=status, offset=max(self._offset, 0))

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._offset += n

    def feed(self, data: bytes) -> list[PartStart | PartData | PartEnd]:
        self._received += len(data)
        if self.max_body_size is not None and self._received > self.max_body_size:
            raise self._fail(f"body exceeds {self.max_body_size} bytes", 413)
        self._buf += data
        events: list[PartStart | PartData | PartEnd] = []
        while True:
            before = (self._state, len(self._buf))
            self._step(events)
            if (self._state, len(self._buf)) == before:
                return events

    def _step(self, events: list) -> None:
        buf, delim = self._buf, self.delimiter
        if self._state == _PREAMBLE:
            at = buf.find(delim)
            if at < 0:
                keep = len(delim) - 1
                if len(buf) > keep:
                    self._consume(len(buf) - keep)
                return
            self._consume(at + len(delim))
            self._state = _AFTER_BOUNDARY
        elif self._state == _AFTER_BOUNDARY:
            # "--" closes the body; else optional transport padding, then CRLF.
            if len(buf) < 2:
                return
            if buf[:2] == b"--":
                self._consume(2)
                self._state = _EPILOGUE
                return
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > 256:
                    raise self._fail("no CRLF after a boundary delimiter (RFC 2046 §5.1.1)")
                return
            if buf[:end].strip(b" \t"):
                raise self._fail("unexpected bytes after a boundary delimiter")
            self._consume(end + 2)
            self._state = _HEADERS
        elif self._state == _HEADERS:
            if buf[:2] == b"\r\n":  # a part with no headers
                head, end = b"", 2
            else:
                at = buf.find(b"\r\n\r\n")
                if at < 0:
                    if _NOT_HEADER.search(buf):
                        # Binary where header lines should be: a malformed body, not a
                        # large one (RFC 5322 §2.2 header fields are printable ASCII).
                        raise self._fail("part headers hold bytes that are not header text")
                    if len(buf) > self.max_header_size:
                        raise self._fail(f"part headers longer than {self.max_header_size} "
                                         "bytes", 413)
                    return
                head, end = bytes(buf[:at]), at + 4
            if _NOT_HEADER.search(head):
                raise self._fail("part headers hold bytes that are not header text")
            if end > self.max_header_size:
                raise self._fail(f"part headers longer than {self.max_header_size} bytes", 413)
            headers = self._headers(head)
            self._parts += 1
            if self._parts > self.max_parts:
                raise self._fail(f"more than {self.max_parts} parts", 413)
            self._declared = None
            length = headers.get("content-length")
            if length is not None:
                if not length.strip().isdigit():
                    raise self._fail(f"part Content-Length {length!r} is not a number")
                self._declared = int(length)
                if self._declared > self.max_part_size:
                    raise self._fail(f"part declares {self._declared} bytes, more than the "
                                     f"{self.max_part_size} allowed", 413)
            self._consume(end)
            self._part_size = 0
            self._state = _BODY
            events.append(PartStart(headers))
        elif self._state == _BODY:
            at = buf.find(delim)
            if at < 0:
                # Hold back what could be the start of a delimiter.
                safe = len(buf) - (len(delim) - 1)
                if safe > 0:
                    self._emit(events, bytes(buf[:safe]))
                    self._consume(safe)
                return
            if at:
                self._emit(events, bytes(buf[:at]))
            self._consume(at + len(delim))
            if self._declared is not None and self._declared != self._part_size:
                raise self._fail(f"part declares {self._declared} bytes but holds "
                                 f"{self._part_size}")
            events.append(PartEnd(self._part_size))
            self._state = _AFTER_BOUNDARY
        elif self._state == _EPILOGUE:
            if buf:
                self._consume(len(buf))

    def _emit(self, events: list, data: bytes) -> None:
        self._part_size += len(data)
        if self._part_size > self.max_part_size:
            raise self._fail(f"a part is larger than {self.max_part_size} bytes", 413)
        if events and isinstance(events[-1], PartData):
            events[-1].data += data
        else:
            events.append(PartData(data))

    def _headers(self, head: bytes) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not head:
            return headers
        try:
            text = head.decode("ascii")
        except UnicodeDecodeError:
            raise self._fail("part headers are not ASCII") from None
        for line in text.split("\r\n"):
            if line[:1] in (" ", "\t") and headers:  # obsolete line folding
                last = next(reversed(headers))
                headers[last] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN.fullmatch(name):
                raise self._fail(f"malformed part header line {line[:80]!r}")
            headers[name.lower()] = value.strip()
        return headers

    def close(self) -> None:
        """Check that the body was complete: at least one part and the closing delimiter."""
        if self._state != _EPILOGUE:
            where = "inside a part" if self._state in (_HEADERS, _BODY) else "before any part"
            raise self._fail(f"the body ends {where}, without the closing delimiter", 400)
        if self._parts == 0:
            raise self._fail("a multipart body with no parts")


@dataclass
class Part:
    """One whole part, as :func:`iter_multipart` gives it."""

    headers: dict[str, str]
    data: bytes = b""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def iter_multipart(chunks: Iterable[bytes], boundary: str, **limits: int) -> Iterator[Part]:
    """The parts of a body given as chunks, each held whole (for small bodies and tests)."""
    parser = MultipartParser(boundary, **limits)
    current: Part | None = None
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, PartStart):
                current = Part(event.headers)
            elif isinstance(event, PartData):
                assert current is not None
                current.data += event.data
            else:
                assert current is not None
                yield current
                current = None
    parser.close()


def part_header(boundary: str, content_type: str, *, first: bool,
                length: int | None = None, extra: dict[str, str] | None = None) -> bytes:
    """The delimiter and headers that open a part (RFC 2046 §5.1.1)."""
    lines = [("" if first else "\r\n") + f"--{boundary}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def write_multipart(parts: Iterable[tuple[str, bytes]], boundary: str) -> Iterator[bytes]:
    """Chunks of a multipart body of (content type, bytes) parts."""
    first = True
    for content_type, data in parts:
        yield part_header(boundary, content_type, first=first, length=len(data))
        yield data
        first = False
    yield closing(boundary)


def file_parts(paths: Iterable[str | os.PathLike], boundary: str,
               content_type: str = "application/dicom", chunk_size: int = 1 << 20
               ) -> Iterator[bytes]:
    """Chunks of a multipart body with one part per file, read in `chunk_size` pieces."""
    first = True
    for path in paths:
        size = os.path.getsize(path)
        yield part_header(boundary, content_type, first=first, length=size)
        first = False
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk
    yield closing(boundary)
