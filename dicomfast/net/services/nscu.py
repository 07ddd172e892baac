"""DIMSE-N service user side (PS3.7 §10.1): send N-GET, N-SET, N-ACTION, N-CREATE,
N-DELETE and N-EVENT-REPORT requests on an established association and wait for
their responses.

Each call returns an :class:`~dicomfast.net.dimse_n.NResponse` (status, Affected SOP
Instance UID, decoded data set); a Failure status is returned, not raised, since
for the N services it is often part of a normal exchange (an MPPS that is already
completed, an out-of-order print operation). Lost associations and DIMSE timeouts
raise :class:`~dicomfast.errors.AssociationError`.

Requests go on the presentation context whose abstract syntax is the SOP class, or
the one named by ``abstract_syntax`` (a Meta SOP Class, PS3.4 H.3: Film Session,
Film Box, Image Box and Printer all travel on the Basic Grayscale Print Management
Meta SOP Class context). N-EVENT-REPORT requests *to* a requestor (Storage
Commitment results, printer status) are served by a
:class:`~dicomfast.net.services.router.ServiceRouter` passed as the association's
``handler``.
"""

from __future__ import annotations

from collections.abc import Iterable

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DicomfastError, DIMSEError
from dicomfast.net import dimse_n as N
from dicomfast.net.association import Association

__all__ = ["pick_context", "n_request", "n_get", "n_set", "n_action", "n_create",
           "n_delete", "n_event_report"]


def pick_context(assoc: Association, sop_class_uid: str,
                 abstract_syntax: str | None = None) -> int:
    """The accepted presentation context for `sop_class_uid` (or `abstract_syntax`)."""
    wanted = [abstract_syntax] if abstract_syntax else [sop_class_uid]
    for uid in wanted:
        for ctx in assoc.contexts.values():
            if ctx.abstract_syntax == uid:
                return ctx.id
    raise AssociationError(f"no accepted presentation context for {wanted[0]}")


async def n_request(assoc: Association, cmd: Dataset, dataset: Dataset | None,
                    context_id: int) -> N.NResponse:
    """Send one DIMSE-N request and wait for its response."""
    ctx = assoc.contexts[context_id]
    data = None if dataset is None else N.encode_data_set(dataset, ctx.transfer_syntax)
    fut = await assoc.send_request(context_id, cmd, data)
    rsp_cmd, raw = await assoc.wait_response(fut)
    rsp = N.decode_response(rsp_cmd)
    expected = (cmd.CommandField | 0x8000)
    if rsp.command_field != expected:
        raise DIMSEError(f"{N.NAMES[cmd.CommandField]}-RQ answered with command field "
                         f"0x{rsp.command_field:04X}")
    if raw:
        try:
            rsp.dataset = N.decode_data_set(raw, ctx.transfer_syntax)
        except (DicomfastError, ValueError) as exc:
            raise DIMSEError(f"undecodable {N.NAMES[cmd.CommandField]}-RSP data set: "
                             f"{exc}") from None
    return rsp


async def n_get(assoc: Association, sop_class_uid: str, sop_instance_uid: str,
                attributes: Iterable[int] | None = None, *,
                abstract_syntax: str | None = None) -> N.NResponse:
    """N-GET (PS3.7 §10.1.2): the attributes listed (all when None)."""
    ctx = pick_context(assoc, sop_class_uid, abstract_syntax)
    cmd = N.get_rq(assoc.next_message_id(), sop_class_uid, sop_instance_uid, attributes)
    return await n_request(assoc, cmd, None, ctx)


async def n_set(assoc: Association, sop_class_uid: str, sop_instance_uid: str,
                modifications: Dataset, *, abstract_syntax: str | None = None
                ) -> N.NResponse:
    """N-SET (PS3.7 §10.1.3) with the Modification List `modifications`."""
    ctx = pick_context(assoc, sop_class_uid, abstract_syntax)
    cmd = N.set_rq(assoc.next_message_id(), sop_class_uid, sop_instance_uid)
    return await n_request(assoc, cmd, modifications, ctx)


async def n_action(assoc: Association, sop_class_uid: str, sop_instance_uid: str,
                   action_type_id: int, information: Dataset | None = None, *,
                   abstract_syntax: str | None = None) -> N.NResponse:
    """N-ACTION (PS3.7 §10.1.4)."""
    ctx = pick_context(assoc, sop_class_uid, abstract_syntax)
    cmd = N.action_rq(assoc.next_message_id(), sop_class_uid, sop_instance_uid,
                      action_type_id, information is not None)
    return await n_request(assoc, cmd, information, ctx)


async def n_create(assoc: Association, sop_class_uid: str, attributes: Dataset | None = None,
                   sop_instance_uid: str | None = None, *,
                   abstract_syntax: str | None = None) -> N.NResponse:
    """N-CREATE (PS3.7 §10.1.5); leave `sop_instance_uid` out for the SCP to assign one
    (returned as the response's ``sop_instance_uid``)."""
    ctx = pick_context(assoc, sop_class_uid, abstract_syntax)
    cmd = N.create_rq(assoc.next_message_id(), sop_class_uid, sop_instance_uid,
                      attributes is not None)
    rsp = await n_request(assoc, cmd, attributes, ctx)
    if rsp.sop_instance_uid is None and sop_instance_uid is not None:
        rsp.sop_instance_uid = sop_instance_uid
    if rsp.ok and rsp.sop_instance_uid is None:
        # PS3.7 §10.1.5.1.3: the SCP must name the instance it created.
        raise DIMSEError("N-CREATE-RSP without the SCP-assigned Affected SOP Instance UID")
    return rsp


async def n_delete(assoc: Association, sop_class_uid: str, sop_instance_uid: str, *,
                   abstract_syntax: str | None = None) -> N.NResponse:
    """N-DELETE (PS3.7 §10.1.6)."""
    ctx = pick_context(assoc, sop_class_uid, abstract_syntax)
    cmd = N.delete_rq(assoc.next_message_id(), sop_class_uid, sop_instance_uid)
    return await n_request(assoc, cmd, None, ctx)


async def n_event_report(assoc: Association, sop_class_uid: str, sop_instance_uid: str,
                         event_type_id: int, information: Dataset | None = None, *,
                         abstract_syntax: str | None = None) -> N.NResponse:
    """N-EVENT-REPORT (PS3.7 §10.1.1), sent by the performing side."""
    ctx = pick_context(assoc, sop_class_uid, abstract_syntax)
    cmd = N.event_report_rq(assoc.next_message_id(), sop_class_uid, sop_instance_uid,
                            event_type_id, information is not None)
    return await n_request(assoc, cmd, information, ctx)
