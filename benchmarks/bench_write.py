"""Writing speed: dicomfast vs pydicom dcmwrite, same files, same syntax, same run.

    pytest benchmarks/bench_write.py --benchmark-enable -p no:cacheprovider
"""

from __future__ import annotations

import io

import pydicom
import pytest
from corpus import all_files

import dicomfast

pytestmark = pytest.mark.filterwarnings("ignore")


def _pairs():
    out = []
    for path in all_files():
        if path.stat().st_size > 1 << 20:
            continue
        try:
            ours = dicomfast.read(path)
            theirs = pydicom.dcmread(path)
            if not ours.get("SOPInstanceUID"):
                continue
            ours.save(io.BytesIO())
            pydicom.dcmwrite(io.BytesIO(), theirs)
        except Exception:
            continue
        out.append((ours, theirs))
    return out


PAIRS = _pairs()


@pytest.mark.benchmark(group="write, same syntax, corpus files under 1 MiB")
def test_write_pydicom(benchmark):
    benchmark(lambda: [pydicom.dcmwrite(io.BytesIO(), t) for _, t in PAIRS])


@pytest.mark.benchmark(group="write, same syntax, corpus files under 1 MiB")
def test_write_dicomfast(benchmark):
    benchmark(lambda: [o.save(io.BytesIO()) for o, _ in PAIRS])


@pytest.mark.benchmark(group="edit one value then write, corpus files under 1 MiB")
def test_edit_write_pydicom(benchmark):
    def run():
        for _, t in PAIRS:
            t.PatientID = "EDITED"
            pydicom.dcmwrite(io.BytesIO(), t)
    benchmark(run)


@pytest.mark.benchmark(group="edit one value then write, corpus files under 1 MiB")
def test_edit_write_dicomfast(benchmark):
    def run():
        for o, _ in PAIRS:
            o.PatientID = "EDITED"
            o.save(io.BytesIO())
    benchmark(run)
