# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython face of the C PDU framer and item parser (csrc/src/df_pdu.c).

Both functions take any contiguous bytes-like object without copying it; item
entries are offsets into that same object.
"""
from cpython.bytearray cimport PyByteArray_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint8_t, uint32_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_OUTPUT_TOO_SMALL, DF_OK, DF_PDU_NO_PARENT, df_error, df_pdu_frame,
    df_pdu_frame_info, df_pdu_item, df_pdu_opts, df_pdu_parse, df_status,
)

cdef extern from "Python.h":
    # CPython's bytearray (Include/cpython/bytearrayobject.h, the same from 3.2 on):
    # ob_exports counts the buffer views of it that are alive.
    ctypedef struct PyByteArrayObject:
        Py_ssize_t ob_exports

# Enough for any P-DATA-TF PDU seen in practice and most association PDUs; larger
# lists take one size query and one heap allocation.
cdef enum:
    STACK_ITEMS = 64


cdef inline void _opts(df_pdu_opts *o, uint32_t max_pdata_len, uint32_t max_other_len,
                       bint strict) noexcept:
    o.max_pdata_len = max_pdata_len
    o.max_other_len = max_other_len
    o.strict = strict


def buffer_exports(bytearray b not None):
    """How many buffer views of `b` are alive: 0 once every memoryview made of it
    (and every slice of those) is gone. Unlike a reference count, this does not
    depend on how the interpreter passes arguments."""
    return (<PyByteArrayObject *>b).ob_exports


def unset_bytearray(Py_ssize_t n):
    """A bytearray of `n` bytes whose contents are not set, for a buffer the caller
    fills at once (a PDU received in place): bytearray(n) would zero it first, a
    memset of up to the maximum PDU length for every PDU."""
    if n < 0:
        raise ValueError(f"a negative length: {n}")
    return PyByteArray_FromStringAndSize(NULL, n)


def frame(const uint8_t[::1] src not None, uint32_t max_pdata_len=0,
          uint32_t max_other_len=0, bint strict=False):
    """(complete, pdu_type, needed): whether `src` begins with a whole PDU, its type
    (0 until the header is in) and the total number of bytes that PDU takes."""
    cdef df_pdu_opts opts
    cdef df_pdu_frame_info info
    cdef df_error err
    _opts(&opts, max_pdata_len, max_other_len, strict)
    cdef df_status st = df_pdu_frame(&src[0] if src.shape[0] else NULL, src.shape[0], &info,
                                     &opts, &err)
    check(st, &err)
    return bool(info.complete), info.type, info.needed


cdef list _entries(const df_pdu_item *items, size_t n):
    cdef list out = []
    cdef size_t i
    for i in range(n):
        out.append((items[i].type,
                    -1 if items[i].parent == DF_PDU_NO_PARENT else <long>items[i].parent,
                    items[i].offset, items[i].length, items[i].pc_id, items[i].control,
                    items[i].result))
    return out


def parse(const uint8_t[::1] src not None, uint32_t max_pdata_len=0,
          uint32_t max_other_len=0, bint strict=False):
    """Check one whole PDU and list its items as
    (type, parent, offset, length, pc_id, control, result) tuples in preorder."""
    cdef df_pdu_opts opts
    cdef df_error err
    cdef df_pdu_item stack_items[STACK_ITEMS]
    cdef df_pdu_item *heap = NULL
    cdef size_t n = 0
    cdef const uint8_t *p = &src[0] if src.shape[0] else NULL
    cdef size_t plen = src.shape[0]
    _opts(&opts, max_pdata_len, max_other_len, strict)
    cdef df_status st
    with nogil:
        st = df_pdu_parse(p, plen, stack_items, STACK_ITEMS, &n, &opts, &err)
    if st == DF_OK:
        return _entries(stack_items, n)
    if st != DF_E_OUTPUT_TOO_SMALL:
        check(st, &err)
    heap = <df_pdu_item *>PyMem_Malloc(n * sizeof(df_pdu_item))
    if heap == NULL:
        raise MemoryError()
    try:
        with nogil:
            st = df_pdu_parse(p, plen, heap, n, &n, &opts, &err)
        check(st, &err)
        return _entries(heap, n)
    finally:
        PyMem_Free(heap)
