"""Pixel data: parameters, native decoding, encapsulated frames and codecs.

Importing this package connects ``Dataset.pixel_array``, ``Dataset.frame`` and
``Dataset.frames`` to the decoders here.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np

from dicomfast import dataset as _dataset
from dicomfast.errors import DecodeError, MalformedDataError
from dicomfast.pixels import workers
from dicomfast.pixels.codecs import codec_for, decode_frame, encode_frame
from dicomfast.pixels.encaps import EncapsulatedFrames, split_frames
from dicomfast.pixels.native import (
    check_out,
    decode_native,
    finish,
    needs_sign_extension,
    sign_extend,
)
from dicomfast.pixels.params import ImageParams, check_decoded_size

__all__ = ["ImageParams", "decode_frame", "decode_many", "decode_native", "encode_frame",
           "encapsulated_frames",
           "pixel_source"]

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
    value = el.value
    # Pixel Data is OB/OW (OF/OD for float); with another VR in the file (US, a text
    # VR) its decoded value is numbers or text, not bytes (PS3.5 §8.1.1).
    try:
        memoryview(value)
    except TypeError:
        raise MalformedDataError(f"Pixel Data has VR {vr}, which holds no pixel bytes",
                                 tag=tag) from None
    return value, tag, little, bool(el.is_undefined_length), vr


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


def _encapsulated(ds: Any, buf: Any, params: ImageParams, little: bool) -> EncapsulatedFrames:
    cached = ds.__dict__.get("_frames_cache")
    if cached is None:
        cached = split_frames(buf, params.number_of_frames, _transfer_syntax_uid(ds),
                              little_endian=little, eot=ds.get("ExtendedOffsetTable"),
                              eot_lengths=ds.get("ExtendedOffsetTableLengths"))
        ds.__dict__["_frames_cache"] = cached
    return cached


def encapsulated_frames(ds: Any) -> EncapsulatedFrames:
    """The compressed frames of `ds`, found once (offset tables, fragments, markers)."""
    buf, tag, little, encapsulated, _ = pixel_source(ds)
    if not encapsulated:
        raise ValueError("the pixel data is not encapsulated")
    return _encapsulated(ds, buf, ImageParams.from_dataset(ds, tag), little)


def _decode_encapsulated(ds: Any, buf: Any, params: ImageParams, little: bool,
                         frames: range | list[int], out: np.ndarray | None,
                         threads: int | None) -> np.ndarray:
    # The attributes alone size the output (and the frame index): check them first.
    check_decoded_size(params, len(frames))
    found = _encapsulated(ds, buf, params, little)
    codec = codec_for(_transfer_syntax_uid(ds))
    n = len(frames)
    shape = (n, params.pixels_per_frame)
    arr = np.empty(shape, params.dtype) if out is None else check_out(out, shape, params.dtype)
    flat = arr.view(np.uint8).reshape(n, -1)
    strict = bool(ds._strict)

    for i in frames:
        if not 0 <= i < len(found):
            raise IndexError(f"frame {i} of {len(found)}")
    if codec.decodes_spans and all(found.frames[i][1] == 1 for i in frames):
        # Every frame is one fragment: one native call per thread decodes its share
        # straight from the file's buffer.
        spans = [found.frames[i][2:] for i in frames]
        chunks = _chunks(n, threads)
        # The sign extension is done by each thread on its share, not afterwards
        # on one thread over the whole batch.
        extend = needs_sign_extension(params)

        def batch(c: int) -> None:
            a, b = chunks[c]
            try:
                codec.decode_spans(found.value, spans[a:b], params, flat[a:b], strict)
            except DecodeError as exc:
                raise DecodeError(exc.detail, codec=codec.name,
                                  frame=frames[a + (exc.frame or 0)]) from None
            if extend:
                sign_extend(arr[a:b], params)

        _run(batch, len(chunks), threads)
        if extend:  # done: finish must not extend again
            params = replace(params, bits_stored=params.bits_allocated)
    else:
        # One frame cannot be shared out between threads; a codec that can use
        # threads within a frame (OpenJPEG's code-blocks) gets them instead.
        within = threads if n == 1 and threads and threads > 1 else None

        def one(k: int) -> None:
            i = frames[k]
            try:
                codec.decode(found.frame(i), params, flat[k], strict, threads=within)
            except DecodeError as exc:
                raise DecodeError(exc.detail, codec=codec.name, frame=i) from None

        _run(one, n, threads)
    # Codecs give pixel-interleaved samples whatever Planar Configuration says.
    return finish(arr, replace(params, planar_configuration=0), n, out is not None)


def _chunks(n: int, threads: int | None) -> list[tuple[int, int]]:
    """Split range(n) into one contiguous (start, stop) share per thread."""
    parts = max(1, min(threads or 1, n))
    bounds = [n * c // parts for c in range(parts + 1)]
    return [(bounds[c], bounds[c + 1]) for c in range(parts)]


def _run(work: Any, n: int, threads: int | None) -> None:
    """Run work(k) for k in range(n), on `threads` threads (the codecs release the GIL)."""
    workers.run(work, n, threads)


def _decode(ds: Any, frames: range | None, out: np.ndarray | None,
            threads: int | None = None) -> np.ndarray:
    buf, tag, little, encapsulated, vr = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    if encapsulated:
        wanted = range(params.number_of_frames) if frames is None else frames
        arr = _decode_encapsulated(ds, buf, params, little, wanted, out, threads)
        shape = params.array_shape(len(wanted)) if frames is None else None
        return arr.reshape(shape) if shape is not None else arr
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


def frame(ds: Any, index: int, *, out: np.ndarray | None = None,
          reduce: int = 0, threads: int | None = None) -> np.ndarray:
    """Frame `index` (negative counts from the end) as (rows, cols[, samples]).

    `reduce` (JPEG 2000 and HTJ2K data only) decodes that many resolution levels
    down, each halving rows and columns: a quick thumbnail (see decode_frame).
    `threads` decodes a JPEG 2000 frame on that many threads."""
    buf, tag, little, encapsulated, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    n = params.number_of_frames
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"frame {index} of {n}")
    if reduce:
        if not encapsulated:
            raise ValueError("reduce= needs JPEG 2000 or HTJ2K frames, not native pixel data")
        found = _encapsulated(ds, buf, params, little)
        if not 0 <= index < len(found):
            raise IndexError(f"frame {index} of {len(found)}")
        try:
            return decode_frame(found.frame(index), params, _transfer_syntax_uid(ds), out=out,
                                strict=bool(ds._strict), reduce=reduce, threads=threads)
        except DecodeError as exc:
            raise DecodeError(exc.detail, codec=exc.codec, frame=index) from None
    arr = _decode(ds, range(index, index + 1), out, threads)
    return arr.reshape(params.frame_shape)


def frames(ds: Any, indices: Any = None, *, out: np.ndarray | None = None,
           threads: int | None = None) -> np.ndarray:
    """Frames `indices` (all by default) as one (n, rows, cols[, samples]) array.

    Compressed frames are decoded on `threads` threads (default: 1).
    """
    buf, tag, little, encapsulated, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    n_all = params.number_of_frames
    wanted = list(range(n_all)) if indices is None else [
        int(i) + n_all if int(i) < 0 else int(i) for i in indices]
    for i in wanted:
        if not 0 <= i < n_all:
            raise IndexError(f"frame {i} of {n_all}")
    shape = (len(wanted), *params.frame_shape)
    if encapsulated:  # native data was checked against the bytes present
        check_decoded_size(params, len(wanted))
    result = np.empty(shape, params.dtype) if out is None else check_out(out, shape, params.dtype)
    if encapsulated:
        _decode_encapsulated(ds, buf, params, little, wanted, result, threads)
        return result
    if wanted and wanted == list(range(wanted[0], wanted[0] + len(wanted))):
        _decode(ds, range(wanted[0], wanted[0] + len(wanted)), result)
        return result
    for k, i in enumerate(wanted):
        _decode(ds, range(i, i + 1), result[k])
    return result


def decode_many(sources: Any, *, out: np.ndarray | None = None,
                threads: int | None = None) -> np.ndarray:
    """Every frame of several datasets (or paths) into one (n, rows, cols[, samples]) array.

    All must share the frame shape and dtype. Files are read and frames decoded
    on `threads` threads (default: the CPU count), with the GIL released in the
    C scanner and codecs.
    """
    from dicomfast.part10 import read

    threads = threads or os.cpu_count() or 1
    items = list(sources)

    def load(k: int) -> None:
        if not isinstance(items[k], _dataset.Dataset):
            items[k] = read(items[k])

    _run(load, len(items), threads)
    plan: list[tuple[Any, int]] = []
    params0: ImageParams | None = None
    for ds in items:
        p = ImageParams.from_dataset(ds, pixel_source(ds)[1])
        if params0 is None:
            params0 = p
        elif (p.frame_shape, p.dtype) != (params0.frame_shape, params0.dtype):
            raise ValueError(f"frames of shape {p.frame_shape} {p.dtype} do not stack with "
                             f"{params0.frame_shape} {params0.dtype}")
        plan.extend((ds, i) for i in range(p.number_of_frames))
    if params0 is None:
        raise ValueError("no datasets to decode")
    shape = (len(plan), *params0.frame_shape)
    result = np.empty(shape, params0.dtype) if out is None else check_out(
        out, shape, params0.dtype)
    _run(lambda k: frame(plan[k][0], plan[k][1], out=result[k]), len(plan), threads)
    return result


_dataset.extensions.update(pixel_array=pixel_array, frame=frame, frames=frames)
