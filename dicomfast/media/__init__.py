"""DICOM media: reading and writing DICOMDIR files of a File-set (PS3.10, PS3.3 Annex F).

    >>> from dicomfast.media import read_dicomdir
    >>> for depth, record in read_dicomdir("/media/cdrom/DICOMDIR").walk():
    ...     print("  " * depth, record.record_type, record.path)
"""

from dicomfast.media.dicomdir import (
    DicomDir,
    Record,
    check_file_id,
    parse_dicomdir,
    read_dicomdir,
    resolve_file_id,
)
from dicomfast.media.fileset import (
    FileSetReport,
    build_dicomdir,
    check_fileset,
    is_valid_file_id,
    make_fileset,
    record_type_for,
)

__all__ = [
    "DicomDir",
    "FileSetReport",
    "Record",
    "build_dicomdir",
    "check_file_id",
    "check_fileset",
    "is_valid_file_id",
    "make_fileset",
    "parse_dicomdir",
    "read_dicomdir",
    "record_type_for",
    "resolve_file_id",
]
