"""dicomfast.media: DICOMDIR reading and writing (PS3.10 §8, PS3.3 Annex F).

Oracles: pydicom's FileSet and its DCMTK-made DICOMDIR test files, DCMTK's
dcmmkdir (a DICOMDIR to read), dcmdump and dcmgpdir (reading and appending to
a DICOMDIR written here: DCMTK resolves every offset and finds each record).
Hostile DICOMDIRs (cycles, offsets that miss, file IDs that leave the media
root) must raise MalformedDataError and never hang.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet

import dicomfast
from dicomfast.cli import main as cli_main
from dicomfast.dataset import Dataset, Sequence
from dicomfast.errors import DicomfastError, InvalidDicomError, MalformedDataError
from dicomfast.media import (
    build_dicomdir,
    check_file_id,
    check_fileset,
    is_valid_file_id,
    make_fileset,
    read_dicomdir,
    record_type_for,
)

SAMPLES = Path(dicomfast.__file__).parent / "samples"
PYDICOM_DIRS = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
DCMTK = {name: f"/usr/bin/{name}" for name in ("dcmdump", "dcmgpdir", "dcmmkdir")}
needs_dcmtk = pytest.mark.skipif(not all(os.path.exists(p) for p in DCMTK.values()),
                                 reason="DCMTK (dcmtk package) not installed")

pytestmark = pytest.mark.filterwarnings("ignore::dicomfast.errors.DicomfastWarning")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def _make_series(folder: Path, layout: list[tuple[str, str, str, str]]) -> list[Path]:
    """Explicit VR LE files (the STD-GEN-CD profile's syntax) at the given relative paths,
    each (path, patient, study, series) with its own SOP Instance UID."""
    out = []
    for k, (rel, patient, study, series) in enumerate(layout):
        ds = dicomfast.read(SAMPLES / "ct_explicit_le.dcm")
        ds.PatientID = patient
        ds.PatientName = f"PATIENT^{patient}"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.999.{study}"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.10.999.{study}.{series}"
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.999.{study}.{series}.{k + 1}"
        ds.StudyID = study
        ds.SeriesNumber = int(series)
        ds.InstanceNumber = k + 1
        ds.AccessionNumber = f"ACC{study}"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save(path, transfer_syntax="1.2.840.10008.1.2.1")
        out.append(path)
    return out


LAYOUT = [("in/a.dcm", "PA", "11", "1"), ("in/b.dcm", "PA", "11", "1"),
          ("in/sub/c.dcm", "PA", "11", "2"), ("in/sub/d.dcm", "PA", "12", "1"),
          ("in/e", "PB", "21", "1"), ("in/sub/deeper/f.DCM", "PB", "21", "1")]


def _summary_ours(dd) -> set[tuple]:
    """Each referenced file: (its path, the record types and keys on the way down)."""
    out = set()
    chain: list = []
    for depth, rec in dd.walk():
        del chain[depth:]
        chain.append(rec)
        if rec.path is not None:
            keys = tuple((r.record_type, str(r.dataset.get(_KEY[r.record_type]) or ""))
                         for r in chain if r.record_type in _KEY)
            out.add((os.path.realpath(rec.path), keys,
                     str(rec.dataset.ReferencedSOPInstanceUIDInFile)))
    return out


_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID",
        "SERIES": "SeriesInstanceUID", "IMAGE": "ReferencedSOPInstanceUIDInFile"}


@contextlib.contextmanager
def _fileset(path: Path):
    """pydicom's FileSet, its staging folder removed on the way out (left to the
    garbage collector it would warn)."""
    fs = FileSet(pydicom.dcmread(path))
    try:
        yield fs
    finally:
        fs._stage["t"].cleanup()


def _summary_pydicom(path: Path) -> set[tuple]:
    with _fileset(path) as fs:
        return _summary_fileset(fs)


def _summary_fileset(fs) -> set[tuple]:
    out = set()
    for inst in fs:
        nodes = [inst.node, *[n for n in inst.node.ancestors if not n.is_root]]
        keys = tuple((n.record_type, str(n._record.get(_KEY[n.record_type]) or ""))
                     for n in reversed(nodes) if n.record_type in _KEY)
        out.add((os.path.realpath(inst.path), keys, str(inst.SOPInstanceUID)))
    return out


# -- reading -------------------------------------------------------------------------------

# pydicom warns that it would rewrite the big endian one as little endian.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit",
                                  "DICOMDIR-reordered", "DICOMDIR-nooffset"])
def test_read_matches_pydicom_fileset(name):
    dd = read_dicomdir(PYDICOM_DIRS / name)
    ours = _summary_ours(dd)
    assert ours == _summary_pydicom(PYDICOM_DIRS / name)
    assert len(ours) == 31
    # Every referenced file exists and is the instance the record names.
    for path, _, uid in ours:
        assert str(dicomfast.read(path, stop_before_pixels=True).SOPInstanceUID) == uid


def test_read_follows_links_not_item_order():
    # DICOMDIR-reordered stores IMAGE, SERIES, STUDY, PATIENT first, links fixed up.
    plain = [(d, r.record_type) for d, r in read_dicomdir(PYDICOM_DIRS / "DICOMDIR").walk()]
    reordered = read_dicomdir(PYDICOM_DIRS / "DICOMDIR-reordered")
    assert [(d, r.record_type) for d, r in reordered.walk()] == plain
    assert plain[:4] == [(0, "PATIENT"), (1, "STUDY"), (2, "SERIES"), (3, "IMAGE")]


def test_read_empty_and_not_a_dicomdir():
    assert read_dicomdir(PYDICOM_DIRS / "DICOMDIR-empty.dcm").records == []
    with pytest.raises(InvalidDicomError):
        read_dicomdir(SAMPLES / "ct_explicit_le.dcm")


@needs_dcmtk
def test_read_dcmtk_dcmmkdir_output(tmp_path):
    files = _make_series(tmp_path, [(f"CD/{p.upper()}", a, b, c) for p, a, b, c in
                                    [("P1/S1/IMG1", "PA", "11", "1"),
                                     ("P1/S1/IMG2", "PA", "11", "1"),
                                     ("P1/S2/IMG1", "PA", "12", "1"),
                                     ("P2/S1/IMG1", "PB", "21", "3")]])
    root = tmp_path / "CD"
    run = _run([DCMTK["dcmmkdir"], "+D", "DICOMDIR",
                *(str(p.relative_to(root)) for p in files)], root)
    assert run.returncode == 0, run.stderr
    dd = read_dicomdir(root / "DICOMDIR")
    assert sorted(os.path.realpath(p) for p in dd.files()) == sorted(
        os.path.realpath(p) for p in files)
    assert _summary_ours(dd) == _summary_pydicom(root / "DICOMDIR")
    patients = [r.PatientID for r in dd.records]
    assert sorted(patients) == ["PA", "PB"]
    pa = dd.records[patients.index("PA")]
    assert len(pa.children) == 2 and {len(s.children[0].children) for s in pa.children} == {1, 2}


# -- writing -------------------------------------------------------------------------------

@needs_dcmtk
def test_make_fileset_copy_accepted_by_pydicom_and_dcmtk(tmp_path):
    sources = _make_series(tmp_path, LAYOUT)
    out = tmp_path / "cd"
    report = make_fileset(tmp_path / "in", out, file_set_id="DF_TEST")
    assert len(report.file_ids) == len(sources) and not report.skipped
    assert all(is_valid_file_id(fid) for fid in report.file_ids)
    dicomdir = out / "DICOMDIR"

    # pydicom's FileSet: the same instances at the same paths, loading the right files.
    ours = read_dicomdir(dicomdir)
    by_uid = {str(dicomfast.read(p, stop_before_pixels=True).SOPInstanceUID): p for p in sources}
    with _fileset(dicomdir) as fs:
        assert fs.ID == "DF_TEST"
        assert _summary_ours(ours) == _summary_fileset(fs)
        assert {str(i.SOPInstanceUID) for i in fs} == set(by_uid)
        for inst in fs:
            assert inst.load().SOPInstanceUID == inst.SOPInstanceUID
            assert Path(inst.path).read_bytes() == by_uid[str(inst.SOPInstanceUID)].read_bytes()
    # The hierarchy: 2 patients, PA with studies 11 (series 1, 2) and 12.
    assert [len(p.children) for p in ours.records] == [2, 1]
    assert [len(s.children) for s in ours.records[0].children] == [2, 1]
    assert not check_fileset(ours)

    # DCMTK parses it ...
    dump = _run([DCMTK["dcmdump"], "DICOMDIR"], out)
    assert dump.returncode == 0 and "E:" not in dump.stderr, dump.stderr
    assert dump.stdout.count('"Directory Record" IMAGE') == len(sources)
    # ... and, appending a file the DICOMDIR already holds, resolves every offset
    # and finds that instance's record (the warning says so) instead of adding one.
    copy = out / "D2"
    shutil.copyfile(dicomdir, copy)
    fid = "/".join(report.file_ids[-1])
    app = _run([DCMTK["dcmgpdir"], "+A", "-nb", "+D", "D2", "-v", fid], out)
    assert app.returncode == 0, app.stderr
    assert "already exists" in app.stdout + app.stderr
    assert "rror" not in app.stdout + app.stderr
    # DCMTK's rewrite of our DICOMDIR reads back as the same file-set.
    assert _summary_ours(read_dicomdir(copy)) == _summary_ours(ours)


@needs_dcmtk
def test_dcmgpdir_rejects_broken_offsets(tmp_path):
    # The DCMTK check above can fail: a root offset one byte off is refused.
    _make_series(tmp_path, LAYOUT[:2])
    out = tmp_path / "cd"
    report = make_fileset(tmp_path / "in", out)
    ds = dicomfast.read(out / "DICOMDIR")
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity += 2
    ds.save(out / "D2")
    with pytest.raises(MalformedDataError):
        read_dicomdir(out / "D2")
    app = _run([DCMTK["dcmgpdir"], "+A", "-nb", "+D", "D2", "-v",
                "/".join(report.file_ids[0])], out)
    assert "Cannot resolve offset" in app.stdout + app.stderr
    assert "already exists" not in app.stdout + app.stderr


def test_make_fileset_in_place_renames_only_bad_names(tmp_path):
    sources = _make_series(tmp_path, [("in/GOOD/IMG1", "PA", "11", "1"),
                                      ("in/bad name.dcm", "PA", "11", "1"),
                                      ("in/lower/x", "PB", "21", "1")])
    (tmp_path / "in" / "README").write_text("not DICOM")
    uids = {str(dicomfast.read(p).SOPInstanceUID) for p in sources}
    report = make_fileset(tmp_path / "in")
    assert ("GOOD", "IMG1") in report.file_ids
    assert (tmp_path / "in" / "GOOD" / "IMG1").is_file()
    assert not (tmp_path / "in" / "bad name.dcm").exists()
    assert not (tmp_path / "in" / "lower").exists()  # emptied by the rename, removed
    assert len(report.moved) == 2
    assert [p.name for p, _ in report.skipped] == ["README"]
    dd = read_dicomdir(tmp_path / "in" / "DICOMDIR")
    assert {str(dicomfast.read(p).SOPInstanceUID) for p in dd.files()} == uids
    assert all(is_valid_file_id(r.file_id) for _, r in dd.walk() if r.file_id)
    with _fileset(tmp_path / "in" / "DICOMDIR") as fs:
        assert {str(i.SOPInstanceUID) for i in fs} == uids


def test_make_fileset_refuses_non_empty_out(tmp_path):
    _make_series(tmp_path, LAYOUT[:1])
    (tmp_path / "cd").mkdir()
    (tmp_path / "cd" / "X").write_text("x")
    with pytest.raises(FileExistsError):
        make_fileset(tmp_path / "in", tmp_path / "cd")


def test_file_id_rules():
    assert is_valid_file_id(("DIR_1", "IMG00001"))
    for bad in [("img",), ("TOOLONGNAME",), ("A.DCM",), (), tuple("ABCDEFGHI")]:
        assert not is_valid_file_id(bad)
    assert record_type_for("1.2.840.10008.5.1.4.1.1.2") == "IMAGE"
    assert record_type_for("1.2.840.10008.5.1.4.1.1.88.33") == "SR DOCUMENT"
    assert record_type_for("1.2.840.10008.5.1.4.1.1.11.1") == "PRESENTATION"
    assert record_type_for("1.2.840.10008.5.1.4.1.1.481.2") == "RT DOSE"


# -- hostile DICOMDIRs ---------------------------------------------------------------------

def _record(kind: str, **keys) -> Dataset:
    rec = Dataset()
    rec.OffsetOfTheNextDirectoryRecord = 0
    rec.RecordInUseFlag = 0xFFFF
    rec.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    rec.DirectoryRecordType = kind
    for k, v in keys.items():
        setattr(rec, k, v)
    return rec


def _tree(file_id) -> list:
    image = _record("IMAGE", ReferencedFileID=file_id, InstanceNumber=1)
    return [(_record("PATIENT", PatientID="P"), [(_record("STUDY", StudyID="1"),
                                                  [(_record("SERIES", Modality="CT"), [image])])])]


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "DICOMDIR"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("file_id", [["..", "ETC", "PASSWD"], ["../X"], ["/ETC/PASSWD"],
                                     ["A", ".."], ["C:", "X"], ["A", ""]])
def test_file_id_outside_root_is_refused(tmp_path, file_id):
    path = _write(tmp_path, build_dicomdir(_tree(file_id)))
    with pytest.raises(MalformedDataError) as info:
        read_dicomdir(path)
    assert info.value.tag == 0x00041500
    with pytest.raises(MalformedDataError):
        check_file_id(file_id)


def test_symlink_out_of_root_is_refused(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (tmp_path / "SECRET").write_text("x")
    os.symlink(tmp_path, media / "LINK")
    path = _write(media, build_dicomdir(_tree(["LINK", "SECRET"])))
    with pytest.raises(MalformedDataError):
        read_dicomdir(path)
    assert read_dicomdir(path, check_files=False).files() == [media / "LINK" / "SECRET"]


def _good(tmp_path: Path) -> Dataset:
    path = _write(tmp_path, build_dicomdir(_tree(["IMG"])))
    return dicomfast.read(path)


def _offsets(ds: Dataset) -> list[int]:
    index = ds._index
    return [index.header_offset(p) for p in index.children(index.find_top(0x00041220))]


def _save(tmp_path: Path, ds: Dataset) -> Path:
    # Offsets are UL: a changed value keeps the layout, so the links stay file offsets.
    ds.save(tmp_path / "BAD")
    return tmp_path / "BAD"


@pytest.mark.parametrize("case", ["next_self", "lower_to_patient", "next_to_sibling_loop",
                                  "past_end", "inside_record", "root_past_end", "last_wrong"])
def test_hostile_links_raise(tmp_path, case):
    ds = _good(tmp_path)
    offs = _offsets(ds)
    recs = ds.DirectoryRecordSequence
    patient, study, series, image = recs
    size = (tmp_path / "DICOMDIR").stat().st_size
    if case == "next_self":
        image.OffsetOfTheNextDirectoryRecord = offs[3]
    elif case == "lower_to_patient":
        series.OffsetOfReferencedLowerLevelDirectoryEntity = offs[0]
    elif case == "next_to_sibling_loop":
        study.OffsetOfTheNextDirectoryRecord = offs[2]      # study -> series -> image ...
        image.OffsetOfTheNextDirectoryRecord = offs[2]
    elif case == "past_end":
        series.OffsetOfReferencedLowerLevelDirectoryEntity = size + 1000
    elif case == "inside_record":
        patient.OffsetOfReferencedLowerLevelDirectoryEntity = offs[1] + 8
    elif case == "root_past_end":
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0xFFFFFFF0
    elif case == "last_wrong":
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = offs[0] + 1
    bad = _save(tmp_path, ds)
    assert _offsets(dicomfast.read(bad)) == offs
    with pytest.raises(MalformedDataError) as info:
        read_dicomdir(bad)
    assert isinstance(info.value, DicomfastError)
    assert info.value.tag in (0x00041200, 0x00041202, 0x00041400, 0x00041420)


def test_long_chain_does_not_recurse(tmp_path):
    # 3,000 levels of lower-level links: walked without the Python stack.
    levels = []
    for _ in range(3000):
        levels = [(_record("PRIVATE"), levels)]
    dd = read_dicomdir(_write(tmp_path, build_dicomdir(levels)))
    assert max(d for d, _ in dd.walk()) == 2999


def test_inactive_records_are_left_out(tmp_path):
    ds = _good(tmp_path)
    ds.DirectoryRecordSequence[2].RecordInUseFlag = 0  # the series, and so its image
    dd = read_dicomdir(_save(tmp_path, ds))
    assert [r.record_type for _, r in dd.walk()] == ["PATIENT", "STUDY"]


# -- command line --------------------------------------------------------------------------

def test_cli_mkdir_and_ls(tmp_path, capsys):
    _make_series(tmp_path, LAYOUT[:3])
    assert cli_main(["media", "mkdir", str(tmp_path / "in"), "--out", str(tmp_path / "cd"),
                     "--file-set-id", "CLI"]) == 0
    capsys.readouterr()
    assert cli_main(["media", "ls", str(tmp_path / "cd" / "DICOMDIR")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("File-set 'CLI'")
    assert sum(" IMAGE " in line for line in lines) == 3
    assert any(line.startswith("  PATIENT PatientID=PA") for line in lines)
    assert cli_main(["media", "ls", str(SAMPLES / "ct_explicit_le.dcm")]) == 1


def test_sequence_value_is_accepted_by_writer():
    # build_dicomdir takes records as Datasets; a record with a sequence key
    # (ConceptNameCodeSequence in SR DOCUMENT records) encodes too.
    code = Dataset()
    code.CodeValue = "11528-7"
    code.CodingSchemeDesignator = "LN"
    code.CodeMeaning = "Radiology Report"
    sr = _record("SR DOCUMENT", ReferencedFileID=["SR1"], InstanceNumber=1)
    sr.ConceptNameCodeSequence = Sequence([code])
    tree = [(_record("PATIENT", PatientID="P"), [(_record("STUDY", StudyID="1"),
                                                  [(_record("SERIES", Modality="SR"), [sr])])])]
    data = build_dicomdir(tree)
    ds = dicomfast.read(data)
    assert ds.DirectoryRecordSequence[3].ConceptNameCodeSequence[0].CodeValue == "11528-7"
