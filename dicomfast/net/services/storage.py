"""The Storage Service Class (PS3.4 Annex B) and Verification (PS3.4 Annex A), SCP side:
an acceptor that never acknowledges an object before it is safely on disk.

Each received data set is streamed, as its P-DATA fragments arrive, into a
temporary file in the destination folder behind a Part 10 header (PS3.10 §7.1)
built from the C-STORE-RQ and the presentation context. On Linux that file has no
name until it is whole (O_TMPFILE, see unnamed.py), so a killed process leaves
nothing behind; elsewhere it is a hidden ``.dicomfast-*.part``. When the last
fragment is in, the committer thread (durable.py) makes it durable: fsync the
file, give it its name ``DIR/<SOPInstanceUID>.dcm`` atomically (link or rename),
fsync the folder; only then is C-STORE-RSP Success sent. The committer takes every
object complete at that moment as one batch (group commit), while the next ones
are received, so many associations, or one with an asynchronous operations window,
keep the disk busy without any acknowledgement getting ahead of its data.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.net import dimse as D
from dicomfast.net.association import AcceptedContext, Association
from dicomfast.net.pdu import check_ae_title
from dicomfast.net.services.durable import (
    Committer,
    Job,
    close_quietly,
    create_file,
    unlink_quietly,
    write_all,
)
from dicomfast.writer import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

VERIFICATION = "1.2.840.10008.1.1"
#: Only digits and dots, no empty component (so never '.', '..' or a separator), at
#: most 64 characters (PS3.5 §9.1). Leading zeros are tolerated: real files have them.
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")
_FLUSH = 1 << 20     # hand data to a writer thread in runs of this many bytes


def valid_uid(uid: Any) -> bool:
    return isinstance(uid, str) and len(uid) <= 64 and _UID.match(uid) is not None


@dataclass
class StoredObject:
    """What :class:`StorageSCP` tells ``on_store`` about an object it has made durable."""
    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    calling_ae: str
    called_ae: str
    size: int

    def dataset(self) -> Dataset:
        from dicomfast.part10 import read

        return read(self.path)


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str,
              source_ae: str | None = None) -> bytes:
    """Preamble, 'DICM' and the File Meta group (PS3.10 §7.1), explicit VR LE."""
    def el(tag: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
        if len(value) & 1:
            value += pad
        if vr == b"OB":
            return struct.pack("<HH2sHI", 2, tag, vr, 0, len(value)) + value
        return struct.pack("<HH2sH", 2, tag, vr, len(value)) + value

    body = b"".join((
        el(0x0001, b"OB", b"\x00\x01", b"\0"),
        el(0x0002, b"UI", sop_class.encode("ascii"), b"\0"),
        el(0x0003, b"UI", sop_instance.encode("ascii"), b"\0"),
        el(0x0010, b"UI", transfer_syntax.encode("ascii"), b"\0"),
        el(0x0012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\0"),
        el(0x0013, b"SH", IMPLEMENTATION_VERSION_NAME.encode("ascii"), b" "),
        el(0x0016, b"AE", source_ae.encode("ascii"), b" ") if source_ae else b"",
    ))
    return (bytes(128) + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(body)) + body)


class _Discard:
    """Drains a data set that will not be stored, then answers with a failure."""

    def __init__(self, finish: Callable[[], None]):
        self._finish = finish

    def write(self, data: memoryview) -> None:
        pass

    def finish(self) -> None:
        self._finish()

    def abort(self) -> None:
        pass


# Bytes handed to worker threads but not yet written, per object: above HIGH the
# association stops reading from the socket until the disk catches up to LOW, so a
# slow disk slows the sender instead of filling memory.
_BACKLOG_HIGH = 64 << 20
_BACKLOG_LOW = 16 << 20


class _StoreSink:
    """One C-STORE's data set on its way to disk.

    No file system work runs on the event loop, which must keep receiving: a large
    object's data goes to worker threads a megabyte at a time (a create or write
    can wait on the file system while another object is being synced), written at
    explicit offsets (pwritev), so its chunks can land in any order. The rest of it,
    a small object whole, goes to the committer once all the chunks are written.
    """

    def __init__(self, scp: StorageSCP, assoc: Association, ctx: AcceptedContext,
                 cmd: Dataset, sop_class: str, sop_instance: str):
        self.scp, self.assoc, self.ctx, self.cmd = scp, assoc, ctx, cmd
        self.sop_class, self.sop_instance = sop_class, sop_instance
        self.failed: BaseException | None = None
        self.aborted = False
        self.committing = False
        self.size = 0
        self.fd = -1
        self.tmp = ""
        self.lock = threading.Lock()   # guards fd/tmp creation and removal
        try:
            source = check_ae_title(assoc.calling_ae)
        except ValueError:
            source = None  # not a title we can put in a file: leave it out
        head = file_meta(sop_class, sop_instance, ctx.transfer_syntax, source)
        self.pending: list[Any] = [head]
        self.pending_bytes = len(head)
        self.offset = 0           # file offset of the first pending byte
        self.backlog = 0          # bytes submitted to workers, not yet written
        self.flushes: list[asyncio.Future] = []
        self.paused = False

    # -- event loop side -------------------------------------------------------------
    def write(self, data: memoryview) -> None:
        # `data` views an immutable received PDU, so it can be written later as it is.
        if self.failed is not None:
            return
        self.size += len(data)
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes >= _FLUSH:
            self._submit()

    def _submit(self) -> None:
        chunks, n, offset = self.pending, self.pending_bytes, self.offset
        self.pending, self.pending_bytes = [], 0
        self.offset += n
        self.backlog += n
        loop = self.assoc.loop
        fut = loop.run_in_executor(self.scp.executor, self._write_chunks, chunks, offset)
        fut.add_done_callback(lambda _f: self._written(n))
        self.flushes.append(fut)
        if self.backlog > _BACKLOG_HIGH and not self.paused and self.assoc.conn is not None:
            self.paused = True
            self.assoc.conn.pause_reading()

    def _written(self, n: int) -> None:
        self.backlog -= n
        if self.paused and self.backlog < _BACKLOG_LOW and self.assoc.conn is not None:
            self.paused = False
            self.assoc.conn.resume_reading()

    def finish(self) -> None:
        if self.flushes:
            self.assoc.track(self.assoc.loop.create_task(self._finish_after_flushes()))
        else:
            self._commit()

    async def _finish_after_flushes(self) -> None:
        await asyncio.gather(*self.flushes, return_exceptions=True)
        self._commit()

    def _commit(self) -> None:
        """Hand the complete object to the committer; the answer goes out from its
        callback (no task per object: most objects are small and have no hook)."""
        if self.aborted:
            return
        if self.failed is not None:
            self._answer(D.OUT_OF_RESOURCES, f"cannot store: {_reason(self.failed)}")
            return
        # From here the committer owns the file: no worker thread touches it any more
        # (the flushes are done), and an abort no longer discards a complete object.
        self.committing = True
        job = Job(self.fd, self.pending, self.offset, self.sop_instance + ".dcm", self.tmp)
        self.fd, self.tmp, self.pending = -1, "", []
        loop = self.assoc.loop
        answered: asyncio.Future = loop.create_future()   # what a release waits for
        self.assoc.track(answered)

        def committed(job: Job) -> None:
            if job.error:
                self._answer(D.OUT_OF_RESOURCES, f"cannot store: {os.strerror(job.error)}")
            elif self.scp.on_store is not None:
                loop.create_task(self._run_hook(answered))
                return
            else:
                self._answer(D.SUCCESS, None)
            answered.set_result(None)

        self.scp.committer.submit(job, loop, committed)

    async def _run_hook(self, answered: asyncio.Future) -> None:
        try:
            status = await self.assoc.loop.run_in_executor(self.scp.executor, self._hook)
        except Exception as exc:  # the user's on_store hook
            self._answer(D.PROCESSING_FAILURE, f"{type(exc).__name__}: {exc}")
        else:
            self._answer(status, None)
        finally:
            answered.set_result(None)

    def _hook(self) -> int:
        """The user's on_store hook, in a worker thread, once the object is durable."""
        scp = self.scp
        obj = StoredObject(os.path.join(scp.output_dir, self.sop_instance + ".dcm"),
                           self.sop_class, self.sop_instance, self.ctx.transfer_syntax,
                           self.assoc.calling_ae, self.assoc.called_ae, self.size)
        status = scp.on_store(obj)  # type: ignore[misc]
        return D.SUCCESS if status is None else int(status)

    def _answer(self, status: int, comment: str | None) -> None:
        if self.assoc.abort_reason is None:
            self.assoc.respond(self.ctx.id, D.store_rsp(self.cmd, status, comment))

    def abort(self) -> None:
        """The association ended inside the data set: nothing is kept. (Once the
        data set is whole and being committed, the commit goes on.)"""
        if self.committing:
            return
        self.aborted = True
        self.pending = []
        self.scp.executor.submit(self._discard)
        if self.paused and self.assoc.conn is not None:
            self.paused = False
            self.assoc.conn.resume_reading()

    # -- worker threads --------------------------------------------------------------
    def _open(self) -> None:
        if self.fd < 0 and not self.aborted:
            self.fd, self.tmp = create_file(self.scp.output_dir,
                                            self.scp.committer.unnamed_files)

    def _write_chunks(self, chunks: list[Any], offset: int) -> None:
        if self.failed is not None or self.aborted:
            return
        try:
            # Under the lock: a concurrent discard must not close the descriptor (and
            # the number be reused for another file) while we write through it.
            with self.lock:
                self._open()
                if self.fd >= 0:
                    write_all(self.fd, chunks, offset)
        except OSError as exc:
            self.failed = exc
            self._discard()

    def _discard(self) -> None:
        with self.lock:
            self._discard_locked()

    def _discard_locked(self) -> None:
        close_quietly(self.fd)
        if self.tmp:
            unlink_quietly(os.path.join(self.scp.output_dir, self.tmp))
        self.fd, self.tmp = -1, ""


class StorageSCP:
    """Storage and Verification SCP behaviour, shared by all associations of a server.

    ``on_store(StoredObject) -> int | None`` is called in a worker thread once the
    object is durable at ``object.path``; it may move the file elsewhere, and its
    return value (None: Success) is the status the SCU gets. ``fsync=False`` trades
    the durability guarantee for speed (tests on tmpfs, caches). ``direct_io``
    (Linux): objects smaller than a megabyte go to the device past the page cache
    (O_DIRECT, see durable.py); False writes them through the page cache, where
    an ``on_store`` hook that reads each file back finds it in memory.
    """

    def __init__(self, output_dir: str | os.PathLike, *,
                 on_store: Callable[[StoredObject], int | None] | None = None,
                 fsync: bool = True, workers: int = 16, direct_io: bool = True):
        self.output_dir = os.path.abspath(os.fspath(output_dir))
        os.makedirs(self.output_dir, exist_ok=True)
        self.on_store = on_store
        self.fsync = fsync
        self.executor = ThreadPoolExecutor(max_workers=workers,
                                           thread_name_prefix="dicomfast-store")
        self.committer = Committer(self.output_dir, fsync=fsync, direct_io=direct_io)

    def handler(self, assoc: Association) -> StorageHandler:
        return StorageHandler(self)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.committer.close()


class StorageHandler:
    """Answers C-ECHO and C-STORE on one association."""

    def __init__(self, scp: StorageSCP):
        self.scp = scp

    def on_request(self, assoc: Association, ctx: AcceptedContext, cmd: Dataset):
        field = cmd[D.T_COMMAND_FIELD].value
        if field == D.C_ECHO_RQ:
            assoc.respond(ctx.id, D.echo_rsp(cmd))
            return None
        if field != D.C_STORE_RQ:
            assoc.respond(ctx.id, D.command({
                D.T_COMMAND_FIELD: field | 0x8000, D.T_RESPONDED_TO: cmd.get(D.T_MESSAGE_ID).value
                if D.T_MESSAGE_ID in cmd else 0,
                D.T_DATA_SET_TYPE: D.NO_DATA_SET, D.T_STATUS: D.UNRECOGNIZED_OPERATION}))
            return None
        sop_class = _text(cmd, D.T_AFFECTED_SOP_CLASS)
        sop_instance = _text(cmd, D.T_AFFECTED_SOP_INSTANCE)

        def refuse(status: int, comment: str, tag: int | None) -> _Discard:
            def answer() -> None:
                assoc.respond(ctx.id, D.store_rsp(cmd, status, comment, tag))
            return _Discard(answer)

        # The instance UID becomes a file name: only digits and dots, at most 64
        # characters, so no path separator, '..' or device name can get through.
        if not valid_uid(sop_instance):
            return refuse(D.CANNOT_UNDERSTAND, "invalid Affected SOP Instance UID",
                          D.T_AFFECTED_SOP_INSTANCE)
        if not valid_uid(sop_class):
            return refuse(D.CANNOT_UNDERSTAND, "invalid Affected SOP Class UID",
                          D.T_AFFECTED_SOP_CLASS)
        if sop_class != ctx.abstract_syntax:
            return refuse(D.SOP_CLASS_NOT_SUPPORTED, "SOP class differs from the "
                          "presentation context's abstract syntax", D.T_AFFECTED_SOP_CLASS)
        sink = _StoreSink(self.scp, assoc, ctx, cmd, sop_class, sop_instance)
        return sink


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _text(cmd: Dataset, tag: int) -> str | None:
    el = cmd.get(tag)
    if el is None:
        return None
    try:
        value = el.value
    except Exception:  # an undecodable value is as good as none
        return None
    return value if isinstance(value, str) else None
