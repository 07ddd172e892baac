"""UIDs, the UID registry and transfer syntaxes, with pydicom's registry as an oracle."""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest

import dicomfast.uid as df_uid
from dicomfast import _uids
from dicomfast.errors import UnsupportedTransferSyntaxError
from dicomfast.transfer_syntax import (
    ALL_TRANSFER_SYNTAXES,
    TransferSyntax,
    is_known_transfer_syntax,
    transfer_syntax,
)
from dicomfast.uid import UID, generate_uid

pydicom = pytest.importorskip("pydicom")
import pydicom.uid as pd_uid  # noqa: E402
from pydicom._uid_dict import UID_dictionary  # noqa: E402

# Registered after pydicom's edition: JPEG XL (PS3.5 §8.2.15) and Deflated Image Frame
# Compression (PS3.5 §A.4.13).
KNOWN_ONLY_OURS = {
    "1.2.840.10008.1.2.4.110",
    "1.2.840.10008.1.2.4.111",
    "1.2.840.10008.1.2.4.112",
    "1.2.840.10008.1.2.8.1",
}
# pydicom rows with no name or keyword (retired in 2015c without either).
KNOWN_ONLY_PYDICOM = {"1.2.840.10008.5.1.4.1.1.12.77", "1.2.840.10008.5.1.4.1.1.40"}

# Where these flags deliberately differ from pydicom, which calls every syntax other than
# the four native ones "compressed" and only 1.2.1.99 "deflated":
# - the JPIP ... Deflate syntaxes deflate the data set (PS3.5 §A.6, §A.7);
# - JPIP references pixel data and SMPTE ST 2110 streams it, so neither is compressed
#   in the data set; the retired MIME and XML encodings are not either;
# - Encapsulated Uncompressed is encapsulated but not compressed (PS3.5 §A.4.11);
# - the retired Papyrus 3 Implicit VR Little Endian is, as its name says, implicit VR and
#   uncompressed.
KNOWN_IMPLICIT_DIFFS = {"1.2.840.10008.1.20"}
KNOWN_DEFLATED_DIFFS = {"1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"}
KNOWN_COMPRESSED_DIFFS = {
    "1.2.840.10008.1.2.1.98",
    "1.2.840.10008.1.2.4.94",
    "1.2.840.10008.1.2.4.95",
    "1.2.840.10008.1.2.4.204",
    "1.2.840.10008.1.2.4.205",
    "1.2.840.10008.1.2.6.1",
    "1.2.840.10008.1.2.6.2",
    "1.2.840.10008.1.2.7.1",
    "1.2.840.10008.1.2.7.2",
    "1.2.840.10008.1.2.7.3",
    "1.2.840.10008.1.20",
}


# -- the registry against pydicom ------------------------------------------------------


def test_registry_matches_pydicom():
    missing, differ = set(), []
    for uid, (name, kind, _info, retired, keyword) in UID_dictionary.items():
        ours = _uids.UIDS.get(uid)
        if ours is None:
            missing.add(uid)
            continue
        if ours != (keyword, name, kind, retired == "Retired"):
            differ.append((uid, ours, (keyword, name, kind, retired)))
    assert missing == KNOWN_ONLY_PYDICOM
    assert differ == []
    # pynetdicom, once imported, adds some newer UIDs to pydicom's registry, so
    # those may be in both; any it adds were compared above.
    assert set(_uids.UIDS) - set(UID_dictionary) <= KNOWN_ONLY_OURS


def test_pydicom_uid_constants_have_the_same_values():
    checked = 0
    for name in dir(pd_uid):
        value = getattr(pd_uid, name)
        if not isinstance(value, pd_uid.UID) or name.startswith("PYDICOM"):
            continue
        assert getattr(df_uid, name) == value, name
        checked += 1
    assert checked > 200


def test_keywords_are_unique_and_do_not_shadow_module_names():
    keywords = [entry[0] for entry in _uids.UIDS.values()]
    assert len(keywords) == len(set(keywords))
    # (registry constants already used are cached in the module as UIDs: leave them out)
    module_names = {n for n, v in vars(df_uid).items() if not isinstance(v, UID)}
    assert module_names.isdisjoint(keywords)


def test_registry_is_sorted_and_valid():
    uids = list(_uids.UIDS)
    assert uids == sorted(uids, key=lambda u: [int(p) for p in u.split(".")])
    assert all(UID(u).is_valid for u in uids)
    assert set(_uids.TRANSFER_SYNTAXES) == {
        u for u, e in _uids.UIDS.items() if e[2] == "Transfer Syntax"
    }


def test_storage_classes_from_sops_json():
    assert df_uid.CTImageStorage == "1.2.840.10008.5.1.4.1.1.2"
    assert df_uid.CTImageStorage.name == "CT Image Storage"
    assert df_uid.CTImageStorage.type == "SOP Class"
    assert df_uid.TwelveLeadECGWaveformStorage == "1.2.840.10008.5.1.4.1.1.9.1.1"
    assert df_uid.MacularGridThicknessAndVolumeReportStorage.name.endswith("Storage")


def test_well_known_service_uids():
    expected = {
        "Verification": "1.2.840.10008.1.1",
        "StorageCommitmentPushModel": "1.2.840.10008.1.20.1",
        "PatientRootQueryRetrieveInformationModelFind": "1.2.840.10008.5.1.4.1.2.1.1",
        "PatientRootQueryRetrieveInformationModelMove": "1.2.840.10008.5.1.4.1.2.1.2",
        "PatientRootQueryRetrieveInformationModelGet": "1.2.840.10008.5.1.4.1.2.1.3",
        "StudyRootQueryRetrieveInformationModelFind": "1.2.840.10008.5.1.4.1.2.2.1",
        "StudyRootQueryRetrieveInformationModelMove": "1.2.840.10008.5.1.4.1.2.2.2",
        "StudyRootQueryRetrieveInformationModelGet": "1.2.840.10008.5.1.4.1.2.2.3",
        "ModalityWorklistInformationModelFind": "1.2.840.10008.5.1.4.31",
        "ModalityPerformedProcedureStep": "1.2.840.10008.3.1.2.3.3",
        "BasicGrayscalePrintManagementMeta": "1.2.840.10008.5.1.1.9",
        "BasicColorPrintManagementMeta": "1.2.840.10008.5.1.1.18",
        "Printer": "1.2.840.10008.5.1.1.16",
        "BasicFilmSession": "1.2.840.10008.5.1.1.1",
        "BasicFilmBox": "1.2.840.10008.5.1.1.2",
        "BasicGrayscaleImageBox": "1.2.840.10008.5.1.1.4",
        "BasicColorImageBox": "1.2.840.10008.5.1.1.4.1",
        "DICOMApplicationContext": "1.2.840.10008.3.1.1.1",
    }
    for keyword, uid in expected.items():
        assert getattr(df_uid, keyword) == uid
        assert UID(uid).keyword == keyword


def test_module_constants():
    from dicomfast.uid import ExplicitVRLittleEndian, JPEGXL  # noqa: I001

    assert ExplicitVRLittleEndian == "1.2.840.10008.1.2.1"
    assert isinstance(ExplicitVRLittleEndian, UID)
    assert df_uid.ExplicitVRLittleEndian is df_uid.ExplicitVRLittleEndian  # cached
    assert JPEGXL == "1.2.840.10008.1.2.4.112"
    assert "CTImageStorage" in dir(df_uid)
    with pytest.raises(AttributeError):
        df_uid.NotAUidKeyword  # noqa: B018
    with pytest.raises(ImportError):
        from dicomfast.uid import NotAUidKeyword  # noqa: F401


# -- UID -------------------------------------------------------------------------------


def test_uid_is_a_str_without_padding():
    u = UID("1.2.840.10008.1.2\x00")
    assert u == "1.2.840.10008.1.2" and isinstance(u, str)
    assert UID(" 1.2.3 ") == "1.2.3"
    assert UID(u) is u
    with pytest.raises(TypeError):
        UID(b"1.2.3")
    with pytest.raises(TypeError):
        UID(123)


def test_unregistered_uid():
    u = UID("1.2.3.4")
    assert (u.name, u.keyword, u.type) == ("1.2.3.4", "", "")
    assert not u.is_retired and u.is_private and not u.is_transfer_syntax
    with pytest.raises(ValueError):
        u.is_implicit_VR  # noqa: B018
    with pytest.raises(ValueError):
        df_uid.CTImageStorage.is_little_endian  # noqa: B018


def test_retired_and_private():
    assert df_uid.ExplicitVRBigEndian.is_retired
    assert not df_uid.ExplicitVRLittleEndian.is_retired
    assert not df_uid.CTImageStorage.is_private
    assert UID("2.25.1234").is_private


@pytest.mark.parametrize(
    "text, valid",
    [
        ("1.2.840.10008.1.2", True),
        ("0", True),
        ("0.0", True),
        ("2.25." + "9" * 59, True),  # 64 characters
        ("2.25." + "9" * 60, False),  # 65
        ("1.02.3", False),
        ("01.2", False),
        ("1..2", False),
        ("1.2.", False),
        (".1.2", False),
        ("1.2a", False),
        ("", False),
        ("1.2.3\n", False),
        ("1.٣", False),  # a non-ASCII digit
    ],
)
def test_is_valid(text, valid):
    u = str.__new__(UID, text)  # unstripped, to test the rule itself
    assert u.is_valid is valid
    if text.isascii() and text == text.strip():  # pydicom strips blanks first
        assert pd_uid.UID(text, validation_mode=0).is_valid is valid


def test_transfer_syntax_flags_match_pydicom():
    diffs = {"implicit": set(), "little": set(), "deflated": set(), "compressed": set()}
    for uid in _uids.TRANSFER_SYNTAXES:
        if uid in KNOWN_ONLY_OURS:
            continue
        ours, theirs = UID(uid), pd_uid.UID(uid)
        assert ours.is_transfer_syntax and theirs.is_transfer_syntax
        if ours.is_implicit_VR != theirs.is_implicit_VR:
            diffs["implicit"].add(uid)
        if ours.is_little_endian != theirs.is_little_endian:
            diffs["little"].add(uid)
        if ours.is_deflated != theirs.is_deflated:
            diffs["deflated"].add(uid)
        if ours.is_compressed != theirs.is_compressed:
            diffs["compressed"].add(uid)
    assert diffs == {
        "implicit": KNOWN_IMPLICIT_DIFFS,
        "little": set(),
        "deflated": KNOWN_DEFLATED_DIFFS,
        "compressed": KNOWN_COMPRESSED_DIFFS,
    }


def test_uid_transfer_syntax_flags():
    assert df_uid.ImplicitVRLittleEndian.is_implicit_VR
    assert not df_uid.ExplicitVRBigEndian.is_little_endian
    assert df_uid.DeflatedExplicitVRLittleEndian.is_deflated
    assert df_uid.JPEGBaseline8Bit.is_compressed and df_uid.JPEGBaseline8Bit.is_encapsulated
    u = df_uid.EncapsulatedUncompressedExplicitVRLittleEndian
    assert u.is_encapsulated and not u.is_compressed and u.is_lossless
    assert df_uid.RLELossless.is_lossless and not df_uid.JPEG2000.is_lossless


# -- generate_uid ----------------------------------------------------------------------


def test_generate_uid_default_is_uuid_derived():
    seen = set()
    for _ in range(200):
        u = generate_uid()
        assert isinstance(u, UID) and u.is_valid
        assert u.startswith("2.25.")
        value = int(u[5:])
        assert 0 <= value < 2**128
        assert uuid.UUID(int=value).version == 4
        seen.add(u)
    assert len(seen) == 200


def test_generate_uid_with_prefix():
    for prefix in ("1.2.3.", "1.2.840.99999.", "2.25.", "9." * 31):
        u = generate_uid(prefix)
        assert u.startswith(prefix) and u.is_valid and len(u) == 64
    assert generate_uid("1.2.3.") != generate_uid("1.2.3.")


def test_generate_uid_from_entropy_is_deterministic():
    a = generate_uid(entropy_srcs=["PAT1", "STUDY1"])
    assert a == generate_uid(entropy_srcs=["PAT1", "STUDY1"])
    assert a != generate_uid(entropy_srcs=["PAT1STUDY1"])
    assert a.startswith("2.25.") and a.is_valid
    b = generate_uid("1.2.3.", entropy_srcs=["x"])
    assert b == generate_uid("1.2.3.", entropy_srcs=["x"]) and b.is_valid


@pytest.mark.parametrize("prefix", ["1.2.3", "1.02.", ".1.", "abc.", "", "9." * 32, "1.2..3."])
def test_generate_uid_rejects_bad_prefixes(prefix):
    with pytest.raises(ValueError):
        generate_uid(prefix)


# -- transfer syntaxes -----------------------------------------------------------------


def test_all_transfer_syntaxes():
    assert len(ALL_TRANSFER_SYNTAXES) == len(_uids.TRANSFER_SYNTAXES) >= 60
    uids = [ts.uid for ts in ALL_TRANSFER_SYNTAXES]
    assert len(set(uids)) == len(uids)
    for ts in ALL_TRANSFER_SYNTAXES:
        assert transfer_syntax(ts.uid) is ts
        assert ts.keyword == UID(ts.uid).keyword
        assert ts.is_retired == UID(ts.uid).is_retired
        assert str(ts) == ts.uid


def test_native_and_encapsulated():
    native = {ts.keyword for ts in ALL_TRANSFER_SYNTAXES if not ts.is_encapsulated}
    assert {
        "ImplicitVRLittleEndian",
        "ExplicitVRLittleEndian",
        "ExplicitVRBigEndian",
        "DeflatedExplicitVRLittleEndian",
        "Papyrus3ImplicitVRLittleEndian",
    } <= native
    # every compressed pydicom syntax is encapsulated, save those PS3.5 keeps out of Pixel Data
    for uid in pd_uid.AllTransferSyntaxes:
        if pd_uid.UID(uid).is_compressed and uid not in KNOWN_COMPRESSED_DIFFS:
            assert transfer_syntax(uid).is_encapsulated, uid
    assert transfer_syntax("1.2.840.10008.1.2.1.98").is_encapsulated
    assert transfer_syntax("1.2.840.10008.1.2.8.1").is_encapsulated


@pytest.mark.parametrize(
    "keyword, implicit, little, deflated, encapsulated, lossless",
    [
        ("ImplicitVRLittleEndian", True, True, False, False, True),
        ("ExplicitVRLittleEndian", False, True, False, False, True),
        ("ExplicitVRBigEndian", False, False, False, False, True),
        ("DeflatedExplicitVRLittleEndian", False, True, True, False, True),
        ("JPEGBaseline8Bit", False, True, False, True, False),
        ("JPEGLosslessSV1", False, True, False, True, True),
        ("JPEGLSNearLossless", False, True, False, True, False),
        ("JPEG2000Lossless", False, True, False, True, True),
        ("HTJ2KLosslessRPCL", False, True, False, True, True),
        ("HTJ2K", False, True, False, True, False),
        ("RLELossless", False, True, False, True, True),
        ("JPIPReferencedDeflate", False, True, True, False, False),
        ("JPEGXLLossless", False, True, False, True, True),
        ("MPEG4HP41", False, True, False, True, False),
    ],
)
def test_transfer_syntax_facts(keyword, implicit, little, deflated, encapsulated, lossless):
    ts = transfer_syntax(getattr(df_uid, keyword))
    assert ts.keyword == keyword
    assert (
        ts.is_implicit_vr,
        ts.is_little_endian,
        ts.is_deflated,
        ts.is_encapsulated,
        ts.is_lossless,
    ) == (implicit, little, deflated, encapsulated, lossless)


def test_transfer_syntax_lookup():
    ts = transfer_syntax("1.2.840.10008.1.2.1\x00")
    assert ts.keyword == "ExplicitVRLittleEndian"
    assert transfer_syntax("1.2.840.10008.1.2.1 ") is ts
    assert transfer_syntax(b"1.2.840.10008.1.2.1\x00") is ts
    assert transfer_syntax(df_uid.ExplicitVRLittleEndian) is ts
    assert isinstance(ts, TransferSyntax)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ts.is_deflated = True  # type: ignore[misc]


@pytest.mark.parametrize(
    "uid",
    ["", "1.2.3", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.50.1", "1.2.840.113619.5.2"],
)
def test_unknown_transfer_syntaxes(uid):
    with pytest.raises(UnsupportedTransferSyntaxError):
        transfer_syntax(uid)
    assert is_known_transfer_syntax(uid) is False


def test_is_known_transfer_syntax():
    assert is_known_transfer_syntax("1.2.840.10008.1.2\x00")
    assert is_known_transfer_syntax(b"1.2.840.10008.1.2.4.201")
    assert is_known_transfer_syntax(None) is False  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        transfer_syntax(None)  # type: ignore[arg-type]


def test_names_come_from_the_registry():
    ts = transfer_syntax("1.2.840.10008.1.2.4.70")
    assert re.match(r"JPEG Lossless, Non-Hierarchical, First-Order Prediction", ts.name)
