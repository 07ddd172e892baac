/* libFuzzer harness for the JPEG Baseline / Extended glue on libjpeg
 * (glue/df_jpeg.c; PS3.5 §8.2.1, §A.4.1): df_jpeg_read_info, df_jpeg_decode and
 * df_jpeg_encode.
 *
 * Input layout: byte 0 chooses the options, the rest is the frame.
 *   bits 0-1  colour hint: none, RGB, YBR    bit 2  keep_ybr    bit 3  strict
 *   bits 4-7  the quality (6 * n + 5) and, bit 4, the subsampling of the re-encode
 *
 * Besides the sanitizers: the marker reader and libjpeg must agree on the output
 * size whenever both accept the frame (the Cython layer sizes its array from the
 * former), the two-call sizing contract of fuzz_decode_common.h holds, and an
 * 8-bit decoded frame encodes (into a buffer that may be too small: then
 * DF_E_OUTPUT_TOO_SMALL, and into a large one it succeeds) to a stream that decodes
 * to the same dimensions.
 *
 * Build and run: bash tools/fuzz.sh jpeg 60
 */
#include <string.h>

#include "dicomfast/df_jpeg.h"
#include "fuzz_decode_common.h"

static df_status decode_jpeg(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                             size_t *n_out, const void *ctx) {
    df_error err;
    return df_jpeg_decode(src, src_len, dst, dst_len, n_out, (const df_jpeg_opts *)ctx, &err);
}

static void reencode(const uint8_t *samples, size_t len, const df_jpeg_info *info,
                     uint8_t options) {
    df_jpeg_enc_opts eo;
    df_jpeg_opts dopts;
    df_error err;
    size_t n = 0, back_len = 0;
    if (info->precision != 8)
        return;
    memset(&eo, 0, sizeof eo);
    memset(&dopts, 0, sizeof dopts);
    eo.rows = info->rows;
    eo.columns = info->columns;
    eo.components = info->components;
    eo.quality = 6u * (options >> 4) + 5u;
    eo.subsample = (options >> 4) & 1;
    uint8_t small[64];
    df_status st = df_jpeg_encode(samples, len, small, sizeof small, &n, &eo, &err);
    FUZZ_CHECK(st == DF_OK || st == DF_E_OUTPUT_TOO_SMALL);
    size_t room = 8 * len + 4096;
    uint8_t *enc = malloc(room);
    FUZZ_CHECK(enc != NULL);
    FUZZ_CHECK(df_jpeg_encode(samples, len, enc, room, &n, &eo, &err) == DF_OK);
    FUZZ_CHECK(n > 0 && n <= room);
    dopts.keep_ybr = 1;
    uint8_t *back = fuzz_decode_twice(decode_jpeg, enc, n, &dopts, &back_len);
    FUZZ_CHECK(back != NULL && back_len == len);
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_jpeg_opts opts;
    df_jpeg_info info;
    df_error err;
    size_t out_len = 0;
    uint8_t *out;
    static const uint32_t hints[4] = {0, DF_JPEG_CS_RGB, DF_JPEG_CS_YBR, 0};
    if (size < 1)
        return 0;
    memset(&opts, 0, sizeof opts);
    opts.hint = hints[data[0] & 3];
    opts.keep_ybr = (data[0] >> 2) & 1;
    opts.strict = (data[0] >> 3) & 1;
    out = fuzz_decode_twice(decode_jpeg, data + 1, size - 1, &opts, &out_len);
    if (out != NULL) {
        FUZZ_CHECK(df_jpeg_read_info(data + 1, size - 1, &info, &opts, &err) == DF_OK);
        FUZZ_CHECK(out_len == (size_t)info.rows * info.columns * info.components *
                                  (info.precision > 8 ? 2 : 1));
        reencode(out, out_len, &info, data[0]);
        free(out);
    }
    return 0;
}
