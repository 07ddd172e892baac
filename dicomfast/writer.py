"""Writing data sets and DICOM Part 10 files (PS3.10 §7, PS3.5 §7).

Elements read from a file and not changed are copied as their original bytes
(whole runs at once) when the target encoding is the one they were read in;
only new or changed elements are encoded. Files are written to a temporary
name in the target folder and renamed into place, so a failed write never
leaves a partial file under the final name.
"""

from __future__ import annotations

import bisect
import os
import struct
import zlib
from collections.abc import Mapping
from typing import IO, Any

from dicomfast import dataset as _dataset
from dicomfast.atomic import write_file
from dicomfast.dataset import Dataset, Sequence
from dicomfast.element import DataElement
from dicomfast.encode import encode_value
from dicomfast.errors import DicomfastError, UnsupportedTransferSyntaxError
from dicomfast.transfer_syntax import TransferSyntax, transfer_syntax
from dicomfast.vr import AMBIGUOUS_VRS, CHARSET_VRS, LONG_FORM_VRS, SWAP_SIZE, TEXT_VRS

#: dicomfast's implementation identity in the File Meta (PS3.7 §D.3.3.2).
IMPLEMENTATION_CLASS_UID = "2.25.91440283547810469372839152876235581127"
IMPLEMENTATION_VERSION_NAME = "DICOMFAST_010"

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
_UNDEFINED = 0xFFFFFFFF
_EL_UNDEFINED = 0x0001
_EL_SEQUENCE = 0x0002
_EL_FRAGMENTS = 0x0008
_EL_IMPLICIT = 0x0020
_EL_BIG_ENDIAN = 0x0040
_EL_TRUNCATED = 0x0400
# Scan warnings after which stored bytes are not the canonical encoding: a value
# cut short, a missing or stray delimiter, an encoding that differs from the syntax.
_REPAIRED = 0x04 | 0x10 | 0x20 | 0x40 | 0x80
_ITEM = (0xFFFE, 0xE000)
_ITEM_DELIM = (0xFFFE, 0xE00D)
_SEQ_DELIM = (0xFFFE, 0xE0DD)


class _Encoding:
    """How the output is encoded, and what source bytes can be copied as they are."""

    __slots__ = ("little", "implicit", "prefix", "raw_flags", "undefined_sequences",
                 "implicit_header", "short_header", "long_header", "delimiter")

    def __init__(self, little: bool, implicit: bool, undefined_sequences: bool | None):
        self.little = little
        self.implicit = implicit
        self.prefix = "<" if little else ">"
        # An entry read with exactly these encoding flags can be copied byte for byte.
        self.raw_flags = (_EL_IMPLICIT if implicit else 0) | (0 if little else _EL_BIG_ENDIAN)
        self.undefined_sequences = undefined_sequences
        self.implicit_header = struct.Struct(self.prefix + "HHI").pack
        self.short_header = struct.Struct(self.prefix + "HH2sH").pack
        self.long_header = struct.Struct(self.prefix + "HH2sHI").pack
        self.delimiter = self.implicit_header  # (FFFE,xxxx) and a 32-bit length


_VR_BYTES = {vr: vr.encode("ascii") for vr in (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI "
    "UL UN UR US UT UV").split()}


def _header(tag: int, vr: str, length: int, enc: _Encoding) -> bytes:
    if enc.implicit:
        return enc.implicit_header(tag >> 16, tag & 0xFFFF, length)
    if vr in LONG_FORM_VRS or length == _UNDEFINED:
        return enc.long_header(tag >> 16, tag & 0xFFFF, _VR_BYTES.get(vr) or vr.encode("ascii"),
                               0, length)
    if length > 0xFFFF:
        # PS3.5 §6.2.2: a value too long for a short-form VR goes as UN.
        return enc.long_header(tag >> 16, tag & 0xFFFF, b"UN", 0, length)
    return enc.short_header(tag >> 16, tag & 0xFFFF, _VR_BYTES.get(vr) or vr.encode("ascii"),
                            length)


def _delim(pair: tuple[int, int], enc: _Encoding) -> bytes:
    return enc.delimiter(pair[0], pair[1], 0)


#: Source runs shorter than this are copied into the output buffer; longer ones
#: are handed on as views of the source, so pixel data is never copied here.
_SMALL_RUN = 1 << 14


class _Out:
    """Output chunks: newly encoded bytes and short source runs gathered in one
    buffer, long source runs as views of the source between them."""

    __slots__ = ("chunks", "buf", "size")

    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self.buf = bytearray()
        self.size = 0  # of the chunks; parts() and total() add the buffer

    def copy(self, src: Any, start: int, stop: int) -> None:
        if stop - start < _SMALL_RUN:
            self.buf += memoryview(src)[start:stop]
            return
        self._flush()
        self.chunks.append(memoryview(src)[start:stop])
        self.size += stop - start

    def add(self, data: Any) -> None:
        if len(data) < _SMALL_RUN:
            self.buf += data
            return
        self._flush()
        self.chunks.append(data)
        self.size += len(data)

    def total(self) -> int:
        return self.size + len(self.buf)

    def _flush(self) -> None:
        if self.buf:
            self.chunks.append(bytes(self.buf))
            self.size += len(self.buf)
            self.buf = bytearray()

    def parts(self) -> list[Any]:
        self._flush()
        return self.chunks


def _swapped(raw: bytes, size: int) -> bytes:
    import numpy as np

    if len(raw) % size:
        raise DicomfastError(f"{len(raw)} bytes is not a whole number of {size}-byte words")
    return np.frombuffer(raw, f"u{size}").byteswap().tobytes()


def _swap_size(ds: Dataset, el: DataElement, vr: str) -> int:
    """Bytes per swapped unit. OW Pixel Data of 32- or 64-bit pixel cells swaps
    whole cells, as the readers that wrote the big endian files in circulation
    (and dicomfast's reader) expect, rather than 16-bit halves of a cell."""
    if el.tag == 0x7FE00010 and vr == "OW":
        bits = ds.get("BitsAllocated")  # the value (Dataset.get returns values)
        if bits in (32, 64):
            return bits // 8
    return SWAP_SIZE[vr]


def _value_bytes(ds: Dataset, el: DataElement, enc: _Encoding) -> bytes:
    """An element's value, encoded for `enc` (source bytes reused where they can be)."""
    vr = el.VR
    if el._pos >= 0 and el._ds is ds and ds._index is not None:
        raw = ds._index.value_bytes(el._pos)
        if len(raw) & 1:
            raw += b"\0" if vr in ("OB", "UN", "UI") else b" "
        same_order = bool(el._flags & _EL_BIG_ENDIAN) == (not enc.little)
        if same_order or vr in TEXT_VRS or vr in ("OB", "UN"):
            return raw
        if vr in SWAP_SIZE:
            # Binary values change byte order with the transfer syntax (PS3.5 §7.3).
            return _swapped(raw, _swap_size(ds, el, vr))
    value = el.value
    if value is None:
        return b""
    if type(value) is str and value.isascii():
        return _ascii_value_bytes(vr, value, enc.little)
    encodings = ds._charset() if vr in CHARSET_VRS else ("iso8859",)
    return encode_value(vr, value, enc.little, encodings)


def _ascii_value_bytes(vr: str, value: str, little: bool) -> bytes:
    """encode_value for an ASCII text value, each distinct one encoded once.
    Replacement values repeat from file to file (de-identification dummies, code
    strings, dates); ASCII text encodes the same in every character set DICOM
    allows and raises no warning, so the character set is not part of the key."""
    key = (vr, value, little)
    raw = _ENCODED.get(key)
    if raw is None:
        raw = encode_value(vr, value, little)
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[key] = raw
    return raw


def _ascii_element_bytes(tag: int, vr: str, value: str, enc: _Encoding) -> bytes:
    """A whole element (header and value) of ASCII text or empty, each distinct short
    one encoded once: de-identification writes the same dummies and empty values in
    file after file."""
    key = (tag, vr, value, enc.raw_flags)
    raw = _ELEMENTS.get(key)
    if raw is None:
        # Straight to the encoder: this cache stands in for _ascii_value_bytes' here,
        # and the new UIDs that miss it would only churn that one too.
        raw = encode_value(vr, value, enc.little) if value else b""
        raw = _header(tag, vr, len(raw), enc) + raw
        if len(value) > _ELEMENT_CACHED_CHARS:
            return raw
        if len(_ELEMENTS) >= _ENCODED_MAX:
            _ELEMENTS.clear()
        _ELEMENTS[key] = raw
    return raw


_ENCODED: dict[tuple[str, str, bool], bytes] = {}
_ELEMENTS: dict[tuple[int, str, str, int], bytes] = {}
_ELEMENT_CACHED_CHARS = 64   # a UID's length: longer values are encoded each time
_ENCODED_MAX = 4096
#: VRs whose new values the data set loop writes itself (no sequences, no
#: ambiguous VRs, no encapsulated pixel data).
_PLAIN_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SS ST SV TM UC UI UL "
    "UN UR US UT UV".split())


def _write_element(ds: Dataset, tag: int, v: Any, enc: _Encoding, out: _Out) -> None:
    """Encode one element (`v`: its DataElement, or its index entry when its stored
    bytes cannot be copied as they are; _write_dataset copies those that can)."""
    index = ds._index
    if type(v) is int:
        v = ds[tag]
    el: DataElement = v
    vr = el.VR
    if vr in AMBIGUOUS_VRS:
        vr = vr.split(" or ")[0]
    if vr == "SQ":
        _write_sequence(ds, el, enc, out)
        return
    if el.is_undefined_length and tag == 0x7FE00010:
        # Encapsulated pixel data (PS3.5 §A.4): the value holds the items as stored,
        # little endian as every encapsulated syntax is. Unchanged since it was read,
        # they go out as a view of the source, never copied here.
        if el._pos >= 0 and el._ds is ds and index is not None and el._flags & _EL_FRAGMENTS:
            value = index.value_view(el._pos)
        else:
            value = el.value
        out.add(_header(tag, vr if vr in ("OB", "OW") else "OB", _UNDEFINED, enc))
        out.add(value if isinstance(value, (bytes, memoryview)) else bytes(value))
        out.add(_delim(_SEQ_DELIM, enc))
        return
    if el._pos >= 0 and el._ds is ds and index is not None:
        flags = el._flags
        if (flags & (_EL_IMPLICIT | _EL_BIG_ENDIAN)) == enc.raw_flags and not flags & (
                _EL_TRUNCATED | _EL_SEQUENCE | _EL_FRAGMENTS):
            start, stop = index.extent(el._pos)
            out.copy(index.source, start, stop)
            return
    value = _value_bytes(ds, el, enc)
    out.add(_header(tag, vr, len(value), enc))
    out.add(value)


def _write_sequence(ds: Dataset, el: DataElement, enc: _Encoding, out: _Out) -> None:
    items: Sequence = el.value
    undefined = el.is_undefined_length if enc.undefined_sequences is None else \
        enc.undefined_sequences
    if undefined:
        out.add(_header(el.tag, "SQ", _UNDEFINED, enc))
        for item in items:
            out.add(enc.delimiter(*_ITEM, _UNDEFINED))
            _write_dataset(item, enc, out)
            out.add(_delim(_ITEM_DELIM, enc))
        out.add(_delim(_SEQ_DELIM, enc))
        return
    bodies = []
    for item in items:
        sub = _Out()
        _write_dataset(item, enc, sub)
        bodies.append(sub)
    total = sum(8 + b.total() for b in bodies)
    out.add(_header(el.tag, "SQ", total, enc))
    for b in bodies:
        out.add(enc.delimiter(*_ITEM, b.total()))
        for part in b.parts():
            out.add(part)


def _write_dataset(ds: Dataset, enc: _Encoding, out: _Out) -> None:
    index = ds._index
    if (index is not None and not ds._dirty and enc.undefined_sequences is None
            and index.count and not index.warnings & _REPAIRED
            and index.encoding_flags() == enc.raw_flags and ds._parent is None):
        # Nothing changed since reading, and the encoding is the same: the data
        # set's bytes are the file's bytes.
        start, _ = index.extent(0)
        _, stop = index.extent(index.last_top())
        out.copy(index.source, start, stop)
        return
    elems = ds._map()
    top = ds._parent is None
    # Entries still ints (positions in the index) were never touched since reading:
    # stored in the target's encoding, whole, and (when sequences are to keep their
    # form) of any kind, their bytes are copied here without a call per element
    # (this loop is most of the time a header rewrite takes).
    copy_flags = _EL_IMPLICIT | _EL_BIG_ENDIAN | _EL_TRUNCATED
    if enc.undefined_sequences is not None:
        copy_flags |= _EL_SEQUENCE  # sequences change form: re-encoded
    raw_flags = enc.raw_flags
    tags = sorted(elems)
    if top:  # the File Meta is written separately
        meta_from = bisect.bisect_left(tags, 0x00020000)
        del tags[meta_from:bisect.bisect_left(tags, 0x00030000, meta_from)]
    n = len(tags)
    i = 0
    while i < n:
        if index is not None:
            # Runs of untouched short elements, and new text elements encoded before
            # (_ascii_element_bytes' cache), copied natively; what is left here is
            # other changes, long values (kept as views) and what is re-encoded.
            i = index.copy_stored(tags, i, elems, copy_flags, raw_flags, out.buf, _SMALL_RUN,
                                  _ELEMENTS)
            if i == n:
                break
        tag = tags[i]
        i += 1
        v = elems[tag]
        if type(v) is int:
            if index.flags(v) & copy_flags == raw_flags:
                start, stop = index.extent(v)
                out.copy(index.source, start, stop)
                continue
        elif v._pos < 0 and v.VR in _PLAIN_VRS and not v.is_undefined_length:
            # A value set since reading (what a header rewrite or de-identification
            # mostly leaves): empty, or ASCII text, is written here in one step.
            value = v._value
            if value is None:
                value = ""
            elif type(value) is not str or not value.isascii():
                _write_element(ds, tag, v, enc, out)
                continue
            out.add(_ascii_element_bytes(tag, v.VR, value, enc))
            continue
        _write_element(ds, tag, v, enc, out)


def encode_dataset(ds: Dataset, transfer_syntax_uid: str = EXPLICIT_VR_LITTLE_ENDIAN, *,
                   undefined_length_sequences: bool | None = None) -> bytes:
    """The data set encoded in a transfer syntax (deflated ones deflated), without File Meta.

    `undefined_length_sequences`: True or False to force one form; None keeps
    each sequence's form as read (new sequences: defined length).
    """
    parts = _dataset_parts(ds, transfer_syntax(transfer_syntax_uid), undefined_length_sequences)
    return parts[0] if len(parts) == 1 and type(parts[0]) is bytes else b"".join(parts)


def _dataset_parts(ds: Dataset, ts: TransferSyntax,
                   undefined_length_sequences: bool | None) -> list[Any]:
    """The encoded data set as a list of byte chunks: runs of the source buffer
    (memoryviews, not copies) between newly encoded elements. Writing the chunks
    one by one spares joining a whole file's bytes (pixel data included) first."""
    enc = _Encoding(ts.is_little_endian, ts.is_implicit_vr, undefined_length_sequences)
    out = _Out()
    _write_dataset(ds, enc, out)
    parts = out.parts()
    if ts.is_deflated:
        deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        parts = [deflater.compress(b"".join(parts)) + deflater.flush()]
    return parts


def _file_meta(ds: Dataset, ts: TransferSyntax) -> bytes:
    """File Meta group (PS3.10 §7.1): explicit VR little endian, with its group length."""
    old = ds.file_meta if ds.file_meta is not None else Dataset()
    sop_class = ds.get("SOPClassUID") or old.get("MediaStorageSOPClassUID")
    sop_instance = ds.get("SOPInstanceUID") or old.get("MediaStorageSOPInstanceUID")
    if not sop_class or not sop_instance:
        raise DicomfastError("a Part 10 file needs SOP Class UID and SOP Instance UID "
                             "(0008,0016) and (0008,0018), or File Meta that names them")
    for name, value in (("(0008,0016) SOP Class UID", sop_class),
                        ("(0008,0018) SOP Instance UID", sop_instance)):
        if isinstance(value, (list, tuple)):
            raise DicomfastError(f"{name} has {len(value)} values; the File Meta names one "
                                 "(PS3.10 §7.1: VM 1)")
    extra = {}
    for tag in old._map():
        if tag > 0x00020000 and tag not in _META_OURS:
            el = old[tag]
            if el.value is not None:
                extra[tag] = _meta_element(tag, el.VR, encode_value(el.VR, el.value))
    return file_meta_bytes(str(sop_class), str(sop_instance), ts.uid, extra)


def file_meta_bytes(sop_class: str, sop_instance: str, transfer_syntax_uid: str,
                    extra: dict[int, bytes] | None = None) -> bytes:
    """The File Meta group (PS3.10 §7.1) this writer makes for these UIDs, with its
    group length; `extra`: other (0002,xxxx) elements, encoded."""
    parts = {0x00020001: _META_VERSION,
             0x00020002: _meta_uid(0x00020002, sop_class),
             0x00020003: _meta_uid(0x00020003, sop_instance),
             0x00020010: _meta_uid(0x00020010, transfer_syntax_uid),
             0x00020012: _META_IMPLEMENTATION}  # (0002,0012) and (0002,0013)
    if extra:
        parts.update(extra)
    body = b"".join(parts[tag] for tag in sorted(parts))
    return _header(0x00020000, "UL", 4, _META_ENCODING) + struct.pack("<I", len(body)) + body


def _meta_element(tag: int, vr: str, raw: bytes) -> bytes:
    return _header(tag, vr, len(raw), _META_ENCODING) + raw


def file_meta_uid(tag: int, uid: str) -> bytes:
    """A File Meta UI element as file_meta_bytes writes it."""
    return _meta_uid(tag, uid)


def _meta_uid(tag: int, uid: str) -> bytes:
    raw = _ascii_value_bytes("UI", uid, True) if uid.isascii() else encode_value("UI", uid)
    return _meta_element(tag, "UI", raw)


_META_ENCODING = _Encoding(True, False, False)
#: What every File Meta this writer makes says the same way.
_META_VERSION = _meta_element(0x00020001, "OB", b"\x00\x01")
_META_IMPLEMENTATION = (
    _meta_element(0x00020012, "UI", encode_value("UI", IMPLEMENTATION_CLASS_UID))
    + _meta_element(0x00020013, "SH", encode_value("SH", IMPLEMENTATION_VERSION_NAME)))
_META_OURS = frozenset((0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012,
                        0x00020013))


def _target_syntax(ds: Dataset, transfer_syntax_uid: str | None) -> TransferSyntax:
    if transfer_syntax_uid is None:
        current = getattr(ds, "transfer_syntax", None)
        if current is not None:
            return current
        meta = ds.file_meta
        if meta is not None and "TransferSyntaxUID" in meta:
            return transfer_syntax(str(meta.TransferSyntaxUID))
        return transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN)
    return transfer_syntax(transfer_syntax_uid)


def write(ds: Dataset, target: str | os.PathLike | IO[bytes], **options: Any) -> None:
    """Write `ds` as a DICOM Part 10 file (to a path, atomically, or a binary file
    object); the options are :func:`part10_chunks`'."""
    parts = part10_chunks(ds, **options)
    if hasattr(target, "write"):
        for part in parts:
            target.write(part)  # type: ignore[union-attr]
        return
    write_file(target, parts)


def to_bytes(ds: Dataset, **options: Any) -> bytes:
    """`ds` as the bytes of a DICOM Part 10 file (the options are
    :func:`part10_chunks`'): assembled in one allocation, where a BytesIO would grow
    and copy the pixel data again as it does."""
    return b"".join(part10_chunks(ds, **options))


def part10_chunks(ds: Dataset, *, transfer_syntax: str | None = None,
                  preamble: bytes | None = None,
                  undefined_length_sequences: bool | None = None, threads: int | None = None,
                  allow_lossy: bool = False, offset_table: str | None = None,
                  max_fragment_size: int | None = None,
                  encode_options: Mapping[str, Any] | None = None) -> list[Any]:
    """`ds` as a DICOM Part 10 file, in chunks to write one after the other: new
    bytes, and views of the source's bytes for what is copied as read (the pixel
    data above all), so that nothing large is copied before it is written.

    The preamble is 128 zero bytes unless `preamble` is given: a preamble read
    from a file is never written back on its own (CVE-2019-11687).
    `transfer_syntax` defaults to the one the data set was read in; another one
    transcodes the pixel data (on `threads` threads; lossy targets need
    `allow_lossy=True`) in a copy, leaving `ds` as it is. For compressed pixel
    data, `offset_table` ("basic", "extended" or "none") and `max_fragment_size`
    lay the frames out again (PS3.5 §A.4) without decoding them when the syntax
    stays the same; left at None, the frames are written as they are.
    `encode_options` go to the target's encoder (``{"near": 3}`` for JPEG-LS
    Near-Lossless, ``{"quality": 50}`` or ``{"ratio": 10}`` for JPEG 2000, ...).
    """
    ts = _target_syntax(ds, transfer_syntax)
    if "PixelData" in ds:
        source_ts = getattr(ds, "transfer_syntax", None)
        encapsulated = bool(ds["PixelData"].is_undefined_length)
        if encapsulated != ts.is_encapsulated or (
                encapsulated and source_ts is not None and source_ts.uid != ts.uid):
            transcode = _dataset.extensions.get("transcode")
            if transcode is None:
                raise UnsupportedTransferSyntaxError(
                    f"writing this pixel data as {ts.name} needs dicomfast.transcode")
            ds = transcode(ds, ts.uid, threads=threads, allow_lossy=allow_lossy,
                           offset_table=offset_table, max_fragment_size=max_fragment_size,
                           **(encode_options or {}))
        elif encode_options:
            raise ValueError("encode_options apply when the pixel data is encoded anew, "
                             f"and it stays in {ts.name} here")
        elif encapsulated and (offset_table is not None or max_fragment_size is not None):
            refragment = _dataset.extensions.get("refragment")
            if refragment is None:
                raise UnsupportedTransferSyntaxError(
                    "laying out compressed frames again needs dicomfast.transcode")
            ds = refragment(ds, offset_table=offset_table,
                            max_fragment_size=max_fragment_size)
    if preamble is None:
        preamble = b"\0" * 128
    elif len(preamble) != 128:
        raise ValueError("the preamble is 128 bytes")
    head = preamble + b"DICM" + _file_meta(ds, ts)
    parts = _dataset_parts(ds, ts, undefined_length_sequences)
    if parts and type(parts[0]) is bytes and len(parts[0]) < _SMALL_RUN:
        parts[0] = head + parts[0]  # one write for a small file's whole header
    else:
        parts.insert(0, head)
    return parts


_dataset.extensions["save"] = write
_dataset.extensions["to_bytes"] = to_bytes
