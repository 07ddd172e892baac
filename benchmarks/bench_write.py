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


# -- transcode to JPEG 2000 lossless --------------------------------------------------------

J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"


def _ct_series_file(tmp_path_factory) -> str:
    """A 12-frame 512 x 512 CT (frames shifted copies of a real slice), uncompressed."""
    import numpy as np
    from corpus import find

    src = find("693_UNCR.dcm") or find("CT_small.dcm")
    ds = pydicom.dcmread(src)
    image = ds.pixel_array
    frames = np.stack([np.roll(image, 5 * k, axis=0) for k in range(12)])
    ds.NumberOfFrames = len(frames)
    ds.PixelData = frames.astype(image.dtype.newbyteorder("<")).tobytes()
    path = tmp_path_factory.mktemp("j2k") / "ct_12_frames.dcm"
    ds.save_as(path, enforce_file_format=True)
    return str(path)


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory):
    return _ct_series_file(tmp_path_factory)


@pytest.mark.parametrize("threads", [1, 2])
def test_transcode_j2k_dicomfast(benchmark, ct_series, threads):
    benchmark.group = "transcode 12 x 512 x 512 CT to JPEG 2000 lossless"
    ds = dicomfast.read(ct_series)
    benchmark.pedantic(lambda: ds.save(io.BytesIO(), transfer_syntax=J2K_LOSSLESS,
                                       threads=threads), rounds=3, iterations=1)


def test_transcode_j2k_pydicom_pylibjpeg(benchmark, ct_series):
    pytest.importorskip("openjpeg")
    benchmark.group = "transcode 12 x 512 x 512 CT to JPEG 2000 lossless"

    def run():
        ds = pydicom.dcmread(ct_series)
        ds.compress(J2K_LOSSLESS, encoding_plugin="pylibjpeg")
        pydicom.dcmwrite(io.BytesIO(), ds)
    benchmark.pedantic(run, rounds=3, iterations=1)
