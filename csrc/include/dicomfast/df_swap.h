/* Byte swapping and bit unpacking of native (uncompressed) pixel data. */
#ifndef DICOMFAST_DF_SWAP_H
#define DICOMFAST_DF_SWAP_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copy src to dst reversing the byte order of each `opts->width`-byte word
 * (2, 4 or 8). src_len must be a multiple of width; dst_len >= src_len. */
typedef struct df_swap_opts {
    unsigned width;
} df_swap_opts;

df_status df_swap_bytes(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_swap_opts *opts, df_error *err);

/* Unpack 1-bit pixels (PS3.5 §8.1.1: first pixel in the least significant bit)
 * into one byte each, starting at bit `opts->first_bit` of src, `opts->count` pixels. */
typedef struct df_unpack_opts {
    uint64_t first_bit;
    uint64_t count;
} df_unpack_opts;

df_status df_unpack_bits(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, const df_unpack_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
