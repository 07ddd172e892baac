"""Writing: corpus round trips, byte identity, and what DCMTK and pydicom say of our files."""

from __future__ import annotations

import shutil
import struct
import subprocess
import warnings

import numpy as np
import pydicom
import pytest
from corpus import all_files, file_id, find
from test_read_corpus import PYDICOM_WRONG, compare

import dicomfast
from dicomfast.errors import DicomfastError, DicomfastWarning, UnsupportedTransferSyntaxError

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


def _readable():
    out = []
    for path in all_files():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dicomfast.read(path)
                pydicom.dcmread(path)
            if ds.get("SOPClassUID") and ds.get("SOPInstanceUID"):
                out.append(path)
        except Exception:
            continue
    return out


FILES = _readable()


def _read(source, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DicomfastWarning)
        return dicomfast.read(source, **kw)


def test_enough_files():
    assert len(FILES) > 150


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_round_trip_same_syntax(path, tmp_path):
    ds = _read(path)
    out = tmp_path / "out.dcm"
    ds.save(out)
    assert ds.to_bytes() == out.read_bytes()   # the same file, assembled in memory
    again = _read(out)
    stats = {"elements": 0, "private_un": 0}
    if file_id(path) in PYDICOM_WRONG:
        _same_across_syntaxes(ds, again, file_id(path))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(pydicom.dcmread(path), again, file_id(path), stats)
        # pydicom reads what we wrote to the same values
        compare(pydicom.dcmread(out), again, file_id(path) + " (pydicom reads ours)", stats)
    assert again.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    # Unchanged elements are copied as stored: the data set bytes are identical
    # whenever nothing had to be repaired while reading.
    if not ds._index.warnings and ds.transfer_syntax is not None \
            and not ds.transfer_syntax.is_deflated:
        src = memoryview(ds._index.source)[ds._index.base:]
        body = memoryview(again._index.source)[again._index.base:]
        assert bytes(body) == bytes(src[:len(body)]) and len(src) - len(body) < 8


_WORD = {"OW": "u2", "OF": "f4", "OL": "u4", "OD": "f8", "OV": "u8"}


def _same_across_syntaxes(a, b, where=""):
    """Equal elements between two encodings: VRs may differ only where the encoding
    decides them (OB/OW, UN for private tags in implicit VR); words compare by value."""
    import numpy as np

    assert a.keys() == b.keys(), where
    for el in a:
        other = b[el.tag]
        here = f"{where} {el.tag:08X}"
        if el.VR == "SQ":
            assert other.VR == "SQ", here
            assert len(el.value) == len(other.value), here
            for x, y in zip(el.value, other.value, strict=True):
                _same_across_syntaxes(x, y, here)
            continue
        vrs = {el.VR, other.VR}
        assert el.VR == other.VR or vrs <= {"OB", "OW"} or "UN" in vrs, (here, vrs)
        if el.VR in _WORD and other.VR in _WORD and el.value is not None:
            order = ">" if el._flags & 0x40 else "<"
            order2 = ">" if other._flags & 0x40 else "<"
            word, word2 = _WORD[el.VR], _WORD[other.VR]
            if el.tag == 0x7FE00010 and a.get("BitsAllocated") in (32, 64):
                # Big endian OW pixel data of 32/64-bit cells swaps whole cells, as
                # pydicom reads the big endian files of the corpus.
                word = word2 = f"u{a.get('BitsAllocated') // 8}"
            x = np.frombuffer(el.value, order + word)
            y = np.frombuffer(other.value, order2 + word2)
            np.testing.assert_array_equal(x, y, err_msg=here)
        elif "UN" not in vrs and vrs != {"OB", "OW"}:
            assert el.value == other.value, here


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED])
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm",
                                  "image_dfl.dcm", "chrH31.dcm", "SC_rgb_expb_16bit.dcm",
                                  "OBXXXX1A.dcm", "emri_small_big_endian.dcm", "rtdose.dcm",
                                  "rtdose_expb.dcm", "SC_rgb_expb_32bit_2frame.dcm"])
def test_change_native_syntax(name, ts, tmp_path):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = _read(path)
    out = tmp_path / "out.dcm"
    ds.save(out, transfer_syntax=ts)
    assert dicomfast.to_bytes(ds, transfer_syntax=ts) == out.read_bytes()
    again = _read(out)
    assert again.transfer_syntax.uid == ts
    _same_across_syntaxes(_read(path), again, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = pydicom.dcmread(out)
        assert str(pd.file_meta.TransferSyntaxUID) == ts
        _same_across_syntaxes(_read(path), _read(out), name)
    if "PixelData" in ds:
        import numpy as np

        np.testing.assert_array_equal(again.pixel_array, ds.pixel_array)


@pytest.mark.skipif(shutil.which("dcmftest") is None, reason="DCMTK is not installed")
@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG, DEFLATED])
def test_dcmtk_accepts_our_files(ts, tmp_path):
    for name in ("CT_small.dcm", "rtplan.dcm", "MR_small_bigendian.dcm"):
        ds = _read(find(name))
        out = tmp_path / f"{name}.{ts}.dcm"
        ds.save(out, transfer_syntax=ts)
        check = subprocess.run(["dcmftest", str(out)], capture_output=True, text=True)
        assert "yes" in check.stdout, check.stdout + check.stderr
        dump = subprocess.run(["dcmdump", "-q", "-E", str(out)], capture_output=True,
                              text=True)
        assert dump.returncode == 0 and not dump.stderr, dump.stderr


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, BIG])
def test_new_text_values_in_every_native_syntax(ts, tmp_path):
    """New ASCII and empty values, written in each native syntax twice over (the
    second time from the writer's cache of encoded elements), read back by
    pydicom as set; one syntax's cached bytes never serve another."""
    path = find("CT_small.dcm")
    if path is None:
        pytest.skip("CT_small.dcm is not in the corpus")
    for other in (ts, EXPLICIT if ts != EXPLICIT else BIG, ts):
        ds = _read(path)
        ds.PatientName = "ANONYMIZED"
        ds.PatientID = ""
        ds.StudyDate = "19000101"
        ds.AccessionNumber = None
        ds.ImageComments = "x" * 70             # LT, longer than what is cached
        out = tmp_path / "out.dcm"
        ds.save(out, transfer_syntax=other)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd = pydicom.dcmread(out)
        assert str(pd.file_meta.TransferSyntaxUID) == other
        assert (pd.PatientName, pd.PatientID, pd.StudyDate, pd.AccessionNumber,
                pd.ImageComments) == ("ANONYMIZED", "", "19000101", "", "x" * 70)


def test_cached_new_text_never_replaces_stored_bytes(tmp_path):
    """The writer's cache of new text elements serves elements set since reading; one
    read and only decoded keeps its stored bytes, padding and all, even when the
    same text of the same tag is in the cache."""
    path = find("CT_small.dcm")
    if path is None:
        pytest.skip("CT_small.dcm is not in the corpus")
    ds = _read(path)
    ds.PatientID = "AB  "  # stored with its spaces: 4 bytes
    ds.save(tmp_path / "padded.dcm")
    for _ in range(2):  # the second time from the cache
        fresh = _read(path)
        fresh.PatientID = "AB"
        assert b"\x10\x00\x20\x00LO\x02\x00AB" in fresh.to_bytes()
    stored = _read(tmp_path / "padded.dcm")
    assert stored.PatientID == "AB"  # decoded: the padding stripped
    stored.PatientName = "X"  # something else changes, so the data set is rewritten
    assert b"\x10\x00\x20\x00LO\x04\x00AB  " in stored.to_bytes()


def test_new_dataset_from_scratch(tmp_path):
    ds = dicomfast.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = dicomfast.generate_uid()
    ds.PatientName = "Doe^John"
    ds.PatientID = "12345"
    ds.Rows = 2
    ds.Columns = 2
    ds.add_new(0x00091010, "LO", "private value")
    item = dicomfast.Dataset()
    item.CodeValue = "121322"
    ds.add_new(0x0040A170, "SQ", dicomfast.Sequence([item]))
    out = tmp_path / "new.dcm"
    ds.save(out)
    again = _read(out)
    assert again.PatientName == "Doe^John"
    assert again.Rows == 2
    assert again.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    pd = pydicom.dcmread(out)
    assert pd.PatientName == "Doe^John" and pd[0x00091010].value == "private value"


def test_a_sop_uid_with_several_values_is_refused(tmp_path):
    """The File Meta's (0002,0002) and (0002,0003) hold one UID each (PS3.10 §7.1):
    a data set whose SOP Instance UID has two values is refused with a reason, not
    written with the list's text as its File Meta UID."""
    ds = dicomfast.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ["1.2.3.4", "1.2.3.5"]
    with pytest.raises(DicomfastError, match="2 values"):
        ds.save(tmp_path / "two.dcm")
    assert not (tmp_path / "two.dcm").exists()


def test_edit_keeps_the_rest_byte_identical(tmp_path):
    path = find("CT_small.dcm")
    ds = _read(path)
    ds.PatientName = "Changed^Name"
    out = tmp_path / "edited.dcm"
    ds.save(out)
    again = _read(out)
    assert again.PatientName == "Changed^Name"
    for el in _read(path):
        if el.tag != 0x00100010:
            assert again[el.tag].value == el.value


def test_untouched_elements_are_copied_byte_for_byte(tmp_path):
    """The data set written after an edit is the source's bytes with only the edited
    and removed elements changed: runs of untouched elements on either side, and the
    long pixel data, are copied as stored (PS3.5 §7.1)."""
    path = find("CT_small.dcm")
    src = path.read_bytes()
    ds = _read(path)
    top = ds._index.tag_map()
    first, _ = ds._index.extent(0)
    gone_start, gone_stop = ds._index.extent(top[0x00080090])
    name_start, name_stop = ds._index.extent(top[0x00100010])
    ds.PatientName = "Changed^Name"
    del ds[0x00080090]
    new_name = b"\x10\x00\x10\x00PN" + struct.pack("<H", 12) + b"Changed^Name"
    expected = src[first:gone_start] + src[gone_stop:name_start] + new_name + src[name_stop:]
    out = tmp_path / "edited.dcm"
    ds.save(out)
    written = out.read_bytes()
    assert written.endswith(expected)
    assert len(written) - len(expected) == _read(out)._index.extent(0)[0]


@pytest.mark.parametrize("name", ["SC_rgb_rle.dcm", "US1_J2KR.dcm", "JPEG2000.dcm"])
def test_edited_compressed_file_keeps_its_frames_as_stored(tmp_path, name):
    """Encapsulated pixel data that was not changed goes out exactly as it was stored
    (its items, from the source); replaced, the new items are written."""
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = _read(path)
    ds.PatientName = "Changed^Name"
    out = tmp_path / "edited.dcm"
    ds.save(out)
    original, written = pydicom.dcmread(path), pydicom.dcmread(out)
    assert written.PixelData == original.PixelData
    assert str(written.PatientName) == "Changed^Name"
    np.testing.assert_array_equal(written.pixel_array, original.pixel_array)
    from dicomfast.pixels.encaps import encapsulate

    value, _, _ = encapsulate([b"\xff\xd8new frame\xff\xd9"], with_offset_table=True)
    ds.PixelData = value
    ds.save(out)
    assert pydicom.dcmread(out).PixelData == value


def test_preamble_is_zeroed_unless_asked(tmp_path):
    ds = _read(find("CT_small.dcm"))
    ds.__dict__["preamble"] = b"MZ" + b"\x90" * 126
    out = tmp_path / "p.dcm"
    ds.save(out)
    assert out.read_bytes()[:128] == b"\0" * 128


def test_failed_write_leaves_no_file(tmp_path):
    # Lossy JPEG 2000 compression without allow_lossy is refused mid-write.
    ds = _read(find("CT_small.dcm"))
    out = tmp_path / "x.dcm"
    with pytest.raises(UnsupportedTransferSyntaxError):
        ds.save(out, transfer_syntax="1.2.840.10008.1.2.4.91")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_uids_are_an_error(tmp_path):
    with pytest.raises(DicomfastError):
        dicomfast.Dataset().save(tmp_path / "x.dcm")


def test_private_block_round_trip(tmp_path):
    ds = _read(find("CT_small.dcm"))
    block = ds.private_block(0x0011, "DICOMFAST TEST", create=True)
    block.add_new(0x01, "LO", "first")
    block.add_new(0x02, "US", [1, 2, 3])
    assert ds.private_block(0x0011, "DICOMFAST TEST")[0x01].value == "first"
    out = tmp_path / "p.dcm"
    ds.save(out)
    pd = pydicom.dcmread(out)
    pd_block = pd.private_block(0x0011, "DICOMFAST TEST")
    assert pd_block[0x01].value == "first"
    assert list(pd_block[0x02].value) == [1, 2, 3]
    with pytest.raises(KeyError):
        ds.private_block(0x0011, "SOMEONE ELSE")
