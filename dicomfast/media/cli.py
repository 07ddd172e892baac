"""``dicomfast media ls DICOMDIR`` and ``dicomfast media mkdir FOLDER [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dicomfast.errors import DicomfastError

#: Record keys shown after the record type in `media ls`, per type.
_SHOWN = {
    "PATIENT": ("PatientID", "PatientName"),
    "STUDY": ("StudyDate", "StudyID", "StudyDescription"),
    "SERIES": ("Modality", "SeriesNumber"),
}


def _describe(record: Any) -> str:
    ds = record.dataset
    keys = _SHOWN.get(record.record_type, ("InstanceNumber",))
    words = [f"{k}={ds.get(k)}" for k in keys if ds.get(k) not in (None, "")]
    if record.file_id:
        words.append("/".join(record.file_id))
    return " ".join([record.record_type or "?", *words])


def _ls(args: argparse.Namespace) -> int:
    from dicomfast.media.dicomdir import read_dicomdir

    try:
        dd = read_dicomdir(args.dicomdir)
    except (OSError, DicomfastError) as exc:
        print(f"dicomfast: {args.dicomdir}: {exc}", file=sys.stderr)
        return 1
    print(f"File-set {dd.file_set_id!r}: {args.dicomdir}")
    n = 0
    for depth, record in dd.walk():
        print("  " * (depth + 1) + _describe(record))
        n += 1
    print(f"{n} record(s), {len(dd.files())} file(s) referenced")
    return 0


def _mkdir(args: argparse.Namespace) -> int:
    from dicomfast.media.fileset import make_fileset

    try:
        report = make_fileset(args.folder, args.out, file_set_id=args.file_set_id)
    except (OSError, ValueError, DicomfastError) as exc:
        print(f"dicomfast: {exc}", file=sys.stderr)
        return 1
    for path, why in report.skipped:
        print(f"dicomfast: left out {path}: {why}", file=sys.stderr)
    verb = "copied" if args.out is not None else "renamed"
    print(f"{report.dicomdir}: {len(report.file_ids)} file(s), {len(report.moved)} {verb}, "
          f"{len(report.skipped)} left out")
    return 0


def add_subcommands(sub: Any) -> None:
    """Register ``media ls`` and ``media mkdir`` on the top-level subparsers."""
    p_media = sub.add_parser("media", help="DICOMDIR files of a File-set (PS3.10)")
    media = p_media.add_subparsers(dest="media_command", required=True)
    p_ls = media.add_parser("ls", help="print the record tree of a DICOMDIR")
    p_ls.add_argument("dicomdir")
    p_ls.set_defaults(run=_ls)
    p_mk = media.add_parser("mkdir", help="write a DICOMDIR for a folder of DICOM files")
    p_mk.add_argument("folder")
    p_mk.add_argument("--out", default=None,
                      help="copy the files into this new folder with PS3.10 names; "
                           "without it, files are renamed in place where needed")
    p_mk.add_argument("--file-set-id", default="", help="File-set ID (up to 16 characters)")
    p_mk.set_defaults(run=_mkdir)
