"""Transfer syntaxes: how a data set is encoded (PS3.5 §10, Annex A).

:func:`transfer_syntax` turns the (0002,0010) Transfer Syntax UID of a file, or a UID
negotiated on an association, into the facts a reader or writer needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomfast._uids import TRANSFER_SYNTAXES, UIDS
from dicomfast.errors import UnsupportedTransferSyntaxError

__all__ = [
    "ALL_TRANSFER_SYNTAXES",
    "TransferSyntax",
    "is_known_transfer_syntax",
    "transfer_syntax",
]


@dataclass(frozen=True, slots=True)
class TransferSyntax:
    """One transfer syntax of PS3.6 Table A-1.

    ``is_encapsulated``: Pixel Data is stored as fragments of encapsulated items (PS3.5
    §A.4): every compressed syntax and Encapsulated Uncompressed Explicit VR Little Endian.
    Implicit VR Little Endian, Explicit VR Little/Big Endian and Deflated Explicit VR Little
    Endian store Pixel Data natively. The JPIP syntaxes reference pixel data by URL and the
    SMPTE ST 2110 ones carry it in an RTP flow, so neither is encapsulated.

    ``is_deflated``: the whole data set after the File Meta Information is deflated (PS3.5
    §A.5), as in Deflated Explicit VR Little Endian and the two JPIP ... Deflate syntaxes.

    ``is_lossless``: the syntax guarantees the pixel data is exactly the original.
    """

    uid: str
    keyword: str
    name: str
    is_implicit_vr: bool
    is_little_endian: bool
    is_deflated: bool
    is_encapsulated: bool
    is_lossless: bool
    is_retired: bool

    def __str__(self) -> str:
        return self.uid


def _build() -> dict[str, TransferSyntax]:
    out = {}
    for uid, (implicit, little, deflated, encapsulated, lossless) in TRANSFER_SYNTAXES.items():
        keyword, name, _kind, retired = UIDS[uid]
        out[uid] = TransferSyntax(
            uid, keyword, name, implicit, little, deflated, encapsulated, lossless, retired
        )
    return out


_BY_UID = _build()

ALL_TRANSFER_SYNTAXES: tuple[TransferSyntax, ...] = tuple(_BY_UID.values())
"""Every transfer syntax of PS3.6 Table A-1, retired ones included, in UID order."""


def _clean(uid: str | bytes) -> str:
    if isinstance(uid, (bytes, bytearray, memoryview)):
        uid = bytes(uid).decode("ascii", "replace")
    elif not isinstance(uid, str):
        raise TypeError(f"a transfer syntax UID is a str, not {type(uid).__name__}")
    # UI values are padded to even length with one NUL (PS3.5 §9.1); writers that pad with
    # a space instead are common enough to accept.
    return uid.strip("\x00 ")


def transfer_syntax(uid: str | bytes) -> TransferSyntax:
    """The :class:`TransferSyntax` for ``uid`` (trailing NUL or blank padding ignored).

    Raises :class:`~dicomfast.errors.UnsupportedTransferSyntaxError` for a UID that is not
    a transfer syntax of the registry, private ones included.
    """
    key = _clean(uid)
    ts = _BY_UID.get(key)
    if ts is None:
        what = "a SOP class or other UID" if key in UIDS else "unknown"
        raise UnsupportedTransferSyntaxError(
            f"transfer syntax UID {key!r} is {what}, not a transfer syntax of PS3.6 Table A-1"
        )
    return ts


def is_known_transfer_syntax(uid: str | bytes) -> bool:
    """Whether ``uid`` (padding ignored) is a transfer syntax of the registry."""
    try:
        return _clean(uid) in _BY_UID
    except TypeError:
        return False
