"""TCP (and TLS) transport for the upper layer: the only socket code in dicomfast.

One :class:`Connection` per TCP connection, an asyncio protocol that cuts the
byte stream into whole PDUs with :class:`~dicomfast.net.pdu.Framer` and hands each
to its upper layer object. Every PDU is written with one ``write`` call and
TCP_NODELAY is set: a DIMSE exchange is request/response, and Nagle's algorithm
would hold each small last segment back for the peer's delayed ACK.

TLS (PS3.15 Annex B.1, "Secure Transport Connection Profile"; port 2762 is the
registered "dicom-tls" port) is enabled by passing an :class:`ssl.SSLContext`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as _ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from dicomfast._native import _pdu
from dicomfast.net.pdu import DEFAULT_MAX_OTHER_LEN, Framer, PDUDecodeError

#: The IANA port for DICOM over TLS (PS3.15 §B.1); plain DICOM uses 104 or any other.
DICOM_TLS_PORT = 2762

_os_sendfile = getattr(os, "sendfile", None)

# Bytes queued in the transport before writers wait (pause_writing): enough to keep
# a loopback or LAN link busy with the largest PDUs we build, bounded per connection.
_WRITE_HIGH = 4 << 20
_WRITE_LOW = 1 << 20


@dataclass(frozen=True)
class FileRegion:
    """Message data that stays in a file until it is sent: `length` bytes of `path`
    from `offset`. The kernel copies them from the page cache to the socket
    (sendfile(2)); they never pass through a Python buffer."""
    path: str
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length

    def open(self) -> BinaryIO:
        # Unbuffered: only its descriptor is used (sendfile), and a raw file costs
        # fewer system calls to open.
        return open(self.path, "rb", buffering=0)


class Upper(Protocol):
    """What a connection reports to (an association)."""

    def connection_made(self, conn: Connection) -> None: ...
    def pdu_received(self, raw: bytes) -> None: ...
    def pdu_error(self, exc: PDUDecodeError) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...


# Reads go into a scratch buffer of this size and through the framer, except the
# body of a PDU of at least _DIRECT bytes, which the kernel copies straight into
# that PDU's own buffer (one copy of each data set byte between socket and disk).
# After such a PDU the next read takes only _PEEK bytes: with a peer that sends
# large PDUs, what follows is a short command PDU and the head of the next large
# one, which then arrives in place too, instead of its first quarter megabyte
# being copied from the scratch buffer twice (into the framer, then into its own).
_SCRATCH = 256 << 10
_DIRECT = 64 << 10
_PEEK = 16 << 10
# Large P-DATA buffers kept for reuse, up to this many bytes and this many buffers
# per process (each request looks through them all).
_POOL_BYTES = 32 << 20
_POOL_BUFFERS = 64


class ReceiveBuffers:
    """Buffers for large P-DATA-TF PDUs received in place, used again once nothing
    refers to them any more.

    A fresh buffer of half a megabyte costs 128 page faults as the kernel copies
    into it, and the allocator hands freed ones back to the system soon after: per
    received object, that was about a third of the receiving thread's kernel time. A
    buffer is only ever handed out as a memoryview, so everything that refers to
    it from outside (the data set's views, a file job's chunks, C code holding a
    Py_buffer) keeps that view's export of it alive, and it is free again once it
    has no export left. (A view's ``.obj`` would hand out the bytearray itself:
    nothing here takes it.)
    """

    def __init__(self, max_bytes: int = _POOL_BYTES, max_buffers: int = _POOL_BUFFERS) -> None:
        self.max_bytes = max_bytes
        self.max_buffers = max_buffers
        self._bufs: list[bytearray] = []
        self._bytes = 0
        self._lock = threading.Lock()   # event loops in several threads may share it

    def take(self, n: int) -> memoryview:
        """A writable view of `n` bytes whose contents are not set."""
        with self._lock:
            bufs = self._bufs
            spare = -1
            for i in range(len(bufs)):
                if not _pdu.buffer_exports(bufs[i]):
                    size = len(bufs[i])
                    if n <= size <= n + (n >> 2):   # at most a quarter unused
                        return memoryview(bufs[i])[:n]
                    spare = i
            buf = _pdu.unset_bytearray(n)
            if spare >= 0 and (self._bytes + n > self.max_bytes
                               or len(bufs) >= self.max_buffers):
                self._bytes -= len(bufs[spare])   # an idle one of another size makes room
                del bufs[spare]
            if self._bytes + n <= self.max_bytes and len(bufs) < self.max_buffers:
                bufs.append(buf)
                self._bytes += n
            return memoryview(buf)[:n]


#: Shared by every connection of the process.
RECEIVE_BUFFERS = ReceiveBuffers()


class Connection(asyncio.BufferedProtocol):
    """One transport connection carrying one association (PS3.8 §9.1.1)."""

    def __init__(self, upper: Upper, max_pdata_len: int,
                 max_other_len: int = DEFAULT_MAX_OTHER_LEN, strict: bool = False):
        self.upper = upper
        self.framer = Framer(max_pdata_len, max_other_len, strict)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.last_received = time.monotonic()
        self.peer: tuple[str, int] | None = None
        self._writable: asyncio.Event | None = None
        self._discard = False
        self._scratch = memoryview(bytearray(_SCRATCH))
        self._pdu: Any = None  # a large PDU being received in place (a writable buffer)
        self._filled = 0
        self._peek = False   # the last PDU was large: read only a little next

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None
        transport.set_write_buffer_limits(high=_WRITE_HIGH, low=_WRITE_LOW)
        self._writable = asyncio.Event()
        self._writable.set()
        self.upper.connection_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._pdu is not None:
            return memoryview(self._pdu)[self._filled:]
        return self._scratch[:_PEEK] if self._peek else self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        self.last_received = time.monotonic()
        if self._discard:
            return
        if self._pdu is not None:
            self._filled += nbytes
            if self._filled < len(self._pdu):
                return
            pdu, self._pdu = self._pdu, None
            self._peek = True
            self._deliver(pdu)
            return
        self._frame(self._scratch[:nbytes])

    def _frame(self, data: Any) -> None:
        """Bytes read into the scratch buffer: through the framer, which copies them."""
        framer = self.framer
        framer.feed(data)
        try:
            while not self.closed:
                raw = framer.next()
                if raw is None:
                    break
                self.upper.pdu_received(raw)
            else:
                return
        except PDUDecodeError as exc:
            self.upper.pdu_error(exc)
            return
        partial = framer.take_partial(_DIRECT, RECEIVE_BUFFERS.take)
        if partial is not None:
            self._pdu, self._filled = partial
        elif len(data) >= _PEEK:
            self._peek = False   # small PDUs fill reads: as many at once as the scratch holds

    def _deliver(self, pdu: bytearray) -> None:
        try:
            self.upper.pdu_received(pdu)
        except PDUDecodeError as exc:
            self.upper.pdu_error(exc)

    def eof_received(self) -> bool | None:
        return None  # close our side too: a half-open association is of no use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._writable is not None:
            self._writable.set()  # wake writers; they see `closed`
        self.upper.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._writable is not None:
            self._writable.clear()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set()

    # -- for the upper layer -----------------------------------------------------------
    def write(self, pdu: bytes) -> None:
        """Queue one whole PDU (one write call, so it leaves in as few segments as the
        kernel can make)."""
        if not self.closed and self.transport is not None:
            self.transport.write(pdu)

    @property
    def is_tls(self) -> bool:
        return self.transport is not None and \
            self.transport.get_extra_info("sslcontext") is not None

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> int:
        """Send `count` bytes of `file` from `offset` after what is queued, by
        sendfile(2) where the transport allows it (plain TCP on Linux and the BSDs),
        else read and written by asyncio. Returns the bytes sent: fewer when the
        file ended early."""
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        sent, ended = self._sendfile_now(file, offset, count)
        if sent == count or ended:
            return sent
        loop = asyncio.get_running_loop()
        return sent + await loop.sendfile(self.transport, file, offset + sent, count - sent)

    def _sendfile_now(self, file: BinaryIO, offset: int, count: int) -> tuple[int, bool]:
        """As much of the region as the socket takes right now: (bytes sent, whether
        the file ended). With nothing queued in the transport, the socket is ours
        until the next await, so no other write can come between. This is usually
        the whole region, and saves asyncio's sendfile its set-up: pausing and
        resuming reading and a wait for an empty buffer, about a fifth of a storage
        SCU's event loop time per object."""
        transport = self.transport
        if (_os_sendfile is None or self.is_tls or transport is None
                or transport.is_closing() or transport.get_write_buffer_size()):
            return 0, False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return 0, False
        out, src = sock.fileno(), file.fileno()
        sent = 0
        while sent < count:
            try:
                n = _os_sendfile(out, src, offset + sent, count - sent)
            except (BlockingIOError, InterruptedError):
                return sent, False
            except OSError:
                return sent, False   # asyncio's sendfile meets it again and reports it
            if n == 0:
                return sent, True
            sent += n
        return sent, False

    @property
    def must_wait(self) -> bool:
        return self._writable is not None and not self._writable.is_set()

    async def drain(self) -> None:
        """Wait while the transport's buffer is above its high-water mark."""
        if self._writable is not None and not self._writable.is_set():
            await self._writable.wait()

    def close(self) -> None:
        """Close after the queued bytes are sent (PS3.8: the A-RELEASE-RP or A-ABORT
        goes out before the connection closes)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once, queued bytes included."""
        if self.transport is not None:
            self.transport.abort()

    def discard_input(self) -> None:
        """Drop what is buffered and everything that arrives from now on (after a
        protocol error, while waiting for the peer to close)."""
        self._discard = True
        self.framer = Framer()
        self._pdu = None

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()


async def connect(host: str, port: int, upper: Upper, *, max_pdata_len: int,
                  timeout: float | None, ssl: _ssl.SSLContext | None = None,
                  server_hostname: str | None = None, strict: bool = False) -> Connection:
    """Open a transport connection (PS3.8 §9.1.2: TRANSPORT CONNECT request)."""
    loop = asyncio.get_running_loop()
    extra: dict[str, Any] = {}
    if ssl is not None:
        extra["ssl"] = ssl
        extra["server_hostname"] = server_hostname or host
    _transport, conn = await asyncio.wait_for(
        loop.create_connection(lambda: Connection(upper, max_pdata_len, strict=strict),
                               host, port, **extra), timeout)
    return conn


async def serve(host: str | None, port: int, factory: Callable[[], Upper], *,
                max_pdata_len: int, ssl: _ssl.SSLContext | None = None,
                strict: bool = False, backlog: int = 128) -> asyncio.AbstractServer:
    """Listen for transport connections; each gets a fresh upper layer from `factory`."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: Connection(factory(), max_pdata_len, strict=strict), host, port, ssl=ssl,
        reuse_address=True, backlog=backlog)
