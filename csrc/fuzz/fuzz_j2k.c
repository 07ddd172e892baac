/* libFuzzer harness for the JPEG 2000 glue: the library-free header reader and
 * helpers of df_j2k.c (df_j2k_info_read, df_j2k_check_tile_parts, df_j2k_add_tlm) and
 * the OpenJPEG decoder of glue/df_j2k_openjpeg.c, with a lossless round trip.
 *
 * Input layout: byte 0 chooses the options, the rest is the frame (a raw codestream
 * or JP2 boxes, PS3.5 §A.4.4).
 *   bits 0-1  reduce (resolution levels to discard)   bit 2  strict (refuse JP2)
 *   bit 3     sample_bytes 2 (else the decoder's pick)  bit 4  out_signed 0 + fix_sign
 *
 * A frame that decodes losslessly at full resolution (5/3 wavelet, uniform components,
 * no subsampling, at most 64 x 64) is encoded again with df_j2k_encode and must
 * decode back to the same samples: decode(encode(decode(x))) == decode(x).
 *
 * Build and run: bash tools/fuzz.sh j2k 60
 *
 * HTJ2K codestreams (a CAP marker or HT code-blocks in the main header) are not
 * decoded here: Debian's OpenJPEG 2.5.0 fails an assert() in its HT decoder
 * (ht_dec.c mel_init) on malformed code-blocks, as does OpenJPH 0.9 (see
 * fuzz_htj2k.c), and this harness calls the library in its own process. dicomfast
 * decodes such frames in helper processes (dicomfast/pixels/isolated.py);
 * tests/known_library_aborts/ holds the input. The seeds are Part 1 codestreams.
 */
#include <string.h>

#include "dicomfast/df_j2k.h"
#include "fuzz_j2k_common.h"

static df_status decode_j2k(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                            size_t *n_out, const void *ctx) {
    df_error err;
    return df_j2k_decode(src, src_len, dst, dst_len, n_out, (const df_j2k_decode_opts *)ctx,
                         &err);
}

static void round_trip(const uint8_t *samples, size_t len, const df_j2k_info *info,
                       const df_j2k_decode_opts *dopts) {
    df_j2k_encode_opts eo;
    df_j2k_decode_opts back_opts;
    size_t n = 0, back_len = 0;
    uint8_t *enc, *back;
    if (dopts->reduce != 0 || dopts->sample_bytes != 0 || dopts->out_signed != -1 ||
        !fuzz_j2k_lossless_opts(info, len, &eo))
        return;
    enc = fuzz_j2k_encode_twice(df_j2k_encode, samples, len, &eo, &n);
    if (enc == NULL)
        return;
    memset(&back_opts, 0, sizeof back_opts);
    back_opts.out_signed = -1;
    back_opts.strict = 1;
    back = fuzz_decode_twice(decode_j2k, enc, n, &back_opts, &back_len);
    FUZZ_CHECK(back != NULL && back_len == len && memcmp(back, samples, len) == 0);
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_j2k_info info;
    df_j2k_decode_opts opts;
    df_error err;
    size_t n = 0, out_len = 0;
    uint8_t *out;
    const uint8_t *src;
    size_t src_len;
    if (size < 1)
        return 0;
    src = data + 1;
    src_len = size - 1;
    if (df_j2k_info_read(src, src_len, &info, &err) == DF_OK) {
        FUZZ_CHECK(info.codestream_offset + info.codestream_len <= src_len);
        FUZZ_CHECK(info.header_len <= info.codestream_len);
        df_j2k_check_tile_parts(src, src_len, &info, &err);
        /* TLM insertion works on raw codestreams; sized by the two-call contract. */
        if (!info.jp2 && df_j2k_add_tlm(src, src_len, NULL, 0, &n, &err) == DF_E_OUTPUT_TOO_SMALL &&
            n <= FUZZ_MAX_FRAME) {
            uint8_t *tlm = malloc(n ? n : 1);
            size_t n2 = 0;
            if (tlm != NULL) {
                df_status st = df_j2k_add_tlm(src, src_len, tlm, n, &n2, &err);
                FUZZ_CHECK(st != DF_E_OUTPUT_TOO_SMALL);
                if (st == DF_OK) {
                    df_j2k_info again;
                    FUZZ_CHECK(n2 <= n);
                    /* The copy is still a codestream with the same header. */
                    FUZZ_CHECK(df_j2k_info_read(tlm, n2, &again, &err) == DF_OK &&
                               again.rows == info.rows && again.columns == info.columns &&
                               again.components == info.components);
                }
                free(tlm);
            }
        }
    }
    memset(&opts, 0, sizeof opts);
    opts.reduce = data[0] & 3;
    opts.strict = (data[0] >> 2) & 1;
    opts.sample_bytes = (data[0] & 8) ? 2 : 0;
    opts.out_signed = (data[0] & 16) ? 0 : -1;
    opts.fix_sign = (data[0] & 16) ? 1 : 0;
    opts.threads = 1;
    if (df_j2k_info_read(src, src_len, &info, &err) == DF_OK && info.htj2k)
        return 0;  /* see the header comment */
    out = fuzz_decode_twice(decode_j2k, src, src_len, &opts, &out_len);
    if (out != NULL) {
        FUZZ_CHECK(df_j2k_info_read(src, src_len, &info, &err) == DF_OK);
        round_trip(out, out_len, &info, &opts);
        free(out);
    }
    return 0;
}
