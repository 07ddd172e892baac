"""``dicomfast deid``: de-identify a folder tree (PS3.15 Annex E Basic Profile)."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dicomfast.deid import OPTIONS, BurnedInAnnotationError, Deidentifier, UIDMap
from dicomfast.errors import DicomfastError


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
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.set_defaults(run=run_deid)


def _outputs(source: Path, target: Path) -> list[tuple[Path, Path]]:
    if source.is_file():
        return [(source, target / source.name)]
    return [(p, target / p.relative_to(source)) for p in sorted(source.rglob("*"))
            if p.is_file() and not p.name.startswith(".")]


def run_deid(args: argparse.Namespace) -> int:
    from dicomfast.progress import Progress

    source, target = Path(args.in_dir), Path(args.out_dir)
    if not source.exists():
        print(f"dicomfast deid: {source} does not exist", file=sys.stderr)
        return 1
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        print("dicomfast deid: OUT_DIR must not be IN_DIR or inside it", file=sys.stderr)
        return 1
    map_path = Path(args.map) if args.map else None
    if map_path is not None and map_path.exists():
        uid_map = UIDMap.load(map_path, prefix=args.uid_prefix, salt=args.salt)
    else:
        uid_map = UIDMap(prefix=args.uid_prefix, salt=args.salt)
    deid = Deidentifier([o.replace("-", "_") for o in args.option], uid_map=uid_map,
                        salt=args.salt, burned_in=args.burned_in, compound=args.compound)
    pairs = _outputs(source, target)
    problems: list[str] = []

    def one(pair: tuple[Path, Path]) -> tuple[int, bool, str | None]:
        src, dst = pair
        try:
            if args.rename:
                ds = deid.deidentify_file(src)
                sop = ds.get("SOPInstanceUID") or ds.file_meta.get("MediaStorageSOPInstanceUID")
                dst = target / str(ds.get("StudyInstanceUID") or "study") / str(
                    ds.get("SeriesInstanceUID") or "series") / f"{sop or src.name}.dcm"
                dst.parent.mkdir(parents=True, exist_ok=True)
                ds.save(dst)
            else:
                deid.deidentify_file(src, dst)
            return src.stat().st_size, True, None
        except BurnedInAnnotationError as exc:
            return 0, False, f"refused: {exc}"
        except (OSError, DicomfastError, ValueError, AttributeError) as exc:
            return 0, False, f"{src}: {exc}"

    # Warnings (odd encodings, burned-in annotation with --burned-in warn) go to
    # stderr through the warnings machinery, once per kind.
    failed = 0
    with Progress(len(pairs)) as bar, ThreadPoolExecutor(max_workers=max(args.threads, 1)) as pool:
        for size, ok, problem in pool.map(one, pairs):
            bar.advance(size, failed=not ok)
            if problem:
                problems.append(problem)
            failed += not ok
    if map_path is not None:
        uid_map.save(map_path)
    for problem in problems:
        print(f"dicomfast deid: {problem}", file=sys.stderr)
    done = len(pairs) - failed
    print(f"dicomfast deid: {done} of {len(pairs)} files de-identified into {target}",
          file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dicomfast")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
