"""Dask: scan tables and pixel data over many processes or machines.

    >>> from dicomfast.dask import read_table, pixel_bag
    >>> frame = read_table("/data/**/*.dcm", tags=["PatientID", "Modality", "Rows"])
    >>> frame.groupby("Modality").size().compute()

:func:`read_table` lists the files on the client, cuts the list into chunks
(one partition each) and scans each chunk with :func:`dicomfast.scan.scan` on a
worker, so the partition is a pandas DataFrame with the columns a scan gives
(``path``, ``file_size``, ``transfer_syntax_uid``, ``sop_class_uid``, the tags,
``error_type``, ``error``); the meta (column names and dtypes) comes from the
requested tags alone, without reading a file. :func:`pixel_bag`,
:func:`pixel_delayed` and :func:`pixel_stack` decode pixel data on the workers.

Nothing here starts a cluster: the calls build task graphs, and whichever
scheduler is active runs them (the threaded one by default, or a
``distributed.Client`` connected to a LocalCluster or a real cluster). Every
worker must see the files under the same paths (a shared or network file
system, or object storage mounted the same way). See docs/scale.md.

dask is an optional dependency: ``pip install 'dicomfast[dask]'``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

try:
    import dask
    import dask.array as da
    import dask.bag as db
    import dask.dataframe as dd
except ImportError as exc:  # pragma: no cover - dask is an optional extra
    raise ImportError("dicomfast.dask needs dask: pip install 'dicomfast[dask]'") from exc

from dicomfast.part10 import read
from dicomfast.pixels import ImageParams, decode_many, pixel_source
from dicomfast.scan import iter_paths, scan

__all__ = ["file_list", "pixel_bag", "pixel_delayed", "pixel_stack", "read_table"]

_GLOB_CHARS = frozenset("*?[")


def file_list(paths_or_glob: Any, *, recursive: bool = True) -> list[str]:
    """The files a call works on: a glob pattern (``**`` matches folders, sorted), a
    folder (walked as :func:`dicomfast.scan.iter_paths` walks it), a file, or a list
    of any of these."""
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, os.PathLike)) else \
        list(paths_or_glob)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if isinstance(item, str) and _GLOB_CHARS & set(text):
            out.extend(p for p in sorted(glob.glob(text, recursive=True))
                       if not os.path.isdir(p))
        else:
            out.extend(iter_paths(text, recursive))
    return out


def _chunks(files: Sequence[str], size: int) -> list[list[str]]:
    if size < 1:
        raise ValueError("files_per_partition must be at least 1")
    return [list(files[i:i + size]) for i in range(0, len(files), size)]


def _meta(tags: Sequence[Any]) -> Any:
    """The empty DataFrame a scan with these tags gives (a scan of no files): Dask's
    meta. Also checks the tags before any task runs."""
    return scan([], tags).to_pandas()


def _scan_partition(files: list[str], tags: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """One partition: a chunk of files scanned on the worker that runs it."""
    return scan(files, tags, recursive=False, **options).to_pandas()


def read_table(paths_or_glob: Any, tags: Iterable[Any] = (), *,
               files_per_partition: int = 2048, threads: int | None = 1,
               stop_before_pixels: bool = True, on_error: str = "record",
               force: bool = False, recursive: bool = True) -> Any:
    """A Dask DataFrame with one row per file: a distributed :func:`dicomfast.scan.scan`.

    Files are listed here (see :func:`file_list`); each partition of
    `files_per_partition` files is scanned by one task, with `threads` threads in
    that task (1 by default: Dask's workers are the parallelism). The other
    keywords are those of :func:`dicomfast.scan.scan`; the rows and values are the
    ones the same scan in one process gives.
    """
    tags = tuple(tags)
    meta = _meta(tags)
    files = file_list(paths_or_glob, recursive=recursive)
    options = {"threads": threads, "stop_before_pixels": stop_before_pixels,
               "on_error": on_error, "force": force}
    # The columns are those of ScanResult.to_pandas(): lists (multi-valued tags) and
    # bytes stay Python objects, which Dask's string conversion would turn into text.
    with dask.config.set({"dataframe.convert-string": False}):
        if not files:
            return dd.from_pandas(meta, npartitions=1)
        return dd.from_map(_scan_partition, _chunks(files, files_per_partition), tags=tags,
                           options=options, meta=meta, label="dicomfast-scan",
                           enforce_metadata=False)


def _decode_file(path: str) -> np.ndarray:
    ds = read(path)
    arr = ds.pixel_array
    return arr.copy() if not arr.flags.writeable else arr


def pixel_bag(paths_or_glob: Any, *, files_per_partition: int = 64,
              with_paths: bool = False, recursive: bool = True) -> Any:
    """A Dask Bag of each file's pixel array (pydicom's shape), or of (path, array)
    pairs with `with_paths`; a file that fails raises in the task that reads it."""
    files = file_list(paths_or_glob, recursive=recursive)
    n = max(1, -(-len(files) // files_per_partition)) if files else 1
    bag = db.from_sequence(files, npartitions=n)
    if with_paths:
        return bag.map(lambda p: (p, _decode_file(p)))
    return bag.map(_decode_file)


def pixel_delayed(paths_or_glob: Any, *, recursive: bool = True) -> list[Any]:
    """One ``dask.delayed`` pixel array per file, for graphs of your own."""
    decode = dask.delayed(_decode_file, pure=True)
    return [decode(p, dask_key_name=f"dicomfast-pixels-{k}-{dask.base.tokenize(p)}")
            for k, p in enumerate(file_list(paths_or_glob, recursive=recursive))]


def _decode_chunk(files: list[str], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    out = np.empty((sum(1 for _ in files), *shape), dtype)
    decode_many(files, out=out, threads=1)
    return out


def pixel_stack(paths_or_glob: Any, *, files_per_chunk: int = 64,
                recursive: bool = True) -> Any:
    """A Dask Array (files, rows, columns[, samples]) of single-frame files that share
    a frame shape and dtype (read from the first file's header here); each chunk of
    `files_per_chunk` files is decoded by one task into one array."""
    files = file_list(paths_or_glob, recursive=recursive)
    if not files:
        raise ValueError("no files")
    head = read(files[0], stop_before_pixels=False)
    params = ImageParams.from_dataset(head, pixel_source(head)[1])
    if params.number_of_frames != 1:
        raise ValueError("pixel_stack takes single-frame files; use pixel_bag for others")
    shape, dtype = params.frame_shape, params.dtype
    blocks = []
    for chunk in _chunks(files, files_per_chunk):
        task = dask.delayed(_decode_chunk, pure=True)(chunk, shape, dtype)
        blocks.append(da.from_delayed(task, shape=(len(chunk), *shape), dtype=dtype))
    return da.concatenate(blocks, axis=0)
