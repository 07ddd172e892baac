"""Query/retrieve against real peers on loopback, answers compared field by field:

* DCMTK findscu, movescu and getscu against ``dicomfast qrscp`` (the command line);
* dicomfast find, move and get against DCMTK dcmqrscp (a temporary configuration);
* Orthanc (a temporary configuration): dicomfast stores into it, finds at every
  level (compared with what its REST API reports), moves from it into a dicomfast
  storage SCP, and gets from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_archive import UID_ROOT, make_archive_files
from test_net_helpers import (
    HOST,
    ROOT,
    dcmtk,
    dcmtk_env,
    dcmtk_storescp,
    free_port,
    need_dcmtk,
    same_dataset,
    wait_port,
)

from dicomfast.archive import Archive
from dicomfast.archive.rebuild import rebuild
from dicomfast.net import AE
from dicomfast.net import dimse as D
from dicomfast.net.services import identifiers as I
from dicomfast.net.services import qrscu

pydicom = pytest.importorskip("pydicom")
ORTHANC = "/usr/sbin/Orthanc"


def _ae(title: str = "DFSCU") -> AE:
    return AE(title, acse_timeout=15, dimse_timeout=30, connect_timeout=15)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("qr-files")
    records = make_archive_files(root, n_studies=10)
    return root, records


def _dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.dcm"))


# -- DCMTK -> dicomfast qrscp ---------------------------------------------------------------

@pytest.fixture(scope="module")
def qrscp_process(files, tmp_path_factory):
    """`python -m dicomfast qrscp` over a copy of the files, with a DCMTK storescp as
    the C-MOVE destination DCMTKSCP."""
    need_dcmtk("findscu", "movescu", "getscu", "storescp")
    src, _ = files
    arc = tmp_path_factory.mktemp("qrscp") / "archive"
    shutil.copytree(src, arc)
    rebuild(arc)
    dest_dir = tmp_path_factory.mktemp("dcmtk-dest")
    with dcmtk_storescp(dest_dir) as dest_port:
        table = arc.parent / "aet.txt"
        table.write_text(f"DCMTKSCP {HOST} {dest_port}\n")
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "dicomfast", "qrscp", "--port", str(port),
                                 "--dir", str(arc), "--aet", "DFQRSCP", "--host", HOST,
                                 "--ae-table", str(table), "--no-fsync"],
                                cwd=str(ROOT / "tests"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            wait_port(port, proc=proc, timeout=20)
            with Archive(arc) as archive:
                yield port, archive, dest_dir
        finally:
            _stop(proc)
            proc.stderr.close()


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, env=dcmtk_env(),
                         cwd=cwd)
    return run


def test_findscu_against_qrscp(qrscp_process, tmp_path):
    port, archive, _ = qrscp_process
    run = _run([dcmtk("findscu"), "-S", "-aec", "DFQRSCP", "-X", "-od", str(tmp_path),
                "-k", "QueryRetrieveLevel=SERIES", "-k", "StudyInstanceUID",
                "-k", "SeriesInstanceUID", "-k", "Modality=MR", "-k", "PatientName",
                "-k", "StudyDate", "-k", "NumberOfSeriesRelatedInstances", HOST, str(port)])
    assert run.returncode == 0, run.stderr
    got = {}
    for f in sorted(tmp_path.glob("rsp*.dcm")):
        ds = pydicom.dcmread(f)
        got[ds.SeriesInstanceUID] = ds
    local = {r["SeriesInstanceUID"]: r for r in archive.query(
        "SERIES", {"Modality": "MR", "PatientName": "", "StudyDate": "",
                   "NumberOfSeriesRelatedInstances": "", "StudyInstanceUID": ""})}
    assert local and set(got) == set(local)
    for uid, ds in got.items():
        row = local[uid]
        assert str(ds.PatientName) == row["PatientName"]
        assert ds.StudyDate == row["StudyDate"] and ds.Modality == "MR"
        assert int(ds.NumberOfSeriesRelatedInstances) == row["NumberOfSeriesRelatedInstances"]


def test_movescu_against_qrscp(qrscp_process):
    port, archive, dest_dir = qrscp_process
    uid = f"{UID_ROOT}.3"
    run = _run([dcmtk("movescu"), "-S", "-aet", "MOVER", "-aec", "DFQRSCP", "-aem", "DCMTKSCP",
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}", HOST,
                str(port)])
    assert run.returncode == 0, run.stderr
    recs = archive.instances(study_uid=uid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(list(dest_dir.iterdir())) < len(recs):
        time.sleep(0.05)
    stored = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in dest_dir.iterdir()}
    for rec in recs:
        same_dataset(rec.path, stored[rec.sop_instance_uid])


def test_getscu_against_qrscp(qrscp_process, tmp_path):
    port, archive, _ = qrscp_process
    uid = f"{UID_ROOT}.4.2"
    run = _run([dcmtk("getscu"), "-S", "-aec", "DFQRSCP", "-od", str(tmp_path),
                "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={UID_ROOT}.4",
                "-k", f"SeriesInstanceUID={uid}", HOST, str(port)])
    assert run.returncode == 0, run.stderr
    recs = archive.instances(series_uid=uid)
    got = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in tmp_path.iterdir()}
    assert set(got) == {r.sop_instance_uid for r in recs}
    for rec in recs:
        same_dataset(rec.path, got[rec.sop_instance_uid])


# -- dicomfast -> DCMTK dcmqrscp -------------------------------------------------------------

@pytest.fixture(scope="module")
def dcmqrscp(files, tmp_path_factory):
    """dcmqrscp with the files in its database (dcmqridx), DFDEST as move destination."""
    need_dcmtk("dcmqrscp", "dcmqridx")
    src, _ = files
    base = tmp_path_factory.mktemp("dcmqrscp")
    db = base / "db"
    db.mkdir()
    for i, f in enumerate(_dicom_files(src)):
        shutil.copy(f, db / f"f{i:04d}.dcm")
    run = _run([dcmtk("dcmqridx"), str(db)] + [str(p) for p in sorted(db.glob("*.dcm"))])
    assert run.returncode == 0, run.stderr
    dest_dir = base / "dest"
    port, dest_port = free_port(), free_port()
    cfg = base / "dcmqrscp.cfg"
    cfg.write_text(f"""NetworkTCPPort = {port}
MaxPDUSize = 16384
MaxAssociations = 16
HostTable BEGIN
dfdest = (DFDEST, {HOST}, {dest_port})
dfscu = (DFSCU, {HOST}, {dest_port})
HostTable END
VendorTable BEGIN
VendorTable END
AETable BEGIN
DCMQRSCP {db} RW (200, 1024mb) ANY
AETable END
""")
    # Fork mode: single-process mode (-s) of DCMTK 3.6.7 crashes after the first release.
    proc = subprocess.Popen([dcmtk("dcmqrscp"), "-c", str(cfg), str(port)],
                            env=dcmtk_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=proc)
        with _ae("DFDEST").serve_in_background(dest_dir, host=HOST, port=dest_port,
                                               fsync=False):
            yield port, src, dest_dir
    finally:
        _stop(proc)
        proc.stderr.close()


@pytest.fixture(scope="module")
def own_archive(files, tmp_path_factory):
    src, _ = files
    arc = tmp_path_factory.mktemp("own") / "a"
    shutil.copytree(src, arc)
    rebuild(arc)
    with Archive(arc) as archive:
        yield archive


@pytest.mark.parametrize("level,keys", [
    ("STUDY", {"StudyInstanceUID": "", "PatientName": "", "PatientID": "", "StudyDate": "",
               "StudyTime": "", "AccessionNumber": "", "StudyDescription": ""}),
    ("SERIES", {"StudyInstanceUID": f"{UID_ROOT}.2", "SeriesInstanceUID": "", "Modality": "",
                "SeriesNumber": ""}),
    ("IMAGE", {"StudyInstanceUID": f"{UID_ROOT}.5", "SeriesInstanceUID": f"{UID_ROOT}.5.1",
               "SOPInstanceUID": "", "InstanceNumber": ""}),
])
def test_find_against_dcmqrscp(dcmqrscp, own_archive, level, keys):
    port, _, _ = dcmqrscp
    answers = qrscu.find_sync(_ae(), HOST, port, keys, level=level, called_ae="DCMQRSCP")
    theirs = [I.to_dict(ds) for ds in answers]
    ours = list(own_archive.query(level, keys))
    unique = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
              "IMAGE": "SOPInstanceUID"}[level]
    assert sorted(t[unique] for t in theirs) == sorted(o[unique] for o in ours)
    by_uid = {o[unique]: o for o in ours}
    for t in theirs:
        for kw in keys:
            assert t[kw] == (by_uid[t[unique]][kw] or ""), (kw, t)


def test_find_with_date_range_against_dcmqrscp(dcmqrscp, own_archive):
    port, _, _ = dcmqrscp
    keys = {"StudyInstanceUID": "", "StudyDate": "20100101-20201231"}
    theirs = {ds.StudyInstanceUID for ds in qrscu.find_sync(
        _ae(), HOST, port, keys, level="STUDY", called_ae="DCMQRSCP")}
    ours = {r["StudyInstanceUID"] for r in own_archive.query("STUDY", keys)}
    assert theirs == ours


def test_move_from_dcmqrscp(dcmqrscp, own_archive):
    port, _, dest_dir = dcmqrscp
    uid = f"{UID_ROOT}.6"
    result = qrscu.move_sync(_ae(), HOST, port, {"StudyInstanceUID": uid}, "DFDEST",
                             level="STUDY", called_ae="DCMQRSCP")
    recs = own_archive.instances(study_uid=uid)
    assert (result.status, result.completed, result.failed) == (0, len(recs), 0)
    for rec in recs:
        got = dest_dir / f"{rec.sop_instance_uid}.dcm"
        same_dataset(rec.path, got)


def test_move_from_dcmqrscp_unknown_destination(dcmqrscp):
    port, _, _ = dcmqrscp
    result = qrscu.move_sync(_ae(), HOST, port, {"StudyInstanceUID": f"{UID_ROOT}.6"},
                             "NOWHERE", level="STUDY", called_ae="DCMQRSCP")
    assert result.status == 0xA801


def test_get_from_dcmqrscp(dcmqrscp, own_archive, tmp_path):
    port, _, _ = dcmqrscp
    uid = f"{UID_ROOT}.7.1"
    result = qrscu.get_sync(_ae(), HOST, port, {"StudyInstanceUID": f"{UID_ROOT}.7",
                                                "SeriesInstanceUID": uid},
                            tmp_path, level="SERIES", called_ae="DCMQRSCP", fsync=False)
    recs = own_archive.instances(series_uid=uid)
    assert (result.status, result.completed) == (0, len(recs))
    for rec in recs:
        same_dataset(rec.path, tmp_path / f"{rec.sop_instance_uid}.dcm")


# -- Orthanc ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _orthanc(base: Path, modalities: dict):
    if not os.path.exists(ORTHANC):
        pytest.skip("Orthanc not installed")
    http, dicom = free_port(), free_port()
    cfg = base / "orthanc.json"
    (base / "storage").mkdir()
    cfg.write_text(json.dumps({
        "Name": "dicomfast-test", "StorageDirectory": str(base / "storage"),
        "IndexDirectory": str(base / "storage"), "HttpPort": http, "DicomPort": dicom,
        "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "HttpServerEnabled": True, "DicomServerEnabled": True, "Plugins": [],
        "DicomModalities": modalities, "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
        "UnknownSopClassAccepted": True, "StorageCompression": False,
        "DicomScpTimeout": 30, "LimitFindResults": 0, "LimitFindInstances": 0,
        # C-FIND answers in UTF-8: Orthanc 1.10 answers in this, whatever the query says.
        "DefaultEncoding": "Utf8",
    }))
    proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_port(http, proc=proc, timeout=30)
        wait_port(dicom, proc=proc, timeout=30)
        yield http, dicom
    finally:
        _stop(proc)
        proc.stderr.close()


def _rest(http: int, path: str):
    with urllib.request.urlopen(f"http://{HOST}:{http}{path}", timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def orthanc(files, tmp_path_factory):
    src, _ = files
    base = tmp_path_factory.mktemp("orthanc")
    dest_dir = base / "dest"
    dest_port = free_port()
    modalities = {"dfscu": ["DFSCU", HOST, dest_port]}
    with _orthanc(base, modalities) as (http, dicom), \
            _ae("DFSCU").serve_in_background(dest_dir, host=HOST, port=dest_port, fsync=False):
        results = _ae().store(HOST, dicom, _dicom_files(src), called_ae="ORTHANC")
        assert all(r.status == 0 for r in results), results
        yield http, dicom, dest_dir


def test_store_into_orthanc(orthanc, files):
    http, _, _ = orthanc
    _, records = files
    assert len(_rest(http, "/instances")) == len(records)


@pytest.mark.parametrize("level,resource,key", [
    ("PATIENT", "patients", "PatientID"), ("STUDY", "studies", "StudyInstanceUID"),
    ("SERIES", "series", "SeriesInstanceUID"), ("IMAGE", "instances", "SOPInstanceUID")])
def test_find_in_orthanc_matches_rest(orthanc, level, resource, key):
    http, dicom, _ = orthanc
    rest = _rest(http, f"/{resource}?expand")
    tags = {"PATIENT": ["PatientName", "PatientBirthDate", "PatientSex"],
            "STUDY": ["StudyDate", "StudyTime", "AccessionNumber", "StudyDescription"],
            "SERIES": ["Modality", "SeriesNumber"],
            "IMAGE": ["InstanceNumber"]}[level]
    ident = {key: "", **{t: "" for t in tags}}
    model = "patient" if level == "PATIENT" else "study"
    if level in ("SERIES", "IMAGE"):
        ident["StudyInstanceUID"] = ""
    if level == "IMAGE":
        ident["SeriesInstanceUID"] = ""
    answers = qrscu.find_sync(_ae(), HOST, dicom, ident, level=level, model=model,
                              called_ae="ORTHANC")
    got = {ds[key].value: I.to_dict(ds) for ds in answers}
    want = {r["MainDicomTags"][key]: r["MainDicomTags"] for r in rest}
    assert set(got) == set(want)
    for uid, row in got.items():
        for t in tags:
            if t in want[uid]:
                assert row[t] == want[uid][t], (uid, t)


def test_find_in_orthanc_with_wildcard(orthanc):
    http, dicom, _ = orthanc
    answers = qrscu.find_sync(_ae(), HOST, dicom, {"PatientName": "Smith*", "PatientID": ""},
                              level="PATIENT", model="patient", called_ae="ORTHANC")
    rest = _rest(http, "/patients?expand")
    want = {r["MainDicomTags"]["PatientID"] for r in rest
            if r["MainDicomTags"].get("PatientName", "").lower().startswith("smith")}
    assert want and {str(ds.PatientID) for ds in answers} == want


def test_move_from_orthanc(orthanc, files):
    http, dicom, dest_dir = orthanc
    src, records = files
    uid = f"{UID_ROOT}.8"
    result = qrscu.move_sync(_ae(), HOST, dicom, {"StudyInstanceUID": uid}, "DFSCU",
                             level="STUDY", called_ae="ORTHANC")
    mine = [r for r in records if r["StudyInstanceUID"] == uid]
    assert (result.status, result.failed) == (D.SUCCESS, 0)
    for rec in mine:
        got = dest_dir / f"{rec['SOPInstanceUID']}.dcm"
        sent = next(p for p in _dicom_files(src) if p.stem == rec["SOPInstanceUID"])
        same_dataset(sent, got)


def test_get_from_orthanc(orthanc, files, tmp_path):
    _, dicom, _ = orthanc
    src, records = files
    uid = f"{UID_ROOT}.9.2"
    result = qrscu.get_sync(_ae(), HOST, dicom, {"StudyInstanceUID": f"{UID_ROOT}.9",
                                                 "SeriesInstanceUID": uid},
                            tmp_path, level="SERIES", called_ae="ORTHANC", fsync=False)
    mine = [r["SOPInstanceUID"] for r in records if r["SeriesInstanceUID"] == uid]
    assert (result.status, result.completed) == (D.SUCCESS, len(mine))
    for sop in mine:
        sent = next(p for p in _dicom_files(src) if p.stem == sop)
        same_dataset(sent, tmp_path / f"{sop}.dcm")
