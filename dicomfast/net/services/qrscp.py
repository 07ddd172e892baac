"""A small PACS node in one server: Verification, Storage into an
:class:`~dicomfast.archive.Archive`, Query/Retrieve (C-FIND, C-MOVE, C-GET, Patient
and Study Root), Modality Worklist, Storage Commitment (push model, over the
archive; reports to SCUs on a new association go to the AE table's addresses) and
MPPS (steps kept under ``ROOT/mpps``), plus any DIMSE-N services added to
:data:`N_SERVICES`, all on one port, dispatched by a
:class:`~dicomfast.net.services.router.ServiceRouter`.

Stored objects land as ``ROOT/<SOPInstanceUID>.dcm``, made durable by the storage
SCP (fsync, rename, folder fsync) before the archive commits their index row and
before the C-STORE-RSP goes out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dicomfast.archive import Archive
from dicomfast.net import dimse as D
from dicomfast.net.association import AcceptorPolicy, Server, Settings
from dicomfast.net.services import commitment, mpps
from dicomfast.net.services.mwl import WorklistStore
from dicomfast.net.services.qr import QueryRetrieveSCP
from dicomfast.net.services.router import ServiceRouter
from dicomfast.net.services.storage import StorageSCP, StoredObject
from dicomfast.transfer_syntax import ALL_TRANSFER_SYNTAXES
from dicomfast.uid import UID

__all__ = ["N_SERVICES", "QRServer", "is_storage_sop_class", "start_qrscp"]


def is_storage_sop_class(uid: str) -> bool:
    """Whether the registry (PS3.6 Annex A) names `uid` a storage SOP class."""
    u = UID(uid)
    kw = u.keyword
    return u.type == "SOP Class" and "Storage" in kw and not kw.startswith("StorageCommitment")


class _StorageRoles:
    """The SOP classes for which we take the SCU role when a C-GET requestor takes the
    SCP role (PS3.7 §D.3.3.4): every storage SOP class."""

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, str) and (is_storage_sop_class(uid)
                                         or uid == commitment.STORAGE_COMMITMENT)


#: More DIMSE-N services to mount on every qrscp: functions (router, archive,
#: settings) that register their handlers on the router. Storage Commitment and
#: MPPS are always mounted; adding a service is one entry here.
N_SERVICES: list[Callable[[ServiceRouter, Archive, Settings], Any]] = []


@dataclass
class QRServer:
    """A running qrscp: ``port``, ``close()``, ``serve_forever()``."""
    server: Server
    archive: Archive
    storage: StorageSCP
    qr: QueryRetrieveSCP

    @property
    def port(self) -> int:
        return self.server.port

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    async def close(self, timeout: float = 5.0) -> None:
        await self.server.close(timeout)
        await asyncio.get_running_loop().run_in_executor(None, self.storage.close)
        self.archive.close()


async def start_qrscp(settings: Settings, root: str | os.PathLike, *, port: int = 0,
                      host: str | None = None,
                      ae_table: Mapping[str, tuple[str, int]] | None = None,
                      worklist: str | os.PathLike | None = None, fsync: bool = True,
                      max_associations: int = 64, called_ae_required: bool = False,
                      ssl: Any = None) -> QRServer:
    """Start the server on `port` (0: a free one) over the archive at `root`."""
    archive = Archive(root, fsync=fsync)

    def on_store(obj: StoredObject) -> None:
        # The file is durable already (StorageSCP); now its row (PS3.4 §B.2.2: the
        # SCP answers Success only for what it keeps).
        archive.add_file(obj.path)

    storage = StorageSCP(archive.root, on_store=on_store, fsync=fsync)
    sources = {}
    if worklist is not None:
        sources["mwl"] = WorklistStore(worklist).query
    qr = QueryRetrieveSCP(archive, ae_table=ae_table, settings=settings, sources=sources)
    router = ServiceRouter()
    router.set_storage(storage, is_storage_sop_class)
    for command, classes in qr.sop_classes.items():
        router.add_c_handler(command, qr, classes)
    router.add_c_handler(D.C_CANCEL_RQ, qr, None)
    commitment.mount(router, archive, settings, scu_addresses=dict(ae_table or {}))
    mpps.mount(router, archive, settings)
    for mount in N_SERVICES:
        mount(router, archive, settings)
    syntaxes = frozenset(ts.uid for ts in ALL_TRANSFER_SYNTAXES)
    policy = AcceptorPolicy(settings.ae_title, router.accepts, syntaxes,
                            called_ae_required=called_ae_required,
                            scp_roles=_StorageRoles())  # type: ignore[arg-type]
    server = Server(settings, policy, router.handler, max_associations=max_associations,
                    ssl=ssl)
    await server.start(host, port)
    return QRServer(server, archive, storage, qr)
