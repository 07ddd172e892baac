"""The dicomfast.net API: AE, associations, negotiation options, the on_store hook."""

from __future__ import annotations

import asyncio
import os
import shutil
import warnings

import pytest
from test_net_helpers import HOST, make_objects, same_dataset

from dicomfast.net import (
    AE,
    AcceptorPolicy,
    Association,
    AssociationAborted,
    Server,
    Settings,
    StorageSCP,
    status_category,
)
from dicomfast.net import dimse as D
from dicomfast.net import pdu as P

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    return make_objects(tmp_path_factory.mktemp("sent"), ("CT_small.dcm", "MR_small.dcm",
                                                          "rtplan.dcm"))


def test_on_store_routes_and_sets_status(tmp_path, objects):
    seen = []
    routed = tmp_path / "routed"
    routed.mkdir()

    def on_store(obj):
        seen.append(obj)
        assert os.path.exists(obj.path)  # durable before the hook runs
        if obj.sop_class_uid == CT:
            shutil.move(obj.path, routed / os.path.basename(obj.path))
            return 0xB000  # a warning status goes back to the SCU
        if obj.sop_class_uid == RT_PLAN:
            raise RuntimeError("refused by the hook")
        return None

    with AE("HOOK").serve_in_background(tmp_path / "in", host=HOST,
                                        on_store=on_store) as srv:
        results = AE("SCU").store(HOST, srv.port, objects)
    statuses = [r.status for r in results]
    assert statuses[0] == 0xB000 and status_category(statuses[0]) == "Warning"
    assert statuses[1] == 0
    assert statuses[2] == D.PROCESSING_FAILURE and "refused by the hook" in results[2].error
    assert len(seen) == 3 and {o.calling_ae for o in seen} == {"SCU"}
    assert len(os.listdir(routed)) == 1
    mr = next(o for o in seen if o.sop_instance_uid == results[1].sop_instance_uid)
    assert mr.dataset().SOPInstanceUID == results[1].sop_instance_uid


def test_async_api_inside_a_loop(tmp_path, objects):
    async def main() -> None:
        server = await AE("ASYNC").start_storage_scp(tmp_path, host=HOST, fsync=False)
        try:
            ae = AE("SCU")
            assert await ae.echo_async(HOST, server.port) == 0
            results = await ae.store_async(HOST, server.port, objects[:2])
            assert all(r.ok for r in results)
            assoc = await ae.associate(HOST, server.port, [(CT, [EXPLICIT, IMPLICIT])])
            async with assoc:
                assert assoc.is_established and assoc.async_window == 16
                assert assoc.peer_max_pdu == 1 << 20
                ctx = next(iter(assoc.contexts.values()))
                assert (ctx.abstract_syntax, ctx.transfer_syntax) == (CT, EXPLICIT)
                # A request the SCP does not serve gets "unrecognized operation".
                rq = D.command({D.T_AFFECTED_SOP_CLASS: CT, D.T_COMMAND_FIELD: D.C_FIND_RQ,
                                D.T_MESSAGE_ID: assoc.next_message_id(),
                                D.T_DATA_SET_TYPE: D.DATA_SET_PRESENT, D.T_PRIORITY: 0})
                fut = await assoc.send_request(ctx.id, rq, b"\x08\x00\x52\x00\x06\x00STUDY ")
                cmd, _ = await assoc.wait_response(fut)
                assert cmd.Status == D.UNRECOGNIZED_OPERATION
            assert not assoc.is_established
        finally:
            await server.close()
    asyncio.run(main())


def test_negotiation_options_round_trip(tmp_path):
    """Role selection, user identity with a server response, extended negotiation."""
    async def main() -> None:
        identities = []

        def identify(rq: P.UserIdentityRQ) -> bytes | None:
            identities.append(rq)
            return b"welcome" if rq.primary == b"alice" else None

        scp = StorageSCP(tmp_path, fsync=False)
        policy = AcceptorPolicy("IDSCP", {CT, VERIFICATION}, {EXPLICIT, IMPLICIT},
                                called_ae_required=False, identify=identify)
        server = await Server(Settings(ae_title="IDSCP"), policy, scp.handler).start(HOST, 0)
        try:
            assoc = await Association.request(
                HOST, server.port, [(CT, [EXPLICIT])],
                roles=[P.RoleSelection(CT, True, True)],
                user_identity=P.UserIdentityRQ(2, b"alice", b"pw", True),
                extended=[P.SOPClassExtended(CT, b"\x01")],
                common_extended=[P.SOPClassCommonExtended(CT, "1.2.840.10008.4.2")])
            async with assoc:
                ac = assoc.accept_pdu
                assert ac.user.user_identity_ac == P.UserIdentityAC(b"welcome")
                assert ac.user.roles == [P.RoleSelection(CT, True, False)]
                assert ac.user.extended == []  # not supported: not returned (D.3.3.5)
                ctx = assoc.contexts[1]
                assert ctx.scu_role and not ctx.scp_role
            with pytest.raises(Exception) as info:
                await Association.request(HOST, server.port, [(CT, [EXPLICIT])],
                                          user_identity=P.UserIdentityRQ(1, b"mallory"))
            assert getattr(info.value, "reason", None) == P.RJ_NO_REASON
            assert [i.primary for i in identities] == [b"alice", b"mallory"]
        finally:
            await server.close()
            scp.close()
    asyncio.run(main())


@pytest.mark.parametrize("unnamed_files", [True, False], ids=["unnamed", "named-part"])
def test_objects_stored_and_stored_again(tmp_path, objects, monkeypatch, unnamed_files):
    """Both ways of holding an object until it is whole (Linux O_TMPFILE, or a hidden
    .part file renamed) give the same files, and an object sent again replaces its
    file with the new one whole; no temporary file is left either way."""
    from dicomfast import unnamed

    if unnamed_files and not unnamed.supported(str(tmp_path)):
        pytest.skip("this file system or kernel has no O_TMPFILE")
    if not unnamed_files:
        monkeypatch.setattr(unnamed, "supported", lambda folder: False)
    with AE("TWICE").serve_in_background(tmp_path / "in", host=HOST) as srv:
        first = AE("SCU").store(HOST, srv.port, objects)
        stored = {name: (tmp_path / "in" / name).stat().st_ino
                  for name in os.listdir(tmp_path / "in")}
        again = AE("SCU").store(HOST, srv.port, objects)
    assert [r.status for r in first] == [r.status for r in again] == [0] * len(objects)
    names = sorted(os.listdir(tmp_path / "in"))
    assert names == sorted(stored) == sorted(r.sop_instance_uid + ".dcm" for r in first)
    for name in names:   # a new file under each name, not the old one rewritten
        assert (tmp_path / "in" / name).stat().st_ino != stored[name]
        assert (tmp_path / "in" / name).stat().st_mode & 0o777 == 0o600
    for src, res in zip(objects, again, strict=True):
        same_dataset(src, tmp_path / "in" / (res.sop_instance_uid + ".dcm"), same_syntax=True)


def test_pipelined_window_and_small_pdus(tmp_path, objects):
    """A small peer Maximum Length cuts data sets into many PDUs; the window lets
    several C-STOREs be outstanding; nothing is lost or reordered."""
    many = make_objects(tmp_path / "many", ("MR_small.dcm",), copies=30)
    with AE("SMALL", max_pdu=4096).serve_in_background(tmp_path / "in", host=HOST) as srv:
        results = AE("SCU", max_async_ops=4).store(HOST, srv.port, many)
    assert [r.status for r in results] == [0] * 30
    assert [r.source for r in results] == [str(p) for p in many]
    assert len(os.listdir(tmp_path / "in")) == 30


def test_small_pdus_leave_in_batches(tmp_path, objects, monkeypatch):
    """Against a peer with a small Maximum Length, the PDUs of a data set are written
    a batch at a time (one system call for many PDUs), each still within the peer's
    limit and each counted as a P-DATA request by the state machine."""
    import dicomfast
    from dicomfast.net import transport
    from dicomfast.net.statemachine import Event, StateMachine

    ds = dicomfast.read(objects[0])
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 512, 512, 16, 16, 15
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = os.urandom(512 * 512 * 2)
    big = tmp_path / "big.dcm"
    ds.save(big)
    writes: list[int] = []
    real_write = transport.Connection.write
    monkeypatch.setattr(transport.Connection, "write",
                        lambda self, data: (writes.append(len(data)), real_write(self, data))[1])
    requests = []
    real_handle = StateMachine.handle
    monkeypatch.setattr(StateMachine, "handle", lambda self, event, **kw: (
        requests.append(event) if event == Event.EVT9 else None, real_handle(self, event, **kw))[1])
    with AE("SMALL", max_pdu=4096).serve_in_background(tmp_path / "in", host=HOST) as srv:
        writes.clear()
        requests.clear()
        results = AE("SCU").store(HOST, srv.port, [big])
    assert [r.status for r in results] == [0]
    pdus = -(-len(ds.PixelData) // (4096 - 6))  # the pixel data alone needs this many
    assert len(requests) >= pdus  # one P-DATA request per PDU
    batched = [n for n in writes if n > 4096]
    assert sum(batched) >= len(ds.PixelData) and len(batched) <= 4
    received = dicomfast.read(tmp_path / "in" / (str(ds.SOPInstanceUID) + ".dcm"))
    assert bytes(received.PixelData) == ds.PixelData


def test_release_waits_for_pending_commits(tmp_path, objects):
    """An SCU that releases right after sending still gets every response first."""
    async def main() -> None:
        server = await AE("SLOW").start_storage_scp(
            tmp_path, host=HOST, on_store=lambda obj: __import__("time").sleep(0.2))
        try:
            assoc = await AE("SCU").associate(HOST, server.port, [(CT, [EXPLICIT])])
            from dicomfast.net.services.storescu import load

            item = load(objects[0])
            fut = await assoc.send_request(1, D.store_rq(assoc.next_message_id(), CT,
                                                         item.sop_instance_uid), item.data)
            await assoc.release()  # waits for the response before A-RELEASE-RQ
            cmd, _ = fut.result()
            assert cmd.Status == 0
        finally:
            await server.close()
    asyncio.run(main())


def test_settings_and_ae_title_validation():
    with pytest.raises(ValueError):
        AE("x" * 17)
    with pytest.raises(ValueError):
        AE("A\\B")
    assert Settings().max_pdu == 1 << 20


@pytest.mark.parametrize("socket_takes", ["everything", "pieces"])
def test_data_sets_sent_from_their_files(tmp_path, objects, monkeypatch, socket_takes):
    """With PDUs of at least 256 KiB and no TLS, a file's data set is not read: the
    kernel sends it from the file (sendfile) behind PDU headers written by us. The
    stored objects equal the sent ones; with small PDUs the data goes through memory.
    "pieces": the socket takes a few KiB at a time and then is full, so each region
    is finished by asyncio's sendfile after what went out at once."""
    from dicomfast.net import transport
    from dicomfast.net.services import storescu

    if socket_takes == "pieces":
        real_sendfile = transport._os_sendfile
        calls = [0]

        def sendfile_in_pieces(out, src, offset, count):
            calls[0] += 1
            if calls[0] % 2 == 0:
                raise BlockingIOError
            return real_sendfile(out, src, offset, min(count, 3000))

        monkeypatch.setattr(transport, "_os_sendfile", sendfile_in_pieces)

    regions: list[transport.FileRegion] = []
    real_load_many = storescu.load_many

    def spy(sources, **kw):
        items = real_load_many(sources, **kw)
        regions.extend(item.data for item in items
                       if isinstance(getattr(item, "data", None), transport.FileRegion))
        return items

    monkeypatch.setattr(storescu, "load_many", spy)
    monkeypatch.setattr(storescu, "HEAD", 4096)  # so even small test files qualify
    larger = [o for o in objects if os.path.getsize(o) > 4096]  # the others are read whole
    assert len(larger) >= 2
    for max_pdu, zero_copy in ((1 << 20, True), (16384, False)):
        regions.clear()
        out = tmp_path / f"in-{max_pdu}"
        with AE("ZC", max_pdu=max_pdu).serve_in_background(out, host=HOST) as srv:
            results = AE("SCU", max_pdu=max_pdu).store(HOST, srv.port, objects)
        assert [r.status for r in results] == [0] * len(objects)
        assert sorted(r.path for r in regions) == (sorted(map(str, larger)) if zero_copy else [])
        for src, res in zip(objects, results, strict=True):
            same_dataset(src, out / (res.sop_instance_uid + ".dcm"), same_syntax=True)


def test_file_shorter_than_announced_drops_the_association(tmp_path, objects):
    """A file that shrinks between reading its head and sending its data set: the PDU
    header already announced the length, so the connection is dropped (no A-ABORT can
    be framed), the SCU reports it, and the SCP keeps nothing of that object."""
    from dicomfast.net import transport
    from dicomfast.net.services.storescu import load

    async def main(port: int) -> None:
        item = load(objects[0])
        size = os.path.getsize(objects[0])
        offset = size - len(item.data)
        region = transport.FileRegion(str(objects[0]), offset, len(item.data) + 1000)
        assoc = await Association.request(HOST, port,
                                          [(item.sop_class_uid, [item.transfer_syntax])],
                                          settings=Settings(acse_timeout=5, dimse_timeout=5))
        rq = D.store_rq(assoc.next_message_id(), item.sop_class_uid, item.sop_instance_uid,
                        D.PRIORITY_MEDIUM, None, None)
        with pytest.raises(AssociationAborted):
            await assoc.send_request(1, rq, region)
        with pytest.raises(AssociationAborted):
            await asyncio.wait_for(assoc.send_request(1, rq, region), 5)

    with AE("SHRINK").serve_in_background(tmp_path / "in", host=HOST) as srv:
        asyncio.run(main(srv.port))
        assert AE("CHECK").echo(HOST, srv.port) == 0  # the server lives on
    assert os.listdir(tmp_path / "in") == []


@pytest.mark.filterwarnings("ignore:the data ends inside")   # the junk file, read by force
@pytest.mark.parametrize("max_pdu", [1 << 20, 16384])   # heads read in batches, or one by one
def test_unreadable_sources_fail_alone(tmp_path, objects, monkeypatch, max_pdu):
    """Among readable files, a missing one, a folder and a file that is no DICOM each
    get their own "cannot read" result, in their place; the others are stored."""
    from dicomfast.net.services import storescu

    monkeypatch.setattr(storescu, "_LOAD_BATCH", 2)   # so the bad ones fall in several batches
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 300 + b"not DICOM at all")
    sources = [objects[0], tmp_path / "missing.dcm", objects[1], tmp_path, junk, objects[2]]
    good = [storescu.load(o) for o in objects]
    contexts = storescu.contexts_for((g.sop_class_uid, g.transfer_syntax) for g in good)

    async def main(port: int) -> list:
        async with await Association.request(HOST, port, contexts,
                                             settings=Settings(max_pdu=max_pdu)) as assoc:
            return await storescu.send_all(assoc, iter(sources))

    out = tmp_path / "in"
    with AE("BAD", max_pdu=max_pdu).serve_in_background(out, host=HOST) as srv:
        results = asyncio.run(main(srv.port))
    assert [r.ok for r in results] == [True, False, True, False, False, True]
    for res in (results[1], results[3], results[4]):
        assert res.status is None and res.error.startswith("cannot read"), res
    assert sorted(os.listdir(out)) == sorted(g.sop_instance_uid + ".dcm" for g in good)


def test_a_file_that_is_no_dicom_object_is_named_as_such(tmp_path):
    """Bytes with neither a File Meta nor the SOP UIDs a C-STORE needs: an
    InvalidDicomError that says so, not an attribute error from deep inside."""
    from dicomfast.errors import InvalidDicomError
    from dicomfast.net.services.storescu import load

    junk = tmp_path / "notes.dcm"
    junk.write_bytes(b"not DICOM, just a line of text\n")
    with warnings.catch_warnings(), pytest.raises(InvalidDicomError, match="not a DICOM object"):
        warnings.simplefilter("ignore")  # what the forced read makes of the text
        load(junk)
