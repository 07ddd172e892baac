"""Reading DICOM Part 10 files and bare datasets (PS3.10 §7, PS3.5 §7).

    preamble (128 bytes) + "DICM"  |  File Meta group 0002 (explicit VR LE)  |  dataset
                                                                              (transfer syntax)
"""

from __future__ import annotations

import os
import warnings
import zlib
from typing import Any

from dicomfast._index import vr_table
from dicomfast._native import _scan
from dicomfast.dataset import Dataset, key_to_tag, top_level_dataset
from dicomfast.errors import (
    EncodingWarning,
    InvalidDicomError,
    MalformedDataError,
    TruncatedDataError,
    UnsupportedTransferSyntaxError,
)
from dicomfast.transfer_syntax import TransferSyntax, transfer_syntax

#: Inflated data sets larger than this many times their compressed size (and
#: than the floor) are refused as deflate bombs unless `max_inflated_size` allows.
_INFLATE_RATIO_LIMIT = 64
_INFLATE_FLOOR = 64 << 20
_INFLATE_CHUNK = 4 << 20

# df_scan_result.warnings bits (df_scan.h)
_WARNINGS = {
    0x01: "fewer than 8 bytes after the last element were ignored (padding, or a file cut short)",
    0x08: "an explicit VR not defined by PS3.5 Table 6.2-1 was read in long form",
    0x10: "the data set is implicit VR although its transfer syntax is explicit VR",
    0x20: "the data set is explicit VR although its transfer syntax is implicit VR",
    0x40: "an undefined-length item or sequence had no delimiter before the end of data",
    0x04: "a stray item or sequence delimiter was skipped",
    0x80: "the data ends inside the last element's value; the value is cut short",
}


try:
    from dicomfast._native import _fileio  # (a package import: the layering linter sees it)

    _read_small_file = _fileio.read_small_file
except ImportError:  # a build without it (e.g. a platform the module does not support)
    def _read_small_file(path: str) -> bytes | None:
        return None


def _read_file(path: str) -> bytes:
    data = _read_small_file(path)  # one native call for the common case
    if data is not None:
        return data
    # Special files, empty or huge ones: os.read on the descriptor, in chunks.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size) if size < 0x7FFF0000 else b""
        if len(data) != size or size == 0:  # a short read, a huge file, or a special file
            chunks = [data]
            while True:
                chunk = os.read(fd, 1 << 26)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def _load(source: Any) -> tuple[Any, str | None]:
    if isinstance(source, str):
        return _read_file(source), source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source, None
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        return _read_file(path), str(path)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return source.read(), name if isinstance(name, str) else None
    try:
        return memoryview(source), None  # mmap and other buffers
    except TypeError:
        raise TypeError(f"cannot read DICOM from {type(source).__name__}") from None


def _warn(bits: int) -> None:
    for bit, text in _WARNINGS.items():
        if bits & bit:
            warnings.warn(text, EncodingWarning, stacklevel=3)


def _inflate(data: Any, offset: int, limit: int | None, strict: bool) -> bytearray:
    """Raw-deflate the dataset after the File Meta (PS3.5 §A.5), with a bomb cap.

    Inflates in chunks into one growing buffer, so a stream that would exceed
    the limit is refused after at most `limit` bytes, never held twice.
    """
    compressed = memoryview(data)[offset:]
    if limit is None:
        limit = max(_INFLATE_FLOOR, _INFLATE_RATIO_LIMIT * len(compressed))
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pending: Any = compressed
    try:
        while True:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            out += chunk
            if len(out) > limit:
                raise MalformedDataError(
                    f"deflated data set inflates past {limit} bytes (deflate bomb?); "
                    "pass max_inflated_size to allow more", offset=offset)
            pending = inflater.unconsumed_tail
            if not pending and (not chunk or inflater.eof):
                break
    except zlib.error as exc:
        raise MalformedDataError(f"deflated data set does not inflate: {exc}",
                                 offset=offset) from None
    if not inflater.eof:
        # The input ended before the final block (RFC 1951 §3.2.3): a cut file.
        if strict:
            raise TruncatedDataError("deflated data set ends before its final block",
                                     offset=offset + len(compressed))
        warnings.warn("the deflated data set ends before its final block; reading what "
                      "inflates", EncodingWarning, stacklevel=3)
    return out


_TS_BY_RAW: dict[bytes, TransferSyntax] = {}


def lookup_transfer_syntax(raw: bytes | None) -> TransferSyntax | None:
    """The transfer syntax named by a raw (0002,0010) value, cached by its bytes (the
    readers of file heads share it: here, ``scan`` and ``split_read``); None for
    no value, UnsupportedTransferSyntaxError for a UID this library does not know."""
    if raw is None:
        return None
    ts = _TS_BY_RAW.get(raw)
    if ts is None:
        uid = raw.decode("ascii", "replace").strip("\0 ")
        if not uid:
            return None
        try:
            ts = transfer_syntax(uid)
        except UnsupportedTransferSyntaxError:
            raise UnsupportedTransferSyntaxError(
                f"unknown transfer syntax {uid!r} in (0002,0010)") from None
        if len(_TS_BY_RAW) < 256:  # the registry is finite; stay bounded anyway
            _TS_BY_RAW[raw] = ts
    return ts


def read(
    source: Any,
    *,
    stop_before_pixels: bool = False,
    specific_tags: list[Any] | None = None,
    strict: bool = False,
    force: bool = False,
    max_depth: int = 64,
    max_inflated_size: int | None = None,
) -> Dataset:
    """Read a DICOM file (a path, a bytes-like object, or a binary file object).

    The file is read into memory once and scanned by the C core; element values
    are decoded only when accessed. `force=True` also reads bare datasets that
    have neither the "DICM" prefix nor a File Meta group. `strict=True` refuses
    what lenient readers tolerate (odd lengths, encoding mismatches, stray
    delimiters, trailing bytes).
    """
    data, filename = _load(source)
    table = vr_table()
    pos, has_preamble, meta_index, ts_raw = _scan.scan_file_meta(data, strict, table)
    # The 128-byte preamble is there when "DICM" is at 128 (some writers put it at 0).
    start = 132 if has_preamble and data[128:132] == b"DICM" else 0
    meta: Dataset | None = None
    ts: TransferSyntax | None = None
    if meta_index is not None:
        meta = top_level_dataset(meta_index, strict)
        if meta_index.warnings:
            _warn(meta_index.warnings)
        ts = lookup_transfer_syntax(ts_raw)
        if ts is None and strict:
            raise InvalidDicomError("File Meta has no (0002,0010) Transfer Syntax UID")
    elif not has_preamble and not force:
        raise InvalidDicomError(
            "no 'DICM' prefix and no File Meta group: not a DICOM Part 10 file "
            "(pass force=True to read a bare data set)")
    elif has_preamble and strict:
        raise InvalidDicomError("'DICM' prefix without a File Meta group")

    buffer, base = data, pos
    if ts is None:
        # No transfer syntax: the scanner decides from the first element.
        little, explicit = True, True
    else:
        little, explicit = ts.is_little_endian, not ts.is_implicit_vr
        if ts.is_deflated:
            buffer, base = _inflate(data, pos, max_inflated_size, strict), 0
    index = _scan.scan(buffer, start=base, little_endian=little, explicit_vr=explicit,
                       strict=strict, max_depth=max_depth,
                       stop_before_pixels=stop_before_pixels, table=table)
    warned = index.warnings
    if warned & 0x10:
        explicit = False
    elif warned & 0x20:
        explicit = True
    if ts is None:
        # No transfer syntax to contradict: guessing the encoding is the method,
        # not an oddity. A cut or a stray delimiter is still worth saying.
        warned &= ~0x30
    if warned:
        _warn(warned)
    ds = top_level_dataset(index, strict)
    if specific_tags is not None:
        keep = {key_to_tag(t) for t in specific_tags} | {0x00080005}
        elems = ds._map()
        for tag in [t for t in elems if t not in keep]:
            del elems[tag]
        ds._changed()
    d = ds.__dict__
    d["file_meta"] = meta
    if has_preamble and start == 132:
        d["preamble"] = bytes(data[:128]) if type(data) is not bytes else data[:128]
    d["filename"] = filename
    d["is_little_endian"] = little
    d["is_implicit_VR"] = not explicit
    d["transfer_syntax"] = ts
    return ds

dcmread = read
