# cython: language_level=3, boundscheck=False, wraparound=False
"""Native pixel data helpers: byte swap and 1-bit unpack into caller buffers."""
from libc.stdint cimport uint8_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    df_error, df_status, df_swap_bytes, df_swap_opts, df_unpack_bits, df_unpack_opts,
)


def swap_bytes(const uint8_t[::1] src not None, uint8_t[::1] dst not None, unsigned width):
    """Copy `src` into `dst` reversing each `width`-byte word; returns bytes written."""
    cdef df_swap_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    opts.width = width
    with nogil:
        st = df_swap_bytes(&src[0] if src.shape[0] else NULL, src.shape[0],
                           &dst[0] if dst.shape[0] else NULL, dst.shape[0], &n_out, &opts, &err)
    check(st, &err)
    return n_out


def unpack_bits(const uint8_t[::1] src not None, uint8_t[::1] dst not None,
                unsigned long long first_bit, unsigned long long count):
    """Unpack `count` 1-bit pixels starting at bit `first_bit` into one byte each."""
    cdef df_unpack_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    opts.first_bit = first_bit
    opts.count = count
    with nogil:
        st = df_unpack_bits(&src[0] if src.shape[0] else NULL, src.shape[0],
                            &dst[0] if dst.shape[0] else NULL, dst.shape[0], &n_out, &opts, &err)
    check(st, &err)
    return n_out
