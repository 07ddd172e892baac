# cython: language_level=3, boundscheck=False, wraparound=False
"""JPEG 2000 codestreams through OpenJPEG: header info, decode, encode.

OpenJPEG (>= 2.5) also decodes HTJ2K codestreams; _htj2k (OpenJPH) is the
other HTJ2K decoder and the HTJ2K encoder.
"""
from libc.stdint cimport uint8_t
from libc.string cimport memset

from dicomfast import errors
from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_OUTPUT_TOO_SMALL, DF_J2K_MAX_LAYERS, df_error, df_error_clear, df_j2k_decode,
    df_j2k_decode_opts, df_j2k_encode, df_j2k_encode_opts, df_j2k_info, df_j2k_info_read,
    df_j2k_library_version, df_status,
)

CODEC = "JPEG 2000"
PROGRESSIONS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")


def library_version():
    """The OpenJPEG version this module runs on."""
    return df_j2k_library_version().decode("ascii")


def info(const uint8_t[::1] src not None):
    """The main header of a codestream (bare or in JP2 boxes) as a dict.

    Keys: columns, rows, components, precision, signed, uniform, subsampled,
    levels, layers, progression, reversible, mct, htj2k, jp2, colour_space,
    quant_style (QCD: 0 none, 1 derived, 2 expounded), tiles, codestream_offset.
    """
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
    """Decode one codestream into `out` (flat uint8, little endian, pixel-interleaved).

    reduce: resolution levels to drop; threads: OpenJPEG worker threads; strict:
    refuse JP2 boxes around the codestream. rows, columns, samples: the size the
    caller expects (0: any) -- a different codestream is a DecodeError.
    bytes_per_sample: 0 picks 1 up to 8 bits, else 2. out_signed: the output's
    signedness (None: the codestream's); with fix_sign, a sample whose codestream
    signedness differs is reinterpreted from its precision bits. Returns the
    number of bytes written.
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
        st = df_j2k_decode(&src[0] if src.shape[0] else NULL, src.shape[0],
                           &out[0] if out.shape[0] else NULL, out.shape[0], &n_out, &opts, &err)
    check(st, &err, CODEC)
    return n_out


cdef int _layers(df_j2k_encode_opts *opts, values, bint psnr) except -1:
    seq = [values] if isinstance(values, (int, float)) else list(values)
    if not 0 < len(seq) <= DF_J2K_MAX_LAYERS:
        raise ValueError(f"1 to {DF_J2K_MAX_LAYERS} quality layers, not {len(seq)}")
    opts.n_layers = len(seq)
    opts.use_psnr = psnr
    for i, v in enumerate(seq):
        opts.layers[i] = float(v)
    return 0


def encode(const uint8_t[::1] src_u8 not None, unsigned int rows, unsigned int columns,
           unsigned int samples, unsigned int bits_stored, bint is_signed, *,
           bint lossless=True, ratio=None, quality=None, mct=None, unsigned int levels=0,
           str progression="LRCP", unsigned int threads=1, bint tlm=False,
           unsigned int bytes_per_sample=0):
    """Encode little-endian, pixel-interleaved samples as a J2K codestream (bytes).

    lossless: reversible 5/3 wavelet, one layer. Otherwise the irreversible 9/7
    wavelet with quality layers by compression `ratio` (one or a falling
    sequence, each >= 1) or by PSNR `quality` in dB (one or a rising sequence);
    neither gives one layer with every coded bit. mct: the colour transform over
    3 samples (None: on for 3 samples) -- the data set then says YBR_RCT
    (lossless) or YBR_ICT (lossy). bytes_per_sample: 0 means 1 up to 8 bits.
    """
    cdef df_j2k_encode_opts opts
    cdef df_error err
    cdef df_status st
    cdef size_t n_out = 0, cap
    cdef uint8_t[::1] view
    memset(&opts, 0, sizeof(opts))
    df_error_clear(&err)
    if ratio is not None and quality is not None:
        raise ValueError("give ratio or quality, not both")
    if lossless and (ratio is not None or quality is not None):
        raise ValueError("ratio and quality are for lossy encoding (lossless=False)")
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
    opts.threads = threads
    opts.tlm = tlm
    if ratio is not None:
        _layers(&opts, ratio, False)
    elif quality is not None:
        _layers(&opts, quality, True)
    # Lossless output is rarely much larger than its input; a bigger one is
    # encoded again into a buffer of the size the first attempt reported.
    cap = src_u8.shape[0] + src_u8.shape[0] // 8 + 4096
    for _ in range(2):
        buf = bytearray(cap)
        view = buf
        with nogil:
            st = df_j2k_encode(&src_u8[0] if src_u8.shape[0] else NULL, src_u8.shape[0],
                               &view[0], cap, &n_out, &opts, &err)
        if st != DF_E_OUTPUT_TOO_SMALL:
            break
        cap = n_out
    try:
        check(st, &err)
    except errors.DecodeError as exc:  # the library failed while encoding
        raise errors.EncodeError(f"{CODEC}: {exc}") from None
    return bytes(memoryview(buf)[:n_out])
