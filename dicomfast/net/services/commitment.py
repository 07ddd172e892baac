"""Storage Commitment, push model (PS3.4 Annex J), both sides.

The SCU asks with N-ACTION (action type 1, Request Storage Commitment) carrying a
Transaction UID and the Referenced SOP Sequence; the SCP answers the N-ACTION at
once, checks each instance, and reports with N-EVENT-REPORT: event type 1 when all
are committed, 2 when some failed (Failed SOP Sequence with a Failure Reason each,
PS3.4 J.3.2.2 and Table J.3-2).

Where the report goes (PS3.4 J.3.3): on the requesting association while it is still
open; otherwise the SCP opens a new association to the SCU, proposing the Storage
Commitment Push Model SOP Class with the SCP role (SCP/SCU Role Selection,
PS3.7 §D.3.3.4), at the address configured for the SCU's AE title
(``scu_addresses={"MODALITY": ("host", port)}``). With no address configured, the
report is kept in ``undelivered`` and logged.

An instance is committed only when it is durably present: the archive knows it
(``get_instance``), its file exists, and the SOP class it was stored as is the one
asked about. Anything else lands in the failure list — never a false success:

* 0112H No such object instance: not in the archive, or its file is gone;
* 0119H Class/Instance conflict: stored under another SOP class;
* 0110H Processing failure: the lookup itself failed;
* 0131H Duplicate transaction UID: the Transaction UID was used before.

Mount the SCP into a :class:`~dicomfast.net.services.router.ServiceRouter`::

    scp = StorageCommitmentSCP(archive, scu_addresses={"CT1": ("10.0.0.5", 104)})
    scp.install(router)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DicomfastError, DIMSEError
from dicomfast.net import dimse_n as N
from dicomfast.net.association import Association, Settings
from dicomfast.net.pdu import RoleSelection
from dicomfast.net.services import nscu
from dicomfast.net.services.router import NEvent, NResult, ServiceRouter
from dicomfast.uid import generate_uid

log = logging.getLogger("dicomfast.net")

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
#: The well-known SOP Instance of the Push Model (PS3.4 J.3.1, PS3.6 Annex A).
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_COMMITMENT = 1      # N-ACTION Action Type ID (PS3.4 Table J.3-1)
EVENT_ALL_COMMITTED = 1     # N-EVENT-REPORT Event Type IDs (PS3.4 Table J.3-2)
EVENT_FAILURES = 2

# Failure Reasons (0008,1197), PS3.4 J.3.2.2 (values from PS3.7 Annex C where shared).
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
PROCESSING_FAILURE = 0x0110
REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
DUPLICATE_TRANSACTION_UID = 0x0131

_SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


@dataclass
class CommitmentResult:
    """The outcome of one transaction, as the N-EVENT-REPORT carries it."""
    transaction_uid: str
    committed: list[tuple[str, str]] = field(default_factory=list)   # (class, instance)
    failed: list[tuple[str, str, int]] = field(default_factory=list)  # + failure reason
    retrieve_ae_title: str | None = None
    event_type_id: int = EVENT_ALL_COMMITTED

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dataset(self) -> Dataset:
        ds = Dataset()
        ds.TransactionUID = self.transaction_uid
        if self.retrieve_ae_title:
            ds.RetrieveAETitle = self.retrieve_ae_title
        if self.committed:
            ds.ReferencedSOPSequence = [_ref(c, i) for c, i in self.committed]
        if self.failed:
            items = []
            for c, i, reason in self.failed:
                item = _ref(c, i)
                item.FailureReason = reason
                items.append(item)
            ds.FailedSOPSequence = items
        return ds

    @classmethod
    def from_dataset(cls, ds: Dataset, event_type_id: int) -> CommitmentResult:
        if "TransactionUID" not in ds:
            raise DIMSEError("storage commitment report without Transaction UID")
        out = cls(str(ds.TransactionUID), event_type_id=event_type_id)
        if "RetrieveAETitle" in ds:
            out.retrieve_ae_title = str(ds.RetrieveAETitle).strip() or None
        for item in _items(ds, "ReferencedSOPSequence"):
            out.committed.append((str(item.ReferencedSOPClassUID),
                                  str(item.ReferencedSOPInstanceUID)))
        for item in _items(ds, "FailedSOPSequence"):
            reason = int(item.FailureReason) if "FailureReason" in item else PROCESSING_FAILURE
            out.failed.append((str(item.ReferencedSOPClassUID),
                               str(item.ReferencedSOPInstanceUID), reason))
        # PS3.4 Table J.3-2: event type 1 means every instance committed; a report
        # that says so while listing failures is read as the failures it lists.
        if event_type_id == EVENT_ALL_COMMITTED and out.failed:
            log.warning("storage commitment report of type 1 lists failures")
        return out


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    if keyword not in ds:
        return []
    value = ds.get(keyword)
    value = getattr(value, "value", value)
    return list(value or [])


class _FolderLookup:
    """A folder written by the storage SCP (``<SOPInstanceUID>.dcm``): the SOP class
    is read from each file's File Meta (PS3.10 §7.1)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def get_instance(self, sop_instance_uid: str) -> Any:
        from dicomfast.net.services.storage import valid_uid
        from dicomfast.net.services.storescu import split_part10

        if not valid_uid(sop_instance_uid):
            return None
        path = self.root / f"{sop_instance_uid}.dcm"
        try:
            with open(path, "rb") as f:
                head = f.read(64 << 10)
        except OSError:
            return None
        split = split_part10(head)
        if split is None:
            return None
        meta = split[1]
        stored_as = meta.get(3, b"").decode("ascii", "replace").rstrip("\0 ")
        if stored_as != sop_instance_uid:
            return None
        return _Record(path, meta.get(2, b"").decode("ascii", "replace").rstrip("\0 "),
                       sop_instance_uid)


@dataclass
class _Record:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str


def _lookup_for(store: Any) -> Any:
    if hasattr(store, "get_instance"):
        return store
    root = Path(store)
    if (root / "index.sqlite").exists():
        from dicomfast.archive import Archive

        return Archive(root, create=False)
    return _FolderLookup(root)


class StorageCommitmentSCP:
    """The N-ACTION handler of the Push Model SCP (see the module docstring).

    ``store``: an archive (anything with ``get_instance(uid)`` returning a record with
    ``path`` and ``sop_class_uid``, e.g. :class:`dicomfast.archive.Archive`) or a
    folder (an archive root with ``index.sqlite``, else a storage SCP folder).
    ``settings``: our AE's association settings, for reports on a new association.
    ``retrieve_ae_title``: put in the report (PS3.4 J.3.2.2).
    """

    def __init__(self, store: Any, *, scu_addresses: dict[str, tuple[str, int]] | None = None,
                 settings: Settings | None = None, retrieve_ae_title: str | None = None,
                 same_association: bool = True):
        self.lookup = _lookup_for(store)
        self.scu_addresses = dict(scu_addresses or {})
        self.settings = settings or Settings()
        self.retrieve_ae_title = retrieve_ae_title
        self.same_association = same_association
        self.seen_transactions: set[str] = set()
        self.undelivered: list[tuple[str, CommitmentResult]] = []
        self.delivered: list[tuple[str, CommitmentResult, str]] = []   # (AE, result, how)

    def install(self, router: ServiceRouter) -> None:
        router.add_n_handler(STORAGE_COMMITMENT, self, [N.N_ACTION_RQ])

    # -- checking ----------------------------------------------------------------------
    def check(self, transaction_uid: str, refs: list[tuple[str, str]]) -> CommitmentResult:
        """Which of `refs` are durably present (runs in a worker thread)."""
        result = CommitmentResult(transaction_uid, retrieve_ae_title=self.retrieve_ae_title)
        duplicate = transaction_uid in self.seen_transactions
        self.seen_transactions.add(transaction_uid)
        for sop_class, sop_instance in refs:
            if duplicate:
                reason: int | None = DUPLICATE_TRANSACTION_UID
            else:
                reason = self._check_one(sop_class, sop_instance)
            if reason is None:
                result.committed.append((sop_class, sop_instance))
            else:
                result.failed.append((sop_class, sop_instance, reason))
        result.event_type_id = EVENT_FAILURES if result.failed else EVENT_ALL_COMMITTED
        return result

    def _check_one(self, sop_class: str, sop_instance: str) -> int | None:
        try:
            rec = self.lookup.get_instance(sop_instance)
            if rec is None or not os.path.isfile(rec.path):
                return NO_SUCH_OBJECT_INSTANCE
            if str(rec.sop_class_uid) != sop_class:
                return CLASS_INSTANCE_CONFLICT
            return None
        except (DicomfastError, OSError, ValueError) as exc:
            log.warning("storage commitment check of %s failed: %s", sop_instance, exc)
            return PROCESSING_FAILURE

    # -- the N-ACTION ------------------------------------------------------------------
    async def __call__(self, event: NEvent) -> NResult | int:
        rq = event.request
        if rq.sop_instance_uid != STORAGE_COMMITMENT_INSTANCE:
            return NResult(N.NO_SUCH_SOP_INSTANCE,
                           error_comment="not the Storage Commitment Push Model instance")
        if rq.action_type_id != REQUEST_COMMITMENT:
            return N.NO_SUCH_ACTION
        ds = event.dataset
        try:
            if ds is None or "TransactionUID" not in ds:
                raise ValueError("no Transaction UID")
            transaction = str(ds.TransactionUID)
            refs = [(str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID))
                    for i in _items(ds, "ReferencedSOPSequence")]
            if not refs:
                raise ValueError("empty Referenced SOP Sequence")
        except (DicomfastError, ValueError, AttributeError, KeyError) as exc:
            # PS3.4 J.3.2.1.2: a request the SCP cannot act on is refused outright.
            return NResult(N.INVALID_ARGUMENT_VALUE, error_comment=str(exc))
        calling = event.calling_ae
        assoc = event.assoc

        async def report() -> None:
            result = await event.run_blocking(self.check, transaction, refs)
            await self.deliver(calling, result, assoc)

        return NResult(N.SUCCESS, after=report)

    # -- the N-EVENT-REPORT ------------------------------------------------------------
    async def deliver(self, scu_ae: str, result: CommitmentResult,
                      assoc: Association | None = None) -> bool:
        """Send the report on `assoc` if still open, else on a new association to the
        SCU's configured address. True once the SCU acknowledged it."""
        info = result.to_dataset()
        if assoc is not None and self.same_association and assoc.is_established:
            try:
                rsp = await nscu.n_event_report(assoc, STORAGE_COMMITMENT,
                                                STORAGE_COMMITMENT_INSTANCE,
                                                result.event_type_id, info)
                if rsp.ok:
                    self.delivered.append((scu_ae, result, "same association"))
                    return True
                log.info("the SCU answered the commitment report with 0x%04X; trying a "
                         "new association", rsp.status)
            except (AssociationError, DIMSEError) as exc:
                log.info("commitment report on the same association failed (%s); "
                         "trying a new one", exc)
        address = self.scu_addresses.get(scu_ae.strip())
        if address is None:
            log.error("commitment %s for %s: association closed and no address known; "
                      "report kept", result.transaction_uid, scu_ae)
            self.undelivered.append((scu_ae, result))
            return False
        try:
            new = await Association.request(
                address[0], address[1], [(STORAGE_COMMITMENT, _SYNTAXES)],
                called_ae=scu_ae.strip(), settings=self.settings,
                roles=[RoleSelection(STORAGE_COMMITMENT, False, True)])
            async with new:
                rsp = await nscu.n_event_report(new, STORAGE_COMMITMENT,
                                                STORAGE_COMMITMENT_INSTANCE,
                                                result.event_type_id, info)
            if not rsp.ok:
                raise DIMSEError(f"report answered with 0x{rsp.status:04X}")
            self.delivered.append((scu_ae, result, "new association"))
            return True
        except (AssociationError, DIMSEError) as exc:
            log.error("commitment %s: cannot report to %s at %s:%s: %s",
                      result.transaction_uid, scu_ae, address[0], address[1], exc)
            self.undelivered.append((scu_ae, result))
            return False


# -- the SCU side -------------------------------------------------------------------------

class CommitmentReports:
    """Waits for N-EVENT-REPORTs by Transaction UID; an N handler for the requesting
    association and, when the SCP reports on a new association, for a listening
    server (:meth:`start_listener`)."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future] = {}
        self._early: dict[str, CommitmentResult] = {}

    def expect(self, transaction_uid: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        if transaction_uid in self._early:
            fut.set_result(self._early.pop(transaction_uid))
        else:
            self._waiting[transaction_uid] = fut
        return fut

    def __call__(self, event: NEvent) -> int:
        rq = event.request
        if rq.event_type_id not in (EVENT_ALL_COMMITTED, EVENT_FAILURES):
            return N.NO_SUCH_EVENT_TYPE
        if event.dataset is None:
            return N.INVALID_ARGUMENT_VALUE
        try:
            result = CommitmentResult.from_dataset(event.dataset, rq.event_type_id or 0)
        except (DicomfastError, ValueError, AttributeError) as exc:
            log.warning("bad storage commitment report: %s", exc)
            return N.INVALID_ARGUMENT_VALUE
        fut = self._waiting.pop(result.transaction_uid, None)
        if fut is None:
            self._early[result.transaction_uid] = result
        elif not fut.done():
            fut.set_result(result)
        return N.SUCCESS

    def router(self) -> ServiceRouter:
        router = ServiceRouter()
        router.add_n_handler(STORAGE_COMMITMENT, self, [N.N_EVENT_REPORT_RQ])
        return router

    async def start_listener(self, settings: Settings, *, host: str | None = None,
                             port: int = 0) -> Any:
        """A server that accepts the SCP's report association (SCP role granted)."""
        from dicomfast.net.association import AcceptorPolicy, Server

        router = self.router()
        policy = AcceptorPolicy(settings.ae_title, {STORAGE_COMMITMENT}, set(_SYNTAXES),
                                called_ae_required=False, scp_roles={STORAGE_COMMITMENT})
        server = Server(settings, policy, router.handler)
        await server.start(host, port)
        return server


async def request_commitment(settings: Settings, host: str, port: int,
                             refs: Iterable[tuple[str, str]], *, called_ae: str = "ANY-SCP",
                             transaction_uid: str | None = None, timeout: float = 60.0,
                             reports: CommitmentReports | None = None,
                             keep_open: bool = True) -> CommitmentResult:
    """Ask for commitment of `refs` ((SOP class, SOP instance) pairs) and wait up to
    `timeout` s for the report: on this association (``keep_open``), or, released
    right after the N-ACTION-RSP, on `reports`' listener. Raises DIMSEError when the
    N-ACTION is refused, AssociationError when no report comes."""
    refs = list(refs)
    transaction = transaction_uid or str(generate_uid())
    reports = reports or CommitmentReports()
    fut = reports.expect(transaction)
    info = Dataset()
    info.TransactionUID = transaction
    info.ReferencedSOPSequence = [_ref(c, i) for c, i in refs]
    assoc = await Association.request(host, port, [(STORAGE_COMMITMENT, _SYNTAXES)],
                                      called_ae=called_ae, settings=settings,
                                      handler=reports.router())
    try:
        rsp = await nscu.n_action(assoc, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE,
                                  REQUEST_COMMITMENT, info)
        if not rsp.ok:
            raise DIMSEError(f"storage commitment request refused: "
                             f"{N.status_name(rsp.status)} (0x{rsp.status:04X})"
                             + (f": {rsp.error_comment}" if rsp.error_comment else ""))
        if not keep_open:
            await assoc.release()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise AssociationError(f"no storage commitment report for {transaction} "
                                   f"within {timeout} s") from None
    finally:
        if assoc.is_established:
            await assoc.release()


def references_of(paths: Iterable[str | os.PathLike],
                  on_error: Callable[[str, Exception], None] | None = None
                  ) -> list[tuple[str, str]]:
    """(SOP class, SOP instance) of each file, from its File Meta or data set."""
    from dicomfast.part10 import read

    out = []
    for p in paths:
        try:
            ds = read(p, stop_before_pixels=True)
            meta = ds.file_meta
            cls_uid = str(meta.MediaStorageSOPClassUID) if meta is not None and \
                "MediaStorageSOPClassUID" in meta else str(ds.SOPClassUID)
            inst = str(meta.MediaStorageSOPInstanceUID) if meta is not None and \
                "MediaStorageSOPInstanceUID" in meta else str(ds.SOPInstanceUID)
            out.append((cls_uid, inst))
        except (DicomfastError, OSError, AttributeError, ValueError) as exc:
            if on_error is None:
                raise
            on_error(str(p), exc)
    return out


def mount(router: ServiceRouter, archive: Any, settings: Settings, *,
          scu_addresses: dict[str, tuple[str, int]] | None = None) -> StorageCommitmentSCP:
    """Serve Storage Commitment over `archive` on `router` (the shape of qrscp's
    ``N_SERVICES`` entries)."""
    scp = StorageCommitmentSCP(archive, settings=settings, scu_addresses=scu_addresses)
    scp.install(router)
    return scp
