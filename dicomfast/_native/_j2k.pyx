# cython: language_level=3, boundscheck=False, wraparound=False
"""JPEG 2000 codestreams through OpenJPEG: header info, decode, encode.

OpenJPEG (>= 2.5) also decodes HTJ2K codestreams; _htj2k (OpenJPH) is the
other HTJ2K decoder and the HTJ2K encoder.
"""
from libc.stdint cimport uint8_t

from dicomfast._native._j2kparams cimport fill_decode_opts, fill_encode_opts, run_encoder
from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_J2K_MAX_LAYERS, df_error, df_error_clear, df_j2k_decode, df_j2k_decode_opts,
    df_j2k_encode, df_j2k_encode_opts, df_j2k_library_version, df_status,
)

from dicomfast._native._j2kparams import PROGRESSIONS
from dicomfast._native._j2kparams import info as _info

CODEC = "JPEG 2000"


def library_version():
    """The OpenJPEG version this module runs on."""
    return df_j2k_library_version().decode("ascii")


def info(src):
    """The main header of a codestream (bare or in JP2 boxes) as a dict; see
    _j2kparams.info for the keys."""
    return _info(src, CODEC)


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
    fill_decode_opts(&opts, reduce, threads, strict, rows, columns, samples, bytes_per_sample,
                     out_signed, fix_sign)
    df_error_clear(&err)
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
    if ratio is not None and quality is not None:
        raise ValueError("give ratio or quality, not both")
    if lossless and (ratio is not None or quality is not None):
        raise ValueError("ratio and quality are for lossy encoding (lossless=False)")
    fill_encode_opts(&opts, rows, columns, samples, bits_stored, is_signed, lossless, mct,
                     levels, progression, tlm, bytes_per_sample)
    opts.threads = threads
    if ratio is not None:
        _layers(&opts, ratio, False)
    elif quality is not None:
        _layers(&opts, quality, True)
    return run_encoder(df_j2k_encode, src_u8, &opts, CODEC)
