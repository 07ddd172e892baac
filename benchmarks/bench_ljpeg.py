"""JPEG Lossless decoding: dicomfast vs pylibjpeg-libjpeg, python-gdcm and imagecodecs.

    pytest benchmarks/bench_ljpeg.py --benchmark-enable -p no:cacheprovider

One group per file: the corpus's JPEG Lossless files (1.2.840.10008.1.2.4.57 and
.70) plus, when DCMTK's dcmcjpeg is installed, larger uncompressed corpus images
encoded at start-up (SV1, and predictor 7). Every member decodes the same frames,
split from the file before timing, so only decoding is timed:

* dicomfast decodes each frame into a new array (``_ljpeg.decode`` into a fresh
  ``np.empty``), as ``Dataset.frame()`` would;
* pylibjpeg-libjpeg's ``libjpeg.decode`` returns a new array per frame;
* python-gdcm decodes a ``gdcm.Image`` built around each frame beforehand
  (``GetBuffer`` decodes on every call);
* imagecodecs' ``ljpeg_decode`` (liblj92) and ``jpeg8_decode`` (libjpeg-turbo 3,
  which decodes lossless JPEG too) return a new array per frame. A peer that fails
  on a file, or decodes it differently, is skipped for that file.

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

from dicomfast._native import _ljpeg

pytestmark = pytest.mark.filterwarnings("ignore")

JPEG_LOSSLESS = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
# Larger images than the corpus's lossless files: MR, two radiographs, a
# 14-bit signed CT, ultrasound and photographic RGB.
DCMCJPEG_SOURCES = [("MR2_UNCR.dcm", "+e1"), ("RG1_UNCR.dcm", "+e1"),
                    ("693_UNCR.dcm", "+e1"), ("US1_UNCR.dcm", "+e1"),
                    ("examples_rgb_color.dcm", "+e1"), ("MR2_UNCR.dcm", "+el +sv 7")]
_TMP = tempfile.TemporaryDirectory(prefix="bench_ljpeg_")


class Case:
    def __init__(self, name: str, path: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
        self.name, self.ds = name, ds
        self.n = int(ds.get("NumberOfFrames") or 1)
        self.frames = [bytes(f) for f in generate_frames(ds.PixelData,
                                                         number_of_frames=self.n)]
        info = _ljpeg.info(self.frames[0])
        self.info = info
        self.rows, self.cols, self.spp = info["rows"], info["columns"], info["components"]
        self.dtype = np.uint16 if info["bytes_per_sample"] == 2 else np.uint8
        self.frame_bytes = info["nbytes"]
        self.reference = [self._ours(f) for f in self.frames]

    def _ours(self, frame):
        out = np.empty((self.rows, self.cols, self.spp), self.dtype)
        _ljpeg.decode(frame, out.view(np.uint8).reshape(-1))
        return out

    @property
    def group(self) -> str:
        return (f"JPEG Lossless decode: {self.name} ({self.rows}x{self.cols}x{self.spp}, "
                f"{self.info['precision']} bits, {self.n} frame{'s' if self.n > 1 else ''})")

    def same(self, decoded) -> bool:
        return all(np.array_equal(np.asarray(d).reshape(r.shape), r)
                   for d, r in zip(decoded, self.reference, strict=True))


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
        if str(meta.file_meta.get("TransferSyntaxUID", "")) in JPEG_LOSSLESS and "Rows" in meta:
            seen.add(path.name)
            out.append(Case(path.name, path))
    dcmcjpeg = shutil.which("dcmcjpeg")
    for name, options in DCMCJPEG_SOURCES if dcmcjpeg else []:
        src = find(name)
        if src is None:
            continue
        dst = Path(_TMP.name) / f"{src.stem}_{options.replace(' ', '')}.dcm"
        subprocess.run([dcmcjpeg, *options.split(), str(src), str(dst)], check=True,
                       capture_output=True)
        out.append(Case(dst.name, dst))
    return out


CASES = _cases()
IDS = [c.name for c in CASES]


def _run(benchmark, case: Case, fn):
    benchmark.group = case.group
    benchmark.extra_info["bytes"] = case.frame_bytes * case.n
    benchmark(fn)


def _peer(benchmark, case: Case, decode_all, as_arrays=lambda decoded: decoded):
    try:
        ok = case.same(as_arrays(decode_all()))
    except Exception as exc:
        pytest.skip(f"cannot decode {case.name}: {exc}")
    if not ok:
        pytest.skip(f"decodes {case.name} differently")
    _run(benchmark, case, decode_all)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dicomfast(benchmark, case):
    decode, frames = _ljpeg.decode, case.frames
    shape, dtype = (case.rows, case.cols, case.spp), case.dtype

    def run():
        outs = []
        for frame in frames:
            out = np.empty(shape, dtype)
            decode(frame, out.view(np.uint8).reshape(-1))
            outs.append(out)
        return outs

    _run(benchmark, case, run)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pylibjpeg_libjpeg(benchmark, case):
    libjpeg = pytest.importorskip("libjpeg")
    frames = case.frames
    _peer(benchmark, case, lambda: [libjpeg.decode(f) for f in frames])


def _gdcm_image(case: Case, frame: bytes):
    syntax = ("JPEGLosslessProcess14_1"
              if str(case.ds.file_meta.TransferSyntaxUID).endswith(".70")
              else "JPEGLosslessProcess14")
    return gdcm_image_for(case, frame, syntax)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gdcm(benchmark, case):
    pytest.importorskip("gdcm")
    images = [_gdcm_image(case, f) for f in case.frames]
    dtype = case.dtype

    def as_arrays(buffers):  # GetBuffer gives the bytes as a str (surrogate escapes)
        return [np.frombuffer(b.encode("utf-8", "surrogateescape"), dtype) for b in buffers]

    _peer(benchmark, case, lambda: [image.GetBuffer() for image in images], as_arrays)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("codec", ["ljpeg_decode", "jpeg8_decode"])
def test_imagecodecs(benchmark, case, codec):
    imagecodecs = pytest.importorskip("imagecodecs")
    decode, frames = getattr(imagecodecs, codec), case.frames
    _peer(benchmark, case, lambda: [decode(f) for f in frames])
