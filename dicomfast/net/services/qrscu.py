"""Query/Retrieve SCU (PS3.4 Annex C): C-FIND with its answers streamed as they
arrive, C-MOVE and C-GET with their sub-operation counts, and C-CANCEL.

    >>> from dicomfast.net import AE
    >>> from dicomfast.net.services import qrscu
    >>> async for ds in qrscu.find(AE("ME"), "pacs", 104, {"PatientID": "X",
    ...                                                     "StudyInstanceUID": ""},
    ...                             level="STUDY", called_ae="PACS"):
    ...     print(ds.StudyInstanceUID)
    >>> result = qrscu.move_sync(AE("ME"), "pacs", 104, {"StudyInstanceUID": uid},
    ...                          "ME", level="STUDY", called_ae="PACS")

Breaking out of the ``async for`` (or calling :meth:`FindStream.cancel`) sends
C-CANCEL-RQ and waits for the final response, so the association stays usable.
A C-GET SCU proposes, besides the Q/R context, storage contexts for the SOP classes
it will receive, with SCP/SCU Role Selection asking for the SCP role (PS3.7
§D.3.3.4), and writes what it receives durably (as the storage SCP does).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DIMSEError
from dicomfast.net import dimse as D
from dicomfast.net import dimse_c as C
from dicomfast.net import pdu as P
from dicomfast.net.association import Association
from dicomfast.net.services import identifiers as I
from dicomfast.net.services.storage import StorageHandler, StorageSCP, StoredObject

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
_NATIVE = [EXPLICIT_VR_LE, IMPLICIT_VR_LE]
_COMPRESSED = ["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
               "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90",
               "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99",
               "1.2.840.10008.1.2.2"]

#: Storage SOP classes a C-GET SCU offers to receive by default (PS3.4 Annex B):
#: the common image, presentation, structured report and RT objects.
DEFAULT_GET_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1.3", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.2.2", "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.2", "1.2.840.10008.5.1.4.1.1.4.4",
    "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.6.2", "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.11.1", "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.12.1.1", "1.2.840.10008.5.1.4.1.1.12.2",
    "1.2.840.10008.5.1.4.1.1.12.2.1", "1.2.840.10008.5.1.4.1.1.13.1.1",
    "1.2.840.10008.5.1.4.1.1.13.1.3", "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.30",
    "1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.67",
    "1.2.840.10008.5.1.4.1.1.77.1.1", "1.2.840.10008.5.1.4.1.1.77.1.2",
    "1.2.840.10008.5.1.4.1.1.77.1.4", "1.2.840.10008.5.1.4.1.1.77.1.6",
    "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.59",
    "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130",
    "1.2.840.10008.5.1.4.1.1.481.1", "1.2.840.10008.5.1.4.1.1.481.2",
    "1.2.840.10008.5.1.4.1.1.481.3", "1.2.840.10008.5.1.4.1.1.481.4",
    "1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.481.8",
    "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.9.1.1",
    "1.2.840.10008.5.1.4.1.1.9.1.2", "1.2.840.10008.5.1.4.1.1.128.1",
    "1.2.840.10008.5.1.4.1.1.3",
)


class QueryFailed(DIMSEError):
    """A C-FIND, C-MOVE or C-GET ended with a failure status."""

    def __init__(self, message: str, status: int, comment: str | None = None):
        super().__init__(message)
        self.status, self.comment = status, comment


def _status(cmd: Dataset) -> int:
    el = cmd.get(D.T_STATUS)
    if el is None:
        raise DIMSEError("response without (0000,0900) Status")
    return int(el.value)


def _comment(cmd: Dataset) -> str | None:
    el = cmd.get(D.T_ERROR_COMMENT)
    return str(el.value) if el is not None and el.value else None


def _context(assoc: Association, sop_class: str) -> Any:
    for ctx in assoc.contexts.values():
        if ctx.abstract_syntax == sop_class:
            return ctx
    raise AssociationError(f"the peer did not accept {sop_class}")


def _identifier(identifier: Mapping[str, Any] | Dataset, level: str | None) -> Dataset:
    if isinstance(identifier, Dataset):
        ds = identifier
        if level is not None:
            ds.add_new(0x00080052, "CS", level)
        return ds
    ident = dict(identifier)
    if level is not None:
        ident["QueryRetrieveLevel"] = level
    # Declared even for an ASCII identifier: the SCP then answers in UTF-8 rather than
    # its default repertoire, which may not hold the names (PS3.4 §C.4.1.1.3.1).
    ident.setdefault("SpecificCharacterSet", "ISO_IR 192")
    return I.to_dataset(ident)


class _Exchange:
    """One request and its stream of responses."""

    def __init__(self, assoc: Association, sop_class: str, rq: Dataset, identifier: Dataset):
        self.assoc = assoc
        self.ctx = _context(assoc, sop_class)
        self.rq = rq
        self.identifier = identifier
        self.queue: asyncio.Queue = asyncio.Queue()
        self.final: Dataset | None = None
        self.final_data: bytes | None = None
        self.cancel_sent = False

    async def start(self) -> None:
        data = I.encode(self.identifier, self.ctx.transfer_syntax)
        fut = await self.assoc.send_request(
            self.ctx.id, self.rq, data,
            on_pending=lambda cmd, data: self.queue.put_nowait(("pending", cmd, data)))
        fut.add_done_callback(lambda f: self.queue.put_nowait(("final", f, None)))

    async def next(self) -> tuple[str, Dataset, bytes | None]:
        timeout = self.assoc.settings.dimse_timeout
        try:
            kind, obj, data = await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            self.assoc.abort()
            raise AssociationError(f"no DIMSE response within {timeout} s") from None
        if kind == "final":
            cmd, data = obj.result()  # raises when the association ended
            self.final, self.final_data = cmd, data
            return "final", cmd, data
        return kind, obj, data

    async def cancel(self) -> None:
        """C-CANCEL-RQ (PS3.7 §9.3.2.3); the peer then ends with status Cancel."""
        if self.final is None and not self.cancel_sent:
            self.cancel_sent = True
            await self.assoc.send_message(self.ctx.id, C.cancel_rq(int(self.rq.MessageID)))


class FindStream:
    """The answers of one C-FIND as they arrive: ``async for ds in stream``; ``status``
    is the final status once iteration ends. ``cancel()`` asks the peer to stop.
    With ``raw`` the answers are the identifiers' encoded bytes, not decoded."""

    def __init__(self, exchange: _Exchange, raw: bool = False):
        self._x = exchange
        self.raw = raw
        self.status: int | None = None
        self.comment: str | None = None

    def __aiter__(self) -> FindStream:
        return self

    async def __anext__(self) -> Dataset:
        if self.status is not None:
            raise StopAsyncIteration
        kind, cmd, data = await self._x.next()
        if kind == "pending":
            if not data:
                raise DIMSEError("pending C-FIND-RSP without an identifier")
            return data if self.raw else I.decode(data, self._x.ctx.transfer_syntax)
        self.status = _status(cmd)
        self.comment = _comment(cmd)
        category = D.status_category(self.status)
        if category == "Failure":
            raise QueryFailed(f"C-FIND failed: status 0x{self.status:04X}"
                              f"{': ' + self.comment if self.comment else ''}",
                              self.status, self.comment)
        raise StopAsyncIteration

    async def cancel(self) -> None:
        """Send C-CANCEL and drain what the peer still sends, up to its final response."""
        if self.status is not None:
            return
        await self._x.cancel()
        try:
            async for _ in self:
                pass
        except QueryFailed:
            pass


async def start_find(assoc: Association, identifier: Mapping[str, Any] | Dataset, *,
                     level: str | None = None, model: str = "study",
                     priority: int = D.PRIORITY_MEDIUM, raw: bool = False) -> FindStream:
    """Send a C-FIND-RQ on an open association (a context for the model's FIND SOP
    class must be accepted) and return the stream of its answers."""
    sop_class = C.FIND_MODELS[model]
    rq = C.find_rq(assoc.next_message_id(), sop_class, priority)
    x = _Exchange(assoc, sop_class, rq, _identifier(identifier, level))
    await x.start()
    return FindStream(x, raw)


async def find(ae: Any, host: str, port: int, identifier: Mapping[str, Any] | Dataset, *,
               level: str | None = None, model: str = "study", called_ae: str = "ANY-SCP",
               limit: int | None = None, **kw: Any) -> AsyncIterator[Dataset]:
    """C-FIND over a new association: yields each answer as it arrives. ``limit``:
    cancel (C-CANCEL) after that many answers."""
    assoc = await ae.associate(host, port, [(C.FIND_MODELS[model], _NATIVE)],
                               called_ae=called_ae, **kw)
    try:
        stream = await start_find(assoc, identifier, level=level, model=model)
        n = 0
        async for ds in stream:
            yield ds
            n += 1
            if limit is not None and n >= limit:
                await stream.cancel()
                break
    except QueryFailed:
        await assoc.release()  # the peer answered; the association is sound
        raise
    except BaseException:
        assoc.abort()
        raise
    await assoc.release()


def find_sync(ae: Any, host: str, port: int, identifier: Mapping[str, Any] | Dataset,
              **kw: Any) -> list[Dataset]:
    async def run() -> list[Dataset]:
        return [ds async for ds in find(ae, host, port, identifier, **kw)]
    return asyncio.run(run())


@dataclass
class RetrieveResult:
    """The outcome of a C-MOVE or C-GET: the final status and sub-operation counts;
    ``failed_uids``: the Failed SOP Instance UID List of the final response;
    ``received``: what a C-GET stored locally."""
    status: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0
    failed_uids: list[str] = field(default_factory=list)
    comment: str | None = None
    received: list[StoredObject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == D.SUCCESS


async def retrieve(assoc: Association, command_field: int,
                   identifier: Mapping[str, Any] | Dataset, *, level: str | None = None,
                   model: str = "study", destination: str | None = None,
                   on_progress: Callable[[dict[str, int | None]], None] | None = None,
                   cancel_after: int | None = None,
                   priority: int = D.PRIORITY_MEDIUM) -> RetrieveResult:
    """C-MOVE (`destination` given) or C-GET on an open association; `on_progress`
    sees the counts of each pending response. `cancel_after`: send C-CANCEL once that
    many sub-operations are done."""
    if command_field == D.C_MOVE_RQ:
        sop_class = C.MOVE_MODELS[model]
        if not destination:
            raise ValueError("C-MOVE needs a destination AE title")
        rq = C.move_rq(assoc.next_message_id(), sop_class, destination, priority)
    else:
        sop_class = C.GET_MODELS[model]
        rq = C.get_rq(assoc.next_message_id(), sop_class, priority)
    x = _Exchange(assoc, sop_class, rq, _identifier(identifier, level))
    await x.start()
    while True:
        kind, cmd, data = await x.next()
        counts = C.counts_of(cmd)
        if kind == "pending":
            if on_progress is not None:
                on_progress(counts)
            done = sum((counts[k] or 0) for k in ("completed", "failed", "warning"))
            if cancel_after is not None and done >= cancel_after:
                await x.cancel()
            continue
        status = _status(cmd)
        failed_uids: list[str] = []
        if data:
            try:
                ds = I.decode(data, x.ctx.transfer_syntax)
                if 0x00080058 in ds:
                    value = ds[0x00080058].value
                    failed_uids = [str(v) for v in (value if isinstance(value, list)
                                                    else [value]) if v]
            except DIMSEError:
                pass
        return RetrieveResult(status, counts["completed"] or 0, counts["failed"] or 0,
                              counts["warning"] or 0, counts["remaining"] or 0, failed_uids,
                              _comment(cmd))


async def move(ae: Any, host: str, port: int, identifier: Mapping[str, Any] | Dataset,
               destination: str, *, level: str | None = None, model: str = "study",
               called_ae: str = "ANY-SCP", **kw: Any) -> RetrieveResult:
    """C-MOVE over a new association: the peer sends the matches to `destination`."""
    ssl = kw.pop("ssl", None)
    assoc = await ae.associate(host, port, [(C.MOVE_MODELS[model], _NATIVE)],
                               called_ae=called_ae, ssl=ssl)
    try:
        result = await retrieve(assoc, D.C_MOVE_RQ, identifier, level=level, model=model,
                                destination=destination, **kw)
    except BaseException:
        assoc.abort()
        raise
    await assoc.release()
    return result


def get_contexts(model: str, sop_classes: Iterable[str],
                 compressed: bool = True) -> tuple[list[tuple[str, list[str]]],
                                                   list[P.RoleSelection]]:
    """The presentation contexts and role selections a C-GET SCU proposes: the GET
    model, then per storage SOP class one uncompressed context and (``compressed``)
    one offering the compressed syntaxes, at most 128 contexts in all."""
    contexts: list[tuple[str, list[str]]] = [(C.GET_MODELS[model], _NATIVE)]
    roles = []
    classes = list(dict.fromkeys(sop_classes))
    per_class = 2 if compressed and 1 + 2 * len(classes) <= 128 else 1
    for uid in classes[:127 // per_class]:
        contexts.append((uid, _NATIVE))
        if per_class == 2:
            contexts.append((uid, _COMPRESSED))
        # The requestor takes the SCP role only: it receives these (PS3.7 §D.3.3.4).
        roles.append(P.RoleSelection(uid, False, True))
    return contexts, roles


async def get(ae: Any, host: str, port: int, identifier: Mapping[str, Any] | Dataset,
              output_dir: str | os.PathLike, *, level: str | None = None,
              model: str = "study", called_ae: str = "ANY-SCP",
              sop_classes: Iterable[str] = DEFAULT_GET_SOP_CLASSES, fsync: bool = True,
              on_store: Callable[[StoredObject], int | None] | None = None,
              **kw: Any) -> RetrieveResult:
    """C-GET over a new association: the matches come back as C-STORE sub-operations
    on it and are written durably to OUTPUT_DIR/<SOPInstanceUID>.dcm."""
    received: list[StoredObject] = []

    def stored(obj: StoredObject) -> int | None:
        received.append(obj)
        return on_store(obj) if on_store is not None else None

    scp = StorageSCP(output_dir, on_store=stored, fsync=fsync)
    contexts, roles = get_contexts(model, sop_classes)
    ssl = kw.pop("ssl", None)
    try:
        assoc = await Association.request(host, port, contexts, called_ae=called_ae,
                                          settings=ae.settings, roles=roles, ssl=ssl,
                                          handler=StorageHandler(scp))
        try:
            result = await retrieve(assoc, D.C_GET_RQ, identifier, level=level, model=model,
                                    **kw)
        except BaseException:
            assoc.abort()
            raise
        await assoc.release()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, scp.close)
    result.received = received
    return result


def move_sync(ae: Any, *args: Any, **kw: Any) -> RetrieveResult:
    return asyncio.run(move(ae, *args, **kw))


def get_sync(ae: Any, *args: Any, **kw: Any) -> RetrieveResult:
    return asyncio.run(get(ae, *args, **kw))
