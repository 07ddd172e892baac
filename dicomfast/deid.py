"""De-identification: the PS3.15 Annex E Basic Application Level Confidentiality Profile.

The actions of PS3.15 Table E.1-1 (generated into ``dicomfast._deid_profile`` from
the standard) are applied to every attribute of a data set and of every item of
its sequences. Options (PS3.15 §E.3) change the action of the attributes their
column names. Unchanged elements stay as read, so writing the result copies
their bytes and the pixel data is never decoded: de-identifying a file is a
header rewrite.

    >>> deid = Deidentifier(options=["retain_long_modified_dates"], salt="secret")
    >>> for path in paths:
    ...     deid.deidentify_file(path, out_folder / path.name)
    >>> deid.uid_map.save("uids.csv")
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import os
import re
import secrets
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from dicomfast import _deid_profile as _table
from dicomfast.atomic import write_file
from dicomfast.dataset import Dataset, Sequence, key_to_tag
from dicomfast.element import DataElement
from dicomfast.errors import DicomfastError, DicomfastWarning
from dicomfast.uid import generate_uid

__all__ = ["BurnedInAnnotationError", "DeidentificationWarning", "Deidentifier", "OPTIONS",
           "UIDMap", "deidentify", "resolve_action"]

#: The options of PS3.15 §E.3 that Table E.1-1 has columns for.
OPTIONS: tuple[str, ...] = _table.OPTIONS

# CID 7050 De-identification Method (DCM codes), PS3.16: the profile, then each option.
_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_long_full_dates": (
        "113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_long_modified_dates": (
        "113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
}

# Replacement values for D (PS3.15 Table E.1-1a: non-zero length, consistent with the
# VR). UI is not here: a D on a UID gets a new UID, as U.
_DUMMY: dict[str, Any] = {
    "AE": "ANONYMIZED", "AS": "000Y", "CS": "ANONYMIZED", "DA": "19000101",
    "DS": "0", "DT": "19000101000000", "FD": 0.0, "FL": 0.0, "IS": "0", "LO": "ANONYMIZED",
    "LT": "ANONYMIZED", "PN": "ANONYMIZED", "SH": "ANONYMIZED", "SL": 0, "SS": 0,
    "ST": "ANONYMIZED", "SV": 0, "TM": "000000", "UC": "ANONYMIZED", "UL": 0,
    "UR": "http://example.invalid/", "US": 0, "UT": "ANONYMIZED", "UV": 0,
}
_TEXT_VRS = frozenset(("LO", "LT", "PN", "SH", "ST", "UC", "UT"))
_EL_SEQUENCE = 0x0002
_EL_FRAGMENTS = 0x0008
# VRs whose Z, D and U actions the walk applies to an entry as read, without making
# a DataElement of it and decoding its value first (_apply_stored): all but SQ, UN
# and the ambiguous "US or SS"-style VRs, which Dataset resolves.
_STORED_VRS = frozenset(_DUMMY) | {"UI", "OB", "OD", "OF", "OL", "OV", "OW", "AT"}
_PATIENT_ID = 0x00100020


class BurnedInAnnotationError(DicomfastError):
    """The pixel data has burned-in annotation (0028,0301) that header
    de-identification cannot remove (PS3.15 §E.3.1, Clean Pixel Data)."""


class DeidentificationWarning(DicomfastWarning):
    """Something de-identification could not make safe on its own."""


def burned_in_message(where: str) -> str:
    """What refusing or warning of a Burned In Annotation YES says."""
    return (f"{where}: (0028,0301) Burned In Annotation is YES: the pixel data may show "
            "identifying text that header de-identification keeps")


# -- actions -----------------------------------------------------------------------------------

def resolve_action(entry: tuple[str, str, tuple[str, ...]], options: Iterable[str],
                   compound: str = "conformant") -> str:
    """The single action (D, Z, X, K, C, U or U*) for a Table E.1-1 entry.

    An option's column overrides the Basic Profile action; where several chosen
    options name the attribute, the one that retains more wins (K over C).
    Compound actions (Table E.1-1a) depend on the attribute's Type in the IOD;
    ``compound="conformant"`` takes the alternative that is valid whatever the
    Type (Z/D, X/D, X/Z/D -> D; X/Z -> Z: a Type 3 may be empty; X/Z/U* -> U*:
    keep the sequence, its UIDs replaced), ``"remove"`` the one that keeps least
    (X, or Z for Z/D).
    """
    chosen = set(options)
    picks = {entry[2][k] for k, name in enumerate(OPTIONS) if name in chosen and entry[2][k]}
    if "K" in picks:
        return "K"
    if "C" in picks:
        return "C"
    basic = entry[1]
    if "/" not in basic:
        return basic
    alternatives = basic.split("/")
    if compound == "remove":
        return alternatives[0]
    if compound != "conformant":
        raise ValueError(f"compound must be 'conformant' or 'remove', not {compound!r}")
    return alternatives[-1]


# -- UIDs ----------------------------------------------------------------------------------------

class UIDMap:
    """Original UID -> replacement UID, the same replacement every time (thread-safe).

    With a `salt` the replacement is a name-based UID of salt and original
    (``generate_uid(entropy_srcs=...)``): the same in every run and on every
    machine that has the salt, and not reversible without it. Without one it is
    random, and the map (saved with :meth:`save`) is what keeps later batches
    consistent.
    """

    def __init__(self, *, prefix: str | None = None, salt: str | None = None) -> None:
        self.prefix = prefix
        self.salt = salt
        self._map: dict[str, str] = {}
        self._new: list[tuple[str, str]] | None = None  # see record_new()
        self._lock = threading.Lock()

    def __getitem__(self, uid: str) -> str:
        uid = str(uid).strip(" \0")
        new = self._map.get(uid)
        if new is not None:
            return new
        with self._lock:
            new = self._map.get(uid)
            if new is None:
                if self.salt is not None:
                    new = str(generate_uid(self.prefix, entropy_srcs=[self.salt, uid]))
                else:
                    new = str(generate_uid(self.prefix))
                self._map[uid] = new
                if self._new is not None:
                    self._new.append((uid, new))
        return new

    def __contains__(self, uid: object) -> bool:
        return uid in self._map

    def __len__(self) -> int:
        return len(self._map)

    def record_new(self) -> None:
        """Keep the pairs made from now on for :meth:`take_new` (a worker process
        sends them back for the batch's map)."""
        with self._lock:
            self._new = []

    def take_new(self) -> list[tuple[str, str]]:
        """The (original, replacement) pairs made since record_new() or the last call."""
        with self._lock:
            new = self._new or []
            if self._new is not None:
                self._new = []
        return new

    def update(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add (original, replacement) pairs made elsewhere (another process of the
        same batch); an original already mapped keeps its replacement."""
        with self._lock:
            for uid, new in pairs:
                self._map.setdefault(uid, new)

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._map.items())

    def save(self, path: str | os.PathLike) -> None:
        """Write the map as CSV: a header line, then ``original,replacement`` rows."""
        with open(path, "w", newline="", encoding="ascii") as f:
            writer = csv.writer(f)
            writer.writerow(["original", "replacement"])
            writer.writerows(sorted(self.items()))

    @classmethod
    def load(cls, path: str | os.PathLike, *, prefix: str | None = None,
             salt: str | None = None) -> UIDMap:
        """A map read from :meth:`save`'s CSV (new UIDs are added as usual)."""
        result = cls(prefix=prefix, salt=salt)
        with open(path, newline="", encoding="ascii") as f:
            rows = csv.reader(f)
            for row in rows:
                if len(row) >= 2 and row[0] != "original":
                    result._map[row[0].strip()] = row[1].strip()
        return result


# -- the de-identifier -----------------------------------------------------------------------------

class _Context:
    """What one data set's de-identification needs besides the tables."""

    __slots__ = ("date_offset", "scrub", "nested")

    def __init__(self, date_offset: int, scrub: re.Pattern[str] | None):
        self.date_offset = date_offset
        self.scrub = scrub
        self.nested: dict[Any, set[int]] = {}  # element index -> its nested_positions()

    def nested_in(self, index: Any) -> set[int]:
        found = self.nested.get(index)
        if found is None:
            found = self.nested[index] = index.nested_positions()
        return found


def _sorts_late(key: Any) -> bool:
    """Whether a replacement's key is a tag that sorts with or after the pixel data."""
    try:
        return key_to_tag(key) >= 0x7FE00008
    except (KeyError, TypeError, ValueError):
        return False


class Deidentifier:
    """Applies the Basic Profile with `options` (names from :data:`OPTIONS`).

    - `uid_map`: a :class:`UIDMap` shared across a batch (made from `salt` and
      `uid_prefix` when not given), so a study's files keep their links.
    - `burned_in`: what to do with Burned In Annotation YES: ``"refuse"`` (raise
      :class:`BurnedInAnnotationError`), ``"warn"``, or ``"ignore"``.
    - `compound`: how compound actions resolve, see :func:`resolve_action`.
    - `replacements`: {keyword or tag: value} written after the profile (a
      pseudonym for PatientID, say).
    - `safe_private`: (private creator, group, element byte) of private elements
      known to be safe (PS3.15 §E.3.10); kept only with ``retain_safe_private``.
    - `cleaner`: ``cleaner(tag, vr, value) -> value`` for C actions on text; the
      default blanks out, in such text, the identifying values the data set itself
      holds (names, IDs, dates, ...).
    - `date_offset`: days added to dates for ``retain_long_modified_dates``; by
      default an offset per patient: from the salt when there is one, else random
      and remembered for the batch.
    """

    def __init__(self, options: Iterable[str] = (), *, uid_map: UIDMap | None = None,
                 salt: str | None = None, uid_prefix: str | None = None,
                 burned_in: str = "refuse", compound: str = "conformant",
                 replacements: dict[Any, Any] | None = None,
                 safe_private: Iterable[tuple[str, int, int]] = (),
                 cleaner: Callable[[int, str, Any], Any] | None = None,
                 date_offset: int | None = None) -> None:
        self.options = tuple(dict.fromkeys(options))
        unknown = [o for o in self.options if o not in OPTIONS]
        if unknown:
            raise ValueError(f"unknown options {unknown}; the options are {list(OPTIONS)}")
        if {"retain_long_full_dates", "retain_long_modified_dates"} <= set(self.options):
            raise ValueError("retain_long_full_dates and retain_long_modified_dates exclude "
                             "each other (PS3.15 §E.3.6)")
        if burned_in not in ("refuse", "warn", "ignore"):
            raise ValueError(f"burned_in must be 'refuse', 'warn' or 'ignore', not {burned_in!r}")
        self.uid_map = uid_map if uid_map is not None else UIDMap(prefix=uid_prefix, salt=salt)
        self.salt = salt
        self.burned_in = burned_in
        self.replacements = dict(replacements or {})
        # Replacements that sort with or after the pixel data: files are then read whole
        # (deidentify_file copies a pixel data element that ends its file as the tail).
        self._late_replacements = any(_sorts_late(key) for key in self.replacements)
        self.safe_private = {(c.strip(), g, e) for c, g, e in safe_private}
        self.cleaner = cleaner
        self.date_offset = date_offset
        self._offsets: dict[str, int] = {}
        self._lock = threading.Lock()
        self.actions: dict[int, str] = {
            tag: resolve_action(entry, self.options, compound)
            for tag, entry in _table.PROFILE.items()}
        self._repeaters = [(mask, value, resolve_action(entry, self.options, compound))
                           for mask, value, entry in _table.REPEATERS]
        self.private_action = resolve_action(_table.PRIVATE, self.options, compound)
        self._scrub_needed = any(a == "C" for a in self.actions.values())
        self._recorded = _record_values(self.options)
        #: whether deidentify_file may rewrite headers natively (where it applies)
        self.native = True
        self._rewriter: Any = None  # its Rewriter once made, False where it does not apply

    # -- one data set ------------------------------------------------------------------------
    def deidentify(self, ds: Dataset) -> Dataset:
        """De-identify `ds` in place (and return it)."""
        if 0x00280301 in ds and str(ds[0x00280301].value or "").strip().upper() == "YES":
            message = burned_in_message(getattr(ds, "filename", None) or "the data set")
            if self.burned_in == "refuse":
                raise BurnedInAnnotationError(message)
            if self.burned_in == "warn":
                warnings.warn(message, DeidentificationWarning, stacklevel=2)
        ctx = _Context(self._patient_offset(ds), self._scrub_pattern(ds))
        meta = ds.file_meta
        self._walk(ds, ctx)
        self._fresh_meta(ds, meta)
        for key, value in self.replacements.items():
            if isinstance(key, str):
                setattr(ds, key, value)
            else:
                ds.add_new(key, ds[key].VR if key in ds else "LO", value)
        self._record(ds)
        return ds

    def deidentify_file(self, src: Any, dst: Any = None) -> Dataset:
        """Read `src`, de-identify it and, when `dst` is given, write it there (folders
        made as needed; `dst` may also be a function of the de-identified data set
        that returns the path). The pixel data is copied as stored, never decoded.

        From a path to a path, only the file's head is read when its pixel data is
        its last element: the pixel data is copied file to file by the kernel, and
        the data set returned has everything else. The header is then rewritten
        natively where the options allow (:mod:`dicomfast.deid_rewrite`), with the
        same result."""
        ds = self._file(src, dst, True)
        assert ds is not None
        return ds

    def write_deidentified(self, src: str | os.PathLike, dst: Any) -> None:
        """deidentify_file from a path to a path (or a function of the data set that
        gives one), without making the data set to return: what batches call."""
        self._file(src, dst, False)

    def _file(self, src: Any, dst: Any, result: bool) -> Dataset | None:
        from dicomfast.part10 import read
        from dicomfast.split_read import open_split
        from dicomfast.writer import part10_chunks

        if (isinstance(src, (str, os.PathLike)) and dst is not None
                and not hasattr(dst, "write") and not self._late_replacements):
            with open_split(src) as split:
                chunks = self._native_chunks(split)
                if chunks is not None:
                    ds = None
                    if result or callable(dst):  # the new head, as the Dataset way returns it
                        ds = read(chunks[0])
                        ds.__dict__["filename"] = split.name
                    write_file(dst(ds) if callable(dst) else dst, chunks, per_thread=True)
                    return ds
                ds = self.deidentify(split.dataset)
                chunks = part10_chunks(ds)
                if split.pixels is not None:
                    # The pixel data ends the file, so nothing may sort after it: the
                    # profile adds nothing there, and late replacements read it whole.
                    if max(ds._map(), default=0) >= split.pixel_tag:
                        raise DicomfastError("an element was added after the pixel data")
                    chunks.append(split.pixels)
                    if split.padding is not None and self.actions.get(0xFFFCFFFC) != "X":
                        chunks.append(split.padding)  # Data Set Trailing Padding
                # Atomically (atomic.write_file): a process killed mid-write leaves
                # no partial file under the final name.
                write_file(dst(ds) if callable(dst) else dst, chunks, per_thread=True)
            return ds
        ds = self.deidentify(read(src))
        if callable(dst):
            dst = dst(ds)
        if isinstance(dst, (str, os.PathLike)):
            write_file(dst, part10_chunks(ds), per_thread=True)
        elif dst is not None:
            ds.save(dst)
        return ds

    def deidentify_bytes(self, data: Any) -> bytes:
        """A Part 10 file's bytes (bytes, bytearray, memoryview) de-identified into the
        new file's bytes: the header rewritten natively where it applies, else read
        into a Dataset, de-identified and written. The pixel data is never decoded."""
        rewriter = self._native_rewriter()
        if rewriter is not None:
            out = rewriter.data(data)
            if out is not None:
                return out
        from dicomfast.part10 import read
        from dicomfast.writer import to_bytes

        return to_bytes(self.deidentify(read(data)))

    def _native_chunks(self, split: Any) -> list[Any] | None:
        """The file's chunks from the native header rewrite, or None where it does not
        apply (see dicomfast.deid_rewrite)."""
        rewriter = self._native_rewriter()
        return rewriter.file(split) if rewriter is not None else None

    def _native_rewriter(self) -> Any:
        """The native rewrite's Rewriter, made for the first file, or None where it
        does not apply to this Deidentifier's actions (or `native` is off)."""
        if self._rewriter is None:
            from dicomfast.deid_rewrite import Rewriter

            with self._lock:
                if self._rewriter is None:
                    self._rewriter = Rewriter(self) if Rewriter.applies_to(self) else False
        return self._rewriter if self._rewriter is not False and self.native else None

    # -- the walk ------------------------------------------------------------------------------
    def _action(self, tag: int) -> str | None:
        action = self.actions.get(tag)
        if action is None and 0x5000 <= tag >> 16 <= 0x60FF:
            for mask, value, rep in self._repeaters:
                if tag & mask == value:
                    return rep
        return action

    def _walk(self, ds: Dataset, ctx: _Context) -> bool:
        """Apply the profile to `ds` and its items; whether anything changed."""
        elems = ds._map()
        index = ds._index
        removed = False
        changed = False
        stored_changed = False
        nested: set[int] | None = None  # entries of `index` that may hold data sets
        private_groups: set[int] = set()
        action_of = self.actions.get
        for tag, v in list(elems.items()):
            group = tag >> 16
            if group & 1:
                private_groups.add(group)
                continue
            action = action_of(tag)
            if action is None and 0x5000 <= group <= 0x60FF:
                action = self._action(tag)  # repeating groups (curves, overlays)
            if action == "X" or (not tag & 0xFFFF and tag >> 16 != 0x0002):
                # X, and group lengths (PS3.5 §7.2), which would be wrong after the
                # changes and are optional. Removed from the map directly: the data set
                # is told once, below.
                del elems[tag]
                removed = True
                continue
            if action is None or action == "K":
                if type(v) is int:
                    if nested is None:
                        nested = ctx.nested_in(index)
                    if v not in nested:
                        continue  # kept as stored: the writer copies its bytes
                el = ds[tag]
                if el.VR == "SQ" and el.value:
                    sub = False
                    for item in el.value:
                        sub |= self._walk(item, ctx)
                    changed |= sub
                    if not sub and type(v) is int:
                        elems[tag] = v  # untouched: back to the lazy entry, copied as read
                elif type(v) is int:
                    elems[tag] = v
                continue
            if type(v) is int:
                done = self._apply_stored(ds, elems, tag, action, v)
                if done is not None:
                    stored_changed |= done
                    continue
            changed |= self._apply(ds, tag, action, ctx, v)
        if stored_changed:
            ds._changed()
            changed = True
        if private_groups:
            removed |= self._privates(ds, private_groups)
        if removed:
            ds._changed()
        return changed or removed

    def _apply_stored(self, ds: Dataset, elems: dict[int, Any], tag: int, action: str,
                      pos: int) -> bool | None:
        """Z, D or U on an element still as read (index entry `pos`) of a plain VR:
        the replacement goes straight into the map, without a DataElement for the old
        value or decoding it. Whether it changed anything; None for what _apply does
        (sequences, UN and ambiguous VRs, C, U on what is not a UID)."""
        index = ds._index
        vr, flags = index.vr_flags(pos)
        if vr not in _STORED_VRS or flags & (_EL_SEQUENCE | _EL_FRAGMENTS):
            return None
        if action == "Z":
            if index.length(pos) == 0:
                return False
            value: Any = None
        elif vr == "UI" and action in ("U", "U*", "D"):
            uids = _stored_text(index, pos).split("\\")
            value = self._new_uids(uids[0] if len(uids) == 1 else uids)
        elif action == "D":
            value = _DUMMY.get(vr, b"\0\0")
        else:
            return None
        elems[tag] = _element(tag, vr, value, ds)
        return True

    def _apply(self, ds: Dataset, tag: int, action: str, ctx: _Context, stored: Any) -> bool:
        el = ds[tag]
        vr = el.VR
        if vr == "SQ":
            items = el.value or Sequence()
            if action == "Z":
                if not items:
                    return False
                el.value = Sequence()
                return True
            if action == "D" and not items:
                el.value = Sequence([Dataset()])
                return True
            # D, C, U* and U on a sequence: keep the items, each de-identified (the
            # profile replaces the identifying attributes inside, UIDs included).
            changed = False
            for item in items:
                changed |= self._walk(item, ctx)
            return changed
        if action == "Z":
            # Empty as stored: nothing to do, and no need to decode it to know.
            if (ds._index.length(stored) == 0 if type(stored) is int
                    else el.value in (None, "", b"")):
                return False
            el.value = None
            return True
        if action in ("U", "U*") or (action == "D" and vr == "UI"):
            return self._replace_uids(el)
        if action == "D":
            el.value = _DUMMY.get(vr, b"\0\0")
            return True
        if action == "C":
            return self._clean(el, ctx)
        raise ValueError(f"unknown action {action!r} for {tag:08X}")

    def _replace_uids(self, el: Any) -> bool:
        value = el.value
        if el.VR != "UI":  # U on something that is not a UID: nothing to map, blank it
            if value in (None, "", b""):
                return False
            el.value = None
            return True
        el.value = self._new_uids(value)
        return True

    def _new_uids(self, value: Any) -> Any:
        """The replacement of a UI value (one UID or a list): mapped consistently,
        or a fresh UID for an empty one (D and U must leave a UID, Table E.1-1a)."""
        if value in (None, "", b""):
            return str(generate_uid(self.uid_map.prefix))
        if isinstance(value, list):
            return [self.uid_map[u] for u in value]
        return self.uid_map[value]

    def _clean(self, el: Any, ctx: _Context) -> bool:
        vr = el.VR
        value = el.value
        if value in (None, "", b""):
            return False
        if vr in ("DA", "DT") and "retain_long_modified_dates" in self.options:
            el.value = _shift_dates(value, vr, ctx.date_offset)
            return True
        if self.cleaner is not None:
            el.value = self.cleaner(el.tag, vr, value)
            return True
        if vr in _TEXT_VRS and ctx.scrub is not None:
            cleaned = _scrub(value, ctx.scrub)
            if cleaned != value:
                el.value = cleaned
                return True
        return False

    def _privates(self, ds: Dataset, groups: set[int]) -> bool:
        """Private elements go (Table E.1-1), except, with Retain Safe Private, those
        listed as safe (and the creators that reserve them)."""
        keep: set[int] = set()
        if self.private_action in ("C", "K") and self.safe_private:
            for group in groups:
                for slot in range(0x10, 0x100):
                    creator_tag = (group << 16) | slot
                    if creator_tag not in ds:
                        continue
                    creator = str(ds[creator_tag].value or "").strip()
                    block = [t for t in ds.keys() if t >> 16 == group and (t >> 8) & 0xFF == slot]
                    kept = [t for t in block if (creator, group, t & 0xFF) in self.safe_private]
                    if kept:
                        keep.update(kept)
                        keep.add(creator_tag)
        elif self.private_action == "K":
            return False
        elems = ds._map()
        doomed = [tag for tag in elems if (tag >> 16) & 1 and tag not in keep]
        for tag in doomed:
            del elems[tag]
        return bool(doomed)

    # -- per-data-set context --------------------------------------------------------------------
    def _patient_offset(self, ds: Dataset) -> int:
        if self.date_offset is not None:
            return int(self.date_offset)
        if "retain_long_modified_dates" not in self.options:
            return 0
        patient = str(ds.get("PatientID") or "") + "\0" + str(ds.get("PatientName") or "")
        if self.salt is not None:
            digest = hashlib.sha256(f"{self.salt}\0{patient}".encode()).digest()
            return -(int.from_bytes(digest[:8], "big") % 3650 + 1)
        with self._lock:
            if patient not in self._offsets:
                self._offsets[patient] = -(secrets.randbelow(3650) + 1)
            return self._offsets[patient]

    def _scrub_pattern(self, ds: Dataset) -> re.Pattern[str] | None:
        """A pattern of the identifying words the data set holds, for cleaning text."""
        if not self._scrub_needed or self.cleaner is not None:
            return None
        words: set[str] = set()
        for tag, action in self.actions.items():
            if action in ("K", "C") or tag >> 16 == 0x0002 or tag not in ds:
                continue
            el = ds[tag]
            if el.VR not in ("PN", "LO", "SH", "DA", "AE", "DT", "CS"):
                continue
            values = el.value if isinstance(el.value, list) else [el.value]
            for value in values:
                for word in re.split(r"[\^=\s,]+", str(value or "")):
                    if len(word) >= 3:
                        words.add(word)
        if not words:
            return None
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    def _fresh_meta(self, ds: Dataset, meta: Dataset | None) -> None:
        """File Meta with only what the writer needs: source AE titles and private
        meta information are not carried over (PS3.10 §7.1)."""
        fresh = Dataset()
        if meta is not None:
            elems = fresh._map()
            for tag in (0x00020002, 0x00020010):  # SOP Class, Transfer Syntax
                value = _meta_value(meta, tag)
                if value is not None:
                    elems[tag] = _element(tag, "UI", value, fresh)
            old = _meta_value(meta, 0x00020003)
            if old:
                retain = self.actions.get(0x00020003) == "K"
                elems[0x00020003] = _element(0x00020003, "UI",
                                             old if retain else self.uid_map[old], fresh)
        ds.file_meta = fresh

    def _record(self, ds: Dataset) -> None:
        """Patient Identity Removed, the De-identification Method and its codes
        (PS3.3 §C.7.1.1, CID 7050), Longitudinal Temporal Information Modified."""
        methods, codes, longitudinal = self._recorded
        # One value as a str, as read back (and as the writer's element cache keys it)
        method = methods[0] if len(methods) == 1 else list(methods)
        items = Sequence()
        for code, meaning in codes:
            item = Dataset()
            item._map().update({0x00080100: _element(0x00080100, "SH", code, item),
                                0x00080102: _element(0x00080102, "SH", "DCM", item),
                                0x00080104: _element(0x00080104, "LO", meaning, item)})
            items.append(item)
        elems = ds._map()
        for tag, vr, value in ((0x00120062, "CS", "YES"),
                               (0x00120063, "LO", method),
                               (0x00120064, "SQ", items),
                               (0x00280303, "CS", longitudinal)):
            elems[tag] = _element(tag, vr, value, ds)
        ds._changed()


def _element(tag: int, vr: str, value: Any, ds: Dataset) -> DataElement:
    """A new element already placed in `ds`, for filling a map directly (the caller
    tells the data set it changed, once)."""
    el = DataElement(tag, vr, value)
    el._ds = ds
    return el


def _stored_text(index: Any, pos: int) -> str:
    """The stored value of a UI entry as text, without its padding."""
    return index.value_bytes(pos).decode("ascii", "replace").strip(" \0")


def _meta_value(meta: Dataset, tag: int) -> str | None:
    """A File Meta UID as text, read from the stored bytes when it is still as read."""
    v = meta._map().get(tag)
    if v is None:
        return None
    if type(v) is int:
        return _stored_text(meta._index, v) or None
    value = v.value
    return str(value) if value not in (None, "", b"") else None


def _record_values(options: tuple[str, ...]) -> tuple[tuple[str, ...],
                                                     tuple[tuple[str, str], ...], str]:
    """De-identification Method texts, their CID 7050 codes and the Longitudinal
    Temporal Information Modified value for these options (the same for every file)."""
    used = ["basic", *[o for o in OPTIONS if o in options]]
    if "retain_long_full_dates" in options:
        longitudinal = "UNMODIFIED"
    elif "retain_long_modified_dates" in options:
        longitudinal = "MODIFIED"
    else:
        longitudinal = "REMOVED"
    return (tuple(_CODES[o][1] for o in used), tuple(_CODES[o] for o in used), longitudinal)


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    text = str(value)
    return pattern.sub(lambda m: "X" * len(m.group(0)), text)


def _shift_one(text: str, vr: str, days: int) -> str:
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return ""  # not a date that can be shifted: nothing identifying is kept
    try:
        day = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        shifted = day + datetime.timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    return shifted.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")


def _shift_dates(value: Any, vr: str, days: int) -> Any:
    """Dates moved by `days` (PS3.15 §E.3.6: intervals between them are kept)."""
    if isinstance(value, list):
        return [_shift_dates(v, vr, days) for v in value]
    text = str(value)
    if vr == "DA" and "-" in text:  # a range (a query-style value)
        return "-".join(_shift_one(t, vr, days) if t else "" for t in text.split("-"))
    return _shift_one(text, vr, days)


def deidentify(ds: Dataset, options: Iterable[str] = (), **kwargs: Any) -> Dataset:
    """De-identify one data set in place with a one-off :class:`Deidentifier`."""
    return Deidentifier(options, **kwargs).deidentify(ds)
