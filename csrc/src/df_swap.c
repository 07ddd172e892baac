/* Byte swapping (PS3.5 §7.3: big endian transfer syntax) and 1-bit unpacking. */
#include "dicomfast/df_swap.h"

df_status df_swap_bytes(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_swap_opts *opts, df_error *err) {
    size_t i;
    unsigned w = opts->width;
    df_error_clear(err);
    *n_out = 0;
    if (w != 2 && w != 4 && w != 8)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "swap width %u", w);
    if (src_len % w)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "%zu bytes is not a multiple of %u",
                       src_len, w);
    if (dst_len < src_len) {
        *n_out = src_len;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "need %zu bytes", src_len);
    }
    /* Plain loops over fixed widths: compilers turn these into vector shuffles. */
    if (w == 2) {
        for (i = 0; i + 1 < src_len; i += 2) {
            uint8_t a = src[i], b = src[i + 1];
            dst[i] = b;
            dst[i + 1] = a;
        }
    } else if (w == 4) {
        for (i = 0; i + 3 < src_len; i += 4) {
            uint32_t v;
            memcpy(&v, src + i, 4);
            v = __builtin_bswap32(v);
            memcpy(dst + i, &v, 4);
        }
    } else {
        for (i = 0; i + 7 < src_len; i += 8) {
            uint64_t v;
            memcpy(&v, src + i, 8);
            v = __builtin_bswap64(v);
            memcpy(dst + i, &v, 8);
        }
    }
    *n_out = src_len;
    return DF_OK;
}

df_status df_unpack_bits(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, const df_unpack_opts *opts, df_error *err) {
    uint64_t first = opts->first_bit, count = opts->count, i;
    df_error_clear(err);
    *n_out = 0;
    if (count > dst_len) {
        *n_out = (size_t)count;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "need %llu bytes",
                       (unsigned long long)count);
    }
    if (first > (uint64_t)src_len * 8 || count > (uint64_t)src_len * 8 - first)
        return df_fail(err, DF_E_TRUNCATED, src_len, DF_NO_TAG,
                       "%llu bits from bit %llu run past %zu bytes", (unsigned long long)count,
                       (unsigned long long)first, src_len);
    i = 0;
    /* Byte-aligned fast path: eight pixels per source byte. */
    if ((first & 7) == 0) {
        const uint8_t *p = src + (first >> 3);
        for (; i + 8 <= count; i += 8) {
            uint8_t b = *p++;
            for (unsigned k = 0; k < 8; k++) dst[i + k] = (b >> k) & 1u;
        }
    }
    for (; i < count; i++) {
        uint64_t bit = first + i;
        dst[i] = (src[bit >> 3] >> (bit & 7)) & 1u;
    }
    *n_out = (size_t)count;
    return DF_OK;
}
