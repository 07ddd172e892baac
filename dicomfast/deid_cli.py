"""``dicomfast deid``: de-identify a folder tree (PS3.15 Annex E Basic Profile)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes (default: one per CPU for batches of "
                        f"{_PROCESS_BATCH}+ files, else 1); they share one UID mapping")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads when one process does the work (default: one per CPU)")
    p.set_defaults(run=run_deid)


# Batches at least this big are shared among processes by default: below it, starting
# them (each imports dicomfast) costs more than it saves.
_PROCESS_BATCH = 256
# Files per task sent to a worker process: enough to make the messages rare, few
# enough that the progress bar moves and the work stays balanced.
_CHUNK = 32


def _outputs(source: Path, target: Path) -> list[tuple[Path, Path]]:
    if source.is_file():
        return [(source, target / source.name)]
    return [(p, target / p.relative_to(source)) for p in sorted(source.rglob("*"))
            if p.is_file() and not p.name.startswith(".")]


class _Batch:
    """What de-identifies files, the same in the main process and in each worker:
    made from plain settings so that a worker can build its own."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        map_path = settings["map"]
        if map_path is not None and Path(map_path).exists():
            self.uid_map = UIDMap.load(map_path, prefix=settings["uid_prefix"],
                                       salt=settings["salt"])
        else:
            self.uid_map = UIDMap(prefix=settings["uid_prefix"], salt=settings["salt"])
        self.deid = Deidentifier(settings["options"], uid_map=self.uid_map,
                                 salt=settings["salt"], burned_in=settings["burned_in"],
                                 compound=settings["compound"])
        self.target = Path(settings["target"])
        self._pool: ThreadPoolExecutor | None = None

    def one(self, pair: tuple[Path, Path]) -> tuple[int, bool, str | None]:
        src, dst = pair
        try:
            if self.settings["rename"]:
                ds = self.deid.deidentify_file(src)
                sop = ds.get("SOPInstanceUID") or ds.file_meta.get("MediaStorageSOPInstanceUID")
                dst = self.target / str(ds.get("StudyInstanceUID") or "study") / str(
                    ds.get("SeriesInstanceUID") or "series") / f"{sop or src.name}.dcm"
                dst.parent.mkdir(parents=True, exist_ok=True)
                ds.save(dst)
            else:
                self.deid.deidentify_file(src, dst)
            return src.stat().st_size, True, None
        except BurnedInAnnotationError as exc:
            return 0, False, f"refused: {exc}"
        except (OSError, DicomfastError, ValueError, AttributeError) as exc:
            return 0, False, f"{src}: {exc}"

    def many(self, pairs: list[tuple[Path, Path]], threads: int
             ) -> list[tuple[int, bool, str | None]]:
        """Several files on `threads` threads (kept for the next call)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(threads, 1))
        return list(self._pool.map(self.one, pairs))


_worker_batch: _Batch | None = None


def _worker_start(settings: dict[str, Any]) -> None:
    global _worker_batch
    _worker_batch = _Batch(settings)
    _worker_batch.uid_map.record_new()


def _worker_chunk(pairs: list[tuple[Path, Path]]
                  ) -> tuple[list[tuple[int, bool, str | None]], list[tuple[str, str]]]:
    """One task in a worker process: its files' outcomes and the UIDs it mapped
    first (the main process saves the whole map)."""
    assert _worker_batch is not None
    outcomes = _worker_batch.many(pairs, 2)  # one file's I/O overlaps another's work
    return outcomes, _worker_batch.uid_map.take_new()


def _in_processes(batch: _Batch, settings: dict[str, Any], pairs: list[tuple[Path, Path]],
                  jobs: int, threads: int,
                  count: Callable[[list[tuple[int, bool, str | None]]], None]) -> None:
    """The files in tasks of _CHUNK on `jobs` worker processes. A worker that ends
    (killed, out of memory) breaks the pool: the tasks not yet reported are then done
    here, where the batch's secret gives every UID the replacement a worker gave it,
    so files a worker wrote before it ended agree with the rest and with the map."""
    chunks = [pairs[k:k + _CHUNK] for k in range(0, len(pairs), _CHUNK)]
    reported = 0
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_start, initargs=(settings,)) as pool:
            for outcomes, uids in pool.map(_worker_chunk, chunks):
                count(outcomes)
                batch.uid_map.update(uids)
                reported += 1
    except BrokenProcessPool as exc:
        print(f"dicomfast deid: a worker process ended ({exc}); its files are done in the "
              "main process", file=sys.stderr)
        for chunk in chunks[reported:]:
            count(batch.many(chunk, threads))
        _remove_orphaned_parts(batch.target)


def _remove_orphaned_parts(target: Path) -> None:
    """Hidden partial outputs (Deidentifier.deidentify_file's ``.NAME.PID-THREAD.part``)
    left by worker processes that no longer run."""
    for part in target.rglob(".*.part"):
        pid = part.name.rsplit(".", 2)[-2].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_deid(args: argparse.Namespace) -> int:
    from dicomfast.progress import Progress

    source, target = Path(args.in_dir), Path(args.out_dir)
    if not source.exists():
        print(f"dicomfast deid: {source} does not exist", file=sys.stderr)
        return 1
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        print("dicomfast deid: OUT_DIR must not be IN_DIR or inside it", file=sys.stderr)
        return 1
    pairs = _outputs(source, target)
    if args.jobs is not None:
        jobs = args.jobs
    else:
        jobs = (os.cpu_count() or 1) if len(pairs) >= _PROCESS_BATCH else 1
    jobs = max(1, min(jobs, (len(pairs) + _CHUNK - 1) // _CHUNK or 1))
    salt = args.salt
    if salt is None and jobs > 1:
        # Every process must map a UID (and a patient's date offset) the same way: a
        # secret made for this run and never kept does that, as random as no salt.
        salt = secrets.token_hex(32)
    settings = {"map": args.map, "uid_prefix": args.uid_prefix, "salt": salt,
                "options": [o.replace("-", "_") for o in args.option],
                "burned_in": args.burned_in, "compound": args.compound,
                "rename": args.rename, "target": str(target)}
    batch = _Batch(settings)  # checks the options before any work starts
    problems: list[str] = []
    failed = 0
    # Warnings (odd encodings, burned-in annotation with --burned-in warn) go to
    # stderr through the warnings machinery, once per kind.
    try:
        with Progress(len(pairs)) as bar:
            def count(outcomes: list[tuple[int, bool, str | None]]) -> None:
                nonlocal failed
                for size, ok, problem in outcomes:
                    bar.advance(size, failed=not ok)
                    if problem:
                        problems.append(problem)
                    failed += not ok

            if jobs == 1:
                with ThreadPoolExecutor(max_workers=max(args.threads, 1)) as pool:
                    for outcome in pool.map(batch.one, pairs):
                        count([outcome])
            else:
                _in_processes(batch, settings, pairs, jobs, args.threads, count)
    finally:
        # Saved whatever happens: the files already written carry these UIDs.
        if args.map is not None:
            batch.uid_map.save(args.map)
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
