/* RLE Lossless (PS3.5 Annex G): decode and encode one frame.
 *
 * The compressed frame is the RLE Header (PS3.5 G.5: 16 little-endian 32-bit
 * words, the segment count then up to 15 segment offsets) followed by the
 * segments, each the PackBits-style byte stream of one byte plane (G.3).
 * The uncompressed side is always the native little-endian, pixel-interleaved
 * layout: rows x columns x samples_per_pixel samples of bits_allocated / 8
 * bytes each, i.e. what numpy's `<u2` etc. gives with shape (rows, cols, spp).
 */
#ifndef DICOMFAST_DF_RLE_H
#define DICOMFAST_DF_RLE_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The RLE Header has room for 15 segment offsets (PS3.5 G.5). */
#define DF_RLE_MAX_SEGMENTS 15
#define DF_RLE_HEADER_LEN 64

typedef struct df_rle_opts {
    uint32_t rows, columns;
    uint16_t samples_per_pixel, bits_allocated; /* bits: 8, 16, 32 or 64 */
    int strict; /* decode: reject what the standard forbids but real encoders emit */
} df_rle_opts;

/* Decode one frame (its fragments concatenated) into dst.
 *
 * Needs rows * columns * samples_per_pixel * bits_allocated / 8 bytes of dst;
 * *n_out is that size on success and on DF_E_OUTPUT_TOO_SMALL. Corrupt or
 * truncated input returns DF_E_DECODE with the offset in src; unusable opts
 * return DF_E_INVALID_ARG or DF_E_UNSUPPORTED. Nothing outside
 * dst[0, *n_out) is written; on error the contents of dst are unspecified.
 *
 * Leniency (strict == 0) accepts what real encoders emit: bytes after a
 * segment's last needed run, a last run that overshoots the rows * columns
 * bytes of its byte plane (clipped), a literal run cut short by the end of its
 * segment, a first segment offset past 64 and non-zero unused offsets.
 * strict != 0 rejects all of these except one pad byte after a segment (PS3.5
 * G.5 even segments, A.4 even fragments) and -128 no-op bytes. A segment that
 * decodes to fewer than rows * columns bytes is always an error.
 */
df_status df_rle_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_rle_opts *opts, df_error *err);

/* Worst-case size of one encoded frame for opts (header, runs, padding);
 * 0 when opts cannot be encoded (bad geometry, more than 15 segments, or a
 * size that does not fit size_t). */
size_t df_rle_encode_bound(const df_rle_opts *opts);

/* Encode one frame from the native layout described above (src_len must be
 * at least the frame size). dst_len >= df_rle_encode_bound(opts) always
 * suffices; *n_out is the encoded length (even, header included). */
df_status df_rle_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_rle_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
