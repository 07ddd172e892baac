"""Modality / VOI / Presentation LUTs (dicomfast.pixels.luts) against pydicom.

Every corpus file with a Modality LUT Sequence, Rescale Slope/Intercept, a VOI
LUT Sequence or Window Center/Width is transformed by both libraries from the
same input values, twice: its own pixels (small arrays: the per-pixel path) and
every value of the pixel dtype's domain (large integer arrays: the table path).
For integer inputs (every corpus image) results are equal exactly
(assert_array_equal on float64: the same IEEE operations in the same order).
Float inputs go through a fused multiply-add-clip form of the LINEAR windows, and
numpy's vectorised exp may round the last bit differently between array lengths
for SIGMOID: there the tolerance is 4 ulp of the larger of twice the output range and
2 |x| range / width (the product the fused form rounds): about 1e-13 of a 16-bit
range for ordinary windows, 1e-11 for a window one unit wide. Files pydicom itself cannot transform (an empty
LUT Descriptor, a colour image with a window) are checked to fail or pass
through on our side without comparing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from corpus import all_files, file_id
from pydicom.pixels import apply_modality_lut as pd_modality
from pydicom.pixels import apply_voi_lut as pd_voi_lut

import dicomfast
from dicomfast.pixels import luts

_FEATURES = ("ModalityLUTSequence", "RescaleSlope", "VOILUTSequence", "WindowCenter")


def _candidates():
    out = []
    for path in all_files():
        try:
            ds = dicomfast.read(path, stop_before_pixels=True)
        except Exception:
            continue
        if any(k in ds for k in _FEATURES) and "Rows" in ds:
            out.append(path)
    return out


CANDIDATES = _candidates()


def _pair(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pydicom.dcmread(path)
        ours = dicomfast.read(path)
        try:
            arr = np.array(ours.pixel_array)
        except Exception:
            try:
                arr = np.array(theirs.pixel_array)
            except Exception:  # no pixel data: the domain test still runs
                bits = int(ours.get("BitsAllocated") or 16)
                kind = "i" if ours.get("PixelRepresentation") else "u"
                arr = np.zeros(4, f"{kind}{max(bits, 8) // 8}")
    return ours, theirs, arr


def _domain(arr, ds):
    """Every valid stored value (Bits Stored, Pixel Representation) in arr's dtype,
    repeated past the size where integer inputs go through a table. Values outside
    Bits Stored are left out: pydicom's Modality LUT overflows on them."""
    if arr.dtype.kind not in "iu" or arr.dtype.itemsize > 2:
        return None
    bits = min(int(ds.get("BitsStored") or 16), 8 * arr.dtype.itemsize)
    if arr.dtype.kind == "i":
        values = np.arange(-(1 << (bits - 1)), 1 << (bits - 1))
    else:
        values = np.arange(0, 1 << bits)
    reps = -(-3 * (1 << (8 * arr.dtype.itemsize)) // values.size)
    return np.tile(values.astype(arr.dtype), reps)


def _same(a, b, sigmoid=False, span=1.0):
    assert a.shape == b.shape
    if sigmoid:
        np.testing.assert_allclose(a, b, rtol=0, atol=4 * np.finfo(np.float64).eps * span)
    else:
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b)


def _pydicom_or_none(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except Exception:
            return None


@pytest.mark.parametrize("path", CANDIDATES, ids=[file_id(p) for p in CANDIDATES])
def test_modality_lut_equals_pydicom(path):
    ours, theirs, arr = _pair(path)
    inputs = [arr] + ([d] if (d := _domain(arr, ours)) is not None else [])
    for x in inputs:
        expected = _pydicom_or_none(pd_modality, x, theirs)
        if expected is None:
            luts.apply_modality_lut(x, ours)  # ours copes (an unusable LUT passes through)
            continue
        _same(luts.apply_modality_lut(x, ours), expected)


@pytest.mark.parametrize("path", CANDIDATES, ids=[file_id(p) for p in CANDIDATES])
def test_voi_lut_equals_pydicom(path):
    ours, theirs, arr = _pair(path)
    n_windows = 1
    wc = ours.get("WindowCenter")
    if isinstance(wc, list):
        n_windows = len(wc)
    seq = ours.get("VOILUTSequence")
    n_windows = max(n_windows, len(seq) if seq else 1)
    func = str(ours.get("VOILUTFunction") or "LINEAR").upper()
    y = luts.voi_range(ours)
    inputs = [arr] + ([d] if (d := _domain(arr, ours)) is not None else [])
    compared = 0
    for x in inputs:
        for index in range(n_windows):
            for prefer in (True, False):
                expected = _pydicom_or_none(pd_voi_lut, x, theirs, index, prefer)
                if expected is None:
                    continue
                got = luts.apply_voi_lut(x, ours, index, prefer)
                _same(got, expected, func == "SIGMOID", abs(y[1] - y[0]))
                compared += 1
    if not compared:
        pytest.skip("pydicom applies no VOI LUT to this file")


@pytest.mark.parametrize("path", CANDIDATES, ids=[file_id(p) for p in CANDIDATES])
def test_modality_then_voi_in_one_pass(path):
    ours, theirs, arr = _pair(path)
    for x in [arr] + ([d] if (d := _domain(arr, ours)) is not None else []):
        mod = _pydicom_or_none(pd_modality, x, theirs)
        expected = None if mod is None else _pydicom_or_none(pd_voi_lut, mod, theirs)
        if expected is None:
            continue
        _same(luts.apply_modality_voi_lut(x, ours), expected)


# -- every VOI LUT Function on synthetic data, against pydicom ---------------------------

def _synthetic(func, center, width, bits=12, signed=False, slope=None, intercept=None):
    ds = pydicom.Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = bits
    ds.PixelRepresentation = int(signed)
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.VOILUTFunction = func
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    return ds


@pytest.mark.parametrize("func", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("center, width", [(40, 400), (2047.5, 4096), (100, 1), (0, 0.5),
                                           (-500, 1500)])
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float64, np.float32])
def test_window_functions_equal_pydicom(func, center, width, dtype):
    ds = _synthetic(func, center, width, signed=True)
    rng = np.random.default_rng(7)
    x = rng.integers(-2048, 2048, 300_000).astype(dtype)
    if dtype == np.uint16:
        x = np.abs(x.astype(np.int32)).astype(np.uint16)
        ds.PixelRepresentation = 0
    if dtype in (np.float64, np.float32):
        x += rng.random(x.size).astype(dtype)
    expected = _pydicom_or_none(pd_voi_lut, x, ds)
    if expected is None:  # a width the function refuses
        with pytest.raises(ValueError):
            luts.apply_voi_lut(x, ds)
        return
    y_min, y_max = luts.voi_range(ds)
    tolerant = func == "SIGMOID" or x.dtype.kind == "f"
    # the fused form rounds x * range / width once more: its ulp is the scale of the error
    span = (y_max - y_min) * max(2.0, 2 * float(np.abs(x).max()) / width)
    _same(luts.apply_voi_lut(x, ds), expected, tolerant, span)


def test_apply_voi_explicit_range_and_integer_output():
    x = np.arange(-1024, 3072, dtype=np.int16)
    f64 = luts.apply_voi(x, 40, 400)
    u8 = luts.apply_voi(x, 40, 400, dtype=np.uint8)
    assert u8.dtype == np.uint8 and f64.min() == 0 and f64.max() == 255
    np.testing.assert_array_equal(u8, np.rint(f64).astype(np.uint8))
    # the LINEAR window of PS3.3 C.11.2.1.2.1: c - 0.5 -/+ (w - 1) / 2 are the ends
    assert f64[x == 40 - 200][0] == 0 and f64[x == 40 + 200][0] == 255
    f32 = luts.apply_voi(x, 40, 400, dtype=np.float32)
    np.testing.assert_allclose(f32, f64, rtol=1e-6, atol=1e-4)


def test_out_buffers_batches_and_in_place():
    rng = np.random.default_rng(3)
    batch = rng.integers(-1024, 2000, (4, 64, 64)).astype(np.int16)
    out = np.empty((6, 64, 64), np.float64)
    for k in range(4):  # frame by frame into a slice of a preallocated batch
        r = luts.apply_voi(batch[k], 40, 400, y_min=-1, y_max=1, out=out[k + 1])
        assert r is out[k + 1] or np.shares_memory(r, out)
    whole = luts.apply_voi(batch, 40, 400, y_min=-1, y_max=1)
    np.testing.assert_array_equal(out[1:5], whole)
    # in place on float data
    f = batch.astype(np.float64)
    expected = luts.apply_voi(f, 40, 400)
    luts.apply_voi(f, 40, 400, out=f)
    np.testing.assert_array_equal(f, expected)
    # a non-contiguous out
    strided = np.empty((64, 128), np.float64)[:, ::2]
    luts.apply_voi(batch[0], 40, 400, out=strided)
    np.testing.assert_array_equal(strided, luts.apply_voi(batch[0], 40, 400))
    with pytest.raises(ValueError):
        luts.apply_voi(batch, 40, 400, out=np.empty(5))
    with pytest.raises(ValueError):
        luts.apply_voi(batch, 40, 400, out=np.empty(batch.shape, np.float32), dtype=np.uint8)


def test_lut_sequence_table_path_equals_per_pixel_path():
    table = (np.arange(4096) * 16).astype(np.uint16)
    small = np.array([-3000, -2048, -1, 0, 2047, 5000], np.int16)
    big = np.tile(np.arange(-32768, 32768, dtype=np.int32).astype(np.int16), 3)
    a = luts.apply_lut(small, table, -2048)
    assert a.dtype == np.uint16
    np.testing.assert_array_equal(a, [0, 0, 2047 * 16, 2048 * 16, 4095 * 16, 4095 * 16])
    b = luts.apply_lut(big, table, -2048)
    ref = table[np.clip(big.astype(np.int64) + 2048, 0, 4095)]
    np.testing.assert_array_equal(b, ref)


def test_presentation_lut_and_monochrome1():
    ds = pydicom.Dataset()
    ds.PhotometricInterpretation = "MONOCHROME1"
    x = np.array([0, 10, 255], np.uint8)
    np.testing.assert_array_equal(luts.apply_presentation_lut(x, ds, y_min=0, y_max=255),
                                  [255, 245, 0])
    ds.PresentationLUTShape = "INVERSE"  # the shape accounts for MONOCHROME1: one inversion
    np.testing.assert_array_equal(luts.apply_presentation_lut(x, ds, y_min=0, y_max=255),
                                  [255, 245, 0])
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PresentationLUTShape = "IDENTITY"
    assert luts.apply_presentation_lut(x, ds) is x
    # INVERSE over the data's own range is pydicom's arr.max() - arr when the minimum is 0
    ds.PresentationLUTShape = "INVERSE"
    from pydicom.pixels import apply_presentation_lut as pd_pres
    np.testing.assert_array_equal(luts.apply_presentation_lut(x, ds), pd_pres(x, ds))
    # a Presentation LUT Sequence: 256 entries mapping the range linearly onto them
    item = pydicom.Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = list(range(255, -1, -1))
    ds = pydicom.Dataset()
    ds.PresentationLUTSequence = [item]
    got = luts.apply_presentation_lut(np.array([0, 1, 254, 255]), ds, y_min=0, y_max=255)
    np.testing.assert_array_equal(got, [255, 254, 1, 0])


def test_functional_group_rescale_and_window():
    ds = dicomfast.Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 12
    ds.PixelRepresentation = 0
    pvt = dicomfast.Dataset()
    pvt.RescaleSlope = 2
    pvt.RescaleIntercept = -100
    voi = dicomfast.Dataset()
    voi.WindowCenter = 1000
    voi.WindowWidth = 500
    frame = dicomfast.Dataset()
    frame.PixelValueTransformationSequence = dicomfast.Sequence([pvt])
    frame.FrameVOILUTSequence = dicomfast.Sequence([voi])
    ds.PerFrameFunctionalGroupsSequence = dicomfast.Sequence([frame])
    x = np.array([0, 100, 600, 4095], np.uint16)
    assert luts.apply_modality_lut(x, ds) is x  # top level only without frame=
    np.testing.assert_array_equal(luts.apply_modality_lut(x, ds, frame=0),
                                  [-100, 100, 1100, 8090])
    assert luts.window_params(ds, frame=0) == (1000.0, 500.0, "LINEAR")
    y = luts.apply_modality_voi_lut(x, ds, frame=0, dtype=np.float64)
    y_min, y_max = luts.voi_range(ds, frame=0)
    assert y[0] == y_min and y[-1] == y_max
