"""Native pixel data: dicomfast's arrays equal pydicom's for every corpus file."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from corpus import all_files, file_id

import dicomfast
from dicomfast.errors import DicomfastError

NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                   "1.2.840.10008.1.2.1.99"}


def _native_files():
    out = []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=False)
                ts = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
                has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData",
                                                   "DoubleFloatPixelData"))
        except Exception:
            continue
        if has_pixels and ts in NATIVE_SYNTAXES:
            out.append(path)
    return out


FILES = _native_files()


def _pydicom_pixels(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.pixels.pixel_array(str(path), raw=True)
        except AttributeError:
            # pydicom's path-based reader misses deflated data sets; its
            # Dataset API reads them.
            return pydicom.dcmread(path).pixel_array


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_pixel_array_matches_pydicom(path):
    try:
        expected = _pydicom_pixels(path)
    except Exception:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(DicomfastError):
                dicomfast.read(path).pixel_array  # noqa: B018
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dicomfast.DicomfastWarning)
        ds = dicomfast.read(path)
        arr = ds.pixel_array
    assert arr.shape == expected.shape
    # pydicom keeps big-endian dtypes; dicomfast swaps into native order.
    assert arr.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(arr, expected)


def test_corpus_has_native_files():
    assert len(FILES) > 40


@pytest.mark.parametrize("path", FILES[:30], ids=file_id)
def test_frames_and_out(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dicomfast.DicomfastWarning)
        ds = dicomfast.read(path)
        try:
            full = ds.pixel_array
        except DicomfastError:
            return
    n = int(ds.NumberOfFrames) if ds.get("NumberOfFrames") else 1
    frame_shape = full.shape[-2:] if ds.get("SamplesPerPixel", 1) == 1 else full.shape[-3:]
    stack = full.reshape((n, *frame_shape))
    for i in {0, n - 1, n // 2}:
        np.testing.assert_array_equal(ds.frame(i), stack[i])
        out = np.zeros_like(stack[i])
        got = ds.frame(i, out=out)
        np.testing.assert_array_equal(out, stack[i])
        assert got.base is out or got is out or np.shares_memory(got, out)
    batch = np.zeros((n + 1, *stack.shape[1:]), stack.dtype)
    ds.frames(out=batch[1:])  # a slice of a preallocated batch works
    np.testing.assert_array_equal(batch[1:], stack)
    picked = ds.frames([n - 1, 0])
    np.testing.assert_array_equal(picked[0], stack[n - 1])
    np.testing.assert_array_equal(picked[1], stack[0])


def test_little_endian_is_zero_copy_view():
    from corpus import find

    path = find("CT_small.dcm")
    ds = dicomfast.read(path)
    arr = ds.pixel_array
    assert not arr.flags.writeable  # a read-only view of the file buffer
    assert not arr.flags.owndata


def test_out_validation():
    from corpus import find

    ds = dicomfast.read(find("CT_small.dcm"))
    with pytest.raises(ValueError):
        ds.frame(0, out=np.zeros((128, 128), np.uint8))
    with pytest.raises(ValueError):
        ds.frame(0, out=np.zeros((128, 256), np.int16)[:, ::2])
    with pytest.raises(IndexError):
        ds.frame(5)


def test_cached_view_is_dropped_when_an_element_changes():
    from corpus import find

    ds = dicomfast.read(find("CT_small.dcm"))
    first = ds.pixel_array
    assert ds.pixel_array is first
    ds.Rows = 64
    ds.Columns = 128
    reshaped = ds.pixel_array
    assert reshaped.shape == (64, 128)
    np.testing.assert_array_equal(reshaped, first[:64])


def test_decode_many_fills_one_batch():
    from corpus import find

    paths = [find("emri_small.dcm"), find("emri_small_big_endian.dcm")]
    batch = dicomfast.decode_many(paths, threads=2)
    assert batch.shape == (20, 64, 64)
    np.testing.assert_array_equal(batch[:10], dicomfast.read(paths[0]).pixel_array)
    np.testing.assert_array_equal(batch[10:], dicomfast.read(paths[1]).pixel_array)
    out = np.zeros((21, 64, 64), batch.dtype)
    dicomfast.decode_many(paths, out=out[1:], threads=1)
    np.testing.assert_array_equal(out[1:], batch)
    with pytest.raises(ValueError):
        dicomfast.decode_many([paths[0], find("CT_small.dcm")])


def test_available_codecs_reports_what_is_built():
    import importlib

    from dicomfast.pixels.codecs import available_codecs

    codecs = available_codecs()
    assert codecs["1.2.840.10008.1.2.5"] is True  # RLE is our own C, always built
    for uid, module in [("1.2.840.10008.1.2.4.80", "dicomfast._native._jpegls"),
                        ("1.2.840.10008.1.2.4.50", "dicomfast._native._jpeg")]:
        try:
            importlib.import_module(module)
            built = True
        except ImportError:
            built = False
        assert codecs[uid] is built
