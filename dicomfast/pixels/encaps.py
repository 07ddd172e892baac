"""Frames of encapsulated pixel data (PS3.5 §A.4), found by the C core.

A frame in a single fragment is a zero-copy view of the file buffer; only a
frame spread over several fragments is joined into new bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicomfast._native import _encaps

# Frame start markers for splitting fragments when no offset table says where.
_JPEG_FAMILY = ("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.6", "1.2.840.10008.1.2.4.7",
                "1.2.840.10008.1.2.4.8")
_J2K_FAMILY = ("1.2.840.10008.1.2.4.9", "1.2.840.10008.1.2.4.20")


def marker_for(transfer_syntax_uid: str) -> int:
    uid = transfer_syntax_uid
    if uid.startswith(_J2K_FAMILY):
        return _encaps.MARKER_J2K
    if uid.startswith(_JPEG_FAMILY):
        return _encaps.MARKER_JPEG
    return _encaps.MARKER_NONE


@dataclass(frozen=True)
class EncapsulatedFrames:
    """The fragments of an encapsulated value and each frame's span over them."""

    value: memoryview
    fragments: list[tuple[int, int]]   # (offset, length), [0] is the Basic Offset Table
    frames: list[tuple[int, int, int, int]]  # (first fragment after BOT, count, offset, length)

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, i: int) -> Any:
        """Frame i's bytes: a view when it is one fragment, else the joined fragments."""
        first, count, offset, length = self.frames[i]
        if count == 1:
            return self.value[offset:offset + length]
        parts = [self.value[o:o + n] for o, n in self.fragments[first + 1:first + 1 + count]]
        joined = b"".join(parts)
        return joined[:length] if len(joined) > length else joined


def split_frames(value: Any, n_frames: int, transfer_syntax_uid: str, *,
                 little_endian: bool = True, eot: Any = None,
                 eot_lengths: Any = None) -> EncapsulatedFrames:
    """Find the frames of an encapsulated Pixel Data value."""
    view = memoryview(value).cast("B")
    fragments, frames = _encaps.frame_spans(
        view, max(int(n_frames), 1), marker_for(transfer_syntax_uid), little_endian,
        eot, eot_lengths)
    return EncapsulatedFrames(view, fragments, frames)


def encapsulate(frames: list[bytes], *, with_offset_table: bool = True,
                max_fragment_size: int | None = None) -> tuple[bytes, bytes, bytes]:
    """Items of an encapsulated Pixel Data value (PS3.5 §A.4) for compressed frames.

    Each frame goes in one fragment (or several of at most `max_fragment_size`
    bytes), padded to even length. Returns (value, extended_offsets,
    extended_lengths): the value holds the Basic Offset Table (filled unless
    `with_offset_table` is False, or the offsets pass 2**32) and the fragments;
    the other two are the Extended Offset Table and its lengths (PS3.3
    C.7.6.3.1.8), for files too big for 32-bit offsets.
    """
    import struct

    chunks: list[bytes] = []
    offsets: list[int] = []
    lengths: list[int] = []
    pos = 0
    for frame in frames:
        data = bytes(frame)
        lengths.append(len(data))
        if len(data) & 1:
            data += b"\0"  # fragments have even length; decoders stop at the EOC/EOI
        offsets.append(pos)
        step = max_fragment_size or len(data) or 2
        step += step & 1
        for start in range(0, max(len(data), 1), step):
            piece = data[start:start + step]
            chunks.append(struct.pack("<HHI", 0xFFFE, 0xE000, len(piece)))
            chunks.append(piece)
            pos += 8 + len(piece)
    bot = b""
    if with_offset_table and (not offsets or offsets[-1] < 1 << 32):
        bot = struct.pack(f"<{len(offsets)}I", *offsets)
    value = struct.pack("<HHI", 0xFFFE, 0xE000, len(bot)) + bot + b"".join(chunks)
    return (value, struct.pack(f"<{len(offsets)}Q", *offsets),
            struct.pack(f"<{len(lengths)}Q", *lengths))
