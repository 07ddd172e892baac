"""Reading speed: dicomfast vs pydicom on the same files, in the same run.

    pytest benchmarks/bench_read.py --benchmark-enable -p no:cacheprovider

Each group holds the peer and dicomfast; compare the ratio of their means.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from corpus import all_files, find

import dicomfast

pytestmark = pytest.mark.filterwarnings("ignore")


def _small_files() -> list[bytes]:
    """Real files under 64 KiB that both libraries read, loaded once."""
    out = []
    for path in all_files():
        if path.stat().st_size > 64 * 1024:
            continue
        try:
            pydicom.dcmread(path)
            dicomfast.read(path)
        except Exception:
            continue
        out.append(path)
    return out


SMALL = _small_files()


def _walk(ds) -> int:
    """Access every value, nested sequences included (works for both libraries)."""
    n = 0
    for el in ds:
        if el.VR == "SQ":
            for item in el.value:
                n += _walk(item)
        else:
            el.value  # noqa: B018
        n += 1
    return n


@pytest.mark.benchmark(group="header read (stop_before_pixels), small files")
def test_header_pydicom(benchmark):
    benchmark(lambda: [pydicom.dcmread(p, stop_before_pixels=True) for p in SMALL])


@pytest.mark.benchmark(group="header read (stop_before_pixels), small files")
def test_header_dicomfast(benchmark):
    benchmark(lambda: [dicomfast.read(p, stop_before_pixels=True) for p in SMALL])


@pytest.mark.benchmark(group="header read (stop_before_pixels), small files")
def test_header_open_and_read_floor(benchmark):
    def floor():
        for p in SMALL:
            with open(p, "rb") as f:
                f.read()
    benchmark(floor)


@pytest.mark.benchmark(group="full read, no pixel decode, small files")
def test_full_pydicom(benchmark):
    benchmark(lambda: [pydicom.dcmread(p) for p in SMALL])


@pytest.mark.benchmark(group="full read, no pixel decode, small files")
def test_full_dicomfast(benchmark):
    benchmark(lambda: [dicomfast.read(p) for p in SMALL])


@pytest.mark.benchmark(group="read + every value accessed, small files")
def test_all_values_pydicom(benchmark):
    benchmark(lambda: [_walk(pydicom.dcmread(p, stop_before_pixels=True))
                       for p in SMALL])


@pytest.mark.benchmark(group="read + every value accessed, small files")
def test_all_values_dicomfast(benchmark):
    benchmark(lambda: [_walk(dicomfast.read(p, stop_before_pixels=True)) for p in SMALL])


def _large(name: str):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} not in the corpus")
    return path


LE_FILE = "emri_small.dcm"          # 10 frames, 16-bit, explicit VR LE
BE_FILE = "emri_small_big_endian.dcm"


def _np_floor(path, big_endian):
    ds = pydicom.dcmread(path)
    data = ds.PixelData
    dtype = np.dtype(">u2" if big_endian else "<u2")

    def run():
        a = np.frombuffer(data, dtype)
        return a.byteswap() if big_endian else a
    return run


@pytest.mark.benchmark(group="pixel_array, little endian")
def test_pixels_le_numpy_floor(benchmark):
    benchmark(_np_floor(_large(LE_FILE), False))


@pytest.mark.benchmark(group="pixel_array, little endian")
def test_pixels_le_dicomfast(benchmark):
    ds = dicomfast.read(_large(LE_FILE))
    benchmark(lambda: ds.pixel_array)


@pytest.mark.benchmark(group="pixel_array, little endian")
def test_pixels_le_pydicom(benchmark):
    ds = pydicom.dcmread(_large(LE_FILE))
    benchmark(lambda: ds.pixel_array)


@pytest.mark.benchmark(group="read from memory + first pixel_array, little endian")
def test_first_pixels_le_numpy_floor(benchmark):
    data = open(_large(LE_FILE), "rb").read()
    offset = len(data) - 10 * 64 * 64 * 2
    benchmark(lambda: np.frombuffer(data, "<u2", offset=offset).reshape(10, 64, 64))


@pytest.mark.benchmark(group="read from memory + first pixel_array, little endian")
def test_first_pixels_le_dicomfast(benchmark):
    data = open(_large(LE_FILE), "rb").read()
    benchmark(lambda: dicomfast.read(data).pixel_array)


@pytest.mark.benchmark(group="read from memory + first pixel_array, little endian")
def test_first_pixels_le_pydicom(benchmark):
    import io

    data = open(_large(LE_FILE), "rb").read()
    benchmark(lambda: pydicom.dcmread(io.BytesIO(data)).pixel_array)


@pytest.mark.benchmark(group="pixel_array, big endian")
def test_pixels_be_numpy_floor(benchmark):
    benchmark(_np_floor(_large(BE_FILE), True))


@pytest.mark.benchmark(group="pixel_array, big endian")
def test_pixels_be_dicomfast(benchmark):
    ds = dicomfast.read(_large(BE_FILE))
    benchmark(lambda: ds.pixel_array)


@pytest.mark.benchmark(group="pixel_array, big endian")
def test_pixels_be_pydicom(benchmark):
    ds = pydicom.dcmread(_large(BE_FILE))

    def run():
        ds._pixel_array = None  # pydicom caches the array; decode each time
        ds._pixel_id = {}
        return ds.pixel_array
    benchmark(run)
