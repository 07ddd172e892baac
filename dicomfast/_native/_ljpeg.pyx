# cython: language_level=3, boundscheck=False, wraparound=False
"""Lossless JPEG (ITU-T T.81 process 14; PS3.5 §A.4.1, transfer syntaxes
1.2.840.10008.1.2.4.57 and .70): dicomfast's own C codec, the GIL released.

Decoded samples are native-endian, one per sample: uint8 when the precision is 8
or less, else uint16; components interleaved per pixel, or as planes when their
sampling factors give them different sizes (or when ``planar=True``).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t
from libc.string cimport memset

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_DECODE, DF_E_TRUNCATED, df_error, df_ljpeg_decode, df_ljpeg_enc_opts, df_ljpeg_encode,
    df_ljpeg_encode_bound, df_ljpeg_info, df_ljpeg_info_t, df_ljpeg_opts, df_status,
)

cdef str CODEC = "JPEG Lossless"


cdef inline df_status _as_decode(df_status st) noexcept:
    # A frame cut short cannot be decoded: callers get DecodeError for it, like
    # for any other corrupt frame (the detail still says where the data ends).
    return DF_E_DECODE if st == DF_E_TRUNCATED else st


cdef const uint8_t[::1] _bytes_view(object obj):
    """A no-copy view of any C-contiguous buffer, whatever its item type."""
    try:
        return obj
    except (TypeError, ValueError):
        return memoryview(obj).cast("B")


cdef int _read_info(const uint8_t[::1] src, df_ljpeg_info_t *inf) except -1:
    cdef df_error err
    cdef df_status st = df_ljpeg_info(&src[0] if src.shape[0] else NULL, src.shape[0], inf,
                                      &err)
    check(_as_decode(st), &err, CODEC)
    return 0


def info(src):
    """The SOF3 frame header of one JPEG Lossless frame, without decoding it.

    Keys: rows, columns, components, precision, bytes_per_sample, planar (the
    components differ in size, so decode writes planes), restart_interval (of a
    DRI before SOF3), nbytes (what decode writes), and per component: ids,
    sampling ([(H, V)]) and shapes ([(rows, columns)]).
    """
    cdef df_ljpeg_info_t inf
    cdef unsigned k
    _read_info(_bytes_view(src), &inf)
    return {
        "rows": inf.rows, "columns": inf.columns, "components": inf.components,
        "precision": inf.precision, "bytes_per_sample": inf.bytes_per_sample,
        "planar": bool(inf.planar), "restart_interval": inf.restart_interval,
        "nbytes": inf.out_len,
        "ids": [inf.comp_id[k] for k in range(inf.components)],
        "sampling": [(inf.comp_h[k], inf.comp_v[k]) for k in range(inf.components)],
        "shapes": [(inf.comp_rows[k], inf.comp_columns[k]) for k in range(inf.components)],
    }


def decode(src, uint8_t[::1] out not None, bint strict=False, *, bint planar=False,
           bint int16_predictors=False):
    """Decode one JPEG Lossless frame (SOI ... EOI) into `out`; returns the bytes written.

    `src` is any contiguous bytes-like object (not copied). `out` is a writable
    contiguous uint8 buffer of exactly ``info(src)["nbytes"]`` bytes, e.g.
    ``arr.view(np.uint8).reshape(-1)`` for an array of the frame's shape and dtype.
    `strict` refuses what is tolerated otherwise (a missing EOI, restart markers
    out of order, data after the last sample, symbols above 16 in a table).
    `planar` writes one plane per component. `int16_predictors` reproduces an old
    encoder whose predictors 5 to 7 overflowed on 16-bit data (DCMTK's
    ``+w6``). Raises DecodeError for corrupt or unsupported data, ValueError when
    `out` has the wrong size.
    """
    cdef const uint8_t[::1] s = _bytes_view(src)
    cdef df_ljpeg_info_t inf
    cdef df_ljpeg_opts opts
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0
    _read_info(s, &inf)
    if <size_t>out.shape[0] != inf.out_len:
        raise ValueError(f"output buffer has {out.shape[0]} bytes; the frame needs "
                         f"{inf.out_len}")
    memset(&opts, 0, sizeof(opts))
    opts.strict = strict
    opts.planar = planar
    opts.int16_predictors = int16_predictors
    with nogil:
        st = df_ljpeg_decode(&s[0] if s.shape[0] else NULL, s.shape[0],
                             &out[0] if out.shape[0] else NULL, out.shape[0], &n_out, &opts,
                             &err)
    check(_as_decode(st), &err, CODEC)
    return n_out


def encode(src, unsigned int rows, unsigned int columns, unsigned int components,
           unsigned int precision):
    """Encode one frame as JPEG Lossless, selection value 1 (1.2.840.10008.1.2.4.70).

    `src` holds rows x columns x components samples in decode's layout (uint8
    when precision <= 8, else native uint16; pixel-interleaved), every sample
    below 2**precision. One interleaved scan with a Huffman table optimised for
    the image; returns the frame, SOI to EOI, as bytes.
    """
    cdef const uint8_t[::1] s = _bytes_view(src)
    cdef df_ljpeg_enc_opts opts
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0, bound
    opts.rows = rows
    opts.columns = columns
    opts.components = components
    opts.precision = precision
    bound = df_ljpeg_encode_bound(&opts)
    if bound == 0:
        raise ValueError(f"cannot encode a {rows} x {columns} x {components} frame of "
                         f"{precision} bits as JPEG Lossless")
    buf = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>bound)
    cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(buf)
    with nogil:
        st = df_ljpeg_encode(&s[0] if s.shape[0] else NULL, s.shape[0], dst, bound, &n_out,
                             &opts, &err)
    check(st, &err)
    return buf[:n_out]
