"""Associations: establishment with presentation context negotiation, DIMSE message
exchange, release and abort (PS3.8 §7 and §9.2, PS3.7 §D.3.3), for both sides.

An :class:`Association` drives one :class:`~dicomfast.net.statemachine.StateMachine`
from the PDUs its :class:`~dicomfast.net.transport.Connection` delivers and from
local requests, and carries out the effects of each transition. DIMSE messages are
cut into P-DATA-TF PDUs for the peer's Maximum Length and reassembled as they
arrive, data set fragments being passed to a sink without being gathered first.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DIMSEError
from dicomfast.net import dimse as D
from dicomfast.net import pdu as P
from dicomfast.net import transport
from dicomfast.net.statemachine import (
    P_DATA_INDICATIONS,
    Effect,
    Event,
    State,
    StateMachine,
)
from dicomfast.writer import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

log = logging.getLogger("dicomfast.net")

#: Maximum Length assumed for a peer that sends no Maximum Length sub-item, which
#: PS3.8 §D.1 requires; 16 KiB is what the oldest implementations handle.
_DEFAULT_PEER_MAX = 16384
_SEND_BATCH = 256 << 10  # bytes of small PDUs gathered into one write


@dataclass
class Settings:
    """Association parameters. Timeouts are in seconds (None: wait for ever).

    ``max_pdu``: the Maximum Length we advertise, i.e. the largest P-DATA-TF PDU we
    accept (larger ones are refused with A-ABORT); ``max_send_pdu`` bounds the PDUs we
    build when the peer advertises 0 (no limit). ``acse_timeout``: waiting for
    A-ASSOCIATE-AC/RJ and A-RELEASE-RP; ``dimse_timeout``: waiting for a DIMSE
    response; ``network_timeout``: an acceptor drops an association whose peer sends
    nothing for this long while it is not itself busy; ``artim_timeout``: the ARTIM
    timer (PS3.8 §9.1.5). ``max_async_ops``: the asynchronous operations window we
    propose and accept (PS3.7 §D.3.3.3); 1 means none.
    """
    ae_title: str = "DICOMFAST"
    max_pdu: int = 1 << 20
    max_send_pdu: int = 1 << 20
    acse_timeout: float | None = 30.0
    dimse_timeout: float | None = 60.0
    network_timeout: float | None = 60.0
    artim_timeout: float = 30.0
    connect_timeout: float | None = 30.0
    max_async_ops: int = 16
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version_name: str = IMPLEMENTATION_VERSION_NAME
    strict: bool = False


_DOING = {State.STA3: "negotiating", State.STA4: "connecting",
          State.STA5: "waiting for A-ASSOCIATE-AC", State.STA6: "transferring data",
          State.STA7: "waiting for A-RELEASE-RP", State.STA8: "releasing"}


class AssociationRejected(AssociationError):
    """The peer answered with A-ASSOCIATE-RJ (PS3.8 Table 9-21 gives the codes)."""

    def __init__(self, result: int, source: int, reason: int):
        names = {(1, 1): "no reason given", (1, 2): "application context not supported",
                 (1, 3): "calling AE title not recognized",
                 (1, 7): "called AE title not recognized", (2, 1): "no reason given",
                 (2, 2): "protocol version not supported", (3, 1): "temporary congestion",
                 (3, 2): "local limit exceeded"}
        kind = "permanent" if result == 1 else "transient"
        super().__init__(f"association rejected ({kind}): "
                         f"{names.get((source, reason), f'source {source} reason {reason}')}")
        self.result, self.source, self.reason = result, source, reason


class AssociationAborted(AssociationError):
    """The association ended by A-ABORT, A-P-ABORT or a lost connection."""

    def __init__(self, message: str, source: int | None = None, reason: int | None = None):
        super().__init__(message)
        self.source, self.reason = source, reason


@dataclass
class AcceptedContext:
    """A presentation context both sides agreed on."""
    id: int
    abstract_syntax: str
    transfer_syntax: str
    scu_role: bool = True    # whether the requestor may act as SCU on this context
    scp_role: bool = False   # whether the requestor may act as SCP (e.g. C-GET storage)


class DataSink(Protocol):
    """Receives one message's data set as it arrives (see :meth:`Handler.on_request`)."""

    def write(self, data: memoryview) -> None: ...  # consume now: the view is reused
    def finish(self) -> None: ...                   # the last fragment was written
    def abort(self) -> None: ...                    # the association ended first


class Handler(Protocol):
    """What an acceptor does with the requests it receives."""

    def on_request(self, assoc: Association, context: AcceptedContext,
                   command: Dataset) -> DataSink | None: ...


class _Collect:
    """Gathers a data set in memory, for messages nobody streams."""

    def __init__(self, done: Callable[[bytes], None]):
        self.parts: list[bytes] = []
        self.done = done

    def write(self, data: memoryview) -> None:
        self.parts.append(bytes(data))

    def finish(self) -> None:
        self.done(b"".join(self.parts))

    def abort(self) -> None:
        self.parts = []


class Association:
    """One association, requestor (``requestor=True``) or acceptor side."""

    def __init__(self, requestor: bool, settings: Settings, *, server: Server | None = None,
                 handler: Handler | None = None):
        self.requestor = requestor
        self.settings = settings
        self.server = server
        self.handler = handler
        self.sm = StateMachine(requestor)
        self.loop = asyncio.get_running_loop()
        self.conn: transport.Connection | None = None
        self.calling_ae = ""
        self.called_ae = ""
        self.contexts: dict[int, AcceptedContext] = {}
        self.context_results: list[P.PresentationContextResult] = []
        self.request_pdu: P.AssociateRQ | None = None
        self.accept_pdu: P.AssociateAC | None = None
        self.peer_max_pdu = _DEFAULT_PEER_MAX
        self.async_window = 1        # operations we may have outstanding with the peer
        self.abort_reason: AssociationError | None = None
        self._reasm = D.Reassembler()
        self._sink: DataSink | None = None
        self._responses: dict[int, asyncio.Future] = {}
        # Per message ID: who gets the pending responses (C-FIND/C-GET/C-MOVE streams).
        self._on_pending: dict[int, Callable[[Dataset, bytes | None], None]] = {}
        self._message_id = 0
        self._send_lock = asyncio.Lock()
        self._queued_responses = 0   # responses waiting in tasks for the send lock
        self._established: asyncio.Future = self.loop.create_future()
        self._released: asyncio.Future = self.loop.create_future()
        self.closed: asyncio.Future = self.loop.create_future()
        self._pending: set[asyncio.Future] = set()
        self._artim: asyncio.TimerHandle | None = None
        self._net_timer: asyncio.TimerHandle | None = None
        self._rq_bytes = b""
        self._ignore_input = False

    # -- requestor ---------------------------------------------------------------------
    @classmethod
    async def request(cls, host: str, port: int, contexts: Iterable[tuple[str, list[str]]], *,
                      called_ae: str = "ANY-SCP", settings: Settings | None = None,
                      roles: Iterable[P.RoleSelection] = (),
                      user_identity: P.UserIdentityRQ | None = None,
                      extended: Iterable[P.SOPClassExtended] = (),
                      common_extended: Iterable[P.SOPClassCommonExtended] = (),
                      ssl: _ssl.SSLContext | None = None,
                      handler: Handler | None = None) -> Association:
        """Open an association (PS3.8 §7.1): connect, send A-ASSOCIATE-RQ proposing
        `contexts` ((abstract syntax, [transfer syntaxes]) pairs, IDs given in order),
        and wait for the answer. Raises AssociationRejected or AssociationError."""
        settings = settings or Settings()
        self = cls(True, settings, handler=handler)
        proposed = []
        for i, (abstract, syntaxes) in enumerate(contexts):
            if i >= 128:
                raise ValueError("at most 128 presentation contexts (IDs 1-255, odd)")
            proposed.append(P.PresentationContext(2 * i + 1, abstract, list(syntaxes)))
        if not proposed:
            raise ValueError("propose at least one presentation context")
        window = max(settings.max_async_ops, 1)
        user = P.UserInformation(
            settings.max_pdu, settings.implementation_class_uid,
            settings.implementation_version_name,
            (window, 1) if window > 1 else None, list(roles), list(extended),
            list(common_extended), user_identity)
        self.calling_ae = P.check_ae_title(settings.ae_title)
        self.called_ae = P.check_ae_title(called_ae)
        self.request_pdu = P.AssociateRQ(self.called_ae, self.calling_ae, proposed, user)
        self._rq_bytes = P.encode(self.request_pdu)
        self._event(Event.EVT1)
        try:
            await transport.connect(host, port, self, max_pdata_len=settings.max_pdu,
                                    timeout=settings.connect_timeout, ssl=ssl,
                                    strict=settings.strict)
        except (OSError, asyncio.TimeoutError) as exc:
            if self.sm.state == State.STA4:
                self._event(Event.EVT17)
            raise AssociationError(f"cannot connect to {host}:{port}: "
                                   f"{exc or type(exc).__name__}") from None
        try:
            await asyncio.wait_for(asyncio.shield(self._established), settings.acse_timeout)
        except asyncio.TimeoutError:
            self.abort()
            raise AssociationError(f"no A-ASSOCIATE response from {host}:{port} within "
                                   f"{settings.acse_timeout} s (ACSE timeout)") from None
        return self

    def _on_accept(self, ac: P.AssociateAC) -> None:
        assert self.request_pdu is not None
        self.accept_pdu = ac
        proposed = {pc.id: pc for pc in self.request_pdu.contexts}
        roles = {r.sop_class_uid: r for r in ac.user.roles}
        self.context_results = ac.contexts
        for res in ac.contexts:
            pc = proposed.get(res.id)
            # An accepted context must name one of the syntaxes we proposed for it.
            if res.result != 0 or pc is None or res.transfer_syntax not in pc.transfer_syntaxes:
                continue
            role = roles.get(pc.abstract_syntax)
            self.contexts[res.id] = AcceptedContext(
                res.id, pc.abstract_syntax, res.transfer_syntax,
                role.scu_role if role else True, role.scp_role if role else False)
        self._set_peer_limits(ac.user, proposed_window=self.request_pdu.user.async_ops)
        if not self._established.done():
            self._established.set_result(self)

    def _set_peer_limits(self, user: P.UserInformation,
                         proposed_window: tuple[int, int] | None) -> None:
        if user.max_length is not None:
            self.peer_max_pdu = user.max_length
        if self.requestor and proposed_window is not None and user.async_ops is not None:
            # PS3.7 §D.3.3.3: the acceptor's reply bounds what we invoke; 0 = unlimited.
            # Without a reply the default, one operation at a time, applies.
            invoked = user.async_ops[0] or proposed_window[0]
            self.async_window = max(1, min(invoked, proposed_window[0]))

    # -- acceptor ----------------------------------------------------------------------
    def _on_associate_rq(self, rq: P.AssociateRQ) -> None:
        assert self.server is not None
        self.request_pdu = rq
        self.calling_ae, self.called_ae = rq.calling_ae, rq.called_ae
        answer = self.server.policy.negotiate(rq, self.server)
        provider_level = isinstance(answer, P.AssociateRJ) and answer.source != P.RJ_SOURCE_USER
        t = self._event(Event.EVT6, acceptable=not provider_level)
        if t.effects & Effect.SEND_ASSOCIATE_RJ:  # AE-6, the provider refuses
            self._write(P.encode(answer))
            log.info("association from %s refused: %s", self.calling_ae, answer)
            return
        if isinstance(answer, P.AssociateRJ):
            self._event(Event.EVT8)
            self._write(P.encode(answer))
            log.info("association from %s rejected: %s", self.calling_ae, answer)
            return
        self.accept_pdu = answer
        roles = {r.sop_class_uid: r for r in answer.user.roles}
        proposed: dict[int, P.PresentationContext] = {}
        for pc in rq.contexts:
            proposed.setdefault(pc.id, pc)
        self.context_results = answer.contexts
        for res in answer.contexts:
            if res.result == 0 and res.id not in self.contexts:
                abstract = proposed[res.id].abstract_syntax
                role = roles.get(abstract)
                self.contexts[res.id] = AcceptedContext(
                    res.id, abstract, res.transfer_syntax,
                    role.scu_role if role else True, role.scp_role if role else False)
        self._set_peer_limits(rq.user, None)
        self._event(Event.EVT7)
        self._write(P.encode(answer))
        self.server.register(self)
        if self.handler is None:
            self.handler = self.server.handler_factory(self)
        self._arm_network_timer()
        if not self._established.done():
            self._established.set_result(self)

    # -- transport callbacks -----------------------------------------------------------
    def connection_made(self, conn: transport.Connection) -> None:
        self.conn = conn
        if self.requestor:
            self._event(Event.EVT2)
            conn.write(self._rq_bytes)
        else:
            if self.server is not None:
                # Counted from here: a TLS handshake that fails never gets this far.
                self.server.connections.add(self)
            self._event(Event.EVT5)

    def pdu_received(self, raw: bytes) -> None:
        if self._ignore_input:
            return
        try:
            self._dispatch(raw)
        except Exception as exc:
            # A bug of ours must not leave the peer waiting: abort, and say why.
            log.exception("internal error handling a PDU; aborting the association")
            self.abort_reason = AssociationAborted(f"internal error: {exc!r}")
            self.abort()

    def _dispatch(self, raw: bytes) -> None:
        kind = raw[0]
        if kind == P.P_DATA_TF:
            t = self._event(Event.EVT10)
            if t.action in P_DATA_INDICATIONS:
                self._p_data(raw)
            return
        try:
            pdu = P.decode(raw, strict=self.settings.strict)
        except P.PDUDecodeError as exc:
            self.pdu_error(exc)
            return
        if kind == P.ASSOCIATE_RQ:
            if self.sm.state == State.STA2:
                self._on_associate_rq(pdu)  # type: ignore[arg-type]
            else:
                self._event(Event.EVT6)
        elif kind == P.ASSOCIATE_AC:
            if self._event(Event.EVT3).effects & Effect.CONFIRM_ACCEPT:
                self._on_accept(pdu)  # type: ignore[arg-type]
        elif kind == P.ASSOCIATE_RJ:
            if self._event(Event.EVT4).effects & Effect.CONFIRM_REJECT:
                exc = AssociationRejected(pdu.result, pdu.source, pdu.reason)  # type: ignore[union-attr]
                self._fail(exc)
        elif kind == P.RELEASE_RQ:
            if self._event(Event.EVT12).effects & Effect.INDICATE_RELEASE:
                self._on_release_indication()
        elif kind == P.RELEASE_RP:
            t = self._event(Event.EVT13)
            if t.effects & Effect.CONFIRM_RELEASE:
                if not self._released.done():
                    self._released.set_result(None)
                if self.sm.state == State.STA12:  # collision, acceptor side: answer now
                    self._respond_release()
        elif kind == P.ABORT:
            user = pdu.source == P.ABORT_SOURCE_USER  # type: ignore[union-attr]
            self.abort_reason = AssociationAborted(
                f"the peer aborted the association (source {pdu.source}, "  # type: ignore[union-attr]
                f"reason {pdu.reason})", pdu.source, pdu.reason)  # type: ignore[union-attr]
            self._event(Event.EVT16, peer_user_abort=user)

    def pdu_error(self, exc: P.PDUDecodeError) -> None:
        if self._ignore_input:
            return
        log.warning("invalid PDU from %s: %s", self.conn.peer if self.conn else "?", exc)
        self.abort_reason = AssociationAborted(f"invalid PDU received: {exc}", 2, exc.reason)
        if self.sm.can(Event.EVT19):
            self._event(Event.EVT19, abort_reason=exc.reason)
        # Sta13 now: whatever else arrives is discarded until the peer closes (or ARTIM
        # expires), never buffered.
        self._ignore_input = True
        if self.conn is not None:
            self.conn.discard_input()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.sm.can(Event.EVT17):
            self._event(Event.EVT17)
        self._finalize(exc)

    # -- state machine plumbing --------------------------------------------------------
    def _event(self, event: Event, **kw: Any):
        t = self.sm.handle(event, **kw)
        if t.quiet:
            return t
        eff = t.effects
        if eff & Effect.SEND_ABORT:
            self._write(P.encode(P.Abort(t.abort_source, t.abort_reason)))
        if eff & Effect.SEND_RELEASE_RQ:
            self._write(P.RELEASE_RQ_BYTES)
        if eff & Effect.SEND_RELEASE_RP:
            self._write(P.RELEASE_RP_BYTES)
        if eff & (Effect.START_ARTIM | Effect.STOP_ARTIM) or t.next_state == State.STA1:
            self._sync_artim(restart=bool(eff & Effect.START_ARTIM))
        if eff & (Effect.INDICATE_ABORT | Effect.INDICATE_P_ABORT):
            if event == Event.EVT17:
                why = (f"the connection closed while {_DOING.get(t.state, 'associated')} "
                       f"({t.state.name}, {t.action})")
            else:
                why = f"association aborted ({t.action} in {t.state.name})"
            self._fail(self.abort_reason or AssociationAborted(why))
        if eff & Effect.CLOSE_TRANSPORT and self.conn is not None:
            self.conn.close()
        return t

    def _write(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.write(data)

    def _sync_artim(self, restart: bool) -> None:
        if self._artim is not None and (restart or not self.sm.artim):
            self._artim.cancel()
            self._artim = None
        if self.sm.artim and self._artim is None:
            self._artim = self.loop.call_later(self.settings.artim_timeout, self._artim_expired)

    def _artim_expired(self) -> None:
        self._artim = None
        if self.sm.can(Event.EVT18):
            self._event(Event.EVT18)
            if self.conn is not None:
                self.conn.abort()

    def _arm_network_timer(self) -> None:
        timeout = self.settings.network_timeout
        if timeout is not None:
            self._net_timer = self.loop.call_later(timeout, self._check_network)

    def _check_network(self) -> None:
        self._net_timer = None
        timeout = self.settings.network_timeout
        if self.conn is None or self.conn.closed or timeout is None or self.sm.is_idle:
            return
        idle = self.loop.time() - self.conn.last_received
        # Only the peer's silence counts: not while our own work (a commit) is pending.
        if idle >= timeout and not self._pending:
            log.warning("no data from %s for %.0f s: aborting", self.calling_ae, idle)
            self.abort_reason = AssociationAborted(f"network timeout ({timeout} s)")
            self.abort()
            return
        self._net_timer = self.loop.call_later(max(timeout - idle, 0.05), self._check_network)

    def _fail(self, exc: AssociationError) -> None:
        if self.abort_reason is None:
            self.abort_reason = exc
        for fut in (self._established, self._released):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: nobody may be waiting
        for fut in self._responses.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        self._responses.clear()
        self._on_pending.clear()
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.abort()

    def _finalize(self, exc: BaseException | None) -> None:
        if self.sm.state != State.STA1 and exc is None:
            exc = AssociationAborted("connection closed")
        if not self._released.done() or not self._established.done() or self._responses \
                or self._sink is not None:
            self._fail(self.abort_reason or AssociationAborted(
                f"connection lost{f': {exc}' if exc else ''}"))
        for timer in (self._artim, self._net_timer):
            if timer is not None:
                timer.cancel()
        self._artim = self._net_timer = None
        if self.server is not None:
            self.server.unregister(self)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- DIMSE receive -----------------------------------------------------------------
    def _p_data(self, raw: bytes) -> None:
        try:
            pdvs = P.pdata_pdvs(raw)
            for ctx_id, control, view in pdvs:
                if ctx_id not in self.contexts:
                    raise DIMSEError(f"PDV on presentation context {ctx_id}, which was not "
                                     "accepted")
                for ev in self._reasm.feed(ctx_id, control, view):
                    if ev[0] == "data":
                        sink = self._sink
                        if sink is not None:
                            sink.write(ev[2])
                            if ev[3]:
                                self._sink = None
                                sink.finish()
                    else:
                        self._on_command(self.contexts[ctx_id], ev[2], ev[3])
        except (DIMSEError, P.PDUDecodeError) as exc:
            log.warning("DIMSE protocol error from %s: %s", self.calling_ae or "peer", exc)
            self.abort_reason = AssociationAborted(str(exc), 2, P.ABORT_INVALID_PARAMETER)
            if self.sm.can(Event.EVT19):
                self._event(Event.EVT19, abort_reason=P.ABORT_INVALID_PARAMETER)

    def _on_command(self, ctx: AcceptedContext, cmd: Dataset, has_data: bool) -> None:
        field_ = cmd[D.T_COMMAND_FIELD].value   # decode_command made sure it is there
        if field_ & 0x8000:
            msg_id = cmd.get(D.T_RESPONDED_TO)
            msg_id = msg_id.value if msg_id is not None else -1
            if has_data:
                self._sink = _Collect(lambda data: self._response(msg_id, cmd, data))
            else:
                self._response(msg_id, cmd, None)
            return
        sink = None
        if self.handler is not None:
            sink = self.handler.on_request(self, ctx, cmd)
        else:
            rsp = D.command({D.T_COMMAND_FIELD: field_ | 0x8000,
                             D.T_RESPONDED_TO: cmd.get(D.T_MESSAGE_ID).value
                             if D.T_MESSAGE_ID in cmd else 0,
                             D.T_DATA_SET_TYPE: D.NO_DATA_SET,
                             D.T_STATUS: D.UNRECOGNIZED_OPERATION})
            self.respond(ctx.id, rsp)
        if has_data:
            self._sink = sink if sink is not None else _Collect(lambda data: None)

    def _response(self, msg_id: int, cmd: Dataset, data: bytes | None) -> None:
        fut = self._responses.get(msg_id)
        status = cmd.get(D.T_STATUS)
        if fut is None:
            log.warning("response to unknown message ID %s ignored", msg_id)
            return
        if status is not None and D.status_category(status.value) == "Pending":
            # Keep waiting for the final response (C-FIND/C-GET/C-MOVE); a streaming
            # requestor sees each pending one (PS3.7 §9.1.2, §9.1.3, §9.1.4).
            callback = self._on_pending.get(msg_id)
            if callback is not None:
                callback(cmd, data)
            return
        del self._responses[msg_id]
        self._on_pending.pop(msg_id, None)
        if not fut.done():
            fut.set_result((cmd, data))

    # -- DIMSE send --------------------------------------------------------------------
    def next_message_id(self) -> int:
        """Message IDs 1-65535, unique among outstanding requests (PS3.7 §9.1.1.1)."""
        for _ in range(65536):
            self._message_id = self._message_id % 0xFFFF + 1
            if self._message_id not in self._responses:
                return self._message_id
        raise DIMSEError("no free message ID")

    async def send_message(self, context_id: int, cmd: Dataset | bytes,
                           data: Any = None) -> None:
        """Send one DIMSE message; messages never interleave (PS3.7 §8.1). `cmd` may
        be a command set already encoded (a stream of identical pending responses)."""
        raw_cmd = cmd if isinstance(cmd, bytes) else D.encode_command(cmd)
        max_value = D.max_pdv_value(self.peer_max_pdu, self.settings.max_send_pdu)
        async with self._send_lock:
            conn = self.conn
            if isinstance(data, transport.FileRegion):
                await self._send_file_message(conn, context_id, raw_cmd, data, max_value)
                return
            # A peer with a small maximum PDU length (DCMTK's default is 16 KiB) gets
            # many PDUs per data set: they go out in batches of about _SEND_BATCH
            # bytes, one write each, rather than one system call per PDU.
            batch: list[bytes] = []
            size = 0
            for pdu in D.message_pdus(context_id, raw_cmd, data, max_value):
                batch.append(pdu)
                size += len(pdu)
                if size >= _SEND_BATCH:
                    await self._send_pdus(conn, batch)
                    batch, size = [], 0
            if batch:
                await self._send_pdus(conn, batch)

    async def _send_file_message(self, conn: transport.Connection | None, context_id: int,
                                 raw_cmd: bytes, region: transport.FileRegion,
                                 max_value: int) -> None:
        """A message whose data set stays in a file: each PDU's headers written, then
        its data sent from the file by the kernel (the command goes with the first)."""
        pdus = list(D.message_pdus(context_id, raw_cmd, None, max_value))
        with region.open() as f:
            for head, start, take in D.data_pdu_heads(context_id, region.length, max_value):
                pdus.append(head)
                await self._send_pdus(conn, pdus)
                pdus = []
                try:
                    sent = await conn.sendfile(f, region.offset + start, take)  # type: ignore[union-attr]
                except (ConnectionError, RuntimeError) as exc:
                    raise self.abort_reason or AssociationAborted(f"connection lost: {exc}") \
                        from None
                if sent != take:
                    # The PDU header announced `take` bytes, so not even an A-ABORT
                    # could be framed now: the connection is dropped.
                    exc = AssociationAborted(f"{region.path} shrank while being sent")
                    self.abort_reason = self.abort_reason or exc
                    conn.abort()  # type: ignore[union-attr]
                    raise exc

    async def _send_pdus(self, conn: transport.Connection | None, pdus: list[bytes]) -> None:
        if self.abort_reason is not None or conn is None or conn.closed:
            raise self.abort_reason or AssociationAborted("connection closed")
        self._write_pdus(conn, pdus)
        if conn.must_wait:
            await conn.drain()

    def _write_pdus(self, conn: transport.Connection, pdus: list[bytes]) -> None:
        for _ in pdus:
            self._event(Event.EVT9)  # each PDU is one P-DATA request (PS3.8 §9.2)
        conn.write(pdus[0] if len(pdus) == 1 else b"".join(pdus))

    async def send_request(self, context_id: int, cmd: Dataset, data: Any = None, *,
                           on_pending: Callable[[Dataset, bytes | None], None] | None = None
                           ) -> asyncio.Future:
        """Send a request and return the future of its final response, a
        (command, data or None) pair; the caller awaits it with :meth:`wait_response`.
        ``on_pending(command, data)`` is called for each pending response before it."""
        if self.abort_reason is not None:
            raise self.abort_reason
        msg_id = cmd[D.T_MESSAGE_ID].value
        fut = self.loop.create_future()
        self._responses[msg_id] = fut
        if on_pending is not None:
            self._on_pending[msg_id] = on_pending
        try:
            await self.send_message(context_id, cmd, data)
        except BaseException:
            self._responses.pop(msg_id, None)
            self._on_pending.pop(msg_id, None)
            raise
        return fut

    async def wait_response(self, fut: asyncio.Future) -> tuple[Dataset, bytes | None]:
        timeout = self.settings.dimse_timeout
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            exc = self._dimse_timeout()
            self.abort_reason = self.abort_reason or exc
            self.abort()
            raise exc from None

    def when_answered(self, fut: asyncio.Future,
                      callback: Callable[[asyncio.Future], None]) -> None:
        """Call ``callback(fut)`` once the response future of :meth:`send_request` is
        settled: with the response, or failed when the association ends, or when no
        response came within the DIMSE timeout (the association is then aborted, as
        :meth:`wait_response` does). No task per request: a sender with many
        requests outstanding pays one timer each."""
        timeout = self.settings.dimse_timeout
        timer = self.loop.call_later(timeout, self._response_timed_out, fut) \
            if timeout is not None else None

        def settled(f: asyncio.Future) -> None:
            if timer is not None:
                timer.cancel()
            callback(f)

        fut.add_done_callback(settled)

    def _response_timed_out(self, fut: asyncio.Future) -> None:
        if fut.done():
            return
        self.abort_reason = self.abort_reason or self._dimse_timeout()
        self.abort()
        self._fail(self.abort_reason)   # every outstanding request fails now

    def _dimse_timeout(self) -> AssociationAborted:
        return AssociationAborted(
            f"no DIMSE response within {self.settings.dimse_timeout} s (DIMSE timeout)")

    def respond(self, context_id: int, cmd: Dataset) -> None:
        """Queue a response (from a callback); sent in order, after any message being sent.

        With nothing being sent or queued, a response without data is one small PDU:
        it is written at once rather than by a task that takes the send lock."""
        conn = self.conn
        if (not self._queued_responses and not self._send_lock.locked() and conn is not None
                and not conn.must_wait and self.abort_reason is None and not conn.closed):
            raw = D.encode_command(cmd)
            max_value = D.max_pdv_value(self.peer_max_pdu, self.settings.max_send_pdu)
            pdus = list(D.message_pdus(context_id, raw, None, max_value))
            if len(pdus) == 1:
                try:
                    self._write_pdus(conn, pdus)
                except AssociationError as exc:   # no P-DATA in this state
                    log.info("response not sent: %s", exc)
                return
        self._queued_responses += 1
        task = self.loop.create_task(self._respond(context_id, cmd))
        self.track(task)

    async def _respond(self, context_id: int, cmd: Dataset) -> None:
        try:
            await self.send_message(context_id, cmd)
        except AssociationError as exc:
            log.info("response not sent: %s", exc)
        finally:
            self._queued_responses -= 1

    def track(self, fut: asyncio.Future) -> None:
        """Count work a release must wait for (a commit, a response being sent)."""
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)

    # -- release and abort -------------------------------------------------------------
    async def release(self) -> None:
        """Release the association (PS3.8 §7.2) and wait for the connection to close."""
        if self.sm.state != State.STA6:
            if self.abort_reason is not None:
                raise self.abort_reason
            return
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        async with self._send_lock:  # never in the middle of a message
            if self.sm.state != State.STA6:
                return
            self._event(Event.EVT11)
        try:
            await asyncio.wait_for(asyncio.shield(self._released), self.settings.acse_timeout)
            await asyncio.wait_for(asyncio.shield(self.closed), self.settings.acse_timeout)
        except asyncio.TimeoutError:
            self.abort()
            raise AssociationError(f"no A-RELEASE-RP within {self.settings.acse_timeout} s "
                                   "(ACSE timeout)") from None

    def _on_release_indication(self) -> None:
        if self.sm.state == State.STA9:  # collision, requestor side: answer at once
            self._event(Event.EVT14)
            return
        if self.sm.state == State.STA10:  # collision, acceptor side: wait for the RP
            return
        task = self.loop.create_task(self._answer_release())
        self.track(task)

    async def _answer_release(self) -> None:
        # Responses still being committed go out before the A-RELEASE-RP (AR-7 allows
        # P-DATA in Sta8), so no acknowledgement is lost to an early release.
        others = [f for f in self._pending if f is not asyncio.current_task()]
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        async with self._send_lock:
            self._respond_release()

    def _respond_release(self) -> None:
        if self.sm.can(Event.EVT14):
            self._event(Event.EVT14)

    def abort(self) -> None:
        """A-ABORT (PS3.8 §7.3): the peer is told and the connection dropped."""
        if self.sm.can(Event.EVT15):
            self._event(Event.EVT15)
        if self.conn is not None and not self.conn.closed:
            self.conn.close()

    @property
    def is_established(self) -> bool:
        return self.sm.state == State.STA6

    async def __aenter__(self) -> Association:
        return self

    async def __aexit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            await self.release()
        else:
            self.abort()


# -- acceptor policy and server ------------------------------------------------------------

@dataclass
class AcceptorPolicy:
    """How an acceptor answers A-ASSOCIATE-RQ (PS3.8 §7.1.1, PS3.7 Annex D.3.3).

    ``abstract_syntaxes``: the SOP classes served, a set or a predicate.
    ``transfer_syntaxes``: the syntaxes accepted, a set or a predicate; of the proposed
    ones the first accepted wins (the requestor's preference, usually its files' own).
    ``called_ae_required``: refuse requests not addressed to ``ae_title``.
    ``calling_ae_titles``: if set, only these peers. ``identify``: user identity check
    (PS3.7 §D.3.3.7), (UserIdentityRQ) -> server response bytes, or None to refuse.
    """
    ae_title: str
    abstract_syntaxes: Any
    transfer_syntaxes: Any
    called_ae_required: bool = True
    calling_ae_titles: set[str] | None = None
    identify: Callable[[P.UserIdentityRQ], bytes | None] | None = None
    scp_roles: set[str] = field(default_factory=set)

    @staticmethod
    def _has(spec: Any, uid: str) -> bool:
        return spec(uid) if callable(spec) else uid in spec

    def negotiate(self, rq: P.AssociateRQ, server: Server) -> P.AssociateAC | P.AssociateRJ:
        if not rq.protocol_version & 1:
            return P.AssociateRJ(P.RJ_PERMANENT, P.RJ_SOURCE_ACSE,
                                 P.RJ_PROTOCOL_VERSION_NOT_SUPPORTED)
        if server.full:
            return P.AssociateRJ(P.RJ_TRANSIENT, P.RJ_SOURCE_PRESENTATION,
                                 P.RJ_LOCAL_LIMIT_EXCEEDED)
        # PS3.8 §9.3.2: AE titles are 1-16 significant characters; one we could not
        # even echo back in the A-ASSOCIATE-AC is not recognized.
        for title, reason in ((rq.called_ae, P.RJ_CALLED_AE_NOT_RECOGNIZED),
                              (rq.calling_ae, P.RJ_CALLING_AE_NOT_RECOGNIZED)):
            try:
                P.check_ae_title(title)
            except ValueError:
                return P.AssociateRJ(P.RJ_PERMANENT, P.RJ_SOURCE_USER, reason)
        if rq.application_context != P.APPLICATION_CONTEXT:
            return P.AssociateRJ(P.RJ_PERMANENT, P.RJ_SOURCE_USER,
                                 P.RJ_APP_CONTEXT_NOT_SUPPORTED)
        if self.called_ae_required and rq.called_ae != self.ae_title.strip():
            return P.AssociateRJ(P.RJ_PERMANENT, P.RJ_SOURCE_USER,
                                 P.RJ_CALLED_AE_NOT_RECOGNIZED)
        if self.calling_ae_titles is not None and rq.calling_ae not in self.calling_ae_titles:
            return P.AssociateRJ(P.RJ_PERMANENT, P.RJ_SOURCE_USER,
                                 P.RJ_CALLING_AE_NOT_RECOGNIZED)
        settings = server.settings
        user = P.UserInformation(settings.max_pdu, settings.implementation_class_uid,
                                 settings.implementation_version_name)
        identity = rq.user.user_identity_rq
        if identity is not None and self.identify is not None:
            response = self.identify(identity)
            if response is None:
                return P.AssociateRJ(P.RJ_PERMANENT, P.RJ_SOURCE_USER, P.RJ_NO_REASON)
            if identity.positive_response_requested:
                user.user_identity_ac = P.UserIdentityAC(response)
        if rq.user.async_ops is not None:
            # PS3.7 §D.3.3.3: answer with no more than proposed (0 = unlimited).
            invoked, _performed = rq.user.async_ops
            ours = max(settings.max_async_ops, 1)
            user.async_ops = (min(invoked, ours) if invoked else ours, 1)
        results = []
        accepted_abstract = set()
        seen: set[int] = set()
        for pc in rq.contexts:
            first = pc.transfer_syntaxes[0] if pc.transfer_syntaxes else ""
            if pc.id in seen:  # IDs are unique in a request (PS3.8 §9.3.2.2)
                results.append(P.PresentationContextResult(pc.id, P.PC_NO_REASON, first))
                continue
            seen.add(pc.id)
            if not self._has(self.abstract_syntaxes, pc.abstract_syntax):
                results.append(P.PresentationContextResult(
                    pc.id, P.PC_ABSTRACT_SYNTAX_NOT_SUPPORTED, first))
                continue
            chosen = next((ts for ts in pc.transfer_syntaxes
                           if self._has(self.transfer_syntaxes, ts)), None)
            if chosen is None:
                results.append(P.PresentationContextResult(
                    pc.id, P.PC_TRANSFER_SYNTAXES_NOT_SUPPORTED, first))
                continue
            results.append(P.PresentationContextResult(pc.id, P.PC_ACCEPTANCE, chosen))
            accepted_abstract.add(pc.abstract_syntax)
        for role in rq.user.roles:
            # PS3.7 §D.3.3.4: the requestor may be SCU as proposed; it may be SCP only
            # for the SOP classes we can act as SCU for.
            if role.sop_class_uid in accepted_abstract:
                user.roles.append(P.RoleSelection(
                    role.sop_class_uid, role.scu_role,
                    role.scp_role and role.sop_class_uid in self.scp_roles))
        return P.AssociateAC(rq.called_ae, rq.calling_ae, results, user)


class Server:
    """Listens for associations and serves each with a handler from `handler_factory`;
    at most ``max_associations`` at once (more are refused with A-ASSOCIATE-RJ,
    rejected-transient, local-limit-exceeded)."""

    def __init__(self, settings: Settings, policy: AcceptorPolicy,
                 handler_factory: Callable[[Association], Handler], *,
                 max_associations: int = 64, ssl: _ssl.SSLContext | None = None):
        self.settings = settings
        self.policy = policy
        self.handler_factory = handler_factory
        self.max_associations = max_associations
        self.ssl = ssl
        self.active: set[Association] = set()
        self.connections: set[Association] = set()
        self._server: asyncio.AbstractServer | None = None

    @property
    def full(self) -> bool:
        return len(self.active) >= self.max_associations

    def register(self, assoc: Association) -> None:
        self.active.add(assoc)

    def unregister(self, assoc: Association) -> None:
        self.active.discard(assoc)
        self.connections.discard(assoc)

    def _new(self) -> Association:
        return Association(False, self.settings, server=self)

    async def start(self, host: str | None = None, port: int = 0) -> Server:
        if host is None and port == 0:
            # Every interface and a free port: one IPv4 socket, so there is one port
            # (with IPv6 too, each socket would pick its own).
            host = "0.0.0.0"
        self._server = await transport.serve(host, port, self._new,
                                             max_pdata_len=self.settings.max_pdu, ssl=self.ssl,
                                             strict=self.settings.strict)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop listening; let running associations finish for up to `timeout` s, then
        abort the rest."""
        if self._server is not None:
            self._server.close()
        waiting = [a.closed for a in self.connections]
        if waiting:
            _done, pending = await asyncio.wait(waiting, timeout=timeout)
            if pending:
                for a in list(self.connections):
                    a.abort()
                await asyncio.wait([a.closed for a in self.connections] or waiting,
                                   timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
