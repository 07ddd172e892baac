"""dicomfast as a pydicom 3 decoding plugin (dicomfast.pydicom_plugin).

pydicom decodes every corpus file of the transfer syntaxes dicomfast decodes with
only the dicomfast plugin (``decoding_plugin="dicomfast"``) and with its own
default plugins (GDCM, pylibjpeg, ... as installed, dicomfast removed); the
arrays must be equal for lossless syntaxes and, for lossy JPEG, within the
tolerances measured in tests/test_jpeg.py: 1 for grey and RGB streams, 3 for
full-resolution YCbCr, 5 for subsampled YCbCr, with a mean below 0.15.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import all_files, file_id
from pydicom.pixels import get_decoder, pixel_array

import dicomfast
from dicomfast import pydicom_plugin
from dicomfast.pixels.codecs import available_codecs

# pydicom warns (UserWarning) about oddities of some corpus files, such as a
# Photometric Interpretation its codestream contradicts; both decodings see them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.91",
         "1.2.840.10008.1.2.4.203"}
# Photometric Interpretation RGB, but the stream is YCbCr (tests/test_jpeg.py):
# dicomfast follows the stream and pydicom then converts to RGB; pydicom's own
# plugins return the YCbCr samples.
MISLABELLED = {"JPEGBaseline/SC_rgb_jpeg_lossy_gdcm.dcm"}


def _syntaxes() -> set[str]:
    out = set()
    for uid, ok in available_codecs().items():
        try:
            get_decoder(uid)
        except NotImplementedError:
            continue
        if ok:
            out.add(uid)
    return out


SYNTAXES = _syntaxes()


def _files() -> list[tuple[str, str]]:
    found = []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            uid = str(ds.file_meta.TransferSyntaxUID)
        except Exception:
            continue
        if uid in SYNTAXES:
            found.append((str(path), uid))
    return found


FILES = _files()


@pytest.fixture
def registered():
    pydicom_plugin.register()
    yield
    pydicom_plugin.unregister()


def _reference(path: str, **options):
    """pydicom's own decoding (dicomfast not registered), or None if it cannot."""
    pydicom_plugin.unregister()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixel_array(path, **options)
    except Exception:
        return None
    finally:
        pydicom_plugin.register()


def _tolerance(ds) -> int:
    if ds.SamplesPerPixel == 1 or ds.PhotometricInterpretation == "RGB":
        return 1
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    i = frame.find(b"\xff\xc0")
    i = i if i >= 0 else frame.find(b"\xff\xc1")
    subsampled = frame[i + 11] != 0x11
    return 5 if ds.PhotometricInterpretation == "YBR_FULL_422" or subsampled else 3


def test_corpus_has_files_for_the_plugin():
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50"} <= SYNTAXES
    assert len(FILES) >= 30


def test_register_and_unregister():
    uids = pydicom_plugin.register()
    try:
        assert set(uids) == SYNTAXES
        assert pydicom_plugin.register() == uids  # again: no change, no error
        for uid in uids:
            decoder = get_decoder(uid)
            assert "dicomfast" in decoder.available_plugins
            assert next(iter(decoder._available)) == "dicomfast"  # tried first
    finally:
        pydicom_plugin.unregister()
    for uid in uids:
        assert "dicomfast" not in get_decoder(uid).available_plugins
    assert pydicom_plugin.is_available("1.2.840.10008.1.2.5")
    assert not pydicom_plugin.is_available("1.2.3.4")


@pytest.mark.parametrize(("path", "uid"), FILES, ids=[file_id(Path(p)) for p, _ in FILES])
def test_equals_pydicom_default_plugins(path, uid, registered):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
    if uid == "1.2.840.10008.1.2.4.51" and ds.BitsStored > 8:
        from dicomfast._native import _jpeg

        if _jpeg.MAX_PRECISION < 12:
            pytest.skip(f"12-bit JPEG needs libjpeg-turbo 3 (this build: {_jpeg.LIBRARY})")
    try:
        ours = pixel_array(path, decoding_plugin="dicomfast")
    except Exception as exc:
        if _reference(path) is None:
            pytest.skip(f"pydicom cannot decode this file with any plugin: {exc}")
        raise
    if file_id(Path(path)) in MISLABELLED:
        # dicomfast's own reading converts with libjpeg's fixed-point equations,
        # pydicom with PS3.3's float ones.
        mine = dicomfast.read(path).pixel_array
        assert np.abs(ours.astype(np.int64) - mine.astype(np.int64)).max() <= 1
        return
    expected = _reference(path)
    if expected is None:
        # pydicom's plugins cannot decode it: dicomfast's own reading is the reference.
        expected = dicomfast.read(path).pixel_array
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    if uid not in LOSSY:
        np.testing.assert_array_equal(ours, expected)
        return
    diff = np.abs(ours.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= _tolerance(ds)
    assert diff.mean() < 0.15


def test_dataset_pixel_array_and_options(registered):
    path = next(p for p, uid in FILES if uid == "1.2.840.10008.1.2.5")
    ds = pydicom.dcmread(path)
    ds.pixel_array_options(decoding_plugin="dicomfast")
    np.testing.assert_array_equal(ds.pixel_array, dicomfast.read(path).pixel_array)
    # the default, with dicomfast registered first, is dicomfast's decoding too
    np.testing.assert_array_equal(pixel_array(path), dicomfast.read(path).pixel_array)


def test_ycbcr_kept_when_pydicom_asks(registered):
    """as_rgb=False: pydicom gets the stream's YCbCr, as from its own plugins."""
    tried = 0
    for path, uid in FILES:
        if uid != "1.2.840.10008.1.2.4.50":
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.SamplesPerPixel != 3 or not str(ds.PhotometricInterpretation).startswith("YBR"):
            continue
        if int(ds.get("NumberOfFrames") or 1) > 2:
            continue  # the many-frame ones only cost time here
        ours = pixel_array(path, decoding_plugin="dicomfast", as_rgb=False)
        expected = _reference(path, as_rgb=False)
        if expected is None:
            continue
        assert np.abs(ours.astype(np.int64) - expected.astype(np.int64)).max() <= 3
        tried += 1
    if not tried:
        pytest.skip("no YCbCr JPEG files in the corpus")


def test_errors_reach_pydicom(registered):
    path = next(p for p, uid in FILES if uid == "1.2.840.10008.1.2.5")
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:200]  # cut the RLE segments short
    with pytest.raises(RuntimeError, match="dicomfast"):
        pixel_array(ds, decoding_plugin="dicomfast")
