"""The dicomfast exception and warning hierarchy.

A leaf module: it imports nothing from dicomfast, so every layer may use it.
Tests assert on types and attributes (``offset``, ``tag``, ``codec``,
``frame``), never on message text.
"""

from __future__ import annotations


def _fmt_tag(tag: int | None) -> str:
    if tag is None:
        return ""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class DicomfastError(Exception):
    """Base class of every error dicomfast raises on purpose."""


class DicomfastWarning(UserWarning):
    """Base class of the warnings for recoverable oddities in the input."""


class InvalidDicomError(DicomfastError):
    """The input is not DICOM at all (no preamble/DICM, no File Meta, not a dataset)."""


class MalformedDataError(DicomfastError, ValueError):
    """The input is DICOM but breaks the encoding rules at a known place.

    ``offset`` is the byte offset in the source where the problem was found and
    ``tag`` the element being read (either may be ``None`` when unknown).
    """

    def __init__(self, message: str, *, offset: int | None = None, tag: int | None = None):
        where = []
        if tag is not None:
            where.append(_fmt_tag(tag))
        text = message
        if where:
            text = f"{' '.join(where)}: {message}"
        if offset is not None and "offset" not in message:
            text = f"{text} at offset {offset}"
        super().__init__(text)
        self.offset = offset
        self.tag = tag


class TruncatedDataError(MalformedDataError):
    """The input ends before an element, item or value it announces."""


class UnsupportedTransferSyntaxError(DicomfastError):
    """The transfer syntax is unknown, or known but not decodable here."""


class CodecUnavailableError(UnsupportedTransferSyntaxError):
    """dicomfast was built without the library this codec needs."""


class DecodeError(DicomfastError, ValueError):
    """A compressed frame could not be decoded."""

    def __init__(self, message: str, *, codec: str | None = None, frame: int | None = None):
        prefix = []
        if codec:
            prefix.append(codec)
        if frame is not None:
            prefix.append(f"frame {frame}")
        text = f"{', '.join(prefix)}: {message}" if prefix else message
        super().__init__(text)
        self.detail = message  # without the codec / frame prefix, for re-raising
        self.codec = codec
        self.frame = frame


class EncodeError(DicomfastError, ValueError):
    """An image could not be encoded with the requested codec or parameters."""


class PDUError(DicomfastError):
    """A malformed or unexpected upper-layer PDU."""


class AssociationError(DicomfastError):
    """An association was rejected, aborted or could not be negotiated."""


class DIMSEError(DicomfastError):
    """A malformed DIMSE message or a failed DIMSE exchange."""


class CharsetWarning(DicomfastWarning):
    """A Specific Character Set term is unknown or a value does not decode with it."""


class ValueWarning(DicomfastWarning):
    """A value does not conform to its VR but could still be read."""


class EncodingWarning(DicomfastWarning):
    """The data's encoding differs from what the transfer syntax announces."""
