"""Scanning 20,000 files into a table: dicomfast.scan vs a pydicom loop vs reading the bytes.

    pytest benchmarks/bench_scan.py --benchmark-enable -p no:cacheprovider -s
    python benchmarks/bench_scan.py [N_FILES]      # the same, printed as files/s and ratios

The files are real: the corpus files under 64 KiB that both libraries read, copied
by dicomfast's writer with a new SOP Instance UID and Instance Number each, 100
to a folder like the instances of a series. Ten tags are read from every file:

- dicomfast: ``scan(folder, TAGS, threads=2)`` (and with one thread);
- pydicom: ``dcmread(p, stop_before_pixels=True, specific_tags=TAGS)`` and the
  ten values, file after file;
- the floor: ``os.open`` / ``os.read`` of every whole file / ``os.close``, in one
  thread and in two; the files are in the page cache for everyone.

The target (issue 9): dicomfast at least 30 times the pydicom loop, and within
2 times the floor.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from corpus import all_files  # noqa: E402

import dicomfast  # noqa: E402
from dicomfast.scan import scan  # noqa: E402
from dicomfast.uid import generate_uid  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

N_FILES = 20_000
TAGS = ["PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
        "Modality", "StudyDate", "InstanceNumber", "Rows", "Columns"]
GROUP = f"scan {N_FILES} small files, {len(TAGS)} tags"


def make_files(folder: Path, n: int = N_FILES) -> list[str]:
    """n copies of the small corpus files, each with its own SOP Instance UID."""
    sources = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in all_files():
            if path.stat().st_size > 64 * 1024:
                continue
            try:
                pydicom.dcmread(path)
                ds = dicomfast.read(path)
                if ds.file_meta is None or "SOPInstanceUID" not in ds:
                    continue
                ds.save(folder / "probe.dcm")
            except Exception:
                continue
            sources.append(ds)
        paths = []
        for k in range(n):
            ds = sources[k % len(sources)]
            uid = generate_uid()
            ds.SOPInstanceUID = uid
            ds.file_meta.MediaStorageSOPInstanceUID = uid
            ds.InstanceNumber = k
            sub = folder / f"series{k // 100:04d}"
            if k % 100 == 0:
                sub.mkdir()
            path = sub / f"IM{k:06d}.dcm"
            ds.save(path)
            paths.append(str(path))
    (folder / "probe.dcm").unlink()
    return paths


def floor(paths: list[str]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.read(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)


def floor_threads(paths: list[str], threads: int = 2) -> None:
    chunks = [paths[i:i + 128] for i in range(0, len(paths), 128)]
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(floor, chunks):
            pass


def pydicom_loop(paths: list[str]) -> list[list[object]]:
    rows = []
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=TAGS)
        rows.append([ds.get(k) for k in TAGS])
    return rows


def contenders(folder: Path, paths: list[str]) -> dict[str, Callable[[], object]]:
    return {
        "dicomfast.scan, 2 threads": lambda: scan(folder, TAGS, threads=2),
        "dicomfast.scan, 1 thread": lambda: scan(folder, TAGS, threads=1),
        "pydicom loop": lambda: pydicom_loop(paths),
        "floor: read the bytes, 1 thread": lambda: floor(paths),
        "floor: read the bytes, 2 threads": lambda: floor_threads(paths),
    }


def report(seconds: dict[str, float], n: int, out=sys.stdout) -> None:
    """files/s of each, and the ratios the target is about."""
    print(f"\n{n} files, {len(TAGS)} tags (best of the rounds):", file=out)
    for name, s in seconds.items():
        print(f"  {name:34s} {n / s:10.0f} files/s  {s * 1e6 / n:8.2f} us/file", file=out)
    for ours in ("dicomfast.scan, 2 threads", "dicomfast.scan, 1 thread"):
        if ours not in seconds:
            continue
        t = seconds[ours]
        if "pydicom loop" in seconds:
            print(f"  {ours}: {seconds['pydicom loop'] / t:5.1f}x the pydicom loop", file=out)
        for floor_name in ("floor: read the bytes, 1 thread", "floor: read the bytes, 2 threads"):
            if floor_name in seconds:
                print(f"  {ours}: {t / seconds[floor_name]:5.2f}x the time of the "
                      f"{floor_name[7:]}", file=out)


# -- pytest-benchmark ---------------------------------------------------------------------

RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan-bench")
    paths = make_files(folder)
    floor(paths)  # into the page cache
    return folder, paths


def _run(benchmark, name: str, files, rounds: int) -> None:
    folder, paths = files
    fn = contenders(folder, paths)[name]
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        RESULTS[name] = stats.stats.min


@pytest.mark.benchmark(group=GROUP)
def test_floor_1_thread(benchmark, files):
    _run(benchmark, "floor: read the bytes, 1 thread", files, 5)


@pytest.mark.benchmark(group=GROUP)
def test_floor_2_threads(benchmark, files):
    _run(benchmark, "floor: read the bytes, 2 threads", files, 5)


@pytest.mark.benchmark(group=GROUP)
def test_scan_dicomfast_2_threads(benchmark, files):
    _run(benchmark, "dicomfast.scan, 2 threads", files, 5)


@pytest.mark.benchmark(group=GROUP)
def test_scan_dicomfast_1_thread(benchmark, files):
    _run(benchmark, "dicomfast.scan, 1 thread", files, 5)


@pytest.mark.benchmark(group=GROUP)
def test_scan_pydicom_loop(benchmark, files):
    _run(benchmark, "pydicom loop", files, 1)


def test_report(files):
    if len(RESULTS) < 2:
        pytest.skip("run with --benchmark-enable for the figures")
    report(RESULTS, len(files[1]))


# -- the same scan through Dask ------------------------------------------------------------
# dicomfast.dask.read_table on a LocalCluster of two worker processes (one thread
# each, started before timing) against the single-process scan on two threads:
# what spreading over processes costs (graph, pickling, moving pandas frames) where
# one machine's threads would do, before more machines pay it back.

DASK_GROUP = f"scan {N_FILES} small files, {len(TAGS)} tags, Dask LocalCluster vs one process"
DASK_RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _dask_run(benchmark, name: str, fn) -> None:
    benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        DASK_RESULTS[name] = stats.stats.min


@pytest.mark.benchmark(group=DASK_GROUP)
def test_dask_read_table_2_workers(benchmark, files, dask_client):
    from dicomfast.dask import read_table

    folder, paths = files
    _dask_run(benchmark, "dicomfast.dask.read_table, 2 worker processes",
              lambda: read_table(paths, TAGS, files_per_partition=1000).compute())


@pytest.mark.benchmark(group=DASK_GROUP)
def test_dask_single_process_scan(benchmark, files):
    folder, paths = files
    _dask_run(benchmark, "dicomfast.scan(...).to_pandas(), 2 threads",
              lambda: scan(paths, TAGS, threads=2).to_pandas())


def test_dask_report(files):
    if len(DASK_RESULTS) < 2:
        pytest.skip("run with --benchmark-enable for the figures")
    n = len(files[1])
    for name, s in DASK_RESULTS.items():
        print(f"  {name:48s} {n / s:10.0f} files/s")
    one = DASK_RESULTS["dicomfast.scan(...).to_pandas(), 2 threads"]
    two = DASK_RESULTS["dicomfast.dask.read_table, 2 worker processes"]
    print(f"  Dask on 2 workers: {one / two:5.2f}x the single-process scan's speed")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_FILES
    rounds = int(os.environ.get("ROUNDS", "5"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        paths = make_files(folder, n)
        print(f"wrote {n} files in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        floor(paths)
        best: dict[str, float] = {}
        # Interleaved rounds, so that a busy moment of the machine hits every contender.
        for r in range(rounds):
            for name, fn in contenders(folder, paths).items():
                if name == "pydicom loop" and r >= 2:
                    continue  # slow; two rounds are plenty
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time.perf_counter()
                    fn()
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
        report(best, n)


if __name__ == "__main__":
    main()
