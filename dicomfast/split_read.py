"""Reading a file up to its pixel data, for rewrites that keep the pixel data as stored.

A header rewrite (de-identification, a tag edit) changes a few kilobytes at the
front of a file and copies the rest, the pixel data, unchanged. Read whole, that
rest passes through this process's memory twice: read into a fresh buffer, then
written out of it. :func:`open_split` reads and parses only the head, and checks
that the pixel data element is the file's last (PS3.5 §7.1: elements ascend, and
(7FE0,0010) is the last of most files). The pixel data is then written to the new
file as a :class:`~dicomfast.atomic.FileRange` of the source, which the kernel
copies file to file.

    >>> with open_split(path) as split:
    ...     ds = split.dataset                 # without the pixel data when split.pixels
    ...     chunks = part10_chunks(ds) + [r for r in (split.pixels, split.padding) if r]

The pixel data element may be followed by Data Set Trailing Padding (FFFC,FFFC),
which some writers add: its range is ``split.padding``, for the caller to copy or
drop. A file the split does not suit is read whole (``split.pixels`` is None): a
small one, a deflated one, one with more than 256 KiB before its pixel data, or
one with anything else after its pixel data element (private groups above 7FE0,
a signature), which the caller must see to rewrite.
"""

from __future__ import annotations

import os
import stat
import struct
from typing import Any, NamedTuple

from dicomfast._index import vr_table
from dicomfast._native import _scan
from dicomfast.atomic import FileRange
from dicomfast.dataset import Dataset
from dicomfast.errors import DicomfastError
from dicomfast.part10 import lookup_transfer_syntax, read

__all__ = ["HEAD_BYTES", "Head", "SplitFile", "open_split", "scan_data_set"]

#: Files no larger than this are read whole: copying their little pixel data through
#: memory costs less than the extra calls.
HEAD_BYTES = 1 << 16
# How much of a file is read to find its pixel data: most heads are a few kilobytes,
# and reading more than the head costs a copy of its own; a head longer than the
# first read is read again, once, with the second; longer still, the file whole.
_HEAD_READS = (1 << 14, 1 << 18)
# An encapsulated pixel data element is walked item by item (one pread each past the
# head) to find its end; one with more fragments than this is read whole instead.
_MAX_FRAGMENTS = 4096
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_ITEM, _SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
# Explicit VRs with a 4-byte length after 2 reserved bytes (PS3.5 §7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
# Scanner warnings that leave the head's end in doubt (df_scan.h): trailing bytes, a
# container without delimiter, a cut value, or the other VR encoding than the syntax's.
_DOUBTFUL = 0x01 | 0x10 | 0x20 | 0x40 | 0x80


class SplitFile:
    """A file read up to its pixel data and held open for copying the rest from; see
    :func:`open_split`. `data` holds the bytes read (the head, or the whole file when
    `pixels` is None), and `dataset` is the data set they hold, parsed when first
    asked for. `pixels` is where the pixel data element lies in the file, and
    `padding` where the Data Set Trailing Padding after it lies, if there is one
    (the two end the file). A rewrite that works on the bytes themselves has the
    head's scan too, `head` (None when the file was read whole)."""

    def __init__(self, fd: int, name: str, data: bytes, pixels: FileRange | None = None,
                 padding: FileRange | None = None, head: Head | None = None) -> None:
        self.fd = fd
        self.name = name
        self.data = data
        self.pixels = pixels
        self.padding = padding
        self.head = head
        #: the pixel data element's tag when `pixels` is set: nothing at or above it
        #: may be added to `dataset` if the two are to be written one after the other
        self.pixel_tag = head.tag if head is not None else 0
        self._dataset: Dataset | None = None

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            data = self.data if self.head is None else memoryview(self.data)[:self.head.stop]
            ds = read(data)
            ds.__dict__["filename"] = self.name
            self._dataset = ds
        return self._dataset

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SplitFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Head(NamedTuple):
    """What the split found in a file's head: its data set's index (up to `stop`,
    where the pixel data element starts), transfer syntax `ts`, the File Meta's
    index `meta`, and the pixel data element's tag."""

    stop: int
    index: Any
    ts: Any
    meta: Any
    tag: int


def open_split(path: str | os.PathLike) -> SplitFile:
    """Open the Part 10 file `path` and read it up to its pixel data when that is the
    file's last element; otherwise read all of it. Close the result (it is a context
    manager): it holds the file open so that its pixel data is copied from the very
    file the head was read from."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        size = st.st_size
        regular = stat.S_ISREG(st.st_mode)  # not a pipe or a device: pread works
        found = _split(fd, size, name) if regular and size > HEAD_BYTES else None
        if found is None:
            return SplitFile(fd, name, _read_all(fd, size))
        return SplitFile(fd, name, *found)
    except BaseException:
        os.close(fd)
        raise


def _read_all(fd: int, size: int) -> bytes:
    """The file from its start (the descriptor is fresh): `size` bytes as fstat
    said, or what a file that is not regular, or changed meanwhile, holds."""
    chunks = []
    got = 0
    while True:
        chunk = os.read(fd, max(size - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def scan_data_set(data: Any, *, stop_before_pixels: bool = False, table: Any = None
                  ) -> tuple[int, Any, Any, Any] | None:
    """(where the data set starts, the File Meta's index, the transfer syntax, the
    data set's index) of Part 10 bytes, or None for bytes without File Meta or in a
    deflated syntax; the scanner's DicomfastError for bytes it cannot scan."""
    table = table if table is not None else vr_table()
    start, _, meta, raw_syntax = _scan.scan_file_meta(data, False, table)
    ts = lookup_transfer_syntax(raw_syntax) if meta is not None else None
    if ts is None or ts.is_deflated:
        return None
    index = _scan.scan(data, start=start, little_endian=ts.is_little_endian,
                       explicit_vr=not ts.is_implicit_vr,
                       stop_before_pixels=stop_before_pixels, table=table)
    return start, meta, ts, index


def _split(fd: int, size: int, name: str
           ) -> tuple[bytes, FileRange, FileRange | None, Head] | None:
    """(the bytes read, the pixel data element's range, the trailing padding's range
    or None, what the head holds), or None when the file should be read whole."""
    table = vr_table()
    for limit in _HEAD_READS:
        head = os.pread(fd, limit, 0)
        if len(head) != min(limit, size):
            return None  # the file changed meanwhile
        try:
            scanned = scan_data_set(head, stop_before_pixels=True, table=table)
            if scanned is None:
                return None
            start, meta, ts, index = scanned
            little, explicit = ts.is_little_endian, not ts.is_implicit_vr
        except DicomfastError:
            if len(head) < size:
                continue  # perhaps only cut by this read: the next reads more
            return None  # the whole read raises what is wrong, with the whole file's context
        stop = start + index.bytes_used
        if not index.warnings & _DOUBTFUL and stop + 12 <= len(head):
            break
        if len(head) == size:
            return None
    else:
        return None
    end_tag = _element_end(fd, head, stop, size, little, explicit)
    if end_tag is None:
        return None
    end, tag = end_tag
    padding = None
    if end != size:
        # Data Set Trailing Padding (FFFC,FFFC), the one element that may follow.
        padding_end = _padding_end(fd, head, end, little, explicit)
        if padding_end != size:
            return None
        padding = FileRange(fd, end, size - end, name)
    return head, FileRange(fd, stop, end - stop, name), padding, Head(stop, index, ts, meta, tag)


def _element_end(fd: int, head: bytes, at: int, size: int, little: bool,
                 explicit: bool) -> tuple[int, int] | None:
    """(where the pixel data element at `at` ends, its tag), or None when it is not
    one or does not end tidily: an odd length, or an item that is not a fragment."""
    header = _long_header(fd, head, at, little, explicit)
    if header is None or header[0] not in _PIXEL_TAGS:
        return None
    tag, _, length, at = header
    if length != _UNDEFINED:
        return (at + length, tag) if not length & 1 else None
    if not little or tag != 0x7FE00010:
        return None
    for _ in range(_MAX_FRAGMENTS + 1):  # the offset table's item, then the fragments
        item = _bytes_at(fd, head, at, 8)
        if len(item) < 8:
            return None
        item_group, item_element, length = struct.unpack("<HHI", item)
        item_tag = item_group << 16 | item_element
        if item_tag == _SEQUENCE_DELIMITER:
            return at + 8, tag
        if item_tag != _ITEM or length == _UNDEFINED or length & 1 or at + 8 + length > size:
            return None
        at += 8 + length
    return None


def _padding_end(fd: int, head: bytes, at: int, little: bool, explicit: bool) -> int | None:
    """Where a Data Set Trailing Padding element at `at` ends, or None when there is
    none there (PS3.5 §7.1: (FFFC,FFFC), OB, any content)."""
    header = _long_header(fd, head, at, little, explicit)
    if header is None or header[0] != 0xFFFCFFFC or header[1] not in (b"OB", None):
        return None
    _, _, length, at = header
    return None if length == _UNDEFINED else at + length


def _long_header(fd: int, head: bytes, at: int, little: bool, explicit: bool
                 ) -> tuple[int, bytes | None, int, int] | None:
    """(tag, explicit VR or None, length, where the value starts) of the element at
    `at` when its header has the 4-byte length of PS3.5 §7.1.2 (implicit VR, or an
    explicit VR of that form); None otherwise, or when the file ends first."""
    raw = _bytes_at(fd, head, at, 12 if explicit else 8)
    if len(raw) < (12 if explicit else 8):
        return None
    order = "<" if little else ">"
    group, element = struct.unpack_from(order + "HH", raw)
    if not explicit:
        return group << 16 | element, None, struct.unpack_from(order + "I", raw, 4)[0], at + 8
    vr = raw[4:6]
    if vr not in _LONG_VRS:
        return None
    return group << 16 | element, vr, struct.unpack_from(order + "I", raw, 8)[0], at + 12


def _bytes_at(fd: int, head: bytes, at: int, count: int) -> Any:
    if at + count <= len(head):
        return head[at:at + count]
    return os.pread(fd, count, at)
