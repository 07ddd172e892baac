# cython: language_level=3, boundscheck=False, wraparound=False
"""JPEG Baseline and Extended (PS3.5 §A.4.1) through libjpeg-turbo, the GIL released.

Built only when cmake/libjpeg.cmake finds libjpeg-turbo.
"""
from libc.stdint cimport uint8_t

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_JPEG_CS_GRAY, DF_JPEG_CS_RGB, DF_JPEG_CS_UNKNOWN, DF_JPEG_CS_YBR, DF_JPEG_FROM_ADOBE,
    DF_JPEG_FROM_COMPONENTS, DF_JPEG_FROM_HINT, DF_JPEG_FROM_IDS, DF_JPEG_FROM_JFIF,
    df_error, df_jpeg_decode, df_jpeg_info, df_jpeg_library, df_jpeg_max_precision,
    df_jpeg_opts, df_jpeg_read_info, df_status,
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
