# cython: language_level=3, boundscheck=False, wraparound=False
"""HTJ2K codestreams through OpenJPH: header info, decode, encode.

OpenJPH decodes HT code-blocks only; a codestream with Part 1 code-blocks is a
DecodeError here and decodes with _j2k (OpenJPEG) instead.
"""
from libc.stdint cimport uint8_t
from libc.string cimport memset

from dicomfast import errors
from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_OUTPUT_TOO_SMALL, df_error, df_error_clear, df_htj2k_decode, df_htj2k_encode,
    df_htj2k_library_version, df_j2k_decode_opts, df_j2k_encode_opts, df_j2k_info,
    df_j2k_info_read, df_status,
)

CODEC = "HTJ2K"
PROGRESSIONS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")


def library_version():
    """The OpenJPH version this module was built with."""
    return df_htj2k_library_version().decode("ascii")


def info(const uint8_t[::1] src not None):
    """The main header of a codestream as a dict (the keys of _j2k.info)."""
    cdef df_j2k_info inf
    cdef df_error err
    cdef df_status st
    df_error_clear(&err)
    with nogil:
        st = df_j2k_info_read(&src[0] if src.shape[0] else NULL, src.shape[0], &inf, &err)
    check(st, &err, CODEC)
    return {
        "columns": inf.columns, "rows": inf.rows, "components": inf.components,
        "precision": inf.precision, "signed": bool(inf.is_signed),
        "uniform": bool(inf.uniform), "subsampled": bool(inf.subsampled),
        "levels": inf.levels, "layers": inf.layers,
        "progression": PROGRESSIONS[inf.progression], "reversible": bool(inf.reversible),
        "mct": bool(inf.mct), "htj2k": bool(inf.htj2k), "jp2": bool(inf.jp2),
        "colour_space": inf.colour_space, "quant_style": inf.quant_style, "tiles": inf.n_tiles,
        "codestream_offset": inf.codestream_offset,
    }


def decode(const uint8_t[::1] src not None, uint8_t[::1] out not None, *,
           unsigned int reduce=0, unsigned int threads=1, bint strict=False,
           unsigned int rows=0, unsigned int columns=0, unsigned int samples=0,
           unsigned int bytes_per_sample=0, out_signed=None, bint fix_sign=False):
    """Decode one HTJ2K codestream into `out`; the arguments of _j2k.decode.

    threads is accepted for the same signature; OpenJPH decodes on the calling
    thread. Returns the number of bytes written.
    """
    cdef df_j2k_decode_opts opts
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0
    memset(&opts, 0, sizeof(opts))
    df_error_clear(&err)
    opts.reduce = reduce
    opts.threads = threads
    opts.strict = strict
    opts.rows = rows
    opts.columns = columns
    opts.components = samples
    opts.sample_bytes = bytes_per_sample
    opts.out_signed = -1 if out_signed is None else (1 if out_signed else 0)
    opts.fix_sign = fix_sign
    with nogil:
        st = df_htj2k_decode(&src[0] if src.shape[0] else NULL, src.shape[0],
                             &out[0] if out.shape[0] else NULL, out.shape[0], &n_out, &opts,
                             &err)
    check(st, &err, CODEC)
    return n_out


def encode(const uint8_t[::1] src_u8 not None, unsigned int rows, unsigned int columns,
           unsigned int samples, unsigned int bits_stored, bint is_signed, *,
           bint lossless=True, qstep=None, mct=None, unsigned int levels=0,
           str progression="RPCL", bint tlm=False, unsigned int bytes_per_sample=0):
    """Encode little-endian, pixel-interleaved samples as an HTJ2K codestream (bytes).

    lossless: reversible 5/3 wavelet; otherwise the irreversible 9/7 wavelet
    with quantisation step `qstep` (None: OpenJPH's default). mct: the colour
    transform over 3 samples (None: on for 3 samples). levels: decomposition
    levels (0: 5, fewer for small images). tlm: add a TLM marker segment, which
    HTJ2K Lossless RPCL requires (PS3.5 §10.18).
    """
    cdef df_j2k_encode_opts opts
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0, cap
    cdef uint8_t[::1] view
    memset(&opts, 0, sizeof(opts))
    df_error_clear(&err)
    if lossless and qstep is not None:
        raise ValueError("qstep is for lossy encoding (lossless=False)")
    if qstep is not None and not qstep > 0:
        raise ValueError(f"qstep must be positive, not {qstep!r}")
    if progression not in PROGRESSIONS:
        raise ValueError(f"progression {progression!r} is not one of {PROGRESSIONS}")
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
    opts.qstep = 0.0 if qstep is None else float(qstep)
    opts.tlm = tlm
    cap = src_u8.shape[0] + src_u8.shape[0] // 8 + 4096
    for _ in range(2):
        buf = bytearray(cap)
        view = buf
        with nogil:
            st = df_htj2k_encode(&src_u8[0] if src_u8.shape[0] else NULL, src_u8.shape[0],
                                 &view[0], cap, &n_out, &opts, &err)
        if st != DF_E_OUTPUT_TOO_SMALL:
            break
        cap = n_out
    try:
        check(st, &err)
    except errors.DecodeError as exc:  # the library failed while encoding
        raise errors.EncodeError(f"{CODEC}: {exc}") from None
    return bytes(memoryview(buf)[:n_out])
