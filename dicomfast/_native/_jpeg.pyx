# cython: language_level=3, boundscheck=False, wraparound=False
"""JPEG Baseline and Extended (PS3.5 §A.4.1) through libjpeg-turbo, the GIL released:
decode, and baseline encode.

Built only when cmake/libjpeg.cmake finds libjpeg-turbo.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_JPEG_CS_GRAY, DF_JPEG_CS_RGB, DF_JPEG_CS_UNKNOWN, DF_JPEG_CS_YBR, DF_JPEG_FROM_ADOBE,
    DF_E_OUTPUT_TOO_SMALL, DF_JPEG_FROM_COMPONENTS, DF_JPEG_FROM_HINT, DF_JPEG_FROM_IDS,
    DF_JPEG_FROM_JFIF, df_error, df_jpeg_decode, df_jpeg_enc_opts, df_jpeg_encode,
    df_jpeg_info, df_jpeg_library, df_jpeg_max_precision, df_jpeg_opts, df_jpeg_read_info,
    df_status,
)

LIBRARY = df_jpeg_library().decode("ascii")
MAX_PRECISION = df_jpeg_max_precision()

_SPACES = {DF_JPEG_CS_UNKNOWN: "", DF_JPEG_CS_GRAY: "MONOCHROME", DF_JPEG_CS_RGB: "RGB",
           DF_JPEG_CS_YBR: "YBR_FULL"}
_FROM = {0: "", DF_JPEG_FROM_JFIF: "JFIF", DF_JPEG_FROM_ADOBE: "Adobe APP14",
         DF_JPEG_FROM_IDS: "component identifiers",
         DF_JPEG_FROM_HINT: "Photometric Interpretation",
         DF_JPEG_FROM_COMPONENTS: "one component"}


cdef void _opts(df_jpeg_opts *opts, str photometric, bint as_rgb, bint strict) noexcept:
    opts.hint = DF_JPEG_CS_UNKNOWN
    if photometric == "RGB":
        opts.hint = DF_JPEG_CS_RGB
    elif photometric.startswith("YBR"):
        opts.hint = DF_JPEG_CS_YBR
    opts.keep_ybr = not as_rgb
    opts.strict = strict


def info(const uint8_t[::1] src not None, str photometric=""):
    """The frame header and the colour space of one JPEG stream (no decoding).

    `photometric` (the data set's Photometric Interpretation) decides the colour
    space only when the stream has no JFIF / Adobe marker or telling component ids.
    """
    cdef df_jpeg_info inf
    cdef df_jpeg_opts opts
    cdef df_error err
    cdef df_status st
    _opts(&opts, photometric, True, False)
    with nogil:
        st = df_jpeg_read_info(&src[0] if src.shape[0] else NULL, src.shape[0], &inf, &opts,
                               &err)
    check(st, &err, "JPEG")
    return {"rows": inf.rows, "columns": inf.columns, "components": inf.components,
            "precision": inf.precision, "sof": inf.sof,
            "colour_space": _SPACES.get(inf.colour_space, ""),
            "colour_from": _FROM.get(inf.colour_from, "")}


def decode(const uint8_t[::1] src not None, uint8_t[::1] dst not None, *,
           str photometric="", bint as_rgb=True, bint strict=False):
    """Decode one 8-bit JPEG frame into `dst` (pixel-interleaved); returns bytes written.

    YCbCr streams come out as RGB unless `as_rgb` is false, then as YCbCr
    (upsampled to full size). `strict` turns libjpeg's warnings into errors.
    """
    cdef df_jpeg_opts opts
    cdef df_error err
    cdef size_t n_out = 0
    cdef df_status st
    _opts(&opts, photometric, as_rgb, strict)
    with nogil:
        st = df_jpeg_decode(&src[0] if src.shape[0] else NULL, src.shape[0],
                            &dst[0] if dst.shape[0] else NULL, dst.shape[0], &n_out, &opts,
                            &err)
    check(st, &err, "JPEG")
    return n_out


def encode(const uint8_t[::1] src not None, unsigned int rows, unsigned int columns,
           unsigned int components, *, unsigned int quality=90, bint ybr=False,
           bint subsample=True):
    """Encode one 8-bit frame (rows x columns x components, pixel-interleaved) as a
    baseline JPEG stream and return it as bytes. Colour samples are RGB, or YCbCr
    already when `ybr`; the stream holds YCbCr, its chroma halved across the rows
    when `subsample` (YBR_FULL_422), else whole (YBR_FULL)."""
    cdef df_jpeg_enc_opts opts
    cdef df_error err
    cdef df_status st = DF_E_OUTPUT_TOO_SMALL
    cdef size_t n_out = 0, size
    cdef uint8_t *dst
    opts.rows = rows
    opts.columns = columns
    opts.components = components
    opts.quality = quality
    opts.input_ybr = ybr
    opts.subsample = subsample
    # Most streams are smaller than the samples; a larger one (noise at quality 100)
    # is encoded again into twice the room.
    size = <size_t>src.shape[0] + 4096
    while st == DF_E_OUTPUT_TOO_SMALL:
        buf = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>size)
        dst = <uint8_t *>PyBytes_AS_STRING(buf)
        with nogil:
            st = df_jpeg_encode(&src[0] if src.shape[0] else NULL, src.shape[0], dst, size,
                                &n_out, &opts, &err)
        size *= 2
        if size > 16 * <size_t>src.shape[0] + (1 << 20):
            break  # no baseline stream is this large: report the last failure
    check(st, &err)
    return buf[:n_out]
