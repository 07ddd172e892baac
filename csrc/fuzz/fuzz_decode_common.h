/* Shared by the codec glue harnesses (fuzz_j2k.c, fuzz_htj2k.c, fuzz_jpeg.c,
 * fuzz_jpegls.c): the two-call decode every Cython wrapper makes.
 *
 * The first call passes no output, so the decoder must answer with the size it
 * needs (DF_E_OUTPUT_TOO_SMALL) or an error, having checked the header; the second
 * passes a heap buffer of exactly that size, so ASan catches a write past it. The
 * decoders promise to check the whole output size before decoding any sample; a
 * second DF_E_OUTPUT_TOO_SMALL, a size that changed, or an unknown status traps.
 */
#ifndef DICOMFAST_FUZZ_DECODE_COMMON_H
#define DICOMFAST_FUZZ_DECODE_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "dicomfast/df_common.h"

#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) __builtin_trap(); \
    } while (0)

/* Frames above this are refused by the harness, not decoded: the point is the
 * parsing, and libFuzzer's -rss_limit_mb would flag a legitimate large frame. */
#define FUZZ_MAX_FRAME ((size_t)16 << 20)

static int fuzz_known_status(df_status st) {
    return st == DF_OK || st == DF_E_TRUNCATED || st == DF_E_MALFORMED ||
           st == DF_E_OUTPUT_TOO_SMALL || st == DF_E_LIMIT || st == DF_E_UNSUPPORTED ||
           st == DF_E_INVALID_ARG || st == DF_E_DECODE || st == DF_E_NO_MEMORY ||
           st == DF_E_LIBRARY;
}

/* Runs decode(src, dst, dst_len, &n, ctx) twice as above. Returns the decoded
 * buffer (caller frees) and its length, or NULL when the input does not decode. */
typedef df_status (*fuzz_decode_fn)(const uint8_t *src, size_t src_len, uint8_t *dst,
                                    size_t dst_len, size_t *n_out, const void *ctx);

static uint8_t *fuzz_decode_twice(fuzz_decode_fn decode, const uint8_t *src, size_t src_len,
                                  const void *ctx, size_t *out_len) {
    size_t need = 0, got = 0;
    uint8_t *dst;
    df_status st = decode(src, src_len, NULL, 0, &need, ctx);
    FUZZ_CHECK(fuzz_known_status(st));
    if (st != DF_E_OUTPUT_TOO_SMALL || need == 0 || need > FUZZ_MAX_FRAME)
        return NULL;
    dst = malloc(need);
    if (dst == NULL)
        return NULL;
    st = decode(src, src_len, dst, need, &got, ctx);
    FUZZ_CHECK(fuzz_known_status(st));
    FUZZ_CHECK(st != DF_E_OUTPUT_TOO_SMALL);
    if (st != DF_OK) {
        free(dst);
        return NULL;
    }
    FUZZ_CHECK(got == need);
    *out_len = got;
    return dst;
}

#endif
