"""``dicomfast scan``: index folders of DICOM files into a Parquet or CSV table.

    dicomfast scan /data/ct /data/mr --tags PatientID,StudyInstanceUID,Modality \\
        --out index.parquet --threads 8

One row per file (see :mod:`dicomfast.scan`); files that are not DICOM or fail
to read are rows with ``error_type`` and ``error`` set. The table is written as
the scan goes, so any number of files fits in memory.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from dicomfast.progress import Progress
from dicomfast.scan import ScanResult, iter_paths, iter_scan, write_csv, write_parquet

DEFAULT_TAGS = ("PatientID,StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID,Modality,"
                "StudyDate,SeriesDescription,InstanceNumber,Rows,Columns")
_WRITERS = {".parquet": write_parquet, ".pq": write_parquet, ".csv": write_csv}


def add_subcommands(subparsers: Any) -> None:
    """Register ``scan`` with the ``dicomfast`` command line's subparsers."""
    p = subparsers.add_parser(
        "scan", help="index DICOM files into a table (Parquet or CSV)",
        description="Scan files and folders (recursively) into one table: a row per file "
                    "with its path, size, transfer syntax, SOP Class and the chosen tags; "
                    "files that fail are rows with error_type and error.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders and files to scan")
    p.add_argument("--tags", default=DEFAULT_TAGS,
                   help="comma-separated keywords or tags such as (0010,0020) "
                        f"(default: {DEFAULT_TAGS})")
    p.add_argument("--out", required=True,
                   help="the table to write: .parquet (needs pyarrow) or .csv")
    p.add_argument("--threads", type=int, default=None,
                   help="reader threads (default: the number of CPUs, at most 8)")
    p.add_argument("--no-recursive", action="store_true",
                   help="only the files directly in each folder")
    p.add_argument("--force", action="store_true",
                   help="also read files without the DICM prefix as bare data sets")
    p.add_argument("--full", action="store_true",
                   help="read whole files, for tags stored after the pixel data")
    p.set_defaults(handler=run)


class _ScanProgress(Progress):
    """The progress line in files per second, with the count of failures."""

    def update(self, files: int, nbytes: int, failed: int) -> None:
        self.done, self.bytes, self.failed = files, nbytes, failed
        now = time.monotonic()
        if now - self._last > 0.1:
            self._last = now
            self._draw()

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        if self.total:
            width = 30
            filled = int(min(self.done / self.total, 1.0) * width)
            head = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
        else:
            head = f"{self.done}"
        fails = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r{head} files {self.done / elapsed:9.0f} files/s "
                          f"{self.bytes / elapsed / 1e6:7.1f} MB/s {elapsed:6.1f}s{fails}"
                          + ("\n" if final else ""))
        self.stream.flush()


def _tally(batches: Iterator[ScanResult], errors: Counter[str]) -> Iterator[ScanResult]:
    for batch in batches:
        errors.update(t for t in batch.column("error_type") if t is not None)
        yield batch


def run(args: argparse.Namespace, stream: IO[str] | None = None) -> int:
    """Run ``dicomfast scan``; returns the exit status (2 for a usage error)."""
    err = stream or sys.stderr
    suffix = args.out[args.out.rfind("."):].lower() if "." in args.out else ""
    writer = _WRITERS.get(suffix)
    if writer is None:
        print(f"dicomfast scan: --out {args.out!r}: write a .parquet or a .csv file",
              file=err)
        return 2
    # "(0028,0010)" holds a comma of its own: split on the others.
    tags = [t.strip() for t in re.findall(r"(?:\([^)]*\)|[^,])+", args.tags) if t.strip()]
    try:
        next(iter_scan([], tags))  # checks the tags before any work
    except (KeyError, ValueError) as exc:  # not a keyword nor a tag; a sequence
        print(f"dicomfast scan: --tags: {exc}", file=err)
        return 2
    recursive = not args.no_recursive
    # Counting first costs a second walk of the folders; only worth it for the bar.
    show = hasattr(err, "isatty") and err.isatty()
    total = sum(1 for _ in iter_paths(args.paths, recursive)) if show else 0
    errors: Counter[str] = Counter()
    start = time.monotonic()
    bar = _ScanProgress(total, stream=err)
    try:
        with bar:
            batches = iter_scan(args.paths, tags, recursive=recursive, threads=args.threads,
                                stop_before_pixels=not args.full, force=args.force,
                                progress=bar.update)
            rows = writer(_tally(batches, errors), args.out)
    except ImportError as exc:  # .parquet without pyarrow
        print(f"dicomfast scan: {exc}", file=err)
        return 2
    elapsed = max(time.monotonic() - start, 1e-9)
    failed = sum(errors.values())
    kinds = ", ".join(f"{n} {name}" for name, n in errors.most_common())
    print(f"dicomfast scan: {rows} files in {elapsed:.1f}s ({rows / elapsed:.0f} files/s, "
          f"{bar.bytes / 1e6:.1f} MB): {rows - failed} read, {failed} failed"
          f"{' (' + kinds + ')' if kinds else ''} -> {args.out}", file=err)
    return 0
