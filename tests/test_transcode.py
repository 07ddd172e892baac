"""Transcoding matrix: real images written in every lossless syntax, decoded by others.

Each output of ``Dataset.save(transfer_syntax=X)`` is decoded by a tool that is not
dicomfast (DCMTK's dcmdrle / dcmdjpeg / dcmconv, GDCM's gdcmconv, pydicom with
pylibjpeg, zlib) and must give back the source pixels exactly. Then the layout
options of encapsulated output (offset tables, fragment size) are checked the
same way.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import find, require_codec

import dicomfast
from dicomfast.pixels import encapsulated_frames
from dicomfast.pixels.codecs import available_codecs

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_SV1 = "1.2.840.10008.1.2.4.70"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"

# Real images: 16-bit signed and unsigned, 8-bit, RGB 8 and 16-bit, multi-frame,
# 32-bit (RT Dose).
SOURCES = ["CT_small.dcm", "MR_small.dcm", "OBXXXX1A.dcm", "SC_rgb.dcm",
           "SC_rgb_16bit.dcm", "emri_small.dcm", "US1_UNCR.dcm", "rtdose.dcm"]
# What each codec cannot store, by the limits of the format (not of dicomfast).
CANNOT = {
    (JPEG_SV1, 32), (JPEG_LOSSLESS, 32),          # T.81 lossless: 2-16 bits
    (J2K_LOSSLESS, 32), (HTJ2K_LOSSLESS, 32), (HTJ2K_RPCL, 32),  # DICOM J2K: <= 16 bits
}


def _tool(name: str) -> str:
    path = Path("/usr/bin") / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _pydicom_pixels(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path).pixel_array


def _via(tool_args: list[str], src: Path, tmp_path: Path) -> np.ndarray:
    """Decode with an external tool to an uncompressed file, then read its pixels."""
    out = tmp_path / "decoded.dcm"
    run = subprocess.run([*tool_args, str(src), str(out)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return _pydicom_pixels(out)


def _deflated_frames(src: Path, ref: np.ndarray) -> np.ndarray:
    """Inflate each frame with zlib (the format is deflate per frame, PS3.5 §8.2.15)."""
    ds = dicomfast.read(src)
    found = encapsulated_frames(ds)
    frames = []
    for i in range(len(found)):
        data = bytes(found.frame(i))
        try:
            raw = zlib.decompress(data, -zlib.MAX_WBITS)
        except zlib.error:
            raw = zlib.decompress(data)
        frames.append(raw)
    dtype = ref.dtype.newbyteorder("<")
    return np.frombuffer(b"".join(frames)[:ref.nbytes], dtype).reshape(ref.shape)


def _independent_decode(ts: str, path: Path, tmp_path: Path, ref: np.ndarray) -> np.ndarray:
    if ts == BIG and ref.dtype.itemsize > 2:
        # 32-bit cells in big endian OW: DCMTK swaps 16-bit halves, while the big
        # endian files in circulation (pydicom's rtdose_expb.dcm and its little
        # endian twin) swap whole cells, as pydicom and dicomfast read them.
        return _pydicom_pixels(path)
    if ts in (IMPLICIT, EXPLICIT, BIG, DEFLATED):
        # DCMTK rewrites it as explicit little endian; pydicom reads that.
        return _via([_tool("dcmconv"), "+te"], path, tmp_path)
    if ts == RLE:
        return _via([_tool("dcmdrle")], path, tmp_path)
    if ts in (JPEG_SV1, JPEG_LOSSLESS):
        return _via([_tool("dcmdjpeg")], path, tmp_path)
    if ts == J2K_LOSSLESS:
        return _via([_tool("gdcmconv"), "--raw"], path, tmp_path)
    if ts in (HTJ2K_LOSSLESS, HTJ2K_RPCL):
        # GDCM 3.0 and DCMTK do not decode HTJ2K; pydicom with pylibjpeg-openjpeg does.
        return _pydicom_pixels(path)
    if ts == DEFLATED_FRAMES:
        return _deflated_frames(path, ref)
    raise AssertionError(ts)


TARGETS = [IMPLICIT, EXPLICIT, BIG, DEFLATED, RLE, JPEG_SV1, JPEG_LOSSLESS, J2K_LOSSLESS,
           HTJ2K_LOSSLESS, HTJ2K_RPCL, DEFLATED_FRAMES]


@pytest.mark.parametrize("ts", TARGETS)
@pytest.mark.parametrize("name", SOURCES)
def test_lossless_targets_decode_exactly_elsewhere(name, ts, tmp_path):
    require_codec(ts)
    src = find(name)
    if src is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = dicomfast.read(src)
    ref = _pydicom_pixels(src)
    out = tmp_path / "out.dcm"
    if (ts, int(ds.BitsAllocated)) in CANNOT:
        with pytest.raises(dicomfast.errors.DicomfastError):  # EncodeError, not a bare ValueError
            ds.save(out, transfer_syntax=ts)
        assert not out.exists()  # nothing half-written under the final name
        return
    ds.save(out, transfer_syntax=ts)
    assert dicomfast.read(out).transfer_syntax.uid == ts
    decoded = _independent_decode(ts, out, tmp_path, ref)
    np.testing.assert_array_equal(decoded.reshape(ref.shape), ref)
    # Lossless stays lossless: no lossy claim appears.
    back = dicomfast.read(out)
    assert str(back.get("LossyImageCompression") or "00") != "01"


# -- the layout of encapsulated output ------------------------------------------------------

def _items(value: bytes) -> list[int]:
    """Lengths of the items of an encapsulated value, the Basic Offset Table first."""
    lengths, pos = [], 0
    while pos + 8 <= len(value):
        group, elem, length = struct.unpack_from("<HHI", value, pos)
        if (group, elem) == (0xFFFE, 0xE0DD):
            break
        assert (group, elem) == (0xFFFE, 0xE000)
        lengths.append(length)
        pos += 8 + length
    return lengths


@pytest.mark.parametrize("ts", [JPEG_SV1, J2K_LOSSLESS, RLE])
def test_extended_offset_table(ts, tmp_path):
    require_codec(ts)
    src = find("emri_small.dcm")
    ds = dicomfast.read(src)
    out = tmp_path / "eot.dcm"
    ds.save(out, transfer_syntax=ts, offset_table="extended")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = pydicom.dcmread(out)
    offsets = struct.unpack(f"<{ds.NumberOfFrames}Q", pd.ExtendedOffsetTable)
    lengths = struct.unpack(f"<{ds.NumberOfFrames}Q", pd.ExtendedOffsetTableLengths)
    items = _items(pd.PixelData)
    assert items[0] == 0  # PS3.3 C.7.6.3.1.8: the Basic Offset Table is then empty
    assert len(items) == 1 + ds.NumberOfFrames
    pos = 0
    for k, item in enumerate(items[1:]):
        assert offsets[k] == pos and lengths[k] <= item <= lengths[k] + 1
        pos += 8 + item
    ref = _pydicom_pixels(src)
    np.testing.assert_array_equal(pd.pixel_array, ref)  # pydicom follows the table
    np.testing.assert_array_equal(dicomfast.read(out).pixel_array, ref)


@pytest.mark.parametrize("ts", [JPEG_SV1, J2K_LOSSLESS])
def test_fragment_size_cap_with_basic_offset_table(ts, tmp_path):
    require_codec(ts)
    src = find("emri_small.dcm")
    ds = dicomfast.read(src)
    out = tmp_path / "frag.dcm"
    ds.save(out, transfer_syntax=ts, max_fragment_size=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = pydicom.dcmread(out)
    items = _items(pd.PixelData)
    assert items[0] == 4 * ds.NumberOfFrames
    assert len(items) > 1 + ds.NumberOfFrames and max(items[1:]) <= 1000
    ref = _pydicom_pixels(src)
    np.testing.assert_array_equal(dicomfast.read(out).pixel_array, ref)
    np.testing.assert_array_equal(pd.pixel_array, ref)  # pydicom follows the table
    if ts == JPEG_SV1:  # GDCM 3.0 takes one fragment per frame in multi-frame J2K only
        np.testing.assert_array_equal(_independent_decode(ts, out, tmp_path, ref), ref)


def test_refragment_without_decoding(tmp_path):
    """Saving a compressed file in its own syntax with new layout options keeps every
    frame's bytes and changes only how they are laid out."""
    src = find("emri_small_RLE.dcm")
    ds = dicomfast.read(src)
    before = [bytes(f) for f in (encapsulated_frames(ds).frame(i) for i in range(10))]
    out = tmp_path / "eot.dcm"
    ds.save(out, offset_table="extended")
    again = dicomfast.read(out)
    assert "ExtendedOffsetTable" in again
    after = encapsulated_frames(again)
    assert [bytes(after.frame(i)) for i in range(10)] == before
    np.testing.assert_array_equal(_independent_decode(RLE, out, tmp_path, ds.pixel_array),
                                  ds.pixel_array)


def test_layouts_that_cannot_be_read_back_are_refused(tmp_path):
    ds = dicomfast.read(find("emri_small.dcm"))
    out = tmp_path / "x.dcm"
    with pytest.raises(ValueError):  # PS3.5 §A.4.2: an RLE frame is one fragment
        ds.save(out, transfer_syntax=RLE, max_fragment_size=1000)
    with pytest.raises(ValueError):  # split frames without a table cannot be found
        ds.save(out, transfer_syntax=JPEG_SV1, offset_table="none", max_fragment_size=1000)
    with pytest.raises(ValueError):
        ds.save(out, transfer_syntax=JPEG_SV1, offset_table="extended", max_fragment_size=1000)
    with pytest.raises(ValueError):
        ds.save(out, transfer_syntax=JPEG_SV1, offset_table="sideways")
    assert not out.exists()


_ATTRIBUTES = ("PlanarConfiguration", "PhotometricInterpretation", "LossyImageCompression",
               "LossyImageCompressionRatio", "LossyImageCompressionMethod")


@pytest.mark.parametrize("name", ["color-pl.dcm", "ExplVR_BigEnd.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "SC_ybr_full_422_uncompressed.dcm"])
def test_saving_in_another_syntax_leaves_the_source_alone(name, tmp_path):
    """Transcoding makes a copy: the source keeps its Planar Configuration,
    Photometric Interpretation and lossy attributes, and so its pixels, however
    many times it is saved in other syntaxes."""
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dicomfast.read(path)
        pixels = ds.pixel_array.copy()
        before = {k: str(ds.get(k)) for k in _ATTRIBUTES}
        for k, ts in enumerate(("1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90",
                                "1.2.840.10008.1.2.2", "1.2.840.10008.1.2")):
            if available_codecs().get(ts) is False:
                continue  # a build without this codec
            ds.save(tmp_path / f"{k}.dcm", transfer_syntax=ts)
            assert {k: str(ds.get(k)) for k in _ATTRIBUTES} == before, ts
            np.testing.assert_array_equal(ds.pixel_array, pixels)
            np.testing.assert_array_equal(dicomfast.read(tmp_path / f"{k}.dcm").pixel_array,
                                          pixels)


def test_a_sample_above_bits_stored_is_an_encode_error(tmp_path):
    """A sample that uses a bit above Bits Stored cannot go into a lossless JPEG frame
    of that precision: an EncodeError naming the codec and the bit, no file."""
    from dicomfast.errors import EncodeError

    path = find("RG1_UNCR.dcm")      # unsigned, 15 of 16 bits, samples up to 26479
    if path is None:
        pytest.skip("RG1_UNCR.dcm is not in the corpus")
    ds = dicomfast.read(path)
    ds.BitsStored = 12
    ds.HighBit = 11
    assert int(ds.pixel_array.max()) >= 1 << 12
    with pytest.raises(EncodeError, match=r"JPEG Lossless.*bit 1[2-5], above the 12-bit"):
        ds.save(tmp_path / "out.dcm", transfer_syntax="1.2.840.10008.1.2.4.70")
    assert not (tmp_path / "out.dcm").exists()


def test_encoder_options_need_an_encoder(tmp_path):
    """encode_options go to the target's encoder; given where nothing is encoded, or
    naming an option the encoder does not have, they are refused, not ignored."""
    require_codec("1.2.840.10008.1.2.4.91")
    ds = dicomfast.read(find("CT_small.dcm"))
    with pytest.raises(ValueError, match="encoded anew"):
        ds.save(tmp_path / "same.dcm", encode_options={"near": 2})
    with pytest.raises(dicomfast.errors.EncodeError, match="no encoder option 'near'"):
        ds.save(tmp_path / "j2k.dcm", transfer_syntax="1.2.840.10008.1.2.4.90",
                encode_options={"near": 2})
    ds.save(tmp_path / "j2k.dcm", transfer_syntax="1.2.840.10008.1.2.4.91", allow_lossy=True,
            encode_options={"quality": 45})
    assert not (tmp_path / "same.dcm").exists()
    assert dicomfast.read(tmp_path / "j2k.dcm").pixel_array.shape == ds.pixel_array.shape


@pytest.mark.parametrize("name", ["US1_J2KR.dcm", "US1_J2KI.dcm"])
def test_jpeg2000_colour_transforms_become_rgb(name, tmp_path):
    """YBR_RCT / YBR_ICT name JPEG 2000's component transforms, which decoding undoes:
    saved in any other syntax the samples are RGB, and say so, as GDCM's gdcmconv
    writes them too."""
    require_codec(J2K_LOSSLESS)
    src = find(name)
    if src is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = dicomfast.read(src)
    assert ds.PhotometricInterpretation in ("YBR_RCT", "YBR_ICT")
    out = tmp_path / "raw.dcm"
    ds.save(out, transfer_syntax=EXPLICIT)
    written = pydicom.dcmread(out)
    assert written.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(written.pixel_array, _pydicom_pixels(src))
    rle = tmp_path / "rle.dcm"
    ds.save(rle, transfer_syntax="1.2.840.10008.1.2.5")
    assert dicomfast.read(rle).PhotometricInterpretation == "RGB"
    if shutil.which("gdcmconv"):
        theirs = tmp_path / "gdcm.dcm"
        subprocess.run(["gdcmconv", "--raw", str(src), str(theirs)], check=True,
                       capture_output=True)
        assert pydicom.dcmread(theirs).PhotometricInterpretation == "RGB"
