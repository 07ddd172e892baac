"""A local DICOM archive: files under one root folder and a SQLite index of them
(patient / study / series / instance levels, PS3.4 Annex C.6 keys).

Public contract::

    from dicomfast.archive import Archive
    archive = Archive(root, create=True)     # index at root/index.sqlite, files under root
    rec = archive.store(source)              # path, Part 10 bytes or Dataset -> InstanceRecord
    rec = archive.add_file(path)             # index a file already under root
    for row in archive.query("STUDY", {"PatientID": "X*", "StudyDate": ""}): ...
    archive.instances(study_uid=None, series_uid=None, sop_instance_uid=None)
    archive.get_instance(sop_instance_uid)   # InstanceRecord | None

``store`` makes the file durable (temporary file, fsync, atomic rename, folder
fsync) before the index row is committed, so a crash in between leaves at most a
file without a row (which ``dicomfast index`` picks up), never a row without a file.
"""

from dicomfast.archive.index import Archive, ArchiveError, InstanceRecord
from dicomfast.archive.matching import QueryError

__all__ = ["Archive", "ArchiveError", "InstanceRecord", "QueryError"]
