"""Modality Worklist (PS3.4 Annex K): a C-FIND SCP over a worklist store, and the SCU.

The store is a folder; each file in it is one Scheduled Procedure Step:

* ``*.json``: a data set in the DICOM JSON model (PS3.18 §F.2), as
  ``Dataset.to_json()`` writes it;
* ``*.wl``, ``*.dcm`` and other files: a DICOM data set (a Part 10 file, or a
  bare data set as DCMTK's ``dump2dcm`` writes for ``wlmscpfs``).

Files are read again when the folder changes (its modification time, or the
names, sizes and modification times of the files), so items can be added and
removed while the SCP runs. Unreadable files are skipped with a warning in the
log.

Matching is :mod:`dicomfast.archive.matching` (PS3.4 §K.2.2.1 refers to §C.2.2.2):
single value, wildcards, date and time ranges, UID lists, universal matching, and
sequence matching one level deep, which the worklist's keys mostly sit in
(Scheduled Procedure Step Sequence: Modality, Scheduled Station AE Title, Scheduled
Procedure Step Start Date and Time). Answers carry the identifier's keys, and
inside a sequence the keys of the identifier's item.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dicomfast.archive.matching import matches
from dicomfast.dataset import Dataset
from dicomfast.errors import DicomfastError
from dicomfast.json_model import dataset_from_json
from dicomfast.net.services import identifiers as I
from dicomfast.part10 import read

log = logging.getLogger("dicomfast.net")

__all__ = ["WorklistStore", "project"]


def _load(path: Path) -> Dataset:
    if path.suffix.lower() == ".json":
        return dataset_from_json(path.read_text(encoding="utf-8"))
    return read(path, force=True)


def project(entity: Mapping[str, Any], identifier: Mapping[str, Any]) -> dict[str, Any]:
    """The answer for a matching entity: the identifier's keys with the entity's
    values; a sequence key gives each of the entity's items, projected on the keys
    of the identifier's item (all of the item's keys when that item is empty)."""
    out: dict[str, Any] = {}
    for kw, query in identifier.items():
        value = entity.get(kw)
        if isinstance(query, list):
            items = value if isinstance(value, list) else []
            keys = query[0] if query else {}
            out[kw] = [project(item, keys) if keys else dict(item) for item in items]
        else:
            out[kw] = value if value not in (None, "") else None
    return out


class WorklistStore:
    """The worklist items in `folder` (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._stamp: Any = None
        self._items: list[dict[str, Any]] = []

    def _signature(self) -> Any:
        try:
            entries = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                             for e in os.scandir(self.folder)
                             if e.is_file() and not e.name.startswith("."))
        except FileNotFoundError:
            return None
        return tuple(entries)

    def items(self) -> list[dict[str, Any]]:
        """The items as {keyword: text or list of item dicts}, reloaded when the
        folder changed."""
        with self._lock:
            stamp = self._signature()
            if stamp != self._stamp:
                items = []
                for name, _size, _mtime in stamp or ():
                    path = self.folder / name
                    try:
                        items.append(I.to_dict(_load(path)))
                    except (DicomfastError, OSError, ValueError) as exc:
                        log.warning("worklist item %s skipped: %s", path, exc)
                self._items, self._stamp = items, stamp
            return self._items

    def query(self, level: str, identifier: Mapping[str, Any],
              model: str = "mwl") -> Iterator[dict[str, Any]]:
        """Answers for a C-FIND identifier (a :class:`QueryRetrieveSCP` source)."""
        ident = {k: v for k, v in identifier.items()
                 if k not in ("SpecificCharacterSet", "QueryRetrieveLevel")}
        for item in self.items():
            if matches(ident, item):
                yield project(item, ident)
