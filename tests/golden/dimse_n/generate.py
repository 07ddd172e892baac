"""Writes the DIMSE-N command set golden vectors with pynetdicom as the independent
encoder: ``python tests/golden/dimse_n/generate.py``. Each vector is a .bin (the
command set, implicit VR little endian, PS3.7 §6.3.1) and a .txt describing it.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pynetdicom import dimse_messages as DM
from pynetdicom import dimse_primitives as DP
from pynetdicom.dsutils import encode

HERE = Path(__file__).resolve().parent
COMMIT = "1.2.840.10008.1.20.1"
COMMIT_INSTANCE = "1.2.840.10008.1.20.1.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
INSTANCE = "1.2.826.0.1.3680043.9.7433.1.42"


def _data() -> io.BytesIO:
    ds = Dataset()
    ds.PatientName = "GOLDEN^N"
    return io.BytesIO(encode(ds, True, True))


def _prim(cls, **fields):
    p = cls()
    for k, v in fields.items():
        setattr(p, k, v)
    return p


CASES = {
    "n_event_report_rq": (DM.N_EVENT_REPORT_RQ, _prim(
        DP.N_EVENT_REPORT, MessageID=7, AffectedSOPClassUID=COMMIT,
        AffectedSOPInstanceUID=COMMIT_INSTANCE, EventTypeID=2, EventInformation=_data()),
        "N-EVENT-REPORT-RQ, Storage Commitment result with failures (event type 2)"),
    "n_event_report_rsp": (DM.N_EVENT_REPORT_RSP, _prim(
        DP.N_EVENT_REPORT, MessageIDBeingRespondedTo=7, AffectedSOPClassUID=COMMIT,
        AffectedSOPInstanceUID=COMMIT_INSTANCE, EventTypeID=2, Status=0),
        "N-EVENT-REPORT-RSP, Success, Event Type ID echoed"),
    "n_get_rq": (DM.N_GET_RQ, _prim(
        DP.N_GET, MessageID=5, RequestedSOPClassUID=PRINTER,
        RequestedSOPInstanceUID=PRINTER_INSTANCE,
        AttributeIdentifierList=[0x21100010, 0x21100020]),
        "N-GET-RQ of the Printer SOP Instance, Printer Status and Status Info"),
    "n_get_rsp": (DM.N_GET_RSP, _prim(
        DP.N_GET, MessageIDBeingRespondedTo=5, AffectedSOPClassUID=PRINTER,
        AffectedSOPInstanceUID=PRINTER_INSTANCE, Status=0, AttributeList=_data()),
        "N-GET-RSP, Success with an Attribute List"),
    "n_get_rsp_failure": (DM.N_GET_RSP, _prim(
        DP.N_GET, MessageIDBeingRespondedTo=6, AffectedSOPClassUID=PRINTER,
        AffectedSOPInstanceUID=INSTANCE, Status=0x0112, ErrorComment="no such printer"),
        "N-GET-RSP, Failure 0112H No such SOP instance, Error Comment"),
    "n_set_rq": (DM.N_SET_RQ, _prim(
        DP.N_SET, MessageID=9, RequestedSOPClassUID=MPPS, RequestedSOPInstanceUID=INSTANCE,
        ModificationList=_data()),
        "N-SET-RQ of an MPPS instance with a Modification List"),
    "n_set_rsp": (DM.N_SET_RSP, _prim(
        DP.N_SET, MessageIDBeingRespondedTo=9, AffectedSOPClassUID=MPPS,
        AffectedSOPInstanceUID=INSTANCE, Status=0x0110),
        "N-SET-RSP, Failure 0110H Processing failure"),
    "n_action_rq": (DM.N_ACTION_RQ, _prim(
        DP.N_ACTION, MessageID=11, RequestedSOPClassUID=COMMIT,
        RequestedSOPInstanceUID=COMMIT_INSTANCE, ActionTypeID=1,
        ActionInformation=_data()),
        "N-ACTION-RQ, Storage Commitment request (action type 1) with Action Information"),
    "n_action_rsp": (DM.N_ACTION_RSP, _prim(
        DP.N_ACTION, MessageIDBeingRespondedTo=11, AffectedSOPClassUID=COMMIT,
        AffectedSOPInstanceUID=COMMIT_INSTANCE, ActionTypeID=1, Status=0),
        "N-ACTION-RSP, Success, Action Type ID echoed"),
    "n_create_rq": (DM.N_CREATE_RQ, _prim(
        DP.N_CREATE, MessageID=13, AffectedSOPClassUID=MPPS, AffectedSOPInstanceUID=INSTANCE,
        AttributeList=_data()),
        "N-CREATE-RQ of an MPPS with the instance UID chosen by the SCU"),
    "n_create_rq_no_uid": (DM.N_CREATE_RQ, _prim(
        DP.N_CREATE, MessageID=14, AffectedSOPClassUID=FILM_SESSION,
        AttributeList=_data()),
        "N-CREATE-RQ of a Film Session without instance UID (the SCP assigns it)"),
    "n_create_rsp": (DM.N_CREATE_RSP, _prim(
        DP.N_CREATE, MessageIDBeingRespondedTo=14, AffectedSOPClassUID=FILM_SESSION,
        AffectedSOPInstanceUID=INSTANCE, Status=0),
        "N-CREATE-RSP, Success, carrying the SCP-assigned instance UID"),
    "n_delete_rq": (DM.N_DELETE_RQ, _prim(
        DP.N_DELETE, MessageID=15, RequestedSOPClassUID=FILM_SESSION,
        RequestedSOPInstanceUID=INSTANCE),
        "N-DELETE-RQ of a Film Session"),
    "n_delete_rsp": (DM.N_DELETE_RSP, _prim(
        DP.N_DELETE, MessageIDBeingRespondedTo=15, AffectedSOPClassUID=FILM_SESSION,
        AffectedSOPInstanceUID=INSTANCE, Status=0),
        "N-DELETE-RSP, Success"),
}


def describe(name: str, title: str, raw: bytes) -> str:
    lines = [f"# {name}.bin: {title} (PS3.7 §10.3); encoded by pynetdicom",
             "# offset  tag          length  keyword: value"]
    pos = 0
    while pos < len(raw):
        group, elem, length = struct.unpack_from("<HHI", raw, pos)
        value = raw[pos + 8:pos + 8 + length]
        tag = (group << 16) | elem
        if length in (2, 4) and tag not in (0x00000002, 0x00000003, 0x00001000, 0x00001001,
                                            0x00000902):
            if tag in (0x00001005, 0x00000901):
                shown = " ".join(f"({g:04X},{e:04X})" for g, e in
                                 struct.iter_unpack("<HH", value))
            else:
                shown = str(int.from_bytes(value, "little"))
                shown += f" (0x{int(shown):04X})"
        elif tag == 0x00001005:
            shown = " ".join(f"({g:04X},{e:04X})" for g, e in struct.iter_unpack("<HH", value))
        else:
            shown = repr(value.decode("ascii"))
        lines.append(f"{pos:08X}  ({group:04X},{elem:04X})  {length:6d}  "
                     f"{keyword_for_tag(tag)}: {shown}")
        pos += 8 + length
    lines.append(f"# {len(raw)} bytes")
    return "\n".join(lines) + "\n"


def main() -> None:
    for name, (msg_cls, prim, title) in CASES.items():
        msg = msg_cls()
        msg.primitive_to_message(prim)
        raw = encode(msg.command_set, True, True)
        (HERE / f"{name}.bin").write_bytes(raw)
        (HERE / f"{name}.txt").write_text(describe(name, title, raw))


if __name__ == "__main__":
    main()
