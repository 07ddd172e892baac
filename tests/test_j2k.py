"""JPEG 2000 (PS3.5 §A.4.4) and HTJ2K (PS3.5 §10.18) through OpenJPEG (_j2k) and
OpenJPH (_htj2k): differential tests against pydicom with pylibjpeg-openjpeg and
GDCM, the uncompressed twins, gdcmconv, imagecodecs and the HTJ2K conformance
codestreams.

Tolerances. JPEG 2000 frames decode with OpenJPEG, as pylibjpeg-openjpeg's do,
and GDCM agrees with both: every comparison is exact, lossy frames included.
HTJ2K frames decode with OpenJPH (the faster, benchmarks/bench_j2k.py): exact
for reversible (5/3) codestreams; irreversible (9/7) samples may differ by 1
from OpenJPEG's, because the two libraries run the inverse 9/7 wavelet in
floating point with different rounding (ISO/IEC 15444-1 Annex F specifies the
filter, not the arithmetic) -- OpenJPEG itself, through _j2k, stays exact.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from corpus import LJDATA, all_files, file_id, find
from gil import ticks_while
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames

import dicomfast
from dicomfast.errors import CodecUnavailableError, DecodeError
from dicomfast.pixels import ImageParams, decode_frame, encode_frame

try:
    from dicomfast._native import _j2k
except ImportError:
    _j2k = None
try:
    from dicomfast._native import _htj2k
except ImportError:
    _htj2k = None

needs_j2k = pytest.mark.skipif(
    _j2k is None, reason="dicomfast was built without OpenJPEG "
    "(cmake/openjpeg.cmake found no libopenjp2 >= 2.5, or DICOMFAST_OPENJPEG=OFF)")
needs_htj2k = pytest.mark.skipif(
    _htj2k is None, reason="dicomfast was built without OpenJPH "
    "(cmake/openjph.cmake found no libopenjph, or DICOMFAST_OPENJPH=OFF)")

J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
HT_DIR = LJDATA / "jpg" / "15444" / "HTJ2K"
PART1_DIR = LJDATA / "jpg" / "15444" / "2KLS"


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _pydicom(path, plugin="pylibjpeg"):
    ds = _quiet(pydicom.dcmread, path)
    ds.pixel_array_options(decoding_plugin=plugin)
    return _quiet(lambda: ds.pixel_array)


def _files(syntaxes):
    out = []
    for path in all_files():
        try:
            ds = _quiet(pydicom.dcmread, path, stop_before_pixels=True)
            ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
        except Exception:
            continue
        if ts in syntaxes:
            out.append(path)
    return out


FILES = _files({J2K_LOSSLESS, J2K})


def _first_frame(path):
    ds = _quiet(pydicom.dcmread, path)
    n = int(ds.get("NumberOfFrames") or 1)
    return next(generate_frames(ds.PixelData, number_of_frames=n)), ds


def _wrap(path, frames, ts, rows, columns, samples=1, bits=16, stored=None, pr=0,
          pi=None):
    """A small Part 10 file around encoded frames (written with pydicom)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    ds.BitsAllocated = bits
    ds.BitsStored = stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = pr
    ds.PhotometricInterpretation = pi or ("MONOCHROME2" if samples == 1 else "RGB")
    if samples > 1:
        ds.PlanarConfiguration = 0
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.PixelData = encapsulate(list(frames))
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def _decode(mod, data, shape, dtype, **kw):
    out = np.empty(shape, dtype)
    mod.decode(data, out.reshape(-1).view(np.uint8), **kw)
    return out


# --- the corpus against pydicom (pylibjpeg-openjpeg) and GDCM ---------------------------

def test_corpus_has_j2k_files():
    assert len(FILES) >= 30


@needs_j2k
@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_equals_pydicom_and_gdcm(path):
    # pydicom's pylibjpeg-openjpeg and GDCM plugins print OpenJPEG's messages
    # themselves; only dicomfast's behaviour is asserted.
    plugins = ["pylibjpeg"]
    try:
        import gdcm  # noqa: F401
        plugins.append("gdcm")
    except ImportError:
        pass
    try:
        expected = {plugin: _pydicom(path, plugin) for plugin in plugins}
    except AttributeError:
        pytest.skip("pydicom finds no Pixel Data in this file")
    except RuntimeError:
        # Both oracles refuse it (a cut codestream, a forged SIZ): so must we.
        with pytest.raises(DecodeError) as exc:
            dicomfast.read(path).pixel_array  # noqa: B018
        assert exc.value.codec.startswith("JPEG 2000")
        return
    ours = dicomfast.read(path).pixel_array
    for plugin, arr in expected.items():
        assert ours.dtype == arr.dtype, plugin
        np.testing.assert_array_equal(ours, arr, err_msg=plugin)


@needs_j2k
@pytest.mark.parametrize("compressed, uncompressed", [
    ("693_J2KR.dcm", "693_UNCR.dcm"),
    ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
    ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),
    ("RG3_J2KR.dcm", "RG3_UNCR.dcm"),
    ("US1_J2KR.dcm", "US1_UNCR.dcm"),                 # YBR_RCT -> RGB
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),  # 10 frames
    ("JPEG2000.dcm", "JPEG2000_UNC.dcm"),
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb_gdcm2k_uncompressed.dcm"),
])
def test_lossless_equals_uncompressed_twin(compressed, uncompressed):
    src, twin = find(compressed), find(uncompressed)
    if src is None or twin is None:
        pytest.skip(f"{compressed} or {uncompressed} is not in the corpus")
    np.testing.assert_array_equal(dicomfast.read(src).pixel_array,
                                  dicomfast.read(twin).pixel_array)


@needs_j2k
@pytest.mark.parametrize("name, signed", [
    ("J2K_pixelrep_mismatch.dcm", True),        # codestream unsigned 13-bit, PR 1
    ("TOSHIBA_J2K_SIZ0_PixRep1.dcm", True),     # codestream unsigned 16-bit, PR 1
    ("TOSHIBA_J2K_SIZ1_PixRep0.dcm", False),    # codestream signed 16-bit, PR 0
])
def test_pixel_representation_decides_signedness(name, signed):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    data, _ = _first_frame(path)
    assert _j2k.info(data)["signed"] is not signed
    arr = dicomfast.read(path).pixel_array
    assert arr.dtype == (np.int16 if signed else np.uint16)
    np.testing.assert_array_equal(arr, _pydicom(path))


# --- gdcmconv output ------------------------------------------------------------------------

GDCM_SOURCES = ["CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm", "RG1_UNCR.dcm",
                "SC_rgb.dcm", "SC_rgb_16bit.dcm", "SC_rgb_2frame.dcm", "emri_small.dcm",
                "693_UNCR.dcm"]


def _gdcmconv(source, out, *options):
    exe = shutil.which("gdcmconv")
    if exe is None:
        pytest.skip("gdcmconv (Debian libgdcm-tools) is not installed")
    src = find(source)
    if src is None:
        pytest.skip(f"{source} is not in the corpus")
    run = subprocess.run([exe, "--j2k", *options, str(src), str(out)], capture_output=True)
    if run.returncode != 0 or not out.exists():
        pytest.skip(f"gdcmconv cannot compress {source}: {run.stderr[-200:]!r}")
    return src


@needs_j2k
@pytest.mark.parametrize("source", GDCM_SOURCES)
def test_gdcmconv_lossless_decodes_exactly(source, tmp_path):
    out = tmp_path / "j2k.dcm"
    src = _gdcmconv(source, out)
    ours = dicomfast.read(out)
    assert str(ours.file_meta.TransferSyntaxUID) == J2K_LOSSLESS
    np.testing.assert_array_equal(ours.pixel_array, dicomfast.read(src).pixel_array)


@needs_j2k
@pytest.mark.parametrize("source", GDCM_SOURCES)
def test_gdcmconv_lossy_equals_pydicom(source, tmp_path):
    out = tmp_path / "j2k.dcm"
    src = _gdcmconv(source, out, "--irreversible", "-q", "40")
    ours = dicomfast.read(out).pixel_array
    np.testing.assert_array_equal(ours, _pydicom(out))
    original = dicomfast.read(src).pixel_array.astype(np.float64)
    assert np.abs(ours - original).mean() < 0.02 * (original.max() - original.min() + 1)


# --- our encoder -----------------------------------------------------------------------------

def _image(rows, columns, samples, bits, signed, seed=0):
    """A smooth picture with noise, filling `bits` (so precision really matters)."""
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    y, x = np.mgrid[0:rows, 0:columns]
    base = (np.sin(x / 7.0) + np.cos(y / 5.0) + 2) / 4 * (hi - lo) + lo
    shape = (rows, columns) if samples == 1 else (rows, columns, samples)
    if samples > 1:
        base = np.stack([np.roll(base, 3 * k, axis=1) for k in range(samples)], axis=-1)
    noisy = base + rng.normal(0, (hi - lo) / 50 + 1, shape)
    dtype = (np.int8 if signed else np.uint8) if bits <= 8 else (np.int16 if signed
                                                                  else np.uint16)
    return np.clip(np.rint(noisy), lo, hi).astype(dtype)


ENCODE_CASES = [
    (64, 64, 1, 8, False), (37, 53, 1, 12, False), (50, 31, 1, 16, True),
    (48, 40, 3, 8, False), (17, 9, 1, 16, False), (1, 1, 1, 8, False), (1, 70, 1, 10, True),
    (33, 2, 3, 16, False), (20, 20, 1, 1, False), (25, 20, 1, 7, True),
]


def _raw(arr):
    return np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)


@needs_j2k
@pytest.mark.parametrize("rows, columns, samples, bits, signed", ENCODE_CASES)
@pytest.mark.parametrize("mct", [False, True])
def test_encode_lossless_round_trip(rows, columns, samples, bits, signed, mct):
    if mct and samples != 3:
        pytest.skip("MCT needs three components")
    import openjpeg

    arr = _image(rows, columns, samples, bits, signed)
    cs = _j2k.encode(_raw(arr), rows, columns, samples, bits, signed, mct=mct)
    assert cs[:4] == b"\xff\x4f\xff\x51" and cs[-2:] == b"\xff\xd9"  # bare J2K: SOC SIZ .. EOC
    info = _j2k.info(cs)
    assert (info["precision"], info["signed"], info["reversible"], info["mct"]) == (
        bits, signed, True, mct)
    np.testing.assert_array_equal(_decode(_j2k, cs, arr.shape, arr.dtype), arr)
    np.testing.assert_array_equal(openjpeg.decode(cs).reshape(arr.shape), arr)


@needs_j2k
@pytest.mark.parametrize("rows, columns, samples, bits, signed",
                         [c for c in ENCODE_CASES if c[3] > 1])
def test_encoded_frames_decode_with_gdcm_and_pylibjpeg(rows, columns, samples, bits, signed,
                                                       tmp_path):
    pytest.importorskip("gdcm")
    arr = _image(rows, columns, samples, bits, signed)
    alloc = 8 if bits <= 8 else 16
    arr = arr.astype(arr.dtype.kind + str(alloc // 8))
    params = ImageParams(rows, columns, samples, alloc, bits, int(signed),
                         photometric_interpretation="MONOCHROME2" if samples == 1 else "RGB")
    cs = encode_frame(arr, J2K_LOSSLESS, params)
    path = _wrap(tmp_path / "ours.dcm", [cs], J2K_LOSSLESS, rows, columns, samples, alloc,
                 bits, int(signed))
    np.testing.assert_array_equal(dicomfast.read(path).pixel_array, arr)
    np.testing.assert_array_equal(_pydicom(path, "gdcm"), arr)
    np.testing.assert_array_equal(_pydicom(path, "pylibjpeg"), arr)


@needs_j2k
@pytest.mark.parametrize("kind, layers", [("ratio", 20), ("ratio", [40, 10, 4]),
                                          ("quality", 60), ("quality", [50, 60, 70]),
                                          ("none", None)])
def test_encode_lossy_decodes_like_pylibjpeg(kind, layers):
    import openjpeg

    src = dicomfast.read(find("MR_small.dcm")).pixel_array
    kw = {} if kind == "none" else {kind: layers}
    cs = _j2k.encode(_raw(src), 64, 64, 1, 16, True, lossless=False, **kw)
    info = _j2k.info(cs)
    assert not info["reversible"]
    assert info["layers"] == (1 if np.isscalar(layers) or layers is None else len(layers))
    ours = _decode(_j2k, cs, src.shape, src.dtype)
    np.testing.assert_array_equal(ours, openjpeg.decode(cs))
    if kind == "ratio":
        assert len(cs) <= src.nbytes / min(np.atleast_1d(layers)) * 1.1 + 300
    psnr = 10 * np.log10(2000.0 ** 2 / max(np.mean((ours - src.astype(float)) ** 2), 1e-9))
    assert psnr > 25


@needs_j2k
def test_more_quality_layers_grow_the_codestream():
    src = _raw(dicomfast.read(find("MR_small.dcm")).pixel_array)
    sizes = [len(_j2k.encode(src, 64, 64, 1, 16, True, lossless=False, ratio=r))
             for r in (40, 10, 3)]
    assert sizes == sorted(sizes)


@needs_j2k
@pytest.mark.parametrize("bad", [
    dict(ratio=10),                                  # lossless with a ratio
    dict(lossless=False, ratio=[5, 10]),             # ratios must fall
    dict(lossless=False, quality=[40, 30]),          # PSNRs must rise
    dict(lossless=False, ratio=5, quality=30),
    dict(mct=True),                                  # one component
    dict(progression="XYZ"),
])
def test_encode_rejects_bad_options(bad):
    src = _raw(_image(8, 8, 1, 8, False))
    with pytest.raises(ValueError):
        _j2k.encode(src, 8, 8, 1, 8, False, **bad)


@needs_j2k
def test_encode_rejects_samples_outside_bits_stored():
    arr = np.full((4, 4), 4096, np.uint16)
    with pytest.raises(ValueError):
        _j2k.encode(_raw(arr), 4, 4, 1, 12, False)
    with pytest.raises(ValueError):  # the buffer does not hold rows x columns samples
        _j2k.encode(_raw(arr)[:-2], 4, 4, 1, 12, False)


@needs_j2k
def test_encode_in_threads_is_identical():
    src = _raw(dicomfast.read(find("MR_small.dcm")).pixel_array)
    assert _j2k.encode(src, 64, 64, 1, 16, True, threads=2) == _j2k.encode(
        src, 64, 64, 1, 16, True)


# --- HTJ2K --------------------------------------------------------------------------------

def _ht_files():
    return sorted(HT_DIR.glob("*.j2k")) if HT_DIR.is_dir() else []


@needs_j2k
@pytest.mark.parametrize("path", _ht_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("which", ["openjpeg", "openjph"])
def test_ht_conformance_codestreams(path, which):
    import openjpeg

    mod = _j2k if which == "openjpeg" else _htj2k
    if mod is None:
        pytest.skip("dicomfast was built without OpenJPH")
    data = path.read_bytes()
    info = _j2k.info(data)
    assert info["htj2k"]
    expected = openjpeg.decode(data)
    ours = _decode(mod, data, expected.shape, expected.dtype)
    if info["reversible"] or which == "openjpeg":
        np.testing.assert_array_equal(ours, expected)
        if info["reversible"]:
            imagecodecs = pytest.importorskip("imagecodecs")
            np.testing.assert_array_equal(ours, imagecodecs.htj2k_decode(data))
    else:
        assert np.abs(ours.astype(int) - expected).max() <= 1


@needs_j2k
@pytest.mark.parametrize("path", _ht_files(), ids=lambda p: p.name)
def test_ht_codestream_in_a_data_set_equals_pydicom(path, tmp_path):
    data = path.read_bytes()
    info = _j2k.info(data)
    ts = HTJ2K_LOSSLESS if info["reversible"] else HTJ2K
    pi = ("YBR_RCT" if info["reversible"] else "YBR_ICT") if info["mct"] else None
    dcm = _wrap(tmp_path / "ht.dcm", [data], ts, info["rows"], info["columns"],
                info["components"], 8, info["precision"], pi=pi)
    ours = dicomfast.read(dcm).pixel_array.astype(int)
    tolerance = 0 if info["reversible"] else 1
    assert np.abs(ours - _pydicom(dcm)).max() <= tolerance


@needs_htj2k
@pytest.mark.parametrize("rows, columns, samples, bits, signed",
                         [c for c in ENCODE_CASES if c[3] > 1])
def test_ht_encode_lossless_round_trip(rows, columns, samples, bits, signed):
    import openjpeg

    arr = _image(rows, columns, samples, bits, signed)
    cs = _htj2k.encode(_raw(arr), rows, columns, samples, bits, signed)
    info = _htj2k.info(cs)
    assert info["htj2k"] and info["reversible"] and info["progression"] == "RPCL"
    np.testing.assert_array_equal(_decode(_htj2k, cs, arr.shape, arr.dtype), arr)
    np.testing.assert_array_equal(openjpeg.decode(cs).reshape(arr.shape), arr)
    if _j2k is not None:
        np.testing.assert_array_equal(_decode(_j2k, cs, arr.shape, arr.dtype), arr)


@needs_htj2k
def test_ht_lossy_encode_is_close_and_decoders_agree():
    import openjpeg

    src = dicomfast.read(find("MR_small.dcm")).pixel_array
    # qstep is relative to the full 16-bit range: 1e-4 is a step of about 6.5
    errors = []
    for qstep in (0.002, 0.0001):
        cs = _htj2k.encode(_raw(src), 64, 64, 1, 16, True, lossless=False, qstep=qstep)
        ours = _decode(_htj2k, cs, src.shape, src.dtype)
        assert np.abs(ours.astype(int) - openjpeg.decode(cs)).max() <= 1
        errors.append((len(cs), np.abs(ours.astype(float) - src).mean()))
    (coarse_size, coarse_error), (fine_size, fine_error) = errors
    assert coarse_size < fine_size and fine_error < coarse_error and fine_error < 4


@needs_htj2k
def test_htj2k_lossless_rpcl_follows_ps3_5():
    # PS3.5 §10.18: RPCL, a base resolution of at most 64 pixels, TLM present.
    src = dicomfast.read(find("RG1_UNCR.dcm") or find("MR_small.dcm"))
    params = ImageParams.from_dataset(src)
    arr = src.pixel_array
    cs = encode_frame(arr, HTJ2K_RPCL, params)
    info = _htj2k.info(cs)
    assert info["progression"] == "RPCL" and info["reversible"] and info["htj2k"]
    assert max(params.rows, params.columns) / 2 ** info["levels"] <= 64
    tlm = cs.find(b"\xff\x55")
    assert 0 < tlm < cs.find(b"\xff\x90")
    # Ptlm is the first tile-part's Psot (ST=2, SP=1: Stlm 0x60)
    assert cs[tlm + 5] == 0x60
    assert cs[tlm + 8:tlm + 12] == cs[cs.find(b"\xff\x90") + 6:cs.find(b"\xff\x90") + 10]
    np.testing.assert_array_equal(decode_frame(cs, params, HTJ2K_RPCL), arr)


# --- the registry: encode_frame -> a data set -> read back ----------------------------------

REGISTRY_CASES = [
    (J2K_LOSSLESS, "CT_small.dcm", None, 0), (J2K_LOSSLESS, "US1_UNCR.dcm", "YBR_RCT", 0),
    (J2K_LOSSLESS, "SC_rgb.dcm", "RGB", 0), (J2K, "MR_small.dcm", None, None),
    (J2K, "US1_UNCR.dcm", "YBR_ICT", None),
    (HTJ2K_LOSSLESS, "CT_small.dcm", None, 0), (HTJ2K_LOSSLESS, "US1_UNCR.dcm", "YBR_RCT", 0),
    (HTJ2K_RPCL, "MR_small.dcm", None, 0), (HTJ2K, "US1_UNCR.dcm", "YBR_ICT", None),
    (HTJ2K, "emri_small.dcm", None, None),
]


@pytest.mark.parametrize("ts, source, pi, exact", REGISTRY_CASES,
                         ids=[f"{c[0][-3:]}-{c[1]}" for c in REGISTRY_CASES])
def test_registry_round_trip(ts, source, pi, exact, tmp_path):
    if _j2k is None and (ts in (J2K_LOSSLESS, J2K) or _htj2k is None):
        pytest.skip("dicomfast was built without OpenJPEG")
    if _htj2k is None and ts not in (J2K_LOSSLESS, J2K):
        pytest.skip("dicomfast was built without OpenJPH (the HTJ2K encoder)")
    src = dicomfast.read(find(source))
    params = ImageParams.from_dataset(src)
    if pi is not None:
        params = replace(params, photometric_interpretation=pi)
    arr = src.pixel_array.reshape(params.array_shape())
    frames = [arr] if params.number_of_frames == 1 else list(arr)
    single = replace(params, number_of_frames=1)
    encoded = [encode_frame(f, ts, single) for f in frames]
    path = _wrap(tmp_path / "out.dcm", encoded, ts, params.rows, params.columns,
                 params.samples_per_pixel, params.bits_allocated, params.bits_stored,
                 params.pixel_representation, params.photometric_interpretation)
    ours = dicomfast.read(path).pixel_array
    if exact == 0:
        np.testing.assert_array_equal(ours, arr)
    else:
        spread = float(arr.max()) - float(arr.min()) + 1
        assert np.abs(ours.astype(float) - arr).mean() < 0.01 * spread
    # pydicom decodes every one of these with pylibjpeg-openjpeg (OpenJPEG).
    tolerance = 1 if ts == HTJ2K and exact is None else 0
    assert np.abs(ours.astype(int) - _pydicom(path)).max() <= tolerance


def test_htj2k_decoding_falls_back_to_openjpeg_for_part1_codestreams():
    """An HTJ2K transfer syntax may carry Part 1 code-blocks, which OpenJPH cannot decode."""
    if _j2k is None:
        pytest.skip("dicomfast was built without OpenJPEG")
    data, ds = _first_frame(find("MR_small_jp2klossless.dcm"))
    params = ImageParams.from_dataset(ds)
    np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS),
                                  decode_frame(data, params, J2K_LOSSLESS))


@needs_j2k
@needs_htj2k
def test_htj2k_decoder_choice(monkeypatch):
    """OpenJPH decodes HTJ2K frames by default (the quicker), OpenJPEG on request. Both
    give the same pixels, and each choice really reaches its library; with isolation
    on (the default) the call goes to a helper process naming the same module."""
    from dicomfast.pixels import codecs, isolated

    params = ImageParams(64, 64, bits_allocated=16, bits_stored=16, pixel_representation=1)
    src = np.random.default_rng(5).integers(-3000, 3000, (64, 64), dtype=np.int16)
    data = encode_frame(src, HTJ2K_LOSSLESS, params)
    assert codecs._htj2k_decoder == "openjph"
    used = []
    for mod in (_j2k, _htj2k):
        real = mod.decode
        monkeypatch.setattr(mod, "decode", lambda *a, _r=real, _m=mod, **k: (
            used.append(_m.__name__), _r(*a, **k))[1])
    real_isolated = isolated.decode
    monkeypatch.setattr(isolated, "decode", lambda module, *a, **k: (
        used.append("isolated " + module), real_isolated(module, *a, **k))[1])
    for isolate in (False, True):
        previous_isolation = isolated.set_isolation(isolate)
        try:
            np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
            previous = codecs.set_htj2k_decoder("openjpeg")
            try:
                assert previous == "openjph"
                np.testing.assert_array_equal(decode_frame(data, params, HTJ2K_LOSSLESS), src)
            finally:
                codecs.set_htj2k_decoder(previous)
        finally:
            isolated.set_isolation(previous_isolation)
    assert used == ["dicomfast._native._htj2k", "dicomfast._native._j2k",
                    "isolated dicomfast._native._htj2k", "isolated dicomfast._native._j2k"]
    with pytest.raises(ValueError, match="openjph"):
        codecs.set_htj2k_decoder("kakadu")


# --- options: reduce, threads, strict ----------------------------------------------------

@needs_j2k
@needs_htj2k
@pytest.mark.parametrize("reduce", [1, 2, 5])
def test_reduce_matches_imagecodecs(reduce):
    # The reversible 5/3 low band does not depend on the block coder, so a Part 1
    # and an HT codestream of one image reduce to the same samples; imagecodecs'
    # OpenJPH (skipres) is the independent decoder.
    imagecodecs = pytest.importorskip("imagecodecs")
    arr = dicomfast.read(find("RG3_UNCR.dcm") or find("MR_small.dcm")).pixel_array
    rows, columns = arr.shape
    bits = int(arr.max()).bit_length()
    part1 = _j2k.encode(_raw(arr), rows, columns, 1, bits, False, levels=5)
    ht = _htj2k.encode(_raw(arr), rows, columns, 1, bits, False, levels=5)
    # imagecodecs leaves reduced samples unclamped (a -1 comes back as 65535);
    # OpenJPEG and OpenJPH clamp to the precision's range.
    expected = imagecodecs.htj2k_decode(ht, skipres=reduce).astype(np.int16)
    expected = expected.clip(0, (1 << bits) - 1).astype(arr.dtype)
    assert expected.shape == (-(-rows // 2 ** reduce), -(-columns // 2 ** reduce))
    for mod, data in ((_j2k, part1), (_j2k, ht), (_htj2k, ht)):
        ours = _decode(mod, data, expected.shape, arr.dtype, reduce=reduce)
        np.testing.assert_array_equal(ours, expected)
    with pytest.raises(ValueError):
        _j2k.decode(part1, np.empty(16, np.uint8), reduce=6)


@needs_j2k
@needs_htj2k
@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, HTJ2K_LOSSLESS])
def test_frame_reduce_through_the_dataset(syntax, tmp_path):
    """Dataset.frame(i, reduce=r): the low band of the frame, as imagecodecs' OpenJPH
    gives it (skipres), for Part 1 and HTJ2K (the latter through a helper process);
    capped at the codestream's levels; refused where the data is not JPEG 2000."""
    imagecodecs = pytest.importorskip("imagecodecs")
    source = dicomfast.read(find("RG3_UNCR.dcm") or find("MR_small.dcm"))
    arr = source.pixel_array
    rows, columns = arr.shape
    bits = int(arr.max()).bit_length()
    reference = imagecodecs.htj2k_decode(_htj2k.encode(_raw(arr), rows, columns, 1, bits, False,
                                                       levels=5), skipres=2)
    reference = reference.astype(np.int16).clip(0, (1 << bits) - 1).astype(arr.dtype)
    path = tmp_path / "reduced.dcm"
    source.save(path, transfer_syntax=syntax)
    ds = dicomfast.read(path)
    small = ds.frame(0, reduce=2)
    assert small.shape == (-(-rows // 4), -(-columns // 4))
    np.testing.assert_array_equal(small, reference)
    np.testing.assert_array_equal(ds.frame(0), arr)  # full size still as stored
    levels = _j2k.info(next(generate_frames(pydicom.dcmread(path).PixelData,
                                            number_of_frames=1)))["levels"]
    assert ds.frame(0, reduce=levels + 3).shape == ds.frame(0, reduce=levels).shape
    with pytest.raises(ValueError, match="reduce"):
        source.frame(0, reduce=1)


@needs_j2k
def test_one_frame_decodes_on_openjpeg_threads(monkeypatch):
    """frame(i, threads=N), and frames() of a one-frame data set, hand the threads to
    OpenJPEG (there is no second frame to share out); the samples do not change."""
    path = find("RG1_J2KI.dcm") or find("US1_J2KR.dcm")
    if path is None:
        pytest.skip("no JPEG 2000 corpus file")
    from dicomfast.pixels import isolated

    isolated_before = isolated.set_isolation(False)  # see the call in this process
    try:
        ds = dicomfast.read(path)
        single = ds.frame(0)
        seen = []
        real = _j2k.decode
        monkeypatch.setattr(_j2k, "decode", lambda *a, **k: (seen.append(k.get("threads")),
                                                             real(*a, **k))[1])
        np.testing.assert_array_equal(ds.frame(0, threads=2), single)
        np.testing.assert_array_equal(ds.frames(threads=2)[0], single)
        np.testing.assert_array_equal(ds.frame(0), single)
        assert seen == [2, 2, 1]
    finally:
        isolated.set_isolation(isolated_before)


@needs_j2k
@pytest.mark.parametrize("name", ["RG1_J2KI.dcm", "US1_J2KR.dcm"])
def test_threads_give_the_same_samples(name):
    data, ds = _first_frame(find(name))
    shape = (ds.Rows, ds.Columns, ds.SamplesPerPixel)
    dtype = np.uint8 if ds.BitsAllocated == 8 else np.uint16
    np.testing.assert_array_equal(_decode(_j2k, data, shape, dtype, threads=2),
                                  _decode(_j2k, data, shape, dtype))


def _most_threads_while(work) -> int:
    """The most OS threads this process had while `work` ran on another thread
    (Linux: one /proc/self/task entry per thread, OpenJPEG's pthreads included)."""
    done = threading.Event()

    def run() -> None:
        try:
            for _ in range(3):
                work()
        finally:
            done.set()

    worker = threading.Thread(target=run)
    worker.start()
    most = 0
    while not done.is_set():
        most = max(most, len(os.listdir("/proc/self/task")))
        time.sleep(0.0005)
    worker.join()
    return most


@needs_j2k
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("direction", ["decode", "encode"])
def test_one_thread_means_no_openjpeg_worker(direction):
    """threads=1 runs OpenJPEG on the calling thread: a pool of one worker would do
    the same work plus a hand-off and a context switch per code-block. threads=2
    starts two workers, so the count below can see them."""
    data, ds = _first_frame(find("RG1_J2KI.dcm"))
    raw = np.zeros(ds.Rows * ds.Columns, "<u2").view(np.uint8)
    out = np.empty(raw.nbytes, np.uint8)

    def work(threads: int):
        if direction == "decode":
            return lambda: _j2k.decode(data, out, threads=threads)
        return lambda: _j2k.encode(raw, ds.Rows, ds.Columns, 1, 16, False, threads=threads)

    base = len(os.listdir("/proc/self/task"))
    assert _most_threads_while(work(1)) == base + 1        # the Python worker only
    assert _most_threads_while(work(2)) >= base + 3        # plus OpenJPEG's two


@needs_j2k
def test_strict_refuses_jp2_boxes():
    path = find("ELSCINT1_JP2vsJ2K.dcm")
    if path is None:
        pytest.skip("ELSCINT1_JP2vsJ2K.dcm is not in the corpus")
    data, ds = _first_frame(path)
    info = _j2k.info(data)
    assert info["jp2"] and info["codestream_offset"] > 0
    out = np.empty(ds.Rows * ds.Columns * 2, np.uint8)
    _j2k.decode(data, out)
    with pytest.raises(DecodeError):
        _j2k.decode(data, out, strict=True)


@needs_j2k
def test_subsampled_components_are_a_decode_error():
    path = PART1_DIR / "oj36.j2k"
    if not path.exists():
        pytest.skip("oj36.j2k is not in ../shared")
    data = path.read_bytes()
    assert _j2k.info(data)["subsampled"]
    with pytest.raises(DecodeError):
        _j2k.decode(data, np.empty(256 * 256 * 3, np.uint8))


@needs_j2k
def test_output_too_small_is_a_value_error():
    data, ds = _first_frame(find("MR_small_jp2klossless.dcm"))
    with pytest.raises(ValueError):
        _j2k.decode(data, np.empty(64 * 64 * 2 - 1, np.uint8))


@needs_j2k
def test_precision_above_bits_allocated_is_a_decode_error():
    data, ds = _first_frame(find("MR_small_jp2klossless.dcm"))
    params = ImageParams(64, 64, 1, 8, 8, 1)
    with pytest.raises(DecodeError):
        decode_frame(data, params, J2K_LOSSLESS)


# --- corrupt codestreams ---------------------------------------------------------------------

def _corpus_streams():
    """(codestream, ImageParams, transfer syntax) to damage: J2K lossless and lossy,
    HTJ2K lossless and lossy."""
    out = []
    for name, ts in (("MR_small_jp2klossless.dcm", J2K_LOSSLESS), ("US1_J2KI.dcm", J2K)):
        path = find(name)
        if path is not None:
            data, ds = _first_frame(path)
            out.append((data, ImageParams.from_dataset(ds), ts))
    if _htj2k is not None:
        src = dicomfast.read(find("MR_small.dcm")).pixel_array
        params = ImageParams(64, 64, 1, 16, 16, 1)
        out.append((_htj2k.encode(_raw(src), 64, 64, 1, 16, True), params, HTJ2K_LOSSLESS))
        out.append((_htj2k.encode(_raw(src), 64, 64, 1, 16, True, lossless=False,
                                  qstep=0.01), params, HTJ2K))
    return out


STREAMS = _corpus_streams() if _j2k is not None else []


@needs_j2k
@pytest.mark.parametrize("k", range(len(STREAMS)))
def test_truncated_codestreams_raise_decode_error(k, capfd):
    data, params, ts = STREAMS[k]
    full = decode_frame(data, params, ts)
    for n in sorted({*range(0, 200, 7), *range(0, len(data) - 2, max(1, len(data) // 97))}):
        try:
            arr = decode_frame(data[:n], params, ts)
        except DecodeError:
            continue
        # Only a cut in the last packet's padding may still give the whole image.
        np.testing.assert_array_equal(arr, full, err_msg=f"cut at {n} of {len(data)}")
    assert capfd.readouterr() == ("", "")


@needs_j2k
@pytest.mark.parametrize("k", range(len(STREAMS)))
def test_bit_flips_raise_decode_error_or_decode(k, capfd):
    data, params, ts = STREAMS[k]
    rng = random.Random(20240 + k)
    for _ in range(300):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(bad))
            bad[i] ^= 1 << rng.randrange(8)
        try:
            decode_frame(bytes(bad), params, ts)
        except DecodeError:
            pass
    assert capfd.readouterr() == ("", "")


def _forge_siz(data, **fields):
    """Rewrite SIZ fields (15444-1 Table A.9) of a bare codestream."""
    names = ["Xsiz", "Ysiz", "XOsiz", "YOsiz", "XTsiz", "YTsiz", "XTOsiz", "YTOsiz"]
    values = list(struct.unpack(">8I", data[8:40]))
    for name, value in fields.items():
        if name in names:
            values[names.index(name)] = value
    out = data[:8] + struct.pack(">8I", *values) + data[40:]
    if "Csiz" in fields:
        out = out[:40] + struct.pack(">H", fields["Csiz"]) + out[42:]
    return out


FORGED = {
    "huge": dict(Xsiz=0xFFFFFFF0, Ysiz=0xFFFFFFF0, XTsiz=0xFFFFFFF0, YTsiz=0xFFFFFFF0),
    "tiny_tiles": dict(Xsiz=60000, Ysiz=60000, XTsiz=1, YTsiz=1),
    "wider": dict(Xsiz=65),
    "shorter": dict(Ysiz=63),
    "origin_past_end": dict(XOsiz=64),
    "no_components": dict(Csiz=0),
    "more_components": dict(Csiz=3),
}


@needs_j2k
@pytest.mark.parametrize("forge", sorted(FORGED))
@pytest.mark.parametrize("ts", [J2K_LOSSLESS, HTJ2K_LOSSLESS])
def test_forged_siz_is_a_decode_error(forge, ts, capfd):
    data, ds = _first_frame(find("MR_small_jp2klossless.dcm"))
    if ts == HTJ2K_LOSSLESS:
        if _htj2k is None:
            pytest.skip("dicomfast was built without OpenJPH")
        data = _htj2k.encode(_raw(ds.pixel_array), 64, 64, 1, 16, True)
    bad = _forge_siz(data, **FORGED[forge])
    with pytest.raises(DecodeError):
        decode_frame(bad, ImageParams(64, 64, 1, 16, 16, 1), ts)
    # Straight to the module, with no expected size: the output size stops it,
    # or, for a smaller image, the codestream decodes into part of the output.
    try:
        written = _j2k.decode(bad, np.empty(64 * 64 * 2, np.uint8))
        assert written < 64 * 64 * 2
    except (DecodeError, ValueError):
        pass
    assert capfd.readouterr() == ("", "")


@needs_j2k
def test_rows_and_columns_disagreeing_with_the_codestream(tmp_path, capfd):
    data, ds = _first_frame(find("MR_small_jp2klossless.dcm"))
    for rows, columns in ((64, 32), (32, 64), (65, 64)):
        path = _wrap(tmp_path / f"{rows}x{columns}.dcm", [data], J2K_LOSSLESS, rows, columns,
                     1, 16, 16, 1)
        with pytest.raises(DecodeError) as exc:
            dicomfast.read(path).pixel_array  # noqa: B018
        assert exc.value.codec == "JPEG 2000 Lossless" and exc.value.frame == 0
    assert capfd.readouterr() == ("", "")


@needs_j2k
@pytest.mark.parametrize("bad", [b"", b"\xff\x4f", b"\xff\xd8\xff\xe0" + bytes(100),
                                 bytes(range(256)) * 4,
                                 b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x08jp2c"])
def test_not_a_codestream(bad, capfd):
    with pytest.raises(DecodeError):
        _j2k.info(bad)
    with pytest.raises(DecodeError):
        decode_frame(bad, ImageParams(8, 8, 1, 8, 8), J2K_LOSSLESS)
    assert capfd.readouterr() == ("", "")


# --- the GIL, and builds without the libraries ----------------------------------------------



@needs_j2k
@pytest.mark.parametrize("which", ["openjpeg", "openjph"])
def test_decoding_releases_the_gil(which):
    mod = _j2k if which == "openjpeg" else _htj2k
    if mod is None:
        pytest.skip("dicomfast was built without OpenJPH")
    src = _image(512, 512, 1, 12, False)
    encode = _j2k.encode if which == "openjpeg" else _htj2k.encode
    data = encode(_raw(src), 512, 512, 1, 12, False)
    out = np.empty(src.nbytes, np.uint8)
    calls = 20
    # held, the loop runs about once per call; released, many times per call
    assert ticks_while(lambda: [mod.decode(data, out) for _ in range(calls)]) > 2 * calls + 50


def test_missing_openjpeg_raises_codec_unavailable(monkeypatch):
    # A build without OpenJPEG has no _j2k module; a None entry in sys.modules
    # makes the import fail the same way here.
    monkeypatch.setitem(sys.modules, "dicomfast._native._j2k", None)
    path = find("MR_small_jp2klossless.dcm")
    with pytest.raises(CodecUnavailableError) as exc:
        dicomfast.read(path).pixel_array  # noqa: B018
    assert "libopenjp2-7-dev" in str(exc.value)


@pytest.mark.skipif(_j2k is not None, reason="this build has OpenJPEG")
def test_build_without_openjpeg_raises_codec_unavailable():
    with pytest.raises(CodecUnavailableError):
        dicomfast.read(find("MR_small_jp2klossless.dcm")).pixel_array  # noqa: B018
    from dicomfast.pixels.codecs import available_codecs

    assert available_codecs()[J2K_LOSSLESS] is False


@pytest.mark.skipif(_htj2k is not None, reason="this build has OpenJPH")
def test_build_without_openjph_cannot_encode_htj2k():
    arr = np.zeros((4, 4), np.uint16)
    with pytest.raises(CodecUnavailableError):
        encode_frame(arr, HTJ2K_LOSSLESS, ImageParams(4, 4))
