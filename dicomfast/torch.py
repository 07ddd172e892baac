"""PyTorch loading: a map-style Dataset of DICOM images and a threaded batch decoder.

    >>> from torch.utils.data import DataLoader
    >>> from dicomfast.torch import DicomDataset
    >>> ds = DicomDataset(paths, rescale=True, dtype=torch.float32)
    >>> loader = DataLoader(ds, batch_size=32, num_workers=4)

or, with no worker processes at all, whole batches decoded on threads straight
into one preallocated (pinned, when CUDA is there) tensor:

    >>> for batch in ds.batches(32, threads=8):
    ...     batch = batch.to("cuda", non_blocking=True)

Files are read by :func:`dicomfast.read` and decoded by the C codecs, which
release the GIL; a batch's frames are decoded on threads into slices of one
buffer (the codecs take ``out=``), so a batch costs one allocation, or none when
the caller passes the buffer back in.

With ``rescale=True`` the Modality LUT's linear form is applied (PS3.3
§C.11.1.1: output = Rescale Slope × stored value + Rescale Intercept), from the
data set or, in enhanced multi-frame images, the Pixel Value Transformation
Sequence of the functional groups (PS3.3 §C.7.6.16.2.9), per frame.

torch is an optional dependency: ``pip install 'dicomfast[torch]'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from dicomfast.dataset import Dataset
from dicomfast.errors import MalformedDataError
from dicomfast.part10 import read
from dicomfast.pixels import ImageParams, decode_many, pixel_source, workers
from dicomfast.scan import ScanResult, iter_paths

try:
    import torch
    from torch.utils.data import Dataset as _TorchDataset
except ImportError as exc:  # pragma: no cover - torch is an optional extra
    raise ImportError("dicomfast.torch needs PyTorch: pip install 'dicomfast[torch]'") from exc

__all__ = ["DicomDataset", "decode_batch", "rescale_params"]

_PATH_COLUMN = "path"


def _paths_from(source: Any, path_column: str) -> list[str]:
    """File paths from a list of paths, a folder, a ScanResult, or a table with a
    path column (pandas DataFrame, pyarrow Table); rows of failed files are dropped."""
    if isinstance(source, (str, os.PathLike)):
        return list(iter_paths(source))  # a folder: every file under it
    if isinstance(source, ScanResult):
        paths = source.column(path_column)
        errors = source.column("error_type")
        return [p for p, e in zip(paths, errors, strict=True) if e is None]
    if hasattr(source, "column") and hasattr(source, "schema"):  # pyarrow.Table
        table = source
        if "error_type" in table.column_names:
            import pyarrow.compute as pc

            table = table.filter(pc.is_null(table.column("error_type")))
        return [str(p) for p in table.column(path_column).to_pylist()]
    if hasattr(source, "columns") and hasattr(source, "loc"):  # pandas.DataFrame
        frame = source
        if "error_type" in frame.columns:
            frame = frame[frame["error_type"].isna()]
        return [str(p) for p in frame[path_column]]
    return [os.fspath(p) for p in source]


def _frame_params(ds: Dataset) -> ImageParams:
    return ImageParams.from_dataset(ds, pixel_source(ds)[1])


def _linear(item: Any) -> tuple[float, float] | None:
    slope, intercept = item.get("RescaleSlope"), item.get("RescaleIntercept")
    if slope in (None, "") or intercept in (None, ""):
        return None
    return float(slope), float(intercept)


def rescale_params(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(slopes, intercepts), one per frame, of the data set's linear Modality LUT
    (PS3.3 §C.11.1.1): per-frame functional groups, then shared ones, then the data
    set's own Rescale Slope / Intercept; 1 and 0 where none is given."""
    n = _frame_params(ds).number_of_frames
    slopes, intercepts = np.ones(n), np.zeros(n)
    top = _linear(ds)
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared_lin = None
    if shared:
        inner = shared[0].get("PixelValueTransformationSequence")
        shared_lin = _linear(inner[0]) if inner else None
    for i in range(n):
        found = None
        if per_frame and i < len(per_frame):
            inner = per_frame[i].get("PixelValueTransformationSequence")
            found = _linear(inner[0]) if inner else None
        found = found or shared_lin or top
        if found is not None:
            slopes[i], intercepts[i] = found
    return slopes, intercepts


def _torch_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    # a numpy dtype or its name
    return torch.from_numpy(np.empty(0, np.dtype(dtype))).dtype


def _to_tensor(arr: np.ndarray, ds: Dataset, rescale: bool, dtype: torch.dtype | None,
               single_frame: bool) -> torch.Tensor:
    if not arr.flags.writeable:
        arr = arr.copy()  # a read-only view of the file: torch wants to own writable memory
    tensor = torch.from_numpy(arr)
    if rescale:
        slopes, intercepts = rescale_params(ds)
        out_dtype = dtype if dtype is not None and dtype.is_floating_point else torch.float32
        tensor = tensor.to(out_dtype)
        shape = (-1,) + (1,) * (tensor.dim() - (0 if single_frame else 1))
        if single_frame:
            tensor.mul_(float(slopes[0])).add_(float(intercepts[0]))
        else:
            tensor.mul_(torch.from_numpy(slopes).to(out_dtype).view(shape)).add_(
                torch.from_numpy(intercepts).to(out_dtype).view(shape))
    if dtype is not None and tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    return tensor


class DicomDataset(_TorchDataset):
    """A map-style dataset of DICOM files: item `i` is file `i`'s pixel data as a tensor.

    `source`: paths, a folder, a :class:`dicomfast.scan.ScanResult`, or a pandas /
    pyarrow table with a ``path`` column (`path_column`), as a scan writes it; rows
    of files the scan could not read are left out. Items have pydicom's shape:
    (rows, columns[, samples]) for one frame, (frames, rows, columns[, samples])
    for more. `dtype` (a torch or numpy dtype) converts; None keeps the stored
    type (uint16, int16, ...), or float32 with `rescale`. `transform` is applied
    to each tensor.

    The dataset holds only the paths (in one numpy array, so that DataLoader
    worker processes share its pages instead of copying them as reference counts
    change), and pickles small.
    """

    def __init__(self, source: Any, *, rescale: bool = False, dtype: Any = None,
                 transform: Any = None, path_column: str = _PATH_COLUMN):
        paths = _paths_from(source, path_column)
        self.paths = np.array(paths, dtype=str) if paths else np.array([], dtype=str)
        self.rescale = bool(rescale)
        self.dtype = _torch_dtype(dtype)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> Dataset:
        """The data set of item `index` (its pixel data not decoded)."""
        return read(str(self.paths[index]))

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of {len(self)}")
        ds = self.read(index)
        arr = ds.pixel_array
        n = _frame_params(ds).number_of_frames
        tensor = _to_tensor(np.asarray(arr), ds, self.rescale, self.dtype, n == 1)
        return self.transform(tensor) if self.transform is not None else tensor

    def batch(self, indices: Sequence[int], *, out: torch.Tensor | None = None,
              threads: int | None = None, pin_memory: bool | None = None) -> torch.Tensor:
        """Items `indices` stacked into one (n, rows, columns[, samples]) tensor,
        decoded on `threads` threads (single-frame files of one frame shape)."""
        return decode_batch([str(self.paths[i]) for i in indices], out=out, threads=threads,
                            rescale=self.rescale, dtype=self.dtype, pin_memory=pin_memory)

    def batches(self, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                threads: int | None = None, pin_memory: bool | None = None,
                generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Batches of `batch_size` items, each decoded by :meth:`batch` into one buffer
        reused while the batch size stays the same (copy a batch to keep it)."""
        order = (torch.randperm(len(self), generator=generator).tolist() if shuffle
                 else list(range(len(self))))
        out = None
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            if len(indices) < batch_size and drop_last:
                return
            if out is not None and out.shape[0] != len(indices):
                out = None
            out = self.batch(indices, out=out, threads=threads, pin_memory=pin_memory)
            yield out


def _new_buffer(shape: tuple[int, ...], dtype: torch.dtype, pin_memory: bool) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, pin_memory=pin_memory)


def decode_batch(sources: Sequence[Any], *, out: torch.Tensor | None = None,
                 threads: int | None = None, rescale: bool = False, dtype: Any = None,
                 pin_memory: bool | None = None) -> torch.Tensor:
    """Every frame of `sources` (paths or data sets) in one (n, rows, columns[, samples])
    tensor.

    Files are read and frames decoded on `threads` threads (default: the CPU
    count) straight into the output buffer: `out` when given (its shape and dtype
    must match), else a new tensor, in pinned memory when `pin_memory` (default:
    when CUDA is available). With the stored dtype and no `rescale` the codecs
    write into the tensor's own memory; otherwise into one native staging array,
    converted (and rescaled per frame) into the tensor.
    """
    threads = threads or os.cpu_count() or 1
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    items: list[Any] = list(sources)
    if not items:
        raise ValueError("no files to decode")

    def load(k: int) -> None:
        if not isinstance(items[k], Dataset):
            items[k] = read(items[k])

    workers.run(load, len(items), threads)
    params = [_frame_params(ds) for ds in items]
    first = params[0]
    for p in params[1:]:
        if (p.frame_shape, p.dtype) != (first.frame_shape, first.dtype):
            raise MalformedDataError(f"frames of shape {p.frame_shape} {p.dtype} do not stack "
                                     f"with {first.frame_shape} {first.dtype}")
    n = sum(p.number_of_frames for p in params)
    shape = (n, *first.frame_shape)
    native = _torch_dtype(first.dtype)
    want = _torch_dtype(dtype)
    if want is None:
        want = torch.float32 if rescale else native
    if rescale and not want.is_floating_point:
        raise ValueError(f"rescaled values need a floating point dtype, not {want}")
    if out is not None:
        if tuple(out.shape) != shape or out.dtype != want or not out.is_contiguous() \
                or out.device.type != "cpu":
            raise ValueError(f"out is {tuple(out.shape)} {out.dtype} on {out.device}; "
                             f"this batch needs a contiguous CPU tensor {shape} {want}")
        result = out
    else:
        result = _new_buffer(shape, want, pin_memory)
    if want == native and not rescale:
        # The codecs write into the tensor's memory: no staging, no copy.
        decode_many(items, out=result.numpy(), threads=threads)
        return result
    staging = np.empty(shape, first.dtype)
    decode_many(items, out=staging, threads=threads)
    result.copy_(torch.from_numpy(staging))
    if rescale:
        slopes = np.concatenate([rescale_params(ds)[0] for ds in items])
        intercepts = np.concatenate([rescale_params(ds)[1] for ds in items])
        view = (n,) + (1,) * (len(shape) - 1)
        if np.any(slopes != 1):
            result.mul_(torch.from_numpy(slopes).to(want).view(view))
        if np.any(intercepts != 0):
            result.add_(torch.from_numpy(intercepts).to(want).view(view))
    return result
