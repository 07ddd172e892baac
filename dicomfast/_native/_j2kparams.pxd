from libc.stdint cimport uint8_t

from dicomfast._native.dfcore cimport (
    df_error, df_j2k_decode_opts, df_j2k_encode_opts, df_status,
)

# The C encoders of _j2k (OpenJPEG) and _htj2k (OpenJPH) share this shape.
ctypedef df_status (*j2k_encoder)(const uint8_t *src, size_t src_len, uint8_t *dst,
                                  size_t dst_len, size_t *n_out,
                                  const df_j2k_encode_opts *opts,
                                  df_error *err) noexcept nogil

cdef int fill_decode_opts(df_j2k_decode_opts *opts, unsigned int reduce, unsigned int threads,
                          bint strict, unsigned int rows, unsigned int columns,
                          unsigned int samples, unsigned int bytes_per_sample, object out_signed,
                          bint fix_sign) except -1
cdef int fill_encode_opts(df_j2k_encode_opts *opts, unsigned int rows, unsigned int columns,
                          unsigned int samples, unsigned int bits_stored, bint is_signed,
                          bint lossless, object mct, unsigned int levels, str progression,
                          bint tlm, unsigned int bytes_per_sample) except -1
cdef bytes run_encoder(j2k_encoder encoder, const uint8_t[::1] src,
                       const df_j2k_encode_opts *opts, str codec)
