"""Pixel data: parameters, native decoding and (by codec) compressed frames.

Importing this package connects ``Dataset.pixel_array``, ``Dataset.frame`` and
``Dataset.frames`` to the decoders here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dicomfast import dataset as _dataset
from dicomfast.errors import MalformedDataError, UnsupportedTransferSyntaxError
from dicomfast.pixels.native import check_out, decode_native
from dicomfast.pixels.params import ImageParams

__all__ = ["ImageParams", "decode_native", "pixel_source"]

_EL_FRAGMENTS = 0x0008
_EL_BIG_ENDIAN = 0x0040


def pixel_source(ds: Any) -> tuple[Any, int, bool, bool, str]:
    """(buffer, pixel tag, little_endian, encapsulated, VR) of a dataset's pixel data.

    The buffer is a zero-copy view of the file when the element is unchanged.
    """
    found = ds._pixel_value_view()
    if found is None:
        raise MalformedDataError("the data set has no Pixel Data", tag=0x7FE00010)
    index, pos, tag = found
    vr = ds[tag].VR
    if index is not None:
        flags = index.flags(pos)
        return (index.value_view(pos), tag, not flags & _EL_BIG_ENDIAN,
                bool(flags & _EL_FRAGMENTS), vr)
    el = ds[tag]
    root = ds
    while root.parent is not None:
        root = root.parent
    little = root.is_little_endian is not False
    return el.value, tag, little, bool(el.is_undefined_length), vr


def _transfer_syntax_uid(ds: Any) -> str:
    root = ds
    while root.parent is not None:
        root = root.parent
    ts = getattr(root, "transfer_syntax", None)
    if ts is not None:
        return ts.uid
    meta = root.file_meta
    if meta is not None and "TransferSyntaxUID" in meta:
        return str(meta.TransferSyntaxUID)
    return ""


def _decode(ds: Any, frames: range | None, out: np.ndarray | None) -> np.ndarray:
    buf, tag, little, encapsulated, vr = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    if encapsulated:
        uid = _transfer_syntax_uid(ds)
        raise UnsupportedTransferSyntaxError(
            f"no decoder for compressed pixel data of transfer syntax {uid!r} in this build")
    return decode_native(buf, params, little_endian=little, frames=frames, out=out, tag=tag,
                         vr=vr)


def pixel_array(ds: Any) -> np.ndarray:
    """All frames, shaped as pydicom shapes them.

    A read-only zero-copy view is kept on the dataset until one of its elements
    changes; arrays the caller may write to are decoded afresh on each call.
    """
    cached = ds.__dict__.get("_pixel_cache")
    if cached is not None:
        return cached
    arr = _decode(ds, None, None)
    if not arr.flags.writeable:
        ds.__dict__["_pixel_cache"] = arr
    return arr


def frame(ds: Any, index: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Frame `index` (negative counts from the end) as (rows, cols[, samples])."""
    tag = pixel_source(ds)[1]
    params = ImageParams.from_dataset(ds, tag)
    n = params.number_of_frames
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"frame {index} of {n}")
    arr = _decode(ds, range(index, index + 1), out)
    return arr.reshape(params.frame_shape)


def frames(ds: Any, indices: Any = None, *, out: np.ndarray | None = None,
           threads: int | None = None) -> np.ndarray:
    """Frames `indices` (all by default) as one (n, rows, cols[, samples]) array."""
    tag = pixel_source(ds)[1]
    params = ImageParams.from_dataset(ds, tag)
    n_all = params.number_of_frames
    wanted = list(range(n_all)) if indices is None else [int(i) % n_all if i < 0 else int(i)
                                                        for i in indices]
    shape = (len(wanted), *params.frame_shape)
    result = np.empty(shape, params.dtype) if out is None else check_out(out, shape, params.dtype)
    if wanted == list(range(wanted[0], wanted[0] + len(wanted))) if wanted else False:
        _decode(ds, range(wanted[0], wanted[0] + len(wanted)), result)
        return result
    for k, i in enumerate(wanted):
        if not 0 <= i < n_all:
            raise IndexError(f"frame {i} of {n_all}")
        _decode(ds, range(i, i + 1), result[k])
    return result


_dataset._pixel_handlers.update(pixel_array=pixel_array, frame=frame, frames=frames)
