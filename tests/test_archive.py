"""The archive index and C-FIND matching (PS3.4 §C.2.2.2) on a generated archive of
1,000 instances: copies of real corpus files with varied names (several character
sets), dates, times, modalities and codes, written by pydicom. Every query's answer
is compared with a plain Python filter over the values the generator wrote."""

from __future__ import annotations

import fnmatch
import os
import random
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import find  # noqa: E402

from dicomfast.archive import Archive, ArchiveError, QueryError  # noqa: E402
from dicomfast.archive.rebuild import rebuild  # noqa: E402

pydicom = pytest.importorskip("pydicom")

# (name, Specific Character Set): names pydicom encodes in that character set.
NAMES = [
    ("Müller{i}^Jürgen", "ISO_IR 100"),
    ("Núñez{i}^José", "ISO_IR 100"),
    ("Yamada{i}^Tarou=山田^太郎=やまだ^たろう", ["", "ISO 2022 IR 87"]),
    ("Wang{i}^XiaoDong=王^小東", "ISO_IR 192"),
    ("Διονυσιος{i}", "ISO_IR 126"),
    ("Smith{i}^John", None),
    ("SMITH{i}^Jane", None),
    ("Hong{i}^Gildong=洪^吉洞", ["", "ISO 2022 IR 149"]),
]
MODALITIES = ["CT", "MR", "US", "CR", "OT"]
DESCRIPTIONS = ["Head routine", "Chest PA", "Abdomen w/ contrast", "Knee left", "Brain MRI"]
N_STUDIES = 250      # x 2 series x 2 instances = 1,000 instances
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"


def make_archive_files(root: Path, n_studies: int = N_STUDIES, seed: int = 8
                       ) -> list[dict[str, object]]:
    """Write the instances under `root` (STUDY/SERIES/SOP.dcm); return what each has."""
    rng = random.Random(seed)
    bases = [pydicom.dcmread(find(n)) for n in ("MR_small.dcm", "CT_small.dcm")]
    for ds in bases:
        del ds.PixelData  # small files; matching never looks at pixels
    records = []
    for s in range(n_studies):
        pat = s % 90
        name, charset = NAMES[pat % len(NAMES)]
        name = name.format(i=pat)
        study_uid = f"{UID_ROOT}.{s + 1}"
        date = f"{2000 + rng.randrange(25)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        time_ = f"{rng.randrange(24):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
        code = rng.choice(["P1", "P2", "P3", None])
        study = {"PatientName": name, "PatientID": f"PID{pat:03d}",
                 "PatientBirthDate": f"19{40 + pat % 50}0{1 + pat % 9}15",
                 "PatientSex": "MFO"[pat % 3], "StudyInstanceUID": study_uid,
                 "StudyDate": date, "StudyTime": time_, "AccessionNumber": f"A{s:05d}",
                 "StudyID": str(s), "StudyDescription": rng.choice(DESCRIPTIONS),
                 "ReferringPhysicianName": rng.choice(["Doe^A", "Roe^B", ""]),
                 "ProcedureCode": code, "_charset": charset}
        for se in range(2):
            series_uid = f"{study_uid}.{se + 1}"
            modality = MODALITIES[(s + se) % len(MODALITIES)]
            for i in range(2):
                base = bases[(s + i) % 2]
                sop = f"{series_uid}.{i + 1}"
                rec = dict(study, SeriesInstanceUID=series_uid, Modality=modality,
                           SeriesNumber=str(se + 1), SOPInstanceUID=sop,
                           SOPClassUID=str(base.SOPClassUID), InstanceNumber=str(i + 1))
                ds = base
                if charset is None:
                    if "SpecificCharacterSet" in ds:
                        del ds.SpecificCharacterSet
                else:
                    ds.SpecificCharacterSet = charset
                for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                           "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
                           "StudyID", "StudyDescription", "ReferringPhysicianName",
                           "SeriesInstanceUID", "Modality", "SeriesNumber", "SOPInstanceUID",
                           "InstanceNumber"):
                    setattr(ds, kw, rec[kw])
                if code is None:
                    if "ProcedureCodeSequence" in ds:
                        del ds.ProcedureCodeSequence
                else:
                    item = pydicom.Dataset()
                    item.CodeValue = code
                    item.CodingSchemeDesignator = "LOCAL"
                    item.CodeMeaning = f"Procedure {code}"
                    ds.ProcedureCodeSequence = [item]
                ds.file_meta.MediaStorageSOPInstanceUID = sop
                path = root / study_uid / series_uid / f"{sop}.dcm"
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                records.append(rec)
    return records


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    records = make_archive_files(root)
    indexed, skipped = rebuild(root)
    assert (indexed, skipped) == (len(records), 0)
    with Archive(root, create=False) as archive:
        yield archive, records


# -- the oracle: plain Python over the generator's values ----------------------------------

def _wild(pattern: str, value: str, fold: bool = False) -> bool:
    pattern = pattern.replace("[", "[[]")
    if fold:
        return fnmatch.fnmatchcase(value.casefold(), pattern.casefold())
    return fnmatch.fnmatchcase(value, pattern)


def _pn(query: str, name: str) -> bool:
    candidates = [name] + ([g for g in name.split("=") if g] if "=" not in query else [])
    return any(_wild(query, c, fold=True) for c in candidates)


def _range(query: str, value: str) -> bool:
    if "-" not in query:
        return value == query
    low, high = query.split("-")
    return bool(value) and (not low or value >= low) and (not high or value <= high)


ORACLE = {
    "PatientName": _pn, "StudyDate": _range, "StudyTime": _range,
    "StudyInstanceUID": lambda q, v: v in q.split("\\"),
    "SeriesInstanceUID": lambda q, v: v in q.split("\\"),
    "SOPInstanceUID": lambda q, v: v in q.split("\\"),
}
UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
          "IMAGE": "SOPInstanceUID"}


def expected(records, level: str, query: dict[str, str]) -> set[str]:
    out = set()
    for rec in records:
        ok = True
        for kw, q in query.items():
            if kw == "ProcedureCodeSequence":
                ok = rec["ProcedureCode"] == q
            elif kw == "ModalitiesInStudy":
                ok = any(r["Modality"] in q.split("\\") for r in records
                         if r["StudyInstanceUID"] == rec["StudyInstanceUID"])
            elif kw in ORACLE:
                ok = ORACLE[kw](q, str(rec[kw]))
            else:
                ok = any(_wild(k, str(rec[kw])) for k in q.split("\\"))
            if not ok:
                break
        if ok:
            out.add(rec[UNIQUE[level]])
    return out


QUERIES = [
    ("PATIENT", {"PatientName": "smith*"}),
    ("PATIENT", {"PatientName": "Müller1?^Jürgen"}),
    ("PATIENT", {"PatientName": "山田^太郎"}),
    ("PATIENT", {"PatientName": "*^小東"}),
    ("PATIENT", {"PatientName": "Διονυσιος4*"}),
    ("PATIENT", {"PatientName": "Hong*^Gildong=洪^吉洞"}),
    ("PATIENT", {"PatientSex": "F", "PatientID": "PID0*"}),
    ("STUDY", {"StudyDate": "20100101-20121231"}),
    ("STUDY", {"StudyDate": "-20031231"}),
    ("STUDY", {"StudyDate": "20230601-"}),
    ("STUDY", {"StudyDate": "20100101-20201231", "StudyTime": "080000-120000"}),
    ("STUDY", {"AccessionNumber": "A001?5"}),
    ("STUDY", {"StudyDescription": "*contrast*", "PatientName": "Yamada*"}),
    ("STUDY", {"StudyInstanceUID": f"{UID_ROOT}.5\\{UID_ROOT}.77\\{UID_ROOT}.999"}),
    ("STUDY", {"ModalitiesInStudy": "US\\CR"}),
    ("STUDY", {"ProcedureCodeSequence": "P2"}),
    ("STUDY", {"ReferringPhysicianName": "Doe^A", "PatientSex": "O"}),
    ("SERIES", {"StudyInstanceUID": f"{UID_ROOT}.12", "Modality": "*"}),
    ("SERIES", {"Modality": "MR", "StudyDate": "2005*"}),
    ("SERIES", {"Modality": "CT\\OT", "SeriesNumber": "2"}),
    ("IMAGE", {"SeriesInstanceUID": f"{UID_ROOT}.40.2"}),
    ("IMAGE", {"PatientName": "núñez*", "InstanceNumber": "1", "Modality": "US"}),
    ("IMAGE", {"SOPInstanceUID": f"{UID_ROOT}.7.1.1\\{UID_ROOT}.7.2.2"}),
]


def _to_identifier(query: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for kw, q in query.items():
        if kw == "ProcedureCodeSequence":
            out[kw] = [{"CodeValue": q, "CodingSchemeDesignator": ""}]
        elif kw == "StudyDate" and q.endswith("*"):
            y = q[:-1]
            out[kw] = f"{y}0101-{y}1231"
        else:
            out[kw] = q
    return out


def _oracle_query(query: dict[str, str]) -> dict[str, str]:
    out = dict(query)
    if out.get("StudyDate", "").endswith("*"):
        y = out["StudyDate"][:-1]
        out["StudyDate"] = f"{y}0101-{y}1231"
    return out


@pytest.mark.parametrize("level,query", QUERIES, ids=[f"{lv}-{'-'.join(q)}" for lv, q in QUERIES])
def test_matching_against_python_filter(generated, level, query):
    archive, records = generated
    model = "patient" if level == "PATIENT" else "study"
    got = [r[UNIQUE[level]] for r in archive.query(level, _to_identifier(query), model=model)]
    assert len(got) == len(set(got)), "an entity answered twice"
    want = expected(records, level, _oracle_query(query))
    assert want, f"the query matches nothing in the generated data: {query}"
    assert set(got) == want


def test_universal_matching_counts(generated):
    archive, records = generated
    assert len(list(archive.query("STUDY", {}))) == N_STUDIES
    assert len(list(archive.query("PATIENT", {"PatientName": "*"}, model="patient"))) == 90
    assert len(list(archive.query("IMAGE", {"SOPInstanceUID": ""}))) == len(records)


def test_return_keys_and_computed_keys(generated):
    archive, records = generated
    uid = f"{UID_ROOT}.33"
    (row,) = archive.query("STUDY", {"StudyInstanceUID": uid, "PatientName": "",
                                     "StudyDate": "", "ModalitiesInStudy": "",
                                     "NumberOfStudyRelatedSeries": "",
                                     "NumberOfStudyRelatedInstances": "",
                                     "ProcedureCodeSequence": "", "IssuerOfPatientID": ""})
    mine = [r for r in records if r["StudyInstanceUID"] == uid]
    assert row["PatientName"] == mine[0]["PatientName"]
    assert row["StudyDate"] == mine[0]["StudyDate"]
    assert row["ModalitiesInStudy"] == sorted({r["Modality"] for r in mine})
    assert row["NumberOfStudyRelatedSeries"] == len({r["SeriesInstanceUID"] for r in mine})
    assert row["NumberOfStudyRelatedInstances"] == len(mine)
    assert row["IssuerOfPatientID"] is None
    code = mine[0]["ProcedureCode"]
    if code is None:
        assert row["ProcedureCodeSequence"] == []
    else:
        assert [i["CodeValue"] for i in row["ProcedureCodeSequence"]] == [code]
    pid = mine[0]["PatientID"]
    (prow,) = archive.query("PATIENT", {"PatientID": pid, "NumberOfPatientRelatedStudies": "",
                                        "NumberOfPatientRelatedInstances": ""}, model="patient")
    assert prow["NumberOfPatientRelatedStudies"] == len(
        {r["StudyInstanceUID"] for r in records if r["PatientID"] == pid})
    assert prow["NumberOfPatientRelatedInstances"] == sum(r["PatientID"] == pid for r in records)


def test_pydicom_agrees_with_index(generated):
    """Each indexed file's values as pydicom decodes them (an independent reader)."""
    archive, _records = generated
    for rec in archive.instances(study_uid=f"{UID_ROOT}.3")[:4] + \
            archive.instances(study_uid=f"{UID_ROOT}.4")[:4]:
        ds = pydicom.dcmread(rec.path)
        (row,) = archive.query("IMAGE", {"SOPInstanceUID": rec.sop_instance_uid,
                                         "PatientName": "", "StudyDate": "", "Modality": ""})
        assert row["PatientName"] == str(ds.PatientName)
        assert row["StudyDate"] == ds.StudyDate and row["Modality"] == ds.Modality
        assert rec.sop_class_uid == ds.SOPClassUID
        assert rec.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
        assert rec.size == os.path.getsize(rec.path)


def test_bad_queries(generated):
    archive, _ = generated
    with pytest.raises(QueryError):
        list(archive.query("STUDY", {"NotAKeyword": "x"}))
    with pytest.raises(QueryError):
        list(archive.query("PATIENT", {}, model="study"))  # no PATIENT level in Study Root
    with pytest.raises(QueryError):
        list(archive.query("FRAME", {}))


# -- storing -------------------------------------------------------------------------------

def test_store_sources_and_records(tmp_path):
    import dicomfast

    src = find("CT_small.dcm")
    with Archive(tmp_path / "a") as archive:
        rec = archive.store(src)
        ds = pydicom.dcmread(src)
        assert rec.path.is_file() and rec.path.is_relative_to(archive.root)
        assert rec.path.read_bytes() == Path(src).read_bytes()
        assert (rec.sop_instance_uid, rec.study_instance_uid, rec.patient_id) == (
            ds.SOPInstanceUID, ds.StudyInstanceUID, ds.PatientID)
        assert archive.get_instance(ds.SOPInstanceUID) == rec
        # A Dataset, re-encoded; and bytes.
        mr = dicomfast.dcmread(find("MR_small.dcm"))
        rec2 = archive.store(mr, transfer_syntax="1.2.840.10008.1.2")
        assert pydicom.dcmread(rec2.path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
        rec3 = archive.store(Path(find("rtplan.dcm")).read_bytes())
        assert {r.sop_instance_uid for r in archive.instances()} == {
            rec.sop_instance_uid, rec2.sop_instance_uid, rec3.sop_instance_uid}
        assert archive.instances(series_uid=rec2.series_instance_uid) == [rec2]
        assert not [p for p in archive.root.rglob(".dicomfast-*")]


def test_representative_image(tmp_path):
    """A study's representative image: its lowest-numbered series with images, the
    middle instance by Instance Number (not by arrival); no image, no record."""
    import dicomfast

    study = "1.2.826.0.1.3680043.8.498.7"
    with Archive(tmp_path / "a") as archive:
        def put(name, series_number, instance_number, series):
            ds = dicomfast.read(find(name))
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = f"{study}.{series}"
            ds.SOPInstanceUID = f"{study}.{series}.{instance_number}"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = instance_number
            return archive.store(ds)

        put("rtplan.dcm", 1, 1, 1)                  # series 1: no image
        for number in (3, 1, 5, 2, 4):              # series 2, stored out of order
            put("CT_small.dcm", 2, number, 2)
        put("MR_small.dcm", 7, 1, 3)
        assert archive.representative(study).sop_instance_uid == f"{study}.2.3"
        assert archive.representative(study, f"{study}.3").sop_instance_uid == f"{study}.3.1"
        assert archive.representative(study, f"{study}.1") is None
        assert archive.representative("1.2.3") is None


def test_store_refuses_paths_outside_root(tmp_path):
    ds = pydicom.dcmread(find("CT_small.dcm"))
    bad = tmp_path / "bad.dcm"
    for uid in ("../../etc", "1.2/../../x", ""):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the invalid UID
            ds.StudyInstanceUID = uid
            ds.save_as(bad)
        with Archive(tmp_path / "a") as archive, pytest.raises(ArchiveError):
            archive.store(bad)
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(Path(find("CT_small.dcm")).read_bytes())
    with Archive(tmp_path / "a") as archive:
        with pytest.raises(ArchiveError):
            archive.add_file(outside)
        assert archive.count() == 0
        assert not list((tmp_path / "a").rglob("*.dcm"))


def test_row_only_after_durable_file(tmp_path, monkeypatch):
    """A failure while writing the file leaves neither a file nor a row."""
    from dicomfast.archive import index

    with Archive(tmp_path / "a") as archive:
        def boom(fd):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(index.os, "fsync", boom)
        with pytest.raises(OSError):
            archive.store(find("CT_small.dcm"))
        monkeypatch.undo()
        assert archive.count() == 0
        assert not [p for p in archive.root.rglob("*") if p.is_file()
                    and not p.name.startswith("index.sqlite")]


CRASH = """
import os, sys
from dicomfast.archive import Archive, index
real = index.Archive.index_rows
def die(self, rows, **kw):
    os._exit(9)   # killed after the file is durable, before the row is committed
index.Archive.index_rows = die
Archive(sys.argv[1]).store(sys.argv[2])
"""


def test_crash_between_file_and_row(tmp_path):
    """A process killed after the durable write and before the commit leaves a file
    without a row (which `dicomfast index` then picks up), never a row without a file."""
    root = tmp_path / "a"
    Archive(root).close()
    run = subprocess.run([sys.executable, "-c", CRASH, str(root), str(find("CT_small.dcm"))],
                         timeout=60, capture_output=True)
    assert run.returncode == 9
    with Archive(root) as archive:
        assert archive.count() == 0
        for rec in archive.instances():
            assert rec.path.exists()
    files = [p for p in root.rglob("*.dcm")]
    assert len(files) == 1
    cli = subprocess.run([sys.executable, "-m", "dicomfast", "index", str(root), "--no-progress"],
                         timeout=60, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    with Archive(root) as archive:
        assert [r.path for r in archive.instances()] == files


def test_index_is_sqlite_with_relative_paths(generated):
    archive, records = generated
    conn = sqlite3.connect(archive.index_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        paths = [r[0] for r in conn.execute("SELECT path FROM instances")]
    finally:
        conn.close()
    assert len(paths) == len(records)
    assert all(not os.path.isabs(p) and (archive.root / p).is_file() for p in paths)


def test_store_and_rebuild_agree(tmp_path):
    """Indexing by store() (reading each file) and by the scanner give the same rows."""
    root = tmp_path / "gen"
    make_archive_files(root, n_studies=12, seed=3)
    with Archive(tmp_path / "stored", fsync=False) as stored:
        for path in sorted(root.rglob("*.dcm")):
            stored.store(path)
        keys = {"PatientName": "", "PatientID": "", "StudyDate": "", "StudyTime": "",
                "AccessionNumber": "", "Modality": "", "SeriesNumber": "",
                "InstanceNumber": "", "ProcedureCodeSequence": "", "SOPClassUID": ""}
        a = sorted(map(repr, stored.query("IMAGE", keys)))
    rebuild(root)
    with Archive(root) as scanned:
        b = sorted(map(repr, scanned.query("IMAGE", keys)))
    assert a == b and len(a) == 48


def test_rebuild_names_the_files_it_skips(tmp_path, capsys):
    """Files the index cannot hold (not DICOM, no Series Instance UID) are skipped and
    each is named with the reason, through the API and on the command line: queries
    will not find them."""
    from dicomfast.net import qr_cli

    root = tmp_path / "arc"
    make_archive_files(root, n_studies=1, seed=5)
    (root / "notes.txt").write_text("not DICOM")
    ds = pydicom.dcmread(next(root.rglob("*.dcm")))
    del ds.SeriesInstanceUID
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.save_as(root / "orphan.dcm", enforce_file_format=True)
    skipped = {}
    indexed, count = rebuild(root, on_skip=lambda path, why: skipped.setdefault(path, why))
    assert count == 2 and indexed == len(list(root.rglob("*.dcm"))) - 1
    assert skipped[str(root / "orphan.dcm")] == "no SeriesInstanceUID"
    assert "not a DICOM Part 10 file" in skipped[str(root / "notes.txt")]
    assert qr_cli.index(str(root), progress=False) == 0
    err = capsys.readouterr().err
    assert f"dicomfast: index: skipped {root / 'orphan.dcm'}: no SeriesInstanceUID" in err
    assert f"dicomfast: index: skipped {root / 'notes.txt'}: " in err


@pytest.mark.parametrize("vr,query,value,expected", [
    ("TM", "-12", "125959.5", True),          # a partial upper bound covers its hour
    ("TM", "-12", "130000", False),
    ("TM", "0800-1000", "07:59:59", False),    # ACR-NEMA form of the value
    ("TM", "0800-1000", "0930", True),
    ("DT", "20240101-20240131", "20240131235959.999", True),
    ("DT", "20240101-20240131", "20240201", False),
    ("DT", "2024010112+0100-", "20240101130000+0100", True),
    ("DA", "20240101", "20240101", True),
    ("DA", "-20240101", "", False),            # empty values match only universal keys
    ("DA", "*", "", True),
    ("LO", "", "", True),
    ("CS", "CT\\MR", ["OT", "MR"], True),      # several values on both sides
    ("UI", "1.2\\1.3", "1.23", False),
    ("SH", "A?C", "ABC", True),
    ("SH", "A?C", "ABBC", False),
    ("SH", "abc", "ABC", False),               # case matters outside PN
    ("PN", "DOE^J*", "Doe^John", True),
    ("PN", "山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう", True),
    ("PN", "Yamada^Tarou=山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう", False),
    ("SQ", [{"CodeValue": "X"}], [{"CodeValue": "Y"}, {"CodeValue": "X"}], True),
    ("SQ", [{"CodeValue": "X", "CodeMeaning": "m*"}], [{"CodeValue": "X",
                                                        "CodeMeaning": "n"}], False),
    ("SQ", [{"CodeValue": ""}], [], True),     # an empty item: universal
])
def test_match_value_rules(vr, query, value, expected):
    from dicomfast.archive.matching import match_value

    assert match_value(vr, query, value) is expected
