"""DIMSE-N messages (PS3.7 §10): N-EVENT-REPORT, N-GET, N-SET, N-ACTION, N-CREATE and
N-DELETE command sets, their statuses (PS3.7 §10.1, Annex C) and their decoding.
Sans-IO, like :mod:`dicomfast.net.dimse`.

Requests name the object they act on with the *Requested* SOP Class/Instance UID
(N-GET, N-SET, N-ACTION, N-DELETE) or the *Affected* ones (N-CREATE,
N-EVENT-REPORT); every response names it with the Affected ones (PS3.7 §10.3). An
N-CREATE-RQ may leave the instance UID out, and then the SCP assigns one and must
return it in the N-CREATE-RSP (PS3.7 §10.1.5.1.3): :func:`create_rsp` refuses to
answer a successful N-CREATE without one.

    >>> rq = get_rq(1, "1.2.840.10008.5.1.1.16", "1.2.840.10008.5.1.1.17",
    ...             attributes=[0x21100010])
    >>> decode_request(decode_command(encode_command(rq))).attribute_identifiers
    [554696720]
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.errors import DicomfastError, DIMSEError
from dicomfast.net.dimse import (
    NO_DATA_SET,
    T_AFFECTED_SOP_CLASS,
    T_AFFECTED_SOP_INSTANCE,
    T_COMMAND_FIELD,
    T_DATA_SET_TYPE,
    T_ERROR_COMMENT,
    T_ERROR_ID,
    T_MESSAGE_ID,
    T_OFFENDING_ELEMENT,
    T_REQUESTED_SOP_CLASS,
    T_REQUESTED_SOP_INSTANCE,
    T_RESPONDED_TO,
    T_STATUS,
    decode_command,
    encode_command,
)
from dicomfast.part10 import read
from dicomfast.writer import encode_dataset

__all__ = [
    "N_EVENT_REPORT_RQ", "N_GET_RQ", "N_SET_RQ", "N_ACTION_RQ", "N_CREATE_RQ", "N_DELETE_RQ",
    "NRequest", "NResponse", "event_report_rq", "event_report_rsp", "get_rq", "get_rsp",
    "set_rq", "set_rsp", "action_rq", "action_rsp", "create_rq", "create_rsp", "delete_rq",
    "delete_rsp", "decode_request", "decode_response", "encode_data_set", "decode_data_set",
    "n_status_category", "status_name", "decode_command", "encode_command",
]

# Command Field values (PS3.7 Annex E, Table E.1-1).
N_EVENT_REPORT_RQ = 0x0100
N_EVENT_REPORT_RSP = 0x8100
N_GET_RQ = 0x0110
N_GET_RSP = 0x8110
N_SET_RQ = 0x0120
N_SET_RSP = 0x8120
N_ACTION_RQ = 0x0130
N_ACTION_RSP = 0x8130
N_CREATE_RQ = 0x0140
N_CREATE_RSP = 0x8140
N_DELETE_RQ = 0x0150
N_DELETE_RSP = 0x8150
N_REQUESTS = (N_EVENT_REPORT_RQ, N_GET_RQ, N_SET_RQ, N_ACTION_RQ, N_CREATE_RQ, N_DELETE_RQ)
NAMES = {N_EVENT_REPORT_RQ: "N-EVENT-REPORT", N_GET_RQ: "N-GET", N_SET_RQ: "N-SET",
         N_ACTION_RQ: "N-ACTION", N_CREATE_RQ: "N-CREATE", N_DELETE_RQ: "N-DELETE"}

# Command elements only the N services use (PS3.7 Annex E).
T_EVENT_TYPE_ID = 0x00001002          # US
T_ATTRIBUTE_IDENTIFIER_LIST = 0x00001005  # AT, VM 1-n
T_ACTION_TYPE_ID = 0x00001008         # US

_VR = {T_AFFECTED_SOP_CLASS: "UI", T_REQUESTED_SOP_CLASS: "UI", T_COMMAND_FIELD: "US",
       T_MESSAGE_ID: "US", T_RESPONDED_TO: "US", T_DATA_SET_TYPE: "US", T_STATUS: "US",
       T_OFFENDING_ELEMENT: "AT", T_ERROR_COMMENT: "LO", T_ERROR_ID: "US",
       T_AFFECTED_SOP_INSTANCE: "UI", T_REQUESTED_SOP_INSTANCE: "UI", T_EVENT_TYPE_ID: "US",
       T_ATTRIBUTE_IDENTIFIER_LIST: "AT", T_ACTION_TYPE_ID: "US"}

# -- statuses (PS3.7 §10.1 per service, their meaning in Annex C) ---------------------------
SUCCESS = 0x0000
# Warnings
ATTRIBUTE_LIST_ERROR = 0x0107            # C.4.2: some attributes were not set/returned
ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116    # C.4.3
OPTIONAL_ATTRIBUTES_NOT_SUPPORTED = 0x0001  # N-GET: requested optional attribute absent
# Failures
NO_SUCH_ATTRIBUTE = 0x0105
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
NO_SUCH_EVENT_TYPE = 0x0113
NO_SUCH_ARGUMENT = 0x0114
INVALID_ARGUMENT_VALUE = 0x0115
INVALID_OBJECT_INSTANCE = 0x0117
NO_SUCH_SOP_CLASS = 0x0118
CLASS_INSTANCE_CONFLICT = 0x0119
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
SOP_CLASS_NOT_SUPPORTED = 0x0122
NO_SUCH_ACTION = 0x0123
NOT_AUTHORIZED = 0x0124
DUPLICATE_INVOCATION = 0x0210
UNRECOGNIZED_OPERATION = 0x0211
MISTYPED_ARGUMENT = 0x0212
RESOURCE_LIMITATION = 0x0213

_NAMES = {
    SUCCESS: "Success", ATTRIBUTE_LIST_ERROR: "Attribute list error",
    ATTRIBUTE_VALUE_OUT_OF_RANGE: "Attribute value out of range",
    OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: "Requested optional attributes are not supported",
    NO_SUCH_ATTRIBUTE: "No such attribute", INVALID_ATTRIBUTE_VALUE: "Invalid attribute value",
    PROCESSING_FAILURE: "Processing failure", DUPLICATE_SOP_INSTANCE: "Duplicate SOP instance",
    NO_SUCH_SOP_INSTANCE: "No such SOP instance", NO_SUCH_EVENT_TYPE: "No such event type",
    NO_SUCH_ARGUMENT: "No such argument", INVALID_ARGUMENT_VALUE: "Invalid argument value",
    INVALID_OBJECT_INSTANCE: "Invalid object instance", NO_SUCH_SOP_CLASS: "No such SOP class",
    CLASS_INSTANCE_CONFLICT: "Class-instance conflict", MISSING_ATTRIBUTE: "Missing attribute",
    MISSING_ATTRIBUTE_VALUE: "Missing attribute value",
    SOP_CLASS_NOT_SUPPORTED: "SOP class not supported", NO_SUCH_ACTION: "No such action",
    NOT_AUTHORIZED: "Refused: not authorized", DUPLICATE_INVOCATION: "Duplicate invocation",
    UNRECOGNIZED_OPERATION: "Unrecognized operation", MISTYPED_ARGUMENT: "Mistyped argument",
    RESOURCE_LIMITATION: "Resource limitation",
}

# The statuses PS3.7 §10.1 allows for each service (Success is always allowed).
ALLOWED = {
    N_EVENT_REPORT_RQ: {CLASS_INSTANCE_CONFLICT, DUPLICATE_INVOCATION, INVALID_ARGUMENT_VALUE,
                        MISTYPED_ARGUMENT, NO_SUCH_ARGUMENT, NO_SUCH_EVENT_TYPE,
                        NO_SUCH_SOP_CLASS, NO_SUCH_SOP_INSTANCE, PROCESSING_FAILURE,
                        RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION},
    N_GET_RQ: {OPTIONAL_ATTRIBUTES_NOT_SUPPORTED, CLASS_INSTANCE_CONFLICT,
               DUPLICATE_INVOCATION, INVALID_OBJECT_INSTANCE, MISTYPED_ARGUMENT,
               NO_SUCH_ATTRIBUTE, NO_SUCH_SOP_CLASS, NO_SUCH_SOP_INSTANCE, PROCESSING_FAILURE,
               RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION, NOT_AUTHORIZED},
    N_SET_RQ: {ATTRIBUTE_LIST_ERROR, ATTRIBUTE_VALUE_OUT_OF_RANGE, CLASS_INSTANCE_CONFLICT,
               DUPLICATE_INVOCATION, INVALID_ATTRIBUTE_VALUE, INVALID_OBJECT_INSTANCE,
               MISSING_ATTRIBUTE_VALUE, MISTYPED_ARGUMENT, NO_SUCH_ATTRIBUTE,
               NO_SUCH_SOP_CLASS, NO_SUCH_SOP_INSTANCE, PROCESSING_FAILURE,
               RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION, NOT_AUTHORIZED},
    N_ACTION_RQ: {CLASS_INSTANCE_CONFLICT, DUPLICATE_INVOCATION, INVALID_ARGUMENT_VALUE,
                  INVALID_OBJECT_INSTANCE, MISTYPED_ARGUMENT, NO_SUCH_ACTION,
                  NO_SUCH_ARGUMENT, NO_SUCH_SOP_CLASS, NO_SUCH_SOP_INSTANCE,
                  PROCESSING_FAILURE, RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION,
                  NOT_AUTHORIZED},
    N_CREATE_RQ: {ATTRIBUTE_LIST_ERROR, ATTRIBUTE_VALUE_OUT_OF_RANGE, DUPLICATE_INVOCATION,
                  DUPLICATE_SOP_INSTANCE, INVALID_ATTRIBUTE_VALUE, INVALID_OBJECT_INSTANCE,
                  MISSING_ATTRIBUTE, MISSING_ATTRIBUTE_VALUE, MISTYPED_ARGUMENT,
                  NO_SUCH_ATTRIBUTE, NO_SUCH_SOP_CLASS, PROCESSING_FAILURE,
                  RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION, NOT_AUTHORIZED},
    N_DELETE_RQ: {CLASS_INSTANCE_CONFLICT, DUPLICATE_INVOCATION, INVALID_OBJECT_INSTANCE,
                  MISTYPED_ARGUMENT, NO_SUCH_SOP_CLASS, NO_SUCH_SOP_INSTANCE,
                  PROCESSING_FAILURE, RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION,
                  NOT_AUTHORIZED},
}


def n_status_category(status: int) -> str:
    """'Success', 'Warning' or 'Failure' for a DIMSE-N status (PS3.7 Annex C): the
    C.4 warnings (0x0001, 0x0107, 0x0116) and the service-specific 0xB000-0xBFFF
    range warn; everything else except Success fails (there is no Pending in N)."""
    if status == SUCCESS:
        return "Success"
    if status in (OPTIONAL_ATTRIBUTES_NOT_SUPPORTED, ATTRIBUTE_LIST_ERROR,
                  ATTRIBUTE_VALUE_OUT_OF_RANGE) or 0xB000 <= status <= 0xBFFF:
        return "Warning"
    return "Failure"


def status_name(status: int) -> str:
    return _NAMES.get(status, f"status 0x{status:04X}")


# -- command sets -------------------------------------------------------------------------

def _command(fields: dict[int, Any]) -> Dataset:
    ds = Dataset()
    for tag, value in fields.items():
        if value is None:
            continue
        if tag == T_ATTRIBUTE_IDENTIFIER_LIST:
            value = [int(v) for v in value]
            if not value:
                continue  # an empty list means "all attributes": leave it out
        ds.add_new(tag, _VR[tag], value)
    return ds


#: Command Data Set Type when a data set follows: PS3.7 §9.3.1 allows any value but
#: 0101H; 0001H is what DCMTK and pynetdicom send, so N messages match theirs byte
#: for byte.
N_DATA_SET_PRESENT = 0x0001


def _dst(present: bool) -> int:
    return N_DATA_SET_PRESENT if present else NO_DATA_SET


def _uid(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = str(value)
    if not value or len(value) > 64 or not all(c.isdigit() or c == "." for c in value):
        raise DIMSEError(f"{what} {value!r} is not a UID (PS3.5 §9.1)")
    return value


def event_report_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str,
                    event_type_id: int, has_data: bool = False) -> Dataset:
    """N-EVENT-REPORT-RQ (PS3.7 §10.3.1.1): Affected SOP Class/Instance, Event Type ID."""
    return _command({T_AFFECTED_SOP_CLASS: _uid(sop_class_uid, "Affected SOP Class UID"),
                     T_COMMAND_FIELD: N_EVENT_REPORT_RQ, T_MESSAGE_ID: message_id,
                     T_DATA_SET_TYPE: _dst(has_data),
                     T_AFFECTED_SOP_INSTANCE: _uid(sop_instance_uid,
                                                   "Affected SOP Instance UID"),
                     T_EVENT_TYPE_ID: event_type_id})


def get_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str,
           attributes: Iterable[int] | None = None) -> Dataset:
    """N-GET-RQ (PS3.7 §10.3.2.1); `attributes` is the Attribute Identifier List
    (none: all attributes). Never a data set."""
    return _command({T_REQUESTED_SOP_CLASS: _uid(sop_class_uid, "Requested SOP Class UID"),
                     T_COMMAND_FIELD: N_GET_RQ, T_MESSAGE_ID: message_id,
                     T_DATA_SET_TYPE: NO_DATA_SET,
                     T_REQUESTED_SOP_INSTANCE: _uid(sop_instance_uid,
                                                    "Requested SOP Instance UID"),
                     T_ATTRIBUTE_IDENTIFIER_LIST: attributes})


def set_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    """N-SET-RQ (PS3.7 §10.3.3.1): the Modification List data set is mandatory."""
    return _command({T_REQUESTED_SOP_CLASS: _uid(sop_class_uid, "Requested SOP Class UID"),
                     T_COMMAND_FIELD: N_SET_RQ, T_MESSAGE_ID: message_id,
                     T_DATA_SET_TYPE: N_DATA_SET_PRESENT,
                     T_REQUESTED_SOP_INSTANCE: _uid(sop_instance_uid,
                                                    "Requested SOP Instance UID")})


def action_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str,
              action_type_id: int, has_data: bool = False) -> Dataset:
    """N-ACTION-RQ (PS3.7 §10.3.4.1); the Action Information data set is optional."""
    return _command({T_REQUESTED_SOP_CLASS: _uid(sop_class_uid, "Requested SOP Class UID"),
                     T_COMMAND_FIELD: N_ACTION_RQ, T_MESSAGE_ID: message_id,
                     T_DATA_SET_TYPE: _dst(has_data),
                     T_REQUESTED_SOP_INSTANCE: _uid(sop_instance_uid,
                                                    "Requested SOP Instance UID"),
                     T_ACTION_TYPE_ID: action_type_id})


def create_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str | None = None,
              has_data: bool = True) -> Dataset:
    """N-CREATE-RQ (PS3.7 §10.3.5.1); without `sop_instance_uid` the SCP assigns one."""
    return _command({T_AFFECTED_SOP_CLASS: _uid(sop_class_uid, "Affected SOP Class UID"),
                     T_COMMAND_FIELD: N_CREATE_RQ, T_MESSAGE_ID: message_id,
                     T_DATA_SET_TYPE: _dst(has_data),
                     T_AFFECTED_SOP_INSTANCE: _uid(sop_instance_uid,
                                                   "Affected SOP Instance UID")})


def delete_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    """N-DELETE-RQ (PS3.7 §10.3.6.1). Never a data set."""
    return _command({T_REQUESTED_SOP_CLASS: _uid(sop_class_uid, "Requested SOP Class UID"),
                     T_COMMAND_FIELD: N_DELETE_RQ, T_MESSAGE_ID: message_id,
                     T_DATA_SET_TYPE: NO_DATA_SET,
                     T_REQUESTED_SOP_INSTANCE: _uid(sop_instance_uid,
                                                    "Requested SOP Instance UID")})


def _rsp(field_: int, responded_to: int, status: int, sop_class_uid: str | None,
         sop_instance_uid: str | None, has_data: bool, error_comment: str | None,
         offending: Iterable[int] | None, extra: dict[int, Any] | None = None) -> Dataset:
    fields: dict[int, Any] = {T_AFFECTED_SOP_CLASS: sop_class_uid, T_COMMAND_FIELD: field_,
                              T_RESPONDED_TO: responded_to, T_DATA_SET_TYPE: _dst(has_data),
                              T_STATUS: status, T_AFFECTED_SOP_INSTANCE: sop_instance_uid}
    if extra:
        fields.update(extra)
    ds = _command(fields)
    if error_comment:
        # LO: at most 64 characters, no backslash (PS3.5 Table 6.2-1).
        ds.add_new(T_ERROR_COMMENT, "LO", error_comment.replace("\\", "/")[:64])
    offending = [int(t) for t in offending or ()]
    if offending:
        ds.add_new(T_OFFENDING_ELEMENT, "AT", offending)
    return ds


def event_report_rsp(message_id: int, status: int, sop_class_uid: str | None,
                     sop_instance_uid: str | None, event_type_id: int | None = None,
                     has_data: bool = False, error_comment: str | None = None) -> Dataset:
    """N-EVENT-REPORT-RSP (PS3.7 §10.3.1.2); Event Type ID conditional on a Success."""
    return _rsp(N_EVENT_REPORT_RSP, message_id, status, sop_class_uid, sop_instance_uid,
                has_data, error_comment, None, {T_EVENT_TYPE_ID: event_type_id})


def get_rsp(message_id: int, status: int, sop_class_uid: str | None,
            sop_instance_uid: str | None, has_data: bool = False,
            error_comment: str | None = None,
            offending: Iterable[int] | None = None) -> Dataset:
    """N-GET-RSP (PS3.7 §10.3.2.2); the Attribute List on success or warning."""
    return _rsp(N_GET_RSP, message_id, status, sop_class_uid, sop_instance_uid, has_data,
                error_comment, offending)


def set_rsp(message_id: int, status: int, sop_class_uid: str | None,
            sop_instance_uid: str | None, has_data: bool = False,
            error_comment: str | None = None,
            offending: Iterable[int] | None = None) -> Dataset:
    """N-SET-RSP (PS3.7 §10.3.3.2)."""
    return _rsp(N_SET_RSP, message_id, status, sop_class_uid, sop_instance_uid, has_data,
                error_comment, offending)


def action_rsp(message_id: int, status: int, sop_class_uid: str | None,
               sop_instance_uid: str | None, action_type_id: int | None = None,
               has_data: bool = False, error_comment: str | None = None) -> Dataset:
    """N-ACTION-RSP (PS3.7 §10.3.4.2)."""
    return _rsp(N_ACTION_RSP, message_id, status, sop_class_uid, sop_instance_uid, has_data,
                error_comment, None, {T_ACTION_TYPE_ID: action_type_id})


def create_rsp(message_id: int, status: int, sop_class_uid: str | None,
               sop_instance_uid: str | None, has_data: bool = False,
               error_comment: str | None = None,
               offending: Iterable[int] | None = None) -> Dataset:
    """N-CREATE-RSP (PS3.7 §10.3.5.2). A successful response always names the instance:
    the SCP-assigned UID when the request had none (§10.1.5.1.3)."""
    if n_status_category(status) != "Failure" and not sop_instance_uid:
        raise DIMSEError("a successful N-CREATE-RSP must carry the Affected SOP Instance UID")
    return _rsp(N_CREATE_RSP, message_id, status, sop_class_uid, sop_instance_uid, has_data,
                error_comment, offending)


def delete_rsp(message_id: int, status: int, sop_class_uid: str | None,
               sop_instance_uid: str | None, error_comment: str | None = None) -> Dataset:
    """N-DELETE-RSP (PS3.7 §10.3.6.2). Never a data set."""
    return _rsp(N_DELETE_RSP, message_id, status, sop_class_uid, sop_instance_uid, False,
                error_comment, None)


_RSP_BUILDERS = {N_EVENT_REPORT_RQ: N_EVENT_REPORT_RSP, N_GET_RQ: N_GET_RSP,
                 N_SET_RQ: N_SET_RSP, N_ACTION_RQ: N_ACTION_RSP, N_CREATE_RQ: N_CREATE_RSP,
                 N_DELETE_RQ: N_DELETE_RSP}


def response_for(rq: NRequest, status: int, *, sop_instance_uid: str | None = None,
                 has_data: bool = False, error_comment: str | None = None,
                 offending: Iterable[int] | None = None,
                 error_id: int | None = None) -> Dataset:
    """The response to a decoded request: UIDs carried back (PS3.7 §10.3), the
    SCP-assigned instance UID for an N-CREATE, Event/Action Type ID echoed."""
    instance = sop_instance_uid or rq.sop_instance_uid
    field_ = _RSP_BUILDERS[rq.command_field]
    if field_ == N_CREATE_RSP and n_status_category(status) != "Failure" and not instance:
        raise DIMSEError("a successful N-CREATE-RSP must carry the Affected SOP Instance UID")
    if field_ in (N_GET_RSP, N_DELETE_RSP):
        offending = offending if field_ == N_GET_RSP else None
    extra: dict[int, Any] = {}
    if field_ == N_EVENT_REPORT_RSP:
        extra[T_EVENT_TYPE_ID] = rq.event_type_id
    elif field_ == N_ACTION_RSP:
        extra[T_ACTION_TYPE_ID] = rq.action_type_id
    if field_ == N_DELETE_RSP:
        has_data = False
    if error_id is not None:
        # (0000,0903) Error ID: a service-specific code (e.g. A710H for an MPPS that
        # can no longer be updated, PS3.4 F.7.2.2.2).
        extra[T_ERROR_ID] = error_id
    return _rsp(field_, rq.message_id, status, rq.sop_class_uid, instance, has_data,
                error_comment, offending, extra)


# -- decoding -------------------------------------------------------------------------------

def _text(cmd: Dataset, tag: int) -> str | None:
    el = cmd.get(tag)
    if el is None:
        return None
    try:
        value = el.value
    except (DicomfastError, ValueError):
        return None
    if value is None:
        return None
    return str(value).rstrip("\0 ") or None


def _int(cmd: Dataset, tag: int) -> int | None:
    el = cmd.get(tag)
    if el is None:
        return None
    try:
        value = el.value
    except (DicomfastError, ValueError):
        raise DIMSEError(f"undecodable command element ({tag >> 16:04X},{tag & 0xFFFF:04X})") \
            from None
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else int(value)


def _tags(cmd: Dataset, tag: int) -> list[int]:
    el = cmd.get(tag)
    if el is None:
        return []
    value = el.value
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        value = [value]
    return [int(v) for v in value]


@dataclass
class NRequest:
    """A decoded DIMSE-N request. ``sop_class_uid``/``sop_instance_uid`` are the
    Requested or Affected ones, whichever the service uses; ``dataset`` is the
    decoded data set (the Attribute List, Modification List, Action or Event
    Information), filled in by whoever received it."""
    command_field: int
    message_id: int
    sop_class_uid: str | None
    sop_instance_uid: str | None
    has_data: bool
    event_type_id: int | None = None
    action_type_id: int | None = None
    attribute_identifiers: list[int] = field(default_factory=list)
    command: Dataset | None = None
    dataset: Dataset | None = None

    @property
    def name(self) -> str:
        return NAMES.get(self.command_field, f"0x{self.command_field:04X}")


@dataclass
class NResponse:
    """A decoded DIMSE-N response (``dataset`` once the data set is decoded)."""
    command_field: int
    message_id_being_responded_to: int
    status: int
    sop_class_uid: str | None
    sop_instance_uid: str | None
    has_data: bool
    event_type_id: int | None = None
    action_type_id: int | None = None
    error_comment: str | None = None
    offending_elements: list[int] = field(default_factory=list)
    command: Dataset | None = None
    dataset: Dataset | None = None
    error_id: int | None = None

    @property
    def category(self) -> str:
        return n_status_category(self.status)

    @property
    def ok(self) -> bool:
        return self.category != "Failure"


def decode_request(cmd: Dataset) -> NRequest:
    """An N-*-RQ command set as an :class:`NRequest`; DIMSEError for anything else or
    for a request without the elements PS3.7 §10.3 makes mandatory."""
    field_ = _int(cmd, T_COMMAND_FIELD)
    if field_ not in N_REQUESTS:
        raise DIMSEError(f"command field 0x{field_ or 0:04X} is not a DIMSE-N request")
    msg_id = _int(cmd, T_MESSAGE_ID)
    if msg_id is None:
        raise DIMSEError(f"{NAMES[field_]}-RQ without (0000,0110) Message ID")
    affected = field_ in (N_EVENT_REPORT_RQ, N_CREATE_RQ)
    cls_tag = T_AFFECTED_SOP_CLASS if affected else T_REQUESTED_SOP_CLASS
    inst_tag = T_AFFECTED_SOP_INSTANCE if affected else T_REQUESTED_SOP_INSTANCE
    sop_class = _text(cmd, cls_tag)
    instance = _text(cmd, inst_tag)
    if sop_class is None:
        raise DIMSEError(f"{NAMES[field_]}-RQ without its SOP Class UID")
    if instance is None and field_ != N_CREATE_RQ:
        raise DIMSEError(f"{NAMES[field_]}-RQ without its SOP Instance UID")
    dst = _int(cmd, T_DATA_SET_TYPE)
    rq = NRequest(field_, msg_id, sop_class, instance,
                  dst is not None and dst != NO_DATA_SET, command=cmd)
    if field_ == N_EVENT_REPORT_RQ:
        rq.event_type_id = _int(cmd, T_EVENT_TYPE_ID)
        if rq.event_type_id is None:
            raise DIMSEError("N-EVENT-REPORT-RQ without (0000,1002) Event Type ID")
    elif field_ == N_ACTION_RQ:
        rq.action_type_id = _int(cmd, T_ACTION_TYPE_ID)
        if rq.action_type_id is None:
            raise DIMSEError("N-ACTION-RQ without (0000,1008) Action Type ID")
    elif field_ == N_GET_RQ:
        rq.attribute_identifiers = _tags(cmd, T_ATTRIBUTE_IDENTIFIER_LIST)
    return rq


def decode_response(cmd: Dataset) -> NResponse:
    """An N-*-RSP command set as an :class:`NResponse`."""
    field_ = _int(cmd, T_COMMAND_FIELD)
    if field_ is None or not field_ & 0x8000 or (field_ & 0x7FFF) not in N_REQUESTS:
        raise DIMSEError(f"command field 0x{field_ or 0:04X} is not a DIMSE-N response")
    status = _int(cmd, T_STATUS)
    if status is None:
        raise DIMSEError("DIMSE-N response without (0000,0900) Status")
    dst = _int(cmd, T_DATA_SET_TYPE)
    return NResponse(field_, _int(cmd, T_RESPONDED_TO) or 0, status,
                     _text(cmd, T_AFFECTED_SOP_CLASS), _text(cmd, T_AFFECTED_SOP_INSTANCE),
                     dst is not None and dst != NO_DATA_SET,
                     _int(cmd, T_EVENT_TYPE_ID), _int(cmd, T_ACTION_TYPE_ID),
                     _text(cmd, T_ERROR_COMMENT), _tags(cmd, T_OFFENDING_ELEMENT), cmd,
                     error_id=_int(cmd, T_ERROR_ID))


# -- data sets ---------------------------------------------------------------------------------

def encode_data_set(ds: Dataset, transfer_syntax: str) -> bytes:
    """A message's data set in the presentation context's transfer syntax."""
    return encode_dataset(ds, transfer_syntax)


def decode_data_set(raw: bytes, transfer_syntax: str) -> Dataset:
    """A received data set, read in the presentation context's transfer syntax (a
    File Meta group naming it is put in front, so nothing is guessed)."""
    uid = transfer_syntax.encode("ascii")
    if len(uid) & 1:
        uid += b"\0"
    ts_el = struct.pack("<HH2sH", 2, 0x10, b"UI", len(uid)) + uid
    head = b"\0" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(ts_el)) + ts_el
    try:
        ds = read(head + bytes(raw))
        ds.__dict__["file_meta"] = None
        return ds
    except DicomfastError:
        raise
    except (ValueError, KeyError) as exc:
        raise DIMSEError(f"undecodable DIMSE-N data set: {exc}") from None
