"""DIMSE-N: command sets against pynetdicom-made golden vectors, statuses, the router
and the SCU helpers on loopback (dicomfast both sides, and pynetdicom both ways)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_net_helpers import HOST, serving_in_thread

from dicomfast.dataset import Dataset
from dicomfast.errors import DIMSEError
from dicomfast.net import AE
from dicomfast.net import dimse as D
from dicomfast.net import dimse_n as N
from dicomfast.net.services import nscu
from dicomfast.net.services.router import NResult, ServiceRouter

GOLDEN = Path(__file__).resolve().parent / "golden" / "dimse_n"
COMMIT = "1.2.840.10008.1.20.1"
COMMIT_INSTANCE = "1.2.840.10008.1.20.1.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
INSTANCE = "1.2.826.0.1.3680043.9.7433.1.42"

# name: (our builder, decoded fields expected from the golden bytes)
OURS = {
    "n_event_report_rq": (lambda: N.event_report_rq(7, COMMIT, COMMIT_INSTANCE, 2, True),
                          dict(command_field=0x0100, message_id=7, sop_class_uid=COMMIT,
                               sop_instance_uid=COMMIT_INSTANCE, event_type_id=2,
                               has_data=True)),
    "n_event_report_rsp": (lambda: N.event_report_rsp(7, 0, COMMIT, COMMIT_INSTANCE, 2),
                           dict(command_field=0x8100, message_id_being_responded_to=7,
                                status=0, event_type_id=2, has_data=False,
                                sop_instance_uid=COMMIT_INSTANCE)),
    "n_get_rq": (lambda: N.get_rq(5, PRINTER, PRINTER_INSTANCE, [0x21100010, 0x21100020]),
                 dict(command_field=0x0110, message_id=5, sop_class_uid=PRINTER,
                      sop_instance_uid=PRINTER_INSTANCE,
                      attribute_identifiers=[0x21100010, 0x21100020], has_data=False)),
    "n_get_rsp": (lambda: N.get_rsp(5, 0, PRINTER, PRINTER_INSTANCE, has_data=True),
                  dict(command_field=0x8110, status=0, has_data=True,
                       sop_class_uid=PRINTER)),
    "n_get_rsp_failure": (lambda: N.get_rsp(6, 0x0112, PRINTER, INSTANCE,
                                            error_comment="no such printer"),
                          dict(status=0x0112, error_comment="no such printer",
                               sop_instance_uid=INSTANCE)),
    "n_set_rq": (lambda: N.set_rq(9, MPPS, INSTANCE),
                 dict(command_field=0x0120, message_id=9, sop_class_uid=MPPS,
                      sop_instance_uid=INSTANCE, has_data=True)),
    "n_set_rsp": (lambda: N.set_rsp(9, 0x0110, MPPS, INSTANCE),
                  dict(command_field=0x8120, status=0x0110)),
    "n_action_rq": (lambda: N.action_rq(11, COMMIT, COMMIT_INSTANCE, 1, True),
                    dict(command_field=0x0130, action_type_id=1, has_data=True,
                         sop_class_uid=COMMIT)),
    "n_action_rsp": (lambda: N.action_rsp(11, 0, COMMIT, COMMIT_INSTANCE, 1),
                     dict(command_field=0x8130, action_type_id=1, status=0)),
    "n_create_rq": (lambda: N.create_rq(13, MPPS, INSTANCE, True),
                    dict(command_field=0x0140, sop_instance_uid=INSTANCE, has_data=True)),
    "n_create_rq_no_uid": (lambda: N.create_rq(14, FILM_SESSION, None, True),
                           dict(command_field=0x0140, sop_instance_uid=None,
                                sop_class_uid=FILM_SESSION)),
    "n_create_rsp": (lambda: N.create_rsp(14, 0, FILM_SESSION, INSTANCE),
                     dict(command_field=0x8140, sop_instance_uid=INSTANCE, status=0)),
    "n_delete_rq": (lambda: N.delete_rq(15, FILM_SESSION, INSTANCE),
                    dict(command_field=0x0150, message_id=15, has_data=False)),
    "n_delete_rsp": (lambda: N.delete_rsp(15, 0, FILM_SESSION, INSTANCE),
                     dict(command_field=0x8150, status=0)),
}


def golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.bin").read_bytes()


def test_every_vector_is_described_and_tested():
    bins = sorted(p.stem for p in GOLDEN.glob("*.bin"))
    assert bins == sorted(OURS)
    for name in bins:
        assert (GOLDEN / f"{name}.txt").read_text().startswith(f"# {name}.bin")


@pytest.mark.parametrize("name", sorted(OURS))
def test_encode_matches_golden(name):
    build, _ = OURS[name]
    assert D.encode_command(build()) == golden(name)


@pytest.mark.parametrize("name", sorted(OURS))
def test_decode_golden(name):
    _, expected = OURS[name]
    cmd = D.decode_command(golden(name)[12:])
    msg = N.decode_response(cmd) if cmd.CommandField & 0x8000 else N.decode_request(cmd)
    for key, value in expected.items():
        assert getattr(msg, key) == value, key


@pytest.mark.parametrize("name", sorted(OURS))
def test_pynetdicom_still_encodes_the_vectors(name):
    pytest.importorskip("pynetdicom")
    import importlib.util
    spec = importlib.util.spec_from_file_location("golden_n", GOLDEN / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    from pynetdicom.dsutils import encode
    msg_cls, prim, _ = gen.CASES[name]
    msg = msg_cls()
    msg.primitive_to_message(prim)
    assert encode(msg.command_set, True, True) == golden(name)


def test_status_categories():
    assert N.n_status_category(0) == "Success"
    for warning in (0x0001, 0x0107, 0x0116, 0xB600, 0xB605):
        assert N.n_status_category(warning) == "Warning"
    for failure in (0x0105, 0x0106, 0x0110, 0x0111, 0x0112, 0x0118, 0x0122, 0x0211,
                    0xC600, 0xA700):
        assert N.n_status_category(failure) == "Failure"
    # Every status PS3.7 §10.1 lists for a service has a name.
    for allowed in N.ALLOWED.values():
        for status in allowed:
            assert not N.status_name(status).startswith("status 0x")


def test_create_rsp_needs_the_instance_uid():
    with pytest.raises(DIMSEError):
        N.create_rsp(1, 0, MPPS, None)
    N.create_rsp(1, 0x0106, MPPS, None)  # a failure need not name one


def test_request_rules():
    with pytest.raises(DIMSEError):
        N.get_rq(1, PRINTER, "not-a-uid")
    # An N-SET-RQ without its Requested SOP Instance UID is refused by the decoder.
    cmd = N.set_rq(1, MPPS, INSTANCE)
    del cmd[D.T_REQUESTED_SOP_INSTANCE]
    with pytest.raises(DIMSEError):
        N.decode_request(D.decode_command(D.encode_command(cmd)[12:]))
    cmd = N.action_rq(1, MPPS, INSTANCE, 1)
    del cmd[N.T_ACTION_TYPE_ID]
    with pytest.raises(DIMSEError):
        N.decode_request(D.decode_command(D.encode_command(cmd)[12:]))
    with pytest.raises(DIMSEError):
        N.decode_request(D.decode_command(D.encode_command(D.echo_rq(1))[12:]))


def test_response_for_echoes_type_ids_and_assigned_uid():
    rq = N.decode_request(D.decode_command(D.encode_command(
        N.create_rq(3, FILM_SESSION))[12:]))
    with pytest.raises(DIMSEError):
        N.response_for(rq, 0)
    rsp = N.decode_response(N.response_for(rq, 0, sop_instance_uid=INSTANCE))
    assert (rsp.sop_instance_uid, rsp.message_id_being_responded_to) == (INSTANCE, 3)
    rq = N.decode_request(N.action_rq(4, COMMIT, COMMIT_INSTANCE, 1))
    assert N.decode_response(N.response_for(rq, 0)).action_type_id == 1


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                "1.2.840.10008.1.2.2"])
def test_data_set_round_trip(ts):
    ds = Dataset()
    ds.PatientName = "Doe^J"
    ds.NumberOfCopies = 2
    back = N.decode_data_set(N.encode_data_set(ds, ts), ts)
    assert (str(back.PatientName), back.NumberOfCopies) == ("Doe^J", 2)


# -- loopback: the router and the SCU helpers -------------------------------------------------

class _Objects:
    """A tiny N service: create/get/set/delete/action on a dict of data sets."""

    def __init__(self):
        self.items: dict[str, Dataset] = {}
        self.seen: list[tuple[int, str | None]] = []
        self.counter = 0

    def __call__(self, ev):
        self.seen.append((ev.command_field, ev.sop_instance_uid))
        uid = ev.sop_instance_uid
        if ev.command_field == N.N_CREATE_RQ:
            if uid is None:
                self.counter += 1
                uid = f"1.2.826.0.1.3680043.9.7433.2.{self.counter}"
            if uid in self.items:
                return N.DUPLICATE_SOP_INSTANCE
            self.items[uid] = ev.dataset or Dataset()
            return NResult(sop_instance_uid=uid, dataset=self.items[uid])
        if uid not in self.items:
            return N.NO_SUCH_SOP_INSTANCE
        if ev.command_field == N.N_GET_RQ:
            src = self.items[uid]
            out = Dataset()
            for el in src:
                if not ev.request.attribute_identifiers or \
                        el.tag in ev.request.attribute_identifiers:
                    out.add_new(el.tag, el.VR, el.value)
            return NResult(dataset=out)
        if ev.command_field == N.N_SET_RQ:
            for el in ev.dataset:
                self.items[uid].add_new(el.tag, el.VR, el.value)
            return NResult()
        if ev.command_field == N.N_DELETE_RQ:
            del self.items[uid]
            return None
        if ev.command_field == N.N_ACTION_RQ:
            if ev.request.action_type_id != 1:
                return N.NO_SUCH_ACTION
            raise RuntimeError("action handler broke")
        return N.UNRECOGNIZED_OPERATION


def test_router_loopback():
    async def main():
        objs = _Objects()
        router = ServiceRouter()
        router.add_n_handler(MPPS, objs)
        server = await router.start(AE("NSCP").settings, host=HOST)
        try:
            ae = AE("NSCU", dimse_timeout=10, acse_timeout=10)
            assoc = await ae.associate(HOST, server.port, [
                (MPPS, ["1.2.840.10008.1.2"])])
            async with assoc:
                attrs = Dataset()
                attrs.PatientName = "A^B"
                attrs.PatientID = "P1"
                created = await nscu.n_create(assoc, MPPS, attrs)
                assert created.status == 0 and created.sop_instance_uid.endswith(".2.1")
                assert str(created.dataset.PatientName) == "A^B"
                dup = await nscu.n_create(assoc, MPPS, attrs, created.sop_instance_uid)
                assert dup.status == N.DUPLICATE_SOP_INSTANCE and not dup.ok
                got = await nscu.n_get(assoc, MPPS, created.sop_instance_uid, [0x00100020])
                assert got.dataset.PatientID == "P1" and "PatientName" not in got.dataset
                mod = Dataset()
                mod.PatientName = "C^D"
                assert (await nscu.n_set(assoc, MPPS, created.sop_instance_uid, mod)).ok
                got = await nscu.n_get(assoc, MPPS, created.sop_instance_uid)
                assert str(got.dataset.PatientName) == "C^D"
                act = await nscu.n_action(assoc, MPPS, created.sop_instance_uid, 1)
                assert act.status == N.PROCESSING_FAILURE and act.action_type_id == 1
                act = await nscu.n_action(assoc, MPPS, created.sop_instance_uid, 7)
                assert act.status == N.NO_SUCH_ACTION
                # An SOP class with no handler: No Such SOP Class; the association goes on.
                other = await nscu.n_get(assoc, PRINTER, PRINTER_INSTANCE, abstract_syntax=MPPS)
                assert other.status == N.NO_SUCH_SOP_CLASS
                gone = await nscu.n_delete(assoc, MPPS, created.sop_instance_uid)
                assert gone.status == 0
                again = await nscu.n_get(assoc, MPPS, created.sop_instance_uid)
                assert again.status == N.NO_SUCH_SOP_INSTANCE
        finally:
            await server.close()
        assert objs.items == {}
    asyncio.run(main())


def test_router_delivers_event_reports_to_a_requestor():
    """A requestor serves N-EVENT-REPORT on its own association (PS3.7 §10.1.1)."""
    async def main():
        reports = []
        scp = ServiceRouter()

        async def on_action(ev):
            async def report():
                info = Dataset()
                info.TransactionUID = "1.2.3.99"
                rsp = await nscu.n_event_report(ev.assoc, COMMIT, COMMIT_INSTANCE, 1, info)
                reports.append(("rsp", rsp.status, rsp.event_type_id))
            return NResult(after=report)

        scp.add_n_handler(COMMIT, on_action, [N.N_ACTION_RQ])
        server = await scp.start(AE("SCP").settings, host=HOST)
        got = asyncio.get_running_loop().create_future()
        client = ServiceRouter()

        def on_report(ev):
            got.set_result(str(ev.dataset.TransactionUID))
            return None

        client.add_n_handler(COMMIT, on_report, [N.N_EVENT_REPORT_RQ])
        try:
            assoc = await AE("SCU", dimse_timeout=10).associate(
                HOST, server.port, [(COMMIT, ["1.2.840.10008.1.2"])], handler=client)
            async with assoc:
                rsp = await nscu.n_action(assoc, COMMIT, COMMIT_INSTANCE, 1)
                assert rsp.status == 0
                assert await asyncio.wait_for(got, 10) == "1.2.3.99"
                for _ in range(100):
                    if reports:
                        break
                    await asyncio.sleep(0.02)
        finally:
            await server.close()
        assert reports == [("rsp", 0, 1)]
    asyncio.run(main())


def test_unknown_operations_are_answered():
    async def main():
        server = await ServiceRouter().start(AE("SCP").settings, host=HOST)
        try:
            assoc = await AE("SCU", dimse_timeout=10).associate(
                HOST, server.port, [("1.2.840.10008.1.1", ["1.2.840.10008.1.2"])])
            async with assoc:
                ctx = next(iter(assoc.contexts))
                # An N-GET on the Verification context: nobody serves it.
                rsp = await nscu.n_request(assoc, N.get_rq(assoc.next_message_id(),
                                                           "1.2.840.10008.1.1", INSTANCE),
                                           None, ctx)
                assert rsp.status == N.NO_SUCH_SOP_CLASS
                fut = await assoc.send_request(ctx, D.echo_rq(assoc.next_message_id()))
                cmd, _ = await assoc.wait_response(fut)
                assert cmd.Status == 0
        finally:
            await server.close()
    asyncio.run(main())


# -- pynetdicom as the peer ------------------------------------------------------------------

def test_pynetdicom_scu_against_router():
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS

    objs = _Objects()
    router = ServiceRouter()
    router.add_n_handler(MPPS, objs)
    with serving_in_thread(lambda: router.start(AE("NSCP").settings, host=HOST)) as server:
        ae = pynetdicom.AE(ae_title="PYSCU")
        ae.add_requested_context(MPPS)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        assoc = ae.associate(HOST, server.port, ae_title="NSCP")
        assert assoc.is_established
        try:
            ds = PDS()
            ds.PatientID = "PY1"
            status, attrs = assoc.send_n_create(ds, MPPS, INSTANCE)
            assert status.Status == 0 and attrs.PatientID == "PY1"
            mod = PDS()
            mod.PatientID = "PY2"
            status, _ = assoc.send_n_set(mod, MPPS, INSTANCE)
            assert status.Status == 0
            status, attrs = assoc.send_n_get([0x00100020], MPPS, INSTANCE)
            assert status.Status == 0 and attrs.PatientID == "PY2"
            status, _ = assoc.send_n_action(None, 5, MPPS, INSTANCE)
            assert status.Status == N.NO_SUCH_ACTION
            status = assoc.send_n_delete(MPPS, INSTANCE)
            assert status.Status == 0
            status, _ = assoc.send_n_get([0x00100020], MPPS, INSTANCE)
            assert status.Status == N.NO_SUCH_SOP_INSTANCE
        finally:
            assoc.release()
    assert [f for f, _ in objs.seen] == [N.N_CREATE_RQ, N.N_SET_RQ, N.N_GET_RQ,
                                         N.N_ACTION_RQ, N.N_DELETE_RQ, N.N_GET_RQ]


def test_scu_against_pynetdicom_scp():
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS
    from pynetdicom import evt

    store: dict = {}

    def on_create(event):
        ds = event.attribute_list
        uid = event.request.AffectedSOPInstanceUID
        store[uid or "1.2.826.0.1.3680043.9.7433.3.1"] = ds
        out = PDS()
        out.update(ds)
        if uid is None:
            # pynetdicom's way of returning an SCP-assigned UID in the N-CREATE-RSP.
            out.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.9.7433.3.1"
        return 0x0000, out

    def on_get(event):
        ds = store.get(event.request.RequestedSOPInstanceUID)
        if ds is None:
            return 0x0112, None
        return 0x0000, ds

    def on_delete(event):
        return 0x0000 if store.pop(event.request.RequestedSOPInstanceUID, None) is not None \
            else 0x0112

    ae = pynetdicom.AE(ae_title="PYSCP")
    ae.add_supported_context(MPPS)
    ae.add_supported_context(FILM_SESSION)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    server = ae.start_server((HOST, 0), block=False, evt_handlers=[
        (evt.EVT_N_CREATE, on_create), (evt.EVT_N_GET, on_get),
        (evt.EVT_N_DELETE, on_delete)])
    port = server.socket.getsockname()[1]
    try:
        ours = AE("DFSCU", dimse_timeout=10, acse_timeout=10)
        attrs = Dataset()
        attrs.PatientID = "DF1"
        rsp = ours.n_create(HOST, port, MPPS, attrs, INSTANCE, called_ae="PYSCP")
        assert rsp.status == 0 and rsp.sop_instance_uid == INSTANCE
        assert isinstance(store[INSTANCE], PDS) and store[INSTANCE].PatientID == "DF1"
        # Two identifiers: pynetdicom's own logging trips over a single-valued list.
        rsp = ours.n_get(HOST, port, MPPS, INSTANCE, [0x00100010, 0x00100020])
        assert rsp.status == 0 and rsp.dataset.PatientID == "DF1"
        assert ours.n_get(HOST, port, MPPS, "1.2.3.4.5", [0x00100010, 0x00100020]).status \
            == N.NO_SUCH_SOP_INSTANCE
        # pynetdicom serves N-DELETE for the Film Session, not for MPPS (PS3.4 F.7.1).
        session = Dataset()
        session.NumberOfCopies = 1
        rsp = ours.n_create(HOST, port, FILM_SESSION, session, called_ae="PYSCP")
        assert rsp.status == 0 and rsp.sop_instance_uid.endswith("7433.3.1")
        assert ours.n_delete(HOST, port, FILM_SESSION, rsp.sop_instance_uid).status == 0
        assert ours.n_delete(HOST, port, FILM_SESSION, rsp.sop_instance_uid).status \
            == N.NO_SUCH_SOP_INSTANCE
    finally:
        server.shutdown()


def test_router_limits_and_bad_requests():
    """An oversized N data set gets Resource Limitation; an N-SET-RQ without its
    instance UID gets Mistyped Argument; both on an association that goes on."""
    async def main():
        objs = _Objects()
        router = ServiceRouter(max_n_data_set=64)
        router.add_n_handler(MPPS, objs)
        server = await router.start(AE("NSCP").settings, host=HOST)
        try:
            assoc = await AE("NSCU", dimse_timeout=10).associate(
                HOST, server.port, [(MPPS, ["1.2.840.10008.1.2"])])
            async with assoc:
                big = Dataset()
                big.PatientComments = "x" * 200
                too_big = await nscu.n_create(assoc, MPPS, big, INSTANCE)
                cmd = N.set_rq(assoc.next_message_id(), MPPS, INSTANCE)
                del cmd[D.T_REQUESTED_SOP_INSTANCE]
                ctx = nscu.pick_context(assoc, MPPS)
                small = Dataset()
                small.PatientID = "1"
                fut = await assoc.send_request(ctx, cmd, N.encode_data_set(
                    small, assoc.contexts[ctx].transfer_syntax))
                rsp_cmd, _ = await assoc.wait_response(fut)
                ok = await nscu.n_create(assoc, MPPS, small, INSTANCE)
        finally:
            await server.close()
        return too_big, N.decode_response(rsp_cmd), ok, objs

    too_big, mistyped, ok, objs = asyncio.run(main())
    assert too_big.status == N.RESOURCE_LIMITATION
    assert mistyped.status == N.MISTYPED_ARGUMENT
    assert ok.status == 0 and list(objs.items) == [INSTANCE]


def test_request_without_message_id_aborts():
    """A DIMSE-N request that cannot even be answered (no Message ID) is a protocol
    error: the association is aborted (PS3.8 §9.2 A-ABORT), nobody waits for ever."""
    from dicomfast.errors import AssociationError

    async def main():
        router = ServiceRouter()
        router.add_n_handler(MPPS, _Objects())
        server = await router.start(AE("NSCP").settings, host=HOST)
        try:
            assoc = await AE("NSCU", dimse_timeout=10).associate(
                HOST, server.port, [(MPPS, ["1.2.840.10008.1.2"])])
            cmd = Dataset()
            cmd.add_new(D.T_REQUESTED_SOP_CLASS, "UI", MPPS)
            cmd.add_new(D.T_COMMAND_FIELD, "US", N.N_GET_RQ)
            cmd.add_new(D.T_DATA_SET_TYPE, "US", D.NO_DATA_SET)
            cmd.add_new(D.T_REQUESTED_SOP_INSTANCE, "UI", INSTANCE)
            await assoc.send_message(nscu.pick_context(assoc, MPPS), cmd)
            await asyncio.wait_for(assoc.closed, 10)
            return assoc
        finally:
            await server.close()

    assoc = asyncio.run(main())
    assert isinstance(assoc.abort_reason, AssociationError)
