"""The archive: DICOM files under one root folder, indexed in SQLite.

The index (``ROOT/index.sqlite``, WAL mode, one connection per thread) has one
table per query/retrieve level (patients, studies, series, instances; the keys of
:mod:`dicomfast.archive.keys`), each instance row naming its file by a path
relative to the root, its transfer syntax and size.

Durability order (what a crash may leave): the file is written to a temporary
name in its final folder, fsynced, renamed into place, and the folder fsynced;
only then is the index row committed. A crash before the commit leaves a file the
index does not list (``dicomfast index`` adds it); never a row naming a file that
is not there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicomfast.archive import keys as K
from dicomfast.archive.matching import QueryError, is_universal, match_value, sql_match, vr_of
from dicomfast.atomic import fsync_folder, write_file
from dicomfast.dataset import Dataset, Sequence
from dicomfast.errors import DicomfastError, InvalidDicomError
from dicomfast.part10 import read

__all__ = ["Archive", "ArchiveError", "InstanceRecord", "QueryError"]

INDEX_NAME = "index.sqlite"
_UID_CHARS = frozenset("0123456789.")


class ArchiveError(DicomfastError):
    """The archive cannot store or index an object (it lacks its UIDs, would land
    outside the root, is not DICOM)."""


@dataclass
class InstanceRecord:
    """One indexed instance."""
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    transfer_syntax_uid: str
    size: int


def _uid_filters(study_uid: str | None, series_uid: str | None,
                 sop_instance_uid: str | None) -> tuple[list[str], list[str]]:
    """SQL conditions on the instances table (alias i) for the UIDs given, and their
    parameters."""
    where, params = [], []
    for col, value in (("i.StudyInstanceUID", study_uid), ("i.SeriesInstanceUID", series_uid),
                       ("i.SOPInstanceUID", sop_instance_uid)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    return where, params


def _valid_uid(uid: str) -> bool:
    return (0 < len(uid) <= 64 and set(uid) <= _UID_CHARS and not uid.startswith(".")
            and not uid.endswith(".") and ".." not in uid)


def _text(value: Any) -> str:
    """An element value as index text: multiple values joined with '\\'."""
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return ""
    if isinstance(value, (list, tuple)):
        return "\\".join(_text(v) for v in value)
    return str(value)


def _items(value: Any) -> list[dict[str, Any]]:
    """A sequence one level deep: its items' keyword -> text (nested sequences left out)."""
    out = []
    for item in value or ():
        row = {}
        for el in item:
            kw = el.keyword
            if kw and el.VR != "SQ":
                try:
                    row[kw] = _text(el.value)
                except DicomfastError:
                    continue
        out.append(row)
    return out


def dataset_values(ds: Dataset) -> dict[str, Any]:
    """The index keys of one data set (text, or item lists for sequences)."""
    values: dict[str, Any] = {}
    for kw in K.ALL_KEYS:
        if kw not in ds:
            continue
        try:
            value = ds[kw].value
        except DicomfastError:
            continue
        if kw in K.SEQUENCE_KEYS:
            if isinstance(value, (list, Sequence)):
                values[kw] = _items(value)
        else:
            values[kw] = _text(value)
    return values


def read_header(source: Any) -> Dataset:
    """The data set up to its pixel data, for indexing: oddities the reader warns
    about (a cut value, a wrong VR form) do not keep an object out of the archive."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read(source, stop_before_pixels=True)


def durable_write(dest: Path, data: Any, *, fsync: bool = True) -> None:
    """Write `data` at `dest` so that, once this returns, it survives a crash: a
    temporary file in the same folder, fsync, atomic rename, fsync of the folder (and
    of the parents of folders created on the way)."""
    created = []
    parent = dest.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_file(dest, [data], fsync=fsync)
    if fsync:
        for folder in created:
            fsync_folder(folder.parent)


def _schema() -> str:
    def cols(level: str, skip_first: bool) -> str:
        kws = K.LEVEL_KEYS[level][1 if skip_first else 0:]
        return "".join(f', "{kw}" TEXT NOT NULL DEFAULT \'\'' for kw in kws)

    return f"""
    CREATE TABLE IF NOT EXISTS patients (pk INTEGER PRIMARY KEY,
        "PatientID" TEXT NOT NULL UNIQUE{cols("PATIENT", True)});
    CREATE TABLE IF NOT EXISTS studies ("StudyInstanceUID" TEXT PRIMARY KEY,
        patient_pk INTEGER NOT NULL{cols("STUDY", True)});
    CREATE TABLE IF NOT EXISTS series ("SeriesInstanceUID" TEXT PRIMARY KEY,
        "StudyInstanceUID" TEXT NOT NULL{cols("SERIES", True)});
    CREATE TABLE IF NOT EXISTS instances ("SOPInstanceUID" TEXT PRIMARY KEY,
        "SeriesInstanceUID" TEXT NOT NULL, "StudyInstanceUID" TEXT NOT NULL,
        path TEXT NOT NULL, transfer_syntax_uid TEXT NOT NULL, size INTEGER NOT NULL
        {cols("IMAGE", True)});
    CREATE INDEX IF NOT EXISTS studies_patient ON studies(patient_pk);
    CREATE INDEX IF NOT EXISTS studies_date ON studies("StudyDate");
    CREATE INDEX IF NOT EXISTS studies_accession ON studies("AccessionNumber");
    CREATE INDEX IF NOT EXISTS series_study ON series("StudyInstanceUID");
    CREATE INDEX IF NOT EXISTS instances_series ON instances("SeriesInstanceUID");
    CREATE INDEX IF NOT EXISTS instances_study ON instances("StudyInstanceUID");
    """


# Computed keys (PS3.4 §C.3.4) as correlated subqueries.
_COMPUTED_SQL = {
    "NumberOfPatientRelatedStudies": "(SELECT COUNT(*) FROM studies x WHERE x.patient_pk = p.pk)",
    "NumberOfPatientRelatedSeries": "(SELECT COUNT(*) FROM series x JOIN studies y ON "
                                    "x.StudyInstanceUID = y.StudyInstanceUID "
                                    "WHERE y.patient_pk = p.pk)",
    "NumberOfPatientRelatedInstances": "(SELECT COUNT(*) FROM instances x JOIN studies y ON "
                                       "x.StudyInstanceUID = y.StudyInstanceUID "
                                       "WHERE y.patient_pk = p.pk)",
    "ModalitiesInStudy": "(SELECT group_concat(DISTINCT x.Modality) FROM series x "
                         "WHERE x.StudyInstanceUID = st.StudyInstanceUID)",
    "SOPClassesInStudy": "(SELECT group_concat(DISTINCT x.SOPClassUID) FROM instances x "
                         "WHERE x.StudyInstanceUID = st.StudyInstanceUID)",
    "NumberOfStudyRelatedSeries": "(SELECT COUNT(*) FROM series x "
                                  "WHERE x.StudyInstanceUID = st.StudyInstanceUID)",
    "NumberOfStudyRelatedInstances": "(SELECT COUNT(*) FROM instances x "
                                     "WHERE x.StudyInstanceUID = st.StudyInstanceUID)",
    "NumberOfSeriesRelatedInstances": "(SELECT COUNT(*) FROM instances x "
                                      "WHERE x.SeriesInstanceUID = se.SeriesInstanceUID)",
}
_JOINS = {
    "PATIENT": "patients p",
    "STUDY": "studies st JOIN patients p ON p.pk = st.patient_pk",
    "SERIES": "series se JOIN studies st ON st.StudyInstanceUID = se.StudyInstanceUID "
              "JOIN patients p ON p.pk = st.patient_pk",
    "IMAGE": "instances i JOIN series se ON se.SeriesInstanceUID = i.SeriesInstanceUID "
             "JOIN studies st ON st.StudyInstanceUID = i.StudyInstanceUID "
             "JOIN patients p ON p.pk = st.patient_pk",
}
_UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
           "IMAGE": "SOPInstanceUID"}
_MULTI_VALUED = frozenset(["ModalitiesInStudy", "SOPClassesInStudy"])


def _as_text(value: Any) -> Any:
    """A returned value as matching sees it: counts as text, lists and items kept."""
    return str(value) if isinstance(value, int) else value


def normalize_identifier(identifier: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword -> query text ('' = return key) or, for sequences, a list of items."""
    out: dict[str, Any] = {}
    for kw, value in identifier.items():
        vr = vr_of(kw)
        if vr == "SQ":
            if value in (None, ""):
                out[kw] = []
            elif isinstance(value, Mapping):
                out[kw] = [normalize_identifier(value)]
            else:
                out[kw] = [normalize_identifier(item) for item in value]
        else:
            out[kw] = _text(value).strip() if vr != "PN" else _text(value).strip(" ")
    return out


def _out_value(kw: str, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, int):
        return raw
    if kw in K.SEQUENCE_KEYS:
        return json.loads(raw) if raw else []
    if raw == "":
        return None
    if kw in _MULTI_VALUED:
        return sorted(set(v for v in raw.split(",") if v))
    if "\\" in raw:
        return raw.split("\\")
    return raw


class Archive:
    """Files under `root`, indexed in ``root/index.sqlite``. ``fsync=False`` skips the
    fsyncs (tests on throw-away folders)."""

    def __init__(self, root: str | os.PathLike, *, create: bool = True, fsync: bool = True):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            if not create:
                raise ArchiveError(f"no archive at {self.root}")
            self.root.mkdir(parents=True)
        self.index_path = self.root / INDEX_NAME
        if not create and not self.index_path.exists():
            raise ArchiveError(f"no archive index at {self.index_path}")
        self.fsync = fsync
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(_schema())

    # -- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.index_path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'OFF'}")
            conn.create_function("dfmatch", 3, sql_match, deterministic=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- storing and indexing ------------------------------------------------------
    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved == self.root or not resolved.is_relative_to(self.root):
            raise ArchiveError(f"{path} is outside the archive root {self.root}")
        return resolved

    def store(self, source: str | os.PathLike | bytes | bytearray | memoryview | Dataset, *,
              transfer_syntax: str | None = None) -> InstanceRecord:
        """Write an object under the root (``STUDY/SERIES/SOP.dcm``, made durable) and
        then commit its index row. `source`: a file path, Part 10 bytes or a Dataset;
        `transfer_syntax` re-encodes it first."""
        if isinstance(source, Dataset):
            ds = source
            data = ds.to_bytes(transfer_syntax=transfer_syntax)
        else:
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)
            else:
                with open(source, "rb") as f:
                    data = f.read()
            if data[128:132] != b"DICM":
                raise InvalidDicomError("not a Part 10 file (no 'DICM' prefix)")
            if transfer_syntax is not None:
                full = read(data)
                ts = getattr(full, "transfer_syntax", None)
                if ts is None or ts.uid != transfer_syntax:
                    data = full.to_bytes(transfer_syntax=transfer_syntax)
        ds = read_header(data)
        sop, study, series = (_text(ds[k].value if k in ds else "")
                              for k in ("SOPInstanceUID", "StudyInstanceUID",
                                        "SeriesInstanceUID"))
        for name, uid in (("SOP Instance", sop), ("Study Instance", study),
                          ("Series Instance", series)):
            # The UIDs become path components: digits and dots only, so no separator,
            # '..' or device name can get through (PS3.5 §9.1).
            if not _valid_uid(uid):
                raise ArchiveError(f"{name} UID {uid!r} is missing or not a valid UID")
        dest = self._inside(self.root / study / series / f"{sop}.dcm")
        durable_write(dest, data, fsync=self.fsync)
        return self._index_dataset(ds, dest, len(data))

    def add_file(self, path: str | os.PathLike) -> InstanceRecord:
        """Index a file already under the root (e.g. one a storage SCP wrote)."""
        p = self._inside(Path(path))
        ds = read_header(p)
        return self._index_dataset(ds, p, p.stat().st_size)

    def _index_dataset(self, ds: Dataset, path: Path, size: int) -> InstanceRecord:
        values = dataset_values(ds)
        ts = getattr(ds, "transfer_syntax", None)
        values["_ts"] = ts.uid if ts is not None else ""
        if not values.get("SOPClassUID") and ds.file_meta is not None \
                and "MediaStorageSOPClassUID" in ds.file_meta:
            values["SOPClassUID"] = _text(ds.file_meta.MediaStorageSOPClassUID)
        values["_path"] = str(path.relative_to(self.root))
        values["_size"] = size
        for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            if not values.get(kw):
                raise ArchiveError(f"{path}: no {kw}")
        self.index_rows([values])
        return self._record(values)

    def _record(self, v: Mapping[str, Any]) -> InstanceRecord:
        return InstanceRecord(self.root / v["_path"], v.get("SOPClassUID", ""),
                              v["SOPInstanceUID"], v["SeriesInstanceUID"],
                              v["StudyInstanceUID"], v.get("PatientID", ""), v["_ts"],
                              int(v["_size"]))

    def index_rows(self, rows: Iterable[Mapping[str, Any]], *, replace: bool = False) -> int:
        """Upsert instances given as {keyword: text, '_path', '_ts', '_size'} in one
        transaction; values already indexed are kept where a new one is empty.
        ``replace``: empty the index first, in the same transaction."""
        conn = self._conn()
        n = 0
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if replace:
                    for table in ("instances", "series", "studies", "patients"):
                        conn.execute(f"DELETE FROM {table}")
                for v in rows:
                    self._upsert(conn, v)
                    n += 1
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return n

    @staticmethod
    def _cell(v: Mapping[str, Any], kw: str) -> str:
        value = v.get(kw, "")
        if kw in K.SEQUENCE_KEYS:
            return json.dumps(value, ensure_ascii=False) if value else ""
        return value if isinstance(value, str) else _text(value)

    def _upsert(self, conn: sqlite3.Connection, v: Mapping[str, Any]) -> None:
        def upsert(table: str, head: list[tuple[str, Any]], kws: tuple[str, ...],
                   conflict: str) -> None:
            names = [h for h, _ in head] + [f'"{k}"' for k in kws]
            params = [x for _, x in head] + [self._cell(v, k) for k in kws]
            sets = ", ".join(
                f"{n} = excluded.{n}" if not n.startswith('"') else
                f"{n} = COALESCE(NULLIF(excluded.{n}, ''), {table}.{n})" for n in names[1:])
            conn.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                         f"({', '.join('?' * len(names))}) ON CONFLICT({conflict}) "
                         f"DO UPDATE SET {sets}", params)

        pid = self._cell(v, "PatientID")
        upsert("patients", [('"PatientID"', pid)], K.PATIENT_KEYS[1:], '"PatientID"')
        pk = conn.execute('SELECT pk FROM patients WHERE "PatientID" = ?', (pid,)).fetchone()[0]
        upsert("studies", [('"StudyInstanceUID"', v["StudyInstanceUID"]), ("patient_pk", pk)],
               K.STUDY_KEYS[1:], '"StudyInstanceUID"')
        upsert("series", [('"SeriesInstanceUID"', v["SeriesInstanceUID"]),
                          ('"StudyInstanceUID"', v["StudyInstanceUID"])],
               K.SERIES_KEYS[1:], '"SeriesInstanceUID"')
        upsert("instances", [('"SOPInstanceUID"', v["SOPInstanceUID"]),
                             ('"SeriesInstanceUID"', v["SeriesInstanceUID"]),
                             ('"StudyInstanceUID"', v["StudyInstanceUID"]),
                             ("path", v["_path"]), ("transfer_syntax_uid", v.get("_ts", "")),
                             ("size", int(v.get("_size", 0)))],
               K.IMAGE_KEYS[1:], '"SOPInstanceUID"')

    def remove_instance(self, sop_instance_uid: str) -> bool:
        """Drop an instance's row (the file stays); emptied series and studies go too."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute('DELETE FROM instances WHERE "SOPInstanceUID" = ?',
                                   (sop_instance_uid,))
                conn.execute('DELETE FROM series WHERE "SeriesInstanceUID" NOT IN '
                             '(SELECT "SeriesInstanceUID" FROM instances)')
                conn.execute('DELETE FROM studies WHERE "StudyInstanceUID" NOT IN '
                             '(SELECT "StudyInstanceUID" FROM series)')
                conn.execute("DELETE FROM patients WHERE pk NOT IN "
                             "(SELECT patient_pk FROM studies)")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return cur.rowcount > 0

    # -- reading -------------------------------------------------------------------
    def instances(self, study_uid: str | None = None, series_uid: str | None = None,
                  sop_instance_uid: str | None = None) -> list[InstanceRecord]:
        where, params = _uid_filters(study_uid, series_uid, sop_instance_uid)
        sql = ('SELECT i.path, i.SOPClassUID, i.SOPInstanceUID, i.SeriesInstanceUID, '
               'i.StudyInstanceUID, p.PatientID, i.transfer_syntax_uid, i.size '
               'FROM instances i JOIN studies st ON st.StudyInstanceUID = i.StudyInstanceUID '
               'JOIN patients p ON p.pk = st.patient_pk')
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY i.rowid"
        rows = self._conn().execute(sql, params).fetchall()
        return [InstanceRecord(self.root / r[0], *r[1:]) for r in rows]

    def representative(self, study_uid: str, series_uid: str | None = None,
                       sop_instance_uid: str | None = None) -> InstanceRecord | None:
        """The image that stands for a study, series or instance (a thumbnail's): of
        the images (instances with Rows), the lowest-numbered series' middle one by
        Instance Number; None when there is no image."""
        where, params = _uid_filters(study_uid, series_uid, sop_instance_uid)
        where.append("i.Rows != ''")
        sql = ('SELECT i.path, i.SOPClassUID, i.SOPInstanceUID, i.SeriesInstanceUID, '
               'i.StudyInstanceUID, p.PatientID, i.transfer_syntax_uid, i.size, '
               'CAST(se.SeriesNumber AS INTEGER), CAST(i.InstanceNumber AS INTEGER) '
               'FROM instances i JOIN series se ON se.SeriesInstanceUID = i.SeriesInstanceUID '
               'JOIN studies st ON st.StudyInstanceUID = i.StudyInstanceUID '
               'JOIN patients p ON p.pk = st.patient_pk WHERE ' + " AND ".join(where) +
               ' ORDER BY 9, i.SeriesInstanceUID, 10, i.rowid')
        rows = self._conn().execute(sql, params).fetchall()
        if not rows:
            return None
        first = [r for r in rows if r[3] == rows[0][3]]
        r = first[(len(first) - 1) // 2]
        return InstanceRecord(self.root / r[0], *r[1:8])

    def get_instance(self, sop_instance_uid: str) -> InstanceRecord | None:
        found = self.instances(sop_instance_uid=sop_instance_uid)
        return found[0] if found else None

    def query(self, level: str, identifier: Mapping[str, Any], *,
              model: str = "study") -> Iterator[dict[str, Any]]:
        """C-FIND matching (PS3.4 §C.2.2.2, :mod:`dicomfast.archive.matching`) at a
        level (PATIENT, STUDY, SERIES, IMAGE) of the Patient Root (``model="patient"``)
        or Study Root (``"study"``) information model.

        Yields one dict per matching entity: the identifier's keys (and the unique
        keys of the level and those above) with their values: str, a list of str for
        several values, int for the computed counts, a list of {keyword: str} items
        for sequences, None when empty or not known to the archive."""
        level = level.upper()
        if level not in K.LEVELS:
            raise QueryError(f"unknown query/retrieve level {level!r}")
        if model not in ("study", "patient"):
            raise QueryError(f"unknown information model {model!r}")
        if model == "study" and level == "PATIENT":
            raise QueryError("the Study Root model has no PATIENT level (PS3.4 §C.6.2)")
        ident = normalize_identifier(identifier)
        ident.pop("QueryRetrieveLevel", None)
        ident.pop("SpecificCharacterSet", None)
        depth = K.LEVELS.index(level)
        chain = K.LEVELS[:depth + 1]
        wanted = dict(ident)
        for lv in chain[1:] if model == "study" else chain:
            wanted.setdefault(_UNIQUE[lv], "")
        select: list[str] = []
        out_keys: list[str] = []
        where: list[str] = []
        params: list[Any] = []
        post: dict[str, Any] = {}
        for kw, q in wanted.items():
            lv = K.KEY_LEVEL.get(kw) or K.COMPUTED.get(kw)
            if lv is None or lv not in chain:
                continue  # not kept, or below the query level: returned empty
            if kw in K.COMPUTED:
                select.append(_COMPUTED_SQL[kw])
                out_keys.append(kw)
                if not is_universal(q):
                    post[kw] = q
                continue
            col = f'{K.ALIASES[lv]}."{kw}"'
            select.append(col)
            out_keys.append(kw)
            if is_universal(q):
                continue
            vr = vr_of(kw)
            if kw in K.SEQUENCE_KEYS:
                post[kw] = q
            elif vr == "UI":
                uids = [u.strip() for u in q.split("\\") if u.strip()]
                where.append(f"{col} IN ({', '.join('?' * len(uids))})")
                params.extend(uids)
            elif (vr != "PN" and "\\" not in q and not (vr in ("DA", "TM", "DT") and "-" in q)
                  and not ("*" in q or "?" in q) and vr not in ("TM", "DT")
                  and kw not in ("OtherPatientIDs", "OtherPatientNames", "ImageType",
                                 "NameOfPhysiciansReadingStudy", "OperatorsName",
                                 "PerformingPhysicianName")):
                where.append(f"{col} = ?")
                params.append(q)
            else:
                where.append(f"dfmatch(?, ?, {col})")
                params.extend((vr, q))
        sql = f"SELECT {', '.join(select) or '1'} FROM {_JOINS[level]}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        cur = self._conn().execute(sql, params)
        missing = [kw for kw in ident if kw not in out_keys]
        for row in cur:
            result = {kw: _out_value(kw, raw) for kw, raw in zip(out_keys, row, strict=True)}
            if post and not all(match_value(vr_of(kw), q, _as_text(result.get(kw)))
                                for kw, q in post.items()):
                continue
            for kw in missing:
                result[kw] = None
            yield result

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM instances").fetchone()[0]
