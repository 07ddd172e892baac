"""Differential test: every corpus file read by dicomfast equals pydicom's reading.

Each element's tag, VR and value (normalised: MultiValue -> list, PersonName ->
str, DS/IS -> numbers, sequences recursively) must match what pydicom gives.
"""

from __future__ import annotations

import math
import warnings

import pydicom
import pytest
from corpus import all_files, file_id
from pydicom.dataset import Dataset as PdDataset
from pydicom.multival import MultiValue as PdMultiValue
from pydicom.sequence import Sequence as PdSequence
from pydicom.valuerep import PersonName as PdPersonName

import dicomfast
from dicomfast.errors import DicomfastError, DicomfastWarning

FILES = all_files()

# Files pydicom refuses that dicomfast reads, with the reason that is right.
PYDICOM_ONLY_LENIENT: dict[str, str] = {}
# Files where pydicom's reading is wrong and dicomfast's differs on purpose: here
# only the header (pydicom's stop_before_pixels reading) is compared.
PYDICOM_WRONG: dict[str, str] = {
    "emri_small_jpeg_2k_lossless_too_short.dcm":
        "the encapsulated Pixel Data has no sequence delimiter (the file is cut short); "
        "pydicom returns an empty data set, dicomfast keeps every element and warns",
}


def _norm(value, vr):
    if isinstance(value, (PdSequence, list)) and vr == "SQ":
        return list(value)
    if isinstance(value, (PdMultiValue, list, tuple)):
        return [_norm(v, vr) for v in value]
    if isinstance(value, PdPersonName) or type(value).__name__ == "PersonName":
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return str(value)
    return value


class Mismatch(AssertionError):
    pass


def compare(pd_ds: PdDataset, our_ds, where: str, stats: dict) -> None:
    pd_tags = list(pd_ds.keys())
    our_tags = our_ds.keys()
    if [int(t) for t in pd_tags] != list(our_tags):
        missing = set(map(int, pd_tags)) - set(our_tags)
        extra = set(our_tags) - set(map(int, pd_tags))
        raise Mismatch(f"{where}: tags differ; missing {sorted(missing)[:5]}, "
                       f"extra {sorted(extra)[:5]}")
    for tag in pd_tags:
        pd_el = pd_ds[tag]
        our_el = our_ds[int(tag)]
        here = f"{where} {int(tag):08X}"
        stats["elements"] += 1
        if our_el.VR != pd_el.VR:
            if (int(tag) >> 16) & 1 and our_el.VR == "UN":
                # pydicom knows private VRs from its private dictionary; dicomfast
                # keeps unknown private elements as UN bytes (PS3.5 §6.2.2).
                stats["private_un"] += 1
                continue
            raise Mismatch(f"{here}: VR {our_el.VR} != pydicom {pd_el.VR}")
        # pydicom gives repeating-group elements such as (6000,0010) no keyword;
        # dicomfast gives the dictionary's (OverlayRows).
        if our_el.keyword != pd_el.keyword and pd_el.keyword:
            raise Mismatch(f"{here}: keyword {our_el.keyword!r} != pydicom {pd_el.keyword!r}")
        if pd_el.VR != "SQ" and our_el.VM != pd_el.VM:
            raise Mismatch(f"{here}: VM {our_el.VM} != pydicom {pd_el.VM}")
        if pd_el.VR == "SQ":
            if len(pd_el.value) != len(our_el.value):
                raise Mismatch(f"{here}: {len(our_el.value)} items != {len(pd_el.value)}")
            for i, (a, b) in enumerate(zip(pd_el.value, our_el.value, strict=True)):
                compare(a, b, f"{here}[{i}]", stats)
            continue
        if pd_el.tag == 0x7FE00010 and pd_el.is_undefined_length:
            if bytes(our_el.value) != bytes(pd_el.value):
                raise Mismatch(f"{here}: encapsulated pixel data differs")
            continue
        ours = _norm(our_el.value, our_el.VR)
        theirs = _norm(pd_el.value, pd_el.VR)
        if ours != theirs:
            if ours in ("", None, [], b"") and theirs in ("", None, [], b""):
                continue
            raise Mismatch(f"{here} {pd_el.keyword}: {ours!r:.200} != pydicom {theirs!r:.200}")


def _pydicom_read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kw)


def _our_read(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = dicomfast.read(path, **kw)
    for w in caught:
        assert issubclass(w.category, DicomfastWarning), w
    return ds


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_matches_pydicom(path):
    try:
        pd_ds = _pydicom_read(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd_ds.file_meta  # noqa: B018
            for el in pd_ds.iterall():
                el.value  # noqa: B018 - convert every raw element now
    except Exception as exc:  # pydicom refuses the file
        try:
            _our_read(path)
        except DicomfastError:
            return
        assert file_id(path) in PYDICOM_ONLY_LENIENT, (
            f"pydicom refuses ({type(exc).__name__}: {exc}) but dicomfast reads it")
        return
    ds = _our_read(path)
    if file_id(path) in PYDICOM_WRONG:
        assert len(pd_ds) == 0 < len(ds)
        pd_ds = _pydicom_read(path, stop_before_pixels=True)
        del ds.PixelData
    stats = {"elements": 0, "private_un": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(pd_ds, ds, file_id(path), stats)
        if pd_ds.file_meta is not None and len(pd_ds.file_meta):
            assert ds.file_meta is not None
            compare(pd_ds.file_meta, ds.file_meta, file_id(path) + " meta", stats)
    assert stats["elements"] > 0


@pytest.mark.parametrize("path", FILES[:40], ids=file_id)
def test_stop_before_pixels_matches_pydicom(path):
    try:
        pd_ds = _pydicom_read(path, stop_before_pixels=True)
        keys = [int(t) for t in pd_ds.keys()]
    except Exception:
        with pytest.raises(DicomfastError):
            _our_read(path, stop_before_pixels=True)
        return
    ds = _our_read(path, stop_before_pixels=True)
    assert ds.keys() == keys
