"""DIMSE messages (PS3.7 §6, §9): command sets, status categories, and the cutting of a
message into P-DATA-TF PDUs and its reassembly (PS3.8 Annex E). Sans-IO.

A command set is group 0000 encoded implicit VR little endian whatever the
presentation context's transfer syntax (PS3.7 §6.3.1); dicomfast's own reader and
writer encode and decode it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import DicomfastError, DIMSEError
from dicomfast.net.pdu import CONTROL_COMMAND, CONTROL_LAST, P_DATA_TF
from dicomfast.part10 import read
from dicomfast.writer import encode_dataset

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"

# Command Field values (PS3.7 Annex E).
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF
COMMAND_NAMES = {
    C_STORE_RQ: "C-STORE-RQ", C_STORE_RSP: "C-STORE-RSP", C_GET_RQ: "C-GET-RQ",
    C_GET_RSP: "C-GET-RSP", C_FIND_RQ: "C-FIND-RQ", C_FIND_RSP: "C-FIND-RSP",
    C_MOVE_RQ: "C-MOVE-RQ", C_MOVE_RSP: "C-MOVE-RSP", C_ECHO_RQ: "C-ECHO-RQ",
    C_ECHO_RSP: "C-ECHO-RSP", C_CANCEL_RQ: "C-CANCEL-RQ",
    0x0100: "N-EVENT-REPORT-RQ", 0x0110: "N-GET-RQ", 0x0120: "N-SET-RQ",
    0x0130: "N-ACTION-RQ", 0x0140: "N-CREATE-RQ", 0x0150: "N-DELETE-RQ",
}

#: Command Data Set Type: no data set follows (PS3.7 §9.3.1; any other value: one does).
NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0000

PRIORITY_MEDIUM = 0x0000

# Status codes (PS3.7 Annex C; PS3.4 Table B.2-1 for C-STORE).
SUCCESS = 0x0000
WARNING_COERCION = 0xB000
WARNING_ELEMENTS_DISCARDED = 0xB007
WARNING_DATA_SET_MISMATCH = 0xB006
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
PROCESSING_FAILURE = 0x0110
UNRECOGNIZED_OPERATION = 0x0211
CANCEL = 0xFE00
PENDING = 0xFF00

# Command elements (PS3.7 Annex E).
T_GROUP_LENGTH = 0x00000000
T_AFFECTED_SOP_CLASS = 0x00000002
T_REQUESTED_SOP_CLASS = 0x00000003
T_COMMAND_FIELD = 0x00000100
T_MESSAGE_ID = 0x00000110
T_RESPONDED_TO = 0x00000120
T_MOVE_DESTINATION = 0x00000600
T_PRIORITY = 0x00000700
T_DATA_SET_TYPE = 0x00000800
T_STATUS = 0x00000900
T_OFFENDING_ELEMENT = 0x00000901
T_ERROR_COMMENT = 0x00000902
T_ERROR_ID = 0x00000903
T_AFFECTED_SOP_INSTANCE = 0x00001000
T_REQUESTED_SOP_INSTANCE = 0x00001001
T_MOVE_ORIGINATOR_AE = 0x00001030
T_MOVE_ORIGINATOR_ID = 0x00001031

_VR = {T_AFFECTED_SOP_CLASS: "UI", T_REQUESTED_SOP_CLASS: "UI", T_COMMAND_FIELD: "US",
       T_MESSAGE_ID: "US", T_RESPONDED_TO: "US", T_MOVE_DESTINATION: "AE", T_PRIORITY: "US",
       T_DATA_SET_TYPE: "US", T_STATUS: "US", T_OFFENDING_ELEMENT: "AT", T_ERROR_COMMENT: "LO",
       T_ERROR_ID: "US", T_AFFECTED_SOP_INSTANCE: "UI", T_REQUESTED_SOP_INSTANCE: "UI",
       T_MOVE_ORIGINATOR_AE: "AE", T_MOVE_ORIGINATOR_ID: "US"}


def status_category(status: int) -> str:
    """'Success', 'Warning', 'Failure', 'Cancel' or 'Pending' (PS3.7 Annex C)."""
    if status == SUCCESS:
        return "Success"
    if status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF:
        return "Warning"
    if status == CANCEL:
        return "Cancel"
    if status in (0xFF00, 0xFF01):
        return "Pending"
    return "Failure"


# -- command sets -------------------------------------------------------------------------

def command(fields: dict[int, Any]) -> Dataset:
    """A command set from {tag: value}; VRs from PS3.7 Annex E."""
    ds = Dataset()
    for tag, value in fields.items():
        if value is not None:
            ds.add_new(tag, _VR[tag], value)
    return ds


def encode_command(ds: Dataset) -> bytes:
    """Implicit VR LE with its Command Group Length first (PS3.7 §6.3.1, §9.3)."""
    if T_GROUP_LENGTH in ds:
        del ds[T_GROUP_LENGTH]
    body = encode_dataset(ds, IMPLICIT_VR_LITTLE_ENDIAN)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def decode_command(raw: Any) -> Dataset:
    """A received command set; DIMSEError when it is not one."""
    raw = bytes(raw)
    # Walk the element headers first (implicit VR LE: tag, 32-bit length), so a cut or
    # undefined-length element is refused here rather than read leniently.
    pos, n = 0, len(raw)
    while pos < n:
        if n - pos < 8:
            raise DIMSEError(f"command set ends inside an element header at offset {pos}")
        group, length = struct.unpack_from("<H2xI", raw, pos)
        if group != 0 or length > n - pos - 8:
            raise DIMSEError(f"command set element at offset {pos} is not group 0000 or "
                             f"runs past the end")
        pos += 8 + length
    try:
        ds = read(raw, force=True)
        if T_COMMAND_FIELD not in ds:
            raise DIMSEError("command set without (0000,0100) Command Field")
        ds.CommandField  # noqa: B018 - decode now, so a bad value fails here
        return ds
    except DIMSEError:
        raise
    except (DicomfastError, ValueError, KeyError) as exc:
        raise DIMSEError(f"undecodable command set: {exc}") from None


def has_data_set(cmd: Dataset) -> bool:
    value = cmd.get(T_DATA_SET_TYPE)
    return value is not None and value.value != NO_DATA_SET


def echo_rq(message_id: int) -> Dataset:
    """C-ECHO-RQ (PS3.7 §9.3.5.1)."""
    return command({T_AFFECTED_SOP_CLASS: "1.2.840.10008.1.1", T_COMMAND_FIELD: C_ECHO_RQ,
                    T_MESSAGE_ID: message_id, T_DATA_SET_TYPE: NO_DATA_SET})


def echo_rsp(rq: Dataset, status: int = SUCCESS) -> Dataset:
    """C-ECHO-RSP (PS3.7 §9.3.5.2)."""
    return command({T_AFFECTED_SOP_CLASS: rq.get(T_AFFECTED_SOP_CLASS).value
                    if T_AFFECTED_SOP_CLASS in rq else "1.2.840.10008.1.1",
                    T_COMMAND_FIELD: C_ECHO_RSP, T_RESPONDED_TO: rq.MessageID,
                    T_DATA_SET_TYPE: NO_DATA_SET, T_STATUS: status})


def store_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str,
             priority: int = PRIORITY_MEDIUM, move_originator_ae: str | None = None,
             move_originator_id: int | None = None) -> Dataset:
    """C-STORE-RQ (PS3.7 §9.3.1.1)."""
    return command({T_AFFECTED_SOP_CLASS: sop_class_uid, T_COMMAND_FIELD: C_STORE_RQ,
                    T_MESSAGE_ID: message_id, T_PRIORITY: priority,
                    T_DATA_SET_TYPE: DATA_SET_PRESENT,
                    T_AFFECTED_SOP_INSTANCE: sop_instance_uid,
                    T_MOVE_ORIGINATOR_AE: move_originator_ae,
                    T_MOVE_ORIGINATOR_ID: move_originator_id})


def store_rsp(rq: Dataset, status: int, error_comment: str | None = None,
              offending_element: int | None = None) -> Dataset:
    """C-STORE-RSP (PS3.7 §9.3.1.2): the UIDs are carried back from the request."""
    fields = {T_AFFECTED_SOP_CLASS: _value(rq, T_AFFECTED_SOP_CLASS),
              T_COMMAND_FIELD: C_STORE_RSP, T_RESPONDED_TO: _value(rq, T_MESSAGE_ID) or 0,
              T_DATA_SET_TYPE: NO_DATA_SET, T_STATUS: status,
              T_AFFECTED_SOP_INSTANCE: _value(rq, T_AFFECTED_SOP_INSTANCE)}
    if error_comment:
        # LO: at most 64 characters, no backslash (PS3.5 Table 6.2-1).
        fields[T_ERROR_COMMENT] = error_comment.replace("\\", "/")[:64]
    if offending_element is not None:
        fields[T_OFFENDING_ELEMENT] = offending_element
    return command(fields)


def _value(ds: Dataset, tag: int) -> Any:
    el = ds.get(tag)
    if el is None:
        return None
    value = el.value
    # A UID that does not decode cleanly is sent back as received, never raised on here.
    return str(value) if isinstance(value, str) else value


# -- fragmentation (PS3.8 Annex E; PS3.7 §8.1) ---------------------------------------------

_PDV_HEAD = struct.Struct(">IBB")
_PDU_HEAD = struct.Struct(">BBI")


def max_pdv_value(peer_max_length: int, our_cap: int) -> int:
    """Bytes of message data per PDV so that a one-PDV P-DATA-TF PDU fits the peer's
    Maximum Length (which counts the PDV item header, PS3.8 §D.1); 0 means no limit,
    and then `our_cap` bounds the PDUs we build."""
    limit = peer_max_length if peer_max_length else our_cap
    return max(limit - 6, 1)


def message_pdus(context_id: int, command_bytes: bytes, data: Any,
                 max_value: int) -> Iterator[bytes]:
    """The P-DATA-TF PDUs of one message: the command fragments, then the data set
    fragments. Each PDU is complete bytes, meant for one write. The last command
    fragment shares its PDU with the first data fragment when both fit, saving a write
    per message on small objects."""
    pending_cmd: bytes | None = None
    n = len(command_bytes)
    for start in range(0, n, max_value):
        chunk = command_bytes[start:start + max_value]
        control = CONTROL_COMMAND | (CONTROL_LAST if start + max_value >= n else 0)
        pdv = _PDV_HEAD.pack(len(chunk) + 2, context_id, control) + chunk
        if control & CONTROL_LAST and data is not None and len(data):
            pending_cmd = pdv
        else:
            yield _PDU_HEAD.pack(P_DATA_TF, 0, len(pdv)) + pdv
    if data is None:
        return
    view = memoryview(data).cast("B")
    total = len(view)
    start = 0
    if total == 0:
        yield _PDU_HEAD.pack(P_DATA_TF, 0, 6) + _PDV_HEAD.pack(2, context_id, CONTROL_LAST)
        return
    if pending_cmd is not None:
        # A second PDV in the same PDU: both items count against the peer's limit.
        room = max_value - len(pending_cmd)
        if room >= 4096 or room >= total:
            take = min(room, total)
            control = CONTROL_LAST if take == total else 0
            yield b"".join((_PDU_HEAD.pack(P_DATA_TF, 0, len(pending_cmd) + take + 6),
                            pending_cmd, _PDV_HEAD.pack(take + 2, context_id, control),
                            view[:take]))
            start = take
        else:
            yield _PDU_HEAD.pack(P_DATA_TF, 0, len(pending_cmd)) + pending_cmd
    while start < total:
        take = min(max_value, total - start)
        control = CONTROL_LAST if start + take == total else 0
        yield b"".join((_PDU_HEAD.pack(P_DATA_TF, 0, take + 6),
                        _PDV_HEAD.pack(take + 2, context_id, control), view[start:start + take]))
        start += take


def data_pdu_heads(context_id: int, total: int,
                   max_value: int) -> Iterator[tuple[bytes, int, int]]:
    """For message data sent from elsewhere than a buffer (a file): (header, start,
    length) of each P-DATA-TF PDU, one PDV each, that carries data bytes
    [start, start + length); the header is the PDU header and the PDV item header."""
    start = 0
    while True:
        take = min(max_value, total - start)
        control = CONTROL_LAST if start + take == total else 0
        yield (_PDU_HEAD.pack(P_DATA_TF, 0, take + 6) +
               _PDV_HEAD.pack(take + 2, context_id, control), start, take)
        start += take
        if start >= total:
            return


# Largest command set the Reassembler buffers; docs/limits.md lists it.
MAX_COMMAND_SET = 1 << 20


class Reassembler:
    """Puts the PDVs of received P-DATA-TF PDUs back into messages (PS3.8 Annex E).

    :meth:`feed` returns what became known: ``("command", context_id, Dataset,
    has_data)`` when a command set is complete, ``("data", context_id, view, last)``
    for each data set fragment. Fragments are passed on as they come, so a data set
    never has to be held in memory whole. Breaches of the rules (a data fragment
    before its command, a context change inside a message, a second command before
    the data set) raise DIMSEError: the caller aborts the association.
    """

    __slots__ = ("_cmd_parts", "_cmd_len", "_context", "_expect_data")

    def __init__(self) -> None:
        self._cmd_parts: list[bytes] = []
        self._cmd_len = 0
        self._context: int | None = None
        self._expect_data = False

    @property
    def idle(self) -> bool:
        """Between messages."""
        return self._context is None

    def feed(self, context_id: int, control: int, data: Any) -> list[tuple]:
        out: list[tuple] = []
        if self._context is not None and context_id != self._context:
            raise DIMSEError(f"PDV for presentation context {context_id} inside a message on "
                             f"context {self._context} (PS3.7 §8.1: no interleaving)")
        if control & CONTROL_COMMAND:
            if self._expect_data:
                raise DIMSEError("command fragment where a data set fragment was expected")
            self._context = context_id
            self._cmd_parts.append(bytes(data))
            self._cmd_len += len(self._cmd_parts[-1])
            # A command set is a few hundred bytes (PS3.7 §9.3, §10.3); a peer that
            # never sets the last-fragment bit must not make us buffer without end.
            if self._cmd_len > MAX_COMMAND_SET:
                raise DIMSEError(f"command set longer than {MAX_COMMAND_SET} bytes "
                                 f"(dimse.MAX_COMMAND_SET)")
            if control & CONTROL_LAST:
                raw = b"".join(self._cmd_parts)
                self._cmd_parts = []
                self._cmd_len = 0
                cmd = decode_command(raw)
                expects = has_data_set(cmd)
                out.append(("command", context_id, cmd, expects))
                if expects:
                    self._expect_data = True
                else:
                    self._context = None
            return out
        if not self._expect_data:
            raise DIMSEError("data set fragment without a preceding command "
                             "(PS3.8 Annex E)")
        last = bool(control & CONTROL_LAST)
        out.append(("data", context_id, data, last))
        if last:
            self._expect_data = False
            self._context = None
        return out
