"""DIMSE-C query/retrieve messages: C-FIND, C-MOVE, C-GET and C-CANCEL command sets
(PS3.7 §9.3.2 to §9.3.4, §9.3.2.3) and their statuses (PS3.4 §C.4). Sans-IO."""

from __future__ import annotations

from typing import Any

from dicomfast.dataset import Dataset
from dicomfast.net import dimse as D

T_REMAINING = 0x00001020
T_COMPLETED = 0x00001021
T_FAILED = 0x00001022
T_WARNING = 0x00001023

_VR = {**D._VR, T_REMAINING: "US", T_COMPLETED: "US", T_FAILED: "US", T_WARNING: "US"}

# Information models (PS3.4 Table C.6-1, K.4-1 for the worklist).
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"

FIND_MODELS = {"patient": PATIENT_ROOT_FIND, "study": STUDY_ROOT_FIND,
               "mwl": MODALITY_WORKLIST_FIND}
MOVE_MODELS = {"patient": PATIENT_ROOT_MOVE, "study": STUDY_ROOT_MOVE}
GET_MODELS = {"patient": PATIENT_ROOT_GET, "study": STUDY_ROOT_GET}
MODEL_OF = {PATIENT_ROOT_FIND: "patient", PATIENT_ROOT_MOVE: "patient",
            PATIENT_ROOT_GET: "patient", STUDY_ROOT_FIND: "study", STUDY_ROOT_MOVE: "study",
            STUDY_ROOT_GET: "study", MODALITY_WORKLIST_FIND: "mwl"}

# Statuses (PS3.4 §C.4.1.1.4, §C.4.2.1.5, §C.4.3.1.4).
PENDING = 0xFF00
PENDING_WARNING = 0xFF01          # C-FIND: some optional keys not supported
CANCEL = 0xFE00
OUT_OF_RESOURCES_MATCHES = 0xA701   # C-MOVE/C-GET: unable to calculate number of matches
OUT_OF_RESOURCES_SUBOPS = 0xA702    # C-MOVE/C-GET: unable to perform sub-operations
FIND_OUT_OF_RESOURCES = 0xA700
MOVE_DESTINATION_UNKNOWN = 0xA801
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
SUBOPS_WITH_FAILURES = 0xB000     # one or more sub-operations failed or warned


def command(fields: dict[int, Any]) -> Dataset:
    ds = Dataset()
    for tag, value in fields.items():
        if value is not None:
            ds.add_new(tag, _VR[tag], value)
    return ds


def find_rq(message_id: int, sop_class: str, priority: int = D.PRIORITY_MEDIUM) -> Dataset:
    """C-FIND-RQ (PS3.7 §9.3.2.1); the identifier follows as the data set."""
    return command({D.T_AFFECTED_SOP_CLASS: sop_class, D.T_COMMAND_FIELD: D.C_FIND_RQ,
                    D.T_MESSAGE_ID: message_id, D.T_PRIORITY: priority,
                    D.T_DATA_SET_TYPE: D.DATA_SET_PRESENT})


def move_rq(message_id: int, sop_class: str, destination: str,
            priority: int = D.PRIORITY_MEDIUM) -> Dataset:
    """C-MOVE-RQ (PS3.7 §9.3.4.1)."""
    return command({D.T_AFFECTED_SOP_CLASS: sop_class, D.T_COMMAND_FIELD: D.C_MOVE_RQ,
                    D.T_MESSAGE_ID: message_id, D.T_PRIORITY: priority,
                    D.T_DATA_SET_TYPE: D.DATA_SET_PRESENT,
                    D.T_MOVE_DESTINATION: destination})


def get_rq(message_id: int, sop_class: str, priority: int = D.PRIORITY_MEDIUM) -> Dataset:
    """C-GET-RQ (PS3.7 §9.3.3.1)."""
    return command({D.T_AFFECTED_SOP_CLASS: sop_class, D.T_COMMAND_FIELD: D.C_GET_RQ,
                    D.T_MESSAGE_ID: message_id, D.T_PRIORITY: priority,
                    D.T_DATA_SET_TYPE: D.DATA_SET_PRESENT})


def cancel_rq(message_id_being_responded_to: int) -> Dataset:
    """C-CANCEL-RQ (PS3.7 §9.3.2.3): names the operation to cancel by its message ID."""
    return command({D.T_COMMAND_FIELD: D.C_CANCEL_RQ,
                    D.T_RESPONDED_TO: message_id_being_responded_to,
                    D.T_DATA_SET_TYPE: D.NO_DATA_SET})


def response(rq: Dataset, status: int, *, has_data: bool = False,
             counts: tuple[int, int, int, int] | None = None,
             error_comment: str | None = None, offending: int | None = None) -> Dataset:
    """C-FIND/C-MOVE/C-GET-RSP for `rq`: `counts` are the remaining, completed,
    failed and warning sub-operations (PS3.7 §9.3.3.2, §9.3.4.2)."""
    field = int(rq.CommandField) | 0x8000
    sop_class = rq.get(D.T_AFFECTED_SOP_CLASS)
    fields: dict[int, Any] = {
        D.T_AFFECTED_SOP_CLASS: sop_class.value if sop_class is not None else None,
        D.T_COMMAND_FIELD: field,
        D.T_RESPONDED_TO: rq.get(D.T_MESSAGE_ID).value if D.T_MESSAGE_ID in rq else 0,
        D.T_DATA_SET_TYPE: D.DATA_SET_PRESENT if has_data else D.NO_DATA_SET,
        D.T_STATUS: status}
    if counts is not None:
        remaining, completed, failed, warning = counts
        # Remaining is in pending responses and the Cancel one, not in the final
        # ones after all sub-operations ran (PS3.4 Table C.4-2, §C.4.2.3.1).
        if status in (PENDING, PENDING_WARNING, CANCEL):
            fields[T_REMAINING] = remaining
        fields[T_COMPLETED] = completed
        fields[T_FAILED] = failed
        fields[T_WARNING] = warning
    if error_comment:
        fields[D.T_ERROR_COMMENT] = error_comment.replace("\\", "/")[:64]
    if offending is not None:
        fields[D.T_OFFENDING_ELEMENT] = offending
    return command(fields)


def counts_of(cmd: Dataset) -> dict[str, int | None]:
    """The sub-operation counts of a C-MOVE/C-GET-RSP (None where absent)."""
    out: dict[str, int | None] = {}
    for name, tag in (("remaining", T_REMAINING), ("completed", T_COMPLETED),
                      ("failed", T_FAILED), ("warning", T_WARNING)):
        el = cmd.get(tag)
        out[name] = int(el.value) if el is not None and el.value is not None else None
    return out
