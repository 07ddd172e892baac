/* libFuzzer harness for the encapsulated pixel data entry points.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc/include \
 *       csrc/src/df_common.c csrc/src/df_encaps.c csrc/fuzz/fuzz_encaps.c -o /tmp/fuzz_encaps
 *   /tmp/fuzz_encaps -max_total_time=60
 *
 * The first input byte picks the frame count and marker kind; the rest is the
 * encapsulated value. Fixed-size output arrays also exercise the too-small paths.
 */
#include <stddef.h>
#include <stdint.h>

#include "dicomfast/df_encaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_fragment frags[64];
    df_frame_span spans[16];
    df_encaps_opts opts = {0};
    df_error err;
    size_t n_frags = 0, n_spans = 0;
    if (size < 1) return 0;
    opts.little_endian = 1;
    opts.n_frames = (uint32_t)(data[0] & 0x0F) + 1;
    opts.marker = (data[0] >> 4) % 3;
    if (df_encaps_fragments(data + 1, size - 1, frags, 64, &n_frags, &opts, &err) != DF_OK)
        return 0;
    df_encaps_frames(data + 1, size - 1, frags, n_frags, spans, 16, &n_spans, &opts, &err);
    return 0;
}
