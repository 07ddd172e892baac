"""RLE Lossless decoding: dicomfast vs pylibjpeg-rle, python-gdcm and pydicom.

    pytest benchmarks/bench_rle.py --benchmark-enable -p no:cacheprovider

One group per file: the corpus's RLE files plus, when DCMTK's dcmcrle is
installed, RLE versions of larger uncompressed corpus images made at start-up.
Every member decodes the same frames, split from the file before timing, so
only decoding is timed. Each member produces the frames the way its API is
meant to be used:

* dicomfast decodes a single frame into a new array, and several frames
  into one new array in one call (as ``Dataset.frame()`` / ``Dataset.frames()``
  do), little endian and pixel-interleaved;
* pylibjpeg-rle's ``decode_frame`` (the Rust function under
  ``rle.utils.decode_pixel_data``) returns a new bytearray per frame,
  colour-by-plane;
* python-gdcm decodes a ``gdcm.Image`` built around each frame beforehand;
* pydicom's pure-Python decoder returns a new bytearray per frame, colour-by-plane.

Compare each group's means; the decoded size is in ``extra_info["bytes"]``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import all_files, find
from peers import gdcm_image_for
from pydicom.encaps import generate_frames

from dicomfast._native import _rle

pytestmark = pytest.mark.filterwarnings("ignore")

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
# Uncompressed images re-encoded with dcmcrle: larger and more varied than the
# corpus's RLE files (CT, MR, a radiograph, ultrasound RGB).
DCMCRLE_SOURCES = ["CT_small.dcm", "693_UNCR.dcm", "MR2_UNCR.dcm", "RG1_UNCR.dcm",
                   "US1_UNCR.dcm", "examples_rgb_color.dcm"]
_TMP = tempfile.TemporaryDirectory(prefix="bench_rle_")


class Case:
    def __init__(self, name: str, path: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
        self.name = name
        self.path = path
        self.ds = ds
        self.rows, self.cols = int(ds.Rows), int(ds.Columns)
        self.spp, self.bits = int(ds.SamplesPerPixel), int(ds.BitsAllocated)
        self.n = int(ds.get("NumberOfFrames") or 1)
        self.frames = [bytes(f) for f in generate_frames(ds.PixelData,
                                                         number_of_frames=self.n)]
        self.frame_bytes = self.rows * self.cols * self.spp * self.bits // 8
        self.dtype = np.dtype(f"<u{self.bits // 8}")

    @property
    def group(self) -> str:
        return (f"RLE decode: {self.name} ({self.rows}x{self.cols}x{self.spp}, "
                f"{self.bits} bits, {self.n} frame{'s' if self.n > 1 else ''})")


def _cases() -> list[Case]:
    out, seen = [], set()
    for path in all_files():
        if path.name in seen:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                meta = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if str(meta.file_meta.get("TransferSyntaxUID", "")) == RLE_LOSSLESS:
            seen.add(path.name)
            out.append(Case(path.name, path))
    dcmcrle = shutil.which("dcmcrle")
    for name in DCMCRLE_SOURCES if dcmcrle else []:
        src = find(name)
        if src is None:
            continue
        dst = Path(_TMP.name) / f"{src.stem}_dcmcrle.dcm"
        subprocess.run([dcmcrle, str(src), str(dst)], check=True, capture_output=True)
        out.append(Case(dst.name, dst))
    return out


CASES = _cases()
IDS = [c.name for c in CASES]


def _run(benchmark, case: Case, fn):
    benchmark.group = case.group
    benchmark.extra_info["bytes"] = case.frame_bytes * case.n
    benchmark(fn)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dicomfast(benchmark, case):
    decode, frames, dtype = _rle.decode, case.frames, case.dtype
    geom = (case.rows, case.cols, case.spp, case.bits)
    shape = (case.n, case.rows, case.cols, case.spp)
    first = frames[0]

    def one():  # a new array for the frame (the codec makes it)
        return decode(first, None, *geom)

    # Dataset.frames(): one array, and one call decoding every frame from the
    # file's buffer (here the frames laid end to end, as fragments lie in a file).
    joined = b"".join(frames)
    spans, pos = [], 0
    for frame in frames:
        spans.append((pos, len(frame)))
        pos += len(frame)

    def many():
        out = np.empty(shape, dtype)
        _rle.decode_spans(joined, spans, out, *geom)
        return out

    _run(benchmark, case, one if case.n == 1 else many)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pylibjpeg_rle(benchmark, case):
    from rle.rle import decode_frame

    frames, pixels, bits = case.frames, case.rows * case.cols, case.bits
    _run(benchmark, case, lambda: [decode_frame(f, pixels, bits, "<") for f in frames])




@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gdcm(benchmark, case):
    pytest.importorskip("gdcm")
    images = [gdcm_image_for(case, f, "RLELossless") for f in case.frames]
    # GetBuffer decodes the frame every time it is called.
    _run(benchmark, case, lambda: [image.GetBuffer() for image in images])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pydicom(benchmark, case):
    from pydicom.pixels.decoders.rle import _rle_decode_frame

    frames = case.frames
    geom = (case.rows, case.cols, case.spp, case.bits)
    _run(benchmark, case, lambda: [_rle_decode_frame(f, *geom) for f in frames])


# -- batch decode on threads: our own 2-thread figure against our 1-thread one ----------

def _multi_frame_case() -> Case | None:
    """A 16-frame 512 x 512 CT series in one RLE file (frames shifted copies of a
    real slice), large enough that threads have work to share."""
    src = find("693_UNCR.dcm") or find("CT_small.dcm")
    if src is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(src)
    image = ds.pixel_array.astype("<u2" if ds.PixelRepresentation == 0 else "<i2")
    rows, cols = image.shape
    frames = [_rle.encode(np.roll(image, 7 * k, axis=1).tobytes(), rows, cols, 1, 16)
              for k in range(16)]
    ds.NumberOfFrames = len(frames)
    ds.PixelData = pydicom.encaps.encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLE_LOSSLESS
    dst = Path(_TMP.name) / "ct_16_frames_rle.dcm"
    ds.save_as(dst, enforce_file_format=True)
    return Case(dst.name, dst)


MULTI = [c for c in [_multi_frame_case()] if c is not None]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", MULTI, ids=[c.name for c in MULTI])
def test_dicomfast_frames_threads(benchmark, case, threads):
    """Dataset.frames(threads=N) on a multi-frame file: the whole path, file buffer to array."""
    import dicomfast

    ds = dicomfast.read(case.path)
    ds.frames()  # split the fragments once, as any second call finds them
    benchmark.group = f"RLE frames(threads=N): {case.name} ({case.n} frames)"
    benchmark.extra_info["bytes"] = case.frame_bytes * case.n
    benchmark(lambda: ds.frames(threads=threads))
