"""Query/retrieve between dicomfast peers on loopback: C-FIND at every level of both
models (answers compared with the archive's own query), C-MOVE, C-GET, C-CANCEL,
and the faults: unknown destination, destination refusing or failing, the
requestor aborting mid-move. Never a false success."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest
from test_archive import QUERIES, UID_ROOT, UNIQUE, _to_identifier, make_archive_files
from test_net_helpers import HOST

from dicomfast.archive import Archive
from dicomfast.archive.rebuild import rebuild
from dicomfast.errors import AssociationError
from dicomfast.net import AE, BackgroundServer
from dicomfast.net import dimse as D
from dicomfast.net import dimse_c as C
from dicomfast.net.services import identifiers as I
from dicomfast.net.services import qrscu
from dicomfast.net.services.qrscp import start_qrscp

pydicom = pytest.importorskip("pydicom")


def _ae(title: str = "DFSCU") -> AE:
    return AE(title, acse_timeout=10, dimse_timeout=20, connect_timeout=10)


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("qr-archive")
    make_archive_files(root, n_studies=150)
    rebuild(root)
    return root


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    """A dicomfast storage SCP as C-MOVE destination (DEST)."""
    out = tmp_path_factory.mktemp("dest")
    with _ae("DEST").serve_in_background(out, host=HOST, fsync=False) as server:
        server.out = out
        yield server


@pytest.fixture(scope="module")
def refusing(tmp_path_factory):
    """A storage SCP that only talks to 'SOMEONE-ELSE': refuses our sub-association."""
    out = tmp_path_factory.mktemp("refusing")
    with _ae("REFUSER").serve_in_background(out, host=HOST, fsync=False,
                                            calling_ae_titles={"SOMEONE-ELSE"}) as server:
        yield server


@pytest.fixture(scope="module")
def picky(tmp_path_factory):
    """A storage SCP that fails every CT object (0xA700) and keeps the rest."""
    out = tmp_path_factory.mktemp("picky")

    def on_store(obj):
        return 0xA700 if obj.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2" else None

    with _ae("PICKY").serve_in_background(out, host=HOST, fsync=False,
                                          on_store=on_store) as server:
        server.out = out
        yield server


@pytest.fixture(scope="module")
def qrscp(archive_root, dest, refusing, picky):
    table = {"DEST": (HOST, dest.port), "REFUSER": (HOST, refusing.port),
             "PICKY": (HOST, picky.port), "NOBODY": (HOST, 1)}
    settings = _ae("DFQRSCP").settings
    with BackgroundServer(lambda: start_qrscp(settings, archive_root, host=HOST,
                                              ae_table=table, fsync=False)) as server:
        server.archive = Archive(archive_root)
        yield server
        server.archive.close()


def _find(server, ident, level, model="study", **kw):
    return qrscu.find_sync(_ae(), HOST, server.port, ident, level=level, model=model, **kw)


@pytest.mark.parametrize("level,query", QUERIES[::2], ids=[f"{lv}-{'-'.join(q)}"
                                                           for lv, q in QUERIES[::2]])
def test_find_matches_archive(qrscp, level, query):
    model = "patient" if level == "PATIENT" else "study"
    ident = dict(_to_identifier(query), PatientName="", StudyDate="")
    if level != "PATIENT":
        ident["StudyInstanceUID"] = ident.get("StudyInstanceUID", "")
    answers = [I.to_dict(ds) for ds in _find(qrscp, ident, level, model)]
    local = list(qrscp.archive.query(level, ident, model=model))
    key = UNIQUE[level]
    assert sorted(a[key] for a in answers) == sorted(r[key] for r in local)
    by_key = {r[key]: r for r in local}
    for a in answers:
        assert a["QueryRetrieveLevel"] == level
        assert a["PatientName"] == (by_key[a[key]]["PatientName"] or "")


@pytest.mark.parametrize("model", ["patient", "study"])
@pytest.mark.parametrize("level", ["PATIENT", "STUDY", "SERIES", "IMAGE"])
def test_find_every_level(qrscp, model, level):
    if model == "study" and level == "PATIENT":
        with pytest.raises(qrscu.QueryFailed):
            _find(qrscp, {"PatientID": "PID001"}, level, model)
        return
    ident = {"PatientID": "PID001", "PatientName": "", UNIQUE[level]: "",
             "RetrieveAETitle": ""}
    answers = [I.to_dict(ds) for ds in _find(qrscp, ident, level, model)]
    local = list(qrscp.archive.query(level, ident, model=model))
    assert answers and sorted(a[UNIQUE[level]] for a in answers) == \
        sorted(r[UNIQUE[level]] for r in local)
    assert {a["RetrieveAETitle"] for a in answers} == {"DFQRSCP"}


def test_find_non_ascii_keys(qrscp):
    answers = _find(qrscp, {"PatientName": "山田^太郎", "PatientID": ""}, "PATIENT", "patient")
    assert answers
    for ds in answers:
        assert "山田^太郎" in str(ds.PatientName)
        assert ds.SpecificCharacterSet == "ISO_IR 192"


# Set by the test once its C-CANCEL-RQ is on the way.
_CANCEL_SENT = threading.Event()


def _slow_source(level, ident, model):
    """20,000 answers. After the first few hundred the source waits until the test
    is about to send its C-CANCEL-RQ, so the SCP is still answering when it arrives
    however slow the machine; then it goes on at a pace a loopback socket cannot
    hide (the rest would take over 0.8 s)."""
    for i in range(20000):
        if i == 256:
            _CANCEL_SENT.wait(30)
        if i % 50 == 0:
            time.sleep(0.002)
        yield {"StudyInstanceUID": f"{UID_ROOT}.9.{i}", "PatientName": f"Name^{i}"}


def test_cancel_mid_find():
    from dicomfast.net import Server
    from dicomfast.net.association import AcceptorPolicy
    from dicomfast.net.services.qr import QueryRetrieveSCP

    async def start():
        scp = QueryRetrieveSCP(None, sources={"study": _slow_source})
        policy = AcceptorPolicy("SLOW", {C.STUDY_ROOT_FIND}, {"1.2.840.10008.1.2.1"},
                                called_ae_required=False)
        server = Server(_ae("SLOW").settings, policy, scp.handler)
        return await server.start(HOST, 0)

    async def run(port):
        assoc = await _ae().associate(HOST, port, [(C.STUDY_ROOT_FIND, ["1.2.840.10008.1.2.1"])])
        async with assoc:
            stream = await qrscu.start_find(assoc, {"StudyInstanceUID": ""}, level="STUDY")
            got = 0
            async for _ in stream:
                got += 1
                if got == 3:
                    # Let the source go on now: cancel() waits for the final response,
                    # which a source still waiting for the event would never send.
                    _CANCEL_SENT.set()
                    await stream.cancel()
            first = (got, stream.status)
            # The association goes on: a second query is answered.
            again = await qrscu.start_find(assoc, {"StudyInstanceUID": ""}, level="STUDY",
                                           raw=True)
            n = 0
            async for _ in again:
                n += 1
            return first, n, again.status

    _CANCEL_SENT.clear()
    with BackgroundServer(start) as server:
        (got, status), n, status2 = asyncio.run(run(server.port))
    assert status == C.CANCEL
    assert 3 <= got < 20000, got   # the rest was never sent
    assert (n, status2) == (20000, D.SUCCESS)


def test_move_study_to_storescp(qrscp, dest):
    uid = f"{UID_ROOT}.21"
    progress = []
    result = qrscu.move_sync(_ae(), HOST, qrscp.port, {"StudyInstanceUID": uid}, "DEST",
                             level="STUDY", on_progress=progress.append)
    expected = qrscp.archive.instances(study_uid=uid)
    assert (result.status, result.completed, result.failed) == (0, len(expected), 0)
    assert [p["remaining"] for p in progress] == list(range(len(expected) - 1, -1, -1))
    for rec in expected:
        got = dest.out / f"{rec.sop_instance_uid}.dcm"
        a, b = pydicom.dcmread(rec.path), pydicom.dcmread(got)
        assert a == b


def test_move_patient_root_series_level(qrscp, dest):
    uid = f"{UID_ROOT}.30.2"
    result = qrscu.move_sync(_ae(), HOST, qrscp.port, {"PatientID": "PID029",
                                                       "StudyInstanceUID": f"{UID_ROOT}.30",
                                                       "SeriesInstanceUID": uid},
                             "DEST", level="SERIES", model="patient")
    assert (result.status, result.completed) == (0, 2)
    assert all((dest.out / f"{uid}.{i}.dcm").exists() for i in (1, 2))


def test_move_unknown_destination(qrscp):
    result = qrscu.move_sync(_ae(), HOST, qrscp.port, {"StudyInstanceUID": f"{UID_ROOT}.22"},
                             "WHO", level="STUDY")
    assert result.status == C.MOVE_DESTINATION_UNKNOWN and result.completed == 0


@pytest.mark.parametrize("destination", ["REFUSER", "NOBODY"])
def test_move_destination_refusing(qrscp, destination):
    uid = f"{UID_ROOT}.23"
    result = qrscu.move_sync(_ae(), HOST, qrscp.port, {"StudyInstanceUID": uid}, destination,
                             level="STUDY")
    expected = {r.sop_instance_uid for r in qrscp.archive.instances(study_uid=uid)}
    assert result.status == C.OUT_OF_RESOURCES_SUBOPS
    assert (result.completed, result.failed) == (0, len(expected))
    assert set(result.failed_uids) == expected


def test_move_partial_failure(qrscp, picky):
    uid = f"{UID_ROOT}.24"
    recs = qrscp.archive.instances(study_uid=uid)
    ct = {r.sop_instance_uid for r in recs if r.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"}
    assert ct and len(ct) < len(recs)
    result = qrscu.move_sync(_ae(), HOST, qrscp.port, {"StudyInstanceUID": uid}, "PICKY",
                             level="STUDY")
    assert result.status == C.SUBOPS_WITH_FAILURES
    assert (result.completed, result.failed) == (len(recs) - len(ct), len(ct))
    assert set(result.failed_uids) == ct


def test_requestor_aborts_mid_move(qrscp, dest):
    before = len(list(dest.out.iterdir()))

    async def run():
        assoc = await _ae().associate(HOST, qrscp.port,
                                      [(C.STUDY_ROOT_MOVE, ["1.2.840.10008.1.2.1"])])
        started = asyncio.Event()
        task = asyncio.ensure_future(qrscu.retrieve(
            assoc, D.C_MOVE_RQ, {"SOPInstanceUID": ""}, level="IMAGE", destination="DEST",
            on_progress=lambda c: started.set()))
        await asyncio.wait_for(started.wait(), 20)
        assoc.abort()
        with pytest.raises(AssociationError):
            await task

    asyncio.run(run())
    time.sleep(0.5)
    moved = len(list(dest.out.iterdir())) - before
    time.sleep(0.5)
    assert len(list(dest.out.iterdir())) - before == moved  # the move stopped
    assert moved < 600
    # The server is unharmed.
    assert len(_find(qrscp, {"StudyInstanceUID": f"{UID_ROOT}.1"}, "STUDY")) == 1


def test_get_series(qrscp, tmp_path):
    uid = f"{UID_ROOT}.40.1"
    result = qrscu.get_sync(_ae(), HOST, qrscp.port, {"SeriesInstanceUID": uid},
                            tmp_path / "got", level="SERIES")
    recs = qrscp.archive.instances(series_uid=uid)
    assert (result.status, result.completed, result.failed) == (0, len(recs), 0)
    assert sorted(o.sop_instance_uid for o in result.received) == \
        sorted(r.sop_instance_uid for r in recs)
    for rec in recs:
        assert pydicom.dcmread(rec.path) == pydicom.dcmread(
            tmp_path / "got" / f"{rec.sop_instance_uid}.dcm")


def test_get_without_storage_contexts_fails(qrscp, tmp_path):
    """A C-GET whose requestor accepts no storage SOP class for the objects: every
    sub-operation fails, and the final status says so."""
    result = qrscu.get_sync(_ae(), HOST, qrscp.port, {"StudyInstanceUID": f"{UID_ROOT}.41"},
                            tmp_path / "got", level="STUDY",
                            sop_classes=["1.2.840.10008.5.1.4.1.1.481.5"])
    assert result.status != D.SUCCESS and result.completed == 0 and result.failed == 4


def test_store_then_find_through_qrscp(tmp_path):
    """C-STORE into qrscp lands in its archive index, then answers C-FIND."""
    from corpus import find

    settings = _ae("DFQRSCP").settings
    with BackgroundServer(lambda: start_qrscp(settings, tmp_path / "arc", host=HOST,
                                              fsync=True)) as server:
        results = _ae().store(HOST, server.port, [find("CT_small.dcm"), find("MR_small.dcm")])
        assert [r.status for r in results] == [0, 0]
        answers = _find(server, {"StudyInstanceUID": "", "ModalitiesInStudy": ""}, "STUDY")
        assert sorted(str(ds.ModalitiesInStudy) for ds in answers) == ["CT", "MR"]


def test_cli_find_json_lines(qrscp):
    run = subprocess.run([sys.executable, "-m", "dicomfast", "find", HOST, str(qrscp.port),
                          "--level", "STUDY", "-k", "PatientName=Smith1*",
                          "-k", "StudyInstanceUID=", "-k", "ProcedureCodeSequence.CodeValue="],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    local = list(qrscp.archive.query("STUDY", {"PatientName": "Smith1*",
                                               "StudyInstanceUID": ""}))
    assert sorted(r["StudyInstanceUID"] for r in rows) == \
        sorted(r["StudyInstanceUID"] for r in local)
    assert all(r["PatientName"].lower().startswith("smith1") for r in rows)


def test_cli_move_and_get_exit_status(qrscp, dest, tmp_path):
    uid = f"{UID_ROOT}.50"
    ok = subprocess.run([sys.executable, "-m", "dicomfast", "get", HOST, str(qrscp.port),
                         "--output-dir", str(tmp_path), "--level", "STUDY",
                         "-k", f"StudyInstanceUID={uid}", "--no-progress"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert len(list(tmp_path.glob("*.dcm"))) == 4
    bad = subprocess.run([sys.executable, "-m", "dicomfast", "move", HOST, str(qrscp.port),
                          "--dest", "WHO", "-k", f"StudyInstanceUID={uid}", "--no-progress"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "0xA801" in bad.stderr


def test_qrscp_serves_commitment_and_mpps(tmp_path):
    """Storage Commitment and MPPS are mounted on qrscp: an instance in the archive is
    committed, one that is not is in the failure list; an MPPS N-CREATE is kept."""
    from corpus import find

    from dicomfast.net.services import commitment, mpps

    settings = _ae("DFQRSCP").settings
    with BackgroundServer(lambda: start_qrscp(settings, tmp_path / "arc", host=HOST,
                                              fsync=False)) as server:
        ct = pydicom.dcmread(find("CT_small.dcm"))
        assert [r.status for r in _ae().store(HOST, server.port, [find("CT_small.dcm")])] == [0]
        refs = [(str(ct.SOPClassUID), str(ct.SOPInstanceUID)),
                (str(ct.SOPClassUID), "1.2.826.0.1.3680043.8.498.1.404")]
        result = asyncio.run(commitment.request_commitment(_ae().settings, HOST, server.port,
                                                           refs, timeout=20))
        assert result.committed == refs[:1]
        assert [f[:2] for f in result.failed] == refs[1:]
        step = mpps.in_progress("PID1", "Doe^John", "CT", "DFSCU", "STEP1",
                                ("20260101", "120000"))
        rsp = _ae().n_create(HOST, server.port, "1.2.840.10008.3.1.2.3.3", step,
                             sop_instance_uid="1.2.826.0.1.3680043.8.498.1.77")
        assert rsp.status == 0


def test_cancel_mid_move(qrscp, dest):
    async def run():
        assoc = await _ae().associate(HOST, qrscp.port,
                                      [(C.STUDY_ROOT_MOVE, ["1.2.840.10008.1.2.1"])])
        async with assoc:
            return await qrscu.retrieve(assoc, D.C_MOVE_RQ, {"SOPInstanceUID": ""},
                                        level="IMAGE", destination="DEST", cancel_after=3)

    result = asyncio.run(run())
    assert result.status == C.CANCEL
    assert 3 <= result.completed < 600 and result.remaining > 0 and result.failed == 0


def test_move_sub_operations_name_the_originator(archive_root):
    """Each C-STORE of a C-MOVE carries the Move Originator AE Title and Message ID
    (PS3.7 §9.3.1.1, PS3.4 C.4.2.2.2), as pynetdicom's storage SCP receives them."""
    from pynetdicom import AE as PynetAE
    from pynetdicom import AllStoragePresentationContexts, evt

    seen = []

    def handle_store(event):
        rq = event.request
        seen.append((rq.MoveOriginatorApplicationEntityTitle, rq.MoveOriginatorMessageID))
        return 0x0000

    peer = PynetAE("PYDEST")
    peer.supported_contexts = AllStoragePresentationContexts
    server = peer.start_server((HOST, 0), block=False,
                               evt_handlers=[(evt.EVT_C_STORE, handle_store)])
    try:
        port = server.server_address[1]
        settings = _ae("DFQRSCP").settings
        with BackgroundServer(lambda: start_qrscp(settings, archive_root, host=HOST,
                                                  ae_table={"PYDEST": (HOST, port)},
                                                  fsync=False)) as qr:
            uid = f"{UID_ROOT}.22"
            result = qrscu.move_sync(_ae("MOVER"), HOST, qr.port, {"StudyInstanceUID": uid},
                                     "PYDEST", level="STUDY")
    finally:
        server.shutdown()
    assert result.status == 0 and result.completed == len(seen) > 0
    titles = {str(t).strip() for t, _ in seen}
    ids = {int(i) for _, i in seen}
    assert titles == {"MOVER"}
    assert len(ids) == 1  # the C-MOVE-RQ's own Message ID, on every sub-operation
