/* libFuzzer harness for df_ljpeg_info / df_ljpeg_decode (and df_ljpeg_encode on what
 * decodes).
 *
 * The first input byte picks the options (bit 0 strict, bit 1 planar, bit 2 int16
 * predictors); the rest is the JPEG frame. Frames that decode to one or three
 * components of the frame size are encoded again, and must decode back to the same
 * samples.
 *
 * Build (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I csrc/include \
 *       csrc/fuzz/fuzz_ljpeg.c csrc/src/df_ljpeg.c csrc/src/df_ljpeg_enc.c \
 *       csrc/src/df_common.c -o fuzz_ljpeg
 *   ./fuzz_ljpeg -max_total_time=60 -max_len=65536 [seed corpus directory]
 */
#include <stdlib.h>

#include "dicomfast/df_ljpeg.h"

/* Larger frames are left alone: the point is the parsing, not the memory. */
#define MAX_OUT (64u << 20)

static void round_trip(const uint8_t *samples, size_t len, const df_ljpeg_info_t *info) {
    df_ljpeg_enc_opts eo;
    df_ljpeg_opts strict = {1, 0, 0};
    df_error err;
    size_t bound, n = 0, again = 0;
    uint8_t *enc, *back;
    if (info->planar || (info->components != 1 && info->components != 3)) return;
    eo.rows = info->rows;
    eo.columns = info->columns;
    eo.components = info->components;
    eo.precision = info->precision;
    bound = df_ljpeg_encode_bound(&eo);
    enc = malloc(bound);
    back = malloc(len);
    if (enc != NULL && back != NULL) {
        df_status st = df_ljpeg_encode(samples, len, enc, bound, &n, &eo, &err);
        /* Corrupt data may leave samples above 2^P, which the encoder refuses. */
        if (st == DF_OK) {
            if (n > bound ||
                df_ljpeg_decode(enc, n, back, len, &again, &strict, &err) != DF_OK ||
                again != len || memcmp(samples, back, len) != 0)
                abort();
        } else if (st != DF_E_INVALID_ARG) {
            abort();
        }
    }
    free(enc);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_ljpeg_info_t info;
    df_ljpeg_opts opts;
    df_error err;
    size_t n_out = 0;
    uint8_t *dst;
    if (size < 1) return 0;
    opts.strict = data[0] & 1;
    opts.planar = (data[0] >> 1) & 1;
    opts.int16_predictors = (data[0] >> 2) & 1;
    if (df_ljpeg_info(data + 1, size - 1, &info, &err) != DF_OK || info.out_len > MAX_OUT)
        return 0;
    /* An exactly sized heap buffer so that any write past it is caught. */
    dst = malloc(info.out_len ? info.out_len : 1);
    if (dst == NULL) return 0;
    if (df_ljpeg_decode(data + 1, size - 1, dst, info.out_len, &n_out, &opts, &err) == DF_OK) {
        if (n_out != info.out_len) abort();
        if (!opts.planar) round_trip(dst, n_out, &info);
    } else if (err.status == DF_OK || err.detail[0] == '\0') {
        abort(); /* every failure says why */
    }
    free(dst);
    return 0;
}
