/* RLE Lossless codec (PS3.5 Annex G), one frame at a time.
 *
 * Decoding is byte-plane oriented: segment k of a frame holds byte plane k,
 * ordered sample by sample and, within a sample, from the most to the least
 * significant byte (PS3.5 G.2). A frame with one segment (8-bit, one sample)
 * is decoded straight into dst. Otherwise the planes are decoded a chunk of
 * pixels at a time into a small stack buffer and interleaved into dst from
 * there: runs become block copies and fills of contiguous memory, and the
 * interleave is vector code (loops the compiler vectorises; byte shuffles for
 * three samples per pixel), which beats storing every byte at a stride of
 * samples * bytes per pixel.
 */
#include "dicomfast/df_rle.h"

/* Short runs are copied in whole blocks of this size when both buffers have
 * room past the run (the surplus is overwritten by the next run). */
#define RLE_BLOCK 32
#define RLE_ROUND(len) (((len) + (RLE_BLOCK - 1)) & ~(size_t)(RLE_BLOCK - 1))
/* A run is at most 128 bytes: byte planes with this much slack past the
 * chunk always take the block copy. */
#define RLE_FAST_ROOM (128 + RLE_BLOCK)
/* Stack bytes for the byte planes of one chunk: small enough for any
 * thread's stack and to stay in L1 together with the chunk's output. */
#define RLE_SCRATCH 16384

#if defined(__GNUC__)
#define RLE_LIKELY(x) __builtin_expect(!!(x), 1)
#define RLE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RLE_LIKELY(x) (x)
#define RLE_UNLIKELY(x) (x)
#endif

/* One segment being decoded; a run cut by the end of a chunk is resumed from
 * `pending` at the next chunk. */
typedef struct rle_seg {
    const uint8_t *p;   /* next run header */
    const uint8_t *end; /* end of this segment's bytes */
    const uint8_t *lit; /* source of a pending literal run; NULL for a replicate run */
    size_t pending;     /* bytes of the cut run still to be produced */
    uint8_t value;      /* byte of a pending replicate run */
} rle_seg;

typedef struct rle_ctx {
    const uint8_t *src, *src_end;
    int strict;
    df_error *err;
} rle_ctx;

typedef struct rle_geom {
    size_t pixels;     /* rows * columns: the length of every byte plane */
    unsigned bps;      /* bytes per sample */
    unsigned nseg;     /* samples * bytes per sample: segments per frame */
} rle_geom;

static df_status rle_geometry(const df_rle_opts *opts, rle_geom *g, df_error *err) {
    unsigned bits, spp;
    if (opts == NULL)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "no RLE options");
    bits = opts->bits_allocated;
    spp = opts->samples_per_pixel;
    if (opts->rows == 0 || opts->columns == 0 || spp == 0)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "empty frame: %u rows, %u columns, %u samples per pixel",
                       (unsigned)opts->rows, (unsigned)opts->columns, spp);
    /* PS3.5 G.2: a segment per byte; only whole bytes can be split into planes. */
    if (bits != 8 && bits != 16 && bits != 32 && bits != 64)
        return df_fail(err, DF_E_UNSUPPORTED, 0, DF_NO_TAG,
                       "RLE of %u bits allocated is not supported (8, 16, 32 or 64)", bits);
    g->bps = bits / 8;
    g->nseg = spp * g->bps;
    if (g->nseg > DF_RLE_MAX_SEGMENTS)
        return df_fail(err, DF_E_UNSUPPORTED, 0, DF_NO_TAG,
                       "%u samples of %u bits need %u segments; the RLE header holds 15", spp,
                       bits, g->nseg);
    if ((uint64_t)opts->rows * opts->columns > (uint64_t)(SIZE_MAX / 2 / DF_RLE_MAX_SEGMENTS))
        return df_fail(err, DF_E_LIMIT, 0, DF_NO_TAG, "%u x %u pixels is too large",
                       (unsigned)opts->rows, (unsigned)opts->columns);
    g->pixels = (size_t)opts->rows * opts->columns;
    return DF_OK;
}

/* ------------------------------------------------------------------ decoding */

/* Exact copy of a run near the end of a buffer, where whole blocks would
 * overrun it: two overlapping words instead of a call to memcpy. */
static inline void rle_copy_short(uint8_t *o, const uint8_t *p, size_t len) {
    if (len >= 16) {
        memcpy(o, p, len);
    } else if (len >= 8) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
        memcpy(o, &a, 8);
        memcpy(o + len - 8, &b, 8);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        memcpy(o, &a, 4);
        memcpy(o + len - 4, &b, 4);
    } else if (len > 0) {
        o[0] = p[0];
        o[len / 2] = p[len / 2];
        o[len - 1] = p[len - 1];
    }
}

/* Produce up to `want` bytes of segment `k` at o (PS3.5 G.3.2: n in 0..127
 * copies the next n + 1 bytes, n in -127..-1 repeats the next byte 1 - n
 * times, -128 does nothing). `room` >= want bytes from o may be written; the
 * bytes past `want` are scratch. Returns the bytes produced, fewer than
 * `want` only when the segment is exhausted, or (size_t)-1 after an error. */
static size_t seg_fill(rle_seg *s, uint8_t *o, size_t want, size_t room, const rle_ctx *c,
                       unsigned k) {
    uint8_t *const o0 = o, *const oend = o + want, *const rend = o + room;
    const uint8_t *p = s->p;
    const uint8_t *const pend = s->end, *const send = c->src_end;

    if (s->pending) {
        size_t take = s->pending < want ? s->pending : want;
        if (s->lit != NULL) {
            memcpy(o, s->lit, take);
            s->lit += take;
        } else {
            memset(o, s->value, take);
        }
        s->pending -= take;
        o += take;
    }
    /* While a longest run (a header and 128 bytes) fits in what is left of the
     * segment and of the chunk, no run can be cut or cross an end, and the
     * block copies stay inside src and the output room. */
    while ((size_t)(pend - p) >= 129 && (size_t)(oend - o) >= 128) {
        unsigned h = *p++;
        size_t len, i = 0;
        if (h < 128) {
            len = h + 1;
            do {
                memcpy(o + i, p + i, RLE_BLOCK);
                i += RLE_BLOCK;
            } while (i < len);
            p += len;
            o += len;
        } else if (h > 128) {
            uint8_t v = *p++;
            len = 257 - h;
            do {
                memset(o + i, v, RLE_BLOCK);
                i += RLE_BLOCK;
            } while (i < len);
            o += len;
        }
    }
    /* The rest, one check at a time. */
    while (o < oend && p < pend) {
        unsigned h = *p++;
        size_t len;
        if (h < 128) {
            len = h + 1;
            if (RLE_UNLIKELY(len > (size_t)(pend - p))) {
                if (c->strict) {
                    df_fail(c->err, DF_E_DECODE, (uint64_t)(p - 1 - c->src), DF_NO_TAG,
                            "segment %u: literal run of %zu bytes crosses the segment end "
                            "%zu bytes on",
                            k + 1, len, (size_t)(pend - p));
                    return (size_t)-1;
                }
                len = (size_t)(pend - p);
                if (len == 0) /* a header byte with nothing after it: padding */
                    break;
            }
            if (RLE_UNLIKELY(len > (size_t)(oend - o))) {
                size_t left = (size_t)(oend - o);
                memcpy(o, p, left);
                s->lit = p + left;
                s->pending = len - left;
                p += len;
                o = oend;
                break;
            }
            if (RLE_LIKELY((size_t)(rend - o) >= RLE_ROUND(len) &&
                           (size_t)(send - p) >= RLE_ROUND(len))) {
                size_t i = 0;
                do {
                    memcpy(o + i, p + i, RLE_BLOCK);
                    i += RLE_BLOCK;
                } while (i < len);
            } else {
                rle_copy_short(o, p, len);
            }
            o += len;
            p += len;
        } else if (h > 128) {
            uint8_t v;
            len = 257 - h;
            if (RLE_UNLIKELY(p == pend)) {
                if (c->strict) {
                    df_fail(c->err, DF_E_DECODE, (uint64_t)(p - 1 - c->src), DF_NO_TAG,
                            "segment %u: replicate run has no byte before the segment end",
                            k + 1);
                    return (size_t)-1;
                }
                break;
            }
            v = *p++;
            if (RLE_UNLIKELY(len > (size_t)(oend - o))) {
                size_t left = (size_t)(oend - o);
                memset(o, v, left);
                s->lit = NULL;
                s->value = v;
                s->pending = len - left;
                o = oend;
                break;
            }
            if (RLE_LIKELY((size_t)(rend - o) >= RLE_FAST_ROOM)) {
                size_t i = 0;
                do {
                    memset(o + i, v, RLE_BLOCK);
                    i += RLE_BLOCK;
                } while (i < len);
            } else {
                memset(o, v, len);
            }
            o += len;
        }
        /* h == 128 (-128) is a no-op (PS3.5 G.3.2). */
    }
    s->p = p;
    return (size_t)(o - o0);
}

/* Interleave n pixels from byte planes P[q] (q: byte position within the
 * pixel, little-endian sample bytes) into o at a stride of N bytes. Fixed N
 * lets the compiler turn the common layouts into vector shuffles. */
static void rle_interleave_scalar(uint8_t *restrict o, const uint8_t *const *P, size_t n,
                                  unsigned N) {
    size_t i;
    switch (N) {
    case 2: {
        const uint8_t *restrict a = P[0], *restrict b = P[1];
        for (i = 0; i < n; i++) {
            o[2 * i] = a[i];
            o[2 * i + 1] = b[i];
        }
        return;
    }
    case 3: {
        const uint8_t *restrict a = P[0], *restrict b = P[1], *restrict d = P[2];
        for (i = 0; i < n; i++) {
            o[3 * i] = a[i];
            o[3 * i + 1] = b[i];
            o[3 * i + 2] = d[i];
        }
        return;
    }
    case 4: {
        const uint8_t *restrict a = P[0], *restrict b = P[1], *restrict d = P[2],
                               *restrict e = P[3];
        for (i = 0; i < n; i++) {
            o[4 * i] = a[i];
            o[4 * i + 1] = b[i];
            o[4 * i + 2] = d[i];
            o[4 * i + 3] = e[i];
        }
        return;
    }
    default: {
        unsigned q;
        for (q = 0; q < N; q++) {
            const uint8_t *restrict a = P[q];
            uint8_t *restrict d = o + q;
            for (i = 0; i < n; i++) d[i * N] = a[i];
        }
        return;
    }
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
/* Three samples per pixel (RGB, YBR) interleave through byte shuffles. SSSE3
 * is not in the x86-64 baseline the library is built for, so these functions
 * are compiled for it on their own and used only when the CPU has it. */
#define RLE_X86_SHUFFLE 1
#include <tmmintrin.h>

#define Z 0x80 /* pshufb: a mask byte with the top bit set yields zero */
/* RLE_SHUF3[k][j][s]: for 3-way interleaving of (1 << k)-byte elements, the
 * pshufb mask that moves sample s's bytes into output vector j. Output byte
 * g = 16 j + t is byte g % e of element g / e, i.e. of sample (g / e) % 3 of
 * pixel (g / e) / 3, found at byte pixel * e + g % e of that sample's vector. */
static const uint8_t RLE_SHUF3[3][3][3][16] = {
    {/* 1-byte elements */
     {{0, Z, Z, 1, Z, Z, 2, Z, Z, 3, Z, Z, 4, Z, Z, 5},
      {Z, 0, Z, Z, 1, Z, Z, 2, Z, Z, 3, Z, Z, 4, Z, Z},
      {Z, Z, 0, Z, Z, 1, Z, Z, 2, Z, Z, 3, Z, Z, 4, Z}},
     {{Z, Z, 6, Z, Z, 7, Z, Z, 8, Z, Z, 9, Z, Z, 10, Z},
      {5, Z, Z, 6, Z, Z, 7, Z, Z, 8, Z, Z, 9, Z, Z, 10},
      {Z, 5, Z, Z, 6, Z, Z, 7, Z, Z, 8, Z, Z, 9, Z, Z}},
     {{Z, 11, Z, Z, 12, Z, Z, 13, Z, Z, 14, Z, Z, 15, Z, Z},
      {Z, Z, 11, Z, Z, 12, Z, Z, 13, Z, Z, 14, Z, Z, 15, Z},
      {10, Z, Z, 11, Z, Z, 12, Z, Z, 13, Z, Z, 14, Z, Z, 15}},
    },
    {/* 2-byte elements */
     {{0, 1, Z, Z, Z, Z, 2, 3, Z, Z, Z, Z, 4, 5, Z, Z},
      {Z, Z, 0, 1, Z, Z, Z, Z, 2, 3, Z, Z, Z, Z, 4, 5},
      {Z, Z, Z, Z, 0, 1, Z, Z, Z, Z, 2, 3, Z, Z, Z, Z}},
     {{Z, Z, 6, 7, Z, Z, Z, Z, 8, 9, Z, Z, Z, Z, 10, 11},
      {Z, Z, Z, Z, 6, 7, Z, Z, Z, Z, 8, 9, Z, Z, Z, Z},
      {4, 5, Z, Z, Z, Z, 6, 7, Z, Z, Z, Z, 8, 9, Z, Z}},
     {{Z, Z, Z, Z, 12, 13, Z, Z, Z, Z, 14, 15, Z, Z, Z, Z},
      {10, 11, Z, Z, Z, Z, 12, 13, Z, Z, Z, Z, 14, 15, Z, Z},
      {Z, Z, 10, 11, Z, Z, Z, Z, 12, 13, Z, Z, Z, Z, 14, 15}},
    },
    {/* 4-byte elements */
     {{0, 1, 2, 3, Z, Z, Z, Z, Z, Z, Z, Z, 4, 5, 6, 7},
      {Z, Z, Z, Z, 0, 1, 2, 3, Z, Z, Z, Z, Z, Z, Z, Z},
      {Z, Z, Z, Z, Z, Z, Z, Z, 0, 1, 2, 3, Z, Z, Z, Z}},
     {{Z, Z, Z, Z, Z, Z, Z, Z, 8, 9, 10, 11, Z, Z, Z, Z},
      {4, 5, 6, 7, Z, Z, Z, Z, Z, Z, Z, Z, 8, 9, 10, 11},
      {Z, Z, Z, Z, 4, 5, 6, 7, Z, Z, Z, Z, Z, Z, Z, Z}},
     {{Z, Z, Z, Z, 12, 13, 14, 15, Z, Z, Z, Z, Z, Z, Z, Z},
      {Z, Z, Z, Z, Z, Z, Z, Z, 12, 13, 14, 15, Z, Z, Z, Z},
      {8, 9, 10, 11, Z, Z, Z, Z, Z, Z, Z, Z, 12, 13, 14, 15}},
    },
};
#undef Z

#define RLE_TARGET_SSSE3 __attribute__((target("ssse3")))

static inline __m128i rle_load(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

/* Interleave blocks of 16 pixels of three samples of e bytes (N = 3 e); P[q]
 * holds byte q of every pixel. Returns the pixels done (a multiple of 16). */
RLE_TARGET_SSSE3 static size_t rle_interleave3_ssse3(uint8_t *o, const uint8_t *const *P,
                                                      size_t n, unsigned e) {
    const unsigned k = e == 1 ? 0 : e == 2 ? 1 : 2;
    __m128i m[3][3], v[3][4];
    size_t i;
    unsigned j, s, g;
    for (j = 0; j < 3; j++)
        for (s = 0; s < 3; s++) m[j][s] = rle_load(RLE_SHUF3[k][j][s]);
    for (i = 0; i + 16 <= n; i += 16) {
        /* v[s][g]: pixels 16 / e * g onwards of sample s as whole e-byte
         * little-endian elements, built from its byte planes by unpacking. */
        for (s = 0; s < 3; s++) {
            const uint8_t *const *B = P + s * e;
            if (e == 1) {
                v[s][0] = rle_load(B[0] + i);
            } else if (e == 2) {
                __m128i lo = rle_load(B[0] + i), hi = rle_load(B[1] + i);
                v[s][0] = _mm_unpacklo_epi8(lo, hi);
                v[s][1] = _mm_unpackhi_epi8(lo, hi);
            } else {
                __m128i b0 = rle_load(B[0] + i), b1 = rle_load(B[1] + i);
                __m128i b2 = rle_load(B[2] + i), b3 = rle_load(B[3] + i);
                __m128i t0 = _mm_unpacklo_epi8(b0, b1), t1 = _mm_unpackhi_epi8(b0, b1);
                __m128i t2 = _mm_unpacklo_epi8(b2, b3), t3 = _mm_unpackhi_epi8(b2, b3);
                v[s][0] = _mm_unpacklo_epi16(t0, t2);
                v[s][1] = _mm_unpackhi_epi16(t0, t2);
                v[s][2] = _mm_unpacklo_epi16(t1, t3);
                v[s][3] = _mm_unpackhi_epi16(t1, t3);
            }
        }
        for (g = 0; g < e; g++) {
            uint8_t *d = o + i * 3 * e + 48 * g;
            for (j = 0; j < 3; j++) {
                __m128i r = _mm_or_si128(
                    _mm_or_si128(_mm_shuffle_epi8(v[0][g], m[j][0]),
                                 _mm_shuffle_epi8(v[1][g], m[j][1])),
                    _mm_shuffle_epi8(v[2][g], m[j][2]));
                _mm_storeu_si128((__m128i *)(d + 16 * j), r);
            }
        }
    }
    return i;
}

static int rle_have_ssse3(void) {
#if defined(__SSSE3__)
    return 1;
#else
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3");
#endif
}
#endif

/* Interleave one chunk; `shuffle3` says the three-sample shuffles may be used. */
static void rle_interleave(uint8_t *o, const uint8_t *const *P, size_t n, unsigned N,
                           int shuffle3) {
    size_t i = 0;
#ifdef RLE_X86_SHUFFLE
    if (shuffle3 && (N == 3 || N == 6 || N == 12))
        i = rle_interleave3_ssse3(o, P, n, N / 3);
#endif
    if (i < n) {
        const uint8_t *Q[DF_RLE_MAX_SEGMENTS];
        unsigned q;
        for (q = 0; q < N; q++) Q[q] = P[q] + i;
        rle_interleave_scalar(o + i * N, Q, n - i, N);
    }
}

/* After the last chunk: what the segment holds beyond its byte plane. */
static df_status seg_finish(const rle_seg *s, size_t plane,
                            const rle_ctx *c, unsigned k) {
    const uint8_t *p = s->p, *q;
    size_t rest = (size_t)(s->end - p);
    if (!c->strict)
        return DF_OK;
    if (s->pending)
        return df_fail(c->err, DF_E_DECODE, (uint64_t)(p - c->src), DF_NO_TAG,
                       "segment %u: last run ends %zu bytes past the %zu-byte byte plane",
                       k + 1, s->pending, plane);
    /* One trailing byte is padding: of an odd segment to even length (PS3.5
     * G.5) or, after the last segment, of the fragment (PS3.5 A.4). */
    if (rest <= 1)
        return DF_OK;
    for (q = p; q < s->end; q++)
        if (*q != 0x80)
            return df_fail(c->err, DF_E_DECODE, (uint64_t)(p - c->src), DF_NO_TAG,
                           "segment %u: %zu bytes left after its %zu-byte byte plane", k + 1,
                           rest, plane);
    return DF_OK;
}

static df_status seg_short(const rle_ctx *c, const rle_seg *s, unsigned k, size_t got,
                           size_t plane) {
    return df_fail(c->err, DF_E_DECODE, (uint64_t)(s->p - c->src), DF_NO_TAG,
                   "segment %u ends after %zu of the %zu bytes of its byte plane", k + 1, got,
                   plane);
}

df_status df_rle_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_rle_opts *opts, df_error *err) {
    rle_geom g = {0, 0, 0};
    rle_ctx c;
    rle_seg seg[DF_RLE_MAX_SEGMENTS];
    uint32_t off[DF_RLE_MAX_SEGMENTS];
    size_t need;
    unsigned k, count;
    df_status st;

    df_error_clear(err);
    *n_out = 0;
    if ((st = rle_geometry(opts, &g, err)) != DF_OK)
        return st;
    need = g.pixels * g.nseg;
    if (dst_len < need) {
        *n_out = need;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "RLE frame needs %zu bytes, output has %zu", need, dst_len);
    }

    /* PS3.5 G.5: the RLE Header. */
    if (src == NULL || src_len < DF_RLE_HEADER_LEN)
        return df_fail(err, DF_E_DECODE, src_len, DF_NO_TAG,
                       "frame of %zu bytes is shorter than the 64-byte RLE header", src_len);
    count = df_load_u32le(src);
    if (count == 0 || count > DF_RLE_MAX_SEGMENTS)
        return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                       "RLE header announces %u segments (1 to 15 allowed)", count);
    if (count != g.nseg)
        return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                       "RLE header announces %u segments; %u samples of %u bits need %u",
                       count, (unsigned)opts->samples_per_pixel,
                       (unsigned)opts->bits_allocated, g.nseg);
    for (k = 0; k < count; k++) {
        uint32_t o = df_load_u32le(src + 4 + 4 * k);
        uint64_t where = 4 + 4 * (uint64_t)k;
        if (k == 0 && (o < DF_RLE_HEADER_LEN || (opts->strict && o != DF_RLE_HEADER_LEN)))
            return df_fail(err, DF_E_DECODE, where, DF_NO_TAG,
                           "segment 1 starts at offset %u, not after the 64-byte header",
                           (unsigned)o);
        if (k > 0 && o <= off[k - 1])
            return df_fail(err, DF_E_DECODE, where, DF_NO_TAG,
                           "segment %u offset %u does not follow segment %u offset %u", k + 1,
                           (unsigned)o, k, (unsigned)off[k - 1]);
        if ((uint64_t)o >= src_len)
            return df_fail(err, DF_E_DECODE, where, DF_NO_TAG,
                           "segment %u offset %u is past the end of the %zu-byte frame", k + 1,
                           (unsigned)o, src_len);
        off[k] = o;
    }
    /* PS3.5 G.5: unused segment offsets are zero. */
    for (k = count; opts->strict && k < DF_RLE_MAX_SEGMENTS; k++) {
        uint32_t o = df_load_u32le(src + 4 + 4 * k);
        if (o != 0)
            return df_fail(err, DF_E_DECODE, 4 + 4 * (uint64_t)k, DF_NO_TAG,
                           "unused RLE header offset %u is %u, not 0", k + 1, (unsigned)o);
    }

    c.src = src;
    c.src_end = src + src_len;
    c.strict = opts->strict;
    c.err = err;
    for (k = 0; k < count; k++) {
        seg[k].p = src + off[k];
        seg[k].end = k + 1 < count ? src + off[k + 1] : c.src_end;
        seg[k].lit = NULL;
        seg[k].pending = 0;
        seg[k].value = 0;
    }

    if (count == 1) {
        size_t got = seg_fill(&seg[0], dst, g.pixels, g.pixels, &c, 0);
        if (got == (size_t)-1)
            return err->status;
        if (got < g.pixels)
            return seg_short(&c, &seg[0], 0, got, g.pixels);
    } else {
        uint8_t scratch[RLE_SCRATCH];
        const uint8_t *planes[DF_RLE_MAX_SEGMENTS];
        /* Each plane gets a 64-byte aligned slot with RLE_FAST_ROOM of slack. */
        size_t slot = (RLE_SCRATCH / count) & ~(size_t)63;
        size_t chunk = slot - RLE_FAST_ROOM, base, n;
#ifdef RLE_X86_SHUFFLE
        int shuffle3 = count % 3 == 0 && rle_have_ssse3();
#else
        int shuffle3 = 0;
#endif
        for (k = 0; k < count; k++) {
            /* Segment k is byte (bps - 1 - k % bps) of sample k / bps. */
            unsigned pos = (k / g.bps) * g.bps + (g.bps - 1 - k % g.bps);
            planes[pos] = scratch + (size_t)k * slot;
        }
        for (base = 0; base < g.pixels; base += n) {
            n = g.pixels - base < chunk ? g.pixels - base : chunk;
            for (k = 0; k < count; k++) {
                size_t got = seg_fill(&seg[k], scratch + (size_t)k * slot, n, slot, &c, k);
                if (got == (size_t)-1)
                    return err->status;
                if (got < n)
                    return seg_short(&c, &seg[k], k, base + got, g.pixels);
            }
            rle_interleave(dst + base * count, planes, n, count, shuffle3);
        }
    }
    for (k = 0; k < count; k++)
        if ((st = seg_finish(&seg[k], g.pixels, &c, k)) != DF_OK)
            return st;
    *n_out = need;
    return DF_OK;
}

/* ------------------------------------------------------------------ encoding */

/* Worst case of one row of n bytes: a literal header per 128 bytes plus one
 * for a literal left over after a replicate run (see encode_row). */
static size_t row_bound(size_t n) { return n + n / 128 + 2; }

size_t df_rle_encode_bound(const df_rle_opts *opts) {
    rle_geom g = {0, 0, 0};
    uint64_t cols, per_seg, total;
    if (rle_geometry(opts, &g, NULL) != DF_OK)
        return 0;
    /* rle_geometry keeps rows * columns below 2^64 / 30, so these 64-bit
     * sums cannot wrap; the total may still exceed a 32-bit size_t. */
    cols = opts->columns;
    per_seg = (uint64_t)opts->rows * (cols + cols / 128 + 2) + 1;
    total = DF_RLE_HEADER_LEN + g.nseg * per_seg;
    if (total > SIZE_MAX)
        return 0;
    return (size_t)total;
}

/* Encode one row of byte plane samples s[0], s[stride], ... (PS3.5 G.3.1:
 * rows are encoded separately). Runs of three or more equal bytes, or of two
 * with no literal pending, become replicate runs; everything else is gathered
 * into literal runs of at most 128 bytes, written in place behind a header
 * byte that is filled in when the run closes. Returns the bytes written. */
static size_t encode_row(const uint8_t *s, size_t n, size_t stride, uint8_t *out) {
    uint8_t *o = out, *lit = NULL; /* lit: header byte of the open literal run */
    size_t i = 0, litn = 0;
    while (i < n) {
        uint8_t v = s[i * stride];
        size_t j = i + 1, lim = n - i > 128 ? i + 128 : n;
        while (j < lim && s[j * stride] == v) j++;
        if (j - i >= 3 || (j - i == 2 && litn == 0)) {
            if (litn) {
                *lit = (uint8_t)(litn - 1);
                litn = 0;
            }
            *o++ = (uint8_t)(257 - (j - i)); /* -(run - 1) as a two's complement byte */
            *o++ = v;
            i = j;
            continue;
        }
        for (; i < j; i++) {
            if (litn == 0)
                lit = o++;
            *o++ = s[i * stride];
            if (++litn == 128) {
                *lit = 127;
                litn = 0;
            }
        }
    }
    if (litn)
        *lit = (uint8_t)(litn - 1);
    return (size_t)(o - out);
}

df_status df_rle_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_rle_opts *opts, df_error *err) {
    rle_geom g = {0, 0, 0};
    size_t need, bound, pos, rowb, rowlen;
    unsigned k;
    df_status st;

    df_error_clear(err);
    *n_out = 0;
    if ((st = rle_geometry(opts, &g, err)) != DF_OK)
        return st;
    need = g.pixels * g.nseg;
    if (src == NULL || src_len < need)
        return df_fail(err, DF_E_INVALID_ARG, src_len, DF_NO_TAG,
                       "frame needs %zu bytes, source has %zu", need, src_len);
    bound = df_rle_encode_bound(opts);
    if (dst == NULL || dst_len < bound) {
        *n_out = bound;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "RLE encoding may need %zu bytes, output has %zu", bound, dst_len);
    }
    rowlen = (size_t)opts->columns * g.nseg; /* source bytes per row */
    rowb = row_bound(opts->columns);
    memset(dst, 0, DF_RLE_HEADER_LEN); /* unused offsets are zero (PS3.5 G.5) */
    dst[0] = (uint8_t)g.nseg;
    pos = DF_RLE_HEADER_LEN;
    for (k = 0; k < g.nseg; k++) {
        /* Segment k is byte (bps - 1 - k % bps) of sample k / bps (PS3.5 G.2). */
        size_t first = (k / g.bps) * g.bps + (g.bps - 1 - k % g.bps), r;
        if ((uint64_t)pos > UINT32_MAX)
            return df_fail(err, DF_E_LIMIT, 0, DF_NO_TAG,
                           "segment %u would start at %zu, past the 32-bit RLE offsets", k + 1,
                           pos);
        dst[4 + 4 * k] = (uint8_t)pos;
        dst[5 + 4 * k] = (uint8_t)(pos >> 8);
        dst[6 + 4 * k] = (uint8_t)(pos >> 16);
        dst[7 + 4 * k] = (uint8_t)(pos >> 24);
        for (r = 0; r < opts->rows; r++) {
            if (dst_len - pos < rowb) {
                *n_out = bound;
                return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                               "RLE encoding outgrew %zu bytes", dst_len);
            }
            pos += encode_row(src + r * rowlen + first, opts->columns, g.nseg, dst + pos);
        }
        /* PS3.5 G.5: each segment has an even length, padded with a zero. */
        if (pos & 1u) {
            if (pos >= dst_len)
                return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                               "RLE encoding outgrew %zu bytes", dst_len);
            dst[pos++] = 0;
        }
    }
    *n_out = pos;
    return DF_OK;
}
