"""``dicomfast deid``: de-identify a folder tree (PS3.15 Annex E Basic Profile)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dicomfast.deid import OPTIONS
from dicomfast.deid_batch import PROCESS_BATCH, PROCESS_CPUS, deidentify_folder


def add_subcommands(subparsers: Any) -> None:
    """Register ``deid`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "deid", help="de-identify a folder of DICOM files (PS3.15 Basic Profile)",
        description="Apply the PS3.15 Annex E Basic Application Level Confidentiality "
                    "Profile to every DICOM file under IN_DIR, writing OUT_DIR with the "
                    "same relative paths (or, with --rename, paths made of the new UIDs). "
                    "Only headers are rewritten: pixel data is copied as stored. Files "
                    "with Burned In Annotation YES are refused unless --burned-in says "
                    "otherwise.")
    p.add_argument("in_dir")
    p.add_argument("out_dir")
    p.add_argument("--option", action="append", default=[], metavar="NAME",
                   choices=[o.replace("_", "-") for o in OPTIONS],
                   help="a profile option (repeatable): " + ", ".join(
                       o.replace("_", "-") for o in OPTIONS))
    p.add_argument("--map", metavar="CSV",
                   help="UID map: read first when it exists (earlier batches), then saved "
                        "with this batch's UIDs added")
    p.add_argument("--salt", default=os.environ.get("DICOMFAST_DEID_SALT"),
                   help="secret for deterministic UIDs and date offsets (default: "
                        "$DICOMFAST_DEID_SALT; without one they are random)")
    p.add_argument("--uid-prefix", default=None, help="root for new UIDs (default 2.25.)")
    p.add_argument("--rename", action="store_true",
                   help="name outputs STUDY/SERIES/SOP.dcm by the new UIDs (folder and file "
                        "names of the input can identify patients)")
    p.add_argument("--burned-in", choices=("refuse", "warn", "ignore"), default="refuse",
                   help="files with Burned In Annotation YES (default: refuse)")
    p.add_argument("--compound", choices=("conformant", "remove"), default="conformant",
                   help="compound actions such as X/Z/D: keep a valid dummy or remove")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="processes at work, this one and N-1 workers (default: one per CPU for batches of "
                        f"{PROCESS_BATCH}+ files on machines of {PROCESS_CPUS}+ CPUs, "
                        "else 1); they share one UID mapping")
    p.add_argument("--threads", type=int, default=None,
                   help="threads in each process (default 1; more may pay on storage that is "
                        "slow to answer, such as a network file system)")
    p.set_defaults(run=run_deid)


def run_deid(args: argparse.Namespace) -> int:
    try:
        result = deidentify_folder(
            args.in_dir, args.out_dir, [o.replace("-", "_") for o in args.option],
            map_path=args.map, salt=args.salt, uid_prefix=args.uid_prefix,
            rename=args.rename, burned_in=args.burned_in, compound=args.compound,
            jobs=args.jobs, threads=args.threads, progress=True)
    except ValueError as exc:
        print(f"dicomfast deid: {exc}", file=sys.stderr)
        return 1
    for problem in result.problems:
        print(f"dicomfast deid: {problem}", file=sys.stderr)
    for warning in result.warnings:
        print(f"dicomfast deid: warning: {warning}", file=sys.stderr)
    total = result.done + result.failed
    print(f"dicomfast deid: {result.done} of {total} files de-identified into {args.out_dir}"
          + (f" ({result.warned} with warnings)" if result.warned else ""), file=sys.stderr)
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dicomfast")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
