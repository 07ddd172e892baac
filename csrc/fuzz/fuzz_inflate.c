/* libFuzzer harness for the Deflate glue on zlib (glue/df_zlib.c; PS3.5 §A.4.13 and
 * §A.5): df_zlib_inflate into an exactly sized buffer, and the round trip
 * inflate(deflate(inflate(x))) == inflate(x).
 *
 * Input layout: bytes 0-1 (little endian) the expected frame size, 1..65536; byte 2
 * bit 0 strict; the rest is the compressed frame. A deflate bomb therefore hits the
 * caller's size, which is the inflate cap the reader relies on.
 *
 * Build and run: bash tools/fuzz.sh inflate 60
 */
#include <stdlib.h>
#include <string.h>

#include "dicomfast/df_zlib.h"

#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_zlib_opts opts;
    df_error err;
    size_t expect, n = 0, bound, enc_len = 0, again = 0;
    uint8_t *dst, *enc, *back;
    df_status st;
    if (size < 3)
        return 0;
    expect = (size_t)(data[0] | (data[1] << 8)) + 1;
    memset(&opts, 0, sizeof opts);
    opts.strict = data[2] & 1;
    opts.level = -1;
    dst = malloc(expect);
    if (dst == NULL)
        return 0;
    st = df_zlib_inflate(data + 3, size - 3, dst, expect, &n, &opts, &err);
    FUZZ_CHECK(st == DF_OK || st == DF_E_TRUNCATED || st == DF_E_MALFORMED ||
               st == DF_E_DECODE || st == DF_E_LIMIT || st == DF_E_OUTPUT_TOO_SMALL ||
               st == DF_E_LIBRARY || st == DF_E_NO_MEMORY);
    if (st == DF_OK) {
        FUZZ_CHECK(n == expect);
        bound = df_zlib_deflate_bound(expect);
        enc = malloc(bound);
        back = malloc(expect);
        if (enc != NULL && back != NULL) {
            opts.level = data[2] >> 4 > 9 ? -1 : data[2] >> 4;
            FUZZ_CHECK(df_zlib_deflate(dst, expect, enc, bound, &enc_len, &opts, &err) == DF_OK);
            FUZZ_CHECK(enc_len <= bound);
            opts.strict = 1;
            FUZZ_CHECK(df_zlib_inflate(enc, enc_len, back, expect, &again, &opts, &err) == DF_OK);
            FUZZ_CHECK(again == expect && memcmp(dst, back, expect) == 0);
        }
        free(enc);
        free(back);
    }
    free(dst);
    return 0;
}
