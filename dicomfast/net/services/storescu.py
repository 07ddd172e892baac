"""Storage SCU (PS3.4 Annex B): many objects over one association.

Presentation contexts are chosen from the objects themselves: per SOP class, one
context offering explicit and implicit VR little endian (PS3.5 §10.1 makes implicit
VR LE the one every SCP accepts) and one per other transfer syntax the objects are
in. An object goes as stored when its own syntax was accepted; otherwise it is
re-encoded in an accepted uncompressed syntax. Requests are pipelined up to the
asynchronous operations window the SCP granted (PS3.7 §D.3.3.3).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DicomfastError, InvalidDicomError
from dicomfast.net import dimse as D
from dicomfast.net.association import Association
from dicomfast.net.transport import FileRegion
from dicomfast.part10 import read
from dicomfast.writer import encode_dataset

try:
    from dicomfast._native import _fileio  # (a package import: the layering linter sees it)

    read_heads = _fileio.read_heads
except ImportError:  # a build without it: every file is read whole
    def read_heads(paths: list[Any], limit: int) -> list[Any]:
        return [None] * len(paths)

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
_NATIVE = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)
#: Bytes read from each file for its File Meta when the rest is sent from the file.
HEAD = 16 << 10
# Files whose heads one worker thread reads in one go, ahead of sending them.
_LOAD_BATCH = 16
# Sending from the file pays per PDU (a header write, then a sendfile); below this
# much data per PDU (DCMTK's default 16 KiB, say) copying through memory is cheaper.
_ZERO_COPY_MIN_PDV = 256 << 10
# Explicit VR with a 4-byte length (PS3.5 Table 7.1-1).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}


@dataclass
class StoreResult:
    """The outcome for one object: ``status`` is the C-STORE-RSP status, or None when
    no response came (then ``error`` says why)."""
    source: str
    sop_instance_uid: str
    status: int | None
    error: str | None = None
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and D.status_category(self.status) in ("Success",
                                                                                 "Warning")


@dataclass
class Outgoing:
    """One object to send: its UIDs, transfer syntax and data set bytes (no File Meta)."""
    source: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    data: Any                       # bytes-like: the encoded data set
    dataset: Dataset | None = None  # when it came as a Dataset (or must be re-encoded)


def split_part10(data: Any) -> tuple[int, dict[int, bytes]] | None:
    """(offset of the data set, {element: value}) of a Part 10 file's File Meta group
    (PS3.10 §7.1: explicit VR LE), or None when `data` has no File Meta."""
    view = memoryview(data)
    if bytes(view[128:132]) == b"DICM":
        pos = 132
    elif bytes(view[0:2]) == b"\x02\x00" and bytes(view[4:6]).isalpha():
        pos = 0
    else:
        return None
    meta: dict[int, bytes] = {}
    n = len(view)
    while pos + 8 <= n:
        group, elem = struct.unpack_from("<HH", view, pos)
        if group != 2:
            break
        vr = bytes(view[pos + 4:pos + 6])
        if vr in _LONG_VRS:
            if pos + 12 > n:
                return None
            length = struct.unpack_from("<I", view, pos + 8)[0]
            head = 12
        else:
            length = struct.unpack_from("<H", view, pos + 6)[0]
            head = 8
        if pos + head + length > n:
            return None
        meta[elem] = bytes(view[pos + head:pos + head + length])
        pos += head + length
    return pos, meta


def _uid(raw: bytes | None) -> str:
    return raw.decode("ascii", "replace").rstrip("\0 ") if raw else ""


def load(source: str | os.PathLike | Dataset) -> Outgoing:
    """An object to send, from a Part 10 file (read whole) or a Dataset; see
    :func:`load_many` for objects whose data set stays in its file."""
    if isinstance(source, Dataset):
        ts = getattr(source, "transfer_syntax", None)
        uid = ts.uid if ts is not None else EXPLICIT_VR_LE
        return Outgoing("<dataset>", str(source.SOPClassUID), str(source.SOPInstanceUID),
                        uid, None, source)
    path = os.fspath(source)
    with open(path, "rb") as f:
        data = f.read()
    split = split_part10(data)
    if split is not None:
        offset, meta = split
        sop_class, sop_instance, ts = _uid(meta.get(2)), _uid(meta.get(3)), _uid(meta.get(0x10))
        if sop_class and sop_instance and ts:
            return Outgoing(path, sop_class, sop_instance, ts, memoryview(data)[offset:])
    # No usable File Meta: read the data set and send it re-encoded.
    ds = read(data, force=True)
    sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        raise InvalidDicomError(
            "not a DICOM object: no File Meta, and no SOP Class and SOP Instance UID in "
            "the data set (PS3.7 §9.3.1.1: a C-STORE names both)")
    implicit = bool(getattr(ds, "is_implicit_VR", False))
    return Outgoing(path, str(sop_class), str(sop_instance),
                    IMPLICIT_VR_LE if implicit else EXPLICIT_VR_LE, None, ds)


def load_many(sources: list[Any], *, zero_copy: bool = False) -> list[Outgoing | Exception]:
    """load() of each source, or the exception that stopped it. With `zero_copy`, a
    data set larger than :data:`HEAD` stays in its file (a
    :class:`~dicomfast.net.transport.FileRegion` the kernel sends from the page
    cache): only the heads with the File Meta are read, all in one native batch (no
    GIL hand-over per file), so that one trip to a worker thread serves many."""
    heads: list[Any] = [None] * len(sources)
    if zero_copy:
        paths = [i for i, src in enumerate(sources) if not isinstance(src, Dataset)]
        if paths:
            got = read_heads([os.fspath(sources[i]) for i in paths], HEAD)
            for i, head in zip(paths, got, strict=True):
                heads[i] = head
    out: list[Outgoing | Exception] = []
    for src, head in zip(sources, heads, strict=True):
        try:
            if isinstance(head, OSError):
                raise head
            item = _region_from_head(os.fspath(src), head) if head is not None else None
            out.append(item if item is not None else load(src))
        except Exception as exc:  # reported per object by the caller
            out.append(exc)
    return out


def _region_from_head(path: str, got: tuple[bytes, int] | None) -> Outgoing | None:
    """The object of a file whose data set is sent from the file, from its head
    (`got`: read_heads' result), or None when it is small, has no usable File Meta,
    or its File Meta does not fit in the head."""
    if got is None:
        return None
    head, size = got
    if size <= len(head):
        return None  # all read already: sent from memory
    split = split_part10(head)
    if split is None or split[0] + 8 > len(head):
        return None
    offset, meta = split
    sop_class, sop_instance, ts = _uid(meta.get(2)), _uid(meta.get(3)), _uid(meta.get(0x10))
    if not (sop_class and sop_instance and ts):
        return None
    return Outgoing(path, sop_class, sop_instance, ts, FileRegion(path, offset, size - offset))


def expand(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Files, and the files under folders (recursively, sorted, hidden ones skipped)."""
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(str(f) for f in sorted(path.rglob("*"))
                       if f.is_file() and not f.name.startswith("."))
        else:
            out.append(str(path))
    return out


def contexts_for(items: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Presentation contexts for (SOP class, transfer syntax) pairs. Each SOP class gets
    one context offering explicit and implicit VR little endian (the object's own one
    first), and one context of its own for every other syntax, proposed alone: an
    acceptor that picks by its own preference order could otherwise choose an
    uncompressed syntax for a compressed object and force re-encoding."""
    native: dict[str, list[str]] = {}
    others: dict[tuple[str, str], None] = {}
    for sop_class, ts in items:
        first = native.setdefault(sop_class, [])
        if ts in _NATIVE:
            if ts not in first:
                first.append(ts)
        else:
            others[(sop_class, ts)] = None
    out = []
    for sop_class, seen in native.items():
        order = seen + [t for t in _NATIVE if t not in seen]
        out.append((sop_class, order))
    for sop_class, ts in others:
        out.append((sop_class, [ts]))
    return out


def reencode(item: Outgoing, target: str) -> bytes:
    """The data set in `target` (an uncompressed syntax), decompressing pixel data
    through the writer's transcoding when the object is compressed."""
    ds = item.dataset
    if ds is None:
        # Read the file again, File Meta included, so the reader knows its syntax.
        with open(item.source, "rb") as f:
            ds = read(f.read())
    current = getattr(ds, "transfer_syntax", None)
    if current is not None and current.uid != target and current.is_encapsulated \
            and "PixelData" in ds:
        data = ds.to_bytes(transfer_syntax=target)
        split = split_part10(data)
        assert split is not None
        return data[split[0]:]
    return encode_dataset(ds, target)


def choose(assoc: Association, item: Outgoing) -> tuple[int, bool] | None:
    """(context ID, needs re-encoding) for an object, or None when nothing fits."""
    fallback = None
    for ctx in assoc.contexts.values():
        if ctx.abstract_syntax != item.sop_class_uid:
            continue
        if ctx.transfer_syntax == item.transfer_syntax:
            return ctx.id, item.data is None
        if ctx.transfer_syntax in _NATIVE and (fallback is None or
                                               ctx.transfer_syntax == EXPLICIT_VR_LE):
            fallback = ctx.id
    return (fallback, True) if fallback is not None else None


async def send_all(assoc: Association, sources: Iterator[Any], *,
                   on_result: Callable[[StoreResult], None] | None = None,
                   priority: int = D.PRIORITY_MEDIUM,
                   move_originator: tuple[str, int] | None = None) -> list[StoreResult]:
    """C-STORE every source over `assoc`, keeping up to the negotiated window of
    requests outstanding; the next files are read while these are sent.
    Results come back in the order of `sources`; `on_result` sees each as it completes.
    `move_originator`: (AE title, message ID) of the C-MOVE these stores serve, put
    in each request (PS3.7 §9.3.1.1, Move Originator AE Title / Message ID)."""
    origin_ae, origin_id = move_originator if move_originator is not None else (None, None)
    loop = asyncio.get_running_loop()
    results: list[tuple[int, StoreResult]] = []
    window = max(assoc.async_window, 1)
    outstanding = 0
    slot_free: asyncio.Future | None = None   # awaited while the window is full

    def record(index: int, res: StoreResult) -> None:
        results.append((index, res))
        if on_result is not None:
            on_result(res)

    def settled(index: int, res: StoreResult, fut: asyncio.Future) -> None:
        nonlocal outstanding
        exc = fut.exception() if not fut.cancelled() else AssociationError("cancelled")
        if exc is not None:
            res.error = str(exc)
        else:
            cmd, _data = fut.result()
            status = cmd.get(D.T_STATUS)
            res.status = status.value if status is not None else None
            if res.status is None:
                res.error = "C-STORE-RSP without a status"
            else:
                comment = cmd.get(D.T_ERROR_COMMENT)
                if comment is not None and not res.ok:
                    res.error = str(comment.value)
        record(index, res)
        outstanding -= 1
        if slot_free is not None and not slot_free.done():
            slot_free.set_result(None)

    async def wait_below(limit: int) -> None:
        nonlocal slot_free
        while outstanding >= limit:
            slot_free = loop.create_future()
            await slot_free

    conn = assoc.conn
    zero_copy = conn is not None and not conn.is_tls and _ZERO_COPY_MIN_PDV <= \
        D.max_pdv_value(assoc.peer_max_pdu, assoc.settings.max_send_pdu)
    # Objects sent from their files are loaded in batches (only their heads are
    # read); objects read whole, one at a time, so that few are in memory at once.
    batch_size = _LOAD_BATCH if zero_copy else 1

    def load_batch(srcs: list[Any]) -> list[Outgoing | StoreResult]:
        out: list[Outgoing | StoreResult] = []
        for src, item in zip(srcs, load_many(srcs, zero_copy=zero_copy), strict=True):
            if isinstance(item, (OSError, DicomfastError, AttributeError, KeyError,
                                 ValueError)):
                name = str(src) if not isinstance(src, Dataset) else "<dataset>"
                out.append(StoreResult(name, "", None, f"cannot read: {item}"))
            elif isinstance(item, Exception):
                raise item
            else:
                out.append(item)
        return out

    it = iter(sources)

    def next_batch() -> asyncio.Future | None:
        srcs = list(itertools.islice(it, batch_size))
        return loop.run_in_executor(None, load_batch, srcs) if srcs else None

    async def send_one(item: Outgoing | StoreResult, index: int) -> None:
        nonlocal outstanding
        if isinstance(item, StoreResult):
            record(index, item)
            return
        if assoc.abort_reason is not None:
            record(index, StoreResult(item.source, item.sop_instance_uid, None,
                                      str(assoc.abort_reason)))
            return
        chosen = choose(assoc, item)
        if chosen is None:
            record(index, StoreResult(
                item.source, item.sop_instance_uid, None,
                f"no accepted presentation context for {item.sop_class_uid} in "
                f"{item.transfer_syntax} or an uncompressed syntax"))
            return
        ctx_id, convert = chosen
        try:
            data = reencode(item, assoc.contexts[ctx_id].transfer_syntax) if convert \
                else item.data
        except (DicomfastError, OSError, ValueError) as exc:
            record(index, StoreResult(item.source, item.sop_instance_uid, None,
                                      f"cannot re-encode: {exc}"))
            return
        res = StoreResult(item.source, item.sop_instance_uid, None, size=len(data))
        rq = D.store_rq(assoc.next_message_id(), item.sop_class_uid, item.sop_instance_uid,
                        priority, origin_ae, origin_id)
        try:
            fut = await assoc.send_request(ctx_id, rq, data)
        except AssociationError as exc:
            res.error = str(exc)
            record(index, res)
            return
        del data, item
        outstanding += 1
        assoc.when_answered(fut, functools.partial(settled, index, res))
        await wait_below(window)

    index = -1
    pending_load = next_batch()
    while pending_load is not None:
        batch = await pending_load
        pending_load = next_batch()   # the next batch is read while this one is sent
        for item in batch:
            index += 1
            await send_one(item, index)
    await wait_below(1)
    results.sort(key=lambda pair: pair[0])
    return [res for _, res in results]

