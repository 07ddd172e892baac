"""De-identification (dicomfast.deid, dicomfast.deid_cli) against PS3.15 Table E.1-1.

Every corpus file dicomfast reads is de-identified with the Basic Profile and
written; the output is read back by pydicom and dumped by DCMTK ``dcmdump``.
What survives is checked against the table as ../shared/dicom-standard has it
(the raw JSON, read here independently of the generated module): nothing the
profile removes (X) is present, no value it replaces (Z, D, U and their
combinations) keeps its original, no private attribute remains, overlays and
curves (X) are gone, and the pixel data bytes are the input's.

A second tool, dicognito (when installed), de-identifies the same files. Both
replace every patient identifier and instance UID; the differences are by
design and are asserted: dicognito keeps private attributes, descriptions and
the Type 3 attributes the Basic Profile removes (Patient's Age, Other Patient
IDs Sequence, ...), and replaces names, IDs and dates by plausible random ones
(dates shifted, intervals kept), where dicomfast follows Table E.1-1: removes
(X), empties (Z) or writes fixed dummies (D), shifts dates only with the
Retain Longitudinal Temporal Information Modified Dates option, and removes
private attributes unless Retain Safe Private lists them.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from corpus import SHARED, all_files, file_id, find

import dicomfast
from dicomfast import _deid_profile, deid_batch, deid_cli
from dicomfast.deid import (
    BurnedInAnnotationError,
    DeidentificationWarning,
    Deidentifier,
    UIDMap,
    resolve_action,
)
from dicomfast.errors import DicomfastError

pydicom = pytest.importorskip("pydicom")

JSON = SHARED / "dicom-standard" / "confidentiality_profile_attributes.json"
TOOLS = Path(__file__).resolve().parent.parent / "tools"


def _need(name):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    return path


def _raw_table():
    if not JSON.is_file():
        pytest.skip("../shared/dicom-standard is not beside the repository")
    with open(JSON, encoding="utf-8") as f:
        return json.load(f)


# -- the generated table ----------------------------------------------------------------------

def test_generated_table_is_current():
    if not JSON.is_file():
        pytest.skip("../shared/dicom-standard is not beside the repository")
    result = subprocess.run([sys.executable, str(TOOLS / "gen_deid_profile.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_generated_table_equals_the_json():
    columns = ("rtnSafePrivOpt", "rtnUIDsOpt", "rtnDevIdOpt", "rtnInstIdOpt", "rtnPatCharsOpt",
               "rtnLongFullDatesOpt", "rtnLongModifDatesOpt", "cleanDescOpt",
               "cleanStructContOpt", "cleanGraphOpt")
    rows = _raw_table()
    exact = {int(r["id"], 16): r for r in rows if all(c in "0123456789abcdef" for c in r["id"])}
    assert set(exact) == set(_deid_profile.PROFILE)
    for tag, row in exact.items():
        name, basic, options = _deid_profile.PROFILE[tag]
        assert (name, basic) == (row["name"], row["basicProfile"])
        assert options == tuple(row.get(c, "") for c in columns)
    assert len(_deid_profile.REPEATERS) == 3 and _deid_profile.PRIVATE[1] == "X"


# -- the corpus ---------------------------------------------------------------------------------

def _json_actions():
    """tag -> Basic Profile action, from the raw JSON (repeaters by group mask)."""
    exact, masks = {}, []
    for r in _raw_table():
        i = r["id"].lower()
        if all(c in "0123456789abcdef" for c in i):
            exact[int(i, 16)] = r["basicProfile"]
        elif "x" in i and len(i) == 8:
            mask = int("".join("0" if c == "x" else "f" for c in i), 16) | 0x00010000
            masks.append((mask, int(i.replace("x", "0"), 16), r["basicProfile"]))
    return exact, masks


def _action_of(tag, exact, masks):
    if tag in exact:
        return exact[tag]
    for mask, value, action in masks:
        if tag & mask == value:
            return action
    return None


def _walk(ds, path=()):
    """(tag path, element) of every element, items included (pydicom data sets)."""
    for el in ds:
        yield (*path, el.tag), el
        if el.VR == "SQ":
            for k, item in enumerate(el.value or []):
                yield from _walk(item, (*path, el.tag, k))


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return tuple(_text(v) for v in value)
    return str(value).strip()


DUMMIES = {"ANONYMIZED", "19000101", "000000", "000Y", "0", "19000101000000", "",
           "http://example.invalid/"}


def _readable(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = dicomfast.read(path)
            ds.keys()
            return ds
        except Exception:
            return None


CORPUS = [p for p in all_files() if p.suffix.lower() not in (".pdf", ".png", ".jpg")]


def _check_survivors(before, after):
    exact, masks = _json_actions()
    originals: dict[int, set] = {}
    for tags, el in _walk(before):
        action = _action_of(tags[-1], exact, masks)
        if action and action not in ("K", "C") and not el.is_empty and el.VR != "SQ":
            originals.setdefault(tags[-1], set()).add(_text(el.value))
    for tags, el in _walk(after):
        tag = tags[-1]
        assert not (tag >> 16) & 1, f"private {tag:08X} survived"
        action = _action_of(tag, exact, masks)
        if action == "X":
            pytest.fail(f"{tag:08X} (action X) survived at {tags}")
        if tag in originals and el.VR != "SQ":
            value = _text(el.value)
            assert value in DUMMIES or value not in originals[tag], \
                f"{tag:08X} kept its value {value!r} (action {action})"


@pytest.fixture(scope="module")
def dcmdump():
    tool = shutil.which("dcmdump")
    if tool is None:
        pytest.skip("DCMTK dcmdump is not installed")
    return tool


@pytest.mark.parametrize("path", CORPUS, ids=[file_id(p) for p in CORPUS])
def test_nothing_the_profile_replaces_survives(path, tmp_path, dcmdump):
    ds = _readable(path)
    if ds is None or ds.file_meta is None:
        pytest.skip("not a Part 10 file dicomfast reads")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = pydicom.dcmread(path, force=True)
        out = tmp_path / "out.dcm"
        Deidentifier(burned_in="ignore").deidentify(ds)
        try:
            ds.save(out)
        except dicomfast.DicomfastError:
            pytest.skip("the file cannot be written back (no SOP Instance UID anywhere)")
        after = pydicom.dcmread(out)
    with warnings.catch_warnings():  # pydicom's complaints about the corpus's odd values
        warnings.simplefilter("ignore")
        _check_survivors(before, after)
    assert after.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
    assert codes == ["113100"]
    assert after.DeidentificationMethod == "Basic Application Confidentiality Profile"
    if "PixelData" in before:  # the header rewrite copies pixel data as stored
        assert bytes(after.PixelData) == bytes(before.PixelData)
    original_dump = subprocess.run([dcmdump, str(path)], capture_output=True)
    dumped = subprocess.run([dcmdump, str(out)], capture_output=True)
    if original_dump.returncode == 0:
        assert dumped.returncode == 0, dumped.stderr


# -- UIDs across a study --------------------------------------------------------------------------

def _study_files():
    root = find("17106")
    if root is None:
        pytest.skip("pydicom's dicomdirtests are not in the corpus")
    study = root.parent.parent  # dicomdirtests/77654033: one patient, one study, series
    return sorted(p for p in study.rglob("*") if p.is_file())


def test_uids_consistent_across_a_study(tmp_path):
    files = _study_files()
    deid = Deidentifier()
    before = [pydicom.dcmread(p) for p in files]
    after = [deid.deidentify_file(p) for p in files]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        old = [str(b.get(keyword)) for b in before]
        new = [str(a.get(keyword)) for a in after]
        pairs = set(zip(old, new, strict=True))
        assert len(pairs) == len(set(old)) == len(set(new))  # the same grouping: a bijection
        assert not set(old) & set(new)
    for b, a in zip(before, after, strict=True):
        assert str(a.SOPInstanceUID) == deid.uid_map[str(b.SOPInstanceUID)]
        assert str(a.SOPInstanceUID) != str(b.SOPInstanceUID)
        assert dicomfast.UID(str(a.SOPInstanceUID)).is_valid
        if "FrameOfReferenceUID" in b:
            assert a.FrameOfReferenceUID == deid.uid_map[str(b.FrameOfReferenceUID)]
    # every reference inside the study points at the new UID of what it referenced
    ref = _need("examples_overlay.dcm")
    original = pydicom.dcmread(ref)
    done = deid.deidentify_file(ref)
    old = original.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert done.ReferencedImageSequence[0].ReferencedSOPInstanceUID == deid.uid_map[old]


def test_salted_uids_are_deterministic_and_the_map_persists(tmp_path):
    path = _need("CT_small.dcm")
    a = Deidentifier(salt="s3cret").deidentify_file(path)
    b = Deidentifier(salt="s3cret").deidentify_file(path)
    c = Deidentifier(salt="other").deidentify_file(path)
    assert a.SOPInstanceUID == b.SOPInstanceUID != c.SOPInstanceUID
    random = Deidentifier()
    first = random.deidentify_file(path)
    random.uid_map.save(tmp_path / "uids.csv")
    loaded = UIDMap.load(tmp_path / "uids.csv")
    assert dict(loaded.items()) == dict(random.uid_map.items())
    again = Deidentifier(uid_map=loaded).deidentify_file(path)
    assert again.StudyInstanceUID == first.StudyInstanceUID
    assert Deidentifier().deidentify_file(path).StudyInstanceUID != first.StudyInstanceUID


# -- options -----------------------------------------------------------------------------------------

def test_options_change_the_actions():
    path = _need("CT_small.dcm")
    original = pydicom.dcmread(path)
    kept = Deidentifier(["retain_uids", "retain_long_full_dates",
                         "retain_patient_characteristics", "retain_device_identity",
                         "retain_institution_identity"]).deidentify_file(path)
    assert kept.SOPInstanceUID == original.SOPInstanceUID
    assert kept.StudyDate == original.StudyDate
    assert kept.PatientSex == original.PatientSex and kept.PatientAge == original.PatientAge
    assert kept.StationName == original.StationName
    assert kept.InstitutionName == original.InstitutionName
    assert kept.LongitudinalTemporalInformationModified == "UNMODIFIED"
    codes = [i.CodeValue for i in kept.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113110", "113109", "113112", "113108", "113106"]
    assert kept.DeidentificationMethod[:2] == ["Basic Application Confidentiality Profile",
                                                "Retain UIDs Option"]
    assert len(kept.DeidentificationMethod) == 6
    assert kept.PatientName in ("", None)  # options do not touch what they do not name
    shifted = Deidentifier(["retain_long_modified_dates"], date_offset=-10).deidentify_file(path)
    assert shifted.SeriesDate == "19970420" and shifted.ContentDate == "19970420"
    assert shifted.LongitudinalTemporalInformationModified == "MODIFIED"
    with pytest.raises(ValueError):
        Deidentifier(["retain_long_full_dates", "retain_long_modified_dates"])
    with pytest.raises(ValueError):
        Deidentifier(["no_such_option"])


def test_date_offsets_are_per_patient_and_salted():
    files = _study_files()[:3]
    deid = Deidentifier(["retain_long_modified_dates"], salt="k")
    shifts = set()
    for p in files:
        b, a = pydicom.dcmread(p), deid.deidentify_file(p)
        if b.get("StudyDate") and a.get("StudyDate"):
            from datetime import date
            d0 = date(int(b.StudyDate[:4]), int(b.StudyDate[4:6]), int(b.StudyDate[6:8]))
            d1 = date(int(a.StudyDate[:4]), int(a.StudyDate[4:6]), int(a.StudyDate[6:8]))
            shifts.add((d1 - d0).days)
    assert len(shifts) == 1 and next(iter(shifts)) < 0


def test_clean_descriptors_scrubs_identifiers_and_compound_remove():
    path = _need("CT_small.dcm")
    ds = dicomfast.read(path)
    ds.StudyDescription = "CT for CompressedSamples follow-up"
    Deidentifier(["clean_descriptors"]).deidentify(ds)
    assert ds.StudyDescription == "CT for XXXXXXXXXXXXXXXXX follow-up"
    removed = Deidentifier(compound="remove").deidentify_file(path)
    assert "InstitutionName" not in removed  # X/Z/D -> X
    assert removed.PatientID in ("", None)  # Z/D -> Z
    conformant = Deidentifier().deidentify_file(path)
    assert conformant.InstitutionName == "ANONYMIZED"  # X/Z/D -> D
    entry = ("Test", "X/Z/U*", ("",) * 10)
    assert resolve_action(entry, ()) == "U*" and resolve_action(entry, (), "remove") == "X"


def test_retain_safe_private_keeps_only_listed_elements():
    path = _need("CT_small.dcm")
    ds = dicomfast.read(path)
    block = ds.private_block(0x0009, "GEMS_IDEN_01")
    wanted = block.tag(0x01)
    Deidentifier(["retain_safe_private"], safe_private=[("GEMS_IDEN_01", 0x0009, 0x01)]
                 ).deidentify(ds)
    private = [t for t in ds.keys() if (t >> 16) & 1]
    assert wanted in private and (0x0009 << 16 | block.slot) in private
    assert len(private) == 2
    plain = Deidentifier().deidentify_file(path)
    assert not [t for t in plain.keys() if (t >> 16) & 1]


def test_burned_in_annotation_refused_or_warned():
    path = _need("CT_small.dcm")
    ds = dicomfast.read(path)
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(BurnedInAnnotationError):
        Deidentifier().deidentify(ds)
    assert ds.PatientName  # refused before anything changed
    with pytest.warns(DeidentificationWarning):
        Deidentifier(burned_in="warn").deidentify(ds)
    assert not ds.PatientName


def test_header_only_rewrite_never_decodes_pixels(monkeypatch):
    path = _need("693_J2KI.dcm")  # JPEG 2000: decoding it would show
    ds = dicomfast.read(path)
    monkeypatch.setitem(dicomfast.dataset.extensions, "pixel_array", None)
    monkeypatch.setitem(dicomfast.dataset.extensions, "frame", None)
    Deidentifier(burned_in="ignore").deidentify(ds)
    buf = io.BytesIO()
    ds.save(buf)
    again = dicomfast.read(buf.getvalue())
    assert bytes(again["PixelData"].value) == bytes(dicomfast.read(path)["PixelData"].value)


@pytest.mark.parametrize("fails_in", ["writev", "copy_file_range"])
def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, fails_in):
    """The output is written under a hidden name and renamed: a write that fails
    half way leaves neither a partial file nor a changed earlier one, whether it
    fails writing the head or copying the pixel data file to file."""
    path = _need("CT_small.dcm") if fails_in == "writev" else _large_file()
    dst = tmp_path / "out" / "ct.dcm"
    Deidentifier().deidentify_file(path, dst)
    before = dst.read_bytes()

    def half_then_fail(*args):
        os.write(args[0] if fails_in == "writev" else args[1], b"\0" * 200)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fails_in, half_then_fail)
    with pytest.raises(OSError, match="No space"):
        Deidentifier().deidentify_file(path, dst)
    assert dst.read_bytes() == before
    assert sorted(p.name for p in dst.parent.iterdir()) == ["ct.dcm"]


def _large_file():
    """A corpus file read up to its pixel data (which deidentify_file copies file to
    file) and written back by every peer."""
    from dicomfast.split_read import open_split

    for path in all_files():
        if path.stat().st_size > 200_000 and path.suffix == ".dcm":
            try:
                with open_split(path) as split:
                    if split.pixels is not None and "SOPInstanceUID" in split.dataset:
                        return path
            except DicomfastError:
                continue
    pytest.skip("no large corpus file ends with its pixel data")


@pytest.mark.parametrize("options", [(), ("retain_uids", "retain_long_modified_dates",
                                         "retain_device_identity", "clean_descriptors")])
def test_file_to_file_writes_what_the_whole_read_writes(tmp_path, monkeypatch, options):
    """deidentify_file from a path to a path copies the pixel data file to file when
    it ends the file: the output is byte for byte the whole read's, de-identified
    alike, for every corpus file."""
    from dicomfast import deid as deid_module

    fresh = iter(())

    def same_fresh_uids(prefix=None, entropy_srcs=None):
        # an empty UID gets a fresh one: the same sequence for both runs of a file
        return real(prefix, entropy_srcs=entropy_srcs or [str(next(fresh))])

    real = deid_module.generate_uid
    monkeypatch.setattr(deid_module, "generate_uid", same_fresh_uids)
    compared = copied = 0
    for k, path in enumerate(all_files()):
        deid = Deidentifier(options, salt="same", burned_in="ignore", date_offset=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh = iter(range(100))
            try:
                expected = _saved(deid.deidentify(dicomfast.read(path)))
            except (DicomfastError, ValueError):
                continue
            out = tmp_path / f"{k}.dcm"
            fresh = iter(range(100))
            ds = deid.deidentify_file(path, out)
        assert out.read_bytes() == expected, file_id(path)
        compared += 1
        copied += "PixelData" not in ds and "PixelData" in dicomfast.read(out)
    assert compared > 200 and copied > 50


@pytest.mark.parametrize("options,compound", [
    ((), "conformant"), ((), "remove"), (("retain_uids",), "conformant"),
    (("retain_institution_identity", "retain_long_full_dates"), "conformant")])
def test_native_rewrite_writes_what_the_dataset_path_writes(tmp_path, monkeypatch, options,
                                                             compound):
    """The native header rewrite (dicomfast.deid_rewrite) against the walk over a
    Dataset, for every corpus file: the same bytes, the same UID map, and the
    native path taken for most files (the rest fall back, as they should)."""
    from dicomfast import deid as deid_module

    fresh = iter(())

    def same_fresh_uids(prefix=None, entropy_srcs=None):
        return real(prefix, entropy_srcs=entropy_srcs or [str(next(fresh))])

    real = deid_module.generate_uid
    monkeypatch.setattr(deid_module, "generate_uid", same_fresh_uids)
    native = Deidentifier(options, salt="same", burned_in="ignore", compound=compound)
    dataset_path = Deidentifier(options, salt="same", burned_in="ignore", compound=compound)
    dataset_path.native = False
    rewritten = compared = 0
    real_chunks = Deidentifier._native_chunks

    def counting(self, split):
        nonlocal rewritten
        chunks = real_chunks(self, split)
        rewritten += chunks is not None
        return chunks

    monkeypatch.setattr(Deidentifier, "_native_chunks", counting)
    for k, path in enumerate(all_files()):
        outs = []
        for deid in (native, dataset_path):
            out = tmp_path / f"{k}-{len(outs)}.dcm"
            fresh = iter(range(100))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    deid.write_deidentified(path, out)
                except (DicomfastError, ValueError) as exc:
                    outs.append(type(exc))
                    continue
            outs.append(out.read_bytes())
        assert outs[0] == outs[1], file_id(path)
        compared += type(outs[0]) is bytes
    assert compared > 250 and rewritten > 250, (compared, rewritten)
    assert dict(native.uid_map.items()) == dict(dataset_path.uid_map.items())


def test_bytes_to_bytes_natively_and_through_a_dataset(monkeypatch):
    """deidentify_bytes: the native rewrite where it applies, else read, de-identify
    and write; the same bytes either way, for every corpus file."""
    from dicomfast import deid as deid_module

    fresh = iter(())
    real = deid_module.generate_uid
    monkeypatch.setattr(deid_module, "generate_uid", lambda prefix=None, entropy_srcs=None:
                        real(prefix, entropy_srcs=entropy_srcs or [str(next(fresh))]))
    native = Deidentifier(salt="same", burned_in="ignore")
    dataset_way = Deidentifier(salt="same", burned_in="ignore")
    dataset_way.native = False
    compared = 0
    for path in all_files():
        data = path.read_bytes()
        outs = []
        for deid in (native, dataset_way):
            fresh = iter(range(100))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    outs.append(deid.deidentify_bytes(data))
                except (DicomfastError, ValueError) as exc:
                    outs.append(type(exc))
        assert outs[0] == outs[1], file_id(path)
        compared += type(outs[0]) is bytes
    assert compared > 250
    assert native._native_rewriter() is not None and dataset_way._native_rewriter() is None


def test_a_file_whose_sop_instance_uid_has_two_values_is_refused_both_ways(tmp_path):
    """Found by fuzzing the two ways against each other: the Dataset way wrote the
    list's text as the File Meta's instance UID; both now refuse the file."""
    source = _need("CT_small.dcm")
    data = bytearray(source.read_bytes())
    old = str(dicomfast.read(source).SOPInstanceUID).encode()
    at = data.rindex(old)  # the data set's (0008,0018), after the File Meta's (0002,0003)
    data[at:at + len(old)] = b"1.2.3\\1.2.4".ljust(len(old), b"0")
    raw = tmp_path / "two.dcm"
    raw.write_bytes(bytes(data))
    for native in (True, False):
        deid = Deidentifier(burned_in="ignore")
        deid.native = native
        with pytest.raises(DicomfastError, match="SOP Instance UID has 2 values"):
            deid.write_deidentified(raw, tmp_path / f"out-{native}.dcm")
        assert not (tmp_path / f"out-{native}.dcm").exists()


def test_native_rewrite_applies_only_where_it_writes_the_same():
    from dicomfast.deid_rewrite import Rewriter

    assert Rewriter.applies_to(Deidentifier())
    assert Rewriter.applies_to(Deidentifier(["retain_uids", "retain_long_full_dates"]))
    for deid in (Deidentifier(["clean_descriptors"]),                 # C actions
                 Deidentifier(["retain_device_identity"]),            # C on some
                 Deidentifier(["retain_long_modified_dates"]),        # dates shifted
                 Deidentifier(replacements={"PatientID": "P1"}),
                 Deidentifier(cleaner=lambda tag, vr, value: value),
                 Deidentifier(["retain_safe_private"], safe_private=[("ACME", 0x0009, 0x10)])):
        assert not Rewriter.applies_to(deid)


def test_native_rewrite_refuses_or_warns_of_burned_in_annotation(tmp_path):
    ds = dicomfast.read(_need("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    ds.save(tmp_path / "burned.dcm")
    refusing = Deidentifier()
    with pytest.raises(BurnedInAnnotationError, match="burned.dcm"):
        refusing.write_deidentified(tmp_path / "burned.dcm", tmp_path / "out.dcm")
    assert refusing._rewriter and not (tmp_path / "out.dcm").exists()
    with pytest.warns(DeidentificationWarning, match="burned.dcm"):
        written = Deidentifier(burned_in="warn").deidentify_file(tmp_path / "burned.dcm",
                                                                 tmp_path / "out.dcm")
    assert written.BurnedInAnnotation == "YES" and "PatientName" in written
    assert not pydicom.dcmread(tmp_path / "out.dcm").PatientName


def test_the_output_path_may_depend_on_the_dataset(tmp_path):
    path = _large_file()
    ds = Deidentifier(salt="x").deidentify_file(
        path, lambda ds: tmp_path / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm")
    out = tmp_path / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    assert dicomfast.read(out).SOPInstanceUID == ds.SOPInstanceUID


def test_late_replacements_make_a_whole_read(tmp_path):
    """A replacement that sorts after the pixel data is written in its place."""
    path = _large_file()
    out = tmp_path / "out.dcm"
    Deidentifier(replacements={0x7FE10010: "A CREATOR"}).deidentify_file(path, out)
    written = dicomfast.read(out)
    assert written[0x7FE10010].value == "A CREATOR"
    assert bytes(written.PixelData) == bytes(dicomfast.read(path).PixelData)


# -- the command line ------------------------------------------------------------------------------

def test_cli_mirrors_paths_renames_and_keeps_a_map(tmp_path, capsys):
    files = _study_files()
    src = tmp_path / "in" / "Smith^John"
    for p in files:
        dst = src / p.relative_to(files[0].parent.parent)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
    (src / "notes.txt").write_text("not DICOM")
    out = tmp_path / "out"
    status = deid_cli.main(["deid", str(tmp_path / "in"), str(out), "--map",
                            str(tmp_path / "uids.csv"), "--threads", "2"])
    assert status == 1  # notes.txt is not DICOM: reported, the rest written
    written = sorted(p.relative_to(out) for p in out.rglob("*.*") if p.is_file()) + sorted(
        p.relative_to(out) for p in out.rglob("*") if p.is_file() and "." not in p.name)
    assert {str(p) for p in written} == {
        str(p.relative_to(tmp_path / "in")) for p in (tmp_path / "in").rglob("*")
        if p.is_file() and p.name != "notes.txt"}
    first = UIDMap.load(tmp_path / "uids.csv")
    assert len(first) > len(files)
    renamed = tmp_path / "renamed"
    for p in (tmp_path / "in").rglob("notes.txt"):
        p.unlink()
    assert deid_cli.main(["deid", str(tmp_path / "in"), str(renamed), "--map",
                          str(tmp_path / "uids.csv"), "--rename", "--option",
                          "retain-device-identity"]) == 0
    names = {p.relative_to(renamed).parts for p in renamed.rglob("*.dcm")}
    assert len(names) == len(files)
    for parts in names:  # STUDY/SERIES/SOP.dcm, the new UIDs of the file
        written = pydicom.dcmread(renamed.joinpath(*parts))
        assert parts == (written.StudyInstanceUID, written.SeriesInstanceUID,
                         f"{written.SOPInstanceUID}.dcm")
    mirrored = pydicom.dcmread(next(out.rglob("17106")))
    assert (mirrored.StudyInstanceUID, mirrored.SeriesInstanceUID) in {p[:2] for p in names}
    assert "Smith" not in "".join(str(p) for p in renamed.rglob("*"))
    assert dict(UIDMap.load(tmp_path / "uids.csv").items()) == dict(first.items())  # no new UIDs
    assert deid_cli.main(["deid", str(tmp_path / "in"), str(tmp_path / "in" / "x")]) == 1
    capsys.readouterr()


def test_folder_api_counts_and_refuses_an_output_inside_the_input(tmp_path, capsys):
    files = _study_files()
    src = tmp_path / "in"
    src.mkdir()
    for p in files:
        shutil.copy(p, src / p.name)
    (src / "notes.txt").write_text("not DICOM")
    threads_before = threading.active_count()
    result = deid_batch.deidentify_folder(src, tmp_path / "out", ["retain_device_identity"],
                                          jobs=1, threads=2)
    assert threading.active_count() == threads_before  # its threads are gone
    assert (result.done, result.failed) == (len(files), 1)
    assert len(result.problems) == 1 and "notes.txt" in result.problems[0]
    assert len(result.uid_map) >= len(files)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in files)
    with pytest.raises(ValueError, match="inside"):
        deid_batch.deidentify_folder(src, src / "out")
    with pytest.raises(ValueError, match="does not exist"):
        deid_batch.deidentify_folder(tmp_path / "missing", tmp_path / "out2")
    assert capsys.readouterr().err == ""  # no progress bar unless asked


def _folder_with_warnings(src, copies=1):
    """`src` with `copies` of: a file cut inside its last value (the reader warns), a
    file with Burned In Annotation YES, and a plain one. The two odd files' paths."""
    truncated, plain = _need("MR_truncated.dcm"), _need("CT_small.dcm")
    burned = dicomfast.read(plain)
    burned.BurnedInAnnotation = "YES"
    odd = []
    for k in range(copies):
        folder = src / f"copy{k:02d}"
        folder.mkdir(parents=True)
        shutil.copy(truncated, folder / "cut.dcm")
        burned.save(folder / "burned.dcm")
        shutil.copy(plain, folder / "plain.dcm")
        odd += [folder / "cut.dcm", folder / "burned.dcm"]
    return odd


def test_folder_warnings_name_their_files(tmp_path):
    """Each file's warnings come back with its outcome, naming it, every time: as
    Python warnings each would show once per process, without the file's name.
    The caller's warning settings are as before afterwards."""
    odd = _folder_with_warnings(tmp_path / "in", copies=2)
    filters, show = list(warnings.filters), warnings.showwarning
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        result = deid_batch.deidentify_folder(tmp_path / "in", tmp_path / "out",
                                              burned_in="warn", jobs=1)
    assert not escaped
    assert (result.done, result.failed, result.warned) == (6, 0, 4)
    assert len(result.warnings) == 4
    for path in odd:
        mine = [w for w in result.warnings if w.startswith(f"{path}: ")]
        assert len(mine) == 1, (path, result.warnings)
        expected = "cut short" if path.name == "cut.dcm" else "Burned In Annotation is YES"
        assert expected in mine[0] and mine[0].count(str(path)) == 1
    assert warnings.filters == filters and warnings.showwarning is show
    with pytest.warns(DeidentificationWarning):  # outside a batch: warned as usual
        Deidentifier(burned_in="warn").deidentify_file(odd[1])


def test_cli_reports_each_files_warnings_from_worker_processes(tmp_path, capsys):
    copies = -(-2 * deid_batch._CHUNK // 3) + 1  # enough files for a worker's task
    odd = _folder_with_warnings(tmp_path / "in", copies)
    assert deid_cli.main(["deid", str(tmp_path / "in"), str(tmp_path / "out"), "--jobs", "2",
                          "--burned-in", "warn"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("dicomfast deid: warning: ")]
    assert sorted(line.split(": ")[2] for line in lines) == sorted(map(str, odd))
    assert f"{3 * copies} of {3 * copies} files de-identified" in err
    assert f"({len(odd)} with warnings)" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_folder_walk_takes_regular_files_and_links_to_them_only(tmp_path):
    """Hidden files, FIFOs (whose open would wait for a writer forever) and links to
    folders are passed over; files in subfolders and links to files are taken."""
    files = _study_files()[:2]
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    shutil.copy(files[0], src / "a" / "b" / "one.dcm")
    shutil.copy(files[1], src / "two.dcm")
    shutil.copy(files[1], src / "a" / ".hidden.dcm")
    (src / "link.dcm").symlink_to(src / "two.dcm")
    (src / "folder-link").symlink_to(src / "a", target_is_directory=True)
    os.mkfifo(src / "a" / "pipe")
    result = deid_batch.deidentify_folder(src, tmp_path / "out", jobs=1)
    assert (result.done, result.failed) == (3, 0)
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                  if p.is_file()) == ["a/b/one.dcm", "link.dcm", "two.dcm"]


@contextlib.contextmanager
def _worker_environments():
    """The environments (Linux /proc/PID/environ) of the child processes seen while
    the block runs."""
    seen: dict[int, bytes] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for child in multiprocessing.active_children():
                if child.pid not in seen:
                    try:
                        seen[child.pid] = Path(f"/proc/{child.pid}/environ").read_bytes()
                    except OSError:
                        pass
            stop.wait(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    environments: list[bytes] = []
    try:
        yield environments
    finally:
        stop.set()
        watcher.join()
        environments.extend(seen.values())


def test_cli_processes_share_one_mapping(tmp_path, capsys, monkeypatch):
    """With --jobs the files are shared among worker processes; a UID seen by
    several of them gets one replacement, the map holds every one, and with a
    salt the output is the same, byte for byte, as one process's."""
    # Unset, as for most users (another library in this process may have set it).
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    files = _study_files()
    copies = max(2, -(-3 * deid_batch._CHUNK // len(files)))  # enough for 3 tasks
    src = tmp_path / "in"
    for k in range(copies):
        for p in files:
            dst = src / f"copy{k:02d}" / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst)
    outs = {}
    for jobs in ("1", "2"):
        outs[jobs] = tmp_path / f"salted-{jobs}"
        assert deid_cli.main(["deid", str(src), str(outs[jobs]), "--jobs", jobs,
                              "--salt", "s3cret"]) == 0
    for p in outs["1"].rglob("*"):
        if p.is_file():
            assert p.read_bytes() == (outs["2"] / p.relative_to(outs["1"])).read_bytes(), p
    out = tmp_path / "random"
    with _worker_environments() as environments:
        assert deid_cli.main(["deid", str(src), str(out), "--jobs", "2", "--map",
                              str(tmp_path / "uids.csv")]) == 0
    if os.path.isdir("/proc/self"):
        # Workers import numpy: its OpenBLAS must not start a thread per core in each.
        assert environments and all(b"OPENBLAS_NUM_THREADS=1" in e for e in environments)
        assert "OPENBLAS_NUM_THREADS" not in os.environ  # set for the workers only
    uid_map = dict(UIDMap.load(tmp_path / "uids.csv").items())
    for p in files:
        original = pydicom.dcmread(p)
        written = [pydicom.dcmread(out / f"copy{k:02d}" / p.name) for k in range(copies)]
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            new = {str(w.get(keyword)) for w in written}
            assert new == {uid_map[str(original.get(keyword))]}, keyword
    salted = pydicom.dcmread(outs["1"] / "copy00" / files[0].name)
    assert salted.SOPInstanceUID != pydicom.dcmread(out / "copy00" / files[0].name).SOPInstanceUID
    capsys.readouterr()


def test_cli_survives_a_killed_worker(tmp_path):
    """SIGKILL one worker process mid-batch: the main process does the files no
    worker reported, and every file written, by whichever process, carries the
    UIDs the saved map gives its original."""
    import os
    import signal
    import time

    files = _study_files()
    src = tmp_path / "in"
    for k in range(300):
        for p in files:
            dst = src / f"copy{k:03d}" / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dst)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast", "deid", str(src), str(out),
                             "--jobs", "2", "--map", str(tmp_path / "uids.csv")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        workers = [pid for pid in _children(proc.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        if workers and out.exists() and any(p.is_file() for p in out.rglob("*")):
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.01)
    _, err = proc.communicate(timeout=120)
    if killed is None:
        pytest.skip("the batch ended before a worker could be killed")
    assert b"a worker process ended" in err, err.decode()
    assert proc.returncode == 0, err.decode()
    assert not list(out.rglob(".*.part"))  # the killed worker's unfinished file is gone
    uid_map = dict(UIDMap.load(tmp_path / "uids.csv").items())
    for p in files:
        original = pydicom.dcmread(p)
        for k in range(300):
            written = pydicom.dcmread(out / f"copy{k:03d}" / p.name)
            for keyword in ("StudyInstanceUID", "SOPInstanceUID"):
                assert str(written.get(keyword)) == uid_map[str(original.get(keyword))]


def _children(pid):
    """Process ids whose parent is `pid` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


# -- a second tool -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"])
def test_compared_with_dicognito(name):
    anonymizer = pytest.importorskip("dicognito.anonymizer")
    path = _need(name)
    original = pydicom.dcmread(path)
    theirs = pydicom.dcmread(path)
    anonymizer.Anonymizer().anonymize(theirs)
    ours = pydicom.dcmread(io.BytesIO(_saved(Deidentifier().deidentify_file(path))))
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                    "SOPInstanceUID", "PatientBirthDate"):
        if original.get(keyword):
            assert ours.get(keyword) != original.get(keyword)
            assert theirs.get(keyword) != original.get(keyword)
    private_theirs = [e.tag for e in theirs if e.tag.is_private]
    private_ours = [e.tag for e in ours if e.tag.is_private]
    assert not private_ours
    assert len(private_theirs) == len([e for e in original if e.tag.is_private])
    for keyword in ("PatientAge", "OtherPatientIDsSequence", "ImageComments"):
        if keyword in original:  # Basic Profile X; dicognito keeps them
            assert keyword not in ours and keyword in theirs


def _saved(ds):
    buf = io.BytesIO()
    ds.save(buf)
    return buf.getvalue()
