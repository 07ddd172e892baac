# cython: language_level=3, boundscheck=False, wraparound=False
"""RLE Lossless (PS3.5 Annex G): one frame into a caller's buffer, and back.

The uncompressed side is the native little-endian, pixel-interleaved layout
(rows x columns x samples, bits_allocated / 8 bytes per sample).

Buffers are taken through the buffer protocol directly (PyBUF_SIMPLE: any
C-contiguous bytes-like, no copy) rather than as typed memoryviews: creating
the two memoryview objects costs more than decoding a small frame (an RT Dose
frame of 10 x 10 pixels decodes in about 0.15 us). For the same reason a numpy
output array is reached through numpy's C API (its data pointer, no buffer
export), and decode() makes the array itself when given none.
"""
import sys

import numpy as _np

from cpython.buffer cimport (
    PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer,
)
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t

cimport numpy as cnp

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_OK, DF_RLE_MAX_SEGMENTS, df_error, df_rle_decode, df_rle_encode, df_rle_encode_bound,
    df_rle_opts, df_status,
)

from dicomfast.errors import DecodeError, EncodeError


cdef extern from "Python.h":
    # Raw pointers so the encoded bytes object can be shrunk in place once
    # its final length is known.
    PyObject *PyBytes_FromStringAndSize(const char *v, Py_ssize_t n)
    char *PyBytes_AS_STRING(PyObject *o)
    int _PyBytes_Resize(PyObject **o, Py_ssize_t n)
    void Py_DECREF(PyObject *o)


cdef enum:
    # Frames at least this large are decoded without the GIL; for smaller
    # ones releasing and retaking it costs more than the decoding.
    NOGIL_BYTES = 32768

cdef str CODEC = "RLE Lossless"

cnp.import_array()
# Arrays decode() makes hold little endian samples: native ones only on such hosts.
cdef bint LITTLE_HOST = sys.byteorder == "little"


cdef object _new_frame(Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t samples,
                       Py_ssize_t bits):
    """An empty (rows, columns[, samples]) array of unsigned little endian samples."""
    cdef cnp.npy_intp dims[3]
    cdef int typenum
    dims[0] = rows
    dims[1] = columns
    dims[2] = samples
    if bits == 8:
        typenum = cnp.NPY_UINT8
    elif bits == 16:
        typenum = cnp.NPY_UINT16
    elif bits == 32:
        typenum = cnp.NPY_UINT32
    elif bits == 64:
        typenum = cnp.NPY_UINT64
    else:
        raise ValueError(f"no array type for {bits}-bit samples")
    if not LITTLE_HOST and bits > 8:
        shape = [rows, columns] if samples == 1 else [rows, columns, samples]
        return _np.empty(shape, f"<u{bits // 8}")
    return cnp.PyArray_SimpleNew(2 if samples == 1 else 3, dims, typenum)


cdef Py_ssize_t _frame_size(df_rle_opts *opts, Py_ssize_t rows, Py_ssize_t columns,
                            Py_ssize_t samples_per_pixel, Py_ssize_t bits_allocated,
                            bint strict) except -1:
    """Fill opts; return the frame size in bytes, or 0 when bits_allocated is
    not a whole number of bytes (the C core then says why it cannot)."""
    if not 0 < rows <= 0xFFFFFFFF or not 0 < columns <= 0xFFFFFFFF:
        raise ValueError(f"{rows} x {columns} is not a frame size")
    if not 0 < samples_per_pixel <= 0xFFFF or not 0 < bits_allocated <= 0xFFFF:
        raise ValueError(
            f"{samples_per_pixel} samples of {bits_allocated} bits is not a pixel format")
    opts.rows = <unsigned int>rows
    opts.columns = <unsigned int>columns
    opts.samples_per_pixel = <unsigned short>samples_per_pixel
    opts.bits_allocated = <unsigned short>bits_allocated
    opts.strict = strict
    if bits_allocated % 8:
        return 0
    cdef unsigned long long pixels = <unsigned long long>rows * <unsigned long long>columns
    cdef unsigned long long per_pixel = samples_per_pixel * (bits_allocated // 8)
    if pixels > (<unsigned long long>1 << 60) // per_pixel:
        raise ValueError(f"{rows} x {columns} pixels of {per_pixel} bytes is too large")
    return <Py_ssize_t>(pixels * per_pixel)


def decode(src, out, Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t samples_per_pixel,
           Py_ssize_t bits_allocated, bint strict=False):
    """Decode one RLE frame (its fragments concatenated) into `out`.

    `src` is any contiguous bytes-like object. `out` is a writable contiguous
    buffer of exactly rows x columns x samples_per_pixel x bits_allocated / 8
    bytes (e.g. a numpy array of the pixel dtype, or a slice of a batch of
    frames); it receives the samples little endian and pixel-interleaved.
    Returns the number of bytes written; with `out` None, a new array of
    unsigned samples, (rows, columns) or (rows, columns, samples). Raises
    DecodeError for corrupt data and ValueError for a wrongly sized `out`.
    """
    cdef df_rle_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    cdef Py_buffer sb, ob
    cdef uint8_t *dst
    cdef Py_ssize_t dst_len
    cdef bint exported = False
    cdef Py_ssize_t size = _frame_size(&opts, rows, columns, samples_per_pixel, bits_allocated,
                                       strict)
    made = out is None
    if made:
        out = _new_frame(rows, columns, samples_per_pixel, bits_allocated)
    PyObject_GetBuffer(src, &sb, PyBUF_SIMPLE)
    try:
        if cnp.PyArray_CheckExact(out) and cnp.PyArray_ISCARRAY(<cnp.ndarray>out):
            dst = <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>out)
            dst_len = cnp.PyArray_NBYTES(<cnp.ndarray>out)
        else:
            PyObject_GetBuffer(out, &ob, PyBUF_SIMPLE | PyBUF_WRITABLE)
            exported = True
            dst = <uint8_t *>ob.buf
            dst_len = ob.len
        try:
            if size and dst_len != size:
                raise ValueError(f"output buffer has {dst_len} bytes; the frame needs {size}")
            if size >= NOGIL_BYTES:
                with nogil:
                    st = df_rle_decode(<const uint8_t *>sb.buf, <size_t>sb.len,
                                       dst, <size_t>dst_len, &n_out, &opts, &err)
            else:
                st = df_rle_decode(<const uint8_t *>sb.buf, <size_t>sb.len,
                                   dst, <size_t>dst_len, &n_out, &opts, &err)
        finally:
            if exported:
                PyBuffer_Release(&ob)
    finally:
        PyBuffer_Release(&sb)
    check(st, &err, CODEC)
    return out if made else n_out


def decode_spans(src, spans, out, Py_ssize_t rows, Py_ssize_t columns,
                 Py_ssize_t samples_per_pixel, Py_ssize_t bits_allocated, bint strict=False):
    """Decode many frames of one geometry in one call: frame k is
    ``src[offset:offset + length]`` for ``spans[k] == (offset, length)`` and goes
    to bytes ``[k * size, (k + 1) * size)`` of `out`.

    One call for a whole series avoids a Python round trip per frame, which
    for small frames (RT Dose grids, thumbnails) costs more than decoding. A
    corrupt frame raises DecodeError with ``.frame`` = its position in `spans`.
    """
    cdef df_rle_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st = DF_OK
    cdef Py_buffer sb, ob
    cdef Py_ssize_t size = _frame_size(&opts, rows, columns, samples_per_pixel, bits_allocated,
                                       strict)
    cdef Py_ssize_t n = len(spans)
    cdef Py_ssize_t k = 0, failed = -1
    cdef size_t *where = <size_t *>PyMem_Malloc(max(n, 1) * 2 * sizeof(size_t))
    if where == NULL:
        raise MemoryError()
    try:
        PyObject_GetBuffer(src, &sb, PyBUF_SIMPLE)
        try:
            for k in range(n):
                offset, length = spans[k]
                if offset < 0 or length < 0 or offset + length > sb.len:
                    raise ValueError(f"span {k} ({offset}, {length}) is outside the "
                                     f"{sb.len}-byte source")
                where[2 * k] = offset
                where[2 * k + 1] = length
            PyObject_GetBuffer(out, &ob, PyBUF_SIMPLE | PyBUF_WRITABLE)
            try:
                if ob.len != n * size:
                    raise ValueError(f"output buffer has {ob.len} bytes; {n} frames need "
                                     f"{n * size}")
                with nogil:
                    for k in range(n):
                        st = df_rle_decode(<const uint8_t *>sb.buf + where[2 * k],
                                           where[2 * k + 1], <uint8_t *>ob.buf + k * size,
                                           <size_t>size, &n_out, &opts, &err)
                        if st != DF_OK:
                            failed = k
                            break
            finally:
                PyBuffer_Release(&ob)
        finally:
            PyBuffer_Release(&sb)
    finally:
        PyMem_Free(where)
    if failed >= 0:
        try:
            check(st, &err, CODEC)
        except DecodeError as exc:
            raise DecodeError(err.detail.decode("utf-8", "replace"), codec=CODEC,
                              frame=failed) from None


def encode_bound(Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t samples_per_pixel,
                 Py_ssize_t bits_allocated):
    """The largest size one encoded frame of this geometry can have (0: not encodable)."""
    cdef df_rle_opts opts
    _frame_size(&opts, rows, columns, samples_per_pixel, bits_allocated, False)
    return df_rle_encode_bound(&opts)


def encode(src, Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t samples_per_pixel,
           Py_ssize_t bits_allocated):
    """Encode one frame given in the native layout (a contiguous bytes-like of
    exactly the frame's size); returns the RLE frame, header and even-length
    segments (PS3.5 G.5), as bytes."""
    cdef df_rle_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    cdef Py_buffer sb
    cdef Py_ssize_t size = _frame_size(&opts, rows, columns, samples_per_pixel, bits_allocated,
                                       False)
    if bits_allocated not in (8, 16, 32, 64):
        raise EncodeError(f"RLE Lossless cannot encode {bits_allocated} bits allocated")
    if samples_per_pixel * (bits_allocated // 8) > DF_RLE_MAX_SEGMENTS:
        raise EncodeError(f"{samples_per_pixel} samples of {bits_allocated} bits need more "
                          "than the 15 segments of an RLE frame")
    cdef size_t bound = df_rle_encode_bound(&opts)
    if bound == 0 or bound > <size_t>0x7FFFFFFFFFFFFFFF:
        raise EncodeError(f"a {rows} x {columns} frame is too large for RLE Lossless")
    cdef PyObject *raw = NULL
    cdef uint8_t *dst
    PyObject_GetBuffer(src, &sb, PyBUF_SIMPLE)
    try:
        if sb.len != size:
            raise ValueError(f"source has {sb.len} bytes; the frame is {size}")
        raw = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>bound)
        if raw == NULL:
            raise MemoryError()
        dst = <uint8_t *>PyBytes_AS_STRING(raw)
        with nogil:
            st = df_rle_encode(<const uint8_t *>sb.buf, <size_t>sb.len, dst, bound, &n_out,
                               &opts, &err)
    finally:
        PyBuffer_Release(&sb)
    if st != DF_OK:
        Py_DECREF(raw)
        check(st, &err)
    # Shrinks the fresh, unshared bytes object in place; on failure it is
    # freed and MemoryError is set.
    if _PyBytes_Resize(&raw, <Py_ssize_t>n_out) < 0:
        raise MemoryError()
    result = <object>raw
    Py_DECREF(raw)
    return result
