"""dicomfast.json_model: the DICOM JSON Model (PS3.18 Annex F).

* Corpus round trip: every corpus file read, turned into JSON text and back
  gives the same elements (Group Lengths aside, which PS3.18 §F.2.2 leaves
  out), and the same JSON again.
* pydicom: our JSON equals ``Dataset.to_json_dict()`` once both are
  normalised for the choices PS3.18 leaves open (listed in ``normalise``);
  pydicom's ``Dataset.from_json`` reads our JSON to the same values, and we
  read pydicom's.
* The example of PS3.18 Annex F.4 parses, as written in the standard.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import warnings
from typing import Any

import pytest

pydicom = pytest.importorskip("pydicom")

import corpus  # noqa: E402

import dicomfast  # noqa: E402
from dicomfast.dataset import Dataset, Sequence  # noqa: E402
from dicomfast.element import DataElement  # noqa: E402
from dicomfast.errors import MalformedDataError, ValueWarning  # noqa: E402
from dicomfast.json_model import (  # noqa: E402
    dataset_from_json,
    dataset_to_json,
    dataset_to_json_dict,
)
from dicomfast.values import IS, DSfloat, MultiValue, PersonName  # noqa: E402


def _read(path: Any) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dicomfast.read(str(path), force=True)


def _to_json(path: Any) -> dict[str, Any]:
    """Our JSON of a corpus file; values decode lazily, so warnings of
    malformed values come here and are not the subject of these tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dataset_to_json_dict(_read(path))
        except dicomfast.DicomfastError:
            pytest.skip("dicomfast does not read this file")


# Files the two readers read differently (so the JSON differs for reasons
# outside this module).
READER_DIFFERENCES = {
    # No File Meta and big endian: pydicom guesses the byte order, dicomfast
    # reads it as Implicit VR Little Endian.
    "ExplVR_BigEndNoMeta.dcm",
}


def _read_pydicom(path: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(str(path), force=True)


# --------------------------------------------------------------------------
# Comparing values and JSON


def _norm(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return struct.pack("<d", v)
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    return str(v)


def assert_same_dataset(a: Dataset, b: Dataset, where: str = "") -> None:
    tags = [t for t in a.keys() if t & 0xFFFF]  # no Group Lengths in JSON
    assert tags == b.keys(), where
    for tag in tags:
        x, y = a[tag], b[tag]
        here = f"{where}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if x.VR == "UN" and y.VR == "LO" and 0x10 <= tag & 0xFFFF <= 0xFF:
            # A Private Creator read as UN is written as LO (PS3.5 §7.8.1).
            assert x.value.rstrip(b" \x00").decode("latin-1") == y.value, here
            continue
        assert x.VR == y.VR, here
        if x.VR == "SQ":
            assert len(x.value) == len(y.value), here
            for i, (p, q) in enumerate(zip(x.value, y.value, strict=True)):
                assert_same_dataset(p, q, f"{here}[{i}]")
        else:
            assert _norm(x.value) == _norm(y.value), here


def _value_norm(vr: str, v: Any) -> Any:
    if v is None or v == "":
        return None
    if vr == "PN" and isinstance(v, dict):
        return {k: x for k, x in v.items() if x} or None
    if vr in ("DS", "FL", "FD"):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return v
        return "nan" if math.isnan(f) else f
    if vr in ("IS",):
        try:
            return int(v)
        except (TypeError, ValueError):
            return v
    return v


def normalise(d: dict[str, Any], skip_private_un: dict[str, Any] | None = None) -> dict:
    """A DICOM JSON object with PS3.18's latitude taken out.

    Group Lengths dropped (§F.2.2 excludes them; pydicom writes them); ""
    and null alike (§F.2.5 says null, pydicom writes ""); empty PN groups
    dropped (§F.2.2 lists the non-empty ones; pydicom always has Alphabetic);
    an empty sequence without "Value" (pydicom writes []); DS as numbers (we
    keep a string where a float would lose digits, §F.2.3); InlineBinary
    decoded.
    """
    out = {}
    for key, obj in d.items():
        if key.endswith("0000"):
            continue
        vr = obj["vr"]
        o: dict[str, Any] = {"vr": vr}
        if "Value" in obj:
            if vr == "SQ":
                if obj["Value"]:
                    o["Value"] = [normalise(item) for item in obj["Value"]]
            else:
                values = [_value_norm(vr, x) for x in obj["Value"]]
                if any(x is not None for x in values) or len(values) > 1:
                    o["Value"] = values
        if "InlineBinary" in obj:
            o["InlineBinary"] = base64.b64decode(obj["InlineBinary"])
        if "BulkDataURI" in obj:
            o["BulkDataURI"] = obj["BulkDataURI"]
        out[key] = o
    return out


def json_differences(ours: dict, theirs: dict, where: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(ours) | set(theirs)):
        x, y = ours.get(key), theirs.get(key)
        here = f"{where}{key}"
        if x is None or y is None:
            diffs.append(f"{here}: only in {'ours' if y is None else 'pydicom'}")
            continue
        if x["vr"] != y["vr"]:
            # pydicom gives private elements of implicit VR data sets the VR
            # of its private dictionary; dicomfast keeps UN (PS3.5 §6.2.2).
            if not (x["vr"] == "UN" and int(key[:4], 16) & 1):
                diffs.append(f"{here}: vr {x['vr']} != {y['vr']}")
            continue
        if x["vr"] == "SQ":
            xs, ys = x.get("Value", []), y.get("Value", [])
            if len(xs) != len(ys):
                diffs.append(f"{here}: {len(xs)} items != {len(ys)}")
            for i, (p, q) in enumerate(zip(xs, ys, strict=False)):
                diffs += json_differences(p, q, f"{here}[{i}].")
        elif x != y:
            diffs.append(f"{here}: {str(x)[:120]} != {str(y)[:120]}")
    return diffs


# --------------------------------------------------------------------------
# Corpus


def _has_number_text(d: dict[str, Any]) -> bool:
    for obj in d.values():
        if obj["vr"] in ("DS", "IS") and any(isinstance(v, str) for v in obj.get("Value", [])):
            return True
        if obj["vr"] == "SQ" and any(_has_number_text(item) for item in obj.get("Value", [])):
            return True
    return False


def _corpus_ids() -> list[Any]:
    return [pytest.param(p, id=corpus.file_id(p)) for p in corpus.all_files()]


@pytest.mark.parametrize("path", _corpus_ids())
def test_corpus_round_trip(path: Any) -> None:
    d = _to_json(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _read(path)
        for el in ds:
            el.value  # noqa: B018 - decode (and warn) here, not in the comparison
    text = json.dumps(d)
    back = dataset_from_json(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_dataset(ds, back)
    assert dataset_to_json_dict(back) == d
    assert list(d) == sorted(d)  # PS3.18 §F.2.2: ascending tags


@pytest.mark.parametrize("path", _corpus_ids())
def test_corpus_same_as_pydicom(path: Any) -> None:
    if path.name in READER_DIFFERENCES:
        pytest.skip("the readers differ on this file")
    ours = _to_json(path)
    try:
        pds = _read_pydicom(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = pds.to_json_dict()
    except Exception as exc:  # pydicom's reader or JSON writer gives up
        pytest.skip(f"pydicom: {type(exc).__name__}")
    if not theirs and ours:
        pytest.skip("pydicom reads no elements from this file")
    assert not json_differences(normalise(ours), normalise(theirs))


@pytest.mark.parametrize("path", _corpus_ids())
def test_corpus_interoperates_with_pydicom(path: Any) -> None:
    ours = _to_json(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # pydicom reads our JSON to the same values ...
        try:
            pds = pydicom.Dataset.from_json(json.dumps(ours))
        except ValueError:
            # pydicom reads IS/DS numbers only, not the strings PS3.18
            # §F.2.3 allows (here: text that is no number at all).
            if not _has_number_text(ours):
                raise
            pytest.skip("pydicom does not read DS/IS strings")
        again = pds.to_json_dict()
    assert not json_differences(normalise(ours), normalise(again))
    # ... and we read pydicom's JSON to the same values.
    mine = dataset_from_json(json.dumps(again))
    assert not json_differences(normalise(dataset_to_json_dict(mine)), normalise(again))


# --------------------------------------------------------------------------
# PS3.18 Annex F.4, the DICOM JSON Model example, as the standard prints it
# (a QIDO-RS SearchForStudies response with two studies); only the comments
# are removed before parsing.

ANNEX_F4 = """
// The following example is a QIDO-RS SearchForStudies response consisting
// of two matching studies, corresponding to the example QIDO-RS request:
// GET http://qido.nema.org/studies?PatientID=12345&includefield=all&limit=2
[
    {   // Result 1
        "00080005": {
            "vr": "CS",
            "Value": [ "ISO_IR 192" ]
        },
        "00080020": {
            "vr": "DT",
            "Value": [ "20130409" ]
        },
        "00080030": {
            "vr": "TM",
            "Value": [ "131600.0000" ]
        },
        "00080050": {
            "vr": "SH",
            "Value": [ "11235813" ]
        },
        "00080056": {
            "vr": "CS",
            "Value": [ "ONLINE" ]
        },
        "00080061": {
            "vr": "CS",
            "Value": [
                "CT",
                "PET"
            ]
        },
        "00080090": {
            "vr": "PN",
            "Value": [
              {
                "Alphabetic": "^Bob^^Dr."
              }
            ]
        },
        "00081190": {
            "vr": "UR",
            "Value": [ "http://wado.nema.org/studies/1.2.392.200036.9116.2.2.2.1762893313.1029997326.945873" ]
        },
        "00090010": {
            "vr": "LO",
            "Value": [ "Vendor A" ]
        },
        "00091002": {
            "vr": "UN",
            "InlineBinary": [ "z0x9c8v7" ]
        },
        "00100010": {
            "vr": "PN",
            "Value": [
              {
                "Alphabetic": "Wang^XiaoDong",
                "Ideographic": "王^小東"
              }
            ]
        },
        "00100020": {
            "vr": "LO",
            "Value": [ "12345" ]
        },
        "00100021": {
            "vr": "LO",
            "Value": [ "Hospital A" ]
        },
        "00100030": {
            "vr": "DT",
            "Value": [ "19670701" ]
        },
        "00100040": {
            "vr": "CS",
            "Value": [ "M" ]
        },
        "00101002": {
            "vr": "SQ",
            "Value": [
                {
                    "00100020": {
                        "vr": "LO",
                        "Value": [ "54321" ]
                    },
                    "00100021": {
                        "vr": "LO",
                        "Value": [ "Hospital B" ]
                    }
                },
                {
                    "00100020": {
                        "vr": "LO",
                        "Value": [ "24680" ]
                    },
                    "00100021": {
                        "vr": "LO",
                        "Value": [ "Hospital C" ]
                    }
                }
            ]
        },
        "0020000D": {
            "vr": "UI",
            "Value": [ "1.2.392.200036.9116.2.2.2.1762893313.1029997326.945873" ]
        },
        "00200010": {
            "vr": "SH",
            "Value": [ "11235813" ]
        },
        "00201206": {
            "vr": "IS",
            "Value": [ 4 ]
        },
        "00201208": {
            "vr": "IS",
            "Value": [ 942 ]
        }
    },
    {   // Result 2
        "00080005": {
            "vr": "CS",
            "Value": [ "ISO_IR 192" ]
        },
        "00080020": {
            "vr": "DT",
            "Value": [ "20130309" ]
        },
        "00080030": {
            "vr": "TM",
            "Value": [ "111900.0000" ]
        },
        "00080050": {
            "vr": "SH",
            "Value": [ "11235821" ]
        },
        "00080056": {
            "vr": "CS",
            "Value": [ "ONLINE" ]
        },
        "00080061": {
            "vr": "CS",
            "Value": [
                "CT",
                "PET"
            ]
        },
        "00080090": {
            "vr": "PN",
            "Value": [
              {
                "Alphabetic": "^Bob^^Dr."
              }
            ]
        },
        "00081190": {
            "vr": "UR",
            "Value": [ "http://wado.nema.org/studies/1.2.392.200036.9116.2.2.2.2162893313.1029997326.945876" ]
        },
        "00090010": {
            "vr": "LO",
            "Value": [ "Vendor A" ]
        },
        "00091002": {
            "vr": "UN",
            "InlineBinary": [ "z0x9c8v7" ]
        },
        "00100010": {
            "vr": "PN",
            "Value": [
              {
                "Alphabetic": "Wang^XiaoDong",
                "Ideographic": "王^小東"
              }
            ]
        },
        "00100020": {
            "vr": "LO",
            "Value": [ "12345" ]
        },
        "00100021": {
            "vr": "LO",
            "Value": [ "Hospital A" ]
        },
        "00100030": {
            "vr": "DT",
            "Value": [ "19670701" ]
        },
        "00100040": {
            "vr": "CS",
            "Value": [ "M" ]
        },
        "00101002": {
            "vr": "SQ",
            "Value": [
                {
                    "00100020": {
                        "vr": "LO",
                        "Value": [ "54321" ]
                    },
                    "00100021": {
                        "vr": "LO",
                        "Value": [ "Hospital B" ]
                    }
                },
                {
                    "00100020": {
                        "vr": "LO",
                        "Value": [ "24680" ]
                    },
                    "00100021": {
                        "vr": "LO",
                        "Value": [ "Hospital C" ]
                    }
                }
            ]
        },
        "0020000D": {
            "vr": "UI",
            "Value": [ "1.2.392.200036.9116.2.2.2.2162893313.1029997326.945876" ]
        },
        "00200010": {
            "vr": "SH",
            "Value": [ "11235821" ]
        },
        "00201206": {
            "vr": "IS",
            "Value": [ 5 ]
        },
        "00201208": {
            "vr": "IS",
            "Value": [ 1123 ]
        }
    }
]
"""


def _annex_f4() -> list[dict[str, Any]]:
    text = re.sub(r"(?m)(^|\s)//[^\n]*", r"\1", ANNEX_F4)
    return json.loads(text)  # type: ignore[no-any-return]


def test_annex_f4_example_parses() -> None:
    first, second = (dataset_from_json(study) for study in _annex_f4())
    assert first.SpecificCharacterSet == "ISO_IR 192"
    assert first.ModalitiesInStudy == ["CT", "PET"]
    assert isinstance(first.ModalitiesInStudy, MultiValue)
    name = first.PatientName
    assert isinstance(name, PersonName) and name == "Wang^XiaoDong=王^小東"
    assert (name.family_name, name.ideographic) == ("Wang", "王^小東")
    assert first.ReferringPhysicianName == "^Bob^^Dr."
    assert first.ReferringPhysicianName.given_name == "Bob"
    assert first.NumberOfStudyRelatedSeries == 4 and isinstance(
        first.NumberOfStudyRelatedSeries, IS)
    assert second.NumberOfStudyRelatedInstances == 1123
    assert first[0x00080020].VR == "DT" and first.StudyDate == "20130409"
    # The private block: its creator and a UN element given inline, in the
    # list form of the example.
    assert first[0x00090010].value == "Vendor A"
    assert first[0x00091002].value == base64.b64decode("z0x9c8v7")
    assert first[0x00091002].private_creator == "Vendor A"
    others = first.OtherPatientIDsSequence
    assert isinstance(others, Sequence) and len(others) == 2
    assert [(item.PatientID, item.IssuerOfPatientID) for item in others] == [
        ("54321", "Hospital B"), ("24680", "Hospital C")]
    assert first.RetrieveURL.endswith(".945873")


def test_annex_f4_round_trip() -> None:
    for study in _annex_f4():
        ds = dataset_from_json(study)
        out = dataset_to_json_dict(ds)
        # InlineBinary is a string (§F.2.7); the example wraps it in a list.
        expected = json.loads(json.dumps(study))
        expected["00091002"]["InlineBinary"] = expected["00091002"]["InlineBinary"][0]
        assert out == expected
        assert json.loads(dataset_to_json(ds)) == expected
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pds = pydicom.Dataset.from_json(study)
            theirs = pds.to_json_dict()
        assert not json_differences(normalise(out), normalise(theirs))


# --------------------------------------------------------------------------
# Details


def _ds(*elements: tuple[int, str, Any]) -> Dataset:
    ds = Dataset()
    for tag, vr, value in elements:
        ds.add_new(tag, vr, value)
    return ds


def test_value_types_and_nulls() -> None:
    ds = _ds(
        (0x00080008, "CS", MultiValue(["ORIGINAL", "", "AXIAL"])),
        (0x00100010, "PN", PersonName("=山田^太郎")),
        (0x00101001, "PN", MultiValue([PersonName("A^B"), PersonName("")])),
        (0x00181030, "LO", ""),
        (0x00200032, "DS", MultiValue([DSfloat("1.50"), "", DSfloat("-2")])),
        (0x00201206, "IS", IS("007")),
        (0x00280010, "US", 512),
        (0x00281050, "DS", DSfloat("0.10000000000001")),
        (0x00209165, "AT", MultiValue([0x00100010, 0x7FE00010])),
        (0x00186020, "SL", MultiValue([-1, 2])),
        (0x00189087, "FD", 1.5),
        (0x00400275, "SQ", Sequence()),
        (0x00081115, "SQ", Sequence([Dataset(), _ds((0x0020000E, "UI", "1.2"))])),
        (0x7FE00010, "OW", b"\x01\x02"),
        (0x00091010, "UN", None),
    )
    d = dataset_to_json_dict(ds)
    assert d["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", None, "AXIAL"]}
    assert d["00100010"] == {"vr": "PN", "Value": [{"Ideographic": "山田^太郎"}]}
    assert d["00101001"] == {"vr": "PN", "Value": [{"Alphabetic": "A^B"}, None]}
    assert d["00181030"] == {"vr": "LO"}  # PS3.18 §F.2.5: empty, no Value
    assert d["00200032"] == {"vr": "DS", "Value": [1.5, None, -2.0]}
    assert d["00201206"] == {"vr": "IS", "Value": [7]}
    assert d["00281050"] == {"vr": "DS", "Value": [0.10000000000001]}
    assert d["00209165"] == {"vr": "AT", "Value": ["00100010", "7FE00010"]}
    assert d["00186020"] == {"vr": "SL", "Value": [-1, 2]}
    assert d["00400275"] == {"vr": "SQ"}
    assert d["00081115"] == {"vr": "SQ", "Value": [{}, {"0020000E": {"vr": "UI",
                                                                    "Value": ["1.2"]}}]}
    assert d["7FE00010"] == {"vr": "OW", "InlineBinary": "AQI="}
    assert d["00091010"] == {"vr": "UN"}
    back = dataset_from_json(json.dumps(d))
    assert_same_dataset(ds, back)
    assert back[0x00080008].value == ["ORIGINAL", "", "AXIAL"]
    assert back[0x00400275].value == [] and isinstance(back[0x00400275].value, Sequence)
    assert back.PatientName.ideographic == "山田^太郎"


def test_ds_strings_where_a_number_would_lose_digits() -> None:
    # 17 significant digits no binary float holds: PS3.18 §F.2.3 allows a string.
    ds = _ds((0x00281050, "DS", DSfloat("1234567.89012345")),
             (0x00281051, "DS", DSfloat("9007199254740993")),
             (0x00281052, "DS", "not a number"))
    d = dataset_to_json_dict(ds)
    assert d["00281050"]["Value"] == [1234567.89012345]
    assert d["00281051"]["Value"] == ["9007199254740993"]
    assert d["00281052"]["Value"] == ["not a number"]
    back = dataset_from_json(d)
    assert str(back[0x00281051].value) == "9007199254740993"
    assert back[0x00281052].value == "not a number"


def test_numbers_from_json() -> None:
    d = {
        "00281050": {"vr": "DS", "Value": [4, 0.1, "1.50", 0.30000000000000004]},
        "00201206": {"vr": "IS", "Value": ["12", 3.0]},
        "00189219": {"vr": "SV", "Value": ["-9223372036854775808"]},
        "00180088": {"vr": "FD", "Value": [1]},
    }
    ds = dataset_from_json(d)
    ds_values = ds[0x00281050].value
    assert [str(v) for v in ds_values] == ["4", "0.1", "1.50", "0.30000000000000"]
    assert all(isinstance(v, DSfloat) for v in ds_values)
    assert ds[0x00201206].value == [12, 3] and all(isinstance(v, IS) for v in
                                                      ds[0x00201206].value)
    assert ds[0x00189219].value == -(2**63)
    assert ds[0x00180088].value == 1.0 and isinstance(ds[0x00180088].value, float)


def test_bulk_data() -> None:
    big = bytes(range(256)) * 4
    ds = _ds((0x7FE00010, "OB", big), (0x00283006, "OW", b"\x00\x01"))
    seen: list[DataElement] = []

    def uri_for(el: DataElement) -> str:
        seen.append(el)
        return f"http://host/bulk/{el.tag:08X}"

    d = dataset_to_json_dict(ds, bulk_data_threshold=1024, bulk_data_uri_handler=uri_for)
    assert d["7FE00010"] == {"vr": "OB", "BulkDataURI": "http://host/bulk/7FE00010"}
    assert d["00283006"] == {"vr": "OW", "InlineBinary": "AAE="}
    assert [el.tag for el in seen] == [0x7FE00010]
    # Without a handler everything is inline, as in pydicom.
    assert "InlineBinary" in dataset_to_json_dict(ds)["7FE00010"]
    # Reading: both handler shapes pydicom accepts.
    fetched = dataset_from_json(d, bulk_data_uri_handler=lambda uri: big)
    assert fetched[0x7FE00010].value == big
    calls = []

    def three(tag: str, vr: str, uri: str) -> bytes:
        calls.append((tag, vr, uri))
        return big

    dataset_from_json(d, bulk_data_uri_handler=three)
    assert calls == [("7FE00010", "OB", "http://host/bulk/7FE00010")]
    with pytest.warns(ValueWarning):
        unfetched = dataset_from_json(d)
    assert unfetched[0x7FE00010].value is None


def test_lenient_and_malformed_input() -> None:
    # A PN given as a string (some servers do this) is read, with a warning.
    with pytest.warns(ValueWarning):
        ds = dataset_from_json({"00100010": {"vr": "PN", "Value": ["Doe^John"]}})
    assert ds.PatientName == "Doe^John"
    # A missing vr is taken from the dictionary for public tags.
    assert dataset_from_json({"00100020": {"Value": ["ID"]}})[0x00100020].VR == "LO"
    # InlineBinary for a number VR holds its Value Field (little endian).
    ds = dataset_from_json({"00280010": {"vr": "US", "InlineBinary": "AAI="}})
    assert ds.Rows == 512
    for bad in ('{"0010001": {"vr": "PN"}}', '{"0010001G": {"vr": "PN"}}',
                '{"00100010": {"vr": "PN", "Value": "x"}}',
                '{"00100010": {"vr": "PN", "Value": [], "InlineBinary": "AA=="}}',
                '{"00990010": {"Value": ["x"]}}', "[{}]", "not json",
                '{"00280010": {"vr": "US", "Value": ["x"]}}'):
        with pytest.raises(MalformedDataError):
            dataset_from_json(bad)


def test_read_file_to_json_text() -> None:
    path = corpus.find("CT_small.dcm")
    if path is None:
        pytest.skip("CT_small.dcm not available")
    text = dataset_to_json(_read(path), indent=2)
    d = json.loads(text)
    assert d["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert d["00280030"]["Value"] == [0.661468, 0.661468]
    assert "InlineBinary" in d["7FE00010"]
    assert not any(k.endswith("0000") for k in d)


def test_plain_python_numbers() -> None:
    # Values assigned as plain numbers, not read from a file.
    ds = _ds((0x00281050, "DS", 5), (0x00281051, "DS", [0.5, 2]), (0x00201206, "IS", 3.0))
    d = dataset_to_json_dict(ds)
    assert d["00281050"]["Value"] == [5.0] and d["00281051"]["Value"] == [0.5, 2.0]
    assert d["00201206"]["Value"] == [3]


def test_dataset_methods_reach_the_json_model():
    from corpus import find

    import dicomfast

    ds = dicomfast.read(find("CT_small.dcm"), stop_before_pixels=True)
    as_dict = ds.to_json_dict()
    assert as_dict["00100010"]["vr"] == "PN"
    again = dicomfast.Dataset.from_json(ds.to_json())
    assert again.PatientName == ds.PatientName
    assert again.ImagePositionPatient == ds.ImagePositionPatient
