"""Dataset: the pydicom-style API over an element index, values decoded lazily.

A dataset read from a file holds the ElementIndex of its encoding and, until an
element is asked for, only the integer position of each element in that index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dicomfast._index import vr_table
from dicomfast._native import _scan
from dicomfast.charset import python_encodings
from dicomfast.dictionary import dictionary_entry, tag_for_keyword
from dicomfast.element import _UNSET, DataElement
from dicomfast.errors import DicomfastError
from dicomfast.values import decode_value
from dicomfast.vr import AMBIGUOUS_VRS, CHARSET_VRS, resolve_ambiguous_vr

_EL_UNDEFINED = 0x0001
_EL_SEQUENCE = 0x0002
_EL_FRAGMENTS = 0x0008
_EL_IMPLICIT = 0x0020
_EL_BIG_ENDIAN = 0x0040

_DEFAULT_ENCODINGS = python_encodings(None)
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


class Sequence(list):
    """The value of an SQ element: a list of item datasets."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<Sequence of {len(self)} item(s)>"


def key_to_tag(key: Any) -> int:
    if isinstance(key, int):
        return key
    if isinstance(key, str):
        tag = tag_for_keyword(key)
        if tag is None:
            try:
                return int(key.strip("()").replace(",", ""), 16)
            except ValueError:
                raise KeyError(key) from None
        return tag
    if isinstance(key, tuple) and len(key) == 2:
        return (int(key[0]) << 16) | int(key[1])
    raise TypeError(f"not a tag: {key!r}")


#: Features of the layers above (pixels, writer, transcode, JSON) that Dataset
#: methods reach: each module registers its functions here when imported, so this
#: module never imports them (STYLE.md layering).
extensions: dict[str, Callable[..., Any]] = {}


def _extension(name: str) -> Callable[..., Any]:
    try:
        return extensions[name]
    except KeyError:
        raise RuntimeError(f"{name!r} needs the full dicomfast package (import dicomfast)") \
            from None


class Dataset:
    """A DICOM dataset: a mapping of tags to DataElements, ordered by tag.

    Attribute access by keyword gives values (``ds.PatientName``); item access
    by tag, (group, element) or keyword gives DataElements (``ds[0x00100010]``).
    """

    # Fast attribute defaults for datasets not read from a file.
    _index: Any = None
    _elems: dict[int, Any] | None = None
    _parent: Dataset | None = None
    _encodings: tuple[str, ...] | None = None
    _strict = False
    _dirty = False
    # Set by the reader on the top-level data set of a file.
    preamble: bytes | None = None
    file_meta: Dataset | None = None
    filename: str | None = None
    is_little_endian: bool | None = None
    is_implicit_VR: bool | None = None
    transfer_syntax: Any = None

    def __init__(self, elements: dict[int, DataElement] | None = None) -> None:
        object.__setattr__(self, "_elems", {})
        if elements:
            for el in elements.values():
                self[el.tag] = el

    @classmethod
    def _from_index(cls, index: Any, start: int, stop: int, parent: Dataset | None,
                    strict: bool) -> Dataset:
        ds = cls.__new__(cls)
        d = ds.__dict__
        d["_index"] = index
        d["_start"] = start
        d["_stop"] = stop
        d["_parent"] = parent
        d["_strict"] = strict
        return ds

    # -- the element map -------------------------------------------------------------
    def _map(self) -> dict[int, Any]:
        elems = self._elems
        if elems is None:
            elems = self._index.tag_map(self._start, self._stop)
            self.__dict__["_elems"] = elems
        return elems

    def _materialize(self, tag: int, pos: int) -> DataElement:
        idx = self._index
        vr, flags = idx.vr_flags(pos)
        if vr in AMBIGUOUS_VRS:
            vr = resolve_ambiguous_vr(
                tag, vr, implicit=bool(flags & _EL_IMPLICIT),
                undefined_length=bool(flags & _EL_UNDEFINED), lookup=self._lookup_value)
        elif (vr == "UN" and not (tag >> 16) & 1 and not flags & _EL_SEQUENCE
              and idx.length(pos) < 0xFFFF):
            # PS3.5 §6.2.2: UN for a public element means the writer did not know
            # its VR; the dictionary does.
            entry = dictionary_entry(tag)
            if entry is not None and entry.vr not in ("UN", "NONE", ""):
                vr = entry.vr
                if vr in AMBIGUOUS_VRS:
                    vr = resolve_ambiguous_vr(tag, vr, implicit=True, undefined_length=False,
                                              lookup=self._lookup_value)
        el = DataElement._lazy(tag, vr, pos, flags, self)
        self._map()[tag] = el
        return el

    def _lookup_value(self, tag: int) -> Any:
        ds: Dataset | None = self
        while ds is not None:
            if tag in ds:
                return ds[tag].value
            ds = ds._parent
        return None

    def _decode_element(self, el: DataElement) -> Any:
        idx = self._index
        pos = el._pos
        flags = el._flags
        if flags & _EL_SEQUENCE:
            items = Sequence()
            for item_pos in idx.children(pos):
                items.append(Dataset._from_index(idx, item_pos + 1, idx.end(item_pos), self,
                                                 self._strict))
            return items
        raw = idx.value_bytes(pos)
        if flags & _EL_FRAGMENTS:
            return raw
        if el.VR == "SQ":
            return self._parse_un_sequence(raw, not flags & _EL_BIG_ENDIAN)
        vr = el.VR
        if vr in CHARSET_VRS:
            encodings = self._encodings or self._charset()
        else:
            encodings = _DEFAULT_ENCODINGS
        return decode_value(vr, raw, not flags & _EL_BIG_ENDIAN, encodings, self._strict)

    def _parse_un_sequence(self, raw: bytes, little_endian: bool) -> Sequence:
        """Items of a sequence stored as UN (PS3.5 §6.2.2): implicit VR LE, as the
        standard says, else the file's own encoding, as some writers did."""
        last: Exception | None = None
        for little, explicit in ((True, False), (little_endian, True)):
            try:
                sub = _scan.scan(raw, little_endian=little, explicit_vr=explicit,
                                 strict=True, sequence_content=True, table=vr_table())
            except DicomfastError as exc:
                last = exc
                continue
            items = Sequence()
            for item_pos in sub.children_of_root():
                items.append(Dataset._from_index(sub, item_pos + 1, sub.end(item_pos), self,
                                                 self._strict))
            return items
        assert last is not None
        raise last

    def _charset(self) -> tuple[str, ...]:
        enc = self._encodings
        if enc is None:
            elems = self._map()
            if 0x00080005 in elems:
                # The term itself is in the default repertoire (PS3.5 §6.1.2.5.1); with a
                # wrong VR such as LO, decoding it asks for this data set's character
                # set, so answer that with the default instead of recursing.
                self.__dict__["_encodings"] = _DEFAULT_ENCODINGS
                try:
                    enc = python_encodings(self[0x00080005].value)
                finally:
                    self.__dict__["_encodings"] = None
            elif self._parent is not None:
                enc = self._parent._charset()
            else:
                enc = _DEFAULT_ENCODINGS
            self.__dict__["_encodings"] = enc
        return enc

    def _changed(self) -> None:
        """Forget what was derived from the elements (an element was set or removed),
        and mark this data set and the ones holding it as no longer as read."""
        ds: Dataset | None = self
        while ds is not None:
            d = ds.__dict__
            d.pop("_pixel_cache", None)
            d.pop("_frames_cache", None)
            d["_dirty"] = True
            ds = ds._parent

    # -- mapping protocol ------------------------------------------------------------
    def __getitem__(self, key: Any) -> DataElement:
        tag = key if type(key) is int else key_to_tag(key)
        v = self._map()[tag]
        if type(v) is int:
            return self._materialize(tag, v)
        return v

    def __setitem__(self, key: Any, el: DataElement) -> None:
        tag = key_to_tag(key)
        if not isinstance(el, DataElement):
            raise TypeError("Dataset items must be DataElements")
        if el.tag != tag:
            raise ValueError(f"element tag {el.tag:08X} does not match key {tag:08X}")
        if el._ds is None:
            el._ds = self
        self._map()[tag] = el
        self._changed()
        if tag == 0x00080005:
            self.__dict__["_encodings"] = None

    def __delitem__(self, key: Any) -> None:
        del self._map()[key_to_tag(key)]
        self._changed()

    def __contains__(self, key: Any) -> bool:
        try:
            tag = key if type(key) is int else key_to_tag(key)
        except (KeyError, TypeError, ValueError):
            return False
        return tag in self._map()

    def __len__(self) -> int:
        return len(self._map())

    def __iter__(self) -> Iterator[DataElement]:
        elems = self._map()
        for tag in sorted(elems):
            v = elems[tag]
            yield self._materialize(tag, v) if type(v) is int else v

    def keys(self) -> list[int]:
        """The tags, in ascending order."""
        return sorted(self._map())

    def values(self) -> list[DataElement]:
        return [self[t] for t in self.keys()]

    def items(self) -> list[tuple[int, DataElement]]:
        return [(t, self[t]) for t in self.keys()]

    def elements(self) -> Iterator[DataElement]:
        """The elements in tag order (values still decode lazily)."""
        return iter(self)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for a keyword, or the DataElement for a tag; `default` when absent."""
        if isinstance(key, str) and tag_for_keyword(key) is not None:
            try:
                return self[key].value
            except KeyError:
                return default
        try:
            return self[key]
        except (KeyError, TypeError, ValueError):
            return default

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return self.keys() == other.keys() and all(self[t] == other[t] for t in self.keys())

    __hash__ = None  # type: ignore[assignment]

    # -- keyword attributes ----------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name[:1].isupper():
            tag = tag_for_keyword(name)
            if tag is not None:
                elems = self._map()
                if tag in elems:
                    return self[tag].value
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name[:1].isupper():
            tag = tag_for_keyword(name)
            if tag is not None:
                elems = self._map()
                if tag in elems:
                    self[tag].value = value  # the element tells this dataset
                    if tag == 0x00080005:
                        self.__dict__["_encodings"] = None
                else:
                    entry = dictionary_entry(tag)
                    vr = entry.vr if entry is not None else "UN"
                    if vr in AMBIGUOUS_VRS:
                        vr = resolve_ambiguous_vr(tag, vr, implicit=False, undefined_length=False,
                                                  lookup=self._lookup_value)
                    self[tag] = DataElement(tag, vr, value)
                return
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        tag = tag_for_keyword(name) if name[:1].isupper() else None
        if tag is not None and tag in self._map():
            del self._map()[tag]
            self._changed()
            return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        words = [e.keyword for e in self if e.keyword]
        return sorted(set(super().__dir__()) | set(words))

    def add_new(self, tag: Any, VR: str, value: Any) -> None:
        """Add (or replace) an element with an explicit VR."""
        t = key_to_tag(tag)
        self[t] = DataElement(t, VR, value)

    def private_block(self, group: int, private_creator: str, create: bool = False
                      ) -> PrivateBlock:
        """The block of private group `group` reserved by `private_creator` (PS3.5 §7.8.1).

        With `create=True` a free slot (gggg,0010)-(gggg,00FF) is reserved when the
        creator has none yet.
        """
        if not group & 1 or group < 0x0009 or group > 0xFFFF:
            raise ValueError(f"group {group:04X} is not a private group")
        free = None
        for slot in range(0x10, 0x100):
            tag = (group << 16) | slot
            if tag in self:
                value = self[tag].value
                if isinstance(value, str) and value.strip() == private_creator.strip():
                    return PrivateBlock(self, group, slot, private_creator)
            elif free is None:
                free = slot
        if not create:
            raise KeyError(f"no private block of {private_creator!r} in group {group:04X}")
        if free is None:
            raise ValueError(f"private group {group:04X} has no free creator slot")
        self[(group << 16) | free] = DataElement((group << 16) | free, "LO", private_creator)
        return PrivateBlock(self, group, free, private_creator)

    @property
    def parent(self) -> Dataset | None:
        """The dataset whose sequence holds this item, if any."""
        return self._parent

    # -- preamble ----------------------------------------------------------------------
    @property
    def preamble_is_suspicious(self) -> bool:
        """Whether the 128-byte preamble read from the file starts like an executable
        or a script (see preamble_signature). Nothing runs it; dicomfast.write never
        copies a read preamble into a new file (CVE-2019-11687)."""
        return self.preamble is not None and preamble_signature(self.preamble) is not None

    # -- pixels ------------------------------------------------------------------------
    @property
    def pixel_array(self) -> Any:
        """The pixel data as a numpy array (pydicom's shape convention)."""
        return _extension("pixel_array")(self)

    def frame(self, index: int, *, out: Any = None, reduce: int = 0,
              threads: int | None = None) -> Any:
        """One frame of the pixel data, decoded on its own; `reduce` levels down
        (JPEG 2000 and HTJ2K only, each level halving rows and columns) for a
        quick thumbnail; a JPEG 2000 frame on `threads` threads."""
        return _extension("frame")(self, index, out=out, reduce=reduce, threads=threads)

    def frames(self, indices: Any = None, *, out: Any = None, threads: int | None = None) -> Any:
        """Several frames (all by default) as one (n, rows, cols[, samples]) array."""
        return _extension("frames")(self, indices, out=out, threads=threads)

    def _pixel_value_view(self) -> tuple[Any, int, int] | None:
        """(index, position, tag) of the pixel data element as stored, or None."""
        elems = self._map()
        for tag in _PIXEL_TAGS:
            v = elems.get(tag)
            if v is None:
                continue
            if type(v) is int:
                return self._index, v, tag
            if v._pos >= 0 and v._value is _UNSET and v._ds is self:
                return self._index, v._pos, tag
            return None, -1, tag
        return None

    # -- writing -----------------------------------------------------------------------
    def save(self, target: Any, *, transfer_syntax: str | None = None, **kwargs: Any) -> None:
        """Write as a DICOM Part 10 file; see :func:`dicomfast.write`."""
        _extension("save")(self, target, transfer_syntax=transfer_syntax, **kwargs)

    def to_bytes(self, *, transfer_syntax: str | None = None, **kwargs: Any) -> bytes:
        """The bytes of this data set as a DICOM Part 10 file; see :func:`dicomfast.write`."""
        return _extension("to_bytes")(self, transfer_syntax=transfer_syntax, **kwargs)

    def to_json_dict(self, bulk_data_threshold: int = 1024,
                     bulk_data_uri_handler: Callable[..., Any] | None = None) -> dict:
        """The DICOM JSON Model (PS3.18 §F.2) of this data set, as a dict."""
        return _extension("to_json_dict")(self, bulk_data_threshold=bulk_data_threshold,
                                          bulk_data_uri_handler=bulk_data_uri_handler)

    def to_json(self, bulk_data_threshold: int = 1024,
                bulk_data_uri_handler: Callable[..., Any] | None = None, **kwargs: Any) -> str:
        """The DICOM JSON Model (PS3.18 §F.2) of this data set, as text."""
        return _extension("to_json")(self, bulk_data_threshold=bulk_data_threshold,
                                     bulk_data_uri_handler=bulk_data_uri_handler, **kwargs)

    @classmethod
    def from_json(cls, data: Any, bulk_data_uri_handler: Callable[..., Any] | None = None
                  ) -> Dataset:
        """A data set from DICOM JSON text or its dict (PS3.18 §F.2)."""
        return _extension("from_json")(data, bulk_data_uri_handler=bulk_data_uri_handler)

    # -- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        from dicomfast.dump import format_dataset

        return "\n".join(format_dataset(self))

    __str__ = __repr__


# What a Part 10 preamble must not look like (PS3.10 §7.1 leaves its content to the
# application, and a PE header there makes the file a valid Windows executable:
# CVE-2019-11687). TIFF headers are legitimate (PS3.10 §7.5 dual-personality files)
# and zeros are the norm, so neither is listed.
_EXECUTABLE_MAGIC = (
    (b"MZ", "DOS/PE executable"),
    (b"\x7fELF", "ELF executable"),
    (b"\xfe\xed\xfa\xce", "Mach-O executable"), (b"\xfe\xed\xfa\xcf", "Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "Mach-O executable"), (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "Mach-O universal binary or Java class"),
    (b"#!", "script with an interpreter line"),
    (b"PK\x03\x04", "ZIP archive (JAR, self-extracting)"),
)


def preamble_signature(preamble: bytes) -> str | None:
    """What executable format a preamble starts with, or None for an innocuous one."""
    head = bytes(preamble[:4])
    for magic, kind in _EXECUTABLE_MAGIC:
        if head.startswith(magic):
            return kind
    return None


def top_level_dataset(index: Any, strict: bool) -> Dataset:
    """The dataset of a whole ElementIndex."""
    return Dataset._from_index(index, 0, index.count, None, strict)



class PrivateBlock:
    """Elements (gggg,xxEE) of one private creator's block: address them by EE."""

    def __init__(self, ds: Dataset, group: int, slot: int, private_creator: str):
        self.dataset = ds
        self.group = group
        self.slot = slot
        self.private_creator = private_creator

    def tag(self, offset: int) -> int:
        if not 0 <= offset <= 0xFF:
            raise ValueError("a private element offset is 0x00-0xFF")
        return (self.group << 16) | (self.slot << 8) | offset

    def __contains__(self, offset: int) -> bool:
        return self.tag(offset) in self.dataset

    def __getitem__(self, offset: int) -> DataElement:
        return self.dataset[self.tag(offset)]

    def __delitem__(self, offset: int) -> None:
        del self.dataset[self.tag(offset)]

    def add_new(self, offset: int, VR: str, value: Any) -> None:
        tag = self.tag(offset)
        self.dataset[tag] = DataElement(tag, VR, value)
