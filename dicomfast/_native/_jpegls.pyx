# cython: language_level=3, boundscheck=False, wraparound=False
"""JPEG-LS lossless and near-lossless (PS3.5 §A.4.3) through CharLS, the GIL released.

Built only when cmake/charls.cmake finds CharLS.
"""
from libc.stdint cimport uint8_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    df_error, df_jpegls_decode, df_jpegls_info, df_jpegls_library, df_jpegls_opts,
    df_jpegls_read_info, df_status,
)

LIBRARY = df_jpegls_library().decode("ascii")


def info(const uint8_t[::1] src not None):
    """The frame and scan header of one JPEG-LS stream (no decoding)."""
    cdef df_jpegls_info inf
    cdef df_jpegls_opts opts
    cdef df_error err
    cdef df_status st
    opts.reserved = 0
    with nogil:
        st = df_jpegls_read_info(&src[0] if src.shape[0] else NULL, src.shape[0], &inf, &opts,
                                 &err)
    check(st, &err, "JPEG-LS")
    return {"rows": inf.rows, "columns": inf.columns, "components": inf.components,
            "precision": inf.precision, "near_lossless": inf.near_lossless,
            "interleave": inf.interleave, "colour_transform": inf.colour_transform}


def decode(const uint8_t[::1] src not None, uint8_t[::1] dst not None):
    """Decode one JPEG-LS frame into `dst`, pixel-interleaved, 1 byte per sample up to
    8 bits of precision and 2 (native order) above; returns bytes written."""
    cdef df_jpegls_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    opts.reserved = 0
    with nogil:
        st = df_jpegls_decode(&src[0] if src.shape[0] else NULL, src.shape[0],
                              &dst[0] if dst.shape[0] else NULL, dst.shape[0], &n_out, &opts,
                              &err)
    check(st, &err, "JPEG-LS")
    return n_out
