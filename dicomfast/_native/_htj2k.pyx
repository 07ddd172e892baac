# cython: language_level=3, boundscheck=False, wraparound=False
"""HTJ2K codestreams through OpenJPH: header info, decode, encode.

OpenJPH decodes HT code-blocks only; a codestream with Part 1 code-blocks is a
DecodeError here and decodes with _j2k (OpenJPEG) instead.
"""
from libc.stdint cimport uint8_t

from dicomfast._native._j2kparams cimport fill_decode_opts, fill_encode_opts, run_encoder
from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    df_error, df_error_clear, df_htj2k_decode, df_htj2k_encode, df_htj2k_library_version,
    df_j2k_decode_opts, df_j2k_encode_opts, df_status,
)

from dicomfast._native._j2kparams import PROGRESSIONS
from dicomfast._native._j2kparams import info as _info

CODEC = "HTJ2K"


def library_version():
    """The OpenJPH version this module was built with."""
    return df_htj2k_library_version().decode("ascii")


def info(src):
    """The main header of a codestream as a dict (the keys of _j2k.info)."""
    return _info(src, CODEC)


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
    fill_decode_opts(&opts, reduce, threads, strict, rows, columns, samples, bytes_per_sample,
                     out_signed, fix_sign)
    df_error_clear(&err)
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
    if lossless and qstep is not None:
        raise ValueError("qstep is for lossy encoding (lossless=False)")
    if qstep is not None and not qstep > 0:
        raise ValueError(f"qstep must be positive, not {qstep!r}")
    fill_encode_opts(&opts, rows, columns, samples, bits_stored, is_signed, lossless, mct,
                     levels, progression, tlm, bytes_per_sample)
    opts.qstep = 0.0 if qstep is None else float(qstep)
    return run_encoder(df_htj2k_encode, src_u8, &opts, CODEC)
