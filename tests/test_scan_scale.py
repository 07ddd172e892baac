"""dicomfast.scan at scale: 100,000 files scanned in flat memory.

The files are hard links to 50 small corpus files, in 100 folders of 1,000. The
streamed scan must give every row (the values of the file each link names) while
the memory it holds stays that of a few batches: the Python allocations traced
over 100,000 files stay those of 10,000, and the process's resident set grows by
less than a bound far below what keeping the rows would take. The peak RSS is
reported (``-s``, or the junit property).
"""

from __future__ import annotations

import os
import resource
import sys
import tracemalloc

import pytest
from corpus import all_files

from dicomfast.scan import iter_scan, scan

pytestmark = [pytest.mark.filterwarnings("ignore::dicomfast.errors.DicomfastWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TAGS = ["PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID",
        "SOPInstanceUID", "Modality", "StudyDate", "Rows", "Columns", "InstanceNumber"]
N = 100_000
FOLDERS = 100
SOURCES = 50


def _rss() -> int:
    """The resident set size now (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    sources = [p for p in all_files() if p.stat().st_size < 64 * 1024][:SOURCES]
    assert len(sources) == SOURCES
    folder = tmp_path_factory.mktemp("scale") / "many"
    for k in range(FOLDERS):
        (folder / f"{k:03d}").mkdir(parents=True)
    for k in range(N):
        os.link(sources[k % SOURCES], folder / f"{k % FOLDERS:03d}" / f"{k:06d}.dcm")
    return folder, sources


def _stream(paths, expected, check_every: int = 1):
    """Scan `paths` in batches; (rows, failed, traced peak bytes, peak RSS growth),
    checking each `check_every`-th row against the row of its source file."""
    rss_start = _rss()
    rss_peak = rss_start
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        rows = failed = 0
        for batch in iter_scan(paths, TAGS, threads=2, batch_size=2000):
            assert len(batch) <= 2000
            for i, row in enumerate(batch):
                if i % check_every == 0:
                    k = int(os.path.basename(row["path"])[:-4])
                    want = expected[k % SOURCES]
                    assert {t: row[t] for t in TAGS} == want, row["path"]
            rows += len(batch)
            failed += batch.n_errors
            rss_peak = max(rss_peak, _rss())
        traced = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return rows, failed, traced, rss_peak - rss_start


def test_100000_files_in_flat_memory(many, record_property):
    folder, sources = many
    reference = scan([str(p) for p in sources], TAGS, threads=1)
    expected = [{t: row[t] for t in TAGS} for row in reference]
    failing = [e is not None for e in reference.column("error_type")]
    bad = sum(1 for k in range(N) if failing[k % SOURCES])
    # Folder f holds the links k with k % FOLDERS == f.
    bad_10k = sum(1 for k in range(N) if k % FOLDERS < FOLDERS // 10 and failing[k % SOURCES])

    tenth = sorted(folder.iterdir())[:FOLDERS // 10]
    rows, failed, traced_10k, _ = _stream(tenth, expected)
    assert (rows, failed) == (N // 10, bad_10k)
    rows, failed, traced, rss_growth = _stream(folder, expected, check_every=7)
    record_property("scan_10000_traced_peak_bytes", traced_10k)
    record_property("scan_100000_traced_peak_bytes", traced)
    record_property("scan_100000_rss_growth_bytes", rss_growth)
    record_property("scan_100000_peak_rss_bytes", resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(f"\n100,000 files: traced peak {traced / 2**20:.1f} MiB (10,000 files: "
          f"{traced_10k / 2**20:.1f} MiB); RSS growth {rss_growth / 2**20:.1f} MiB")
    assert rows == N and failed == bad
    # Flat: ten times the files, not ten times the memory. Keeping the rows would
    # take over 20 MiB of Python objects (paths alone are 100,000 strings).
    assert traced < 1.5 * traced_10k + 2**20
    assert traced < 16 * 2**20
    assert rss_growth < 48 * 2**20
