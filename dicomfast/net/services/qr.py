"""Query/Retrieve (PS3.4 Annex C) SCP side: C-FIND, C-MOVE and C-GET over an
:class:`~dicomfast.archive.Archive`, Patient Root and Study Root at every level,
with C-CANCEL honoured (PS3.7 §9.3.2.3).

* C-FIND: the identifier is matched by the archive (PS3.4 §C.2.2.2); each match
  goes back in a Pending response as soon as it is encoded (the query runs in a
  worker thread, a batch at a time), the final response is Success, or Cancel when
  a C-CANCEL-RQ arrived first.
* C-MOVE: the destination AE title is looked up in a table (title -> host, port);
  an unknown one is refused with 0xA801. The matching instances go to it over a
  new association; after each C-STORE sub-operation a Pending response carries the
  remaining, completed, failed and warning counts (PS3.4 §C.4.2.1.5).
* C-GET: the same, but the C-STORE sub-operations go back over the requesting
  association, on the storage contexts for which the requestor took the SCP role
  (PS3.7 §D.3.3.4).

Final retrieve statuses: Success (0x0000) only when every sub-operation succeeded;
0xB000 when some failed or warned; 0xA702 when none could be performed (the
destination refused the association, every one failed); 0xFE00 after a C-CANCEL,
with the counts so far. A failure response's identifier lists the Failed SOP
Instance UIDs (0008,0058).

The SCU side is :mod:`dicomfast.net.services.qrscu`; one source of C-FIND answers
can be added per information model (the Modality Worklist uses this, see
:mod:`dicomfast.net.services.mwl`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DicomfastError
from dicomfast.net import dimse as D
from dicomfast.net import dimse_c as C
from dicomfast.net.association import AcceptedContext, Association, Settings
from dicomfast.net.services import identifiers as I
from dicomfast.net.services.storescu import StoreResult, contexts_for, send_all

log = logging.getLogger("dicomfast.net")

__all__ = ["AETable", "QueryRetrieveSCP", "FindSource", "load_ae_table"]

#: A C-FIND answer source: (level, identifier dict, model) -> matches as dicts.
FindSource = Callable[[str, dict[str, Any], str], Iterator[Mapping[str, Any]]]
AETable = dict[str, tuple[str, int]]

_BATCH = 64           # matches encoded per hand-over from the query thread
_YIELD_EVERY = 16     # responses sent between looks at incoming PDUs (C-CANCEL)
_MAX_BATCHES_AHEAD = 32


def load_ae_table(path: str) -> AETable:
    """An AE table file: JSON ``{"AET": ["host", port], ...}``, or lines of
    ``AET host port`` (``#`` starts a comment)."""
    import json

    with open(path, encoding="utf-8") as f:
        text = f.read()
    table: AETable = {}
    if text.lstrip().startswith("{"):
        for title, (host, port) in json.loads(text).items():
            table[title.strip()] = (str(host), int(port))
        return table
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"{path}:{n}: expected 'AET host port'")
        table[parts[0]] = (parts[1], int(parts[2]))
    return table


class _Sink:
    """Gathers a request's identifier (they are small)."""

    def __init__(self, done: Callable[[bytes], None]):
        self.parts: list[bytes] = []
        self.done = done

    def write(self, data: memoryview) -> None:
        self.parts.append(bytes(data))

    def finish(self) -> None:
        self.done(b"".join(self.parts))

    def abort(self) -> None:
        self.parts = []


@dataclass
class _Operation:
    assoc: Association
    ctx: AcceptedContext
    cmd: Dataset
    cancelled: bool = False
    failed_uids: list[str] = field(default_factory=list)


def _text(cmd: Dataset, tag: int) -> str:
    el = cmd.get(tag)
    if el is None:
        return ""
    try:
        return str(el.value or "").strip("\0 ")
    except DicomfastError:
        return ""


class QueryRetrieveSCP:
    """C-FIND / C-MOVE / C-GET / C-CANCEL handler (a ``Handler`` for one association or
    a router's C handler) over `archive`. `ae_table`: C-MOVE destinations;
    `settings`: how sub-associations are requested (our AE title, timeouts);
    `sources`: extra C-FIND sources by model name ("mwl": a worklist)."""

    def __init__(self, archive: Any = None, *, ae_table: Mapping[str, tuple[str, int]] | None = None,
                 settings: Settings | None = None,
                 sources: Mapping[str, FindSource] | None = None):
        self.archive = archive
        self.ae_table: AETable = {k.strip(): (h, int(p)) for k, (h, p) in
                                  (ae_table or {}).items()}
        self.settings = settings or Settings()
        self.sources: dict[str, FindSource] = {}
        if archive is not None:
            self.sources["patient"] = self._archive_find
            self.sources["study"] = self._archive_find
        self.sources.update(sources or {})
        self._ops: dict[tuple[int, int], _Operation] = {}

    # -- SOP classes served --------------------------------------------------------
    @property
    def sop_classes(self) -> dict[int, list[str]]:
        """Command field -> the SOP classes this SCP serves for it."""
        finds = [uid for model, uid in C.FIND_MODELS.items() if model in self.sources]
        out = {D.C_FIND_RQ: finds}
        if self.archive is not None:
            out[D.C_MOVE_RQ] = list(C.MOVE_MODELS.values())
            out[D.C_GET_RQ] = list(C.GET_MODELS.values())
        return out

    def _archive_find(self, level: str, ident: dict[str, Any],
                      model: str) -> Iterator[Mapping[str, Any]]:
        return self.archive.query(level, ident, model=model)

    # -- dispatch ------------------------------------------------------------------
    def handler(self, assoc: Association) -> QueryRetrieveSCP:
        return self

    def on_request(self, assoc: Association, ctx: AcceptedContext, cmd: Dataset):
        field_ = cmd.CommandField
        if field_ == D.C_CANCEL_RQ:
            el = cmd.get(D.T_RESPONDED_TO)
            op = self._ops.get((id(assoc), int(el.value))) if el is not None else None
            if op is not None:
                op.cancelled = True
            return None
        if field_ not in (D.C_FIND_RQ, D.C_MOVE_RQ, D.C_GET_RQ):
            assoc.respond(ctx.id, C.response(cmd, D.UNRECOGNIZED_OPERATION))
            return None
        msg_id = int(cmd.MessageID)
        op = _Operation(assoc, ctx, cmd)
        # Registered now: a C-CANCEL may come before the identifier is complete.
        self._ops[(id(assoc), msg_id)] = op
        if not D.has_data_set(cmd):
            self._ops.pop((id(assoc), msg_id), None)
            assoc.respond(ctx.id, C.response(cmd, C.UNABLE_TO_PROCESS,
                                             error_comment="no identifier"))
            return None

        def start(data: bytes) -> None:
            run = self._find if field_ == D.C_FIND_RQ else self._retrieve
            task = assoc.loop.create_task(self._guard(run, op, data, msg_id))
            assoc.track(task)

        return _Sink(start)

    async def _guard(self, run: Callable[..., Any], op: _Operation, data: bytes,
                     msg_id: int) -> None:
        try:
            await run(op, data)
        except AssociationError as exc:
            log.info("query/retrieve ended: %s", exc)
        except Exception as exc:  # a bug of ours: answer, never leave the peer waiting
            log.exception("query/retrieve failed")
            await self._final(op, C.UNABLE_TO_PROCESS, comment=f"{type(exc).__name__}: {exc}")
        finally:
            self._ops.pop((id(op.assoc), msg_id), None)

    async def _final(self, op: _Operation, status: int, *,
                     counts: tuple[int, int, int, int] | None = None,
                     comment: str | None = None) -> None:
        data = None
        if op.failed_uids and status != D.SUCCESS:
            ident = Dataset()
            ident.add_new(0x00080058, "UI", list(op.failed_uids))
            data = I.encode(ident, op.ctx.transfer_syntax)
        rsp = C.response(op.cmd, status, has_data=data is not None, counts=counts,
                         error_comment=comment)
        try:
            await op.assoc.send_message(op.ctx.id, rsp, data)
        except AssociationError as exc:
            log.info("final response not sent: %s", exc)

    def _identifier(self, op: _Operation, data: bytes) -> tuple[str, str, dict[str, Any]]:
        ds = I.decode(data, op.ctx.transfer_syntax)
        ident = I.to_dict(ds)
        level = str(ident.pop("QueryRetrieveLevel", "") or "").strip().upper()
        model = C.MODEL_OF.get(op.ctx.abstract_syntax, "")
        return level, model, ident

    # -- C-FIND --------------------------------------------------------------------
    async def _find(self, op: _Operation, data: bytes) -> None:
        try:
            level, model, ident = self._identifier(op, data)
        except DicomfastError as exc:
            await self._final(op, C.UNABLE_TO_PROCESS, comment=str(exc))
            return
        source = self.sources.get(model)
        if source is None:
            await self._final(op, D.SOP_CLASS_NOT_SUPPORTED)
            return
        assoc, loop = op.assoc, op.assoc.loop
        queue: asyncio.Queue = asyncio.Queue()
        ts = op.ctx.transfer_syntax

        # Batches encoded but not yet sent: a slow SCU holds the query back instead of
        # letting a large answer pile up in memory.
        slots = threading.BoundedSemaphore(_MAX_BATCHES_AHEAD)

        def hand_over(batch: list[bytes]) -> bool:
            while not slots.acquire(timeout=0.2):
                if op.cancelled or assoc.abort_reason is not None:
                    return False
            loop.call_soon_threadsafe(queue.put_nowait, batch)
            return True

        def produce() -> None:
            batch: list[bytes] = []
            try:
                for match in source(level, ident, model):
                    if op.cancelled or assoc.abort_reason is not None:
                        break
                    out = dict(match)
                    if model != "mwl":
                        out["QueryRetrieveLevel"] = level
                        # Where the matches can be retrieved from: here, and now
                        # (PS3.4 §C.4.1.1.3.2, §C.3.4 Instance Availability).
                        if "RetrieveAETitle" in out:
                            out["RetrieveAETitle"] = self.settings.ae_title
                        if "InstanceAvailability" in out:
                            out["InstanceAvailability"] = "ONLINE"
                    batch.append(I.encode_mapping(out, ts))
                    if len(batch) >= _BATCH:
                        if not hand_over(batch):
                            break
                        batch = []
                if batch:
                    hand_over(batch)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = loop.run_in_executor(None, produce)
        # Every pending response has the same command set: encoded once.
        pending = D.encode_command(C.response(op.cmd, C.PENDING, has_data=True))
        sent = 0
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, Exception):
                    status = (C.IDENTIFIER_DOES_NOT_MATCH if isinstance(item, ValueError)
                              else C.UNABLE_TO_PROCESS)
                    await self._final(op, status, comment=str(item))
                    return
                for encoded in item:
                    if op.cancelled:
                        break
                    await assoc.send_message(op.ctx.id, pending, encoded)
                    sent += 1
                    if sent % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # let a C-CANCEL-RQ in
                slots.release()
                if op.cancelled:
                    break
        finally:
            op.cancelled = op.cancelled or assoc.abort_reason is not None
            await worker
        if assoc.abort_reason is not None:
            return
        await self._final(op, C.CANCEL if op.cancelled else D.SUCCESS)

    # -- C-MOVE and C-GET ----------------------------------------------------------
    def instances_for(self, level: str, ident: dict[str, Any], model: str) -> list[Any]:
        """The archive's instances below the entities that match `ident` at `level`."""
        archive = self.archive
        level = level.upper()
        if level == "PATIENT":
            pids = [r["PatientID"] for r in archive.query("PATIENT", ident, model="patient")]
            studies = [r["StudyInstanceUID"] for pid in pids for r in archive.query(
                "STUDY", {"PatientID": pid or ""}, model="patient") if pid is not None]
            return [rec for uid in studies for rec in archive.instances(study_uid=uid)]
        key = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
               "IMAGE": "SOPInstanceUID"}.get(level)
        if key is None:
            from dicomfast.archive.matching import QueryError

            raise QueryError(f"unknown query/retrieve level {level!r}")
        uids = [r[key] for r in archive.query(level, ident, model=model)]
        arg = {"STUDY": "study_uid", "SERIES": "series_uid", "IMAGE": "sop_instance_uid"}[level]
        return [rec for uid in uids for rec in archive.instances(**{arg: uid})]

    async def _retrieve(self, op: _Operation, data: bytes) -> None:
        assoc, cmd = op.assoc, op.cmd
        is_move = cmd.CommandField == D.C_MOVE_RQ
        try:
            level, model, ident = self._identifier(op, data)
        except DicomfastError as exc:
            await self._final(op, C.UNABLE_TO_PROCESS, comment=str(exc))
            return
        if self.archive is None or model not in ("patient", "study"):
            await self._final(op, D.SOP_CLASS_NOT_SUPPORTED)
            return
        destination = None
        if is_move:
            title = _text(cmd, D.T_MOVE_DESTINATION)
            destination = self.ae_table.get(title)
            if destination is None:
                await self._final(op, C.MOVE_DESTINATION_UNKNOWN,
                                  comment=f"unknown move destination {title!r}")
                return
        try:
            found = await assoc.loop.run_in_executor(None, self.instances_for, level, ident,
                                                     model)
        except (DicomfastError, ValueError) as exc:
            await self._final(op, C.IDENTIFIER_DOES_NOT_MATCH, comment=str(exc))
            return
        total = len(found)
        counts = [total, 0, 0, 0]   # remaining, completed, failed, warning
        if total == 0:
            await self._final(op, D.SUCCESS, counts=(0, 0, 0, 0))
            return
        target = assoc
        if is_move:
            assert destination is not None
            host, port = destination
            settings = Settings(ae_title=self.settings.ae_title,
                                acse_timeout=self.settings.acse_timeout,
                                dimse_timeout=self.settings.dimse_timeout,
                                connect_timeout=self.settings.connect_timeout,
                                max_pdu=self.settings.max_pdu)
            try:
                target = await Association.request(
                    host, port, contexts_for({(r.sop_class_uid, r.transfer_syntax_uid)
                                              for r in found}),
                    called_ae=title, settings=settings)
            except AssociationError as exc:
                op.failed_uids = [r.sop_instance_uid for r in found]
                await self._final(op, C.OUT_OF_RESOURCES_SUBOPS, counts=(0, 0, total, 0),
                                  comment=f"destination: {exc}")
                return
        pending = []

        def sources() -> Iterator[str]:
            for rec in found:
                if op.cancelled or assoc.abort_reason is not None:
                    return
                yield str(rec.path)

        def on_result(res: StoreResult) -> None:
            counts[0] -= 1
            category = D.status_category(res.status) if res.status is not None else "Failure"
            if category == "Success":
                counts[1] += 1
            elif category == "Warning":
                counts[3] += 1
            else:
                counts[2] += 1
                op.failed_uids.append(res.sop_instance_uid)
            if assoc.abort_reason is None:
                rsp = C.response(cmd, C.PENDING, counts=tuple(counts))  # type: ignore[arg-type]
                task = assoc.loop.create_task(assoc.send_message(op.ctx.id, rsp))
                pending.append(task)

        try:
            # The C-STORE sub-operations of a C-MOVE name the move's originator
            # (PS3.4 C.4.2.2.2); a C-GET's go back to the originator itself.
            originator = (assoc.calling_ae, cmd.MessageID) if is_move else None
            await send_all(target, sources(), on_result=on_result,
                           move_originator=originator)
        finally:
            if is_move:
                try:
                    await target.release()
                except AssociationError:
                    target.abort()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if assoc.abort_reason is not None:
            return
        remaining, completed, failed, warning = counts
        if op.cancelled and remaining:
            # Not attempted: neither completed nor failed (PS3.4 §C.4.2.3.1).
            await self._final(op, C.CANCEL, counts=(remaining, completed, failed, warning))
            return
        # Objects whose sub-operation never ran (the destination went away) failed.
        for rec in found[completed + failed + warning:]:
            if rec.sop_instance_uid not in op.failed_uids:
                op.failed_uids.append(rec.sop_instance_uid)
        failed += remaining
        if failed == 0 and warning == 0:
            status = D.SUCCESS
        elif completed == 0 and warning == 0:
            status = C.OUT_OF_RESOURCES_SUBOPS
        else:
            status = C.SUBOPS_WITH_FAILURES
        await self._final(op, status, counts=(0, completed, failed, warning))
