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
    # A frame of 1024 x 1024 noisy 12-bit samples: tens of milliseconds a decode,
    # whatever files the corpus holds.
    rng = np.random.default_rng(9)
    raw = rng.integers(0, 1 << 12, 1024 * 1024, dtype=np.uint16)
    data = _jpegls.encode(raw.view(np.uint8), 1024, 1024, 1, 12)
    out = np.empty(raw.nbytes, np.uint8)
    calls = 3
    # held, the loop runs about once per call; released, thousands of times a second
    assert ticks_while(lambda: [_jpegls.decode(data, out) for _ in range(calls)]) > 2 * calls + 50
    np.testing.assert_array_equal(out.view(np.uint16), raw)


# --- Encoding (CharLS), checked by decoders that are not ours ---------------------------

def _libjpeg_frames(path) -> list[np.ndarray]:
    """Each frame of a JPEG-LS file decoded by libjpeg (pylibjpeg-libjpeg), an
    implementation of ISO/IEC 14495-1 independent of CharLS."""
    libjpeg = pytest.importorskip("libjpeg")
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    n = int(ds.get("NumberOfFrames") or 1)
    return [np.asarray(libjpeg.decode(f)) for f in generate_frames(ds.PixelData,
                                                                    number_of_frames=n)]


def _as_stored(frames: list[np.ndarray], reference: np.ndarray, bits: int) -> np.ndarray:
    """libjpeg's unsigned P-bit samples as the data set's (sign-extended) values."""
    out = np.stack([f.reshape(reference.shape[-f.ndim:]) for f in frames]).reshape(
        reference.shape).astype(np.int64)
    if reference.dtype.kind == "i":
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


@pytest.mark.parametrize("source", [
    "MR_small.dcm",            # signed, 16 of 16 bits
    "CT_small.dcm",            # signed
    "emri_small.dcm",          # 10 frames, 12 of 16 bits
    "OBXXXX1A.dcm",            # 8-bit
    "US1_UNCR.dcm",            # RGB, 8-bit
    "SC_rgb_16bit.dcm",        # RGB, 16-bit
    "RG1_UNCR.dcm",            # 15 of 16 bits, 1955 x 1841
])
def test_lossless_encode_decodes_exactly_elsewhere(tmp_path, source):
    """Our JPEG-LS Lossless files decode, sample for sample, to the source with
    libjpeg, with DCMTK's dcmdjpls and with our decoder."""
    src = find(source)
    if src is None:
        pytest.skip(f"{source} is not in the corpus")
    ds = dicomfast.read(src)
    expected = ds.pixel_array
    out = tmp_path / "jls.dcm"
    ds.save(out, transfer_syntax=LOSSLESS)
    assert dicomfast.read(out).transfer_syntax.uid == LOSSLESS
    np.testing.assert_array_equal(dicomfast.read(out).pixel_array, expected)
    np.testing.assert_array_equal(
        _as_stored(_libjpeg_frames(out), expected, int(ds.BitsStored)), expected)
    if DCMTK:
        decoded = tmp_path / "dec.dcm"
        subprocess.run(["dcmdjpls", str(out), str(decoded)], check=True, capture_output=True)
        np.testing.assert_array_equal(pydicom.dcmread(decoded).pixel_array, expected)


@pytest.mark.parametrize("source, near", [("RG1_UNCR.dcm", 3), ("US1_UNCR.dcm", 1),
                                          ("CT_small.dcm", 2), ("emri_small.dcm", 5)])
def test_near_lossless_encode_keeps_every_sample_within_near(tmp_path, source, near):
    src = find(source)
    if src is None:
        pytest.skip(f"{source} is not in the corpus")
    ds = dicomfast.read(src)
    source = ds.pixel_array
    expected = source.astype(np.int64)
    out = tmp_path / "jls.dcm"
    ds.save(out, transfer_syntax=NEAR_LOSSLESS, allow_lossy=True, encode_options={"near": near})
    back = dicomfast.read(out)
    assert str(back.LossyImageCompression) == "01"
    assert "ISO_14495_1" in str(back.LossyImageCompressionMethod)
    ours = back.pixel_array.astype(np.int64)
    theirs = _as_stored(_libjpeg_frames(out), source, int(ds.BitsStored))
    np.testing.assert_array_equal(ours, theirs)
    assert np.abs(ours - expected).max() <= near
    assert _jpegls.info(bytes(next(iter(_first_frames(out)))))["near_lossless"] == near


def _first_frames(path):
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    return generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1))


def test_near_lossless_of_signed_samples_at_the_ends_is_refused():
    """NEAR bounds the error of the unsigned P-bit codes, where the largest and the
    most negative signed samples are neighbours: a sample within NEAR of either end
    could come back as the other. Those frames are refused, not corrupted."""
    from dicomfast.errors import EncodeError
    from dicomfast.pixels import encode_frame

    params = ImageParams(4, 4, bits_allocated=16, bits_stored=12, pixel_representation=1)
    frame = np.zeros((4, 4), np.int16)
    frame[1, 2] = 2047                       # the largest 12-bit signed value
    lossless = encode_frame(frame, LOSSLESS, params)
    np.testing.assert_array_equal(decode_frame(lossless, params, LOSSLESS), frame)
    with pytest.raises(EncodeError, match="sample 6 is 2047, outside the 12-bit signed "
                                          "range -2046..2045"):
        dicomfast.pixels.codecs.codec_for(NEAR_LOSSLESS).encode(frame, params, near=2)
    frame[1, 2] = 2045
    near = dicomfast.pixels.codecs.codec_for(NEAR_LOSSLESS).encode(frame, params, near=2)
    assert np.abs(decode_frame(near, params, NEAR_LOSSLESS).astype(int) - frame).max() <= 2


@pytest.mark.parametrize("change, message", [
    ({"bits_allocated": 32, "bits_stored": 32}, "bits allocated, not 32"),
    ({"bits_allocated": 1, "bits_stored": 1}, "bits allocated, not 1"),
    ({"samples_per_pixel": 3, "photometric_interpretation": "YBR_FULL_422"},
     "not 3-sample YBR_FULL_422"),
    ({"bits_stored": 10}, "sample 0 is 4095, outside the 10-bit unsigned range 0..1023"),
])
def test_frames_jpegls_cannot_hold_are_encode_errors(change, message):
    from dataclasses import replace

    from dicomfast.errors import EncodeError

    params = replace(ImageParams(8, 8, bits_allocated=16, bits_stored=12), **change)
    frame = np.full(params.frame_shape, 4095 if params.bits_allocated >= 12 else 1,
                    params.dtype)
    with pytest.raises(EncodeError, match=message):
        dicomfast.pixels.codecs.codec_for(LOSSLESS).encode(frame, params)


def test_palette_colour_is_lossless_only():
    from dicomfast.errors import EncodeError

    params = ImageParams(8, 8, bits_allocated=8, bits_stored=8,
                         photometric_interpretation="PALETTE COLOR")
    frame = np.arange(64, dtype=np.uint8).reshape(8, 8)
    codecs = dicomfast.pixels.codecs
    np.testing.assert_array_equal(
        decode_frame(codecs.codec_for(LOSSLESS).encode(frame, params), params, LOSSLESS), frame)
    with pytest.raises(EncodeError, match="PALETTE COLOR"):
        codecs.codec_for(NEAR_LOSSLESS).encode(frame, params)


def test_encoding_releases_the_gil():
    raw = np.random.default_rng(3).integers(0, 1 << 12, 1024 * 1024, dtype=np.uint16)
    assert ticks_while(lambda: [_jpegls.encode(raw.view(np.uint8), 1024, 1024, 1, 12)
                                for _ in range(3)]) > 20


@pytest.mark.parametrize("source, reference", [
    ("T8C2E0.JLS", "T8C2E0.JLS"),      # 8-bit colour, sample-interleaved, lossless
    ("T16E0.JLS", "T16E0.JLS"),        # 16-bit grey (12 bits), lossless
    ("T8C2E0.JLS", "T8C2E3.JLS"),      # the same image, NEAR 3
    ("T16E0.JLS", "T16E3.JLS"),
])
def test_encoder_reproduces_the_iso_conformance_streams(source, reference):
    """ISO/IEC 14495-1's conformance streams, encoded again from their images (the
    lossless streams decode to them): our scans are the reference's, byte for byte,
    from SOS to EOI (the headers may differ in optional marker segments)."""
    image = _iso(source)
    ref = next(ISO.rglob(reference)).read_bytes()
    info = _jpegls.info(ref)
    ours = _jpegls.encode(np.ascontiguousarray(image).reshape(-1).view(np.uint8),
                          info["rows"], info["columns"], info["components"],
                          info["precision"], near=info["near_lossless"])
    assert ours[ours.find(b"\xff\xda"):] == ref[ref.find(b"\xff\xda"):]
