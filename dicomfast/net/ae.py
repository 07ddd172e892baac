"""The application entity: the public face of dicomfast.net.

    >>> from dicomfast.net import AE
    >>> ae = AE("MYSCU")
    >>> ae.echo("127.0.0.1", 11112, called_ae="STORESCP")          # status, 0 = success
    >>> results = ae.store("127.0.0.1", 11112, ["study/"], called_ae="STORESCP")
    >>> with ae.serve_in_background("incoming/", port=11112) as server: ...

Every blocking method has an ``async`` twin (``echo_async``, ``store_async``,
``start_storage_scp``) for use inside a running event loop.
"""

from __future__ import annotations

import asyncio
import os
import ssl as _ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError
from dicomfast.net import dimse as D
from dicomfast.net.association import (
    AcceptorPolicy,
    Association,
    AssociationAborted,
    AssociationRejected,
    Server,
    Settings,
)
from dicomfast.net.dimse_n import NResponse
from dicomfast.net.pdu import check_ae_title
from dicomfast.net.services import nscu
from dicomfast.net.services.storage import VERIFICATION, StorageSCP, StoredObject
from dicomfast.net.services.storescu import (
    StoreResult,
    contexts_for,
    expand,
    load,
    send_all,
    split_part10,
)
from dicomfast.transfer_syntax import ALL_TRANSFER_SYNTAXES
from dicomfast.uid import UID

try:
    from dicomfast._native import _fileio  # (a package import: the layering linter sees it)

    read_heads: Callable[..., list[Any]] | None = _fileio.read_heads
except ImportError:  # a build without it: each file's head is read in Python
    read_heads = None

__all__ = ["AE", "AssociationAborted", "AssociationRejected", "StoreResult", "StoredObject",
           "StorageServer", "is_storage_sop_class"]

_KNOWN_SYNTAXES = frozenset(ts.uid for ts in ALL_TRANSFER_SYNTAXES)
_MAX_CONTEXTS = 128
_N_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")


def is_storage_sop_class(uid: str) -> bool:
    """Whether the registry (PS3.6 Annex A) names `uid` a storage SOP class."""
    u = UID(uid)
    kw = u.keyword
    return u.type == "SOP Class" and "Storage" in kw and not kw.startswith("StorageCommitment")


class StorageServer:
    """A running storage SCP: ``port``, ``close()``, ``serve_forever()``."""

    def __init__(self, server: Server, scp: StorageSCP):
        self.server, self.scp = server, scp

    @property
    def port(self) -> int:
        return self.server.port

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    async def close(self, timeout: float = 5.0) -> None:
        await self.server.close(timeout)
        await asyncio.get_running_loop().run_in_executor(None, self.scp.close)


class BackgroundServer:
    """A storage SCP on its own thread and event loop (for scripts and tests)."""

    def __init__(self, start: Callable[[], Any]):
        self._start = start
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="dicomfast-scp", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                server = await self._start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self.port = server.port
            self._ready.set()
            await self._stop.wait()
            await server.close()
        asyncio.run(main())

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class AE:
    """A DICOM application entity with its association settings (see
    :class:`~dicomfast.net.association.Settings` for ``max_pdu`` and the timeouts)."""

    def __init__(self, ae_title: str = "DICOMFAST", **settings: Any):
        check_ae_title(ae_title)
        self.settings = Settings(ae_title=ae_title, **settings)

    # -- requestor -------------------------------------------------------------------
    async def associate(self, host: str, port: int, contexts: Iterable[tuple[str, list[str]]],
                        *, called_ae: str = "ANY-SCP", ssl: _ssl.SSLContext | None = None,
                        **kw: Any) -> Association:
        """Request an association; use it as ``async with`` to release it at the end."""
        return await Association.request(host, port, contexts, called_ae=called_ae,
                                         settings=self.settings, ssl=ssl, **kw)

    async def echo_async(self, host: str, port: int, *, called_ae: str = "ANY-SCP",
                         ssl: _ssl.SSLContext | None = None) -> int:
        """C-ECHO (PS3.7 §9.1.5): the response status (0 = success)."""
        assoc = await self.associate(host, port, [(VERIFICATION, ["1.2.840.10008.1.2"])],
                                     called_ae=called_ae, ssl=ssl)
        async with assoc:
            if not assoc.contexts:
                raise AssociationError("the peer does not accept the Verification SOP class")
            ctx = next(iter(assoc.contexts))
            fut = await assoc.send_request(ctx, D.echo_rq(assoc.next_message_id()))
            cmd, _ = await assoc.wait_response(fut)
            return int(cmd.Status)

    def echo(self, host: str, port: int, **kw: Any) -> int:
        return asyncio.run(self.echo_async(host, port, **kw))

    async def store_async(self, host: str, port: int,
                          sources: Iterable[str | os.PathLike | Dataset], *,
                          called_ae: str = "ANY-SCP", ssl: _ssl.SSLContext | None = None,
                          on_result: Callable[[StoreResult], None] | None = None
                          ) -> list[StoreResult]:
        """C-STORE files, folders (recursively) and Datasets, all over one association
        (more only when they need over 128 presentation contexts). Returns one
        StoreResult per object; failures are reported there, not raised, unless the
        association cannot be established at all."""
        items: list[Any] = []
        for src in sources:
            if isinstance(src, Dataset):
                items.append(src)
            else:
                items.extend(expand([src]))
        loop = asyncio.get_running_loop()
        keyed = await loop.run_in_executor(None, _probe_all, items)
        results: list[StoreResult] = []
        batch: list[tuple[Any, tuple[str, str]]] = []
        pairs: set[tuple[str, str]] = set()

        async def flush() -> None:
            if not batch:
                return
            assoc = await self.associate(host, port, contexts_for(k for _, k in batch),
                                         called_ae=called_ae, ssl=ssl)
            try:
                results.extend(await send_all(assoc, iter([s for s, _ in batch]),
                                              on_result=on_result))
            except BaseException:
                assoc.abort()
                raise
            try:
                await assoc.release()
            except AssociationError:
                pass  # an aborted association: each object's result already says so
            batch.clear()
            pairs.clear()

        for src, key in keyed:
            if isinstance(key, StoreResult):
                results.append(key)
                if on_result is not None:
                    on_result(key)
                continue
            if key not in pairs and len(contexts_for(pairs | {key})) > _MAX_CONTEXTS:
                await flush()
            pairs.add(key)
            batch.append((src, key))
        await flush()
        return results

    def store(self, host: str, port: int, sources: Iterable[str | os.PathLike | Dataset],
              **kw: Any) -> list[StoreResult]:
        return asyncio.run(self.store_async(host, port, sources, **kw))

    # -- DIMSE-N (PS3.7 §10.1), one association per call -------------------------------
    async def _n(self, op: Callable[..., Any], host: str, port: int, sop_class_uid: str,
                 *args: Any, called_ae: str = "ANY-SCP", abstract_syntax: str | None = None,
                 ssl: _ssl.SSLContext | None = None) -> Any:
        abstract = abstract_syntax or sop_class_uid
        assoc = await self.associate(host, port, [(abstract, list(_N_SYNTAXES))],
                                     called_ae=called_ae, ssl=ssl)
        async with assoc:
            return await op(assoc, sop_class_uid, *args, abstract_syntax=abstract)

    async def n_get_async(self, host: str, port: int, sop_class_uid: str,
                          sop_instance_uid: str, attributes: Iterable[int] | None = None,
                          **kw: Any) -> NResponse:
        """N-GET: an NResponse (status, dataset); see services.nscu for the rest."""
        return await self._n(nscu.n_get, host, port, sop_class_uid, sop_instance_uid,
                             attributes, **kw)

    async def n_set_async(self, host: str, port: int, sop_class_uid: str,
                          sop_instance_uid: str, modifications: Dataset,
                          **kw: Any) -> NResponse:
        return await self._n(nscu.n_set, host, port, sop_class_uid, sop_instance_uid,
                             modifications, **kw)

    async def n_action_async(self, host: str, port: int, sop_class_uid: str,
                             sop_instance_uid: str, action_type_id: int,
                             information: Dataset | None = None, **kw: Any) -> NResponse:
        return await self._n(nscu.n_action, host, port, sop_class_uid, sop_instance_uid,
                             action_type_id, information, **kw)

    async def n_create_async(self, host: str, port: int, sop_class_uid: str,
                             attributes: Dataset | None = None,
                             sop_instance_uid: str | None = None, **kw: Any) -> NResponse:
        return await self._n(nscu.n_create, host, port, sop_class_uid, attributes,
                             sop_instance_uid, **kw)

    async def n_delete_async(self, host: str, port: int, sop_class_uid: str,
                             sop_instance_uid: str, **kw: Any) -> NResponse:
        return await self._n(nscu.n_delete, host, port, sop_class_uid, sop_instance_uid, **kw)

    def n_get(self, *args: Any, **kw: Any) -> NResponse:
        return asyncio.run(self.n_get_async(*args, **kw))

    def n_set(self, *args: Any, **kw: Any) -> NResponse:
        return asyncio.run(self.n_set_async(*args, **kw))

    def n_action(self, *args: Any, **kw: Any) -> NResponse:
        return asyncio.run(self.n_action_async(*args, **kw))

    def n_create(self, *args: Any, **kw: Any) -> NResponse:
        return asyncio.run(self.n_create_async(*args, **kw))

    def n_delete(self, *args: Any, **kw: Any) -> NResponse:
        return asyncio.run(self.n_delete_async(*args, **kw))

    # -- acceptor --------------------------------------------------------------------
    async def start_storage_scp(self, output_dir: str | os.PathLike, *, port: int = 0,
                                host: str | None = None,
                                on_store: Callable[[StoredObject], int | None] | None = None,
                                fsync: bool = True, direct_io: bool = True,
                                max_associations: int = 64,
                                ssl: _ssl.SSLContext | None = None,
                                accept_any_sop_class: bool = False,
                                called_ae_required: bool = False,
                                calling_ae_titles: set[str] | None = None) -> StorageServer:
        """Serve C-STORE and C-ECHO, writing DIR/<SOPInstanceUID>.dcm (see
        :class:`~dicomfast.net.services.storage.StorageSCP`). ``port=0`` picks a free
        port (``server.port``). ``called_ae_required``: refuse associations not
        addressed to this AE title (A-ASSOCIATE-RJ, called-AE-title-not-recognized)."""
        scp = StorageSCP(output_dir, on_store=on_store, fsync=fsync, direct_io=direct_io)

        def abstract(uid: str) -> bool:
            return uid == VERIFICATION or accept_any_sop_class or is_storage_sop_class(uid)

        policy = AcceptorPolicy(self.settings.ae_title, abstract, _KNOWN_SYNTAXES,
                                called_ae_required=called_ae_required,
                                calling_ae_titles=calling_ae_titles)
        server = Server(self.settings, policy, scp.handler, max_associations=max_associations,
                        ssl=ssl)
        await server.start(host, port)
        return StorageServer(server, scp)

    def serve_storage(self, output_dir: str | os.PathLike, **kw: Any) -> None:
        """Run a storage SCP until interrupted."""
        async def main() -> None:
            server = await self.start_storage_scp(output_dir, **kw)
            try:
                await server.serve_forever()
            finally:
                await server.close()
        asyncio.run(main())

    def serve_in_background(self, output_dir: str | os.PathLike,
                            **kw: Any) -> BackgroundServer:
        """A storage SCP on a background thread; ``.port``, ``.stop()``, or ``with``."""
        return BackgroundServer(lambda: self.start_storage_scp(output_dir, **kw))


def _probe(src: Any, head: Any = None) -> tuple[str, str] | StoreResult:
    """(SOP class, transfer syntax) from a file's File Meta, without reading it all.
    `head`: what read_heads gave for the file, when it was read in a batch."""
    if isinstance(src, Dataset):
        item = load(src)
        return item.sop_class_uid, item.transfer_syntax
    try:
        if isinstance(head, OSError):
            raise head
        if head is None:
            with open(src, "rb") as f:
                head = f.read(_PROBE_HEAD)
        else:
            head = head[0]
        split = split_part10(head)
        if split is not None:
            meta = split[1]
            sop_class = meta.get(2, b"").decode("ascii", "replace").rstrip("\0 ")
            ts = meta.get(0x10, b"").decode("ascii", "replace").rstrip("\0 ")
            if sop_class and ts:
                return sop_class, ts
        item = load(src)
        return item.sop_class_uid, item.transfer_syntax
    except Exception as exc:  # reported per file, as storescu does
        return StoreResult(str(src), "", None, f"cannot read: {exc}")


# Bytes read per file to find its SOP class and transfer syntax (a File Meta group is
# rarely above 1 KiB; a longer one makes that file be read whole).
_PROBE_HEAD = 16 << 10


def _probe_all(items: list[Any]) -> list[tuple[Any, Any]]:
    """_probe for every item; the heads of the files read in one native batch."""
    paths = [i for i, src in enumerate(items) if not isinstance(src, Dataset)]
    heads: list[Any] = [None] * len(items)
    if paths and read_heads is not None:
        for i, got in zip(paths, read_heads([items[i] for i in paths], _PROBE_HEAD),
                          strict=True):
            heads[i] = got
    return [(src, _probe(src, head)) for src, head in zip(items, heads, strict=True)]
