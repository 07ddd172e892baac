"""Storage Commitment push model (PS3.4 Annex J): dicomfast both sides, pynetdicom both
ways; reports on the same and on a new association; never a false success."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from test_net_helpers import HOST, make_objects, serving_in_thread

from dicomfast.dataset import Dataset
from dicomfast.errors import DIMSEError
from dicomfast.net import AE
from dicomfast.net import dimse_n as N
from dicomfast.net.services import nscu
from dicomfast.net.services.commitment import (
    CLASS_INSTANCE_CONFLICT,
    DUPLICATE_TRANSACTION_UID,
    NO_SUCH_OBJECT_INSTANCE,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    CommitmentReports,
    StorageCommitmentSCP,
    references_of,
    request_commitment,
)
from dicomfast.net.services.router import ServiceRouter

pydicom = pytest.importorskip("pydicom")
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


@pytest.fixture(scope="module")
def archive_setup(tmp_path_factory):
    from dicomfast.archive import Archive

    src = tmp_path_factory.mktemp("src")
    files = make_objects(src, ("CT_small.dcm", "MR_small.dcm", "SC_rgb.dcm"))
    root = tmp_path_factory.mktemp("archive")
    archive = Archive(root, fsync=False)
    recs = [archive.store(str(f)) for f in files]
    # The third is indexed, then its file disappears: it must not be committed.
    os.unlink(recs[2].path)
    yield archive, files, recs
    archive.close()


def _refs(files):
    return references_of(files)


def _settings(title: str):
    return AE(title, acse_timeout=10, dimse_timeout=10, network_timeout=10).settings


async def _scp(store, **kw):
    router = ServiceRouter()
    scp = StorageCommitmentSCP(store, settings=_settings("COMMITSCP"), **kw)
    scp.install(router)
    server = await router.start(_settings("COMMITSCP"), host=HOST)
    return scp, server


def _expected(files, recs):
    refs = _refs(files)
    missing = ("1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.9.7433.9.9")
    conflict = (MR, refs[0][1])   # CT stored, asked about as MR
    return refs, missing, conflict


def test_same_association_success_and_failures(archive_setup):
    archive, files, recs = archive_setup
    refs, missing, conflict = _expected(files, recs)

    async def main():
        scp, server = await _scp(archive)
        try:
            result = await request_commitment(
                _settings("COMMITSCU"), HOST, server.port, refs + [missing, conflict],
                called_ae="COMMITSCP", timeout=10)
        finally:
            await server.close()
        return scp, result

    scp, result = asyncio.run(main())
    assert sorted(result.committed) == sorted(refs[:2])
    failed = {(c, i): reason for c, i, reason in result.failed}
    assert failed == {refs[2]: NO_SUCH_OBJECT_INSTANCE, missing: NO_SUCH_OBJECT_INSTANCE,
                      conflict: CLASS_INSTANCE_CONFLICT}
    assert result.event_type_id == 2 and not result.ok
    assert scp.delivered[0][2] == "same association"


def test_all_committed_is_event_type_1_and_duplicate_transaction(archive_setup):
    archive, files, recs = archive_setup
    refs = _refs(files)[:2]

    async def main():
        scp, server = await _scp(archive.root)   # a folder: opens the archive index
        try:
            s = _settings("COMMITSCU")
            first = await request_commitment(s, HOST, server.port, refs, timeout=10,
                                             transaction_uid="1.2.826.0.1.3680043.9.7433.8.1")
            again = await request_commitment(s, HOST, server.port, refs, timeout=10,
                                             transaction_uid="1.2.826.0.1.3680043.9.7433.8.1")
        finally:
            await server.close()
        return first, again

    first, again = asyncio.run(main())
    assert first.ok and first.event_type_id == 1 and sorted(first.committed) == sorted(refs)
    assert not again.committed and {r for *_, r in again.failed} == {DUPLICATE_TRANSACTION_UID}


def test_storage_scp_folder_lookup(tmp_path):
    """A plain storage SCP folder (no index) as the store."""
    files = make_objects(tmp_path / "src", ("CT_small.dcm",))
    out = tmp_path / "in"
    with AE("STORE").serve_in_background(out, host=HOST, fsync=False) as srv:
        results = AE("SCU").store(HOST, srv.port, files)
    assert all(r.ok for r in results)
    refs = _refs(files)

    async def main():
        scp, server = await _scp(out)
        try:
            return await request_commitment(_settings("SCU"), HOST, server.port,
                                            refs + [(CT, "1.2.3.4.5")], timeout=10)
        finally:
            await server.close()

    result = asyncio.run(main())
    assert result.committed == refs
    assert result.failed == [(CT, "1.2.3.4.5", NO_SUCH_OBJECT_INSTANCE)]


class _SlowArchive:
    """The archive, answering after the SCU has had time to release (so the report
    must take a new association, deterministically)."""

    def __init__(self, archive):
        self.archive = archive

    def get_instance(self, uid):
        time.sleep(0.3)
        return self.archive.get_instance(uid)


def test_report_on_a_new_association(archive_setup):
    archive, files, recs = archive_setup
    refs = _refs(files)[:2]

    async def main():
        reports = CommitmentReports()
        listener = await reports.start_listener(_settings("COMMITSCU"), host=HOST)
        scp, server = await _scp(_SlowArchive(archive),
                                 scu_addresses={"COMMITSCU": (HOST, listener.port)})
        try:
            result = await request_commitment(_settings("COMMITSCU"), HOST, server.port,
                                              refs, timeout=10, reports=reports,
                                              keep_open=False)
        finally:
            await server.close()
            await listener.close()
        return scp, result

    scp, result = asyncio.run(main())
    assert result.ok and sorted(result.committed) == sorted(refs)
    assert scp.delivered[0][2] == "new association"


def test_unreachable_scu_keeps_the_report(archive_setup):
    """The association is gone and no address (or a dead one) is known: the report is
    kept, not lost, and never turned into a success."""
    archive, files, recs = archive_setup
    refs = _refs(files)[:1]

    async def main():
        scp = StorageCommitmentSCP(archive, settings=_settings("SCP"),
                                   scu_addresses={"DEAD": (HOST, 9)})
        result = scp.check("1.2.826.0.1.3680043.9.7433.8.5", refs)
        assert not await scp.deliver("NOWHERE", result)
        assert not await scp.deliver("DEAD", result)
        return scp

    scp = asyncio.run(main())
    assert [ae for ae, _ in scp.undelivered] == ["NOWHERE", "DEAD"] and not scp.delivered


def test_scu_refusing_the_report_on_the_association(archive_setup):
    """An SCU that cannot take the report where it asked (no handler: Unrecognized
    Operation) gets it on a new association instead."""
    archive, files, recs = archive_setup
    refs = _refs(files)[:2]

    async def main():
        reports = CommitmentReports()
        listener = await reports.start_listener(_settings("COMMITSCU"), host=HOST)
        scp, server = await _scp(archive,
                                 scu_addresses={"COMMITSCU": (HOST, listener.port)})
        try:
            fut = reports.expect("1.2.826.0.1.3680043.9.7433.8.6")
            assoc = await AE("COMMITSCU", dimse_timeout=10).associate(
                HOST, server.port, [(STORAGE_COMMITMENT, ["1.2.840.10008.1.2"])])
            async with assoc:
                info = Dataset()
                info.TransactionUID = "1.2.826.0.1.3680043.9.7433.8.6"
                info.ReferencedSOPSequence = []
                for c, i in refs:
                    item = Dataset()
                    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = c, i
                    info.ReferencedSOPSequence.append(item)
                rsp = await nscu.n_action(assoc, STORAGE_COMMITMENT,
                                          STORAGE_COMMITMENT_INSTANCE, 1, info)
                assert rsp.status == 0
                result = await asyncio.wait_for(fut, 10)
        finally:
            await server.close()
            await listener.close()
        return scp, result

    scp, result = asyncio.run(main())
    assert result.ok and sorted(result.committed) == sorted(refs)
    assert scp.delivered[0][2] == "new association"


def test_bad_requests_are_refused(archive_setup):
    archive, files, recs = archive_setup

    async def main():
        scp, server = await _scp(archive)
        out = []
        try:
            assoc = await AE("SCU", dimse_timeout=10).associate(
                HOST, server.port, [(STORAGE_COMMITMENT, ["1.2.840.10008.1.2"])])
            async with assoc:
                info = Dataset()
                info.ReferencedSOPSequence = []
                out.append(await nscu.n_action(assoc, STORAGE_COMMITMENT,
                                               STORAGE_COMMITMENT_INSTANCE, 1, info))
                info.TransactionUID = "1.2.3"
                out.append(await nscu.n_action(assoc, STORAGE_COMMITMENT,
                                               STORAGE_COMMITMENT_INSTANCE, 1, info))
                out.append(await nscu.n_action(assoc, STORAGE_COMMITMENT,
                                               STORAGE_COMMITMENT_INSTANCE, 2, info))
                out.append(await nscu.n_action(assoc, STORAGE_COMMITMENT, "1.2.3.4", 1, info))
                out.append(await nscu.n_get(assoc, STORAGE_COMMITMENT,
                                            STORAGE_COMMITMENT_INSTANCE))
        finally:
            await server.close()
        return [r.status for r in out]

    assert asyncio.run(main()) == [N.INVALID_ARGUMENT_VALUE, N.INVALID_ARGUMENT_VALUE,
                                   N.NO_SUCH_ACTION, N.NO_SUCH_SOP_INSTANCE,
                                   N.UNRECOGNIZED_OPERATION]

    async def refused():
        scp, server = await _scp(archive)
        try:
            with pytest.raises(DIMSEError):
                await request_commitment(_settings("SCU"), HOST, server.port, [],
                                         timeout=5)
        finally:
            await server.close()
    asyncio.run(refused())


# -- pynetdicom as the peer ----------------------------------------------------------------

def test_pynetdicom_scu_against_dicomfast_scp(archive_setup):
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS
    from pynetdicom import evt

    archive, files, recs = archive_setup
    refs = _refs(files)
    got = threading.Event()
    reports = []

    def on_report(event):
        reports.append((event.event_type, event.event_information))
        got.set()
        return 0x0000, None

    with serving_in_thread(lambda: _scp(archive)) as (_, server):
        ae = pynetdicom.AE(ae_title="PYSCU")
        ae.add_requested_context(STORAGE_COMMITMENT)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        assoc = ae.associate(HOST, server.port, ae_title="COMMITSCP",
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        assert assoc.is_established
        try:
            info = PDS()
            info.TransactionUID = "1.2.826.0.1.3680043.9.7433.8.77"
            info.ReferencedSOPSequence = []
            for c, i in refs:
                item = PDS()
                item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = c, i
                info.ReferencedSOPSequence.append(item)
            status, _ = assoc.send_n_action(info, 1, STORAGE_COMMITMENT,
                                            STORAGE_COMMITMENT_INSTANCE)
            assert status.Status == 0
            deadline = time.monotonic() + 10
            while not got.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            assoc.release()
    assert reports, "no N-EVENT-REPORT reached pynetdicom"
    event_type, ds = reports[0]
    assert event_type == 2
    assert {x.ReferencedSOPInstanceUID for x in ds.ReferencedSOPSequence} == \
        {refs[0][1], refs[1][1]}
    assert [(x.ReferencedSOPInstanceUID, x.FailureReason) for x in ds.FailedSOPSequence] \
        == [(refs[2][1], NO_SUCH_OBJECT_INSTANCE)]


def test_dicomfast_scu_against_pynetdicom_scp():
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS
    from pynetdicom import evt

    known = {"1.2.826.0.1.3680043.9.7433.7.1"}

    def on_action(event):
        info = event.action_information

        def report():
            time.sleep(0.1)  # after pynetdicom has sent the N-ACTION-RSP
            out = PDS()
            out.TransactionUID = info.TransactionUID
            ok, bad = [], []
            for item in info.ReferencedSOPSequence:
                ref = PDS()
                ref.ReferencedSOPClassUID = item.ReferencedSOPClassUID
                ref.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
                if item.ReferencedSOPInstanceUID in known:
                    ok.append(ref)
                else:
                    ref.FailureReason = 0x0112
                    bad.append(ref)
            out.ReferencedSOPSequence = ok
            if bad:
                out.FailedSOPSequence = bad
            event.assoc.send_n_event_report(out, 2 if bad else 1, STORAGE_COMMITMENT,
                                            STORAGE_COMMITMENT_INSTANCE)
        threading.Thread(target=report, daemon=True).start()
        return 0x0000, None

    ae = pynetdicom.AE(ae_title="PYSCP")
    ae.add_supported_context(STORAGE_COMMITMENT)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    server = ae.start_server((HOST, 0), block=False,
                             evt_handlers=[(evt.EVT_N_ACTION, on_action)])
    port = server.socket.getsockname()[1]
    try:
        result = asyncio.run(request_commitment(
            _settings("DFSCU"), HOST, port,
            [(CT, "1.2.826.0.1.3680043.9.7433.7.1"), (CT, "1.2.826.0.1.3680043.9.7433.7.2")],
            called_ae="PYSCP", timeout=10))
    finally:
        server.shutdown()
    assert result.committed == [(CT, "1.2.826.0.1.3680043.9.7433.7.1")]
    assert result.failed == [(CT, "1.2.826.0.1.3680043.9.7433.7.2", 0x0112)]
    assert result.event_type_id == 2


def test_commit_cli(archive_setup, capsys):
    """`dicomfast commit` through the top-level CLI, against the dicomfast SCP in another
    thread: exit 1 and a failure line for the instance whose file is gone."""
    from dicomfast.cli import main as cli_main

    archive, files, recs = archive_setup
    refs = _refs(files)
    with serving_in_thread(lambda: _scp(archive)) as (_, server):
        rc_ok = cli_main(["commit", HOST, str(server.port), str(files[0]), str(files[1]),
                          "--called-aet", "COMMITSCP", "--timeout", "10"])
        out_ok = capsys.readouterr().out
        rc_bad = cli_main(["commit", HOST, str(server.port), *map(str, files),
                           "--timeout", "10"])
        out_bad = capsys.readouterr().out
    assert rc_ok == 0 and f"committed {refs[0][1]}" in out_ok and "failed" not in out_ok
    assert rc_bad == 1 and f"failed {refs[2][1]} 0x0112" in out_bad


# -- Orthanc as the peer (it implements both sides since 1.6) ----------------------------

ORTHANC = "/usr/sbin/Orthanc"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    import json
    import subprocess

    from test_net_helpers import free_port, wait_port

    if not os.path.exists(ORTHANC):
        pytest.skip("Orthanc not installed")
    tmp_path = tmp_path_factory.mktemp("orthanc")
    http, dicom, ours = free_port(), free_port(), free_port()
    cfg = tmp_path / "orthanc.json"
    (tmp_path / "storage").mkdir()
    cfg.write_text(json.dumps({
        "Name": "dicomfast-commit", "StorageDirectory": str(tmp_path / "storage"),
        "IndexDirectory": str(tmp_path / "storage"), "HttpPort": http, "DicomPort": dicom,
        "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "HttpServerEnabled": True, "DicomServerEnabled": True, "Plugins": [],
        "DicomModalities": {"df": ["DFSCU", HOST, ours]}, "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True, "DicomScpTimeout": 30, "StorageCompression": False}))
    proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(http, proc=proc, timeout=30)
        wait_port(dicom, proc=proc, timeout=30)
        yield http, dicom, ours
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _rest(http, path, body=None):
    import json
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{HOST}:{http}{path}", data=data)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_dicomfast_scu_against_orthanc_scp(orthanc, archive_setup):
    """Orthanc commits what it stored and reports on a new association to our
    listener (it knows our AE title's address)."""
    http, dicom, ours = orthanc
    _, files, _ = archive_setup
    refs = _refs(files)
    assert all(r.ok for r in AE("DFSCU").store(HOST, dicom, files[:2], called_ae="ORTHANC"))
    unknown = (CT, "1.2.826.0.1.3680043.9.7433.9.77")

    async def main():
        reports = CommitmentReports()
        listener = await reports.start_listener(_settings("DFSCU"), host=HOST, port=ours)
        try:
            return await request_commitment(_settings("DFSCU"), HOST, dicom,
                                            refs[:2] + [unknown], called_ae="ORTHANC",
                                            timeout=20, reports=reports)
        finally:
            await listener.close()

    result = asyncio.run(main())
    assert sorted(result.committed) == sorted(refs[:2])
    assert [(c, i) for c, i, _ in result.failed] == [unknown]


def test_orthanc_scu_against_dicomfast_scp(orthanc, archive_setup):
    """Orthanc asks (REST /modalities/.../storage-commitment); our SCP reports on a new
    association to Orthanc's DICOM port; Orthanc's REST API shows the outcome."""
    http, dicom, ours = orthanc
    archive, files, _ = archive_setup
    refs = _refs(files)

    async def start():
        router = ServiceRouter()
        scp = StorageCommitmentSCP(archive, settings=_settings("DFSCU"),
                                   scu_addresses={"ORTHANC": (HOST, dicom)})
        scp.install(router)
        return await router.start(_settings("DFSCU"), host=HOST, port=ours)

    with serving_in_thread(start):
        job = _rest(http, "/modalities/df/storage-commitment", {
            "DicomInstances": [{"SOPClassUID": c, "SOPInstanceUID": i} for c, i in refs],
            "Timeout": 20})
        deadline = time.monotonic() + 20
        report = _rest(http, job["Path"])
        while report.get("Status") == "Pending" and time.monotonic() < deadline:
            time.sleep(0.1)
            report = _rest(http, job["Path"])
    assert report["Status"] == "Failure", report    # one of the three is not there
    assert sorted(x["SOPInstanceUID"] for x in report["Success"]) == \
        sorted(i for _, i in refs[:2])
    assert [(x["SOPInstanceUID"], x["FailureReason"]) for x in report["Failures"]] == \
        [(refs[2][1], NO_SUCH_OBJECT_INSTANCE)]


def test_commit_cli_listen_port(archive_setup, capsys):
    """`commit --listen-port`: released at once, the report comes on a new association."""
    from test_net_helpers import free_port

    from dicomfast.net.ncli import main as commit_main

    archive, files, recs = archive_setup
    refs = _refs(files)
    listen = free_port()

    def start():
        return _scp(_SlowArchive(archive), scu_addresses={"CLISCU": (HOST, listen)})

    with serving_in_thread(start) as (scp, server):
        rc = commit_main(["commit", HOST, str(server.port), str(files[1]), "--aet", "CLISCU",
                          "--listen-port", str(listen), "--timeout", "10"])
        out = capsys.readouterr().out
    assert rc == 0 and f"committed {refs[1][1]}" in out
    assert scp.delivered[0][2] == "new association"
