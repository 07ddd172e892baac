"""Writing a DICOMDIR for a folder of DICOM files: a File-set (PS3.10 §8, PS3.3 Annex F).

    >>> from dicomfast.media import make_fileset
    >>> report = make_fileset("incoming/", out="cd/")       # copies into cd/, writes cd/DICOMDIR

Files are grouped PATIENT → STUDY → SERIES → instance (IMAGE, SR DOCUMENT, ...)
by Patient ID, Study, Series and SOP Instance UIDs, and each record gets the
keys PS3.3 §F.5 lists for its type, copied from the file.

File IDs follow PS3.10 §8.2: at most 8 components, each of 1 to 8 characters
from A-Z, 0-9 and '_'. Files whose relative path already complies keep it; the
others get generated names (Pnnnnnnn/Snnnnnnn/Ennnnnnn/Innnnnnn), by copying
into `out`, or, without `out`, by renaming them inside the folder.

The record offsets (PS3.3 §F.3.2.2) count bytes from the start of the file to
each record's item tag, so they depend on the encoded layout: the directory is
encoded once with zero offsets (UL values are 4 bytes whatever they hold), the
item positions are read back from that encoding, and the offsets filled in for
the final encoding, whose layout is then checked to be the same.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomfast._uids import UIDS
from dicomfast.dataset import Dataset, Sequence
from dicomfast.errors import DicomfastError
from dicomfast.media.dicomdir import (
    MAX_FILE_ID_COMPONENTS,
    MEDIA_STORAGE_DIRECTORY_STORAGE,
    DicomDir,
)
from dicomfast.part10 import read
from dicomfast.uid import generate_uid
from dicomfast.writer import EXPLICIT_VR_LITTLE_ENDIAN, to_bytes

__all__ = ["FileSetReport", "is_valid_file_id", "make_fileset", "record_type_for"]

_COMPONENT = re.compile(r"[A-Z0-9_]{1,8}\Z")
_FILE_ID_TAG = 0x00041500
#: Record keys per PS3.3 §F.5 (Tables F.5-1 to F.5-40), as far as they are copied
#: from the referenced files; Specific Character Set goes with any text.
_PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
_STUDY_KEYS = ("StudyDate", "StudyTime", "StudyDescription", "StudyInstanceUID", "StudyID",
               "AccessionNumber")
_SERIES_KEYS = ("Modality", "SeriesInstanceUID", "SeriesNumber")
_INSTANCE_KEYS: dict[str, tuple[str, ...]] = {
    "IMAGE": ("InstanceNumber",),
    "PRESENTATION": ("InstanceNumber", "PresentationCreationDate", "PresentationCreationTime",
                     "ContentLabel", "ContentDescription", "ContentCreatorName"),
    "SR DOCUMENT": ("InstanceNumber", "CompletionFlag", "VerificationFlag", "ContentDate",
                    "ContentTime", "ConceptNameCodeSequence"),
    "KEY OBJECT DOC": ("InstanceNumber", "ContentDate", "ContentTime",
                       "ConceptNameCodeSequence"),
    "ENCAP DOC": ("InstanceNumber", "ContentDate", "ContentTime", "DocumentTitle",
                  "MIMETypeOfEncapsulatedDocument"),
}
_DEFAULT_INSTANCE_KEYS = ("InstanceNumber", "ContentDate", "ContentTime")
#: Type 1 keys (PS3.3 §F.5) given a value when the file has none, as the
#: record would otherwise be invalid: a number counting within the parent.
_INVENTED_NUMBERS = {"StudyID", "SeriesNumber", "InstanceNumber"}

#: Record types by SOP Class keyword (PS3.3 Table F.4-1), matched in order.
_RECORD_TYPES = (
    ("KeyObjectSelection", "KEY OBJECT DOC"),
    ("PresentationState", "PRESENTATION"),
    ("SRStorage", "SR DOCUMENT"),
    ("Waveform", "WAVEFORM"),
    ("Encapsulated", "ENCAP DOC"),
    ("RawData", "RAW DATA"),
    ("SpatialRegistration", "REGISTRATION"),
    ("SpatialFiducials", "FIDUCIAL"),
    ("MRSpectroscopy", "SPECTROSCOPY"),
    ("RTDose", "RT DOSE"),
    ("RTStructureSet", "RT STRUCTURE SET"),
    ("RTIonPlan", "RT PLAN"),
    ("RTPlan", "RT PLAN"),
    ("TreatmentRecord", "RT TREAT RECORD"),
    ("SurfaceSegmentation", "SURFACE"),
    ("RealWorldValueMapping", "VALUE MAP"),
    ("StereometricRelationship", "STEREOMETRIC"),
    ("HangingProtocol", "HANGING PROTOCOL"),
)


def record_type_for(sop_class_uid: str) -> str:
    """The Directory Record Type of an instance of this SOP Class (PS3.3 Table F.4-1);
    IMAGE for image storage and any class the table does not name."""
    entry = UIDS.get(str(sop_class_uid))
    keyword = entry[0] if entry else ""
    for key, record_type in _RECORD_TYPES:
        if key in keyword:
            return record_type
    return "IMAGE"


def is_valid_file_id(components: tuple[str, ...] | list[str]) -> bool:
    """Whether path components make a PS3.10 §8.2 File ID."""
    return 0 < len(components) <= MAX_FILE_ID_COMPONENTS and all(
        _COMPONENT.match(c) for c in components)


@dataclass
class FileSetReport:
    """What :func:`make_fileset` did: the DICOMDIR written, the files it references
    (as File IDs), what was renamed or copied, what was left out and why, and the
    Type 1 keys it had to give a value."""

    dicomdir: Path
    file_ids: list[tuple[str, ...]] = field(default_factory=list)
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    invented: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class _Instance:
    source: Path
    ds: Dataset
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    file_id: tuple[str, ...] = ()


def _files_under(folder: Path) -> list[Path]:
    out = []
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(top, name)
            if path.parent == folder and name == "DICOMDIR":
                continue
            out.append(path)
    return out


def _meta_value(ds: Dataset, keyword: str) -> str:
    meta = ds.file_meta
    value = meta.get(keyword) if meta is not None else None
    return str(value).strip("\0 ") if value else ""


def _load(path: Path, report: FileSetReport) -> _Instance | None:
    try:
        ds = read(path, stop_before_pixels=True)
    except (OSError, DicomfastError) as exc:
        report.skipped.append((path, f"{type(exc).__name__}: {exc}"))
        return None
    sop_class = _meta_value(ds, "MediaStorageSOPClassUID") or str(ds.get("SOPClassUID") or "")
    sop_instance = (_meta_value(ds, "MediaStorageSOPInstanceUID")
                    or str(ds.get("SOPInstanceUID") or ""))
    ts = _meta_value(ds, "TransferSyntaxUID")
    if ds.file_meta is None or not ts:
        # PS3.10 §7: a file of a File-set is a Part 10 file with File Meta.
        report.skipped.append((path, "no File Meta (not a DICOM Part 10 file)"))
        return None
    if sop_class == MEDIA_STORAGE_DIRECTORY_STORAGE:
        report.skipped.append((path, "a DICOMDIR"))
        return None
    missing = [k for k, v in (("SOPClassUID", sop_class), ("SOPInstanceUID", sop_instance),
                              ("StudyInstanceUID", ds.get("StudyInstanceUID")),
                              ("SeriesInstanceUID", ds.get("SeriesInstanceUID"))) if not v]
    if missing:
        report.skipped.append((path, f"no {', '.join(missing)}: the file cannot be placed in "
                                     "the PATIENT/STUDY/SERIES hierarchy"))
        return None
    return _Instance(path, ds, sop_class, sop_instance, ts)


def _copy_keys(target: Dataset, source: Dataset, keys: tuple[str, ...]) -> None:
    charset = source.get("SpecificCharacterSet")
    if charset:
        target.SpecificCharacterSet = charset
    for key in keys:
        if key in source:
            el = source[key]
            target.add_new(el.tag, el.VR, el.value)


def _record(record_type: str) -> Dataset:
    rec = Dataset()
    rec.OffsetOfTheNextDirectoryRecord = 0
    rec.RecordInUseFlag = 0xFFFF
    rec.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    rec.DirectoryRecordType = record_type
    return rec


def _invent(rec: Dataset, keys: tuple[str, ...], number: int, inst: _Instance,
            report: FileSetReport) -> None:
    for key in keys:
        if key in _INVENTED_NUMBERS and not rec.get(key) and rec.get(key) != 0:
            setattr(rec, key, str(number) if key == "StudyID" else number)
            report.invented.append((inst.source, key))
        elif key in ("PatientID",) and not rec.get(key):
            rec.PatientID = f"DF{number:08d}"
            report.invented.append((inst.source, key))


def _patient_key(ds: Dataset) -> tuple[str, str]:
    """Patient ID is the PATIENT record's key (PS3.3 Table F.5-1); a file without
    one is grouped by Patient's Name."""
    pid = str(ds.get("PatientID") or "").strip()
    return (pid, "") if pid else ("", str(ds.get("PatientName") or ""))


def _tree(instances: list[_Instance], report: FileSetReport) -> list[Any]:
    """[(patient record, [(study record, [(series record, [instance record])])])]."""
    patients: dict[tuple[str, str], Any] = {}
    for inst in instances:
        ds = inst.ds
        pkey = _patient_key(ds)
        if pkey not in patients:
            rec = _record("PATIENT")
            _copy_keys(rec, ds, _PATIENT_KEYS)
            _invent(rec, ("PatientID",), len(patients) + 1, inst, report)
            patients[pkey] = (rec, {})
        studies = patients[pkey][1]
        skey = str(ds.StudyInstanceUID)
        if skey not in studies:
            rec = _record("STUDY")
            _copy_keys(rec, ds, _STUDY_KEYS)
            for key in ("StudyDate", "StudyTime"):
                if key not in rec:
                    # Type 1 with no value to copy: written empty rather than made up.
                    rec.add_new(key, "DA" if key == "StudyDate" else "TM", "")
                    report.invented.append((inst.source, key))
            _invent(rec, ("StudyID",), len(studies) + 1, inst, report)
            studies[skey] = (rec, {})
        series = studies[skey][1]
        ekey = str(ds.SeriesInstanceUID)
        if ekey not in series:
            rec = _record("SERIES")
            _copy_keys(rec, ds, _SERIES_KEYS)
            if "Modality" not in rec:
                rec.Modality = "OT"
                report.invented.append((inst.source, "Modality"))
            _invent(rec, ("SeriesNumber",), len(series) + 1, inst, report)
            series[ekey] = (rec, [])
        members = series[ekey][1]
        record_type = record_type_for(inst.sop_class)
        rec = _record(record_type)
        rec.ReferencedFileID = list(inst.file_id)
        rec.ReferencedSOPClassUIDInFile = inst.sop_class
        rec.ReferencedSOPInstanceUIDInFile = inst.sop_instance
        rec.ReferencedTransferSyntaxUIDInFile = inst.transfer_syntax
        keys = _INSTANCE_KEYS.get(record_type, _DEFAULT_INSTANCE_KEYS)
        _copy_keys(rec, ds, keys)
        _invent(rec, ("InstanceNumber",), len(members) + 1, inst, report)
        members.append(rec)
    return [(p, [(s, [(e, members) for e, members in series.values()])
                 for s, series in studies.values()]) for p, studies in patients.values()]


def _generated_ids(instances: list[_Instance], taken: set[tuple[str, ...]]
                   ) -> list[tuple[str, ...]]:
    """Pnnnnnnn/Snnnnnnn/Ennnnnnn/Innnnnnn File IDs by position in the hierarchy,
    avoiding the IDs in `taken`."""
    names: dict[Any, str] = {}     # patient / study / series key -> its component
    counts: dict[Any, int] = {}    # parent key -> children numbered so far
    out = []
    for inst in instances:
        ds = inst.ds
        p = ("P", *_patient_key(ds))
        s = ("S", p, str(ds.StudyInstanceUID))
        e = ("E", s, str(ds.SeriesInstanceUID))
        parts = []
        for key, parent in ((p, None), (s, p), (e, s)):
            if key not in names:
                counts[parent] = counts.get(parent, 0) + 1
                names[key] = f"{key[0]}{counts[parent]:07d}"
            parts.append(names[key])
        while True:
            counts[e] = counts.get(e, 0) + 1
            candidate = (*parts, f"I{counts[e]:07d}")
            if candidate not in taken:
                break
        taken.add(candidate)
        out.append(candidate)
    return out


def _remove_empty_parents(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents up to (not including) `root` while empty: the
    folders a rename left behind, which a File-set should not carry."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty
        folder = folder.parent


def _encode(top: Dataset) -> bytes:
    return to_bytes(top, transfer_syntax=EXPLICIT_VR_LITTLE_ENDIAN)


def build_dicomdir(tree: list[Any], file_set_id: str = "") -> bytes:
    """Encode a DICOMDIR for a record tree as :func:`_tree` makes it, links filled in."""
    flat: list[Dataset] = []
    links: list[tuple[Dataset | None, list[Dataset]]] = []  # (parent or root, its entity)

    # Preorder, iteratively (a deep tree must not exhaust the Python stack).
    stack: list[tuple[list[Any], Dataset | None]] = [(tree, None)]
    while stack:
        level, parent = stack.pop()
        entity = []
        below_all = []
        for node in level:
            rec, below = (node, []) if isinstance(node, Dataset) else node
            entity.append(rec)
            below_all.append((below, rec))
        if entity:
            links.append((parent, entity))
        # Items are written entity by entity; the links, not the order, make the tree.
        flat.extend(entity)
        stack.extend(reversed(below_all))

    top = Dataset()
    top.FileSetID = file_set_id
    top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    top.FileSetConsistencyFlag = 0
    top.DirectoryRecordSequence = Sequence(flat)
    meta = Dataset()
    meta.MediaStorageSOPClassUID = MEDIA_STORAGE_DIRECTORY_STORAGE
    meta.MediaStorageSOPInstanceUID = str(generate_uid())
    meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
    top.file_meta = meta

    # Pass 1: the layout with every offset 0, then each item's file offset.
    first = _encode(top)
    offsets = _item_offsets(first)
    if len(offsets) != len(flat):
        raise DicomfastError("encoded DICOMDIR has a different number of records")
    where = {id(rec): off for rec, off in zip(flat, offsets, strict=True)}
    for parent, entity in links:
        for rec, nxt in zip(entity, [*entity[1:], None], strict=True):
            rec.OffsetOfTheNextDirectoryRecord = where[id(nxt)] if nxt is not None else 0
        if parent is None:
            top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = where[id(entity[0])]
            top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = where[id(entity[-1])]
        else:
            parent.OffsetOfReferencedLowerLevelDirectoryEntity = where[id(entity[0])]
    # Pass 2: the same layout with the offsets filled in.
    final = _encode(top)
    if len(final) != len(first) or _item_offsets(final) != offsets:
        raise DicomfastError("DICOMDIR layout changed between passes")
    return final


def _item_offsets(encoded: bytes) -> list[int]:
    ds = read(encoded)
    index = ds._index
    pos = index.find_top(0x00041220)
    return [index.header_offset(p) for p in index.children(pos)]


def make_fileset(folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 *, file_set_id: str = "") -> FileSetReport:
    """Write a DICOMDIR for the DICOM files under `folder`.

    With `out`, every file is copied into `out` under a generated PS3.10 name and
    `out`/DICOMDIR written; without it, files whose paths are not valid File IDs
    are renamed inside `folder` and `folder`/DICOMDIR written. Files that are not
    DICOM Part 10 files, or lack the UIDs of the hierarchy, are left out and
    listed in the report.
    """
    source = Path(folder)
    if not source.is_dir():
        raise NotADirectoryError(f"{source} is not a folder")
    if file_set_id and (len(file_set_id) > 16 or not re.fullmatch(r"[A-Z0-9_ ]*", file_set_id)):
        raise ValueError("a File-set ID is up to 16 characters A-Z, 0-9, '_' and space "
                         "(PS3.10 §8.2, CS)")
    target = Path(out) if out is not None else source
    report = FileSetReport(dicomdir=target / "DICOMDIR")
    instances = [inst for inst in (_load(p, report) for p in _files_under(source))
                 if inst is not None]
    seen: dict[str, Path] = {}
    unique = []
    for inst in instances:
        if inst.sop_instance in seen:
            # One SOP Instance is one file in a File-set (PS3.10 §8.4).
            report.skipped.append((inst.source, f"same SOP Instance UID as {seen[inst.sop_instance]}"))
            continue
        seen[inst.sop_instance] = inst.source
        unique.append(inst)
    instances = unique
    if out is not None:
        target.mkdir(parents=True, exist_ok=True)
        if (target / "DICOMDIR").exists() or any(target.iterdir()):
            raise FileExistsError(f"{target} is not empty")
        for inst, file_id in zip(instances, _generated_ids(instances, set()), strict=True):
            dest = target.joinpath(*file_id)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(inst.source, dest)
            report.moved.append((inst.source, dest))
            inst.file_id = file_id
    else:
        keep = []
        taken: set[tuple[str, ...]] = set()
        for inst in instances:
            parts = inst.source.relative_to(source).parts
            if is_valid_file_id(parts):
                inst.file_id = parts
                taken.add(parts)
            else:
                keep.append(inst)
        # Rename after every valid ID is known, so that no generated name hits one.
        for inst, file_id in zip(keep, _generated_ids(keep, taken), strict=True):
            dest = source.joinpath(*file_id)
            if dest.exists():
                raise FileExistsError(f"{dest} exists")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(inst.source, dest)
            report.moved.append((inst.source, dest))
            inst.file_id = file_id
            _remove_empty_parents(inst.source.parent, source)
    # Records in a stable order: by the File IDs they get.
    instances.sort(key=lambda i: i.file_id)
    encoded = build_dicomdir(_tree(instances, report), file_set_id)
    report.file_ids = [i.file_id for i in instances]
    write_path = report.dicomdir
    tmp = write_path.with_name(".DICOMDIR.part")
    tmp.write_bytes(encoded)
    os.replace(tmp, write_path)
    return report


def check_fileset(dicomdir: DicomDir) -> list[str]:
    """Problems a File-set reader would meet: File IDs that break PS3.10 §8.2 naming and
    records whose file is missing."""
    problems = []
    for _, rec in dicomdir.walk():
        if rec.file_id:
            if not is_valid_file_id(rec.file_id):
                problems.append(f"{'/'.join(rec.file_id)}: not a PS3.10 File ID")
            if rec.path is not None and not rec.path.is_file():
                problems.append(f"{'/'.join(rec.file_id)}: no such file")
    return problems
