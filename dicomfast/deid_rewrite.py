"""De-identifying a file's header without a Dataset: the fast path of
:class:`dicomfast.deid.Deidentifier`'s ``deidentify_file``, ``write_deidentified``
and ``deidentify_bytes``.

The profile's actions are laid out once per Deidentifier as a
:class:`dicomfast._native._deid.Plan`, and each file's element index (the scan
that found where its pixel data starts) is rewritten by the native walk into the
new data set's bytes; the File Meta is made from the UIDs it wrote. Per file, no
Python object is made per element, only per replaced UID.

It applies where the result is the same as the walk over a Dataset that
:meth:`~dicomfast.deid.Deidentifier.deidentify` does (the tests compare the two on
every corpus file): Deidentifiers without C actions (the Clean options, Retain
Longitudinal Temporal Information with Modified Dates, Retain Device Identity and
Retain Patient Characteristics), without replacements, a cleaner or retained
private elements, on little endian files read without repairs, tags in order.
Everywhere else :meth:`Rewriter.file` and :meth:`Rewriter.data` answer None and
the caller takes the Dataset path.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from dicomfast._native import _deid, _scan
from dicomfast.dataset import Dataset
from dicomfast.encode import encode_value
from dicomfast.errors import DicomfastError
from dicomfast.split_read import scan_data_set
from dicomfast.vr import LONG_FORM_VRS
from dicomfast.writer import encode_dataset, file_meta_bytes, file_meta_uid

if TYPE_CHECKING:
    from dicomfast.deid import Deidentifier
    from dicomfast.split_read import SplitFile

__all__ = ["Rewriter"]

_CODES = {"K": 0, "X": 1, "Z": 2, "D": 3, "U": 4, "U*": 4}
_PREAMBLE = b"\0" * 128 + b"DICM"
_BURNED_IN = 0x00280301
_MEDIA_SOP_CLASS, _MEDIA_SOP_INSTANCE = 0x00020002, 0x00020003
_EXPLICIT_LE, _IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
# Bounds of the caches of replaced UI values and File Meta parts (cleared when full).
_KEPT_REPLACEMENTS = 4096
# (0002,0000) UL, 4 bytes: the File Meta's group length element, before its value.
_GROUP_LENGTH = b"\x02\x00\x00\x00UL\x04\x00"


class Rewriter:
    """The native header rewrite for one Deidentifier (see the module's text)."""

    def __init__(self, deid: Deidentifier) -> None:
        from dicomfast.deid import _DUMMY

        self.deid = deid
        actions = {tag: _CODES[a] for tag, a in deid.actions.items() if a != "K"}
        repeaters = [(mask, value, _CODES[a]) for mask, value, a in deid._repeaters]
        dummies = {_scan.vr_code(vr): encode_value(vr, value) for vr, value in _DUMMY.items()}
        records = Dataset()
        deid._record(records)
        self.plan = _deid.Plan(actions, repeaters, dummies,
                               [_scan.vr_code(vr) for vr in LONG_FORM_VRS],
                               _each_element(records, _EXPLICIT_LE),
                               _each_element(records, _IMPLICIT_LE))
        self._replacements: dict[bytes, bytes] = {}
        self._meta_parts: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    @staticmethod
    def applies_to(deid: Deidentifier) -> bool:
        """Whether this Deidentifier's actions are all ones the native walk does."""
        every = [*deid.actions.values(), *(a for _, _, a in deid._repeaters)]
        return (not deid.replacements and deid.cleaner is None
                and deid.private_action == "X" and all(a in _CODES for a in every))

    def file(self, split: SplitFile) -> list[Any] | None:
        """The chunks of the de-identified file (new head, then the pixel data and
        what follows it as ranges of the source), or None for the Dataset path."""
        head = split.head
        found = (head.index, head.ts, head.meta) if head is not None else _scanned(split.data)
        new_head = self._rewrite(found, split.name) if found is not None else None
        if new_head is None:
            return None
        chunks: list[Any] = [new_head]
        if split.pixels is not None:
            chunks.append(split.pixels)
            if split.padding is not None and self.deid.actions.get(0xFFFCFFFC) != "X":
                chunks.append(split.padding)  # Data Set Trailing Padding
        return chunks

    def data(self, data: Any, name: str = "the data set") -> bytes | None:
        """A Part 10 file's bytes de-identified into the new file's, or None for the
        Dataset path."""
        found = _scanned(data)
        return self._rewrite(found, name) if found is not None else None

    def _rewrite(self, found: tuple[Any, Any, Any], name: str) -> bytes | None:
        """Preamble, File Meta and data set of the de-identified file from the data
        set's index, transfer syntax and File Meta index, or None."""
        index, ts, meta = found
        if index.warnings or ts is None or not ts.is_little_endian or ts.is_deflated:
            return None  # repairs, other encodings: what the Dataset path writes differs
        try:
            body, sop_class, sop_instance = _deid.rewrite(
                index, self.plan, self._new_uids, not ts.is_implicit_vr)
        except _deid.NeedsDataset:
            return None
        self._burned_in(index, name)  # after the rewrite, which found the tags in order
        head = self._file_meta(meta, sop_class, sop_instance, ts.uid)
        return head + body if head is not None else None

    def _burned_in(self, index: Any, name: str) -> None:
        """Deidentifier.deidentify's check of Burned In Annotation, on the index."""
        pos = index.find_top(_BURNED_IN)
        if pos < 0 or self.deid.burned_in == "ignore":
            return
        if index.value_bytes(pos).decode("ascii", "replace").strip(" \0").upper() != "YES":
            return
        from dicomfast.deid import (
            BurnedInAnnotationError,
            DeidentificationWarning,
            burned_in_message,
        )

        message = burned_in_message(name)
        if self.deid.burned_in == "refuse":
            raise BurnedInAnnotationError(message)
        warnings.warn(message, DeidentificationWarning, stacklevel=4)

    def _new_uids(self, stored: bytes) -> bytes:
        """The value that replaces a stored UI value (one UID or several), from the
        UID map; the encoded replacements of values seen before are kept, as a
        study's and a series' UIDs come back in file after file."""
        new = self._replacements.get(stored)
        if new is None:
            uids = stored.decode("ascii", "replace").strip(" \0").split("\\")
            new = encode_value("UI", self.deid._new_uids(uids[0] if len(uids) == 1 else uids))
            if uids != [""]:  # an empty value gets a fresh UID each time (Table E.1-1a)
                if len(self._replacements) >= _KEPT_REPLACEMENTS:
                    self._replacements.clear()
                self._replacements[stored] = new
        return new

    def _file_meta(self, meta: Any, sop_class: bytes | None, sop_instance: bytes | None,
                   ts_uid: str) -> bytes | None:
        """Preamble and File Meta as the writer makes them for the new data set: its
        SOP UIDs, else the source File Meta's (the instance UID mapped as the data
        set's is); None when there are none (the Dataset path says why)."""
        if not all(raw.isascii() and b"\\" not in raw
                   for raw in (sop_class or b"", sop_instance or b"")):
            # Not one UID (PS3.5 §9.1: ASCII; VM 1): the Dataset path says what is wrong.
            return None
        meta_tags = meta.tag_map()  # the last of repeated tags, as a Dataset keeps
        old_instance = _meta_text(meta, meta_tags, _MEDIA_SOP_INSTANCE)
        if old_instance:
            retain = self.deid.actions.get(_MEDIA_SOP_INSTANCE) == "K"
            old_instance = old_instance if retain else self.deid.uid_map[old_instance]
        sop_class_uid = _text(sop_class) or _meta_text(meta, meta_tags, _MEDIA_SOP_CLASS)
        sop_instance_uid = _text(sop_instance) or old_instance
        if not sop_class_uid or not sop_instance_uid:
            return None
        # The File Meta differs from file to file by the instance UID alone: the
        # writer's group is made once per SOP class and syntax, with a stand-in
        # instance UID, and that element replaced (lengths fixed up).
        key = (sop_class_uid, ts_uid)
        around = self._meta_parts.get(key)
        if around is None:
            if len(self._meta_parts) >= _KEPT_REPLACEMENTS:
                self._meta_parts.clear()
            around = self._meta_parts[key] = _meta_around(sop_class_uid, ts_uid)
        before, after = around
        instance = file_meta_uid(_MEDIA_SOP_INSTANCE, sop_instance_uid)
        body_length = len(before) + len(instance) + len(after)
        return b"".join((_PREAMBLE, _GROUP_LENGTH, body_length.to_bytes(4, "little"), before,
                         instance, after))


def _scanned(data: Any) -> tuple[Any, Any, Any] | None:
    """(index of the data set, transfer syntax, File Meta index) of a whole file's
    bytes, or None; what fails here goes the Dataset path, to fail there with the
    reader's error."""
    try:
        scanned = scan_data_set(data)
    except DicomfastError:
        return None
    return None if scanned is None else (scanned[3], scanned[2], scanned[1])


def _meta_around(sop_class_uid: str, ts_uid: str) -> tuple[bytes, bytes]:
    """The writer's File Meta group for this SOP class and syntax, without its group
    length: what comes before the instance UID element, and what after."""
    stand_in = "1.2"
    group = file_meta_bytes(sop_class_uid, stand_in, ts_uid)[12:]
    instance = file_meta_uid(_MEDIA_SOP_INSTANCE, stand_in)
    at = group.index(instance)
    return group[:at], group[at + len(instance):]


def _each_element(ds: Dataset, ts_uid: str) -> list[tuple[int, bytes]]:
    """(tag, encoded element) for each element of `ds`, in tag order."""
    out = []
    for tag in sorted(ds._map()):
        one = Dataset()
        el = ds[tag]
        one.add_new(tag, el.VR, el.value)
        out.append((tag, encode_dataset(one, ts_uid)))
    return out


def _text(raw: bytes | None) -> str:
    return raw.decode("ascii", "replace").strip(" \0") if raw else ""


def _meta_text(meta: Any, tags: dict[int, int], tag: int) -> str:
    pos = tags.get(tag)
    return _text(meta.value_bytes(pos)) if pos is not None else ""
