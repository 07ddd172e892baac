/* JPEG-LS lossless and near-lossless (PS3.5 §A.4.3, ITU-T T.87 | ISO/IEC 14495-1) through CharLS.
 *
 * The glue (csrc/src/glue/df_jpegls.c) is built only when cmake/charls.cmake finds
 * CharLS; this header names no CharLS type so that every module may include it.
 * Samples come out pixel-interleaved whatever the stream's interleave mode, one
 * byte each for precisions up to 8 bits and two (native byte order) above.
 */
#ifndef DICOMFAST_DF_JPEGLS_H
#define DICOMFAST_DF_JPEGLS_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct df_jpegls_info {
    uint32_t rows;
    uint32_t columns;
    uint32_t components;
    uint32_t precision;        /* bits per sample P, 2..16 */
    uint32_t near_lossless;    /* NEAR of the first scan; 0 is lossless */
    uint32_t interleave;       /* ILV: 0 none, 1 line, 2 sample */
    uint32_t colour_transform; /* CharLS's HP colour transform id, 0 for none */
} df_jpegls_info;

typedef struct df_jpegls_opts {
    int reserved; /* no options yet; keeps the one function shape */
} df_jpegls_opts;

/* The CharLS version this build links, e.g. "CharLS 2.4.1". */
const char *df_jpegls_library(void);

df_status df_jpegls_read_info(const uint8_t *src, size_t src_len, df_jpegls_info *info,
                              const df_jpegls_opts *opts, df_error *err);

/* Decode one frame into dst: rows * columns * components samples of 1 or 2 bytes.
 * *n_out is the number of bytes written (or needed, with DF_E_OUTPUT_TOO_SMALL). */
df_status df_jpegls_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                           size_t *n_out, const df_jpegls_opts *opts, df_error *err);

typedef struct df_jpegls_enc_opts {
    uint32_t rows;
    uint32_t columns;
    uint32_t components;   /* 1 or 3, pixel-interleaved */
    uint32_t precision;    /* Bits Stored, 2..16: every sample must fit it */
    uint32_t sample_bytes; /* 1 (precision <= 8) or 2 (native byte order) */
    uint32_t is_signed;    /* two's complement samples, stored as their low P bits */
    uint32_t near;         /* NEAR: 0 is lossless, else the largest error allowed */
} df_jpegls_enc_opts;

/* An upper bound of the encoded size of such a frame, 0 for impossible options. */
size_t df_jpegls_encode_bound(const df_jpegls_enc_opts *opts);

/* Encode one frame (rows * columns * components samples) as a JPEG-LS stream, SOI to
 * EOI, sample-interleaved when there are 3 components (ISO/IEC 14495-1 §A.2.3), no
 * colour transform (PS3.5 §A.4.3). A sample outside the precision is an error
 * (DF_E_INVALID_ARG, naming it), never silently cut. */
df_status df_jpegls_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                           size_t *n_out, const df_jpegls_enc_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
