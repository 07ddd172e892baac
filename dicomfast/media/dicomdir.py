"""Reading a DICOMDIR (PS3.10 §8, PS3.3 Annex F Basic Directory IOD).

A DICOMDIR is one data set whose Directory Record Sequence (0004,1220) holds
every directory record as an item. The hierarchy is not the item order: it is
given by byte offsets, counted from the first byte of the file (the preamble),
to the item tag of another record (PS3.3 §F.3.2.2):

- (0004,1200) the first record of the root directory entity (PATIENT records,
  usually), (0004,1202) the last one;
- (0004,1400) in each record, the next record of the same entity, 0 at the end;
- (0004,1420) in each record, the first record of its lower-level entity
  (STUDY under PATIENT, SERIES under STUDY, IMAGE under SERIES), 0 when none.

The links are followed, not the item order; an offset that does not land on an
item of the sequence, or one that comes back to a record already visited (a
cycle), is a MalformedDataError: a damaged or hostile DICOMDIR ends the walk,
never loops.

Referenced File IDs (0004,1500) name files relative to the folder that holds the
DICOMDIR, one value per path component (PS3.10 §8.5). Components that could
leave that folder ('..', absolute paths, separators, drive letters) are refused,
and a resolved path must stay under the media root, symbolic links included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import InvalidDicomError, MalformedDataError, UnsupportedTransferSyntaxError
from dicomfast.part10 import read

__all__ = ["DicomDir", "Record", "read_dicomdir", "check_file_id"]

MEDIA_STORAGE_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"

_ROOT_FIRST = 0x00041200
_ROOT_LAST = 0x00041202
_RECORD_SEQUENCE = 0x00041220
_NEXT = 0x00041400
_IN_USE = 0x00041410
_LOWER = 0x00041420
_FILE_ID = 0x00041500
#: PS3.10 §8.2: at most 8 components in a File ID.
MAX_FILE_ID_COMPONENTS = 8
#: Characters no component may hold on any file system: a component is one name.
_UNSAFE = re.compile(r"[/\\:\x00-\x1f]")


@dataclass(eq=False)
class Record:
    """One directory record: its type, its item data set and its lower-level records.

    ``offset`` is the file offset of the record's item, the value other records'
    links hold. ``file_id`` is the Referenced File ID as path components (empty
    when the record references no file); ``path`` the file it names under the
    media root (None when none).
    """

    record_type: str
    dataset: Dataset
    offset: int
    in_use: bool = True
    file_id: tuple[str, ...] = ()
    path: Path | None = None
    children: list[Record] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        # Record keys read as the item's attributes: record.PatientID.
        if name[:1].isupper():
            return getattr(self.dataset, name)
        raise AttributeError(name)

    def walk(self) -> Iterator[tuple[int, Record]]:
        """(depth, record) for this record and every record below it, preorder."""
        stack: list[tuple[int, Record]] = [(0, self)]
        while stack:
            depth, rec = stack.pop()
            yield depth, rec
            stack.extend((depth + 1, c) for c in reversed(rec.children))

    def __repr__(self) -> str:
        ref = f" {'/'.join(self.file_id)}" if self.file_id else ""
        return f"<Record {self.record_type} @{self.offset}{ref}: {len(self.children)} below>"


@dataclass(eq=False)
class DicomDir:
    """A DICOMDIR read by :func:`read_dicomdir`.

    ``records`` are the root entity's records (PATIENT, usually), in link order,
    with their lower levels in ``Record.children``. Inactive records (Record
    In-use Flag 0000H) are left out with their subtrees.
    """

    path: Path | None
    root: Path | None
    dataset: Dataset
    records: list[Record]

    @property
    def file_set_id(self) -> str:
        return str(self.dataset.get("FileSetID") or "")

    def walk(self) -> Iterator[tuple[int, Record]]:
        """(depth, record) for every record, preorder, depth 0 at the root entity."""
        for rec in self.records:
            yield from rec.walk()

    def files(self) -> list[Path]:
        """The paths of every referenced file, in walk order."""
        return [r.path for _, r in self.walk() if r.path is not None]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __repr__(self) -> str:
        n = sum(1 for _ in self.walk())
        return f"<DicomDir {self.file_set_id!r}: {len(self.records)} root record(s), {n} in all>"


def check_file_id(value: Any) -> tuple[str, ...]:
    """A Referenced File ID as components, refusing any that could leave the media root.

    Case and length are not enforced on reading (some writers break the PS3.10
    §8.2 naming rules harmlessly); only what is unsafe as a path is an error.
    """
    if value is None or value == "":
        return ()
    parts = [value] if isinstance(value, str) else list(value)
    if len(parts) > MAX_FILE_ID_COMPONENTS:
        raise MalformedDataError(f"Referenced File ID has {len(parts)} components, PS3.10 "
                                 f"§8.2 allows {MAX_FILE_ID_COMPONENTS}", tag=_FILE_ID)
    out = []
    for part in parts:
        text = str(part).strip()
        if text in ("", ".", "..") or _UNSAFE.search(text) or os.path.isabs(text):
            raise MalformedDataError(f"Referenced File ID component {text!r} is not a plain "
                                     "file or folder name", tag=_FILE_ID)
        out.append(text)
    return tuple(out)


def resolve_file_id(root: Path, components: tuple[str, ...]) -> Path:
    """The file a File ID names under `root`, which must stay under it once links are
    resolved."""
    path = root.joinpath(*components)
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise MalformedDataError(f"Referenced File ID {'/'.join(components)!r} resolves to "
                                 f"{real}, outside the media root {real_root}", tag=_FILE_ID)
    return path


def _value(ds: Dataset, tag: int) -> Any:
    return ds[tag].value if tag in ds else None


def _link(ds: Dataset, tag: int) -> int:
    value = _value(ds, tag)
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MalformedDataError(f"directory offset {value!r} is not a number", tag=tag) from None


def _items_by_offset(ds: Dataset) -> dict[int, Dataset]:
    """The items of the Directory Record Sequence by the file offset of their item tag."""
    index = ds._index
    if index is None:
        raise InvalidDicomError("the DICOMDIR was not read from encoded bytes")
    pos = index.find_top(_RECORD_SEQUENCE)
    if pos < 0:
        raise InvalidDicomError("no Directory Record Sequence (0004,1220): not a DICOMDIR")
    items = ds[_RECORD_SEQUENCE].value
    positions = index.children(pos)
    if len(items) != len(positions):  # a sequence stored as UN has no file offsets
        raise MalformedDataError("Directory Record Sequence items have no file offsets",
                                 tag=_RECORD_SEQUENCE)
    return {index.header_offset(p): item for p, item in zip(positions, items, strict=True)}


def parse_dicomdir(ds: Dataset, root: Path | None = None, *, path: Path | None = None,
                   check_files: bool = True) -> DicomDir:
    """Build the record tree of a DICOMDIR data set read by :func:`dicomfast.read`.

    `root` is the folder File IDs are relative to (that of the DICOMDIR file);
    with None, file IDs are checked but not resolved to paths. `check_files`
    also checks that resolved paths stay under `root` through symbolic links.
    """
    ts = getattr(ds, "transfer_syntax", None)
    if ts is not None and ts.is_deflated:
        # The offsets count bytes of the file, which a deflated data set does not have.
        raise UnsupportedTransferSyntaxError("a DICOMDIR is never deflated (PS3.10 §8.6); "
                                             "its offsets would not be file offsets")
    by_offset = _items_by_offset(ds)
    seen: set[int] = set()

    def chain(first: int, link_tag: int) -> list[Record]:
        """The records of one entity, from its first record along the next links."""
        out: list[Record] = []
        off, tag = first, link_tag
        while off:
            item = by_offset.get(off)
            if item is None:
                raise MalformedDataError(f"directory offset {off} does not point at a "
                                         "directory record", offset=off, tag=tag)
            if off in seen:
                raise MalformedDataError(f"directory record at offset {off} is linked to "
                                         "twice (a cycle)", offset=off, tag=tag)
            seen.add(off)
            in_use = _value(item, _IN_USE)
            file_id = check_file_id(_value(item, _FILE_ID))
            rec = Record(record_type=str(item.get("DirectoryRecordType") or "").strip(),
                         dataset=item, offset=off,
                         in_use=in_use is None or int(in_use) != 0, file_id=file_id)
            if root is not None and file_id:
                rec.path = (resolve_file_id(root, file_id) if check_files
                            else root.joinpath(*file_id))
            out.append(rec)
            off, tag = _link(item, _NEXT), _NEXT
        return out

    # Breadth by entity, iteratively: a deep chain of lower-level links cannot
    # exhaust the Python stack, and `seen` bounds the work by the number of items.
    top = chain(_link(ds, _ROOT_FIRST), _ROOT_FIRST)
    pending = list(top)
    while pending:
        rec = pending.pop()
        rec.children = chain(_link(rec.dataset, _LOWER), _LOWER)
        pending.extend(rec.children)
    last = _link(ds, _ROOT_LAST)
    if last and (not top or last not in by_offset):
        raise MalformedDataError(f"offset of the last root record {last} does not point at a "
                                 "directory record", offset=last, tag=_ROOT_LAST)

    def active(records: list[Record]) -> list[Record]:
        return [r for r in records if r.in_use]

    stack = [top]
    while stack:
        level = stack.pop()
        level[:] = active(level)
        stack.extend(r.children for r in level)
    return DicomDir(path=path, root=root, dataset=ds, records=top)


def read_dicomdir(source: str | os.PathLike[str], *, check_files: bool = True) -> DicomDir:
    """Read a DICOMDIR file and walk its records (PS3.3 Annex F).

    File IDs resolve against the DICOMDIR's folder. Raises InvalidDicomError for
    a file that is not a DICOMDIR, MalformedDataError for broken or hostile links
    and unsafe File IDs.
    """
    path = Path(source)
    ds = read(path)
    sop_class = None
    if ds.file_meta is not None:
        sop_class = ds.file_meta.get("MediaStorageSOPClassUID")
    if sop_class is not None and str(sop_class) != MEDIA_STORAGE_DIRECTORY_STORAGE:
        raise InvalidDicomError(f"{path}: Media Storage SOP Class {sop_class} is not "
                                "Media Storage Directory Storage")
    return parse_dicomdir(ds, path.parent, path=path, check_files=check_files)
