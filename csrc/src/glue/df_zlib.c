/* Deflated Image Frame Compression (PS3.5 §8.2.16, §A.4.13): one raw Deflate
 * (RFC 1951) stream per frame, inflated straight into the caller's frame buffer.
 *
 * Each call owns its z_stream, so calls on many threads at once are safe. zlib
 * counts in uInt, so buffers larger than 4 GiB are fed in slices.
 */
#include "dicomfast/df_zlib.h"

#include <limits.h>

#include <zlib.h>

#define DF_ZLIB_SLICE ((size_t)1 << 30)

const char *df_zlib_library(void) { return "zlib " ZLIB_VERSION; }

static uInt df_zlib_slice(size_t n) { return (uInt)(n < DF_ZLIB_SLICE ? n : DF_ZLIB_SLICE); }

/* A zlib (RFC 1950 §2.2) header: CM 8, CINFO <= 7, FCHECK making CMF*256+FLG a multiple of 31. */
static int df_zlib_wrapped(const uint8_t *src, size_t src_len) {
    return src_len >= 2 && (src[0] & 0x0F) == 8 && (src[0] >> 4) <= 7 &&
           ((src[0] << 8) | src[1]) % 31 == 0;
}

static df_status df_zlib_inflate_as(const uint8_t *src, size_t src_len, uint8_t *dst,
                                    size_t dst_len, size_t *n_out, int window_bits, int strict,
                                    df_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int rc = inflateInit2(&zs, window_bits);
    if (rc != Z_OK)
        return df_fail(err, rc == Z_MEM_ERROR ? DF_E_NO_MEMORY : DF_E_LIBRARY, 0, DF_NO_TAG,
                       "zlib inflateInit2 failed (%d)", rc);
    size_t in_done = 0, out_done = 0;
    zs.next_in = (Bytef *)(uintptr_t)src; /* zlib never writes through next_in */
    zs.next_out = dst;
    for (;;) {
        zs.avail_in = df_zlib_slice(src_len - in_done);
        zs.avail_out = df_zlib_slice(dst_len - out_done);
        uInt in0 = zs.avail_in, out0 = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        in_done += in0 - zs.avail_in;
        out_done += out0 - zs.avail_out;
        if (rc == Z_STREAM_END || rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR)
            break;
        if (rc == Z_BUF_ERROR || (in0 == zs.avail_in && out0 == zs.avail_out))
            break; /* no progress: input used up or output full */
    }
    *n_out = out_done;
    if (rc == Z_STREAM_END) {
        inflateEnd(&zs);
        if (out_done < dst_len)
            return df_fail(err, DF_E_DECODE, in_done, DF_NO_TAG,
                           "the deflated frame holds %zu bytes, the frame needs %zu", out_done,
                           dst_len);
        return DF_OK;
    }
    df_status status = DF_OK;
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
        status = df_fail(err, DF_E_DECODE, in_done, DF_NO_TAG, "corrupt Deflate data: %s",
                         zs.msg != NULL ? zs.msg : "preset dictionary required");
    } else if (rc == Z_MEM_ERROR) {
        status = df_fail(err, DF_E_NO_MEMORY, in_done, DF_NO_TAG, "zlib ran out of memory");
    } else if (out_done < dst_len) {
        status = df_fail(err, DF_E_DECODE, in_done, DF_NO_TAG,
                         "the deflated frame ends after %zu of %zu bytes", out_done, dst_len);
    } else if (strict) {
        /* The frame is full; more output means the stream holds more than one frame. */
        uint8_t extra;
        zs.avail_in = df_zlib_slice(src_len - in_done);
        zs.next_out = &extra;
        zs.avail_out = 1;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (zs.avail_out == 0)
            status = df_fail(err, DF_E_DECODE, in_done, DF_NO_TAG,
                             "the deflated frame holds more than the %zu bytes of a frame",
                             dst_len);
        else if (rc != Z_STREAM_END)
            status = df_fail(err, DF_E_DECODE, in_done, DF_NO_TAG,
                             "the Deflate stream does not end after the frame");
    }
    inflateEnd(&zs);
    return status;
}

df_status df_zlib_inflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_zlib_opts *opts, df_error *err) {
    int strict = opts != NULL && opts->strict;
    *n_out = 0;
    df_error_clear(err);
    if (src == NULL)
        src_len = 0;
    if (dst == NULL && dst_len != 0)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "no output buffer");
    df_status status = df_zlib_inflate_as(src, src_len, dst, dst_len, n_out, -MAX_WBITS, strict,
                                          err);
    /* §A.4.13 says raw Deflate; a zlib-wrapped frame is read leniently unless strict. */
    if (status != DF_OK && !strict && df_zlib_wrapped(src, src_len)) {
        df_error saved = *err;
        size_t n_saved = *n_out;
        if (df_zlib_inflate_as(src, src_len, dst, dst_len, n_out, MAX_WBITS, 0, err) == DF_OK)
            return DF_OK;
        *err = saved;
        *n_out = n_saved;
    }
    return status;
}

size_t df_zlib_deflate_bound(size_t src_len) {
    /* deflateBound's figure for raw Deflate, per slice, plus the pad byte. */
    size_t slices = src_len / DF_ZLIB_SLICE + 1;
    return src_len + (src_len >> 12) + (src_len >> 14) + (src_len >> 25) + 13 * slices + 8;
}

df_status df_zlib_deflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_zlib_opts *opts, df_error *err) {
    int level = opts != NULL ? opts->level : Z_DEFAULT_COMPRESSION;
    z_stream zs;
    *n_out = 0;
    df_error_clear(err);
    if (level < -1 || level > 9)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "Deflate level %d is not -1..9",
                       level);
    if (dst == NULL || dst_len < df_zlib_deflate_bound(src_len)) {
        *n_out = df_zlib_deflate_bound(src_len);
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "Deflate output needs up to %zu bytes", *n_out);
    }
    memset(&zs, 0, sizeof zs);
    int rc = deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
        return df_fail(err, rc == Z_MEM_ERROR ? DF_E_NO_MEMORY : DF_E_LIBRARY, 0, DF_NO_TAG,
                       "zlib deflateInit2 failed (%d)", rc);
    size_t in_done = 0, out_done = 0;
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.next_out = dst;
    do {
        zs.avail_in = df_zlib_slice(src_len - in_done);
        zs.avail_out = df_zlib_slice(dst_len - 1 - out_done);
        uInt in0 = zs.avail_in, out0 = zs.avail_out;
        int flush = src_len - in_done == in0 ? Z_FINISH : Z_NO_FLUSH;
        rc = deflate(&zs, flush);
        in_done += in0 - zs.avail_in;
        out_done += out0 - zs.avail_out;
        if (rc == Z_STREAM_ERROR || (rc == Z_BUF_ERROR && out_done >= dst_len - 1)) {
            deflateEnd(&zs);
            return df_fail(err, DF_E_LIBRARY, 0, DF_NO_TAG, "zlib deflate failed (%d)", rc);
        }
    } while (rc != Z_STREAM_END);
    deflateEnd(&zs);
    if (out_done & 1)
        dst[out_done++] = 0; /* §A.4.13: an odd-length stream gets one trailing NUL */
    *n_out = out_done;
    return DF_OK;
}
