"""JPEG Baseline and JPEG-LS decoding: dicomfast vs its peers, in the same run.

    pytest benchmarks/bench_jpeg.py --benchmark-enable -p no:cacheprovider

Each group holds dicomfast and the peers that decode the same bytes; compare the
ratio of their means. "frame" groups time one codestream already in memory (the
codec alone); "file" groups time reading a data set and all its pixels.
Peers that are not installed are skipped.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
from corpus import find

import dicomfast
from dicomfast.pixels import ImageParams, decode_frame, pixel_source
from dicomfast.pixels.encaps import split_frames

pytestmark = pytest.mark.filterwarnings("ignore")

_jpeg = pytest.importorskip("dicomfast._native._jpeg")
_jpegls = pytest.importorskip("dicomfast._native._jpegls")

JPEG_FILE = find("color3d_jpeg_baseline.dcm")      # 120 frames 640 x 480 YBR_FULL_422
JLS_FILE = find("RG2_JLSL.dcm")                    # 1760 x 2140, 10 bits, lossless
JLSN_FILE = find("CT1_JLSN.dcm")                   # 512 x 512 signed, near-lossless
if JPEG_FILE is None or JLS_FILE is None or JLSN_FILE is None:
    pytest.skip("the benchmark files are not in the corpus", allow_module_level=True)


def _first_frame(path) -> tuple[bytes, ImageParams, str]:
    ds = dicomfast.read(path)
    buf, tag, little, _, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    ts = str(ds.file_meta.TransferSyntaxUID)
    frames = split_frames(buf, params.number_of_frames, ts, little_endian=little)
    from dataclasses import replace

    return bytes(frames.frame(0)), replace(params, number_of_frames=1), ts


def _pydicom_pixels(path, plugin):
    def run():
        ds = pydicom.dcmread(path)
        ds.pixel_array_options(decoding_plugin=plugin)
        return ds.pixel_array
    try:
        run()
    except Exception as exc:
        pytest.skip(f"pydicom's {plugin} plugin cannot decode this: {exc}")
    return run


def _gdcm_reader(path):
    gdcm = pytest.importorskip("gdcm")

    def run():
        reader = gdcm.ImageReader()
        reader.SetFileName(str(path))
        if not reader.Read():
            raise RuntimeError("GDCM could not read the file")
        return reader.GetImage().GetBuffer()
    return run


# --- JPEG Baseline, one frame ---------------------------------------------------------

JPEG_GROUP = "JPEG baseline frame: 640 x 480 YCbCr 4:2:2 -> RGB"
JPEG_DATA, JPEG_PARAMS, JPEG_TS = _first_frame(JPEG_FILE)


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_frame_dicomfast(benchmark):
    out = np.empty(JPEG_PARAMS.frame_nbytes, np.uint8)
    benchmark(_jpeg.decode, JPEG_DATA, out, photometric="YBR_FULL_422")


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_frame_dicomfast_decode_frame(benchmark):
    benchmark(decode_frame, JPEG_DATA, JPEG_PARAMS, JPEG_TS)


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_frame_pylibjpeg(benchmark):
    libjpeg = pytest.importorskip("libjpeg")
    # colour_transform=1: YCbCr -> RGB inside libjpeg, as dicomfast does
    benchmark(libjpeg.decode, JPEG_DATA, 1)


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_frame_imagecodecs(benchmark):
    imagecodecs = pytest.importorskip("imagecodecs")
    benchmark(imagecodecs.jpeg8_decode, JPEG_DATA)


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_frame_pillow(benchmark):
    image = pytest.importorskip("PIL.Image")
    benchmark(lambda: np.asarray(image.open(io.BytesIO(JPEG_DATA))))


# --- JPEG Baseline, a 120-frame file ----------------------------------------------------

JPEG_FILE_GROUP = "JPEG baseline file: 120 frames 640 x 480, read + pixel_array"


@pytest.mark.benchmark(group=JPEG_FILE_GROUP)
def test_jpeg_file_dicomfast(benchmark):
    benchmark(lambda: dicomfast.read(JPEG_FILE).pixel_array)


@pytest.mark.benchmark(group=JPEG_FILE_GROUP)
def test_jpeg_file_dicomfast_2_threads(benchmark):
    benchmark(lambda: dicomfast.read(JPEG_FILE).frames(threads=2))


@pytest.mark.benchmark(group=JPEG_FILE_GROUP)
@pytest.mark.parametrize("plugin", ["gdcm", "pylibjpeg", "pillow"])
def test_jpeg_file_pydicom(benchmark, plugin):
    benchmark(_pydicom_pixels(JPEG_FILE, plugin))


@pytest.mark.benchmark(group=JPEG_FILE_GROUP)
def test_jpeg_file_gdcm(benchmark):
    benchmark(_gdcm_reader(JPEG_FILE))


# --- JPEG-LS, one frame -----------------------------------------------------------------

JLS_GROUP = "JPEG-LS lossless frame: 1760 x 2140, 10 bits"
JLS_DATA, JLS_PARAMS, _ = _first_frame(JLS_FILE)
JLSN_GROUP = "JPEG-LS near-lossless frame: 512 x 512, 16 bits signed"
JLSN_DATA, JLSN_PARAMS, _ = _first_frame(JLSN_FILE)


def _jls_peers(group, data):
    @pytest.mark.benchmark(group=group)
    def dicomfast_(benchmark):
        inf = _jpegls.info(data)
        size = inf["rows"] * inf["columns"] * inf["components"] * (
            1 if inf["precision"] <= 8 else 2)
        benchmark(_jpegls.decode, data, np.empty(size, np.uint8))

    @pytest.mark.benchmark(group=group)
    def imagecodecs_(benchmark):
        imagecodecs = pytest.importorskip("imagecodecs")
        benchmark(imagecodecs.jpegls_decode, data)

    @pytest.mark.benchmark(group=group)
    def pyjpegls_(benchmark):
        jpeg_ls = pytest.importorskip("jpeg_ls")
        benchmark(jpeg_ls.decode_buffer, data)

    @pytest.mark.benchmark(group=group)
    def pylibjpeg_(benchmark):
        libjpeg = pytest.importorskip("libjpeg")
        benchmark(libjpeg.decode, data)

    return dicomfast_, imagecodecs_, pyjpegls_, pylibjpeg_


(test_jls_frame_dicomfast, test_jls_frame_imagecodecs, test_jls_frame_pyjpegls,
 test_jls_frame_pylibjpeg) = _jls_peers(JLS_GROUP, JLS_DATA)
(test_jlsn_frame_dicomfast, test_jlsn_frame_imagecodecs, test_jlsn_frame_pyjpegls,
 test_jlsn_frame_pylibjpeg) = _jls_peers(JLSN_GROUP, JLSN_DATA)


# --- JPEG-LS, a file ----------------------------------------------------------------------

JLS_FILE_GROUP = "JPEG-LS lossless file: 1760 x 2140, read + pixel_array"


@pytest.mark.benchmark(group=JLS_FILE_GROUP)
def test_jls_file_dicomfast(benchmark):
    benchmark(lambda: dicomfast.read(JLS_FILE).pixel_array)


@pytest.mark.benchmark(group=JLS_FILE_GROUP)
@pytest.mark.parametrize("plugin", ["gdcm", "pylibjpeg", "pyjpegls"])
def test_jls_file_pydicom(benchmark, plugin):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark(_pydicom_pixels(JLS_FILE, plugin))


@pytest.mark.benchmark(group=JLS_FILE_GROUP)
def test_jls_file_gdcm(benchmark):
    benchmark(_gdcm_reader(JLS_FILE))


# --- JPEG-LS encoding, one frame ----------------------------------------------------------

JLS_ENC_GROUP = "JPEG-LS lossless encode: 1760 x 2140, 10 bits"
JLS_RAW = dicomfast.read(JLS_FILE).pixel_array          # uint16, 10 bits stored


@pytest.mark.benchmark(group=JLS_ENC_GROUP)
@pytest.mark.parametrize("precision", [10, 16])
def test_jls_encode_dicomfast(benchmark, precision):
    """At the file's 10 bits stored (what DICOM asks for), and at 16, the precision
    imagecodecs gives uint16 data (it has no option for another)."""
    raw = np.ascontiguousarray(JLS_RAW).view(np.uint8).reshape(-1)
    rows, columns = JLS_RAW.shape
    benchmark(_jpegls.encode, raw, rows, columns, 1, precision)


@pytest.mark.benchmark(group=JLS_ENC_GROUP)
def test_jls_encode_imagecodecs(benchmark):
    imagecodecs = pytest.importorskip("imagecodecs")
    benchmark(imagecodecs.jpegls_encode, JLS_RAW, level=0)


@pytest.mark.benchmark(group=JLS_ENC_GROUP)
def test_jls_encode_pydicom(benchmark):
    """pydicom's own JPEG-LS encoder (through pyjpegls), as a user would call it."""
    pytest.importorskip("jpeg_ls")
    from pydicom.pixels.encoders import JPEGLSLosslessEncoder

    ds = pydicom.dcmread(JLS_FILE)
    ds.decompress()
    benchmark(JPEGLSLosslessEncoder.encode, ds, index=0)


# --- JPEG baseline encoding, one frame ----------------------------------------------------

JPEG_ENC_GROUP = "JPEG baseline encode: 640 x 480 RGB, quality 90, 4:2:2"
JPEG_RGB = np.empty(JPEG_PARAMS.rows * JPEG_PARAMS.columns * 3, np.uint8)
_jpeg.decode(JPEG_DATA, JPEG_RGB, photometric="YBR_FULL_422", as_rgb=True)
JPEG_RGB = JPEG_RGB.reshape(JPEG_PARAMS.rows, JPEG_PARAMS.columns, 3)


@pytest.mark.benchmark(group=JPEG_ENC_GROUP)
def test_jpeg_encode_dicomfast(benchmark):
    rows, columns, _ = JPEG_RGB.shape
    benchmark(_jpeg.encode, JPEG_RGB.reshape(-1), rows, columns, 3, quality=90)


@pytest.mark.benchmark(group=JPEG_ENC_GROUP)
def test_jpeg_encode_imagecodecs(benchmark):
    imagecodecs = pytest.importorskip("imagecodecs")
    benchmark(imagecodecs.jpeg8_encode, JPEG_RGB, level=90, subsampling="422",
              optimize=True)


@pytest.mark.benchmark(group=JPEG_ENC_GROUP)
def test_jpeg_encode_pillow(benchmark):
    image = pytest.importorskip("PIL.Image").fromarray(JPEG_RGB)

    def run():
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90, subsampling=1, optimize=True)
        return buf.getvalue()
    benchmark(run)
