/* libFuzzer harness for the HTJ2K glue on OpenJPH (glue/df_htj2k_openjph.cpp,
 * ISO/IEC 15444-15; PS3.5 §10.18), with a lossless round trip through its encoder.
 *
 * Input layout: byte 0 chooses the options, the rest is the codestream.
 *   bits 0-1  reduce    bit 3  sample_bytes 2 (else the decoder's pick)
 *
 * A frame that decodes losslessly at full resolution (uniform components, no
 * subsampling, at most 64 x 64) is encoded again with df_htj2k_encode and must
 * decode back to the same samples.
 *
 * Build and run: bash tools/fuzz.sh htj2k 60 (links OpenJPH, so clang++ links it)
 *
 * Not part of `tools/fuzz.sh all` or the CI smoke run: OpenJPH 0.9 (Debian's) ends
 * the process with assert() on some malformed packet headers, which no check in the
 * glue can rule out (tests/fuzz_regressions/htj2k/crash-491f46cd034127a3). dicomfast
 * decodes HTJ2K frames in helper processes (dicomfast/pixels/isolated.py), where such
 * an abort ends only the helper; this harness, which calls the library in its own
 * process, is for OpenJPH releases that report such streams as errors.
 */
#include <string.h>

#include "dicomfast/df_j2k.h"
#include "fuzz_j2k_common.h"

static df_status decode_ht(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                           size_t *n_out, const void *ctx) {
    df_error err;
    return df_htj2k_decode(src, src_len, dst, dst_len, n_out, (const df_j2k_decode_opts *)ctx,
                           &err);
}

static void round_trip(const uint8_t *samples, size_t len, const df_j2k_info *info) {
    df_j2k_encode_opts eo;
    df_j2k_decode_opts back_opts;
    size_t n = 0, back_len = 0;
    uint8_t *enc, *back;
    if (!fuzz_j2k_lossless_opts(info, len, &eo))
        return;
    eo.progression = DF_J2K_RPCL;
    enc = fuzz_j2k_encode_twice(df_htj2k_encode, samples, len, &eo, &n);
    if (enc == NULL)
        return;
    memset(&back_opts, 0, sizeof back_opts);
    back_opts.out_signed = -1;
    back = fuzz_decode_twice(decode_ht, enc, n, &back_opts, &back_len);
    FUZZ_CHECK(back != NULL && back_len == len && memcmp(back, samples, len) == 0);
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_j2k_info info;
    df_j2k_decode_opts opts;
    df_error err;
    size_t out_len = 0;
    uint8_t *out;
    if (size < 1)
        return 0;
    memset(&opts, 0, sizeof opts);
    opts.reduce = data[0] & 3;
    opts.sample_bytes = (data[0] & 8) ? 2 : 0;
    opts.out_signed = -1;
    out = fuzz_decode_twice(decode_ht, data + 1, size - 1, &opts, &out_len);
    if (out != NULL) {
        FUZZ_CHECK(df_j2k_info_read(data + 1, size - 1, &info, &err) == DF_OK);
        if (opts.reduce == 0 && opts.sample_bytes == 0)
            round_trip(out, out_len, &info);
        free(out);
    }
    return 0;
}
