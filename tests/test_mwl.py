"""Modality Worklist (PS3.4 Annex K): dicomfast's SCP and SCU against DCMTK
wlmscpfs and findscu, over the same worklist files, answers compared field by
field; the JSON store against the DICOM-file store; matching against a plain
Python filter."""

from __future__ import annotations

import contextlib
import random
import subprocess
from pathlib import Path

import pytest
from test_net_helpers import HOST, dcmtk, dcmtk_env, free_port, need_dcmtk, wait_port

from dicomfast.net import AE, BackgroundServer
from dicomfast.net.services import identifiers as I
from dicomfast.net.services import qrscu
from dicomfast.net.services.mwl import WorklistStore
from dicomfast.net.services.qrscp import start_qrscp
from dicomfast.writer import encode_dataset

pydicom = pytest.importorskip("pydicom")

NAMES = ["Doe^John", "Doe^Jane", "Müller^Jürgen", "Yamada^Tarou=山田^太郎", "Roe^Richard",
         "Núñez^José"]
MODALITIES = ["CT", "MR", "US"]
STATIONS = ["CT01", "MR01", "US01", "CT02"]


def make_items(n: int = 30, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        day = f"2026{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        items.append({
            "SpecificCharacterSet": "ISO_IR 192",
            "PatientName": NAMES[i % len(NAMES)], "PatientID": f"MWL{i:03d}",
            "PatientBirthDate": f"19{50 + i}0101", "PatientSex": "MF"[i % 2],
            "AccessionNumber": f"ACC{i:04d}", "RequestedProcedureID": f"RP{i}",
            "RequestedProcedureDescription": rng.choice(["Head", "Chest", "Knee"]),
            "StudyInstanceUID": f"1.2.826.0.1.3680043.8.498.99.{i + 1}",
            "ReferringPhysicianName": "Ref^Doc",
            "ScheduledProcedureStepSequence": [{
                "Modality": MODALITIES[i % 3], "ScheduledStationAETitle": STATIONS[i % 4],
                "ScheduledProcedureStepStartDate": day,
                "ScheduledProcedureStepStartTime": f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}00",
                "ScheduledPerformingPhysicianName": "Tech^Nick",
                "ScheduledProcedureStepDescription": "Step", "ScheduledProcedureStepID": f"S{i}",
            }],
        })
    return items


@pytest.fixture(scope="module")
def worklist(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The items as .wl files (dicomfast's writer), in WLMSCP/ for wlmscpfs."""
    base = tmp_path_factory.mktemp("worklist")
    folder = base / "WLMSCP"
    folder.mkdir()
    (folder / "lockfile").touch()  # wlmscpfs requires it
    items = make_items()
    for i, item in enumerate(items):
        # A bare data set, as dump2dcm writes worklist files.
        (folder / f"item{i:03d}.wl").write_bytes(
            encode_dataset(I.to_dataset(item), "1.2.840.10008.1.2.1"))
    return base, items


@contextlib.contextmanager
def _wlmscpfs(base: Path):
    need_dcmtk("wlmscpfs")
    port = free_port()
    proc = subprocess.Popen([dcmtk("wlmscpfs"), "-dfp", str(base), "-csk", "-dfr", str(port)],
                            env=dcmtk_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()


@pytest.fixture(scope="module")
def servers(worklist, tmp_path_factory):
    base, items = worklist
    settings = AE("WLMSCP").settings
    with _wlmscpfs(base) as theirs, BackgroundServer(lambda: start_qrscp(
            settings, tmp_path_factory.mktemp("arc"), host=HOST, worklist=base / "WLMSCP",
            fsync=False)) as ours:
        yield theirs, ours.port


def _ae() -> AE:
    return AE("DFSCU", acse_timeout=10, dimse_timeout=20, connect_timeout=10)


RETURN = {"PatientName": "", "PatientID": "", "AccessionNumber": "", "PatientSex": "",
          "StudyInstanceUID": "", "RequestedProcedureID": "",
          "ScheduledProcedureStepSequence": [{
              "Modality": "", "ScheduledStationAETitle": "",
              "ScheduledProcedureStepStartDate": "", "ScheduledProcedureStepStartTime": "",
              "ScheduledProcedureStepID": ""}]}

QUERIES = [
    {},
    {"PatientName": "Doe^*"},
    {"PatientID": "MWL012"},
    {"ScheduledProcedureStepSequence": [{"Modality": "MR"}]},
    {"ScheduledProcedureStepSequence": [{"ScheduledStationAETitle": "CT01",
                                         "ScheduledProcedureStepStartDate": "20260101-20260630"}]},
    {"ScheduledProcedureStepSequence": [{"ScheduledProcedureStepStartDate": "20260301-"}]},
    {"PatientSex": "F", "ScheduledProcedureStepSequence": [{"Modality": "CT"}]},
    {"PatientName": "Müller*"},
]


def _identifier(query: dict) -> dict:
    ident = {k: v for k, v in RETURN.items() if k != "ScheduledProcedureStepSequence"}
    item = dict(RETURN["ScheduledProcedureStepSequence"][0])
    for k, v in query.items():
        if k == "ScheduledProcedureStepSequence":
            item.update(v[0])
        else:
            ident[k] = v
    ident["ScheduledProcedureStepSequence"] = [item]
    return ident


def _python_filter(items: list[dict], query: dict) -> set[str]:
    import fnmatch

    def ok(q, v):
        if "-" in q and q[0].isdigit() or q.startswith("-"):
            lo, hi = q.split("-")
            return (not lo or v >= lo) and (not hi or v <= hi)
        return fnmatch.fnmatchcase(v, q)

    out = set()
    for it in items:
        sps = it["ScheduledProcedureStepSequence"][0]
        if all(ok(q, sps[k]) for k, q in query.get("ScheduledProcedureStepSequence",
                                                    [{}])[0].items()) and \
                all(ok(q, it[k]) for k, q in query.items()
                    if k != "ScheduledProcedureStepSequence"):
            out.add(it["PatientID"])
    return out


def _answers(port: int, ident: dict) -> dict[str, dict]:
    out = {}
    for ds in qrscu.find_sync(_ae(), HOST, port, ident, model="mwl", called_ae="WLMSCP"):
        d = I.to_dict(ds)
        out[d["PatientID"]] = d
    return out


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_dicomfast_and_wlmscpfs_agree(servers, worklist, query):
    theirs_port, ours_port = servers
    _, items = worklist
    ident = _identifier(query)
    theirs = _answers(theirs_port, ident)
    ours = _answers(ours_port, ident)
    want = _python_filter(items, query)
    assert want, "the query matches nothing"
    assert set(ours) == want
    assert set(theirs) == want
    for pid, row in ours.items():
        other = theirs[pid]
        for kw in ("PatientName", "AccessionNumber", "PatientSex", "StudyInstanceUID",
                   "RequestedProcedureID"):
            assert row[kw] == other[kw], (pid, kw)
        (a,), (b,) = row["ScheduledProcedureStepSequence"], other["ScheduledProcedureStepSequence"]
        for kw in RETURN["ScheduledProcedureStepSequence"][0]:
            assert a[kw] == b[kw], (pid, kw)


def test_findscu_against_dicomfast_mwl(servers, worklist, tmp_path):
    _, ours_port = servers
    _, items = worklist
    need_dcmtk("findscu")
    run = subprocess.run([dcmtk("findscu"), "-W", "-aec", "WLMSCP", "-X", "-od", str(tmp_path),
                          "-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
                          "-k", "ScheduledProcedureStepSequence[0].Modality=US",
                          "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
                          HOST, str(ours_port)],
                         capture_output=True, text=True, timeout=60, env=dcmtk_env())
    assert run.returncode == 0, run.stderr
    got = {}
    for f in tmp_path.glob("rsp*.dcm"):
        ds = pydicom.dcmread(f)
        got[ds.PatientID] = ds
    want = {it["PatientID"]: it for it in items
            if it["ScheduledProcedureStepSequence"][0]["Modality"] == "US"}
    assert set(got) == set(want)
    for pid, ds in got.items():
        assert str(ds.PatientName) == want[pid]["PatientName"]
        assert ds.AccessionNumber == want[pid]["AccessionNumber"]
        sps = ds.ScheduledProcedureStepSequence[0]
        assert sps.Modality == "US"
        assert sps.ScheduledStationAETitle == \
            want[pid]["ScheduledProcedureStepSequence"][0]["ScheduledStationAETitle"]


def test_json_store_answers_like_dicom_files(worklist, tmp_path):
    base, items = worklist
    folder = tmp_path / "json"
    folder.mkdir()
    for i, item in enumerate(items):
        (folder / f"item{i:03d}.json").write_text(I.to_dataset(item).to_json(),
                                                  encoding="utf-8")
    from_json = WorklistStore(folder)
    from_files = WorklistStore(base / "WLMSCP")
    for query in QUERIES:
        ident = _identifier(query)
        a = sorted(map(repr, from_json.query("", ident)))
        b = sorted(map(repr, from_files.query("", ident)))
        assert a == b and len(a) == len(_python_filter(items, query))


def test_store_sees_changes(tmp_path):
    store = WorklistStore(tmp_path)
    assert list(store.query("", {"PatientID": ""})) == []
    item = make_items(1)[0]
    (tmp_path / "a.json").write_text(I.to_dataset(item).to_json(), encoding="utf-8")
    assert [r["PatientID"] for r in store.query("", {"PatientID": ""})] == ["MWL000"]
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert len(list(store.query("", {"PatientID": ""}))) == 1  # skipped, not fatal
    (tmp_path / "a.json").unlink()
    assert list(store.query("", {"PatientID": ""})) == []
