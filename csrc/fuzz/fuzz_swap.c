/* libFuzzer harness for byte swapping and 1-bit unpacking.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc/include \
 *       csrc/src/df_common.c csrc/src/df_swap.c csrc/fuzz/fuzz_swap.c -o /tmp/fuzz_swap
 *   /tmp/fuzz_swap -max_total_time=60
 */
#include <stddef.h>
#include <stdint.h>

#include "dicomfast/df_swap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t out[4096];
    df_error err;
    size_t n = 0;
    if (size < 2) return 0;
    df_swap_opts sw = {(unsigned)(1u << (data[0] % 4))};
    df_swap_bytes(data + 2, size - 2, out, sizeof out, &n, &sw, &err);
    df_unpack_opts up = {data[1] % 64, (uint64_t)size * 8};
    df_unpack_bits(data + 2, size - 2, out, sizeof out, &n, &up, &err);
    up.count = (size - 2) * 8 > up.first_bit ? (size - 2) * 8 - up.first_bit : 0;
    df_unpack_bits(data + 2, size - 2, out, sizeof out, &n, &up, &err);
    return 0;
}
