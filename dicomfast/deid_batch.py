"""De-identifying a folder tree: the files shared among threads, or among worker
processes that map every UID the same way (``dicomfast deid`` runs this).

    >>> result = deidentify_folder("in", "out", map_path="uids.csv", jobs=8)
    >>> result.done, result.failed, result.problems[:3], result.warnings[:3]

What a file's reading or de-identification warns about (a value cut short by the
file's end, Burned In Annotation kept with ``burned_in="warn"``) comes back with
that file's outcome as ``PATH: message`` (:mod:`dicomfast.file_warnings`).
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomfast import file_warnings
from dicomfast.deid import (
    BurnedInAnnotationError,
    DeidentificationWarning,
    Deidentifier,
    UIDMap,
)
from dicomfast.errors import DicomfastError

__all__ = ["PROCESS_BATCH", "PROCESS_CPUS", "FolderResult", "deidentify_folder"]

#: Batches at least this big are shared among processes by default: below it, starting
#: them (each imports dicomfast) costs more than it saves.
PROCESS_BATCH = 256
#: ... and only on machines with at least this many CPUs: two processes on 2 CPUs
#: measured 1.6x one (10,000 files, on tmpfs and on ext4).
PROCESS_CPUS = 2
# Files per task sent to a worker process: enough to make the messages rare, few
# enough that the progress bar moves and the work stays balanced.
_CHUNK = 32
# Tasks queued per worker. This process tops the queues up only between its own
# tasks (each as long as a worker's), so a worker that had only one more queued
# waited for it about half of its time; the executor's own thread hands a worker
# its next task from a deeper queue at once. The cost is at most this many tasks
# left to a worker when this process runs out of its own.
_QUEUED = 4
# A file's outcome: bytes read, written or not, the problem, its warnings.
_Outcome = tuple[int, bool, "str | None", "list[str] | None"]


def _outputs(source: Path, target: Path) -> list[tuple[str, str]]:
    """(input, output) paths of the files under `source`, hidden ones excepted, in
    order. The folders are listed with scandir, whose entries tell files from
    folders without a stat per file (10,000 files: 10 ms, Path.rglob 150 ms)."""
    if source.is_file():
        return [(str(source), str(target / source.name))]
    root, out = str(source), str(target)
    pairs = []
    folders = [root]
    while folders:  # a stack, not recursion: no depth limit
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif not entry.name.startswith(".") and entry.is_file():
                    # Regular files and links to them: never a FIFO or a device,
                    # whose open would wait or read forever.
                    pairs.append((entry.path, out + entry.path[len(root):]))
    pairs.sort()
    return pairs


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

    def one(self, pair: tuple[str, str]) -> _Outcome:
        src, dst = pair
        with file_warnings.kept() as found:
            try:
                if self.settings["rename"]:
                    self.deid.write_deidentified(src, lambda ds: self._renamed(ds, src))
                else:
                    self.deid.write_deidentified(src, dst)
                outcome: _Outcome = (os.stat(src).st_size, True, None, None)
            except BurnedInAnnotationError as exc:
                outcome = (0, False, f"refused: {exc}", None)
            except (OSError, DicomfastError, ValueError, AttributeError) as exc:
                outcome = (0, False, f"{src}: {exc}", None)
        if found:  # (a message may name the file already)
            outcome = (*outcome[:3], [text if text.startswith(f"{src}: ") else f"{src}: {text}"
                                      for text in found])
        return outcome

    def _renamed(self, ds: Any, src: str) -> Path:
        """STUDY/SERIES/SOP.dcm of the new UIDs under the target."""
        sop = ds.get("SOPInstanceUID") or ds.file_meta.get("MediaStorageSOPInstanceUID")
        return self.target / str(ds.get("StudyInstanceUID") or "study") / str(
            ds.get("SeriesInstanceUID") or "series") / f"{sop or os.path.basename(src)}.dcm"

    def each(self, pairs: list[tuple[str, str]]) -> Iterator[_Outcome]:
        """The files' outcomes in order, as they are done here or on the settings'
        `threads` threads (the pool is kept for the next call)."""
        threads = self.settings["threads"]
        if threads <= 1:
            # One file after another: on a local disk, threads lose more to handing
            # results and the GIL back and forth than they gain by overlapping one
            # file's system calls with another's Python work (10,000 files: 1.3x
            # the time of this loop with one pool thread, 1.2x with two).
            return map(self.one, pairs)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=threads)
        return self._pool.map(self.one, pairs)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


_worker_batch: _Batch | None = None


def _worker_start(settings: dict[str, Any]) -> None:
    global _worker_batch
    file_warnings.collect()
    _worker_batch = _Batch(settings)
    _worker_batch.uid_map.record_new()


def _worker_chunk(pairs: list[tuple[str, str]]
                  ) -> tuple[list[_Outcome], list[tuple[str, str]]]:
    """One task in a worker process: its files' outcomes and the UIDs it mapped
    first (the main process saves the whole map)."""
    assert _worker_batch is not None
    outcomes = list(_worker_batch.each(pairs))
    return outcomes, _worker_batch.uid_map.take_new()


@contextmanager
def _workers_blas_on_one_thread() -> Iterator[None]:
    """OPENBLAS_NUM_THREADS=1 for the worker processes started meanwhile (a spawned
    process takes this process's environment as it starts). A worker imports numpy
    and does no linear algebra; without this its OpenBLAS starts a thread per core,
    so N workers on N cores start N x N threads, more than some containers allow.
    A value the user set is kept."""
    if "OPENBLAS_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)


def _in_processes(batch: _Batch, settings: dict[str, Any], pairs: list[tuple[str, str]],
                  jobs: int,
                  count: Callable[[list[_Outcome]], None]) -> None:
    """The files in tasks of _CHUNK, shared by `jobs` - 1 worker processes and this
    one. This process works from the start, while the workers start (each starts an
    interpreter and imports dicomfast: a few tenths of a second, a tenth of a
    10,000-file batch on 2 CPUs), and takes a task whenever each worker has
    _QUEUED queued. A worker that ends (killed, out of memory) breaks the pool: the tasks
    not yet reported are then done here, where the batch's secret gives every UID
    the replacement a worker gave it, so files a worker wrote before it ended agree
    with the rest and with the map."""
    tasks = deque(pairs[k:k + _CHUNK] for k in range(0, len(pairs), _CHUNK))
    workers = jobs - 1
    queued: dict[Future[Any], list[tuple[str, str]]] = {}
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start, initargs=(settings,))
    try:
        with _workers_blas_on_one_thread():  # workers start as tasks are queued
            while tasks or queued:
                while tasks and len(queued) < _QUEUED * workers:
                    task = tasks.popleft()
                    queued[pool.submit(_worker_chunk, task)] = task
                for future in [f for f in queued if f.done()]:
                    outcomes, uids = future.result()
                    del queued[future]
                    count(outcomes)
                    batch.uid_map.update(uids)
                if tasks:
                    count(list(batch.each(tasks.popleft())))
                elif queued:
                    wait(queued, return_when=FIRST_COMPLETED)
    except BrokenProcessPool as exc:
        warnings.warn(f"a worker process ended ({exc}); its files are done in the main "
                      "process", DeidentificationWarning, stacklevel=2)
        for task in [*queued.values(), *tasks]:
            for outcome in batch.each(task):
                count([outcome])
        _remove_orphaned_parts(batch.target)
    finally:
        pool.shutdown(cancel_futures=True)


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


@dataclass
class FolderResult:
    """What :func:`deidentify_folder` did: files written, files not written (each
    with a line in `problems`), the warnings of the files' work (``PATH: message``,
    each file's in order), and the batch's UID map."""

    done: int
    failed: int
    problems: list[str] = field(default_factory=list)
    uid_map: UIDMap | None = None
    warnings: list[str] = field(default_factory=list)
    warned: int = 0


def deidentify_folder(source: str | os.PathLike, target: str | os.PathLike,
                      options: Iterable[str] = (), *, map_path: str | os.PathLike | None = None,
                      salt: str | None = None, uid_prefix: str | None = None,
                      rename: bool = False, burned_in: str = "refuse",
                      compound: str = "conformant", jobs: int | None = None,
                      threads: int | None = None, progress: bool = False) -> FolderResult:
    """De-identify every file under `source` (hidden ones excepted) into `target`,
    mirroring relative paths, or with `rename` as STUDY/SERIES/SOP.dcm of the new UIDs.

    `map_path`: a UID map read first when it exists and saved at the end, however
    the run ends (the files already written carry its UIDs). `jobs`: processes at
    work, this one and `jobs` - 1 workers (default: one per CPU for batches of 256+
    files on machines of 2+ CPUs, else 1); `threads`: threads in each process
    (default 1: on a local disk, threads lose more to handing the GIL back and forth
    than they gain; they may pay where storage is slow to answer, as on a network
    file system). `progress` shows a bar on a terminal's stderr. Files that cannot
    be de-identified are counted in `failed` and described in `problems`; what the
    files' work warned about is in `warnings`, and the files that had warnings are
    counted in `warned`. ValueError for a missing `source` or a `target` inside it."""
    from dicomfast.progress import Progress

    source, target = Path(source), Path(target)
    if not source.exists():
        raise ValueError(f"{source} does not exist")
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        raise ValueError("the output folder must not be the input folder or inside it")
    pairs = _outputs(source, target)
    if jobs is None:
        cpus = os.cpu_count() or 1
        jobs = cpus if len(pairs) >= PROCESS_BATCH and cpus >= PROCESS_CPUS else 1
    jobs = max(1, min(jobs, (len(pairs) + _CHUNK - 1) // _CHUNK or 1))
    threads = max(1, threads or 1)
    if salt is None and jobs > 1:
        # Every process must map a UID (and a patient's date offset) the same way: a
        # secret made for this run and never kept does that, as random as no salt.
        salt = secrets.token_hex(32)
    settings = {"map": None if map_path is None else str(map_path), "uid_prefix": uid_prefix,
                "salt": salt, "options": list(options), "burned_in": burned_in,
                "compound": compound, "rename": rename, "target": str(target),
                "threads": threads}
    batch = _Batch(settings)  # checks the options before any work starts
    result = FolderResult(0, 0, uid_map=batch.uid_map)
    try:
        with Progress(len(pairs)) as bar, file_warnings.collecting():
            bar.enabled = bar.enabled and progress

            def count(outcomes: list[_Outcome]) -> None:
                for size, ok, problem, warned in outcomes:
                    bar.advance(size, failed=not ok)
                    if problem:
                        result.problems.append(problem)
                    if warned:
                        result.warnings.extend(warned)
                        result.warned += 1
                    result.done += ok
                    result.failed += not ok

            if jobs == 1:
                for outcome in batch.each(pairs):
                    count([outcome])
            else:
                _in_processes(batch, settings, pairs, jobs, count)
    finally:
        batch.close()
        # Saved whatever happens: the files already written carry these UIDs.
        if map_path is not None:
            batch.uid_map.save(map_path)
    return result
