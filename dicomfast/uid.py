"""Unique identifiers (PS3.5 §9) and the UID registry (PS3.6 Annex A).

Every keyword of the registry is a module attribute holding its :class:`UID`, named as
pydicom names them: ``dicomfast.uid.ExplicitVRLittleEndian``, ``dicomfast.uid.CTImageStorage``,
``dicomfast.uid.Verification``. They are built on first use.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable

from dicomfast._uids import TRANSFER_SYNTAXES, UIDS

__all__ = ["UID", "generate_uid", "RE_VALID_UID", "RE_VALID_UID_PREFIX"]

# PS3.5 §9.1: components of digits separated by '.', no leading zero unless the component
# is '0' itself. ``[0-9]`` rather than ``\d``, which would accept non-ASCII digits.
RE_VALID_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
RE_VALID_UID_PREFIX = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\.")
_MAX_LEN = 64  # PS3.5 §9.1 and the UI VR, Table 6.2-1

_DICOM_ROOT = "1.2.840.10008."  # PS3.5 §9.2: UIDs the standard itself defines
_ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


class UID(str):
    """A UID string with registry look-ups.

    Trailing NUL padding (PS3.5 §9.1) and blanks are stripped on construction. No check is
    made there; ask :attr:`is_valid`.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> UID:
        if type(value) is cls:
            return value
        if not isinstance(value, str):
            raise TypeError(f"a UID is made from a str, not {type(value).__name__}")
        return str.__new__(cls, value.strip(" \x00"))

    # -- registry ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The registered name, or the UID itself if it is not registered."""
        entry = UIDS.get(self)
        return entry[1] if entry is not None else str(self)

    @property
    def keyword(self) -> str:
        """The registered keyword ('CTImageStorage'), or ''."""
        entry = UIDS.get(self)
        return entry[0] if entry is not None else ""

    @property
    def type(self) -> str:
        """The registered type ('Transfer Syntax', 'SOP Class', ...), or ''."""
        entry = UIDS.get(self)
        return entry[2] if entry is not None else ""

    @property
    def is_retired(self) -> bool:
        entry = UIDS.get(self)
        return entry is not None and entry[3]

    @property
    def is_private(self) -> bool:
        """Whether the UID lies outside the standard's own root (PS3.5 §9.2)."""
        return not self.startswith(_DICOM_ROOT)

    @property
    def is_valid(self) -> bool:
        """Whether the UID follows PS3.5 §9.1: at most 64 characters, dot-separated
        numbers without leading zeros."""
        return len(self) <= _MAX_LEN and RE_VALID_UID.fullmatch(self) is not None

    # -- transfer syntax properties (PS3.5 §10) ------------------------------------------
    @property
    def is_transfer_syntax(self) -> bool:
        return self in TRANSFER_SYNTAXES

    def _ts(self) -> tuple[bool, bool, bool, bool, bool]:
        flags = TRANSFER_SYNTAXES.get(self)
        if flags is None:
            raise ValueError(f"{self} is not a known transfer syntax")
        return flags

    @property
    def is_implicit_VR(self) -> bool:  # noqa: N802 - pydicom's spelling
        return self._ts()[0]

    @property
    def is_little_endian(self) -> bool:
        return self._ts()[1]

    @property
    def is_deflated(self) -> bool:
        """Whether the data set itself is deflated (PS3.5 §A.5; also the JPIP ... Deflate
        syntaxes)."""
        return self._ts()[2]

    @property
    def is_encapsulated(self) -> bool:
        """Whether Pixel Data is encapsulated in fragments (PS3.5 §A.4)."""
        return self._ts()[3]

    @property
    def is_compressed(self) -> bool:
        """Whether Pixel Data is compressed: encapsulated, but not Encapsulated
        Uncompressed (PS3.5 §A.4.11)."""
        return self._ts()[3] and self != _ENCAPSULATED_UNCOMPRESSED

    @property
    def is_lossless(self) -> bool:
        """Whether the transfer syntax guarantees lossless pixel data."""
        return self._ts()[4]


# Keyword -> UID string, for the module attributes.
_BY_KEYWORD: dict[str, str] = {entry[0]: uid for uid, entry in UIDS.items()}


def __getattr__(name: str) -> UID:
    # PEP 562: the registry constants are made on first access, then cached.
    uid = _BY_KEYWORD.get(name)
    if uid is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = UID(uid)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_BY_KEYWORD))


def generate_uid(prefix: str | None = None, entropy_srcs: Iterable[str] | None = None) -> UID:
    """A new UID.

    With no ``prefix``, a UUID-derived UID under the root '2.25.' (PS3.5 §B.2): from a
    random UUID (version 4), or, given ``entropy_srcs``, from a name-based UUID (version 5)
    of those strings, so that the same sources always give the same UID.

    With a ``prefix`` (an organisation's root ending in '.'), the prefix
    followed by decimal digits from a random or ``entropy_srcs``-derived 512-bit number,
    filling the UID to 64 characters.
    """
    # NUL cannot occur inside DICOM text values, so the join is unambiguous.
    joined = None if entropy_srcs is None else "\x00".join(entropy_srcs)
    if prefix is None:
        if joined is None:
            value = uuid.uuid4().int
        else:
            value = uuid.uuid5(uuid.NAMESPACE_OID, joined).int
        return UID(f"2.25.{value}")

    if not isinstance(prefix, str) or RE_VALID_UID_PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"{prefix!r} is not a UID prefix (digits and dots, ending in '.')")
    room = _MAX_LEN - len(prefix)
    if room < 1:
        raise ValueError(f"prefix {prefix!r} leaves no room in a 64-character UID")
    if joined is None:
        number = secrets.randbits(512)
    else:
        number = int.from_bytes(hashlib.sha512(joined.encode("utf-8")).digest(), "big")
    # str(int) has no leading zero (unless the number is 0); truncation keeps it so.
    return UID(prefix + str(number)[:room])
