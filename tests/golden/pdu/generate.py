"""Writes the golden PDU vectors of this folder: NAME.bin and NAME.txt (an annotated dump).

Each PDU is laid out field by field from PS3.8 §9.3 and PS3.7 Annex D.3.3 with
struct, independent of dicomfast.net.pdu, so the vectors test the encoder rather
than mirror it. Run from anywhere:  python tests/golden/pdu/generate.py
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent

APP = b"1.2.840.10008.3.1.1.1"
VERIFICATION = b"1.2.840.10008.1.1"
CT = b"1.2.840.10008.5.1.4.1.1.2"
MR = b"1.2.840.10008.5.1.4.1.1.4"
IMPLICIT = b"1.2.840.10008.1.2"
EXPLICIT = b"1.2.840.10008.1.2.1"
J2K = b"1.2.840.10008.1.2.4.90"
STORAGE_SERVICE = b"1.2.840.10008.4.2"
IMPL_UID = b"2.25.91440283547810469372839152876235581127"


class Seg:
    """A run of fields: leaf bytes with a description, or a container whose length
    field is computed from its children."""

    def __init__(self, desc: str, raw: bytes = b"", children: list[Seg] | None = None):
        self.desc, self.raw, self.children = desc, raw, children or []

    def size(self) -> int:
        return len(self.raw) + sum(c.size() for c in self.children)

    def flatten(self, depth: int = 0):
        if self.raw:
            yield self.raw, self.desc, depth
        for c in self.children:
            yield from c.flatten(depth + (1 if self.raw == b"" and self.desc else 0))


def leaf(raw: bytes, desc: str) -> Seg:
    return Seg(desc, raw)


def item(item_type: int, name: str, children: list[Seg]) -> Seg:
    """Item header (type, reserved, 2-byte big endian length) then its value."""
    length = sum(c.size() for c in children)
    head = [leaf(bytes([item_type]), f"item type 0x{item_type:02X}: {name}"),
            leaf(b"\0", "reserved"), leaf(struct.pack(">H", length), f"item length {length}")]
    return Seg(name, b"", head + children)


def pdu(pdu_type: int, name: str, children: list[Seg]) -> Seg:
    """PDU header (type, reserved, 4-byte big endian length) then the variable field."""
    length = sum(c.size() for c in children)
    head = [leaf(bytes([pdu_type]), f"PDU type 0x{pdu_type:02X}: {name}"),
            leaf(b"\0", "reserved"), leaf(struct.pack(">I", length), f"PDU length {length}")]
    return Seg("", b"", head + children)


def uid_item(item_type: int, name: str, uid: bytes) -> Seg:
    return item(item_type, name, [leaf(uid, f"{name}: {uid.decode()}")])


def u16uid(uid: bytes, name: str) -> list[Seg]:
    return [leaf(struct.pack(">H", len(uid)), f"{name} length {len(uid)}"),
            leaf(uid, f"{name}: {uid.decode()}")]


def assoc_fixed(called: bytes, calling: bytes) -> list[Seg]:
    return [leaf(b"\x00\x01", "protocol version 1 (bit 0)"), leaf(b"\0\0", "reserved"),
            leaf(called.ljust(16), f"called AE title '{called.decode()}' (space padded)"),
            leaf(calling.ljust(16), f"calling AE title '{calling.decode()}' (space padded)"),
            leaf(bytes(32), "reserved (32 bytes)")]


def pc_rq(pc_id: int, abstract: bytes, syntaxes: list[bytes]) -> Seg:
    return item(0x20, "presentation context (RQ)", [
        leaf(bytes([pc_id]), f"presentation context ID {pc_id}"), leaf(b"\0\0\0", "reserved"),
        uid_item(0x30, "abstract syntax", abstract)]
        + [uid_item(0x40, "transfer syntax", ts) for ts in syntaxes])


def pc_ac(pc_id: int, result: int, ts: bytes) -> Seg:
    reasons = {0: "acceptance", 1: "user-rejection", 2: "no-reason (provider rejection)",
               3: "abstract-syntax-not-supported", 4: "transfer-syntaxes-not-supported"}
    return item(0x21, "presentation context (AC)", [
        leaf(bytes([pc_id]), f"presentation context ID {pc_id}"), leaf(b"\0", "reserved"),
        leaf(bytes([result]), f"result/reason {result}: {reasons[result]}"),
        leaf(b"\0", "reserved"), uid_item(0x40, "transfer syntax", ts)])


def max_length(n: int) -> Seg:
    return item(0x51, "maximum length", [leaf(struct.pack(">I", n), f"maximum length {n}")])


def impl(version: bytes = b"DICOMFAST_010") -> list[Seg]:
    return [uid_item(0x52, "implementation class UID", IMPL_UID),
            item(0x55, "implementation version name",
                 [leaf(version, f"implementation version name '{version.decode()}'")])]


def role(uid: bytes, scu: int, scp: int) -> Seg:
    return item(0x54, "SCP/SCU role selection", u16uid(uid, "SOP class UID") + [
        leaf(bytes([scu]), f"SCU role {scu}"), leaf(bytes([scp]), f"SCP role {scp}")])


def async_ops(invoked: int, performed: int) -> Seg:
    return item(0x53, "asynchronous operations window", [
        leaf(struct.pack(">H", invoked), f"maximum number operations invoked {invoked}"),
        leaf(struct.pack(">H", performed), f"maximum number operations performed {performed}")])


VECTORS: dict[str, tuple[str, Seg]] = {}


def vector(name: str, title: str, seg: Seg) -> None:
    VECTORS[name] = (title, seg)


vector("a_associate_rq_echo", "A-ASSOCIATE-RQ proposing Verification, implicit VR LE only "
       "(PS3.8 §9.3.2)", pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"ANY-SCP", b"ECHOSCU") + [
           uid_item(0x10, "application context name", APP),
           pc_rq(1, VERIFICATION, [IMPLICIT]),
           item(0x50, "user information", [max_length(16384)] + impl())]))

vector("a_associate_rq_full", "A-ASSOCIATE-RQ with every user information sub-item "
       "(PS3.8 §9.3.2, Annex D.1; PS3.7 Annex D.3.3)",
       pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"STORE-SCP", b"DICOMFAST") + [
           uid_item(0x10, "application context name", APP),
           pc_rq(1, CT, [J2K, EXPLICIT, IMPLICIT]),
           pc_rq(3, MR, [EXPLICIT, IMPLICIT]),
           pc_rq(5, VERIFICATION, [IMPLICIT]),
           item(0x50, "user information", [
               max_length(1048576), impl()[0], async_ops(16, 1), role(CT, 1, 1),
               impl()[1],
               item(0x56, "SOP class extended negotiation", u16uid(CT, "SOP class UID") + [
                   leaf(b"\x01\x00\x01\x00", "service-class-application-information")]),
               item(0x57, "SOP class common extended negotiation",
                    u16uid(MR, "SOP class UID") + u16uid(STORAGE_SERVICE, "service class UID")
                    + [leaf(struct.pack(">H", 2 + len(CT) + 2 + len(b"1.2.3.4")),
                            "related general SOP class identification length")]
                    + u16uid(CT, "related general SOP class UID")
                    + u16uid(b"1.2.3.4", "related general SOP class UID")),
               item(0x58, "user identity negotiation (RQ)", [
                   leaf(b"\x02", "user identity type 2: username and passcode"),
                   leaf(b"\x01", "positive response requested"),
                   leaf(struct.pack(">H", 5), "primary field length 5"),
                   leaf(b"alice", "primary field (username) 'alice'"),
                   leaf(struct.pack(">H", 6), "secondary field length 6"),
                   leaf(b"s3cret", "secondary field (passcode) 's3cret'")]),
           ])]))

vector("a_associate_ac_mixed", "A-ASSOCIATE-AC answering a_associate_rq_full: one context "
       "accepted, two refused (PS3.8 §9.3.3)",
       pdu(0x02, "A-ASSOCIATE-AC", assoc_fixed(b"STORE-SCP", b"DICOMFAST") + [
           uid_item(0x10, "application context name", APP),
           pc_ac(1, 0, EXPLICIT), pc_ac(3, 3, IMPLICIT), pc_ac(5, 4, IMPLICIT),
           item(0x50, "user information", [
               max_length(16384), impl()[0], async_ops(8, 1), role(CT, 1, 0), impl()[1],
               item(0x56, "SOP class extended negotiation", u16uid(CT, "SOP class UID") + [
                   leaf(b"\x01", "service-class-application-information")]),
               item(0x59, "user identity negotiation (AC)", [
                   leaf(struct.pack(">H", 8), "server response length 8"),
                   leaf(b"accepted", "server response 'accepted'")]),
           ])]))

vector("a_associate_rj_called_ae", "A-ASSOCIATE-RJ: rejected-permanent, service-user, "
       "called-AE-title-not-recognized (PS3.8 §9.3.4, Table 9-21)",
       pdu(0x03, "A-ASSOCIATE-RJ", [leaf(b"\0", "reserved"),
                                    leaf(b"\x01", "result 1: rejected-permanent"),
                                    leaf(b"\x01", "source 1: DICOM UL service-user"),
                                    leaf(b"\x07", "reason 7: called-AE-title-not-recognized")]))

vector("a_associate_rj_limit", "A-ASSOCIATE-RJ: rejected-transient, service-provider "
       "(presentation), local-limit-exceeded (PS3.8 Table 9-21)",
       pdu(0x03, "A-ASSOCIATE-RJ", [leaf(b"\0", "reserved"),
                                    leaf(b"\x02", "result 2: rejected-transient"),
                                    leaf(b"\x03", "source 3: service-provider (presentation)"),
                                    leaf(b"\x02", "reason 2: local-limit-exceeded")]))

# C-ECHO-RQ command set (PS3.7 §9.3.5), implicit VR little endian.
ECHO_RQ = (struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", 56)
           + struct.pack("<HHI", 0, 2, 18) + VERIFICATION + b"\0"
           + struct.pack("<HHIH", 0, 0x100, 2, 0x0030)
           + struct.pack("<HHIH", 0, 0x110, 2, 1)
           + struct.pack("<HHIH", 0, 0x800, 2, 0x0101))
assert len(ECHO_RQ) == 12 + 56

def pdv(pc_id: int, control: int, value: bytes, what: str) -> list[Seg]:
    kinds = {0: "data set, not last", 1: "command, not last", 2: "data set, last fragment",
             3: "command, last fragment"}
    return [leaf(struct.pack(">I", len(value) + 2), f"PDV item length {len(value) + 2}"),
            leaf(bytes([pc_id]), f"presentation context ID {pc_id}"),
            leaf(bytes([control]), f"message control header 0x{control:02X}: {kinds[control]}"),
            leaf(value, what)]


vector("p_data_tf_echo_rq", "P-DATA-TF carrying a whole C-ECHO-RQ command in one PDV "
       "(PS3.8 §9.3.5, Annex E; PS3.7 §9.3.5)",
       pdu(0x04, "P-DATA-TF", pdv(1, 3, ECHO_RQ,
                                  "C-ECHO-RQ command set (group 0000, implicit VR LE)")))

vector("p_data_tf_two_pdvs", "P-DATA-TF with two PDVs: the last command fragment and a "
       "first data set fragment (PS3.8 §9.3.5: several PDVs in one PDU)",
       pdu(0x04, "P-DATA-TF", pdv(3, 3, b"\x08\x00\x16\x00", "command fragment (4 bytes)")
           + pdv(3, 0, b"\x08\x00\x18\x00\x02\x00\x00\x001\0",
                 "data set fragment (10 bytes)")))

vector("a_release_rq", "A-RELEASE-RQ (PS3.8 §9.3.6)",
       pdu(0x05, "A-RELEASE-RQ", [leaf(bytes(4), "reserved")]))
vector("a_release_rp", "A-RELEASE-RP (PS3.8 §9.3.7)",
       pdu(0x06, "A-RELEASE-RP", [leaf(bytes(4), "reserved")]))
vector("a_abort_user", "A-ABORT from the service-user (PS3.8 §9.3.8)",
       pdu(0x07, "A-ABORT", [leaf(b"\0\0", "reserved"),
                             leaf(b"\x00", "source 0: DICOM UL service-user"),
                             leaf(b"\x00", "reason 0: not significant for this source")]))
vector("a_abort_unexpected_pdu", "A-ABORT from the service-provider: unexpected PDU "
       "(PS3.8 §9.3.8, Table 9-26)",
       pdu(0x07, "A-ABORT", [leaf(b"\0\0", "reserved"),
                             leaf(b"\x02", "source 2: DICOM UL service-provider"),
                             leaf(b"\x02", "reason 2: unexpected-PDU")]))

# Malformed PDUs: each must be refused (the receiver answers with A-ABORT).
vector("bad_unknown_type", "MALFORMED: PDU type 0x09 is not defined (A-ABORT reason 1)",
       pdu(0x09, "undefined", [leaf(bytes(4), "body")]))
vector("bad_release_length", "MALFORMED: A-RELEASE-RQ with length 6 (must be 4)",
       pdu(0x05, "A-RELEASE-RQ", [leaf(bytes(6), "reserved, two bytes too many")]))
vector("bad_pdv_overrun", "MALFORMED: PDV item length runs past the PDU",
       pdu(0x04, "P-DATA-TF", [leaf(struct.pack(">I", 100), "PDV item length 100 (only 4 follow)"),
                               leaf(b"\x01\x03", "context 1, command, last"),
                               leaf(b"ab", "2 bytes of value")]))
vector("bad_even_context_id", "MALFORMED: presentation context ID 2 (IDs are odd, "
       "PS3.8 §9.3.2.2)", pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"ANY-SCP", b"ECHOSCU") + [
           uid_item(0x10, "application context name", APP),
           pc_rq(2, VERIFICATION, [IMPLICIT]),
           item(0x50, "user information", [max_length(16384)])]))
vector("bad_item_overrun", "MALFORMED: user information item longer than the PDU",
       pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"ANY-SCP", b"ECHOSCU") + [
           uid_item(0x10, "application context name", APP),
           pc_rq(1, VERIFICATION, [IMPLICIT]),
           leaf(b"\x50\x00\x01\x00", "user information item claiming 256 bytes"),
           leaf(b"\x51\x00\x00\x04\x00\x00\x40\x00", "maximum length sub-item")]))
vector("bad_uid_characters", "MALFORMED: abstract syntax UID with a '/' in it",
       pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"ANY-SCP", b"ECHOSCU") + [
           uid_item(0x10, "application context name", APP),
           pc_rq(1, b"1.2/../3", [IMPLICIT]),
           item(0x50, "user information", [max_length(16384)])]))
vector("bad_role_length", "MALFORMED: role selection whose UID length overruns the sub-item",
       pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"ANY-SCP", b"ECHOSCU") + [
           uid_item(0x10, "application context name", APP),
           pc_rq(1, VERIFICATION, [IMPLICIT]),
           item(0x50, "user information", [max_length(16384), item(0x54, "role selection", [
               leaf(struct.pack(">H", 40), "UID length 40 (only 17 follow)"),
               leaf(VERIFICATION, "SOP class UID"), leaf(b"\x01\x00", "roles")])])]))
vector("bad_no_context", "MALFORMED: A-ASSOCIATE-RQ without a presentation context item",
       pdu(0x01, "A-ASSOCIATE-RQ", assoc_fixed(b"ANY-SCP", b"ECHOSCU") + [
           uid_item(0x10, "application context name", APP),
           item(0x50, "user information", [max_length(16384)])]))


def render(name: str, title: str, seg: Seg) -> tuple[bytes, str]:
    data = b""
    lines = [f"# {name}.bin: {title}", "# offset  bytes                                     field"]
    for raw, desc, depth in seg.flatten():
        shown = raw.hex(" ")
        if len(raw) > 16:
            shown = raw[:16].hex(" ") + f" ... ({len(raw)} bytes)"
        lines.append(f"{len(data):08d}  {shown:<40}  {'  ' * depth}{desc}")
        data += raw
    lines.append(f"# {len(data)} bytes")
    return data, "\n".join(lines) + "\n"


def main() -> None:
    for name, (title, seg) in VECTORS.items():
        data, text = render(name, title, seg)
        (HERE / f"{name}.bin").write_bytes(data)
        (HERE / f"{name}.txt").write_text(text)


if __name__ == "__main__":
    main()
