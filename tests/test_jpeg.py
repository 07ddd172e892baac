"""JPEG Baseline / Extended (PS3.5 §A.4.1) through libjpeg-turbo: differential tests
against pydicom's plugins, DCMTK's dcmcjpeg/dcmdjpeg, and uncompressed twins.

Tolerances. libjpeg-turbo's accurate integer IDCT (JDCT_ISLOW) is the IJG
reference IDCT, bit-exact with every IJG-derived decoder: GDCM and DCMTK
(dcmdjpeg) give the same samples, so those comparisons are exact. pylibjpeg
uses Thomas Richter's libjpeg instead: a different IDCT, and pydicom then
converts its raw YCbCr with float equations after its own chroma upsampling.
Measured on the corpus (maximum absolute difference): 1 for grey and RGB
streams (IDCT rounding only), 3 for full-resolution YCbCr (IDCT + colour
conversion rounding), 5 for 4:2:2 subsampled YCbCr (plus libjpeg's triangular
"fancy" chroma upsampling versus libjpeg's); the mean stays below 0.15.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import all_files, file_id, find
from gil import ticks_while

import dicomfast
from dicomfast.errors import CodecUnavailableError, DecodeError
from dicomfast.pixels import ImageParams, decode_frame, pixel_source
from dicomfast.pixels.colour import convert_color_space
from dicomfast.pixels.encaps import split_frames

try:
    from dicomfast._native import _jpeg
except ImportError:
    pytest.skip("dicomfast was built without libjpeg (cmake/libjpeg.cmake found no library)",
                allow_module_level=True)

# Oddities in how a file is encoded (e.g. implicit VR under an explicit VR transfer
# syntax) are the reader's concern, tested elsewhere.
pytestmark = [pytest.mark.filterwarnings("ignore::dicomfast.errors.EncodingWarning"),
              pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")]

BASELINE = "1.2.840.10008.1.2.4.50"
EXTENDED = "1.2.840.10008.1.2.4.51"


def _scan():
    eight, twelve = [], []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
            ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
            if ts not in (BASELINE, EXTENDED) or "PixelData" not in ds:
                continue
            frame = next(pydicom.encaps.generate_frames(
                ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1)))
        except Exception:
            continue
        (eight if _jpeg.info(bytes(frame))["precision"] <= 8 else twelve).append(path)
    return eight, twelve


FILES, FILES_12BIT = _scan()
# Photometric Interpretation RGB, but the stream (component ids 1,2,3, 2x2 chroma
# subsampling) is YCbCr: dicomfast follows the stream and returns RGB, pydicom
# returns the YCbCr samples. Its twin in pydicom's files says YBR_FULL.
MISLABELLED = {"JPEGBaseline/SC_rgb_jpeg_lossy_gdcm.dcm"}


def _pydicom(path, plugin, **opts):
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.pixel_array_options(decoding_plugin=plugin, **opts)
        return ds.pixel_array


def _tolerance(path) -> int:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if ds.SamplesPerPixel == 1 or ds.PhotometricInterpretation == "RGB":
        return 1
    return 5 if ds.PhotometricInterpretation == "YBR_FULL_422" or _subsampled(path) else 3


def _subsampled(path) -> bool:
    ds = pydicom.dcmread(path)
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    i = frame.find(b"\xff\xc0")
    i = i if i >= 0 else frame.find(b"\xff\xc1")
    return frame[i + 11] != 0x11


def test_corpus_has_jpeg_files():
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", [p for p in FILES if file_id(p) not in MISLABELLED],
                         ids=file_id)
def test_equals_pydicom_pylibjpeg(path):
    ours = dicomfast.read(path).pixel_array
    expected = _pydicom(path, "pylibjpeg")
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    diff = np.abs(ours.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= _tolerance(path)
    assert diff.mean() < 0.15


@pytest.mark.parametrize("path", [p for p in FILES if file_id(p) not in MISLABELLED],
                         ids=file_id)
def test_equals_gdcm_exactly(path):
    pytest.importorskip("gdcm", reason="python-gdcm is not installed")
    np.testing.assert_array_equal(dicomfast.read(path).pixel_array, _pydicom(path, "gdcm"))


def test_mislabelled_rgb_follows_the_stream():
    ours, twin = find("SC_rgb_jpeg_lossy_gdcm.dcm"), None
    for p in all_files():
        if p.name == "SC_rgb_jpeg_lossy_gdcm.dcm" and file_id(p) in MISLABELLED:
            ours = p
        elif p.name == "SC_rgb_jpeg_lossy_gdcm.dcm":
            twin = p
    if ours is None or twin is None or ours == twin:
        pytest.skip("both versions of SC_rgb_jpeg_lossy_gdcm.dcm are needed")
    np.testing.assert_array_equal(dicomfast.read(ours).pixel_array,
                                  dicomfast.read(twin).pixel_array)


@pytest.mark.parametrize("option", ["cr", "cyn1", "cyn2", "cynp", "cys2", "cys4"])
def test_dcmtk_options_equal_dcmdjpeg(option):
    # SC_rgb_dcmtk_+eb+<option>.dcm were made by dcmcjpeg; *_dcmd.dcm is dcmdjpeg's RGB.
    src = find(f"SC_rgb_dcmtk_+eb+{option[:2]}{'+' + option[2:] if option[2:] else ''}.dcm")
    decoded = find(f"SC_rgb_dcmtk_eb{option}_dcmd.dcm")
    if src is None or decoded is None:
        pytest.skip("the SC_rgb_dcmtk files are not in the corpus")
    ours = dicomfast.read(src).pixel_array
    np.testing.assert_array_equal(ours, dicomfast.read(decoded).pixel_array)
    # and close to the image that was compressed (quality 90, chroma subsampled or not)
    original = dicomfast.read(find("SC_rgb.dcm")).pixel_array.astype(np.int64)
    assert np.abs(ours.astype(np.int64) - original).mean() < 4


@pytest.mark.parametrize("path", FILES_12BIT, ids=file_id)
def test_12bit_needs_libjpeg_turbo_3(path):
    if _jpeg.MAX_PRECISION >= 12:
        pytest.skip("this build decodes 12-bit JPEG")
    with pytest.raises(CodecUnavailableError, match="12-bit"):
        dicomfast.read(path).pixel_array  # noqa: B018


# --- as_rgb=False: YCbCr out of libjpeg ------------------------------------------

def _frame(path) -> tuple[bytes, ImageParams]:
    ds = dicomfast.read(path)
    buf, tag, little, _, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    frames = split_frames(buf, params.number_of_frames, BASELINE, little_endian=little)
    return bytes(frames.frame(0)), replace(params, number_of_frames=1)


@pytest.mark.parametrize("name", ["SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm",
                                  "SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm"])
def test_keep_ybr(name):
    path = find(name)
    data, params = _frame(path)
    ybr = decode_frame(data, params, BASELINE, as_rgb=False)
    rgb = decode_frame(data, params, BASELINE)
    # pydicom with as_rgb=False returns pylibjpeg's raw YCbCr
    expected = _pydicom(path, "pylibjpeg", as_rgb=False)
    expected = expected[0] if expected.ndim == 4 else expected
    assert np.abs(ybr.astype(np.int64) - expected).max() <= 3
    # libjpeg's fixed-point YCbCr -> RGB and PS3.3's float equations differ by rounding
    assert np.abs(convert_color_space(ybr, "YBR_FULL", "RGB").astype(np.int64) - rgb).max() <= 1


def test_keep_ybr_leaves_rgb_streams_alone():
    data, params = _frame(find("SC_rgb_dcmtk_+eb+cr.dcm"))
    np.testing.assert_array_equal(decode_frame(data, params, BASELINE, as_rgb=False),
                                  decode_frame(data, params, BASELINE))


def test_colour_decision_follows_the_stream():
    cases = {"SC_rgb_dcmtk_+eb+cr.dcm": ("RGB", "Adobe APP14"),
             "SC_rgb_dcmtk_+eb+cy+np.dcm": ("YBR_FULL", "JFIF"),
             "color3d_jpeg_baseline.dcm": ("YBR_FULL", "component identifiers"),
             "SC_jpeg_no_color_transform.dcm": ("RGB", "Photometric Interpretation"),
             "JPEGBaseline_1s_1f_u_08_08.dcm": ("MONOCHROME", "one component")}
    for name, expected in cases.items():
        path = find(name)
        if path is None:
            continue
        data, params = _frame(path)
        info = _jpeg.info(data, params.photometric_interpretation)
        assert (info["colour_space"], info["colour_from"]) == expected, name
    # no evidence in the stream: the Photometric Interpretation decides
    data, _ = _frame(find("SC_jpeg_no_color_transform.dcm"))
    assert _jpeg.info(data, "YBR_FULL_422")["colour_space"] == "YBR_FULL"


def test_multiframe_threads_equal_serial():
    ds = dicomfast.read(find("color3d_jpeg_baseline.dcm"))
    np.testing.assert_array_equal(ds.frames(range(8), threads=4), ds.frames(range(8)))


# --- DCMTK: dcmcjpeg-made files against dcmdjpeg's own decoding ----------------

DCMTK = shutil.which("dcmcjpeg") and shutil.which("dcmdjpeg")


@pytest.mark.parametrize("source, options", [
    ("SC_rgb.dcm", ("+eb",)),
    ("SC_rgb.dcm", ("+eb", "+cr")),
    ("SC_rgb_2frame.dcm", ("+eb", "+s4")),
    ("US1_UNCR.dcm", ("+eb", "+q", "75")),
    ("OBXXXX1A.dcm", ("+eb",)),
    ("emri_small.dcm", ("+eb",)),
])
def test_dcmtk_baseline(tmp_path: Path, source, options):
    if not DCMTK:
        pytest.skip("DCMTK (dcmcjpeg, dcmdjpeg) is not installed")
    src = find(source)
    if src is None:
        pytest.skip(f"{source} is not in the corpus")
    encoded, decoded = tmp_path / "jpg.dcm", tmp_path / "dec.dcm"
    subprocess.run(["dcmcjpeg", *options, str(src), str(encoded)], check=True,
                   capture_output=True)
    subprocess.run(["dcmdjpeg", str(encoded), str(decoded)], check=True, capture_output=True)
    ours = dicomfast.read(encoded).pixel_array
    np.testing.assert_array_equal(ours, dicomfast.read(decoded).pixel_array)


# --- Errors ----------------------------------------------------------------

@pytest.mark.parametrize("damage", ["empty", "soi_only", "header", "truncated", "garbage",
                                    "lossless", "size"])
def test_corrupt_streams_raise_decode_error(capfd, damage):
    data, params = _frame(find("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    sos = data.find(b"\xff\xda")
    bad = {
        "empty": b"",
        "soi_only": b"\xff\xd8",
        "header": data[:sos],
        "truncated": data[: len(data) * 2 // 3],
        "garbage": data[: sos + 40] + bytes(range(256)) * 4 + b"\xff\xd9",
        "lossless": data.replace(b"\xff\xc0", b"\xff\xc3", 1),
        "size": data,
    }[damage]
    if damage == "size":
        params = replace(params, columns=params.columns + 8)
    with pytest.raises(DecodeError) as exc:
        decode_frame(bad, params, BASELINE)
    assert exc.value.codec == "JPEG"
    assert capfd.readouterr() == ("", "")


def test_strict_turns_warnings_into_errors(capfd):
    data, params = _frame(find("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    sos = data.find(b"\xff\xda")
    # extraneous bytes before a marker: libjpeg warns and decodes the same pixels
    noisy = data[:sos] + b"\x00\x00" + data[sos:]
    np.testing.assert_array_equal(decode_frame(noisy, params, BASELINE),
                                  decode_frame(data, params, BASELINE))
    with pytest.raises(DecodeError):
        decode_frame(noisy, params, BASELINE, strict=True)
    assert capfd.readouterr() == ("", "")


def test_stuffed_zero_before_a_marker_is_skipped_as_libjpeg_does(capfd):
    """0xFF 0x00 outside a scan is extraneous data to libjpeg, not a marker. Read as
    a marker, the next two bytes would be taken for a segment length, and the marker
    reader could skip a frame header that libjpeg decodes (or report one it never
    sees): the size it reports would not be the size decoded."""
    data, params = _frame(find("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    sof = data.find(b"\xff\xc0")
    noisy = data[:sof] + b"\xff\x00" + data[sof:]
    info = _jpeg.info(noisy, params.photometric_interpretation)
    assert (info["rows"], info["columns"]) == (params.rows, params.columns)
    np.testing.assert_array_equal(decode_frame(noisy, params, BASELINE),
                                  decode_frame(data, params, BASELINE))
    with pytest.raises(DecodeError):
        decode_frame(noisy, params, BASELINE, strict=True)
    assert capfd.readouterr() == ("", "")


def test_output_too_small_is_a_value_error():
    data, _ = _frame(find("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    with pytest.raises(ValueError):
        _jpeg.decode(data, np.empty(100, np.uint8))




def test_decoding_releases_the_gil():
    data, params = _frame(find("color3d_jpeg_baseline.dcm"))
    out = np.empty(params.frame_nbytes, np.uint8)
    calls = 100
    # held, the loop runs about once per call; released, thousands of times a second
    assert ticks_while(lambda: [_jpeg.decode(data, out) for _ in range(calls)]) > 2 * calls + 50


# --- Baseline encoding (libjpeg-turbo), checked by other decoders ------------------------
#
# Our streams decode with DCMTK's dcmdjpeg exactly as with ours (both IJG IDCTs, see the
# module docstring), and with pydicom + pylibjpeg within the tolerances above.

def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _dcmdjpeg(path: Path, tmp_path: Path) -> pydicom.Dataset | None:
    if not DCMTK:
        return None
    out = tmp_path / "dcmtk.dcm"
    subprocess.run(["dcmdjpeg", str(path), str(out)], check=True, capture_output=True)
    return pydicom.dcmread(out)


@pytest.mark.parametrize("name, subsampling, photometric, min_psnr", [
    ("US1_UNCR.dcm", "422", "YBR_FULL_422", 33.0),   # ultrasound speckle, 640 x 480 RGB
    ("US1_UNCR.dcm", "444", "YBR_FULL", 35.0),
    ("SC_rgb.dcm", "422", "YBR_FULL_422", 40.0),     # flat colour bands
])
def test_baseline_encode_of_colour(tmp_path, name, subsampling, photometric, min_psnr):
    src = find(name)
    if src is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = dicomfast.read(src)
    source = ds.pixel_array
    out = tmp_path / "jpeg.dcm"
    ds.save(out, transfer_syntax=BASELINE, allow_lossy=True,
            encode_options={"subsampling": subsampling})
    back = dicomfast.read(out)
    assert back.PhotometricInterpretation == photometric
    assert str(back.LossyImageCompression) == "01"
    assert "ISO_10918_1" in str(back.LossyImageCompressionMethod)
    ours = back.pixel_array
    assert ours.shape == source.shape and _psnr(ours, source) >= min_psnr
    theirs = _dcmdjpeg(out, tmp_path)
    if theirs is not None:
        assert theirs.PhotometricInterpretation == "RGB"
        np.testing.assert_array_equal(theirs.pixel_array, ours)
    pyd = pydicom.dcmread(out).pixel_array.astype(int)
    assert np.abs(pyd - ours).max() <= (5 if subsampling == "422" else 3)


def test_baseline_encode_of_grey(tmp_path):
    """A MONOCHROME2 8-bit image (CT_small's samples scaled to 8 bits) stays grey."""
    ds = dicomfast.read(find("CT_small.dcm"))
    ct = ds.pixel_array.astype(np.float64)
    grey = np.round(255 * (ct - ct.min()) / (ct.max() - ct.min())).astype(np.uint8)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = grey.tobytes()
    for name in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if name in ds:
            delattr(ds, name)
    out = tmp_path / "grey.dcm"
    ds.save(out, transfer_syntax=BASELINE, allow_lossy=True,
            encode_options={"quality": 95})
    back = dicomfast.read(out)
    assert back.PhotometricInterpretation == "MONOCHROME2"
    assert _psnr(back.pixel_array, grey) >= 38.0
    theirs = _dcmdjpeg(out, tmp_path)
    if theirs is not None:
        np.testing.assert_array_equal(theirs.pixel_array, back.pixel_array)
    small = tmp_path / "q50.dcm"
    ds.save(small, transfer_syntax=BASELINE, allow_lossy=True, encode_options={"quality": 50})
    assert small.stat().st_size < out.stat().st_size


@pytest.mark.parametrize("change, options, message", [
    ({"bits_allocated": 16, "bits_stored": 12}, {}, "unsigned 8-bit samples"),
    ({"photometric_interpretation": "PALETTE COLOR"}, {}, "not PALETTE COLOR"),
    ({"samples_per_pixel": 3, "photometric_interpretation": "YBR_FULL_422"}, {},
     "not YBR_FULL_422"),
    ({}, {"quality": 0}, "quality is 1 to 100"),
    ({"samples_per_pixel": 3, "photometric_interpretation": "RGB"}, {"subsampling": "420"},
     "subsampling"),
])
def test_baseline_encode_refuses(change, options, message):
    from dicomfast.errors import EncodeError
    from dicomfast.pixels.codecs import codec_for

    params = replace(ImageParams(16, 16, bits_allocated=8, bits_stored=8), **change)
    frame = np.zeros(params.frame_shape, params.dtype)
    with pytest.raises(EncodeError, match=message):
        codec_for(BASELINE).encode(frame, params, **options)


def test_baseline_encode_needs_allow_lossy(tmp_path):
    ds = dicomfast.read(find("SC_rgb.dcm"))
    with pytest.raises(dicomfast.errors.UnsupportedTransferSyntaxError, match="allow_lossy"):
        ds.save(tmp_path / "x.dcm", transfer_syntax=BASELINE)
    assert not (tmp_path / "x.dcm").exists()
