/* Shared by the JPEG 2000 harnesses (fuzz_j2k.c, fuzz_htj2k.c): the lossless round
 * trip's encoder side. A frame the harness decoded is encoded again, losslessly,
 * with the encoder under test, and must decode back to the same samples.
 */
#ifndef DICOMFAST_FUZZ_J2K_COMMON_H
#define DICOMFAST_FUZZ_J2K_COMMON_H

#include <string.h>

#include "dicomfast/df_j2k.h"
#include "fuzz_decode_common.h"

/* Lossless encode options for `len` bytes of samples decoded from a codestream with
 * this header; 0 when the round trip does not apply (a 9/7 wavelet, mixed or
 * subsampled components, more than 4 of them, larger than 64 x 64, or samples that
 * are not the frame's full size). */
static int fuzz_j2k_lossless_opts(const df_j2k_info *info, size_t len,
                                  df_j2k_encode_opts *eo) {
    uint32_t sample_bytes = info->precision <= 8 ? 1 : 2;
    if (!info->reversible || !info->uniform || info->subsampled || info->components > 4 ||
        info->rows > 64 || info->columns > 64)
        return 0;
    memset(eo, 0, sizeof *eo);
    eo->rows = info->rows;
    eo->columns = info->columns;
    eo->samples = info->components;
    eo->bits_stored = info->precision;
    eo->sample_bytes = sample_bytes;
    eo->is_signed = (int)info->is_signed;
    eo->lossless = 1;
    eo->mct = info->components == 3;
    return len == (size_t)eo->rows * eo->columns * eo->samples * sample_bytes;
}

typedef df_status (*fuzz_j2k_encode_fn)(const uint8_t *src, size_t src_len, uint8_t *dst,
                                        size_t dst_len, size_t *n_out,
                                        const df_j2k_encode_opts *opts, df_error *err);

/* The two-call encode every Cython wrapper makes: the size first (options the
 * encoder does not take are refused then, which is not a crash), then into a heap
 * buffer of exactly that size. Returns the codestream (caller frees) or NULL. */
static uint8_t *fuzz_j2k_encode_twice(fuzz_j2k_encode_fn encode, const uint8_t *samples,
                                      size_t len, const df_j2k_encode_opts *eo, size_t *n) {
    df_error err;
    size_t need = 0;
    uint8_t *enc;
    df_status st = encode(samples, len, NULL, 0, &need, eo, &err);
    if (st != DF_E_OUTPUT_TOO_SMALL || need == 0)
        return NULL;
    enc = malloc(need);
    if (enc == NULL)
        return NULL;
    st = encode(samples, len, enc, need, n, eo, &err);
    FUZZ_CHECK(st == DF_OK && *n <= need);
    return enc;
}

#endif
