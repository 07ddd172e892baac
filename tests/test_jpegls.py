"""JPEG-LS (PS3.5 §A.4.3) through CharLS: differential tests against pydicom's
plugins, DCMTK's dcmcjpls/dcmdjpls and the ISO/IEC 14495 conformance streams.

JPEG-LS decoding is exact by construction (ITU-T T.87 specifies the decoder to
the sample, near-lossless included), so every comparison here is exact.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import LJDATA, all_files, file_id, find
from gil import ticks_while

import dicomfast
from dicomfast.errors import DecodeError
from dicomfast.pixels import ImageParams, decode_frame

try:
    from dicomfast._native import _jpegls
except ImportError:
    pytest.skip("dicomfast was built without CharLS (cmake/charls.cmake found no library)",
                allow_module_level=True)

LOSSLESS = "1.2.840.10008.1.2.4.80"
NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
ISO = LJDATA / "jpg" / "14495"


def _pydicom(path, plugin=None, **opts):
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if plugin is not None:
            ds.pixel_array_options(decoding_plugin=plugin, **opts)
        return ds.pixel_array


def _files(syntaxes):
    out = []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
        except Exception:
            continue
        if ts in syntaxes:
            out.append(path)
    return out


FILES = _files({LOSSLESS, NEAR_LOSSLESS})


def test_corpus_has_jpegls_files():
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_equals_pydicom(path):
    ours = dicomfast.read(path).pixel_array
    plugins = ["pylibjpeg"]
    try:
        import gdcm  # noqa: F401
        plugins.append("gdcm")
    except ImportError:
        pass
    for plugin in plugins:
        expected = _pydicom(path, plugin)
        assert ours.dtype == expected.dtype, plugin
        np.testing.assert_array_equal(ours, expected, err_msg=plugin)


@pytest.mark.parametrize("compressed, uncompressed, near", [
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", 0),
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm", 0),
    ("RG1_JLSN.dcm", "RG1_UNCR.dcm", None),
])
def test_equals_uncompressed_twin(compressed, uncompressed, near):
    src, twin = find(compressed), find(uncompressed)
    if src is None or twin is None:
        pytest.skip(f"{compressed} or {uncompressed} is not in the corpus")
    ours = dicomfast.read(src).pixel_array.astype(np.int64)
    expected = dicomfast.read(twin).pixel_array.astype(np.int64)
    if near is None:  # NEAR from the stream (ISO/IEC 14495-1 §A.2.1)
        frame = next(pydicom.encaps.generate_frames(pydicom.dcmread(src).PixelData,
                                                    number_of_frames=1))
        near = _jpegls.info(frame)["near_lossless"]
    assert np.abs(ours - expected).max() <= near


# --- ISO/IEC 14495 conformance streams (README_IMG.TXT) ---------------------

def _iso(name: str) -> np.ndarray:
    path = next(ISO.rglob(name), None)
    if path is None:
        pytest.skip(f"the ISO/IEC 14495 stream {name} is not in ../shared")
    data = path.read_bytes()
    info = _jpegls.info(data)
    dtype = np.uint8 if info["precision"] <= 8 else np.uint16
    shape = (info["rows"], info["columns"], info["components"])
    out = np.empty(shape, dtype)
    assert _jpegls.decode(data, out.reshape(-1).view(np.uint8)) == out.nbytes
    return out.squeeze(-1) if info["components"] == 1 else out


def test_iso_interleave_modes_agree():
    # TEST8 coded scan-, line- and sample-interleaved decodes to one image.
    none, line, sample = _iso("T8C0E0.JLS"), _iso("T8C1E0.JLS"), _iso("T8C2E0.JLS")
    assert none.shape == (256, 256, 3)
    np.testing.assert_array_equal(none, line)
    np.testing.assert_array_equal(none, sample)


@pytest.mark.parametrize("lossless, near", [
    ("T8C0E0.JLS", "T8C0E3.JLS"), ("T8C1E0.JLS", "T8C1E3.JLS"), ("T8C2E0.JLS", "T8C2E3.JLS"),
    ("T16E0.JLS", "T16E3.JLS"), ("T8NDE0.JLS", "T8NDE3.JLS"),
])
def test_iso_near_lossless_within_near(lossless, near):
    # A near-lossless stream with NEAR=3 reconstructs every sample within 3 of the
    # original (ISO/IEC 14495-1 §A.2.1), which the lossless stream gives exactly.
    exact, approx = _iso(lossless).astype(np.int64), _iso(near).astype(np.int64)
    assert approx.shape == exact.shape
    assert 0 < np.abs(exact - approx).max() <= 3


@pytest.mark.parametrize("name", ["T8C0E0.JLS", "T8C1E0.JLS", "T8C2E0.JLS", "T8C0E3.JLS",
                                  "T8C2E3.JLS", "T16E0.JLS", "T16E3.JLS", "T8NDE0.JLS",
                                  "T8NDE3.JLS"])
def test_iso_equals_independent_decoder(name):
    # pylibjpeg-libjpeg (Thomas Richter's libjpeg) shares no code with CharLS.
    libjpeg = pytest.importorskip("libjpeg", reason="pylibjpeg-libjpeg is not installed")
    ours = _iso(name)
    expected = libjpeg.decode((next(ISO.rglob(name))).read_bytes())
    np.testing.assert_array_equal(ours, expected.reshape(ours.shape))


@pytest.mark.parametrize("name", ["T8SSE0.JLS", "T8SSE3.JLS"])
def test_iso_subsampled_components_are_a_decode_error(name):
    # Components with different sampling factors (ISO/IEC 14495-1 §A.2) need
    # CharLS 3; DICOM has no such images (PS3.5 §A.4.3), so 2.x refusing is fine.
    major = int(_jpegls.LIBRARY.split()[1].split(".")[0])
    if major >= 3:
        pytest.skip("this CharLS decodes subsampled components")
    with pytest.raises(DecodeError):
        _iso(name)


# --- DCMTK: dcmcjpls-made files against dcmdjpls' own decoding ----------------

DCMTK = shutil.which("dcmcjpls") and shutil.which("dcmdjpls")


def _dcmtk(tmp_path: Path, source: str, options: tuple[str, ...]) -> tuple[Path, Path, Path]:
    if not DCMTK:
        pytest.skip("DCMTK (dcmcjpls, dcmdjpls) is not installed")
    src = find(source)
    if src is None:
        pytest.skip(f"{source} is not in the corpus")
    encoded, decoded = tmp_path / "jls.dcm", tmp_path / "dec.dcm"
    subprocess.run(["dcmcjpls", *options, str(src), str(encoded)], check=True,
                   capture_output=True)
    subprocess.run(["dcmdjpls", str(encoded), str(decoded)], check=True, capture_output=True)
    return src, encoded, decoded


@pytest.mark.parametrize("source, options", [
    ("MR_small.dcm", ()),                     # signed 16-bit
    ("CT_small.dcm", ()),                     # signed, 16 allocated 16 stored
    ("emri_small.dcm", ()),                   # 10 frames, 12 of 16 bits
    ("OBXXXX1A.dcm", ()),                     # 8-bit palette indices
    ("US1_UNCR.dcm", ("+il",)),               # RGB, line-interleaved
    ("US1_UNCR.dcm", ("+is",)),               # sample-interleaved
    ("US1_UNCR.dcm", ("+in",)),               # one scan per component
    ("SC_rgb_16bit.dcm", ()),                 # 16-bit RGB
])
def test_dcmtk_lossless(tmp_path, source, options):
    src, encoded, decoded = _dcmtk(tmp_path, source, options)
    ours = dicomfast.read(encoded).pixel_array
    np.testing.assert_array_equal(ours, dicomfast.read(decoded).pixel_array)
    np.testing.assert_array_equal(ours, dicomfast.read(src).pixel_array)


@pytest.mark.parametrize("source, options", [
    ("emri_small.dcm", ("+en",)),
    ("US1_UNCR.dcm", ("+en", "+md", "3")),
    ("US1_UNCR.dcm", ("+en", "+in")),
    ("RG1_UNCR.dcm", ("+en", "+md", "5")),
])
def test_dcmtk_near_lossless(tmp_path, source, options):
    src, encoded, decoded = _dcmtk(tmp_path, source, options)
    ours = dicomfast.read(encoded).pixel_array
    np.testing.assert_array_equal(ours, dicomfast.read(decoded).pixel_array)
    near = int(options[options.index("+md") + 1]) if "+md" in options else 2
    diff = np.abs(ours.astype(np.int64) - dicomfast.read(src).pixel_array.astype(np.int64))
    assert diff.max() <= near


# --- Errors ----------------------------------------------------------------

def _frame(name: str) -> tuple[bytes, ImageParams]:
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = dicomfast.read(path)
    from dicomfast.pixels import pixel_source
    from dicomfast.pixels.encaps import split_frames

    buf, tag, little, _, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    frames = split_frames(buf, params.number_of_frames, LOSSLESS, little_endian=little)
    return bytes(frames.frame(0)), params


def test_decode_frame_equals_pixel_array():
    data, params = _frame("MR_small_jpeg_ls_lossless.dcm")
    np.testing.assert_array_equal(decode_frame(data, params, LOSSLESS),
                                  dicomfast.read(find("MR_small_jpeg_ls_lossless.dcm"))
                                  .pixel_array)


@pytest.mark.parametrize("damage", ["empty", "header", "truncated", "garbage", "not_jpegls",
                                    "size"])
def test_corrupt_streams_raise_decode_error(capfd, damage):
    data, params = _frame("MR_small_jpeg_ls_lossless.dcm")
    bad = {
        "empty": b"",
        "header": data[:20],
        "truncated": data[: len(data) // 2],
        "garbage": data[:200] + bytes(range(256)) * 8 + data[200 + 2048:],
        "not_jpegls": b"\xff\xd8\xff\xc0" + data[4:],
        "size": data,
    }[damage]
    if damage == "size":
        from dataclasses import replace

        params = replace(params, rows=params.rows + 1)
    with pytest.raises(DecodeError) as exc:
        decode_frame(bad, params, LOSSLESS)
    assert exc.value.codec == "JPEG-LS"
    assert capfd.readouterr() == ("", "")


def test_output_too_small_is_a_value_error():
    data, params = _frame("MR_small_jpeg_ls_lossless.dcm")
    with pytest.raises(ValueError):
        _jpegls.decode(data, np.empty(16, np.uint8))




def test_decoding_releases_the_gil():
    path = find("RG2_JLSL.dcm") or find("MR_small_jpeg_ls_lossless.dcm")
    data, params = _frame(path.name)
    out = np.empty(params.frame_nbytes, np.uint8)
    calls = max(1, 2_000_000 // params.pixels_per_frame)
    # held, the loop runs about once per call; released, thousands of times a second
    assert ticks_while(lambda: [_jpegls.decode(data, out) for _ in range(calls)]) > 2 * calls + 50
