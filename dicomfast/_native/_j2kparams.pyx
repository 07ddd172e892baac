# cython: language_level=3, boundscheck=False, wraparound=False
"""What the JPEG 2000 modules share: the codestream header as a dict, and the
checking of decode / encode arguments into the C options (so that _j2k over
OpenJPEG and _htj2k over OpenJPH take the same arguments the same way).

Depends on dicomfast's own header parser only, so it is built whichever of the
two libraries is present.
"""
from libc.stdint cimport uint8_t
from libc.string cimport memset

from dicomfast import errors
from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_OUTPUT_TOO_SMALL, df_error, df_error_clear, df_j2k_info, df_j2k_info_read,
)

PROGRESSIONS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")


def info(const uint8_t[::1] src not None, str codec="JPEG 2000"):
    """The main header of a codestream (bare or in JP2 boxes) as a dict.

    Keys: columns, rows, components, precision, signed, uniform, subsampled,
    levels, layers, progression, reversible, mct, htj2k, jp2, colour_space,
    quant_style (QCD: 0 none, 1 derived, 2 expounded), tiles, codestream_offset, x0 and
    y0 (the image offset on the reference grid).
    """
    cdef df_j2k_info inf
    cdef df_error err
    cdef df_status st
    df_error_clear(&err)
    with nogil:
        st = df_j2k_info_read(&src[0] if src.shape[0] else NULL, src.shape[0], &inf, &err)
    check(st, &err, codec)
    return {
        "columns": inf.columns, "rows": inf.rows, "components": inf.components,
        "precision": inf.precision, "signed": bool(inf.is_signed),
        "uniform": bool(inf.uniform), "subsampled": bool(inf.subsampled),
        "levels": inf.levels, "layers": inf.layers,
        "progression": PROGRESSIONS[inf.progression], "reversible": bool(inf.reversible),
        "mct": bool(inf.mct), "htj2k": bool(inf.htj2k), "jp2": bool(inf.jp2),
        "colour_space": inf.colour_space, "quant_style": inf.quant_style, "tiles": inf.n_tiles,
        "codestream_offset": inf.codestream_offset, "x0": inf.x0, "y0": inf.y0,
    }


cdef int fill_decode_opts(df_j2k_decode_opts *opts, unsigned int reduce, unsigned int threads,
                          bint strict, unsigned int rows, unsigned int columns,
                          unsigned int samples, unsigned int bytes_per_sample, object out_signed,
                          bint fix_sign) except -1:
    memset(opts, 0, sizeof(opts[0]))
    opts.reduce = reduce
    opts.threads = threads
    opts.strict = strict
    opts.rows = rows
    opts.columns = columns
    opts.components = samples
    opts.sample_bytes = bytes_per_sample
    opts.out_signed = -1 if out_signed is None else (1 if out_signed else 0)
    opts.fix_sign = fix_sign
    return 0


cdef int fill_encode_opts(df_j2k_encode_opts *opts, unsigned int rows, unsigned int columns,
                          unsigned int samples, unsigned int bits_stored, bint is_signed,
                          bint lossless, object mct, unsigned int levels, str progression,
                          bint tlm, unsigned int bytes_per_sample) except -1:
    if progression not in PROGRESSIONS:
        raise ValueError(f"progression {progression!r} is not one of {PROGRESSIONS}")
    memset(opts, 0, sizeof(opts[0]))
    opts.rows = rows
    opts.columns = columns
    opts.samples = samples
    opts.bits_stored = bits_stored
    opts.sample_bytes = bytes_per_sample or (1 if bits_stored <= 8 else 2)
    opts.is_signed = is_signed
    opts.lossless = lossless
    opts.mct = (samples == 3) if mct is None else bool(mct)
    opts.levels = levels
    opts.progression = PROGRESSIONS.index(progression)
    opts.tlm = tlm
    return 0


cdef bytes run_encoder(j2k_encoder encoder, const uint8_t[::1] src,
                       const df_j2k_encode_opts *opts, str codec):
    """Encode into a buffer a little larger than the input; lossless output is
    rarely bigger, and when it is the encoder runs again into one of the size
    the first attempt reported."""
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0
    cdef size_t cap = src.shape[0] + src.shape[0] // 8 + 4096
    cdef uint8_t[::1] view
    df_error_clear(&err)
    for _ in range(2):
        buf = bytearray(cap)
        view = buf
        with nogil:
            st = encoder(&src[0] if src.shape[0] else NULL, src.shape[0], &view[0], cap,
                         &n_out, opts, &err)
        if st != DF_E_OUTPUT_TOO_SMALL:
            break
        cap = n_out
    try:
        check(st, &err)
    except errors.DecodeError as exc:  # the library failed while encoding
        raise errors.EncodeError(f"{codec}: {exc}") from None
    return bytes(memoryview(buf)[:n_out])
