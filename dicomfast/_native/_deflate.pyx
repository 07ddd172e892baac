# cython: language_level=3, boundscheck=False, wraparound=False
"""Deflated Image Frame Compression (PS3.5 §A.4.13) through zlib, the GIL released.

C glue rather than Python's zlib module: a frame inflates straight into the
caller's array, with no intermediate bytes object and no copy.
Built only when cmake/zlib.cmake finds zlib.
"""
from libc.stdint cimport uint8_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    df_error, df_status, df_zlib_deflate, df_zlib_deflate_bound, df_zlib_inflate,
    df_zlib_library, df_zlib_opts,
)

LIBRARY = df_zlib_library().decode("ascii")


def inflate(const uint8_t[::1] src not None, uint8_t[::1] dst not None, bint strict=False):
    """Inflate one frame's raw Deflate stream so that it fills `dst` exactly."""
    cdef df_zlib_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    opts.level = -1
    opts.strict = strict
    with nogil:
        st = df_zlib_inflate(&src[0] if src.shape[0] else NULL, src.shape[0],
                             &dst[0] if dst.shape[0] else NULL, dst.shape[0], &n_out, &opts,
                             &err)
    check(st, &err, "Deflate")
    return n_out


def deflate(const uint8_t[::1] src not None, int level=-1):
    """One frame as raw Deflate, padded to an even length (bytes)."""
    cdef df_zlib_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    cdef size_t bound = df_zlib_deflate_bound(src.shape[0])
    out = bytearray(bound)
    cdef uint8_t[::1] dst = out
    opts.level = level
    opts.strict = 0
    with nogil:
        st = df_zlib_deflate(&src[0] if src.shape[0] else NULL, src.shape[0], &dst[0], bound,
                             &n_out, &opts, &err)
    check(st, &err)
    return bytes(dst[:n_out])
