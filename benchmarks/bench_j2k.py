"""JPEG 2000 and HTJ2K: dicomfast vs pylibjpeg-openjpeg, python-gdcm and imagecodecs.

    pytest benchmarks/bench_j2k.py --benchmark-enable -p no:cacheprovider

Every group times one codestream (or one raw frame, for encoders) already in
memory, the same bytes for every peer; compare the ratios of their means.
dicomfast runs on 1 and 2 threads (OpenJPEG's code-block threads; OpenJPH has
none), imagecodecs with numthreads 1 and 2; pylibjpeg-openjpeg and GDCM are
single-threaded. The HTJ2K decode groups hold both of dicomfast's decoders in
this process, and the default path (OpenJPH in a helper process, which is what
decode_frame uses for .201-.203 frames). GDCM has no
HTJ2K and its Python encode path is not used (it writes through a
DataElement copy that does not survive SWIG's ownership rules here), so it is
in the J2K decode groups only. Peers that are not installed are skipped.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from corpus import find
from peers import gdcm_image
from pydicom.encaps import generate_frames

pytestmark = pytest.mark.filterwarnings("ignore")

_j2k = pytest.importorskip("dicomfast._native._j2k")
try:
    from dicomfast._native import _htj2k
except ImportError:
    _htj2k = None

LOSSLESS_FILE = find("RG1_J2KR.dcm")     # 1955 x 1841, 15 bits, 5/3
LOSSY_FILE = find("RG1_J2KI.dcm")        # the same image, 9/7
RAW_FILE = find("RG1_UNCR.dcm")
if LOSSLESS_FILE is None or LOSSY_FILE is None or RAW_FILE is None:
    pytest.skip("the RG1 benchmark files are not in the corpus", allow_module_level=True)


def _frame(path) -> bytes:
    ds = pydicom.dcmread(path)
    return next(generate_frames(ds.PixelData, number_of_frames=1))


RAW = pydicom.dcmread(RAW_FILE).pixel_array            # uint16, 15 bits stored
ROWS, COLUMNS = RAW.shape
RAW_U8 = np.ascontiguousarray(RAW, "<u2").reshape(-1).view(np.uint8)
J2K_LOSSLESS = _frame(LOSSLESS_FILE)
J2K_LOSSY = _frame(LOSSY_FILE)
if _htj2k is not None:
    HT_LOSSLESS = _htj2k.encode(RAW_U8, ROWS, COLUMNS, 1, 15, False)
    HT_LOSSY = _htj2k.encode(RAW_U8, ROWS, COLUMNS, 1, 15, False, lossless=False, qstep=0.0005)
else:
    import imagecodecs

    HT_LOSSLESS = imagecodecs.htj2k_encode(RAW, reversible=True)
    HT_LOSSY = None


def _out() -> np.ndarray:
    return np.empty(RAW.nbytes, np.uint8)


def _gdcm_decoder(data: bytes):
    """python-gdcm decoding one codestream, set up as pydicom's gdcm plugin does."""
    pytest.importorskip("gdcm")

    image = gdcm_image(data, rows=ROWS, columns=COLUMNS, samples=1, bits_allocated=16,
                       bits_stored=15, signed=False, photometric="MONOCHROME1",
                       syntax="JPEG2000")
    return image.GetBuffer


def _decode_groups(group, data, *, gdcm_too, ht):
    @pytest.mark.benchmark(group=group)
    @pytest.mark.parametrize("threads", [1, 2])
    def dicomfast_openjpeg(benchmark, threads):
        out = _out()
        benchmark(_j2k.decode, data, out, threads=threads)

    @pytest.mark.benchmark(group=group)
    def dicomfast_openjph(benchmark):
        if not ht or _htj2k is None:
            pytest.skip("OpenJPH decodes HTJ2K codestreams only")
        benchmark(_htj2k.decode, data, _out())

    @pytest.mark.benchmark(group=group)
    def dicomfast_isolated(benchmark):
        # What decode_frame does with an HTJ2K frame by default: OpenJPH in a helper
        # process (dicomfast/pixels/isolated.py).
        if not ht or _htj2k is None:
            pytest.skip("HTJ2K frames only")
        from dicomfast.pixels import isolated

        benchmark(isolated.decode, "dicomfast._native._htj2k", data, _out(), codec="HTJ2K",
                  rows=ROWS, columns=COLUMNS, samples=1, bytes_per_sample=2)

    @pytest.mark.benchmark(group=group)
    def pylibjpeg(benchmark):
        openjpeg = pytest.importorskip("openjpeg")
        benchmark(openjpeg.decode, data)

    @pytest.mark.benchmark(group=group)
    @pytest.mark.parametrize("threads", [1, 2])
    def imagecodecs_openjpeg(benchmark, threads):
        imagecodecs = pytest.importorskip("imagecodecs")
        benchmark(imagecodecs.jpeg2k_decode, data, numthreads=threads)

    @pytest.mark.benchmark(group=group)
    def imagecodecs_openjph(benchmark):
        imagecodecs = pytest.importorskip("imagecodecs")
        if not ht:
            pytest.skip("OpenJPH decodes HTJ2K codestreams only")
        benchmark(imagecodecs.htj2k_decode, data)

    @pytest.mark.benchmark(group=group)
    def gdcm(benchmark):
        if not gdcm_too:
            pytest.skip("GDCM does not decode HTJ2K")
        benchmark(_gdcm_decoder(data))

    return (dicomfast_openjpeg, dicomfast_openjph, dicomfast_isolated, pylibjpeg,
            imagecodecs_openjpeg, imagecodecs_openjph, gdcm)


(test_j2k_lossless_dicomfast, _, _, test_j2k_lossless_pylibjpeg,
 test_j2k_lossless_imagecodecs, _, test_j2k_lossless_gdcm) = _decode_groups(
    "decode J2K lossless: 1955 x 1841, 15 bits", J2K_LOSSLESS, gdcm_too=True, ht=False)
(test_j2k_lossy_dicomfast, _, _, test_j2k_lossy_pylibjpeg,
 test_j2k_lossy_imagecodecs, _, test_j2k_lossy_gdcm) = _decode_groups(
    "decode J2K lossy: 1955 x 1841, 15 bits", J2K_LOSSY, gdcm_too=True, ht=False)
(test_ht_lossless_dicomfast_openjpeg, test_ht_lossless_dicomfast_openjph,
 test_ht_lossless_dicomfast_isolated, test_ht_lossless_pylibjpeg, test_ht_lossless_imagecodecs_openjpeg,
 test_ht_lossless_imagecodecs_openjph, _) = _decode_groups(
    "decode HTJ2K lossless: 1955 x 1841, 15 bits", HT_LOSSLESS, gdcm_too=False, ht=True)
if HT_LOSSY is not None:
    (test_ht_lossy_dicomfast_openjpeg, test_ht_lossy_dicomfast_openjph,
     test_ht_lossy_dicomfast_isolated, test_ht_lossy_pylibjpeg, test_ht_lossy_imagecodecs_openjpeg,
     test_ht_lossy_imagecodecs_openjph, _) = _decode_groups(
        "decode HTJ2K lossy: 1955 x 1841, 15 bits", HT_LOSSY, gdcm_too=False, ht=True)


# --- encoders ------------------------------------------------------------------------------

ENC_LOSSLESS = "encode J2K lossless: 1955 x 1841, 15 bits"


@pytest.mark.benchmark(group=ENC_LOSSLESS)
@pytest.mark.parametrize("threads", [1, 2])
def test_encode_lossless_dicomfast(benchmark, threads):
    benchmark(_j2k.encode, RAW_U8, ROWS, COLUMNS, 1, 15, False, threads=threads)


@pytest.mark.benchmark(group=ENC_LOSSLESS)
def test_encode_lossless_pylibjpeg(benchmark):
    openjpeg = pytest.importorskip("openjpeg")
    benchmark(openjpeg.encode, RAW, bits_stored=15)


@pytest.mark.benchmark(group=ENC_LOSSLESS)
@pytest.mark.parametrize("threads", [1, 2])
def test_encode_lossless_imagecodecs(benchmark, threads):
    imagecodecs = pytest.importorskip("imagecodecs")
    benchmark(imagecodecs.jpeg2k_encode, RAW, codecformat="J2K", reversible=True,
              bitspersample=15, numthreads=threads)


ENC_LOSSY = "encode J2K lossy (PSNR 60 dB): 1955 x 1841, 15 bits"


@pytest.mark.benchmark(group=ENC_LOSSY)
@pytest.mark.parametrize("threads", [1, 2])
def test_encode_lossy_dicomfast(benchmark, threads):
    benchmark(_j2k.encode, RAW_U8, ROWS, COLUMNS, 1, 15, False, lossless=False, quality=60,
              threads=threads)


@pytest.mark.benchmark(group=ENC_LOSSY)
def test_encode_lossy_pylibjpeg(benchmark):
    openjpeg = pytest.importorskip("openjpeg")
    benchmark(openjpeg.encode, RAW, bits_stored=15, signal_noise_ratios=[60])


@pytest.mark.benchmark(group=ENC_LOSSY)
@pytest.mark.parametrize("threads", [1, 2])
def test_encode_lossy_imagecodecs(benchmark, threads):
    imagecodecs = pytest.importorskip("imagecodecs")
    benchmark(imagecodecs.jpeg2k_encode, RAW, 60, codecformat="J2K", reversible=False,
              bitspersample=15, numthreads=threads)


ENC_HT = "encode HTJ2K lossless: 1955 x 1841, 15 bits"


@pytest.mark.benchmark(group=ENC_HT)
def test_encode_ht_dicomfast(benchmark):
    if _htj2k is None:
        pytest.skip("dicomfast was built without OpenJPH")
    benchmark(_htj2k.encode, RAW_U8, ROWS, COLUMNS, 1, 15, False)


@pytest.mark.benchmark(group=ENC_HT)
def test_encode_ht_imagecodecs(benchmark):
    imagecodecs = pytest.importorskip("imagecodecs")
    benchmark(imagecodecs.htj2k_encode, RAW, reversible=True)
