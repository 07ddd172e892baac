"""Scan many DICOM files into a table: one row per file, the requested tags as columns.

    >>> from dicomfast.scan import scan
    >>> table = scan("/data/ct", tags=["PatientID", "StudyInstanceUID", "Modality"])
    >>> table.to_parquet("index.parquet")

Each worker thread reads a file with ``os.read`` and hands the bytes to the C
scanner (both release the GIL), then decodes only the requested values from
the element index, through a cache of values already seen, with the rules of
:func:`dicomfast.values.decode_value`: what ``ds.<keyword>`` gives, as a plain
column type. No Dataset is built unless an element needs one (an ambiguous VR
such as "US or SS", a sequence); deflated files are read by :func:`dicomfast.read`.
With ``stop_before_pixels`` only the head of a large file is read, and the rest
only when its header is longer than that.

Results are columnar. :func:`iter_scan` yields them in batches, so a scan of any
number of files runs in flat memory; :func:`write_parquet` and :func:`write_csv`
write such a stream as it comes.
"""

from __future__ import annotations

import csv
import os
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dicomfast._index import vr_table
from dicomfast._native import _scan
from dicomfast.charset import python_encodings
from dicomfast.dataset import Sequence, top_level_dataset
from dicomfast.dictionary import dictionary_entry
from dicomfast.errors import InvalidDicomError
from dicomfast.part10 import _TS_BY_RAW, read
from dicomfast.part10 import lookup_transfer_syntax as _transfer_syntax
from dicomfast.tag import Tag, tag_to_str
from dicomfast.transfer_syntax import TransferSyntax
from dicomfast.values import decode_value
from dicomfast.vr import CHARSET_VRS

__all__ = ["ScanResult", "iter_paths", "iter_scan", "scan", "write_csv", "write_parquet"]

#: The columns every result has, before the requested tags ...
FILE_COLUMNS = ("path", "file_size", "transfer_syntax_uid", "sop_class_uid")
#: ... and after them: the exception's class name and message for files that failed.
ERROR_COLUMNS = ("error_type", "error")

# df_element.flags (df_scan.h)
_EL_SEQUENCE = 0x0002
_EL_FRAGMENTS = 0x0008
_EL_BIG_ENDIAN = 0x0040
_EL_COMPLEX = _EL_SEQUENCE | _EL_FRAGMENTS
_EL_NOT_PLAIN = _EL_COMPLEX | _EL_BIG_ENDIAN

_SOP_CLASS_UID = 0x00080016
_MEDIA_SOP_CLASS_UID = 0x00020002
_SPECIFIC_CHARACTER_SET = 0x00080005

#: With stop_before_pixels, the bytes read first: the header of most files fits,
#: so a 500 MB CT series costs 16 KiB a file, and a small buffer is also quicker to
#: allocate than a large one. A longer header (or a file without pixel data) is
#: read again, up to _LONG_HEAD bytes, then whole.
_HEAD_BYTES = 16 << 10
_LONG_HEAD = 1 << 20
#: Files handed to a worker at a time: large enough that the pool's per-task
#: cost vanishes, small enough that progress and batches stay smooth.
_CHUNK = 128
#: The reads and the C scan run without the GIL, the value decoding with it, so
#: from page cache a few threads are all that help; slow storage (network file
#: systems) may want more, which `threads=` gives.
_MAX_DEFAULT_THREADS = 8
_DEFAULT_ENCODINGS = python_encodings(None)
_ON_ERROR = ("record", "raise", "skip")
_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_CACHE_SIZE = 4096

_INT_VRS = frozenset(["IS", "SL", "SS", "SV", "UL", "US", "UV", "AT", "US or SS"])
_FLOAT_VRS = frozenset(["DS", "FD", "FL"])
_BYTES_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW",
                        "US or OW", "US or SS or OW"])
#: VRs whose value decode_value gives as Dataset does; the others (UN, ambiguous
#: and unknown VRs, SQ) are left to a Dataset.
_SIMPLE_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SS ST SV TM UC UI "
    "UL UR US UT UV".split())


# -- fast decoders ------------------------------------------------------------------------
# Each turns the usual form of a value of one VR straight into the column's type,
# giving what decode_value followed by _coerce gives (PS3.5 Table 6.2-1 padding
# rules), and raises ValueError for anything else (several values where the
# column holds one, NUL padding of numbers, non-ASCII text, ISO 2022 escapes),
# which then takes the general path.

def _no_fast(raw: bytes) -> Any:
    raise ValueError


def _fast_ui(raw: bytes) -> str:
    s = raw.decode("latin-1").rstrip("\x00 ")
    if "\\" in s:
        raise ValueError
    return s.strip()


def _fast_default(raw: bytes) -> str:
    # AS CS DA DT TM: several values come back joined, as _coerce joins them.
    return raw.decode("latin-1").rstrip(" \x00")


def _fast_default_multi(raw: bytes) -> list[str]:
    s = raw.decode("latin-1").rstrip(" \x00")
    return s.split("\\") if s else []


def _fast_text(raw: bytes) -> str:
    # SH LO UC: an ASCII value in an ASCII-compatible character set.
    if not raw.isascii() or b"\x1b" in raw or b"\\" in raw:
        raise ValueError
    return raw.decode("ascii").rstrip("\x00 ")


def _fast_long_text(raw: bytes) -> str:
    # LT ST UT: never split.
    if not raw.isascii() or b"\x1b" in raw:
        raise ValueError
    return raw.decode("ascii").rstrip("\x00 ")


def _fast_pn(raw: bytes) -> str:
    if not raw.isascii() or b"\x1b" in raw or b"\\" in raw:
        raise ValueError
    return raw.rstrip(b"\x00 ").decode("ascii").rstrip("=")


def _fast_number_multi(number: Any) -> Any:
    def decode(raw: bytes) -> list[Any]:
        return [number(x) for x in raw.split(b"\\")]  # an empty value raises
    return decode


def _fast_binary(size: int, signed: bool) -> Any:
    def decode(raw: bytes) -> int:
        if len(raw) != size:
            raise ValueError
        return int.from_bytes(raw, "little", signed=signed)
    return decode


def _fast_float(code: str) -> Any:
    unpack = struct.Struct(code).unpack

    def decode(raw: bytes) -> float:
        try:
            return unpack(raw)[0]
        except struct.error:
            raise ValueError from None
    return decode


_FAST: dict[tuple[str, bool], Any] = {
    ("UI", False): _fast_ui,
    ("IS", False): int,     # int(b" 12 ") == 12; NUL padding or "1.0" raise
    ("DS", False): float,
    ("IS", True): _fast_number_multi(int),
    ("DS", True): _fast_number_multi(float),
    ("US", False): _fast_binary(2, False),
    ("SS", False): _fast_binary(2, True),
    ("UL", False): _fast_binary(4, False),
    ("SL", False): _fast_binary(4, True),
    ("FL", False): _fast_float("<f"),
    ("FD", False): _fast_float("<d"),
    ("SH", False): _fast_text,
    ("LO", False): _fast_text,
    ("UC", False): _fast_text,
    ("LT", False): _fast_long_text,
    ("ST", False): _fast_long_text,
    ("UT", False): _fast_long_text,
    ("PN", False): _fast_pn,
}
for _vr in ("AS", "CS", "DA", "DT", "TM"):
    _FAST[(_vr, False)] = _fast_default
    _FAST[(_vr, True)] = _fast_default_multi

_ASCII = bytes(range(128))


def _ascii_compatible(encodings: tuple[str, ...]) -> bool:
    """Whether text without escape sequences decodes as ASCII in the first character set
    (it is the one decode_text uses then)."""
    try:
        return _ASCII.decode(encodings[0]) == _ASCII.decode("ascii")
    except (LookupError, UnicodeError, IndexError):
        return False


class _Column:
    """A requested tag: its column name, and the value type the dictionary gives it.

    ``kind`` is 'str', 'int', 'float', 'bytes' or 'text' (a tag the dictionary does
    not know, whose values are written as text); ``multi`` when the dictionary VM
    allows several values, which makes every value of the column a list.
    """

    __slots__ = ("name", "tag", "vr", "kind", "multi", "cache", "caches", "fast")

    def __init__(self, key: Any):
        tag = int(Tag(key))
        entry = dictionary_entry(tag)
        if entry is not None and entry.vr == "SQ":
            raise ValueError(f"{tag_to_str(tag)} {entry.keyword} is a sequence; a scan "
                             "column holds one value per file")
        self.tag = tag
        self.name = entry.keyword if entry is not None and entry.keyword else tag_to_str(tag)
        self.vr = entry.vr if entry is not None else ""
        if entry is None or entry.vr == "NONE":
            self.kind, self.multi = "text", False
        else:
            vr = entry.vr
            self.kind = ("int" if vr in _INT_VRS else "float" if vr in _FLOAT_VRS
                         else "bytes" if vr in _BYTES_VRS else "str")
            self.multi = entry.vm != "1" and self.kind != "bytes"
        # Decoded values by their raw bytes: Modality, dates, study and series
        # UIDs repeat from file to file, and a dict lookup is cheaper than decoding.
        self.cache: dict[bytes, Any] = {}
        # ... and for text VRs, per character set other than the default.
        self.caches: dict[tuple[str, ...], dict[bytes, Any]] = {}
        # A decoder for the usual value of this VR, straight to the column's type.
        self.fast = _FAST.get((self.vr, self.multi), _no_fast)


# -- value coercion: the column's type whatever the file held -----------------------------

def _item(kind: str, v: Any) -> Any:
    if v is None:
        return None
    if kind == "str":
        return v if type(v) is str else (str.__str__(v) if isinstance(v, str) else None)
    if kind == "int":
        return int(v) if isinstance(v, int) else None
    if kind == "float":
        return float(v) if isinstance(v, (int, float)) else None
    if kind == "bytes":
        return bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else None
    # text: a tag the dictionary does not know
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    return str.__str__(v) if isinstance(v, str) else str(v)


def _coerce(col: _Column, v: Any) -> Any:
    """A decoded value (as ``ds.<keyword>`` gives it) as the column's plain type.

    PersonName becomes str, DSfloat float, IS int, MultiValue a list; a value the
    type cannot hold (text in a numeric column, a sequence) becomes None.
    """
    kind = col.kind
    if isinstance(v, list):
        if type(v) is Sequence:
            return None
        if col.multi:
            return [_item(kind, x) for x in v]
        if kind in ("str", "text"):
            # A single-valued element that holds several: keep them as DICOM writes them.
            return "\\".join(str(x) for x in v)
        return None
    if v is None:
        return None
    if col.multi:
        if v == "" and kind == "str":
            return []
        return [_item(kind, v)]
    return _item(kind, v)


# -- one file ----------------------------------------------------------------------------

_ALL_BYTES = 1 << 62
_READ_BATCH = 32  # files whose heads one native call reads
_read_heads_native: Any = None
try:
    from dicomfast._native import _fileio  # (a package import: the layering linter sees it)

    _read_head_native = _fileio.read_head
    _read_heads_native = _fileio.read_heads
except ImportError:  # a build without it
    def _read_head_native(path: str, limit: int) -> tuple[bytes, int] | None:
        return None


def _read_head(path: str, limit: int | None) -> tuple[bytes, int]:
    """(the first `limit` bytes, or all with None; the file size)."""
    fd = os.open(path, _O_FLAGS)
    try:
        if limit is not None:
            data = os.read(fd, limit)
            return data, len(data) if len(data) < limit else os.fstat(fd).st_size
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 26)
            if not chunk:
                data = b"".join(chunks) if len(chunks) != 1 else chunks[0]
                return data, len(data)
            chunks.append(chunk)
    finally:
        os.close(fd)


_SOP_CLASSES: dict[bytes, Any] = {}
#: Stands in for the File Meta of a file that has none.
_NO_ELEMENTS = _scan.scan(b"")


_Plans = dict[bytes, tuple[Any, ...]]


class _FileScanner:
    """Reads files and appends their rows to column lists; shared by the worker threads.

    The hot path is plain Python around a few C calls per file (one for all its tags);
    it keeps to local names, bound methods and caches of decoded values, since that
    Python, not the C scanner, is most of the cost of a small file.
    """

    def __init__(self, columns: list[_Column], stop_before_pixels: bool, force: bool):
        self.columns = columns
        self.stop_before_pixels = stop_before_pixels
        self.force = force
        self.table = vr_table()
        self.charsets: dict[bytes, tuple[str, ...]] = {}
        self.need_charset = any(c.vr in CHARSET_VRS for c in columns)
        # What one top_plain call fetches from each data set: SOP Class UID,
        # Specific Character Set, then the data set columns in plan order.
        self.data_tags = [_SOP_CLASS_UID, _SPECIFIC_CHARACTER_SET] + [
            c.tag for c in columns if c.tag >> 16 != 2]
        # With each tag, the VR whose plain values come back as bare bytes (the
        # column's own; 0: none), so the usual value needs no tuple (_scan.top_plain).
        self.data_codes = [_vr_code("UI"), _vr_code("CS")] + [
            _plain_code(c.vr) for c in columns if c.tag >> 16 != 2]

    def plan(self, out: list[list[Any]], charset: bytes) -> tuple[Any, ...]:
        """(encodings, File Meta plan, data set plan) for files whose (0008,0005) value
        is `charset`. A plan is a list of (tag, VR, cache, multi, column, append): a value
        of that VR, little endian, is decoded through that cache of the column's values
        in this character set.
        """
        encodings = self._encodings(charset) if charset else _DEFAULT_ENCODINGS
        ascii_text = _ascii_compatible(encodings)
        plans: list[list[Any]] = [[], []]
        for k, c in enumerate(self.columns, len(FILE_COLUMNS)):
            cache, fast = c.cache, c.fast
            if c.vr in CHARSET_VRS:
                if encodings is not _DEFAULT_ENCODINGS:
                    cache = c.caches.setdefault(encodings, {})
                if not ascii_text:
                    fast = _no_fast  # the fast text decoders read ASCII only
            # Only a value of the column's own, plain VR goes through the cache; an
            # ambiguous one ("US or SS") never matches and is resolved by a Dataset.
            cache_vr = c.vr if c.vr in _SIMPLE_VRS else None
            plans[c.tag >> 16 != 2].append(
                (c.tag, cache_vr, cache, c.multi, (c, fast), out[k].append))
        return (encodings, plans[0], plans[1], [p[0] for p in plans[0]],
                [_plain_code(p[1]) for p in plans[0]])

    def scan(self, path: str, out: list[list[Any]], plans: _Plans, head: Any = None) -> int:
        """Append one row (all but the error columns) to `out`; return the file size.

        `head`: what :func:`_fileio.read_heads` gave for this file, when the caller
        read a batch. On an exception the caller trims the columns back to its row
        count.
        """
        if isinstance(head, OSError):
            raise head
        if head is None:
            # One native call (open, fstat, read, close) for the regular files that
            # are almost all of a scan; os calls for the others.
            head = _read_head_native(path,
                                     _HEAD_BYTES if self.stop_before_pixels else _ALL_BYTES)
        if head is not None:
            data, size = head
        else:
            fd = os.open(path, _O_FLAGS)
            try:
                if self.stop_before_pixels:
                    data = os.read(fd, _HEAD_BYTES)
                    # A short read is the whole file: no fstat needed.
                    size = len(data) if len(data) < _HEAD_BYTES else os.fstat(fd).st_size
                else:
                    size = os.fstat(fd).st_size
                    data = os.read(fd, size) if size < 0x7FFF0000 else b""
            finally:
                os.close(fd)
        while len(data) != size:
            n = len(out[0])
            try:
                if self._parse(path, data, size, True, out, plans):
                    return size
            except Exception:
                pass  # the rest of the file may explain it: read more
            for column in out[:-2]:
                del column[n:]
            # The head was not enough (a long header, no pixel data, deflated): read
            # a longer one, then all of it.
            longer = max(len(data), _HEAD_BYTES) * 64
            data, size = _read_head(path, longer if longer <= _LONG_HEAD else None)
        self._parse(path, data, size, False, out, plans)
        return size

    def _parse(self, path: str, data: bytes, size: int, partial: bool, out: list[list[Any]],
               plans: _Plans) -> bool:
        """Append the row of `data`; False (nothing appended) when `data`, the head of
        a longer file, does not hold the whole header."""
        table = self.table
        pos, has_preamble, meta, ts_raw = _scan.scan_file_meta(data, False, table)
        if meta is None:
            if not has_preamble and not self.force:
                raise InvalidDicomError(
                    "no 'DICM' prefix and no File Meta group: not a DICOM Part 10 file")
            meta = _NO_ELEMENTS
        ts = _TS_BY_RAW.get(ts_raw) if ts_raw is not None else None
        if ts is None:
            ts = _transfer_syntax(ts_raw)
        if ts is None:
            # No transfer syntax: the scanner decides from the first element, as read() does.
            little, explicit = True, True
        elif ts.is_deflated:
            # PS3.5 §A.5: rare; read() inflates with its deflate-bomb limits.
            if partial:
                return False
            ds = read(data, stop_before_pixels=self.stop_before_pixels, force=self.force)
            self._append_dataset(path, size, ts, ds.file_meta, ds, out)
            return True
        else:
            little, explicit = ts.is_little_endian, not ts.is_implicit_vr
        index = _scan.scan(data, start=pos, little_endian=little, explicit_vr=explicit,
                           stop_before_pixels=self.stop_before_pixels, table=table)
        if partial and len(data) - pos - index.bytes_used < 8:
            # The scan ran to the end of the head instead of stopping at Pixel Data.
            return False

        out[0].append(path)
        out[1].append(size)
        out[2].append(ts.uid if ts is not None else None)
        # One call for the data set's values: SOP Class, Specific Character Set and
        # the columns' (in the plans' order).
        mask = _EL_NOT_PLAIN
        sop_class, charset_value, *data_values = index.top_plain(self.data_tags,
                                                                 self.data_codes, mask)
        if sop_class is None:
            p = meta.find_top(_MEDIA_SOP_CLASS_UID)
            sop_class = meta.value_bytes(p) if p >= 0 else None
        if sop_class is None:
            out[3].append(None)
        else:
            raw = sop_class if type(sop_class) is bytes else sop_class[2]
            uid = _SOP_CLASSES.get(raw)
            if uid is None:
                uid = decode_value("UI", raw)
                if len(_SOP_CLASSES) < _CACHE_SIZE:
                    _SOP_CLASSES[raw] = uid
            out[3].append(uid)

        charset = b""
        if self.need_charset and charset_value is not None:
            charset = charset_value if type(charset_value) is bytes else charset_value[2]
        chosen = plans.get(charset)
        if chosen is None:
            chosen = plans[charset] = self.plan(out, charset)
        encodings = chosen[0]
        meta_values = meta.top_plain(chosen[3], chosen[4], mask) if chosen[1] else ()
        for idx, plan, values in ((meta, chosen[1], meta_values),
                                  (index, chosen[2], data_values)):
            if not plan:
                continue
            for (tag, cache_vr, cache, multi, decoder, append), found in zip(
                    plan, values, strict=True):
                if type(found) is bytes:
                    # The usual case: the column's own VR, little endian, not a
                    # sequence; the value may have been seen before.
                    v = cache.get(found, cache)
                    if v is cache:
                        v = _cache_miss(decoder, cache_vr, found, encodings, cache)
                    elif multi and v is not None:
                        v = list(v)  # the cache holds tuples: rows get their own lists
                    append(v)
                elif found is None:
                    append(None)
                else:
                    vr, flags, _raw = found
                    col = decoder[0]
                    q = idx.find_top(tag)
                    append(_coerce(col, _value(idx, q, tag, vr, flags, col.vr, encodings)))
        return True

    def _append_dataset(self, path: str, size: int, ts: TransferSyntax, meta: Any, ds: Any,
                        out: list[list[Any]]) -> None:
        """Append the row of a file read as a Dataset."""
        sop = ds.get(_SOP_CLASS_UID)
        if sop is None and meta is not None:
            sop = meta.get(_MEDIA_SOP_CLASS_UID)
        out[0].append(path)
        out[1].append(size)
        out[2].append(ts.uid)
        out[3].append(None if sop is None else str(sop.value))
        for k, col in enumerate(self.columns, len(FILE_COLUMNS)):
            source = meta if col.tag >> 16 == 2 else ds
            el = source.get(col.tag) if source is not None else None
            out[k].append(None if el is None else _coerce(col, el.value))

    def _encodings(self, raw: bytes) -> tuple[str, ...]:
        enc = self.charsets.get(raw)
        if enc is None:
            enc = python_encodings(decode_value("CS", raw))
            if enc == _DEFAULT_ENCODINGS:
                enc = _DEFAULT_ENCODINGS  # so that `is` tells the default
            if len(self.charsets) < 256:
                self.charsets[raw] = enc
        return enc


def _vr_code(vr: str) -> int:
    """A VR as the C core stores it: two ASCII letters, the first in the high byte."""
    return ord(vr[0]) << 8 | ord(vr[1])


def _plain_code(vr: str | None) -> int:
    return _vr_code(vr) if vr in _SIMPLE_VRS else 0


def _cache_miss(decoder: tuple[_Column, Any], vr: str, raw: bytes,
                encodings: tuple[str, ...], cache: dict[bytes, Any]) -> Any:
    col, fast = decoder
    try:
        v = fast(raw)
    except ValueError:  # not the usual form: decode as Dataset does
        v = _coerce(col, decode_value(vr, raw, True, encodings))
    if len(cache) >= _CACHE_SIZE:
        cache.clear()  # bounded; CPython dict operations are atomic
    cache[raw] = tuple(v) if col.multi and v is not None else v
    return v


def _value(idx: Any, q: int, tag: int, vr: str, flags: int, dict_vr: str,
           encodings: tuple[str, ...]) -> Any:
    """The value of entry `q` when it is not the plain case: as Dataset decodes it."""
    if vr in _SIMPLE_VRS and not flags & _EL_COMPLEX:
        return decode_value(vr, idx.value_bytes(q), not flags & _EL_BIG_ENDIAN, encodings)
    if (vr == "UN" and dict_vr in _SIMPLE_VRS and not flags & _EL_COMPLEX
            and idx.length(q) < 0xFFFF):
        # PS3.5 §6.2.2: a public element written as UN has its dictionary VR.
        return decode_value(dict_vr, idx.value_bytes(q), not flags & _EL_BIG_ENDIAN,
                            encodings)
    # The Dataset resolves the rest (PS3.6 "US or SS", UN sequences, SQ).
    return top_level_dataset(idx, False)[tag].value


# -- the result --------------------------------------------------------------------------

class ScanResult:
    """Columns of a scan: one row per file.

    ``path``, ``file_size``, ``transfer_syntax_uid``, ``sop_class_uid``, one column
    per requested tag (named by its keyword, or ``(GGGG,EEEE)``), ``error_type`` and
    ``error``. Tag values are plain Python objects of the column's type: str
    (PersonName included), int (IS, US, ...), float (DS, FD, FL), bytes, or a list of
    these where the dictionary allows several values; None where the file has no
    such element or failed.
    """

    def __init__(self, columns: list[_Column], data: list[list[Any]]):
        self._spec = columns
        self._data = data
        self.column_names: tuple[str, ...] = (*FILE_COLUMNS, *(c.name for c in columns),
                                              *ERROR_COLUMNS)

    @classmethod
    def _empty(cls, columns: list[_Column]) -> ScanResult:
        return cls(columns, [[] for _ in range(len(FILE_COLUMNS) + len(columns) + 2)])

    def _extend(self, other: ScanResult) -> None:
        for mine, theirs in zip(self._data, other._data, strict=True):
            mine.extend(theirs)

    def __len__(self) -> int:
        return len(self._data[0])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.column_names
        for values in zip(*self._data, strict=True):
            yield dict(zip(names, values, strict=True))

    def __repr__(self) -> str:
        return (f"<ScanResult: {len(self)} file(s), {self.n_errors} failed; "
                f"columns {', '.join(self.column_names)}>")

    def column(self, name: str) -> list[Any]:
        """The values of one column (a keyword, a tag as for ``Tag()``, or a file column)."""
        try:
            return self._data[self.column_names.index(name)]
        except ValueError:
            pass
        try:
            tag = int(Tag(name))
        except (TypeError, ValueError):
            tag = None
        for k, col in enumerate(self._spec):
            if col.tag == tag:
                return self._data[len(FILE_COLUMNS) + k]
        raise KeyError(f"no column {name!r}; the columns are {', '.join(self.column_names)}")

    @property
    def n_errors(self) -> int:
        return sum(e is not None for e in self._data[-2])

    def errors(self) -> list[tuple[str, str, str]]:
        """(path, error type, message) of every file that failed."""
        paths, types, messages = self._data[0], self._data[-2], self._data[-1]
        return [(p, t, m) for p, t, m in zip(paths, types, messages, strict=True) if t is not None]

    # -- conversions ----------------------------------------------------------------
    def arrow_schema(self) -> Any:
        """The pyarrow schema of :meth:`to_arrow`; it depends on the tags only, so every
        batch of one scan has the same one."""
        pa = _pyarrow()
        types = {"str": pa.string(), "text": pa.string(), "int": pa.int64(),
                 "float": pa.float64(), "bytes": pa.binary()}
        fields = [pa.field("path", pa.string()), pa.field("file_size", pa.int64()),
                  pa.field("transfer_syntax_uid", pa.string()),
                  pa.field("sop_class_uid", pa.string())]
        for col in self._spec:
            t = types[col.kind]
            if col.kind == "int" and col.vr == "UV":
                t = pa.uint64()
            fields.append(pa.field(col.name, pa.list_(t) if col.multi else t))
        fields += [pa.field("error_type", pa.string()), pa.field("error", pa.string())]
        return pa.schema(fields)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` (needs pyarrow: ``pip install 'dicomfast[arrow]'``)."""
        pa = _pyarrow()
        schema = self.arrow_schema()
        arrays = [pa.array(values, type=field.type)
                  for values, field in zip(self._data, schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=schema)

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (needs pandas: ``pip install 'dicomfast[pandas]'``).

        Integer columns are nullable ``Int64``, float columns ``float64``; text,
        bytes and list columns hold Python objects.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("ScanResult.to_pandas needs pandas: pip install "
                              "'dicomfast[pandas]'") from None
        dtypes = {"file_size": "Int64"}
        for col in self._spec:
            if not col.multi and col.kind in ("int", "float"):
                dtypes[col.name] = "Int64" if col.kind == "int" else "float64"
        frame = {name: pd.Series(values, dtype=dtypes.get(name, object))
                 for name, values in zip(self.column_names, self._data, strict=True)}
        return pd.DataFrame(frame, columns=list(self.column_names))

    def to_parquet(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write as a Parquet file (needs pyarrow); `options` go to ``ParquetWriter``."""
        write_parquet([self], path, **options)

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write as CSV; lists are joined with backslashes, bytes written as hex."""
        write_csv([self], path)


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ImportError("Arrow and Parquet output need pyarrow: pip install "
                          "'dicomfast[arrow]'") from None
    return pyarrow


def write_parquet(batches: Iterable[ScanResult], path: str | os.PathLike[str],
                  **options: Any) -> int:
    """Write scan batches (e.g. from :func:`iter_scan`) to one Parquet file as they
    come, one row group per batch; returns the number of rows."""
    _pyarrow()
    import pyarrow.parquet as pq

    writer = None
    rows = 0
    try:
        for batch in batches:
            table = batch.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(os.fspath(path), table.schema, **options)
            if len(batch):
                writer.write_table(table)
            rows += len(batch)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list):
        return "\\".join(str(_csv_cell(x)) for x in v)
    if isinstance(v, bytes):
        return v.hex()
    return v


def write_csv(batches: Iterable[ScanResult], path: str | os.PathLike[str]) -> int:
    """Write scan batches to one CSV file as they come; returns the number of rows.

    Missing values are empty cells, lists are joined with backslashes (as DICOM
    writes several values), bytes are written as hex.
    """
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header = False
        for batch in batches:
            if not header:
                writer.writerow(batch.column_names)
                header = True
            writer.writerows([_csv_cell(v) for v in row] for row in zip(*batch._data, strict=True))
            rows += len(batch)
    return rows


# -- walking and threading ---------------------------------------------------------------

def iter_paths(paths_or_dirs: Any, recursive: bool = True) -> Iterator[str]:
    """Files under the given files and folders, in path order (each folder's entries
    sorted by name, subfolders where their names fall).

    A path that is not a folder is yielded as it is (it may fail to read later);
    symbolic links to folders are not followed, so a link cycle cannot loop.
    """
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    for item in paths_or_dirs:
        top = os.fspath(item)
        if not os.path.isdir(top):
            yield top
            continue
        stack = [_sorted_entries(top)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
            elif isinstance(entry, str):
                yield entry  # a folder that could not be listed: an error row
            else:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if recursive:
                            stack.append(_sorted_entries(entry.path))
                        continue
                    if not entry.is_file():
                        continue  # sockets, FIFOs, devices, dangling links
                except OSError:
                    pass
                yield entry.path


def _sorted_entries(folder: str) -> Iterator[Any]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return iter([folder])
    return iter(entries)


def _scan_chunk(scanner: _FileScanner, paths: list[str], on_error: str,
                n_columns: int) -> tuple[list[list[Any]], int, int]:
    """Columns for a list of files; (columns, bytes read, files failed)."""
    out: list[list[Any]] = [[] for _ in range(n_columns)]
    plans: _Plans = {}  # made per character set as files need them
    empty = [None] * (n_columns - 2 - len(ERROR_COLUMNS))
    total = 0
    # (error type, message) by row. Not the exception: its traceback holds this
    # frame, which holds the dict, a cycle that would keep each failed file's bytes
    # alive until a full garbage collection, so memory would grow with the errors.
    failures: dict[int, tuple[str, str]] = {}
    scan_one = scanner.scan
    rows = out[0]
    # Heads are read a batch at a time, the batch's system calls in one stretch
    # without the GIL: other threads parse while this one reads, and the GIL
    # changes hands once a batch rather than once a file.
    heads: list[Any] = []
    batched = scanner.stop_before_pixels and _read_heads_native is not None
    for j, path in enumerate(paths):
        if batched and j % _READ_BATCH == 0:
            heads = _read_heads_native(paths[j:j + _READ_BATCH], _HEAD_BYTES)
        n = len(rows)
        try:
            total += scan_one(path, out, plans, heads[j % _READ_BATCH] if batched else None)
        except Exception as exc:
            if on_error == "raise":
                raise
            # Undo a partly appended row, then record the failure.
            for column in out[:-2]:
                del column[n:]
            if on_error == "skip":
                continue
            try:
                size: int | None = os.stat(path).st_size
            except OSError:
                size = None
            out[0].append(path)
            out[1].append(size)
            for k, v in enumerate(empty, 2):
                out[k].append(v)
            failures[n] = (type(exc).__name__, str(exc))
    # The error columns are filled last: nothing to append for the files that worked.
    out[-2] = [None] * len(rows)
    out[-1] = [None] * len(rows)
    for n, (error_type, message) in failures.items():
        out[-2][n] = error_type
        out[-1][n] = message
    return out, total, len(failures)


def _chunks(paths: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for p in paths:
        chunk.append(p)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def iter_scan(
    paths_or_dirs: Any,
    tags: Iterable[Any] = (),
    *,
    recursive: bool = True,
    threads: int | None = None,
    stop_before_pixels: bool = True,
    on_error: str = "record",
    batch_size: int = 8192,
    force: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> Iterator[ScanResult]:
    """Scan files and folders; yield :class:`ScanResult` batches of `batch_size` rows.

    Rows come in the order of the paths (folders walked in name order). Files are
    read and scanned on `threads` threads (default: the CPU count, at most 8; 0 or 1
    scans in this thread); at most a few chunks of rows are held at once, so memory
    does not grow with the number of files.

    `on_error`: ``"record"`` (default) gives a failed file a row with ``error_type``
    and ``error`` set; ``"raise"`` raises the first failure; ``"skip"`` leaves it
    out. `force` reads files without a ``DICM`` prefix or File Meta as bare data
    sets. `progress(files, bytes, failed)` is called, in this thread, after each
    chunk of files with the totals so far.
    """
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error is one of {', '.join(_ON_ERROR)}, not {on_error!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    columns: list[_Column] = []
    for key in tags:
        col = _Column(key)
        if all(c.tag != col.tag for c in columns):
            columns.append(col)
    scanner = _FileScanner(columns, stop_before_pixels, force)
    n_columns = len(FILE_COLUMNS) + len(columns) + len(ERROR_COLUMNS)
    n_threads = min(os.cpu_count() or 1, _MAX_DEFAULT_THREADS) if threads is None else threads
    chunks = _chunks(iter_paths(paths_or_dirs, recursive), min(_CHUNK, batch_size))
    done = nbytes = nfailed = 0
    batch = ScanResult._empty(columns)

    def results() -> Iterator[tuple[list[list[Any]], int, int]]:
        if n_threads <= 1:
            for chunk in chunks:
                yield _scan_chunk(scanner, chunk, on_error, n_columns)
            return
        with ThreadPoolExecutor(max_workers=n_threads,
                                thread_name_prefix="dicomfast-scan") as pool:
            pending: deque[Future[tuple[list[list[Any]], int, int]]] = deque()
            try:
                for chunk in chunks:
                    pending.append(pool.submit(_scan_chunk, scanner, chunk, on_error,
                                               n_columns))
                    # A bounded window of chunks in flight keeps memory flat.
                    if len(pending) >= 2 * n_threads:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    for data, size, failed in results():
        done += len(data[0])
        nbytes += size
        nfailed += failed
        part = ScanResult(columns, data)
        if len(batch) + len(part) <= batch_size:
            batch._extend(part)
        else:
            # Split so that every batch but the last has exactly batch_size rows.
            cut = batch_size - len(batch)
            batch._extend(ScanResult(columns, [c[:cut] for c in data]))
            yield batch
            batch = ScanResult(columns, [c[cut:] for c in data])
        if progress is not None:
            progress(done, nbytes, nfailed)
        if len(batch) == batch_size:
            yield batch
            batch = ScanResult._empty(columns)
    if len(batch) or not done:
        yield batch


def scan(
    paths_or_dirs: Any,
    tags: Iterable[Any] = (),
    *,
    recursive: bool = True,
    threads: int | None = None,
    stop_before_pixels: bool = True,
    on_error: str = "record",
    batch_size: int = 8192,
    force: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> ScanResult:
    """Scan files and folders into one :class:`ScanResult` (one row per file).

    The arguments are those of :func:`iter_scan`; use that (or :func:`write_parquet`
    over it) when the table would not fit in memory.
    """
    result: ScanResult | None = None
    for batch in iter_scan(paths_or_dirs, tags, recursive=recursive, threads=threads,
                           stop_before_pixels=stop_before_pixels, on_error=on_error,
                           batch_size=batch_size, force=force, progress=progress):
        if result is None:
            result = batch
        else:
            result._extend(batch)
    assert result is not None
    return result
