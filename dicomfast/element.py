"""DataElement: one element of a dataset, its value decoded on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicomfast.dictionary import dictionary_entry, private_creator_tag
from dicomfast.tag import tag_to_str

if TYPE_CHECKING:
    from dicomfast.dataset import Dataset

_UNSET: Any = object()


def _vm_of(value: Any) -> int:
    if value is None or value == "" or value == b"":
        return 0
    if isinstance(value, list):
        return len(value)
    return 1


class DataElement:
    """A data element: ``tag``, ``VR``, ``value`` and the dictionary facts about it.

    Elements read from a file keep a reference to their place in the element
    index and decode their value only when ``value`` is first read.
    """

    __slots__ = ("tag", "VR", "_value", "_pos", "_flags", "_ds", "is_undefined_length")

    def __init__(self, tag: int, VR: str, value: Any, *, is_undefined_length: bool = False):
        self.tag = int(tag)
        self.VR = VR
        self._value = value
        self._pos = -1
        self._flags = 0
        self._ds: Dataset | None = None
        self.is_undefined_length = is_undefined_length

    @classmethod
    def _lazy(cls, tag: int, VR: str, pos: int, flags: int, ds: Dataset) -> DataElement:
        el = cls.__new__(cls)
        el.tag = tag
        el.VR = VR
        el._value = _UNSET
        el._pos = pos
        el._flags = flags
        el._ds = ds
        el.is_undefined_length = bool(flags & 1)
        return el

    @property
    def value(self) -> Any:
        v = self._value
        if v is _UNSET:
            assert self._ds is not None
            v = self._value = self._ds._decode_element(self)
        return v

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value
        self._pos = -1
        if self._ds is not None:
            self._ds._changed()

    @property
    def VM(self) -> int:
        """Value multiplicity: the number of values (0 when empty)."""
        if self.VR == "SQ":
            return 1
        return _vm_of(self.value)

    @property
    def is_private(self) -> bool:
        return bool((self.tag >> 16) & 1)

    @property
    def is_empty(self) -> bool:
        return _vm_of(self.value) == 0 if self.VR != "SQ" else len(self.value) == 0

    @property
    def keyword(self) -> str:
        if self.is_private:
            return ""
        entry = dictionary_entry(self.tag)
        return entry.keyword if entry is not None else ""

    @property
    def name(self) -> str:
        """The element's name from the dictionary (PS3.6), or a description for private tags."""
        if self.is_private:
            elem = self.tag & 0xFFFF
            if elem == 0:
                return "Private Group Length"
            if 0x10 <= elem <= 0xFF:
                return "Private Creator"
            return "Private tag data"
        entry = dictionary_entry(self.tag)
        return entry.name if entry is not None else "Unknown"

    @property
    def is_retired(self) -> bool:
        entry = None if self.is_private else dictionary_entry(self.tag)
        return bool(entry is not None and entry.retired)

    @property
    def private_creator(self) -> str | None:
        """The Private Creator that reserves this private element's block (PS3.5 §7.8.1)."""
        if not self.is_private or self._ds is None:
            return None
        creator = private_creator_tag(self.tag)
        if creator is None or creator not in self._ds:
            return None
        value = self._ds[creator].value
        return value if isinstance(value, str) else None

    @property
    def length(self) -> int:
        """The stored value length in bytes (for elements read from a file)."""
        if self._ds is not None and self._pos >= 0:
            return self._ds._index.length(self._pos)
        return -1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataElement):
            return NotImplemented
        return self.tag == other.tag and self.VR == other.VR and self.value == other.value

    def __hash__(self) -> int:  # pragma: no cover - elements are mutable
        raise TypeError("DataElement is not hashable")

    def __repr__(self) -> str:
        value = self.value
        if self.VR == "SQ":
            shown = f"<Sequence, length {len(value)}>"
        elif isinstance(value, (bytes, bytearray, memoryview)) and len(value) > 32:
            shown = f"Array of {len(value)} bytes"
        else:
            shown = repr(value)
        name = self.name
        return f"{tag_to_str(self.tag)} {name:<35} {self.VR}: {shown}"

    __str__ = __repr__
