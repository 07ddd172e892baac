"""``dicomfast index DIR``: (re)build an archive's index from the files under its
root with the fast scanner (:mod:`dicomfast.scan`): the scalar keys of every file
come from one scan; the sequence keys, which live at the study and series levels,
are read from one file per series."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dicomfast.archive import keys as K
from dicomfast.archive.index import INDEX_NAME, Archive, _items, _text, read_header
from dicomfast.errors import DicomfastError
from dicomfast.scan import iter_scan

# What places a file in the index's hierarchy (PS3.4 §C.3).
_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def archive_files(root: Path) -> Iterator[str]:
    """The files under `root` in name order, without the index and hidden
    (temporary) files."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.startswith(INDEX_NAME):
                continue
            yield os.path.join(folder, name)


def _scan_text(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, list):
        return "\\".join(_scan_text(v) for v in value)
    return _text(value)


def rebuild(root: str | os.PathLike, *, threads: int | None = None,
            progress: Callable[[int, int, int], None] | None = None,
            on_skip: Callable[[str, str], None] | None = None) -> tuple[int, int]:
    """Replace the index of the archive at `root` by what its files say; returns
    (files indexed, files skipped: not DICOM or without the UIDs). Each skipped
    file is told to ``on_skip(path, why)``: queries will not find it."""
    with Archive(root) as archive:
        rows: list[dict[str, Any]] = []
        skipped = 0
        seen_series: set[str] = set()
        for batch in iter_scan(archive_files(archive.root), K.SCALAR_KEYS, threads=threads,
                               on_error="record", progress=progress):
            for row in batch:
                missing = [k for k in _UID_KEYS if not row.get(k)]
                if row["error_type"] is not None or missing:
                    skipped += 1
                    if on_skip is not None:
                        on_skip(row["path"], row["error"] or f"no {' or '.join(missing)}")
                    continue
                values = {kw: _scan_text(row.get(kw)) for kw in K.SCALAR_KEYS}
                if not values["SOPClassUID"]:
                    values["SOPClassUID"] = row["sop_class_uid"] or ""
                path = Path(row["path"])
                values["_path"] = str(path.relative_to(archive.root))
                values["_ts"] = row["transfer_syntax_uid"] or ""
                values["_size"] = row["file_size"]
                if values["SeriesInstanceUID"] not in seen_series:
                    seen_series.add(values["SeriesInstanceUID"])
                    values.update(_sequences(path))
                rows.append(values)
        archive.index_rows(rows, replace=True)
        return len(rows), skipped


def _sequences(path: Path) -> dict[str, Any]:
    try:
        ds = read_header(path)
        out = {}
        for kw in K.SEQUENCE_KEYS:
            if kw in ds:
                out[kw] = _items(ds[kw].value)
        return out
    except (DicomfastError, OSError):
        return {}
