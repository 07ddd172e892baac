"""DIMSE command sets, status categories, fragmentation and reassembly."""

from __future__ import annotations

import io
import os
import random
import struct

import pytest

from dicomfast.errors import DIMSEError
from dicomfast.net import dimse as D
from dicomfast.net import pdu as P

pydicom = pytest.importorskip("pydicom")
from pydicom.filereader import read_dataset  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"


def _theirs(raw: bytes):
    return read_dataset(io.BytesIO(raw), is_implicit_VR=True, is_little_endian=True)


def test_store_rq_encodes_as_pydicom_reads_it():
    raw = D.encode_command(D.store_rq(7, CT, "1.2.3.4", move_originator_ae="MOVER",
                                      move_originator_id=3))
    theirs = _theirs(raw)
    assert theirs.CommandGroupLength == len(raw) - 12
    assert (theirs.CommandField, theirs.MessageID, theirs.Priority) == (1, 7, 0)
    assert theirs.CommandDataSetType != D.NO_DATA_SET
    assert (theirs.AffectedSOPClassUID, theirs.AffectedSOPInstanceUID) == (CT, "1.2.3.4")
    assert theirs.MoveOriginatorApplicationEntityTitle.strip() == "MOVER"
    # Group 0000 first, in ascending tag order, every value even length (PS3.5 §7.1).
    assert raw[:8] == struct.pack("<HHI", 0, 0, 4)


def test_store_rsp_carries_back_the_request():
    rq = D.decode_command(D.encode_command(D.store_rq(9, CT, "1.2.3")))
    raw = D.encode_command(D.store_rsp(rq, D.OUT_OF_RESOURCES, "disk full\\oops",
                                       offending_element=D.T_AFFECTED_SOP_INSTANCE))
    theirs = _theirs(raw)
    assert (theirs.CommandField, theirs.MessageIDBeingRespondedTo, theirs.Status) == \
        (0x8001, 9, 0xA700)
    assert theirs.CommandDataSetType == D.NO_DATA_SET
    assert theirs.AffectedSOPInstanceUID == "1.2.3" and "\\" not in theirs.ErrorComment
    assert theirs.OffendingElement == 0x00001000


def test_echo_pair():
    rq = D.decode_command(D.encode_command(D.echo_rq(1)))
    assert rq.CommandField == D.C_ECHO_RQ and not D.has_data_set(rq)
    rsp = D.decode_command(D.encode_command(D.echo_rsp(rq)))
    assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8030, 1, 0)


def test_decode_pynetdicom_commands():
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS
    from pynetdicom.dimse_primitives import C_ECHO, C_STORE
    from pynetdicom.dsutils import encode

    for prim in (C_STORE(), C_ECHO()):
        prim.MessageID = 12
        prim.AffectedSOPClassUID = CT if isinstance(prim, C_STORE) else "1.2.840.10008.1.1"
        if isinstance(prim, C_STORE):
            prim.AffectedSOPInstanceUID = "1.2.3.4.5"
            prim.Priority = 2
            ds = PDS()
            ds.PatientName = "X"
            prim.DataSet = io.BytesIO(encode(ds, True, True))
        msg_cls = pynetdicom.dimse_messages.C_STORE_RQ if isinstance(prim, C_STORE) \
            else pynetdicom.dimse_messages.C_ECHO_RQ
        msg = msg_cls()
        msg.primitive_to_message(prim)
        raw = encode(msg.command_set, True, True)
        ours = D.decode_command(raw)
        assert ours.MessageID == 12
        assert ours.AffectedSOPClassUID == prim.AffectedSOPClassUID
        assert D.has_data_set(ours) == isinstance(prim, C_STORE)


@pytest.mark.parametrize("status,category", [
    (0x0000, "Success"), (0x0001, "Warning"), (0x0107, "Warning"), (0x0116, "Warning"),
    (0xB000, "Warning"), (0xB007, "Warning"), (0xA700, "Failure"), (0xA900, "Failure"),
    (0xC000, "Failure"), (0x0122, "Failure"), (0x0211, "Failure"), (0xFE00, "Cancel"),
    (0xFF00, "Pending"), (0xFF01, "Pending")])
def test_status_categories(status, category):
    assert D.status_category(status) == category


def test_bad_command_sets():
    with pytest.raises(DIMSEError):
        D.decode_command(b"\x00\x00\x02\x00\x04\x00\x00\x001.2")  # no Command Field
    with pytest.raises(DIMSEError):
        D.decode_command(os.urandom(3))
    bad = D.encode_command(D.echo_rq(1)) + struct.pack("<HHI", 8, 0x18, 2) + b"1\0"
    with pytest.raises(DIMSEError):
        D.decode_command(bad)  # an element outside group 0000


def _reassemble(pdus: list[bytes]) -> tuple[list, bytes]:
    r = D.Reassembler()
    events, data = [], bytearray()
    for raw in pdus:
        for ctx, ctl, view in P.pdata_pdvs(raw):
            for ev in r.feed(ctx, ctl, view):
                if ev[0] == "data":
                    data += ev[2]
                events.append(ev[0] if ev[0] == "data" else (ev[0], ev[3]))
    assert r.idle
    return events, bytes(data)


@pytest.mark.parametrize("peer_max", [16384, 4096 + 6, 200, 0])
def test_fragmentation_roundtrip(peer_max):
    rng = random.Random(peer_max)
    cmd = D.encode_command(D.store_rq(1, CT, "1.2.3"))
    for size in (0, 1, 100, 4095, 4096, 16378, 16379, 100000):
        data = rng.randbytes(size)
        max_value = D.max_pdv_value(peer_max, 1 << 20)
        pdus = list(D.message_pdus(3, cmd, data, max_value))
        for raw in pdus:
            length = struct.unpack(">I", raw[2:6])[0]
            assert length + 6 == len(raw)
            if peer_max:
                assert length <= peer_max
            assert P.Framer(max_pdata_len=peer_max).feed(raw) is None
        events, got = _reassemble(pdus)
        assert events[0] == ("command", True) and got == data
        assert events.count("data") >= 1


def test_command_only_message():
    cmd = D.encode_command(D.echo_rq(5))
    pdus = list(D.message_pdus(1, cmd, None, D.max_pdv_value(40, 0)))
    assert len(pdus) > 1  # the command itself is cut into fragments
    events, data = _reassemble(pdus)
    assert events == [("command", False)] and data == b""


def test_reassembly_rule_breaches():
    cmd = D.encode_command(D.store_rq(1, CT, "1.2.3"))
    r = D.Reassembler()
    with pytest.raises(DIMSEError):
        r.feed(1, 0, b"data first")
    r = D.Reassembler()
    r.feed(1, P.CONTROL_COMMAND | P.CONTROL_LAST, cmd)
    with pytest.raises(DIMSEError):
        r.feed(3, 0, b"other context")
    r = D.Reassembler()
    r.feed(1, P.CONTROL_COMMAND | P.CONTROL_LAST, cmd)
    with pytest.raises(DIMSEError):
        r.feed(1, P.CONTROL_COMMAND | P.CONTROL_LAST, cmd)
