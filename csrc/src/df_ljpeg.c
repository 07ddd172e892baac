/* Lossless JPEG decoder: ITU-T T.81 process 14 (Annex H, Huffman entropy coding).
 *
 * All state lives in one stack object of about 142 KiB (four derived Huffman tables,
 * 8 KiB of sample differences, the frame); the image goes straight into the caller's
 * buffer, which is also the previous-row context of the predictors.
 *
 * Huffman decoding (F.2.2.3, H.2.2) looks the next FAST_BITS bits up in a table that
 * gives up to three whole differences, codes and extra bits together. The 64-bit bit
 * buffer takes eight bytes at a time while no 0xFF is in sight (F.1.2.3 stuffing is
 * all there is to undo), with no branch on how many bits were used. One component
 * with predictor 1 (DICOM's SV1) is decoded in one step: the table holds running
 * sums, so adding Ra gives up to three samples at once. Other scans go in two steps
 * over batches of rows: differences into the buffer, then rows reconstructed with
 * the predictor (H.1.2.1) in loops specialised by sample width and predictor.
 */
#include "dicomfast/df_ljpeg.h"

#if defined(__GNUC__) || defined(__clang__)
#define LJ_LIKELY(x) __builtin_expect(!!(x), 1)
#define LJ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LJ_INLINE static inline __attribute__((always_inline))
#define LJ_NOINLINE static __attribute__((noinline))
#else
#define LJ_LIKELY(x) (x)
#define LJ_UNLIKELY(x) (x)
#define LJ_INLINE static inline
#define LJ_NOINLINE static
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LJ_BIG_ENDIAN 1
#else
#define LJ_BIG_ENDIAN 0
#endif

#define FAIL(status, at, ...) df_fail(D->err, status, at, DF_NO_TAG, __VA_ARGS__)
#define FAST_BITS 12
#define FAST_SIZE (1u << FAST_BITS)
#define DBUF 4096 /* sample differences decoded per batch */
_Static_assert(DBUF >= FAST_SIZE, "build_table borrows the difference buffer");

/* Fast-table entry: bits 0-15 a header, then up to three differences modulo 2^16
 * (32768 is stored as -32768). Header: bits 0-5 the bits all of them take (so a shift
 * by the entry needs no mask), bits 6-7 their count, bits 8-12 the bits of the first.
 * Count 0 with bits 0-5 set: a code of that length whose SSSS (bits 8-12) extra bits
 * reach past the index. Entry 0: a longer code, no code, or a symbol above 16. */
#define H_BITS(h) ((h)&63u)
#define H_COUNT(h) (((h) >> 6) & 3u)
#define H_FIRST(h) (((h) >> 8) & 31u)
enum {
    RAW16 = 1, /* 16-bit lanes, each difference on its own */
    CUM16 = 2, /* 16-bit lanes of running sums: add Ra and they are the samples */
    CUM8 = 3   /* the same in 8-bit lanes, for samples of 8 bits or fewer */
};

enum { M_SOF3 = 0xC3, M_DHT = 0xC4, M_DAC = 0xCC, M_SOI = 0xD8, M_EOI = 0xD9, M_SOS = 0xDA,
       M_DNL = 0xDC, M_DRI = 0xDD, M_DHP = 0xDE, M_EXP = 0xDF, M_RST0 = 0xD0, M_TEM = 0x01,
       M_SOF55 = 0xF7 };

typedef struct { /* a DHT table as transmitted (B.2.4.2) */
    uint8_t bits[17];
    uint8_t vals[256];
    uint16_t nvals;
} raw_table;

typedef struct { /* derived: the lookup table and F.2.2.3's maxcode/valptr */
    uint64_t fast[FAST_SIZE];
    uint64_t lane0; /* mask of the first difference */
    int32_t maxcode[18];
    int32_t valoff[18];
    uint8_t vals[256];
    uint16_t nvals;
    uint8_t minlen;
} huff_table;

typedef struct {
    uint8_t id, h, v, scanned, pt;
    uint32_t rows, cols; /* yi, xi (A.1.1) */
    size_t offset;       /* byte offset of the first sample in dst */
    size_t ss, rs;       /* samples between horizontal / vertical neighbours */
} comp_t;

typedef struct {
    unsigned ns, psv, pt, same_table;
    unsigned ci[DF_LJPEG_MAX_COMPONENTS], td[DF_LJPEG_MAX_COMPONENTS];
} scan_t;

typedef struct {
    const uint8_t *src;
    size_t len, pos;
    df_error *err;
    uint8_t *dst;
    int strict, wrap16, planar_opt, have_sof, wide;
    unsigned P, X, Y, nf, hmax, vmax;
    uint32_t ri;
    size_t sof_offset;
    uint64_t B;  /* bit buffer, next bit at the top */
    int C;       /* bits of B that count */
    int fake;    /* zero bits appended past a marker or the end of src */
    int stopped; /* 1: at a marker, 2: at the end of src */
    uint8_t defined[4], dirty[4], flavour[4];
    comp_t comp[DF_LJPEG_MAX_COMPONENTS];
    /* not cleared by dec_init: */
    raw_table raw[4];
    huff_table tab[4];
    int16_t diff[DBUF + 4];
} dec_t;

/* ------------------------------------------------------------------ tables */

/* F.12: extra bits with the top bit clear stand for a negative difference. */
LJ_INLINE int extend(uint32_t v, unsigned s) {
    return v < (1u << (s - 1)) ? (int)v - (int)(1u << s) + 1 : (int)v;
}

/* C.2 generates the codes; over-subscribed tables are refused. An all-ones code,
 * which K.2 keeps encoders from producing, is accepted, as libjpeg and DCMTK do.
 * The lookup table is filled in two passes: first code and symbol per index, then
 * as many whole differences as the index bits hold. */
static df_status build_table(dec_t *D, unsigned slot, int flavour) {
    const raw_table *r = &D->raw[slot];
    huff_table *h = &D->tab[slot];
    uint16_t *first = (uint16_t *)(void *)D->diff; /* FAST_SIZE scratch entries */
    uint32_t code = 0, j;
    unsigned l, k = 0, i, lane = flavour == CUM8 ? 8 : 16;
    memset(first, 0, FAST_SIZE * sizeof *first);
    memcpy(h->vals, r->vals, sizeof h->vals);
    h->nvals = r->nvals;
    h->minlen = 0;
    for (l = 1; l <= 16; l++) {
        unsigned n = r->bits[l];
        h->valoff[l] = (int32_t)k - (int32_t)code;
        h->maxcode[l] = n ? (int32_t)(code + n - 1) : -1;
        if (n && !h->minlen) h->minlen = (uint8_t)l;
        for (i = 0; i < n; i++, k++, code++) {
            if (code >= (1u << l))
                return FAIL(DF_E_MALFORMED, D->pos,
                            "Huffman table %u has more codes of length %u than fit", slot, l);
            if (l <= FAST_BITS && r->vals[k] <= 16)
                for (j = 0; j < (1u << (FAST_BITS - l)); j++)
                    first[(code << (FAST_BITS - l)) + j] = (uint16_t)(l | (r->vals[k] << 8));
        }
        code <<= 1;
    }
    if (!h->minlen) return FAIL(DF_E_MALFORMED, D->pos, "Huffman table %u is empty", slot);
    h->lane0 = flavour == CUM8 ? 0xFF : 0xFFFF;
    for (j = 0; j < FAST_SIZE; j++) {
        unsigned used = 0, cnt = 0, n1 = 0;
        uint64_t e = 0;
        int sum = 0;
        while (cnt < 3 && used < FAST_BITS) {
            unsigned f = first[(j << used) & (FAST_SIZE - 1)], cl = f & 31, s = f >> 8;
            unsigned extra = s == 16 ? 0 : s;
            int d;
            if (!cl || used + cl + extra > FAST_BITS) {
                if (!cnt && cl) e = cl | (s << 8); /* the code fits, its extra bits not */
                break;
            }
            d = s == 0    ? 0
                : s == 16 ? 32768
                          : extend(((j << used) >> (FAST_BITS - cl - s)) & ((1u << s) - 1), s);
            sum += d;
            e |= (uint64_t)((flavour == RAW16 ? d : sum) & (int)h->lane0) << (16 + lane * cnt);
            used += cl + extra;
            if (!cnt++) n1 = used;
        }
        h->fast[j] = cnt ? e | used | (cnt << 6) | (n1 << 8) : e;
    }
    D->flavour[slot] = (uint8_t)flavour;
    D->dirty[slot] = 0;
    return DF_OK;
}

/* Codes longer than FAST_BITS or with an invalid symbol: Figure F.16 on the next 16
 * bits, then F.2.2.1. Returns bits used | (difference + 32768) << 8, or 0 when the
 * bits are no code of the table or the symbol is above 16. */
LJ_NOINLINE uint32_t huff_slow(const huff_table *h, uint64_t B) {
    uint32_t c16 = (uint32_t)(B >> 48);
    int32_t code = 0, idx;
    unsigned l, s;
    for (l = h->minlen; l <= 16; l++)
        if ((code = (int32_t)(c16 >> (16 - l))) <= h->maxcode[l]) break;
    if (l > 16) return 0;
    idx = h->valoff[l] + code;
    if (idx < 0 || idx >= (int32_t)h->nvals || (s = h->vals[idx]) > 16) return 0;
    if (s == 0 || s == 16) return l | ((s ? 65536u : 32768u) << 8);
    return (l + s) | ((uint32_t)(extend((uint32_t)((B << l) >> (64 - s)), s) + 32768) << 8);
}

/* ------------------------------------------------------------------ bit reader */

#define HAS_FF(w) ((~(w)-0x0101010101010101ull) & (w)&0x8080808080808080ull)

LJ_INLINE uint64_t load_be64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return LJ_BIG_ENDIAN ? w : __builtin_bswap64(w);
}

/* The byte-wise refill (F.1.2.3, B.1.1.2), for windows with 0xFF: 0xFF00 is one 0xFF
 * byte, fill bytes are skipped, and in front of a marker it stops and appends zero
 * bits; whether any of those were used is checked after each batch of rows
 * (C < fake). Leaves 56 to 63 bits in B. */
LJ_NOINLINE void refill_bytes(dec_t *D) {
    const uint8_t *src = D->src;
    size_t len = D->len, pos = D->pos;
    while (D->C < 56) {
        unsigned b;
        if (D->stopped || pos >= len) {
            D->stopped += !D->stopped * 2;
            D->fake += 8;
        } else if ((b = src[pos]) == 0xFF) {
            size_t q = pos + 1;
            while (q < len && src[q] == 0xFF) q++;
            if (q >= len || src[q] != 0x00) {
                D->stopped = q >= len ? 2 : 1;
                continue;
            }
            pos = q + 1;
            D->B |= (uint64_t)b << (56 - D->C);
        } else {
            pos++;
            D->B |= (uint64_t)b << (56 - D->C);
        }
        D->C += 8;
    }
    D->pos = pos;
}

/* Local copies of the bit reader keep it in registers in the hot loops. */
#define BR_LOAD()                                                                        \
    const uint8_t *const bsrc_ = D->src;                                                 \
    const size_t blen_ = D->len;                                                         \
    uint64_t B = D->B;                                                                   \
    int C = D->C;                                                                        \
    size_t pos = D->pos
#define BR_SAVE() (D->B = B, D->C = C, D->pos = pos)
#define BR_RELOAD() (B = D->B, C = D->C, pos = D->pos)

/* Before every lookup, with no branch on the bits the last one used: B gets the next
 * eight bytes and C says how many of their bits count. The rest of the byte taken in
 * part stays below C and is OR-ed in again, identically, next time; so a window with
 * 0xFF goes the byte-wise way once fewer than 43 bits are left (43 bits leave the 12
 * index bits of the next lookup known even after the longest difference, 31 bits). */
#define REFILL()                                                                         \
    do {                                                                                 \
        uint64_t w_ = ~0ull;                                                             \
        if (LJ_LIKELY(blen_ - pos >= 8)) w_ = load_be64(bsrc_ + pos);                    \
        if (LJ_LIKELY(!HAS_FF(w_))) {                                                    \
            B |= w_ >> C;                                                                \
            pos += (size_t)((63 - C) >> 3);                                              \
            C |= 56;                                                                     \
        } else if (C < 43) {                                                             \
            BR_SAVE();                                                                   \
            refill_bytes(D);                                                             \
            BR_RELOAD();                                                                 \
        }                                                                                \
    } while (0)

/* The difference for an entry e_ (header h_) holding none whole: its code and SSSS
 * from the entry and the extra bits after them, or else F.16 in huff_slow. */
#define DECODE_REST(HT, e_, h_, d)                                                       \
    do {                                                                                 \
        if (h_) {                                                                        \
            unsigned s_ = H_FIRST(h_), n_ = H_BITS(h_) + s_;                             \
            int v_ = (int)((B << H_BITS(h_)) >> (64 - s_));                              \
            B <<= n_;                                                                    \
            C -= (int)n_;                                                                \
            d = v_ - ((v_ >> (s_ - 1)) ? 0 : (1 << s_) - 1);                             \
        } else {                                                                         \
            uint32_t r_ = huff_slow((HT), B);                                            \
            if (LJ_UNLIKELY(!r_)) goto bad_code;                                         \
            B <<= (r_ & 63);                                                             \
            C -= (int)(r_ & 63);                                                         \
            d = (int16_t)(uint16_t)((r_ >> 8) - 32768);                                  \
        }                                                                                \
    } while (0)

/* One difference (H.2.2, F.2.2.1) from table HT into d. */
#define DECODE_ONE(HT, d)                                                                \
    do {                                                                                 \
        uint64_t e1_;                                                                    \
        unsigned h1_;                                                                    \
        REFILL();                                                                        \
        e1_ = (HT)->fast[B >> (64 - FAST_BITS)];                                         \
        h1_ = (unsigned)e1_ & 0xFFFF;                                                    \
        if (LJ_LIKELY(H_COUNT(h1_))) {                                                   \
            B <<= H_FIRST(h1_);                                                          \
            C -= (int)H_FIRST(h1_);                                                      \
            d = (int16_t)(uint16_t)((e1_ >> 16) & (HT)->lane0);                          \
        } else {                                                                         \
            DECODE_REST(HT, e1_, h1_, d);                                                \
        }                                                                                \
    } while (0)

static df_status code_error(dec_t *D, int C) {
    size_t back = (size_t)(C > D->fake ? (C - D->fake + 7) / 8 : 0), at = D->pos - back;
    return FAIL(DF_E_DECODE, at, "invalid Huffman code near offset %zu", at);
}

/* ------------------------------------------------------------------ segments */

static df_status stream_error(dec_t *D, unsigned row, unsigned rows) {
    unsigned next = D->pos + 1 < D->len ? D->src[D->pos + 1] : 0;
    if (D->stopped == 2 || next == M_EOI)
        return FAIL(DF_E_TRUNCATED, D->pos, "entropy-coded data ends at offset %zu, row %u of %u",
                    D->pos, row, rows);
    return FAIL(DF_E_DECODE, D->pos, "marker 0xFF%02X at offset %zu interrupts row %u of %u",
                next, D->pos, row, rows);
}

/* The next marker at or after pos: 0xFF, fill bytes, a code other than 0. */
static size_t find_marker(const uint8_t *src, size_t len, size_t pos) {
    for (; pos + 1 < len; pos++) {
        size_t q = pos + 1;
        if (src[pos] != 0xFF) continue;
        while (q < len && src[q] == 0xFF) q++;
        if (q < len && src[q] != 0x00) return pos;
        pos = q - 1;
    }
    return len;
}

/* Leave an entropy-coded segment: drop its padding bits (F.1.2.3) and stand on the
 * marker after it; a lenient decoder skips any bytes left over. */
static df_status end_segment(dec_t *D) {
    size_t m = find_marker(D->src, D->len, D->pos);
    if (D->strict && (D->C - D->fake >= 8 || m != D->pos))
        return FAIL(DF_E_DECODE, D->pos, "entropy-coded data goes on after the last sample "
                    "(offset %zu)", D->pos);
    D->pos = m;
    D->B = 0;
    D->C = D->fake = D->stopped = 0;
    return DF_OK;
}

/* E.2.4 / H.2.1: after Ri MCUs comes RSTn, and prediction starts afresh. */
static df_status restart(dec_t *D, unsigned *next_rst) {
    df_status st = end_segment(D);
    size_t p = D->pos, q = p + 1;
    if (st) return st;
    while (q < D->len && D->src[q] == 0xFF) q++;
    if (q >= D->len || (D->src[q] & 0xF8) != M_RST0)
        return FAIL(q >= D->len || D->src[q] == M_EOI ? DF_E_TRUNCATED : DF_E_DECODE, p,
                    "expected RST%u at offset %zu, found 0xFF%02X", *next_rst, p,
                    q < D->len ? D->src[q] : 0);
    if (D->strict && (unsigned)(D->src[q] & 7) != *next_rst)
        return FAIL(DF_E_DECODE, p, "RST%u at offset %zu, expected RST%u", D->src[q] & 7u, p,
                    *next_rst);
    *next_rst = (*next_rst + 1) & 7;
    D->pos = q + 1;
    return DF_OK;
}

#define RESTART_HERE()                                                                   \
    do {                                                                                 \
        df_status st_;                                                                   \
        BR_SAVE();                                                                       \
        if ((st_ = restart(D, &next_rst)) != DF_OK) return st_;                          \
        BR_RELOAD();                                                                     \
    } while (0)

/* ------------------------------------------------------------------ samples */

/* Samples are uint8, or native uint16 (possibly unaligned) when wide. */
LJ_INLINE int get_s(const uint8_t *p, size_t i, int wide) {
    uint16_t v = p[i];
    if (wide) memcpy(&v, p + 2 * i, 2);
    return v;
}

LJ_INLINE void put_s(uint8_t *p, size_t i, int v, int wide) {
    uint16_t w = (uint16_t)v;
    if (wide) memcpy(p + 2 * i, &w, 2);
    if (!wide) p[i] = (uint8_t)v;
}

/* Table H.1. With wrap16 the neighbours are read as int16, reproducing encoders
 * whose 16-bit arithmetic overflowed; predictors 1 to 4 are unaffected modulo 2^16. */
LJ_INLINE int predict(unsigned psv, int a, int b, int c, int wrap16) {
    if (wrap16) a = (a ^ 0x8000) - 0x8000, b = (b ^ 0x8000) - 0x8000, c = (c ^ 0x8000) - 0x8000;
    switch (psv) {
    case 1: return a;
    case 2: return b;
    case 3: return c;
    case 4: return a + b - c;
    case 5: return a + ((b - c) >> 1);
    case 6: return b + ((a - c) >> 1);
    default: return (a + b) >> 1;
    }
}

/* ------------------------------------------------------------------ scans */

/* One component, predictor 1, consecutive samples, restarts on row starts: in one
 * step. Table entries hold running sums of up to three differences, so adding Ra to
 * every lane at once (SWAR, carries kept inside each lane) gives the samples, which
 * one store writes (a fourth lane too, overwritten next). H.1.2.1: each row starts
 * from Rb, or from 2^(P-Pt-1) at the start of the scan or of a restart interval. */
LJ_INLINE df_status rows_fused(dec_t *D, const scan_t *S, uint32_t rows_per_ri,
                               const int wide) {
    const comp_t *cp = &D->comp[S->ci[0]];
    const huff_table *ht = &D->tab[S->td[0]];
    const int mask = wide ? 0xFFFF : 0xFF, initial = 1 << (D->P - S->pt - 1);
    const unsigned lane = wide ? 16 : 8;
    const uint64_t TOP = wide ? 0x8000800080008000ull : 0x80808080ull;
    const uint64_t ONES = wide ? 0x0001000100010001ull : 0x01010101ull;
    const size_t cols = cp->cols, bps = wide ? 2 : 1;
    uint32_t r, since = 0;
    unsigned next_rst = 0;
    int first = 1;
    BR_LOAD();
    for (r = 0; r < cp->rows; r++) {
        uint8_t *row = D->dst + cp->offset + bps * (size_t)r * cp->rs;
        size_t x = 1;
        unsigned idx;
        int v, d;
        if (rows_per_ri && since == rows_per_ri) {
            RESTART_HERE();
            first = 1;
            since = 0;
        }
        since++;
        DECODE_ONE(ht, d);
        put_s(row, 0, v = ((first ? initial : get_s(row - bps * cp->rs, 0, wide)) + d) & mask,
              wide);
        first = 0;
        REFILL();
        idx = (unsigned)(B >> (64 - FAST_BITS));
        while (cols - x >= 4) {
            uint64_t e = ht->fast[idx];
            unsigned h = (unsigned)e & 0xFFFF;
            if (LJ_LIKELY(H_COUNT(h))) {
                uint64_t lanes = e >> 16, vb = (uint64_t)v * ONES;
                uint64_t sum = ((lanes & ~TOP) + (vb & ~TOP)) ^ ((lanes ^ vb) & TOP);
                unsigned cnt = H_COUNT(h), j;
                B <<= H_BITS(h);
                C -= (int)H_BITS(h);
                if (LJ_BIG_ENDIAN)
                    for (j = 0; j < cnt; j++) put_s(row, x + j, (int)(sum >> (lane * j)), wide);
                else
                    memcpy(row + bps * x, &sum, wide ? 8 : 4);
                v = (v + (int)(lanes >> (lane * (cnt - 1)))) & mask;
                x += cnt;
            } else {
                DECODE_REST(ht, e, h, d);
                put_s(row, x++, v = (v + d) & mask, wide);
            }
            /* At least 12 bits are left, so the next index is known before the refill:
             * the chain from one lookup to the next is just load, shift, shift. */
            idx = (unsigned)(B >> (64 - FAST_BITS));
            REFILL();
        }
        for (; x < cols; x++) {
            DECODE_ONE(ht, d);
            put_s(row, x, v = (v + d) & mask, wide);
        }
        if (LJ_UNLIKELY(C < D->fake)) return BR_SAVE(), stream_error(D, r, cp->rows);
    }
    BR_SAVE();
    return DF_OK;
bad_code:
    return BR_SAVE(), code_error(D, C);
}

/* Step one of the other row-wise scans: n differences into D->diff. With one table
 * for all components, up to three per lookup (the 64-bit store also writes a spare
 * fourth slot); otherwise one per lookup, cycling over the tables of the scan. */
static df_status decode_diffs(dec_t *D, const scan_t *S, size_t n) {
    int16_t *out = D->diff;
    size_t i = 0;
    unsigned k = 0;
    int d;
    BR_LOAD();
    if (S->same_table) {
        const huff_table *ht = &D->tab[S->td[0]];
        unsigned idx;
        REFILL();
        idx = (unsigned)(B >> (64 - FAST_BITS));
        while (n - i >= 3) {
            uint64_t e = ht->fast[idx];
            unsigned h = (unsigned)e & 0xFFFF;
            if (LJ_LIKELY(H_COUNT(h))) {
                uint64_t lanes = e >> 16;
                B <<= H_BITS(h);
                C -= (int)H_BITS(h);
                if (LJ_BIG_ENDIAN)
                    for (k = 0; k < 3; k++) out[i + k] = (int16_t)(lanes >> (16 * k));
                else
                    memcpy(out + i, &lanes, 8);
                i += H_COUNT(h);
            } else {
                DECODE_REST(ht, e, h, d);
                out[i++] = (int16_t)d;
            }
            idx = (unsigned)(B >> (64 - FAST_BITS));
            REFILL();
        }
    }
    for (k = (unsigned)(i % S->ns); i < n; i++) {
        DECODE_ONE(&D->tab[S->td[k]], d);
        out[i] = (int16_t)d;
        if (++k == S->ns) k = 0;
    }
    BR_SAVE();
    return DF_OK;
bad_code:
    return BR_SAVE(), code_error(D, C);
}

/* Step two: samples x0..x1-1 of one component row from differences d[0], d[ds], ...
 * A first row (up == NULL) predicts from Ra after 2^(P-Pt-1); later rows start from
 * Rb (H.1.2.1). Reconstruction is modulo 2^16 (H.2.2), 2^8 for byte samples. */
LJ_INLINE void recon(uint8_t *row, const uint8_t *up, const int16_t *d, size_t ds, size_t x0,
                     size_t x1, size_t ss, int initial, const int wide, const unsigned psv,
                     const int wrap16) {
    const int mask = wide ? 0xFFFF : 0xFF;
    size_t x = x0;
    int v, c;
    if (x == 0) {
        put_s(row, 0, v = ((up ? get_s(up, 0, wide) : initial) + *d) & mask, wide);
        d += ds;
        x = 1;
    } else {
        v = get_s(row, (x - 1) * ss, wide);
    }
    if (!up || psv == 1) {
        for (; x < x1; x++, d += ds) put_s(row, x * ss, v = (v + *d) & mask, wide);
        return;
    }
    for (c = get_s(up, (x - 1) * ss, wide); x < x1; x++, d += ds) {
        int b = get_s(up, x * ss, wide);
        v = (predict(psv, v, b, c, wrap16) + *d) & mask;
        c = b;
        put_s(row, x * ss, v, wide);
    }
}

typedef void (*recon_fn)(uint8_t *, const uint8_t *, const int16_t *, size_t, size_t, size_t,
                         size_t, int);
#define RECON_FN(name, wide, psv, wrap16)                                                \
    static void name(uint8_t *row, const uint8_t *up, const int16_t *d, size_t ds,       \
                     size_t x0, size_t x1, size_t ss, int initial) {                     \
        recon(row, up, d, ds, x0, x1, ss, initial, wide, psv, wrap16);                  \
    }
RECON_FN(r8_1, 0, 1, 0) RECON_FN(r8_2, 0, 2, 0) RECON_FN(r8_3, 0, 3, 0) RECON_FN(r8_4, 0, 4, 0)
RECON_FN(r8_5, 0, 5, 0) RECON_FN(r8_6, 0, 6, 0) RECON_FN(r8_7, 0, 7, 0)
RECON_FN(r16_1, 1, 1, 0) RECON_FN(r16_2, 1, 2, 0) RECON_FN(r16_3, 1, 3, 0)
RECON_FN(r16_4, 1, 4, 0) RECON_FN(r16_5, 1, 5, 0) RECON_FN(r16_6, 1, 6, 0)
RECON_FN(r16_7, 1, 7, 0) RECON_FN(w16_5, 1, 5, 1) RECON_FN(w16_6, 1, 6, 1)
RECON_FN(w16_7, 1, 7, 1)
static const recon_fn recon_u8[8] = {NULL, r8_1, r8_2, r8_3, r8_4, r8_5, r8_6, r8_7};
static const recon_fn recon_u16[8] = {NULL, r16_1, r16_2, r16_3, r16_4, r16_5, r16_6, r16_7};
static const recon_fn recon_w16[8] = {NULL, r16_1, r16_2, r16_3, r16_4, w16_5, w16_6, w16_7};

/* Three components interleaved in dst as in the scan, predictor 1 or a first row:
 * the three chains of additions go side by side. */
LJ_INLINE void recon3(uint8_t *row, const uint8_t *up, const int16_t *d, size_t x0, size_t x1,
                      int initial, const int wide) {
    const int mask = wide ? 0xFFFF : 0xFF;
    size_t x = x0 ? x0 : 1;
    int a[3], k;
    for (k = 0; k < 3; k++)
        if (x0)
            a[k] = get_s(row, 3 * x0 - 3 + k, wide);
        else
            put_s(row, k, a[k] = ((up ? get_s(up, k, wide) : initial) + d[k]) & mask, wide);
    for (d += x0 ? 0 : 3; x < x1; x++, d += 3)
        for (k = 0; k < 3; k++) put_s(row, 3 * x + k, a[k] = (a[k] + d[k]) & mask, wide);
}

/* One component (A.2.2), or several sampled 1x1 and interleaved sample by sample
 * (A.2.3); restarts, if any, on row starts. Rows go in batches that fit DBUF
 * differences, or in pieces when one row does not. */
static df_status scan_rows(dec_t *D, const scan_t *S, uint32_t rows_per_ri) {
    const unsigned ns = S->ns;
    const comp_t *c0 = &D->comp[S->ci[0]];
    const size_t cols = c0->cols, row_len = cols * ns, bps = D->wide ? 2 : 1;
    const size_t piece = row_len <= DBUF ? cols : DBUF / ns;
    const int initial = 1 << (D->P - S->pt - 1);
    const recon_fn fn = (D->wide ? D->wrap16 ? recon_w16 : recon_u16 : recon_u8)[S->psv];
    uint32_t r = 0, seg_left = rows_per_ri ? rows_per_ri : c0->rows;
    unsigned next_rst = 0, k;
    int first = 1, rgb = ns == 3 && D->nf == 3 && c0->ss == 3;
    df_status st;
    for (k = 0; k < ns; k++) rgb &= S->ci[k] == k;
    while (r < c0->rows) {
        uint32_t nr = 1, i;
        size_t x0;
        if (!seg_left) {
            if ((st = restart(D, &next_rst)) != DF_OK) return st;
            seg_left = rows_per_ri;
            first = 1;
        }
        nr = row_len <= DBUF ? (uint32_t)(DBUF / row_len) : 1;
        nr = nr < seg_left ? nr : seg_left;
        nr = nr < c0->rows - r ? nr : c0->rows - r;
        for (x0 = 0; x0 < cols; x0 += piece) {
            size_t x1 = x0 + piece < cols ? x0 + piece : cols;
            if ((st = decode_diffs(D, S, (x1 - x0) * ns * nr)) != DF_OK) return st;
            for (i = 0; i < nr; i++) {
                uint8_t *row = D->dst + bps * (size_t)(r + i) * c0->rs;
                const uint8_t *up = first && !i ? NULL : row - bps * c0->rs;
                const int16_t *d = D->diff + (size_t)i * row_len;
                if (rgb && (S->psv == 1 || !up)) {
                    D->wide ? recon3(row, up, d, x0, x1, initial, 1)
                            : recon3(row, up, d, x0, x1, initial, 0);
                    continue;
                }
                for (k = 0; k < ns; k++) {
                    const comp_t *cp = &D->comp[S->ci[k]];
                    uint8_t *crow = D->dst + cp->offset + bps * (size_t)(r + i) * cp->rs;
                    fn(crow, up ? crow - bps * cp->rs : NULL, d + k, ns, x0, x1, cp->ss,
                       initial);
                }
            }
        }
        if (LJ_UNLIKELY(D->C < D->fake)) return stream_error(D, r, c0->rows);
        r += nr;
        seg_left -= nr;
        first = 0;
    }
    return DF_OK;
}

/* Any scan, MCU by MCU (A.2.3): sampling factors above 1, restarts anywhere. Samples
 * that only complete an MCU past a component's edge (A.2.4) are decoded and dropped;
 * they are never the neighbour of a kept sample. A restart in mid-row (outside H.1.1)
 * restarts prediction there and keeps Ra for the rest of that row. */
static df_status scan_mcus(dec_t *D, const scan_t *S, uint32_t mcux, uint32_t mcuy) {
    const int wide = D->wide, mask = wide ? 0xFFFF : 0xFF;
    const int initial = 1 << (D->P - S->pt - 1), wrap16 = D->wrap16 && wide;
    unsigned H[DF_LJPEG_MAX_COMPONENTS], V[DF_LJPEG_MAX_COMPONENTS], k, next_rst = 0;
    uint32_t flrow[DF_LJPEG_MAX_COMPONENTS], mx, my, mcu = 0;
    int reset[DF_LJPEG_MAX_COMPONENTS];
    BR_LOAD();
    for (k = 0; k < S->ns; k++) {
        H[k] = S->ns == 1 ? 1 : D->comp[S->ci[k]].h;
        V[k] = S->ns == 1 ? 1 : D->comp[S->ci[k]].v;
        reset[k] = 1, flrow[k] = 0;
    }
    for (my = 0; my < mcuy; my++) {
        for (mx = 0; mx < mcux; mx++, mcu++) {
            if (D->ri && mcu && mcu % D->ri == 0) {
                RESTART_HERE();
                for (k = 0; k < S->ns; k++) reset[k] = 1, flrow[k] = my * V[k];
            }
            for (k = 0; k < S->ns; k++) {
                const comp_t *cp = &D->comp[S->ci[k]];
                const huff_table *ht = &D->tab[S->td[k]];
                uint8_t *base = D->dst + cp->offset;
                unsigned h, v;
                for (v = 0; v < V[k]; v++) {
                    for (h = 0; h < H[k]; h++) {
                        uint32_t r = my * V[k] + v, c = mx * H[k] + h;
                        size_t at = (size_t)r * cp->rs + (size_t)c * cp->ss;
                        int d, p;
                        DECODE_ONE(ht, d);
                        if (r >= cp->rows || c >= cp->cols) continue;
                        if (reset[k])
                            p = initial, reset[k] = 0;
                        else if (c == 0)
                            p = r ? get_s(base, at - cp->rs, wide) : initial;
                        else if (r == flrow[k] || S->psv == 1)
                            p = get_s(base, at - cp->ss, wide);
                        else
                            p = predict(S->psv, get_s(base, at - cp->ss, wide),
                                        get_s(base, at - cp->rs, wide),
                                        get_s(base, at - cp->rs - cp->ss, wide), wrap16);
                        put_s(base, at, (p + d) & mask, wide);
                    }
                }
            }
        }
        if (LJ_UNLIKELY(C < D->fake)) return BR_SAVE(), stream_error(D, my, mcuy);
    }
    BR_SAVE();
    return DF_OK;
bad_code:
    return BR_SAVE(), code_error(D, C);
}

static df_status decode_scan(dec_t *D, const scan_t *S) {
    const comp_t *c0 = &D->comp[S->ci[0]];
    uint32_t mcux = c0->cols, mcuy = c0->rows;
    uint64_t need = 0;
    unsigned k;
    int rowwise = 1, flavour = RAW16;
    if (S->ns > 1) {
        mcux = (D->X + D->hmax - 1) / D->hmax;
        mcuy = (D->Y + D->vmax - 1) / D->vmax;
        for (k = 0; k < S->ns; k++)
            if (D->comp[S->ci[k]].h != 1 || D->comp[S->ci[k]].v != 1 || D->hmax != 1 ||
                D->vmax != 1)
                rowwise = 0;
    }
    if (D->ri && D->ri % mcux) {
        /* H.1.1 asks for whole MCU rows in each restart interval. */
        if (D->strict)
            return FAIL(DF_E_MALFORMED, D->pos, "restart interval %u is not a multiple of the "
                        "%u MCUs in a row (H.1.1)", D->ri, mcux);
        rowwise = 0;
    }
    if (rowwise && S->ns == 1 && S->psv == 1 && c0->ss == 1) flavour = D->wide ? CUM16 : CUM8;
    for (k = 0; k < S->ns; k++) {
        const comp_t *cp = &D->comp[S->ci[k]];
        df_status st;
        if ((D->dirty[S->td[k]] || D->flavour[S->td[k]] != flavour) &&
            (st = build_table(D, S->td[k], flavour)) != DF_OK)
            return st;
        need += (uint64_t)cp->rows * cp->cols * D->tab[S->td[k]].minlen;
    }
    /* Each sample takes at least the shortest code: absurd sizes fail here, before
     * anything is written. */
    if (need > (uint64_t)(D->len - D->pos) * 8)
        return FAIL(DF_E_TRUNCATED, D->len, "%zu bytes of entropy-coded data cannot hold %llu "
                    "bits of samples", D->len - D->pos, (unsigned long long)need);
    if (!rowwise) return scan_mcus(D, S, mcux, mcuy);
    if (flavour == CUM16) return rows_fused(D, S, D->ri / mcux, 1);
    if (flavour == CUM8) return rows_fused(D, S, D->ri / mcux, 0);
    return scan_rows(D, S, D->ri / mcux);
}

/* ------------------------------------------------------------------ markers */

static df_status parse_dht(dec_t *D, const uint8_t *p, unsigned L, size_t at) {
    unsigned i, n, l, th;
    for (i = 0, L -= 2; i < L; i += 17 + n) {
        if (L - i < 17) return FAIL(DF_E_MALFORMED, at, "DHT at offset %zu is cut short", at);
        for (n = 0, l = 1; l <= 16; l++) n += p[i + l];
        if ((p[i] >> 4) > 1 || (th = p[i] & 15) > 3 || n > 256 || L - i - 17 < n)
            return FAIL(DF_E_MALFORMED, at, "DHT at offset %zu: table %02X with %u codes", at,
                        p[i], n);
        if (p[i] >> 4) continue; /* lossless coding uses DC tables only (H.2.2) */
        for (l = 0; D->strict && l < n; l++)
            if (p[i + 17 + l] > 16)
                return FAIL(DF_E_MALFORMED, at, "DHT at offset %zu: difference category %u",
                            at, p[i + 17 + l]);
        D->raw[th].bits[0] = 0;
        memcpy(D->raw[th].bits + 1, p + i + 1, 16);
        memcpy(D->raw[th].vals, p + i + 17, n);
        D->raw[th].nvals = (uint16_t)n;
        D->defined[th] = D->dirty[th] = 1;
    }
    return DF_OK;
}

/* B.2.2 frame header, A.1.1 component sizes, and where each sample goes in dst. */
static df_status parse_sof3(dec_t *D, const uint8_t *p, unsigned L, size_t at) {
    unsigned k, j;
    uint64_t total = 0;
    size_t bps, off = 0;
    int planar = D->planar_opt;
    if (D->have_sof || L < 8) return FAIL(DF_E_MALFORMED, at, "bad or second SOF at %zu", at);
    D->P = p[0];
    D->Y = df_load_u16be(p + 1);
    D->X = df_load_u16be(p + 3);
    D->nf = p[5];
    if (D->Y == 0) return FAIL(DF_E_UNSUPPORTED, at, "SOF3 with 0 lines (DNL) is not supported");
    if (D->nf > DF_LJPEG_MAX_COMPONENTS)
        return FAIL(DF_E_UNSUPPORTED, at, "SOF3 with %u components (at most %d supported)",
                    D->nf, DF_LJPEG_MAX_COMPONENTS);
    if (D->P < 2 || D->P > 16 || D->X == 0 || D->nf == 0 || L != 8 + 3 * D->nf)
        return FAIL(DF_E_MALFORMED, at, "SOF3: precision %u, %u columns, %u components, "
                    "length %u", D->P, D->X, D->nf, L);
    for (k = 0; k < D->nf; k++) {
        comp_t *cp = &D->comp[k];
        cp->id = p[6 + 3 * k];
        cp->h = p[7 + 3 * k] >> 4;
        cp->v = p[7 + 3 * k] & 15;
        for (j = 0; j < k && D->comp[j].id != cp->id; j++) {}
        if (cp->h < 1 || cp->h > 4 || cp->v < 1 || cp->v > 4 || j < k)
            return FAIL(DF_E_MALFORMED, at, "SOF3 component %u sampled %ux%u%s", cp->id, cp->h,
                        cp->v, j < k ? ", a second time" : "");
        if (cp->h > D->hmax) D->hmax = cp->h;
        if (cp->v > D->vmax) D->vmax = cp->v;
    }
    D->wide = D->P > 8;
    bps = D->wide ? 2 : 1;
    for (k = 0; k < D->nf; k++) {
        comp_t *cp = &D->comp[k];
        cp->cols = (D->X * cp->h + D->hmax - 1) / D->hmax;
        cp->rows = (D->Y * cp->v + D->vmax - 1) / D->vmax;
        planar |= cp->cols != D->X || cp->rows != D->Y;
        total += (uint64_t)cp->cols * cp->rows * bps;
    }
    if (total > (uint64_t)SIZE_MAX)
        return FAIL(DF_E_LIMIT, at, "image of %llu bytes", (unsigned long long)total);
    for (k = 0; k < D->nf; k++) {
        comp_t *cp = &D->comp[k];
        cp->offset = planar ? off : k * bps;
        cp->ss = planar ? 1 : D->nf;
        cp->rs = planar ? cp->cols : (size_t)D->X * D->nf;
        off += (size_t)cp->cols * cp->rows * bps;
    }
    D->have_sof = 1;
    D->sof_offset = at;
    return DF_OK;
}

/* B.2.3 scan header. */
static df_status parse_sos(dec_t *D, const uint8_t *p, unsigned L, size_t at, scan_t *S) {
    unsigned k, j, units = 0, ns = L >= 3 ? p[0] : 0;
    if (ns < 1 || ns > D->nf || L != 6 + 2 * ns)
        return FAIL(DF_E_MALFORMED, at, "SOS at offset %zu: length %u, %u components", at, L, ns);
    for (S->ns = ns, k = 0; k < ns; k++) {
        for (j = 0; j < D->nf && D->comp[j].id != p[1 + 2 * k]; j++) {}
        if (j == D->nf || D->comp[j].scanned)
            return FAIL(DF_E_MALFORMED, at, "SOS at offset %zu: component %u %s", at,
                        p[1 + 2 * k], j == D->nf ? "is not in the frame" : "was decoded before");
        D->comp[j].scanned = 1;
        S->ci[k] = j;
        if ((S->td[k] = p[2 + 2 * k] >> 4) > 3 || !D->defined[S->td[k]])
            return FAIL(DF_E_MALFORMED, at, "SOS at offset %zu: Huffman table %u is not defined",
                        at, S->td[k]);
        units += D->comp[j].h * D->comp[j].v;
    }
    S->psv = p[1 + 2 * ns];
    S->pt = p[3 + 2 * ns] & 15;
    if ((ns > 1 && units > 10) || S->psv < 1 || S->psv > 7 || S->pt >= D->P)
        return FAIL(DF_E_MALFORMED, at, "SOS at offset %zu: %u samples per MCU (B.2.3: 10), "
                    "predictor %u (1 to 7), point transform %u", at, units, S->psv, S->pt);
    if (D->strict && (p[2 + 2 * ns] != 0 || (p[3 + 2 * ns] >> 4) != 0))
        return FAIL(DF_E_MALFORMED, at, "SOS at offset %zu: Se and Ah must be 0 (H.1)", at);
    /* Tables with the same content let interleaved differences go several at a time. */
    for (S->same_table = 1, k = 0; k < ns; k++) {
        const raw_table *a = &D->raw[S->td[0]], *b = &D->raw[S->td[k]];
        if (a->nvals != b->nvals || memcmp(a->bits, b->bits, 17) ||
            memcmp(a->vals, b->vals, a->nvals))
            S->same_table = 0;
        D->comp[S->ci[k]].pt = (uint8_t)S->pt;
    }
    return DF_OK;
}

/* B.1.1.3: the frame types other than SOF3, named in the error. */
static const char *const sof_names[16] = {
    "SOF0 (baseline DCT)", "SOF1 (extended DCT)", "SOF2 (progressive DCT)", NULL, NULL,
    "SOF5 (differential sequential DCT)", "SOF6 (differential progressive DCT)",
    "SOF7 (differential lossless)", "JPG", "SOF9 (extended DCT, arithmetic)",
    "SOF10 (progressive DCT, arithmetic)", "SOF11 (lossless, arithmetic)", "DAC (arithmetic)",
    "SOF13 (differential DCT, arithmetic)", "SOF14 (differential progressive, arithmetic)",
    "SOF15 (differential lossless, arithmetic)"};

static int all_scanned(const dec_t *D) {
    unsigned k, n = D->have_sof;
    for (k = 0; k < D->nf; k++) n &= D->comp[k].scanned;
    return (int)n;
}

/* B.2.1: the markers of one frame. With `decode` scans are decoded as they come and
 * the loop ends at EOI; otherwise it ends after SOF3. */
static df_status run(dec_t *D, int decode) {
    df_status st;
    if (D->len < 2 || D->src[0] != 0xFF || D->src[1] != M_SOI)
        return FAIL(D->len < 2 ? DF_E_TRUNCATED : DF_E_MALFORMED, 0, "no SOI at offset 0");
    for (D->pos = 2;;) {
        size_t at = D->pos, q;
        unsigned L, m;
        const uint8_t *p;
        scan_t S;
        /* B.1.1.2: fill bytes may precede a marker; only a lenient decoder skips stray
         * bytes before it. */
        if (at + 1 >= D->len || D->src[at] != 0xFF || D->src[at + 1] == 0x00) {
            at = find_marker(D->src, D->len, at);
            if (D->strict && at < D->len)
                return FAIL(DF_E_MALFORMED, D->pos, "expected a marker at offset %zu", D->pos);
        }
        for (q = at + 1; q < D->len && D->src[q] == 0xFF; q++) {}
        if (q >= D->len) {
            if (decode && all_scanned(D) && !D->strict) return DF_OK; /* only EOI missing */
            return FAIL(DF_E_TRUNCATED, D->len, "JPEG data ends before %s",
                        all_scanned(D) ? "EOI" : D->have_sof ? "the last scan" : "SOF3");
        }
        m = D->src[q];
        at = q - 1;
        D->pos = q + 1;
        if (m == M_EOI) {
            if (decode && all_scanned(D)) return DF_OK;
            return FAIL(DF_E_TRUNCATED, at, "EOI at offset %zu before %s", at,
                        D->have_sof ? "a scan of every component" : "SOF3");
        }
        if (m == M_TEM || (m & 0xF8) == M_RST0) {
            if (D->strict)
                return FAIL(DF_E_MALFORMED, at, "marker 0xFF%02X at %zu outside a scan", m, at);
            continue;
        }
        if ((m & 0xF0) == 0xC0 && sof_names[m & 15])
            return FAIL(DF_E_UNSUPPORTED, at, "%s: not lossless JPEG process 14 (SOF3)",
                        sof_names[m & 15]);
        if (m == M_SOF55 || m == M_DHP || m == M_EXP || m == M_DNL)
            return FAIL(DF_E_UNSUPPORTED, at, "marker 0xFF%02X (%s) is not supported", m,
                        m == M_SOF55 ? "JPEG-LS" : m == M_DNL ? "DNL" : "hierarchical mode");
        if (m < 0xC0 || m == M_SOI)
            return FAIL(DF_E_MALFORMED, at, "marker 0xFF%02X at offset %zu", m, at);
        L = D->len - at >= 4 ? df_load_u16be(D->src + at + 2) : 0;
        if (L < 2 || D->len - at - 2 < L)
            return FAIL(D->len - at < 4 || L >= 2 ? DF_E_TRUNCATED : DF_E_MALFORMED, at,
                        "marker 0xFF%02X at offset %zu: length %u, %zu bytes left", m, at, L,
                        D->len - at - 2);
        p = D->src + at + 4;
        D->pos = at + 2 + L;
        if (m == M_SOF3 && ((st = parse_sof3(D, p, L, at)) != DF_OK || !decode)) return st;
        if (m == M_DHT && (st = parse_dht(D, p, L, at)) != DF_OK) return st;
        if (m == M_DRI && L != 4) return FAIL(DF_E_MALFORMED, at, "DRI length %u", L);
        if (m == M_DRI) D->ri = df_load_u16be(p);
        if (m != M_SOS) continue; /* APPn, COM, DQT, JPGn carry nothing for this decoder */
        if (!D->have_sof || !decode)
            return FAIL(DF_E_MALFORMED, at, "SOS at offset %zu before SOF3", at);
        memset(&S, 0, sizeof S);
        if ((st = parse_sos(D, p, L, at, &S)) != DF_OK) return st;
        D->B = 0;
        D->C = D->fake = D->stopped = 0;
        if ((st = decode_scan(D, &S)) != DF_OK || (st = end_segment(D)) != DF_OK) return st;
    }
}

static void fill_info(const dec_t *D, df_ljpeg_info_t *info) {
    unsigned k;
    memset(info, 0, sizeof *info);
    info->rows = D->Y;
    info->columns = D->X;
    info->components = D->nf;
    info->precision = D->P;
    info->bytes_per_sample = D->wide ? 2 : 1;
    info->restart_interval = D->ri;
    info->sof_offset = D->sof_offset;
    for (k = 0; k < D->nf; k++) {
        const comp_t *cp = &D->comp[k];
        info->comp_rows[k] = cp->rows;
        info->comp_columns[k] = cp->cols;
        info->comp_id[k] = cp->id;
        info->comp_h[k] = cp->h;
        info->comp_v[k] = cp->v;
        info->planar |= cp->rows != D->Y || cp->cols != D->X;
        info->out_len += (size_t)cp->rows * cp->cols * info->bytes_per_sample;
    }
}

/* Everything up to the large arrays is cleared; those are written before use. */
static void init(dec_t *D, const uint8_t *src, size_t src_len, df_error *err) {
    memset(D, 0, offsetof(dec_t, raw));
    D->src = src;
    D->len = src ? src_len : 0;
    D->err = err;
    D->hmax = D->vmax = 1;
}

df_status df_ljpeg_info(const uint8_t *src, size_t src_len, df_ljpeg_info_t *info,
                        df_error *err) {
    dec_t D;
    df_error local;
    df_status st;
    if (err == NULL) err = &local;
    df_error_clear(err);
    if (info == NULL) return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "info is NULL");
    memset(info, 0, sizeof *info);
    init(&D, src, src_len, err);
    if ((st = run(&D, 0)) == DF_OK) fill_info(&D, info);
    return st;
}

df_status df_ljpeg_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_ljpeg_opts *opts, df_error *err) {
    dec_t D;
    df_ljpeg_info_t info;
    df_error local;
    df_status st;
    unsigned k;
    if (err == NULL) err = &local;
    df_error_clear(err);
    if (n_out) *n_out = 0;
    init(&D, src, src_len, err);
    if ((st = run(&D, 0)) != DF_OK) return st;
    fill_info(&D, &info);
    if (dst_len < info.out_len || dst == NULL) {
        if (n_out) *n_out = info.out_len;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "the decoded frame needs %zu bytes, the buffer has %zu", info.out_len,
                       dst_len);
    }
    init(&D, src, src_len, err); /* from the start again, with the options and dst */
    D.strict = opts && opts->strict;
    D.wrap16 = opts && opts->int16_predictors;
    D.planar_opt = opts && opts->planar;
    D.dst = dst;
    if ((st = run(&D, 1)) != DF_OK) return st;
    /* H.2.2: with a point transform the output is multiplied by 2^Pt. */
    for (k = 0; k < D.nf; k++) {
        const comp_t *cp = &D.comp[k];
        size_t r, x, i;
        for (r = 0; cp->pt && r < cp->rows; r++)
            for (x = 0; x < cp->cols; x++) {
                i = r * cp->rs + x * cp->ss;
                put_s(dst + cp->offset, i, get_s(dst + cp->offset, i, D.wide) << cp->pt, D.wide);
            }
    }
    if (n_out) *n_out = info.out_len;
    return DF_OK;
}
