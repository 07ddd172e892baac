/* Lossless JPEG: ITU-T T.81 process 14 (Annex H, Huffman coded), the codec of the
 * DICOM transfer syntaxes 1.2.840.10008.1.2.4.57 (JPEG Lossless) and
 * 1.2.840.10008.1.2.4.70 (JPEG Lossless, Selection Value 1), PS3.5 §8.2.1 / §A.4.1.
 *
 * Decoded samples are native-endian integers, one per sample: uint8 when the frame
 * precision P is 8 or less, uint16 when it is 9 to 16. Components are interleaved
 * per pixel (rows x columns x components) when every component has the frame's
 * size; when sampling factors make them differ (A.1.1), or when opts->planar asks,
 * each component is written as its own plane, one after the other.
 */
#ifndef DICOMFAST_DF_LJPEG_H
#define DICOMFAST_DF_LJPEG_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* T.81 allows up to 255 components in a lossless frame (B.2.2); DICOM uses 1 or 3. */
#define DF_LJPEG_MAX_COMPONENTS 4

typedef struct df_ljpeg_info_t {
    uint32_t rows;                 /* Y of SOF3 */
    uint32_t columns;              /* X of SOF3 */
    uint32_t components;           /* Nf */
    uint32_t precision;            /* P, 2..16 */
    uint32_t bytes_per_sample;     /* 1 when P <= 8, else 2 */
    uint32_t planar;               /* 1: components differ in size, so decode writes planes */
    uint32_t restart_interval;     /* Ri of a DRI before SOF3, else 0 */
    uint32_t comp_rows[DF_LJPEG_MAX_COMPONENTS];     /* yi (A.1.1) */
    uint32_t comp_columns[DF_LJPEG_MAX_COMPONENTS];  /* xi (A.1.1) */
    uint8_t comp_id[DF_LJPEG_MAX_COMPONENTS];        /* Ci */
    uint8_t comp_h[DF_LJPEG_MAX_COMPONENTS];         /* Hi */
    uint8_t comp_v[DF_LJPEG_MAX_COMPONENTS];         /* Vi */
    size_t out_len;                /* bytes df_ljpeg_decode writes */
    size_t sof_offset;             /* offset of the SOF3 marker in src */
} df_ljpeg_info_t;

typedef struct df_ljpeg_opts {
    /* Refuse what lenient decoding tolerates: a missing EOI, unused DC symbols
     * above 16, restart markers out of sequence, entropy data left over after a
     * scan, marker segments of the wrong kind for a lossless frame. */
    int strict;
    /* Write one plane per component even when all components have the same size. */
    int planar;
    /* Reproduce an old encoder that computed predictors 5 to 7 on samples
     * reinterpreted as int16, overflowing on 16-bit data (what DCMTK calls
     * --workaround-pred6). Only meaningful for P = 16. */
    int int16_predictors;
} df_ljpeg_opts;

/* Parse the markers of one frame up to and including SOF3. */
df_status df_ljpeg_info(const uint8_t *src, size_t src_len, df_ljpeg_info_t *info,
                        df_error *err);

/* Decode one frame (SOI ... EOI) into dst; *n_out = bytes written (info.out_len).
 * opts may be NULL for the defaults (lenient, interleaved). */
df_status df_ljpeg_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_ljpeg_opts *opts, df_error *err);

/* Encoder: selection value 1, point transform 0, one interleaved scan, Huffman
 * table optimised for the image (K.2), no restart intervals. src holds rows x
 * columns x components samples in the decoder's layout (uint8 when precision
 * <= 8, else native uint16); samples must be below 2^precision. */
typedef struct df_ljpeg_enc_opts {
    uint32_t rows;
    uint32_t columns;
    uint32_t components;           /* 1 or 3 */
    uint32_t precision;            /* 2..16 */
} df_ljpeg_enc_opts;

/* Bytes that always suffice for df_ljpeg_encode's output; 0 when opts are invalid. */
size_t df_ljpeg_encode_bound(const df_ljpeg_enc_opts *opts);

df_status df_ljpeg_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_ljpeg_enc_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
