# cython: language_level=3, boundscheck=False, wraparound=False
"""JPEG-LS lossless and near-lossless (PS3.5 §A.4.3) through CharLS, the GIL released:
decode, and encode.

Built only when cmake/charls.cmake finds CharLS.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    df_error, df_jpegls_decode, df_jpegls_enc_opts, df_jpegls_encode, df_jpegls_encode_bound,
    df_jpegls_info, df_jpegls_library, df_jpegls_opts, df_jpegls_read_info, df_status,
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


def encode(const uint8_t[::1] src not None, unsigned int rows, unsigned int columns,
           unsigned int components, unsigned int precision, bint signed=False,
           unsigned int near=0, unsigned int sample_bytes=0):
    """Encode one frame as a JPEG-LS stream (SOI to EOI) and return it as bytes.

    `src` holds rows x columns x components pixel-interleaved samples of
    `sample_bytes` bytes (native order; default 1 up to 8 bits of `precision`, else
    2), every one within `precision` bits (two's complement when `signed`).
    `near` 0 is lossless; above, the largest error allowed (near-lossless).
    ValueError for a sample out of range or parameters CharLS refuses.
    """
    cdef df_jpegls_enc_opts opts
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0, bound
    opts.rows = rows
    opts.columns = columns
    opts.components = components
    opts.precision = precision
    opts.sample_bytes = sample_bytes or (1 if precision <= 8 else 2)
    opts.is_signed = signed
    opts.near = near
    bound = df_jpegls_encode_bound(&opts)
    if bound == 0:
        raise ValueError(f"cannot encode a {rows} x {columns} x {components} frame of "
                         f"{precision} bits ({opts.sample_bytes} byte(s) each) as JPEG-LS")
    buf = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>bound)
    cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(buf)
    with nogil:
        st = df_jpegls_encode(&src[0] if src.shape[0] else NULL, src.shape[0], dst, bound,
                              &n_out, &opts, &err)
    check(st, &err)
    return buf[:n_out]
