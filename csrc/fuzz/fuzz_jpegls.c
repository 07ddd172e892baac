/* libFuzzer harness for the JPEG-LS glue on CharLS (glue/df_jpegls.c; PS3.5 §8.2.3,
 * §A.4.3): df_jpegls_read_info, df_jpegls_decode and df_jpegls_encode.
 *
 * The whole input is the frame. Besides the sanitizers: the header and the decoded
 * size agree, the two-call sizing contract of fuzz_decode_common.h holds, and a
 * decoded frame of 1 or 3 components encodes losslessly (its samples fit its
 * precision by construction) and decodes back to the same samples.
 *
 * Build and run: bash tools/fuzz.sh jpegls 60
 */
#include <string.h>

#include "dicomfast/df_jpegls.h"
#include "fuzz_decode_common.h"

static df_status decode_ls(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                           size_t *n_out, const void *ctx) {
    df_error err;
    return df_jpegls_decode(src, src_len, dst, dst_len, n_out, (const df_jpegls_opts *)ctx,
                            &err);
}

static void reencode(const uint8_t *samples, size_t len, const df_jpegls_info *info) {
    df_jpegls_enc_opts eo;
    df_jpegls_opts opts;
    df_error err;
    size_t n = 0, back_len = 0;
    if ((info->components != 1 && info->components != 3) || info->rows > 65535 ||
        info->columns > 65535 || info->precision < 2)
        return;
    memset(&eo, 0, sizeof eo);
    memset(&opts, 0, sizeof opts);
    eo.rows = info->rows;
    eo.columns = info->columns;
    eo.components = info->components;
    eo.precision = info->precision;
    eo.sample_bytes = info->precision > 8 ? 2 : 1;
    size_t bound = df_jpegls_encode_bound(&eo);
    FUZZ_CHECK(bound > 0);
    uint8_t *enc = malloc(bound);
    FUZZ_CHECK(enc != NULL);
    FUZZ_CHECK(df_jpegls_encode(samples, len, enc, bound, &n, &eo, &err) == DF_OK);
    FUZZ_CHECK(n > 0 && n <= bound);
    uint8_t *back = fuzz_decode_twice(decode_ls, enc, n, &opts, &back_len);
    FUZZ_CHECK(back != NULL && back_len == len && memcmp(back, samples, len) == 0);
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_jpegls_opts opts;
    df_jpegls_info info;
    df_error err;
    size_t out_len = 0;
    uint8_t *out;
    memset(&opts, 0, sizeof opts);
    out = fuzz_decode_twice(decode_ls, data, size, &opts, &out_len);
    if (out != NULL) {
        FUZZ_CHECK(df_jpegls_read_info(data, size, &info, &opts, &err) == DF_OK);
        FUZZ_CHECK(out_len == (size_t)info.rows * info.columns * info.components *
                                  (info.precision > 8 ? 2 : 1));
        reencode(out, out_len, &info);
        free(out);
    }
    return 0;
}
