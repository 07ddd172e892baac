/* Deflate (RFC 1951) for Deflated Image Frame Compression (PS3.5 §8.2.16, §A.4.13) through zlib.
 *
 * Each frame is one raw Deflate stream: no zlib (RFC 1950) or gzip wrapper, and a
 * trailing NUL pads an odd length (§A.4.13). The glue (csrc/src/glue/df_zlib.c) is
 * built only when cmake/zlib.cmake finds zlib; this header names no zlib type.
 */
#ifndef DICOMFAST_DF_ZLIB_H
#define DICOMFAST_DF_ZLIB_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct df_zlib_opts {
    int level;  /* deflate: 0 (store) .. 9 (smallest); -1 is zlib's default (6) */
    int strict; /* inflate: data past the expected size is an error, and a zlib
                 * (RFC 1950) wrapper is not accepted in place of raw Deflate */
} df_zlib_opts;

/* The zlib version this build links, e.g. "zlib 1.2.13". */
const char *df_zlib_library(void);

/* Inflate one frame into dst, which must be filled exactly (dst_len is the frame size). */
df_status df_zlib_inflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_zlib_opts *opts, df_error *err);

/* The largest raw Deflate output (plus the pad byte) for src_len input bytes. */
size_t df_zlib_deflate_bound(size_t src_len);

/* Deflate one frame into dst; the output is padded to an even length with a NUL. */
df_status df_zlib_deflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_zlib_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
