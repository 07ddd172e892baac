"""Upper layer PDUs: the seven PDU types of PS3.8 §9.3 and the items of Annex D /
PS3.7 Annex D.3.3, as plain objects, with encoding and decoding. Sans-IO.

Decoding is done in two steps: the C core (``_native._pdu``) checks the structure of
a whole PDU and indexes its items, with every length already bounds-checked; this
module then reads field values at the indexed offsets. :class:`Framer` cuts a
received byte stream into whole PDUs and refuses one longer than we advertised
before buffering its body.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dicomfast._native import _pdu
from dicomfast.errors import MalformedDataError, PDUError

# PDU types (PS3.8 §9.3.1).
ASSOCIATE_RQ = 0x01
ASSOCIATE_AC = 0x02
ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
RELEASE_RQ = 0x05
RELEASE_RP = 0x06
ABORT = 0x07
PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
             5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT"}

# Item types (PS3.8 §9.3.2-9.3.3, Annex D; PS3.7 Annex D.3.3).
_APP_CONTEXT = 0x10
_PC_RQ = 0x20
_PC_AC = 0x21
_ABSTRACT = 0x30
_TRANSFER = 0x40
_USER = 0x50
_MAX_LENGTH = 0x51
_IMPL_UID = 0x52
_ASYNC = 0x53
_ROLE = 0x54
_IMPL_VERSION = 0x55
_EXT_NEG = 0x56
_COMMON_EXT_NEG = 0x57
_USER_ID_RQ = 0x58
_USER_ID_AC = 0x59
_PDV = 0xFF

#: The DICOM application context name (PS3.7 Annex A.2.1).
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
#: Default bound for a non-P-DATA PDU: far above any real A-ASSOCIATE-RQ (128
#: presentation contexts with many transfer syntaxes and a Kerberos ticket).
DEFAULT_MAX_OTHER_LEN = 1 << 20

# A-ASSOCIATE-RJ result / source / reason (PS3.8 Table 9-21).
RJ_PERMANENT = 1
RJ_TRANSIENT = 2
RJ_SOURCE_USER = 1
RJ_SOURCE_ACSE = 2
RJ_SOURCE_PRESENTATION = 3
RJ_NO_REASON = 1
RJ_APP_CONTEXT_NOT_SUPPORTED = 2
RJ_CALLING_AE_NOT_RECOGNIZED = 3
RJ_CALLED_AE_NOT_RECOGNIZED = 7
RJ_PROTOCOL_VERSION_NOT_SUPPORTED = 2   # source ACSE
RJ_TEMPORARY_CONGESTION = 1             # source presentation
RJ_LOCAL_LIMIT_EXCEEDED = 2             # source presentation

# A-ABORT source / reason (PS3.8 Table 9-26).
ABORT_SOURCE_USER = 0
ABORT_SOURCE_PROVIDER = 2
ABORT_NOT_SPECIFIED = 0
ABORT_UNRECOGNIZED_PDU = 1
ABORT_UNEXPECTED_PDU = 2
ABORT_UNRECOGNIZED_PARAMETER = 4
ABORT_UNEXPECTED_PARAMETER = 5
ABORT_INVALID_PARAMETER = 6

# Presentation context result/reason (PS3.8 Table 9-18).
PC_ACCEPTANCE = 0
PC_USER_REJECTION = 1
PC_NO_REASON = 2
PC_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
PC_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

# Message control header bits (PS3.8 Annex E.2).
CONTROL_COMMAND = 0x01
CONTROL_LAST = 0x02


class PDUDecodeError(PDUError):
    """A received PDU breaks PS3.8 §9.3; ``reason`` is the A-ABORT reason to send
    (PS3.8 Table 9-26) and ``offset`` where in the PDU the problem was found."""

    def __init__(self, message: str, *, reason: int = ABORT_INVALID_PARAMETER,
                 offset: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.offset = offset


# -- items --------------------------------------------------------------------------------

@dataclass
class PresentationContext:
    """A presentation context item as proposed (PS3.8 §9.3.2.2)."""
    id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@dataclass
class PresentationContextResult:
    """A presentation context item as answered (PS3.8 §9.3.3.2). ``transfer_syntax``
    is not significant unless ``result`` is 0 (acceptance); '' when none was sent."""
    id: int
    result: int
    transfer_syntax: str = ""


@dataclass
class RoleSelection:
    """SCP/SCU role selection (PS3.7 §D.3.3.4)."""
    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass
class SOPClassExtended:
    """SOP class extended negotiation (PS3.7 §D.3.3.5); ``info`` is the service class
    application information, opaque here."""
    sop_class_uid: str
    info: bytes


@dataclass
class SOPClassCommonExtended:
    """SOP class common extended negotiation (PS3.7 §D.3.3.6)."""
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: list[str] = field(default_factory=list)


@dataclass
class UserIdentityRQ:
    """User identity negotiation, request (PS3.7 §D.3.3.7.1). ``type``: 1 username,
    2 username and passcode, 3 Kerberos, 4 SAML, 5 JSON web token."""
    type: int
    primary: bytes
    secondary: bytes = b""
    positive_response_requested: bool = False


@dataclass
class UserIdentityAC:
    """User identity negotiation, acceptance (PS3.7 §D.3.3.7.2)."""
    server_response: bytes = b""


@dataclass
class UserInformation:
    """The user information item (PS3.8 Annex D.1, PS3.7 Annex D.3.3).

    ``max_length`` 0 means no limit; None means the sub-item is absent (which PS3.8
    does not allow, but some peers do). ``async_ops`` is (maximum operations
    invoked, maximum operations performed) or None (both 1, PS3.7 §D.3.3.3).
    ``unknown`` keeps sub-items of types this version does not know, as received.
    """
    max_length: int | None = 0
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    async_ops: tuple[int, int] | None = None
    roles: list[RoleSelection] = field(default_factory=list)
    extended: list[SOPClassExtended] = field(default_factory=list)
    common_extended: list[SOPClassCommonExtended] = field(default_factory=list)
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None
    unknown: list[tuple[int, bytes]] = field(default_factory=list)


# -- PDUs ---------------------------------------------------------------------------------

@dataclass
class AssociateRQ:
    """A-ASSOCIATE-RQ (PS3.8 §9.3.2)."""
    called_ae: str
    calling_ae: str
    contexts: list[PresentationContext]
    user: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1
    type = ASSOCIATE_RQ


@dataclass
class AssociateAC:
    """A-ASSOCIATE-AC (PS3.8 §9.3.3). The AE titles are reserved fields that carry back
    the values of the request (not tested on receipt)."""
    called_ae: str
    calling_ae: str
    contexts: list[PresentationContextResult]
    user: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1
    type = ASSOCIATE_AC


@dataclass
class AssociateRJ:
    """A-ASSOCIATE-RJ (PS3.8 §9.3.4)."""
    result: int
    source: int
    reason: int
    type = ASSOCIATE_RJ


@dataclass
class PDV:
    """One presentation data value item (PS3.8 §9.3.5.1, Annex E)."""
    context_id: int
    control: int
    data: Any  # bytes or a memoryview into the received PDU

    @property
    def is_command(self) -> bool:
        return bool(self.control & CONTROL_COMMAND)

    @property
    def is_last(self) -> bool:
        return bool(self.control & CONTROL_LAST)


@dataclass
class PDataTF:
    """P-DATA-TF (PS3.8 §9.3.5)."""
    pdvs: list[PDV]
    type = P_DATA_TF


@dataclass
class ReleaseRQ:
    """A-RELEASE-RQ (PS3.8 §9.3.6)."""
    type = RELEASE_RQ


@dataclass
class ReleaseRP:
    """A-RELEASE-RP (PS3.8 §9.3.7)."""
    type = RELEASE_RP


@dataclass
class Abort:
    """A-ABORT (PS3.8 §9.3.8)."""
    source: int = ABORT_SOURCE_USER
    reason: int = ABORT_NOT_SPECIFIED
    type = ABORT


PDU = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort


# -- encoding -----------------------------------------------------------------------------

def check_ae_title(title: str) -> str:
    """An AE title as PS3.5 Table 6.2-1 allows it: 1-16 characters of the default
    repertoire, no backslash or control characters, not all spaces."""
    if not isinstance(title, str):
        raise TypeError("an AE title is a str")
    stripped = title.strip(" ")
    if not stripped or len(title) > 16 or any(
            ord(c) < 0x20 or ord(c) > 0x7E or c == "\\" for c in title):
        raise ValueError(f"not a valid AE title: {title!r}")
    return stripped


def _ae(title: str) -> bytes:
    return check_ae_title(title).encode("ascii").ljust(16, b" ")


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"item 0x{item_type:02X} value of {len(value)} bytes (at most 65535)")
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _uid(uid: str) -> bytes:
    return uid.encode("ascii")


def _uid16(uid: str) -> bytes:
    raw = _uid(uid)
    return struct.pack(">H", len(raw)) + raw


def _user_info(user: UserInformation) -> bytes:
    subs = []
    if user.max_length is not None:
        subs.append(_item(_MAX_LENGTH, struct.pack(">I", user.max_length)))
    if user.implementation_class_uid:
        subs.append(_item(_IMPL_UID, _uid(user.implementation_class_uid)))
    if user.async_ops is not None:
        subs.append(_item(_ASYNC, struct.pack(">HH", *user.async_ops)))
    for role in user.roles:
        subs.append(_item(_ROLE, _uid16(role.sop_class_uid)
                          + bytes((int(role.scu_role), int(role.scp_role)))))
    if user.implementation_version_name:
        subs.append(_item(_IMPL_VERSION, user.implementation_version_name.encode("ascii")))
    for ext in user.extended:
        subs.append(_item(_EXT_NEG, _uid16(ext.sop_class_uid) + bytes(ext.info)))
    for com in user.common_extended:
        related = b"".join(_uid16(u) for u in com.related_general_sop_classes)
        subs.append(_item(_COMMON_EXT_NEG, _uid16(com.sop_class_uid)
                          + _uid16(com.service_class_uid)
                          + struct.pack(">H", len(related)) + related))
    if user.user_identity_rq is not None:
        uid_rq = user.user_identity_rq
        subs.append(_item(_USER_ID_RQ, struct.pack(
            ">BBH", uid_rq.type, int(uid_rq.positive_response_requested), len(uid_rq.primary))
            + uid_rq.primary + struct.pack(">H", len(uid_rq.secondary)) + uid_rq.secondary))
    if user.user_identity_ac is not None:
        resp = user.user_identity_ac.server_response
        subs.append(_item(_USER_ID_AC, struct.pack(">H", len(resp)) + resp))
    for item_type, value in user.unknown:
        subs.append(_item(item_type, value))
    return _item(_USER, b"".join(subs))


def _associate(pdu: AssociateRQ | AssociateAC) -> bytes:
    items = [_item(_APP_CONTEXT, _uid(pdu.application_context))]
    if isinstance(pdu, AssociateRQ):
        for pc in pdu.contexts:
            subs = _item(_ABSTRACT, _uid(pc.abstract_syntax)) + b"".join(
                _item(_TRANSFER, _uid(ts)) for ts in pc.transfer_syntaxes)
            items.append(_item(_PC_RQ, bytes((pc.id, 0, 0, 0)) + subs))
    else:
        for res in pdu.contexts:
            # PS3.8 §9.3.3.2: one transfer syntax sub-item, "not significant" unless the
            # context was accepted; sending it always keeps strict receivers happy.
            items.append(_item(_PC_AC, bytes((res.id, 0, res.result, 0))
                               + _item(_TRANSFER, _uid(res.transfer_syntax))))
    items.append(_user_info(pdu.user))
    body = (struct.pack(">HH", pdu.protocol_version, 0) + _ae(pdu.called_ae)
            + _ae(pdu.calling_ae) + bytes(32) + b"".join(items))
    return struct.pack(">BBI", pdu.type, 0, len(body)) + body


def encode(pdu: PDU) -> bytes:
    """The bytes of one PDU, header included."""
    t = pdu.type
    if t in (ASSOCIATE_RQ, ASSOCIATE_AC):
        return _associate(pdu)  # type: ignore[arg-type]
    if t == P_DATA_TF:
        parts = []
        for pdv in pdu.pdvs:  # type: ignore[union-attr]
            parts.append(struct.pack(">IBB", len(pdv.data) + 2, pdv.context_id, pdv.control))
            parts.append(pdv.data)
        body = b"".join(parts)
        return struct.pack(">BBI", t, 0, len(body)) + body
    if t == ASSOCIATE_RJ:
        return struct.pack(">BBIBBBB", t, 0, 4, 0, pdu.result, pdu.source, pdu.reason)  # type: ignore[union-attr]
    if t == ABORT:
        return struct.pack(">BBIBBBB", t, 0, 4, 0, 0, pdu.source, pdu.reason)  # type: ignore[union-attr]
    return struct.pack(">BBII", t, 0, 4, 0)


_PDATA_HEADER = struct.Struct(">BBIIBB")


def encode_pdata(context_id: int, control: int, data: Any) -> bytes:
    """One P-DATA-TF PDU holding one PDV: the bytes to write in one call (the hot path
    of sending a data set, so no intermediate objects)."""
    n = len(data)
    return _PDATA_HEADER.pack(P_DATA_TF, 0, n + 6, n + 2, context_id, control) + data


RELEASE_RQ_BYTES = encode(ReleaseRQ())
RELEASE_RP_BYTES = encode(ReleaseRP())


# -- decoding -----------------------------------------------------------------------------

def _text(raw: Any) -> str:
    # PS3.8 Annex F: UIDs are not padded, but a trailing NUL or space is seen in the wild.
    return bytes(raw).decode("ascii", "replace").rstrip("\0 ")


def _ae_field(raw: bytes) -> str:
    # PS3.8 §9.3.2: leading and trailing spaces of an AE title are not significant.
    return raw.decode("ascii", "replace").strip(" \0")


def _uid16_at(data: bytes, pos: int) -> tuple[str, int]:
    n = (data[pos] << 8) | data[pos + 1]
    return _text(data[pos + 2:pos + 2 + n]), pos + 2 + n


def _decode_user(data: bytes, entries: list, parent: int) -> UserInformation:
    user = UserInformation(max_length=None)
    for t, par, off, length, _pc, _ctl, _res in entries:
        if par != parent:
            continue
        v = data[off:off + length]
        if t == _MAX_LENGTH:
            user.max_length = struct.unpack(">I", v)[0]
        elif t == _IMPL_UID:
            user.implementation_class_uid = _text(v)
        elif t == _IMPL_VERSION:
            user.implementation_version_name = _text(v)
        elif t == _ASYNC:
            user.async_ops = struct.unpack(">HH", v)
        elif t == _ROLE:
            uid, pos = _uid16_at(v, 0)
            user.roles.append(RoleSelection(uid, bool(v[pos]), bool(v[pos + 1])))
        elif t == _EXT_NEG:
            uid, pos = _uid16_at(v, 0)
            user.extended.append(SOPClassExtended(uid, bytes(v[pos:])))
        elif t == _COMMON_EXT_NEG:
            sop, pos = _uid16_at(v, 0)
            service, pos = _uid16_at(v, pos)
            pos += 2  # the related list's total length, checked by the C parser
            related = []
            while pos < len(v):
                uid, pos = _uid16_at(v, pos)
                related.append(uid)
            user.common_extended.append(SOPClassCommonExtended(sop, service, related))
        elif t == _USER_ID_RQ:
            n = (v[2] << 8) | v[3]
            primary = bytes(v[4:4 + n])
            secondary = bytes(v[6 + n:])
            user.user_identity_rq = UserIdentityRQ(v[0], primary, secondary, bool(v[1]))
        elif t == _USER_ID_AC:
            user.user_identity_ac = UserIdentityAC(bytes(v[2:]))
        else:
            user.unknown.append((t, bytes(v)))
    return user


def _decode_associate(data: bytes, entries: list) -> AssociateRQ | AssociateAC:
    is_rq = data[0] == ASSOCIATE_RQ
    version = (data[6] << 8) | data[7]
    called, calling = _ae_field(data[10:26]), _ae_field(data[26:42])
    app_context = ""
    user = UserInformation(max_length=None)
    contexts: list[Any] = []
    for i, (t, parent, off, length, pc_id, _ctl, result) in enumerate(entries):
        if parent != -1:
            continue
        if t == _APP_CONTEXT:
            app_context = _text(data[off:off + length])
        elif t == _USER:
            user = _decode_user(data, entries, i)
        elif t in (_PC_RQ, _PC_AC):
            abstract, syntaxes = "", []
            for t2, p2, o2, l2, *_ in entries[i + 1:]:
                if p2 != i:
                    if p2 == -1:
                        break
                    continue
                if t2 == _ABSTRACT:
                    abstract = _text(data[o2:o2 + l2])
                elif t2 == _TRANSFER:
                    syntaxes.append(_text(data[o2:o2 + l2]))
            if t == _PC_RQ:
                contexts.append(PresentationContext(pc_id, abstract, syntaxes))
            else:
                contexts.append(PresentationContextResult(
                    pc_id, result, syntaxes[0] if syntaxes else ""))
    cls = AssociateRQ if is_rq else AssociateAC
    return cls(called, calling, contexts, user, app_context, version)  # type: ignore[arg-type]


def decode(data: bytes, *, max_pdata_len: int = 0, max_other_len: int = 0,
           strict: bool = False) -> PDU:
    """One whole PDU (header included) as an object; P-DATA values are memoryviews
    into `data`. Raises PDUDecodeError with the A-ABORT reason to answer with."""
    try:
        entries = _pdu.parse(data, max_pdata_len, max_other_len, strict)
    except MalformedDataError as exc:
        reason = ABORT_UNRECOGNIZED_PDU if data[:1] and not 1 <= data[0] <= 7 \
            else ABORT_INVALID_PARAMETER
        raise PDUDecodeError(str(exc), reason=reason, offset=exc.offset) from None
    except ValueError as exc:
        raise PDUDecodeError(str(exc)) from None
    t = data[0]
    if t == P_DATA_TF:
        view = memoryview(data)
        return PDataTF([PDV(pc, ctl, view[off:off + length])
                        for _t, _p, off, length, pc, ctl, _r in entries])
    if t in (ASSOCIATE_RQ, ASSOCIATE_AC):
        return _decode_associate(data, entries)
    if t == ASSOCIATE_RJ:
        return AssociateRJ(data[7], data[8], data[9])
    if t == ABORT:
        return Abort(data[8], data[9])
    return ReleaseRQ() if t == RELEASE_RQ else ReleaseRP()


def pdata_pdvs(data: bytes) -> list[tuple[int, int, memoryview]]:
    """The PDVs of a P-DATA-TF PDU checked by :class:`Framer`, as (context ID,
    control header, value view) tuples: the receive hot path, without objects."""
    try:
        entries = _pdu.parse(data)
    except (MalformedDataError, ValueError) as exc:
        raise PDUDecodeError(str(exc), offset=getattr(exc, "offset", None)) from None
    view = memoryview(data)
    return [(pc, ctl, view[off:off + length]) for _t, _p, off, length, pc, ctl, _r in entries]


class Framer:
    """Cuts a received byte stream into whole PDUs (PS3.8 §9.3.1: 6-byte header with a
    32-bit length). ``max_pdata_len`` is the Maximum Length we advertised (0: none);
    a longer P-DATA-TF, or any other PDU longer than ``max_other_len``, raises
    :class:`PDUDecodeError` as soon as its header is in, before its body is buffered.
    """

    __slots__ = ("max_pdata_len", "max_other_len", "strict", "_buf", "_need")

    def __init__(self, max_pdata_len: int = 0, max_other_len: int = DEFAULT_MAX_OTHER_LEN,
                 strict: bool = False):
        self.max_pdata_len = max_pdata_len
        self.max_other_len = max_other_len
        self.strict = strict
        self._buf = bytearray()
        self._need = 1  # the type byte alone already tells an unrecognized PDU

    def feed(self, data: Any) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next(self) -> bytes | None:
        """The next whole PDU, or None until more bytes are fed."""
        buf = self._buf
        if len(buf) < self._need:
            return None
        try:
            complete, _t, needed = _pdu.frame(buf, self.max_pdata_len, self.max_other_len,
                                              self.strict)
        except MalformedDataError as exc:
            reason = ABORT_UNRECOGNIZED_PDU if not 1 <= buf[0] <= 7 else ABORT_INVALID_PARAMETER
            raise PDUDecodeError(str(exc), reason=reason, offset=exc.offset) from None
        if not complete:
            self._need = needed
            return None
        pdu = bytes(memoryview(buf)[:needed])  # one copy (a bytearray slice would make two)
        del buf[:needed]
        self._need = 1
        return pdu

    def take_partial(self, min_len: int, pdata_buffer: Callable[[int], Any] | None = None
                     ) -> tuple[Any, int] | None:
        """After :meth:`next` returned None: when the PDU under way is at least
        `min_len` bytes long (its header is in and was checked), a writable buffer of
        its full length holding the `n` bytes that have arrived, as (pdu, n), taken
        out of the framer; the caller receives the rest straight into it. Else None.
        A P-DATA-TF's buffer comes from `pdata_buffer(length)` when given (a pool:
        any other PDU gets a bytearray of its own, as its decoder wants)."""
        buf = self._buf
        have = len(buf)
        if self._need < min_len or have >= self._need or have < 6:
            return None
        if pdata_buffer is not None and buf[0] == P_DATA_TF:
            pdu = pdata_buffer(self._need)
        else:
            pdu = _pdu.unset_bytearray(self._need)  # every byte is written before use
        pdu[:have] = buf
        buf.clear()
        self._need = 1
        return pdu, have
