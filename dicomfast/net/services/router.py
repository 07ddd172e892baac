"""One acceptor, many services: :class:`ServiceRouter` sends each incoming request to
the handler registered for its command and SOP class (PS3.7 §9 for DIMSE-C, §10 for
DIMSE-N).

* C-ECHO is answered here (Verification, PS3.4 Annex A).
* C-STORE goes to a :class:`~dicomfast.net.services.storage.StorageSCP`.
* C-FIND, C-MOVE, C-GET and C-CANCEL go to raw
  :class:`~dicomfast.net.association.Handler` objects (``on_request(assoc, ctx,
  command) -> DataSink | None``), registered per command and SOP class.
* N-EVENT-REPORT, N-GET, N-SET, N-ACTION, N-CREATE and N-DELETE go to *N handlers*.

An N handler has the shape of the C-STORE hook (``on_store(StoredObject) -> status``):
it is called once the request and its data set are in, with an :class:`NEvent`, and
returns a status, or an :class:`NResult` when it has a data set or an SCP-assigned
instance UID to send back. It may be a coroutine function; blocking work belongs in
``await event.run_blocking(fn, ...)``. ``NResult.after`` runs once the response is
on its way (Storage Commitment sends its N-EVENT-REPORT from there). Exceptions
become Processing Failure (0x0110) responses; the association goes on.

    >>> from dicomfast.net.services.router import ServiceRouter, NResult
    >>> from dicomfast.net import dimse_n as N
    >>> mpps = {}
    >>> def on_create(event):                 # an N-CREATE handler
    ...     uid = event.sop_instance_uid or new_uid()   # SCP-assigned when absent
    ...     if uid in mpps:
    ...         return N.DUPLICATE_SOP_INSTANCE
    ...     mpps[uid] = event.dataset
    ...     return NResult(N.SUCCESS, sop_instance_uid=uid)
    >>> router = ServiceRouter()
    >>> router.add_n_handler(MPPS_SOP_CLASS, on_create, commands=[N.N_CREATE_RQ])
    >>> server = await router.start(AE("PACS").settings, port=11112)

Requests with no handler get Unrecognized Operation (0x0211) for an unknown command,
or SOP Class Not Supported (0x0122) / No Such SOP Class (0x0118) for a known
command on an unserved SOP class; their data set is drained, never kept.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DicomfastError, DIMSEError
from dicomfast.net import dimse as D
from dicomfast.net import dimse_n as N
from dicomfast.net.association import (
    AcceptedContext,
    AcceptorPolicy,
    Association,
    DataSink,
    Handler,
    Server,
    Settings,
)
from dicomfast.net.services.storage import VERIFICATION, StorageSCP

log = logging.getLogger("dicomfast.net")

__all__ = ["NEvent", "NResult", "NHandler", "ServiceRouter", "send_n_response"]


@dataclass
class NResult:
    """What an N handler answers: ``status``; ``dataset``: the response's data set
    (N-GET Attribute List, N-CREATE/N-SET Attribute List, Action/Event Reply);
    ``sop_instance_uid``: the instance the response names (the SCP-assigned UID of an
    N-CREATE whose request had none); ``after``: a coroutine function run once the
    response has been queued, on the association's event loop."""
    status: int = N.SUCCESS
    dataset: Dataset | None = None
    sop_instance_uid: str | None = None
    error_comment: str | None = None
    offending: list[int] = field(default_factory=list)
    after: Callable[[], Awaitable[Any]] | None = None
    error_id: int | None = None


@dataclass
class NEvent:
    """One received DIMSE-N request, as an N handler sees it."""
    assoc: Association
    context: AcceptedContext
    request: N.NRequest

    @property
    def command_field(self) -> int:
        return self.request.command_field

    @property
    def sop_class_uid(self) -> str | None:
        return self.request.sop_class_uid

    @property
    def sop_instance_uid(self) -> str | None:
        return self.request.sop_instance_uid

    @property
    def dataset(self) -> Dataset | None:
        return self.request.dataset

    @property
    def calling_ae(self) -> str:
        return self.assoc.calling_ae

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.assoc.loop.run_in_executor(None, fn, *args)


NHandler = Callable[[NEvent], int | NResult | None | Awaitable[int | NResult | None]]


class _Drain:
    def __init__(self, done: Callable[[], None]):
        self.done = done

    def write(self, data: memoryview) -> None:
        pass

    def finish(self) -> None:
        self.done()

    def abort(self) -> None:
        pass


class _Gather:
    """Collects a DIMSE-N data set (they are small: attribute lists, references)."""

    def __init__(self, done: Callable[[bytes | None], None], limit: int):
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.done = done
        self.too_big = False

    def write(self, data: memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.too_big = True
            self.parts = []
            return
        self.parts.append(bytes(data))

    def finish(self) -> None:
        self.done(None if self.too_big else b"".join(self.parts))

    def abort(self) -> None:
        self.parts = []


def send_n_response(assoc: Association, ctx: AcceptedContext, rq: N.NRequest,
                    result: NResult) -> asyncio.Future:
    """Queue the response to `rq` (its data set encoded in the context's syntax)."""
    data = None
    if result.dataset is not None and rq.command_field != N.N_DELETE_RQ:
        data = N.encode_data_set(result.dataset, ctx.transfer_syntax)
    cmd = N.response_for(rq, result.status, sop_instance_uid=result.sop_instance_uid,
                         has_data=data is not None, error_comment=result.error_comment,
                         offending=result.offending, error_id=result.error_id)

    async def send() -> None:
        try:
            await assoc.send_message(ctx.id, cmd, data)
        except AssociationError as exc:
            log.info("%s response not sent: %s", rq.name, exc)

    task = assoc.loop.create_task(send())
    assoc.track(task)
    return task


class ServiceRouter:
    """Dispatches requests to per-service handlers; see the module docstring.

    Use :meth:`handler` as a :class:`~dicomfast.net.association.Server`'s handler
    factory, or :meth:`start` to get a running server whose policy accepts exactly
    the SOP classes registered (plus Verification). ``max_n_data_set`` bounds the
    data set of one DIMSE-N request held in memory (larger: Resource Limitation).
    """

    def __init__(self, *, max_n_data_set: int = 256 << 20):
        self.storage: StorageSCP | None = None
        self.storage_classes: Callable[[str], bool] = lambda uid: False
        self._c: dict[tuple[int, str | None], Handler] = {}
        self._n: dict[tuple[int, str], NHandler] = {}
        self._n_classes: set[str] = set()
        self._extra_abstract: set[str] = set()
        self.max_n_data_set = max_n_data_set
        self._followups: set[asyncio.Future] = set()

    # -- registration ------------------------------------------------------------------
    def set_storage(self, scp: StorageSCP, sop_classes: Callable[[str], bool]) -> None:
        """C-STORE of the SOP classes `sop_classes` accepts goes to `scp`."""
        self.storage = scp
        self.storage_classes = sop_classes

    def add_c_handler(self, command_field: int, handler: Handler,
                      sop_classes: Iterable[str] | None = None) -> None:
        """A raw handler for a DIMSE-C request (C-FIND, C-MOVE, C-GET, C-CANCEL), for
        the given SOP classes (None: any). C-CANCEL-RQ carries no SOP class: register
        it with None."""
        if sop_classes is None:
            self._c[(command_field, None)] = handler
            return
        for uid in sop_classes:
            self._c[(command_field, uid)] = handler
            self._extra_abstract.add(uid)

    def add_n_handler(self, sop_class: str, handler: NHandler,
                      commands: Iterable[int] = N.N_REQUESTS) -> None:
        """`handler` serves the DIMSE-N `commands` (N.N_CREATE_RQ, ...) on `sop_class`."""
        for cmd in commands:
            if cmd not in N.N_REQUESTS:
                raise ValueError(f"0x{cmd:04X} is not a DIMSE-N request")
            self._n[(cmd, sop_class)] = handler
        self._n_classes.add(sop_class)

    def add_abstract_syntax(self, uid: str) -> None:
        """Accept `uid` as a presentation context too (a Meta SOP Class, PS3.4 H.3)."""
        self._extra_abstract.add(uid)

    def accepts(self, abstract_syntax: str) -> bool:
        """The abstract syntaxes worth accepting: what is registered."""
        return (abstract_syntax == VERIFICATION or abstract_syntax in self._n_classes
                or abstract_syntax in self._extra_abstract
                or (self.storage is not None and self.storage_classes(abstract_syntax)))

    def handler(self, assoc: Association) -> ServiceRouter:
        """Handler factory for :class:`~dicomfast.net.association.Server`."""
        return self

    async def start(self, settings: Settings, *, host: str | None = None, port: int = 0,
                    transfer_syntaxes: Any = None, max_associations: int = 64,
                    called_ae_required: bool = False, ssl: Any = None) -> Server:
        from dicomfast.transfer_syntax import ALL_TRANSFER_SYNTAXES

        syntaxes = transfer_syntaxes or frozenset(ts.uid for ts in ALL_TRANSFER_SYNTAXES)
        policy = AcceptorPolicy(settings.ae_title, self.accepts, syntaxes,
                                called_ae_required=called_ae_required)
        server = Server(settings, policy, self.handler, max_associations=max_associations,
                        ssl=ssl)
        await server.start(host, port)
        return server

    # -- dispatch ----------------------------------------------------------------------
    def on_request(self, assoc: Association, ctx: AcceptedContext,
                   cmd: Dataset) -> DataSink | None:
        field_ = cmd.CommandField
        if field_ == D.C_ECHO_RQ:
            assoc.respond(ctx.id, D.echo_rsp(cmd))
            return None
        if field_ in N.N_REQUESTS:
            return self._n_request(assoc, ctx, cmd)
        sop_class = _text(cmd, D.T_AFFECTED_SOP_CLASS)
        if field_ == D.C_STORE_RQ and self.storage is not None \
                and sop_class is not None and self.storage_classes(sop_class):
            return self.storage.handler(assoc).on_request(assoc, ctx, cmd)
        handler = self._c.get((field_, sop_class)) or self._c.get((field_, None))
        if handler is not None:
            return handler.on_request(assoc, ctx, cmd)
        if field_ == D.C_CANCEL_RQ:
            return None  # nothing to cancel: PS3.7 §9.3.2.3 has no response to it
        known = field_ in (D.C_STORE_RQ, D.C_FIND_RQ, D.C_MOVE_RQ, D.C_GET_RQ)
        status = D.SOP_CLASS_NOT_SUPPORTED if known else D.UNRECOGNIZED_OPERATION
        rsp = D.command({D.T_COMMAND_FIELD: (field_ | 0x8000) & 0xFFFF,
                         D.T_RESPONDED_TO: _int(cmd, D.T_MESSAGE_ID) or 0,
                         D.T_AFFECTED_SOP_CLASS: sop_class,
                         D.T_DATA_SET_TYPE: D.NO_DATA_SET, D.T_STATUS: status})
        if D.has_data_set(cmd):
            return _Drain(lambda: assoc.respond(ctx.id, rsp))
        assoc.respond(ctx.id, rsp)
        return None

    def _n_request(self, assoc: Association, ctx: AcceptedContext,
                   cmd: Dataset) -> DataSink | None:
        try:
            rq = N.decode_request(cmd)
        except DIMSEError as exc:
            # PS3.7 §10.1: a request missing mandatory elements is a mistyped argument;
            # answered when it can be, so the peer does not wait.
            log.warning("bad DIMSE-N request from %s: %s", assoc.calling_ae, exc)
            msg_id = _int(cmd, D.T_MESSAGE_ID)
            if msg_id is None:
                raise
            rsp = D.command({D.T_COMMAND_FIELD: cmd.CommandField | 0x8000,
                             D.T_RESPONDED_TO: msg_id, D.T_DATA_SET_TYPE: D.NO_DATA_SET,
                             D.T_STATUS: N.MISTYPED_ARGUMENT})
            if D.has_data_set(cmd):
                return _Drain(lambda: assoc.respond(ctx.id, rsp))
            assoc.respond(ctx.id, rsp)
            return None
        handler = self._n.get((rq.command_field, rq.sop_class_uid or ""))
        if handler is None:
            status = (N.UNRECOGNIZED_OPERATION if rq.sop_class_uid in self._n_classes
                      else N.NO_SUCH_SOP_CLASS)
            result = NResult(status)
            if rq.has_data:
                return _Drain(lambda: send_n_response(assoc, ctx, rq, result))
            send_n_response(assoc, ctx, rq, result)
            return None
        event = NEvent(assoc, ctx, rq)
        if not rq.has_data:
            self._run(event, handler, None)
            return None
        return _Gather(lambda raw: self._run(event, handler, b"" if raw is None else raw,
                                             too_big=raw is None), self.max_n_data_set)

    def _run(self, event: NEvent, handler: NHandler, raw: bytes | None,
             too_big: bool = False) -> None:
        task = event.assoc.loop.create_task(self._call(event, handler, raw, too_big))
        event.assoc.track(task)

    async def _call(self, event: NEvent, handler: NHandler, raw: bytes | None,
                    too_big: bool = False) -> None:
        rq = event.request
        if too_big:
            send_n_response(event.assoc, event.context, rq,
                            NResult(N.RESOURCE_LIMITATION, error_comment="data set too large"))
            return
        if raw is not None:
            try:
                rq.dataset = N.decode_data_set(raw, event.context.transfer_syntax)
            except (DicomfastError, ValueError) as exc:
                send_n_response(event.assoc, event.context, rq, NResult(
                    N.MISTYPED_ARGUMENT if rq.command_field != N.N_CREATE_RQ
                    else N.INVALID_ATTRIBUTE_VALUE, error_comment=f"undecodable: {exc}"))
                return
        try:
            out = handler(event)
            if inspect.isawaitable(out):
                out = await out
        except Exception as exc:
            log.exception("%s handler for %s failed", rq.name, rq.sop_class_uid)
            out = NResult(N.PROCESSING_FAILURE, error_comment=f"{type(exc).__name__}: {exc}")
        result = out if isinstance(out, NResult) else NResult(N.SUCCESS if out is None
                                                                else int(out))
        if rq.command_field == N.N_CREATE_RQ and result.sop_instance_uid is None \
                and rq.sop_instance_uid is None and N.n_status_category(result.status) \
                != "Failure":
            log.error("N-CREATE handler for %s assigned no SOP Instance UID",
                      rq.sop_class_uid)
            result = NResult(N.PROCESSING_FAILURE, error_comment="no SOP Instance UID assigned")
        if event.assoc.abort_reason is not None:
            return
        sent = send_n_response(event.assoc, event.context, rq, result)
        if result.after is not None:
            # Not tracked by the association: a release must not wait for it (a
            # follow-up may itself wait on the peer, or open another association).
            task = event.assoc.loop.create_task(self._follow_up(sent, result.after, rq))
            self._followups.add(task)
            task.add_done_callback(self._followups.discard)

    @staticmethod
    async def _follow_up(sent: asyncio.Future, after: Callable[[], Awaitable[Any]],
                         rq: N.NRequest) -> None:
        await asyncio.wait([sent])
        try:
            await after()
        except Exception:
            log.exception("follow-up of %s failed", rq.name)


def _text(cmd: Dataset, tag: int) -> str | None:
    el = cmd.get(tag)
    if el is None:
        return None
    try:
        value = el.value
    except (DicomfastError, ValueError):
        return None
    return str(value).rstrip("\0 ") if value is not None else None


def _int(cmd: Dataset, tag: int) -> int | None:
    el = cmd.get(tag)
    if el is None:
        return None
    try:
        return int(el.value)
    except (DicomfastError, ValueError, TypeError):
        return None
