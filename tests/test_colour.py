"""Photometric conversions (dicomfast.pixels.colour) against pydicom.

YBR_FULL <-> RGB on 8-bit samples equals pydicom's convert_color_space exactly;
16-bit samples (which pydicom does not convert) are checked against the PS3.3
C.7.6.3.1.2 equations in float64. Palettes equal pydicom's apply_color_lut.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pydicom
import pytest
from corpus import find
from pydicom.pixels import apply_color_lut
from pydicom.pixels import convert_color_space as pd_convert

import dicomfast
from dicomfast.pixels.colour import apply_palette, convert_color_space

RNG = np.random.default_rng(20240601)


def _need(name):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    return path


def _pd(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


# --- YBR_FULL <-> RGB --------------------------------------------------------------

def _every_8bit_triplet_sample():
    # every Y with a spread of chroma, plus random pixels and the extremes
    y, cb, cr = np.meshgrid(np.arange(256), np.arange(0, 256, 5), np.arange(0, 256, 3))
    grid = np.stack([y, cb, cr], -1).reshape(-1, 3).astype(np.uint8)
    noise = RNG.integers(0, 256, (20000, 3), dtype=np.uint8)
    extremes = np.array([[0, 0, 0], [255, 255, 255], [0, 255, 0], [255, 0, 255]], np.uint8)
    return np.concatenate([grid, noise, extremes])


@pytest.mark.parametrize("current, desired", [("YBR_FULL", "RGB"), ("YBR_FULL_422", "RGB"),
                                              ("RGB", "YBR_FULL"), ("RGB", "YBR_FULL_422")])
def test_8bit_equals_pydicom(current, desired):
    arr = _every_8bit_triplet_sample().reshape(1, -1, 3)
    np.testing.assert_array_equal(convert_color_space(arr, current, desired),
                                  pd_convert(arr, current, desired))


@pytest.mark.parametrize("name", ["SC_ybr_full_uncompressed.dcm",
                                  "SC_ybr_full_422_uncompressed.dcm"])
def test_8bit_corpus_images_equal_pydicom(name):
    arr = dicomfast.read(_need(name)).pixel_array
    np.testing.assert_array_equal(convert_color_space(arr, "YBR_FULL", "RGB"),
                                  pd_convert(arr, "YBR_FULL", "RGB"))
    # pydicom's own pipeline (as_rgb=True) converts the same samples to the same RGB
    np.testing.assert_array_equal(convert_color_space(arr, "YBR_FULL", "RGB"),
                                  _pd(_need(name)).pixel_array)


def _reference_16(arr, to_rgb):
    """PS3.3 C.7.6.3.1.2 written out per channel, offset 2**15, in float64."""
    a = arr.astype(np.float64)
    if to_rgb:
        y, cb, cr = a[..., 0], a[..., 1] - 32768, a[..., 2] - 32768
        out = np.stack([y + 1.402 * cr,
                        y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr,
                        y + 1.772 * cb], -1)
    else:
        r, g, b = a[..., 0], a[..., 1], a[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        out = np.stack([y, (b - y) / 1.772 + 32768, (r - y) / 1.402 + 32768], -1)
    return np.clip(np.floor(out + 0.5), 0, 65535).astype(np.uint16)


@pytest.mark.parametrize("to_rgb", [True, False])
def test_16bit_follows_the_equations(to_rgb):
    arr = RNG.integers(0, 65536, (200, 300, 3), dtype=np.uint16)
    current, desired = ("YBR_FULL", "RGB") if to_rgb else ("RGB", "YBR_FULL")
    ours = convert_color_space(arr, current, desired)
    assert ours.dtype == np.uint16
    # the same equations, summed in another order: at most one step apart at a rounding tie
    diff = np.abs(ours.astype(np.int64) - _reference_16(arr, to_rgb))
    assert diff.max() <= 1 and diff.mean() < 1e-3


def test_16bit_round_trip():
    rgb = RNG.integers(0, 65536, (100, 100, 3), dtype=np.uint16)
    back = convert_color_space(convert_color_space(rgb, "RGB", "YBR_FULL"), "YBR_FULL", "RGB")
    assert np.abs(back.astype(np.int64) - rgb).max() <= 2


def test_same_space_is_a_copy():
    arr = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    out = convert_color_space(arr, "YBR_FULL_422", "YBR_FULL")
    np.testing.assert_array_equal(out, arr)
    assert out is not arr


@pytest.mark.parametrize("arr, current, desired, error", [
    (np.zeros((2, 2, 3), np.float32), "YBR_FULL", "RGB", ValueError),
    (np.zeros((2, 2, 4), np.uint8), "YBR_FULL", "RGB", ValueError),
    (np.zeros((2, 2, 3), np.uint8), "YBR_ICT", "RGB", NotImplementedError),
    (np.zeros((2, 2, 3), np.uint8), "RGB", "MONOCHROME2", NotImplementedError),
])
def test_unsupported_conversions(arr, current, desired, error):
    with pytest.raises(error):
        convert_color_space(arr, current, desired)


# --- PALETTE COLOR --------------------------------------------------------------

@pytest.mark.parametrize("name", ["OBXXXX1A.dcm", "OBXXXX1A_2frame.dcm", "examples_palette.dcm",
                                  "gdcm-US-ALOKA-16.dcm"])
def test_palette_equals_pydicom(name):
    path = _need(name)
    ds = dicomfast.read(path)
    ours = apply_palette(ds.pixel_array, ds)
    ref = _pd(path)
    expected = apply_color_lut(ref.pixel_array, ref)
    assert ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("little, big", [("OBXXXX1A.dcm", "OBXXXX1A_expb.dcm"),
                                         ("gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm")])
def test_palette_big_endian_equals_little_endian(little, big):
    # the LUT data are OW words in the file's byte order (PS3.5 §7.3)
    a, b = dicomfast.read(_need(little)), dicomfast.read(_need(big))
    np.testing.assert_array_equal(apply_palette(b.pixel_array, b),
                                  apply_palette(a.pixel_array, a))


def _with_lut(source: str, edit) -> tuple[pydicom.Dataset, dicomfast.Dataset]:
    """A copy of `source` whose palette `edit` rewrites; as pydicom and as dicomfast read it."""
    ds = _pd(_need(source))
    edit(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue())), dicomfast.read(buf.getvalue())


def _eight_bit(ds):
    # C.7.6.3.1.5: 8-bit entries, one per byte
    for colour in ("Red", "Green", "Blue"):
        words = np.frombuffer(ds[f"{colour}PaletteColorLookupTableData"].value, "<u2")
        ds[f"{colour}PaletteColorLookupTableDescriptor"].value = [256, 0, 8]
        ds[f"{colour}PaletteColorLookupTableData"].value = (words >> 8).astype(np.uint8).tobytes()


def _first_mapped(ds):
    for colour in ("Red", "Green", "Blue"):
        ds[f"{colour}PaletteColorLookupTableDescriptor"].value = [200, 40, 16]
        ds[f"{colour}PaletteColorLookupTableData"].value = (
            ds[f"{colour}PaletteColorLookupTableData"].value[:400])


def _segmented(ds):
    # C.7.9.2: discrete, linear and indirect segments (16-bit words, little endian)
    segments = {
        # 3 discrete, a 100-step line, the first two segments again (offset 0), 50 discrete
        "Red": [0, 3, 10, 20, 30, 1, 100, 1000, 2, 2, 0, 0, 0, 50, *range(7, 57)],
        "Green": [0, 1, 0, 1, 255, 65535],
        "Blue": [0, 256] + list(range(0, 65536, 256)),
    }
    for colour, words in segments.items():
        ds[f"{colour}PaletteColorLookupTableDescriptor"].value = [256, 0, 16]
        del ds[f"{colour}PaletteColorLookupTableData"]
        ds.add_new(f"Segmented{colour}PaletteColorLookupTableData", "OW",
                   struct.pack(f"<{len(words)}H", *words))


@pytest.mark.parametrize("edit", [_eight_bit, _first_mapped, _segmented])
def test_palette_variants_equal_pydicom(edit):
    ref, ours = _with_lut("OBXXXX1A.dcm", edit)
    arr = ours.pixel_array
    expected = apply_color_lut(ref.pixel_array, ref)
    got = apply_palette(arr, ours)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    # a pydicom Dataset works too
    np.testing.assert_array_equal(apply_palette(arr, ref), expected)


def test_palette_without_lut_is_an_error():
    ds = dicomfast.read(_need("MR_small.dcm"))
    with pytest.raises(ValueError):
        apply_palette(ds.pixel_array, ds)


# --- what decoding leaves alone ---------------------------------------------------

@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "SC_ybr_full_uncompressed.dcm",
                                  "SC_ybr_full_422_uncompressed.dcm"])
def test_native_data_is_returned_as_stored(name):
    # MONOCHROME1 is not inverted and native YBR is not converted (pydicom's raw output)
    path = _need(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pydicom.pixels.pixel_array(str(path), raw=True)
    np.testing.assert_array_equal(dicomfast.read(path).pixel_array, expected)
