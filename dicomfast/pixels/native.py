"""Native (uncompressed) pixel data: PS3.5 §8.1.1 and §8.2.

Little-endian data whose layout already matches is returned as a read-only
zero-copy view of the file buffer; big-endian data is swapped by the C core
into a new (or the caller's) array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dicomfast._native import _pixels
from dicomfast.errors import MalformedDataError
from dicomfast.pixels.params import ImageParams


def check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Validate a caller's output array: dtype, C-contiguity, shape (or size)."""
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, the pixel data needs {dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    if out.shape != shape:
        if out.size != int(np.prod(shape)):
            raise ValueError(f"out has shape {out.shape}, the pixel data needs {shape}")
        out = out.reshape(shape)
    return out


def _stored_frame_bits(p: ImageParams) -> int:
    return p.rows * p.columns * p.samples_per_pixel * p.bits_allocated


def decode_native(
    buf: Any,
    p: ImageParams,
    *,
    little_endian: bool,
    frames: range | None = None,
    out: np.ndarray | None = None,
    tag: int = 0x7FE00010,
    vr: str = "OW",
) -> np.ndarray:
    """Frames `frames` (all by default) of native pixel data `buf` as an array."""
    view = memoryview(buf).cast("B")
    if not little_endian and vr == "OW" and p.bits_allocated <= 8:
        # PS3.5 §7.3: OW is a stream of 16-bit words, so big endian swaps byte
        # pairs even when the pixels are 8 or 1 bits.
        swapped = bytearray(len(view) & ~1)
        _pixels.swap_bytes(view[: len(swapped)], swapped, 2)
        view = memoryview(swapped)
    if p.photometric_interpretation == "YBR_FULL_422" and p.samples_per_pixel == 3:
        return _decode_ybr_full_422(view, p, frames, out, tag)
    if frames is None:
        frames = range(p.number_of_frames)
    n = len(frames)
    if frames and (frames.start < 0 or frames[-1] >= p.number_of_frames):
        raise IndexError(f"frame {frames[-1]} of {p.number_of_frames}")
    frame_bits = _stored_frame_bits(p)
    needed_bits = frame_bits * (frames.stop if frames else 0)
    if needed_bits > len(view) * 8:
        raise MalformedDataError(
            f"pixel data has {len(view)} bytes, {(needed_bits + 7) // 8} are needed for "
            f"{p.number_of_frames} frame(s) of {p.rows} x {p.columns} x {p.samples_per_pixel} "
            f"at {p.bits_allocated} bits", tag=tag)
    dtype = p.dtype
    flat_shape: tuple[int, ...] = (n, p.pixels_per_frame)
    if p.bits_allocated == 1:
        arr = np.empty(flat_shape, np.uint8) if out is None else check_out(out, flat_shape, dtype)
        _pixels.unpack_bits(view, arr.reshape(-1), frames.start * frame_bits if frames else 0,
                            n * frame_bits)
    else:
        start = frames.start * (frame_bits // 8) if frames else 0
        raw = view[start:start + n * (frame_bits // 8)]
        if little_endian or dtype.itemsize == 1:
            arr = np.frombuffer(raw, dtype=dtype).reshape(flat_shape)
            if out is not None:
                target = check_out(out, flat_shape, dtype)
                target[...] = arr
                arr = target
        else:
            arr = np.empty(flat_shape, dtype) if out is None else check_out(out, flat_shape, dtype)
            _pixels.swap_bytes(raw, arr.reshape(-1).view(np.uint8), dtype.itemsize)
    return finish(arr, p, n, out is not None)


def needs_sign_extension(p: ImageParams) -> bool:
    """Two's complement in fewer bits than allocated (PS3.5 §8.1.1)."""
    return (p.pixel_representation == 1 and p.bits_stored < p.bits_allocated
            and p.bits_allocated > 1 and not p.float_pixels)


def sign_extend(arr: np.ndarray, p: ImageParams) -> None:
    """Extend the sign of BitsStored-bit samples to the whole word, in place (numpy
    releases the GIL here, so slices of one batch can be done on several threads)."""
    shift = p.bits_allocated - p.bits_stored
    np.left_shift(arr, shift, out=arr)
    np.right_shift(arr, shift, out=arr)


def finish(arr: np.ndarray, p: ImageParams, n: int, in_place: bool) -> np.ndarray:
    """Sign-extend, de-planarize and shape a (frames, pixels) array."""
    if needs_sign_extension(p):
        if not arr.flags.writeable:
            arr = arr.copy()
        sign_extend(arr, p)
    if p.samples_per_pixel > 1 and p.planar_configuration == 1:
        planar = arr.reshape(n, p.samples_per_pixel, p.rows, p.columns)
        inter = np.ascontiguousarray(planar.transpose(0, 2, 3, 1))
        if in_place:
            arr.reshape(-1)[...] = inter.reshape(-1)
        else:
            arr = inter
    shape = p.array_shape(n) if n != 1 or p.number_of_frames == 1 else p.frame_shape
    return arr.reshape(shape)


def _decode_ybr_full_422(view: memoryview, p: ImageParams, frames: range | None,
                         out: np.ndarray | None, tag: int) -> np.ndarray:
    """Native YBR_FULL_422 (PS3.3 C.7.6.3.1.2): Y0 Y1 Cb Cr per pixel pair; the
    chroma is repeated for both pixels, giving full-size (rows, cols, 3)."""
    if p.bits_allocated != 8 or p.columns % 2:
        raise MalformedDataError("YBR_FULL_422 needs 8-bit samples and an even width", tag=tag)
    if frames is None:
        frames = range(p.number_of_frames)
    n = len(frames)
    stored = p.rows * p.columns * 2
    start = frames.start * stored if frames else 0
    if start + n * stored > len(view):
        raise MalformedDataError(
            f"pixel data has {len(view)} bytes, {start + n * stored} are needed", tag=tag)
    quads = np.frombuffer(view[start:start + n * stored], np.uint8).reshape(n, -1, 4)
    flat_shape = (n, p.pixels_per_frame)
    arr = np.empty(flat_shape, np.uint8) if out is None else check_out(out, flat_shape,
                                                                        np.dtype(np.uint8))
    pix = arr.reshape(n, -1, 2, 3)
    pix[:, :, 0, 0] = quads[:, :, 0]
    pix[:, :, 1, 0] = quads[:, :, 1]
    pix[:, :, :, 1] = quads[:, :, 2:3]
    pix[:, :, :, 2] = quads[:, :, 3:4]
    return finish(arr, p, n, out is not None)
