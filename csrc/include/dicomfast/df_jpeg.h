/* JPEG Baseline and Extended (PS3.5 §A.4.1, ISO/IEC 10918-1 DCT processes) through libjpeg.
 *
 * The glue (csrc/src/glue/df_jpeg.c) is built only when cmake/libjpeg.cmake finds the
 * library; this header names no libjpeg type so that every module may include it.
 * A decode reads one frame's JPEG stream from memory and writes rows * columns *
 * components samples, pixel-interleaved, into the caller's buffer.
 */
#ifndef DICOMFAST_DF_JPEG_H
#define DICOMFAST_DF_JPEG_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Colour space of the samples in the stream, or of the samples decoded. */
#define DF_JPEG_CS_UNKNOWN 0
#define DF_JPEG_CS_GRAY 1
#define DF_JPEG_CS_RGB 2
#define DF_JPEG_CS_YBR 3   /* JPEG's YCbCr: DICOM YBR_FULL / YBR_FULL_422 */

/* Where the stream's colour space was learnt from (see df_jpeg_read_info). */
#define DF_JPEG_FROM_JFIF 1       /* a JFIF APP0 marker: always YCbCr */
#define DF_JPEG_FROM_ADOBE 2      /* an Adobe APP14 marker's transform flag */
#define DF_JPEG_FROM_IDS 3        /* component identifiers 1,2,3 or 'R','G','B' */
#define DF_JPEG_FROM_HINT 4       /* nothing in the stream: the caller's hint */
#define DF_JPEG_FROM_COMPONENTS 5 /* one component: grey */

typedef struct df_jpeg_info {
    uint32_t rows;
    uint32_t columns;
    uint32_t components;
    uint32_t precision;     /* sample precision P of the frame header: 8 or 12 */
    uint32_t sof;           /* n of the SOFn marker: 0 baseline, 1 extended, 2 progressive, ... */
    uint32_t colour_space;  /* DF_JPEG_CS_*, as decided for the stream */
    uint32_t colour_from;   /* DF_JPEG_FROM_* */
} df_jpeg_info;

typedef struct df_jpeg_opts {
    /* The colour space the data set announces (Photometric Interpretation), used
     * only when the stream itself says nothing: DF_JPEG_CS_RGB or DF_JPEG_CS_YBR. */
    uint32_t hint;
    /* Nonzero: YCbCr streams are returned as YCbCr (upsampled, not converted). */
    int keep_ybr;
    /* Nonzero: libjpeg's corrupt-data warnings are errors. */
    int strict;
} df_jpeg_opts;

/* The highest sample precision this build decodes (8, or 12 with libjpeg-turbo >= 3). */
int df_jpeg_max_precision(void);

/* The libjpeg version this build links, e.g. "libjpeg-turbo 2.1.5". */
const char *df_jpeg_library(void);

/* Read the markers up to the first scan (no decoding; no library call); opts may
 * be NULL (no hint). */
df_status df_jpeg_read_info(const uint8_t *src, size_t src_len, df_jpeg_info *info,
                            const df_jpeg_opts *opts, df_error *err);

/* Decode one frame into dst (rows * columns * components bytes for 8-bit samples).
 * *n_out is the number of bytes written (or needed, with DF_E_OUTPUT_TOO_SMALL).
 * The output is RGB for a YCbCr stream unless opts->keep_ybr; otherwise the
 * stream's own colour space (df_jpeg_read_info says which). */
df_status df_jpeg_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, const df_jpeg_opts *opts, df_error *err);

typedef struct df_jpeg_enc_opts {
    uint32_t rows;
    uint32_t columns;
    uint32_t components; /* 1 (grey) or 3, pixel-interleaved 8-bit samples */
    uint32_t quality;    /* 1..100, libjpeg's scale of the standard quantization tables */
    int input_ybr;       /* 3 components: the samples are YCbCr already (YBR_FULL), else RGB */
    int subsample;       /* 3 components: halve the chroma horizontally (YBR_FULL_422) */
} df_jpeg_enc_opts;

/* Encode one 8-bit frame as a baseline JPEG stream (ISO/IEC 10918-1 process 1, PS3.5
 * §A.4.1) with optimized Huffman tables: YCbCr for 3 components, as libjpeg's JFIF
 * marker and the data set's Photometric Interpretation (YBR_FULL_422 or YBR_FULL,
 * PS3.5 §8.2.1) say. DF_E_OUTPUT_TOO_SMALL when dst cannot hold it. */
df_status df_jpeg_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, const df_jpeg_enc_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
