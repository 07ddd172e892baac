/* libFuzzer harness for df_rle_decode (and df_rle_encode on what decodes).
 *
 * The first input byte picks the frame geometry, the second the strictness;
 * the rest is the compressed frame. Whatever decodes is encoded again and must
 * decode back to the same bytes.
 *
 * Build (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I csrc/include \
 *       csrc/fuzz/fuzz_rle.c csrc/src/df_rle.c csrc/src/df_common.c -o fuzz_rle
 *   ./fuzz_rle -max_total_time=60 -max_len=65536
 */
#include <stdlib.h>

#include "dicomfast/df_rle.h"

/* Geometries cover the one-segment path, the byte-plane interleaves with two,
 * three (shuffled), four, six, eight and twelve segments, and widths that do
 * not fill a vector. */
static const df_rle_opts GEOMETRIES[] = {
    {8, 8, 1, 8, 0},   {1, 1, 1, 8, 0},   {3, 5, 1, 16, 0},  {16, 17, 3, 8, 0},
    {7, 9, 3, 16, 0},  {5, 4, 1, 32, 0},  {2, 21, 3, 32, 0}, {4, 3, 1, 64, 0},
    {33, 1, 2, 8, 0},  {1, 300, 4, 8, 0}, {64, 64, 1, 16, 0}, {2, 2, 5, 16, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_rle_opts opts;
    df_error err;
    size_t need, n_out = 0, bound, enc_len = 0, again = 0;
    uint8_t *dst, *enc, *back;
    if (size < 2)
        return 0;
    opts = GEOMETRIES[data[0] % (sizeof GEOMETRIES / sizeof GEOMETRIES[0])];
    opts.strict = data[1] & 1;
    need = (size_t)opts.rows * opts.columns * opts.samples_per_pixel * (opts.bits_allocated / 8);
    /* An exactly sized heap buffer so that any write past it is caught. */
    dst = malloc(need);
    if (dst == NULL)
        return 0;
    if (df_rle_decode(data + 2, size - 2, dst, need, &n_out, &opts, &err) == DF_OK) {
        if (n_out != need)
            abort();
        bound = df_rle_encode_bound(&opts);
        enc = malloc(bound);
        back = malloc(need);
        if (enc != NULL && back != NULL) {
            if (df_rle_encode(dst, need, enc, bound, &enc_len, &opts, &err) != DF_OK)
                abort();
            opts.strict = 1;
            if (df_rle_decode(enc, enc_len, back, need, &again, &opts, &err) != DF_OK ||
                memcmp(dst, back, need) != 0)
                abort();
        }
        free(enc);
        free(back);
    }
    free(dst);
    return 0;
}
