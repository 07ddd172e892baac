/* libFuzzer harness for the JPEG-LS glue on CharLS (glue/df_jpegls.c; PS3.5 §8.2.3,
 * §A.4.3): df_jpegls_read_info and df_jpegls_decode.
 *
 * The whole input is the frame. Besides the sanitizers: the header and the decoded
 * size agree, and the two-call sizing contract of fuzz_decode_common.h holds.
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
        free(out);
    }
    return 0;
}
