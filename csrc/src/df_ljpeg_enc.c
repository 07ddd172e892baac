/* Lossless JPEG encoder: ITU-T T.81 process 14 with selection value 1 and point
 * transform 0 (DICOM 1.2.840.10008.1.2.4.70), one interleaved scan, and for each
 * component a Huffman table optimised for the image (Annex K.2): a first pass counts
 * the difference categories, the second writes the entropy-coded data.
 */
#include "dicomfast/df_ljpeg.h"

#define ENC_HEADER_MAX 256

/* H.2.2 / F.1.2.1: the difference modulo 2^16 in [-32767, 32768], its category SSSS
 * and the SSSS extra bits (negative values as diff - 1, i.e. one's complement). */
static inline unsigned category(int d) {
    unsigned a = (unsigned)(d < 0 ? -d : d);
    return a ? 32u - (unsigned)__builtin_clz(a) : 0u;
}

static inline int wrap_diff(int x, int p) {
    int d = (x - p) & 0xFFFF;
    return d > 32768 ? d - 65536 : d;
}

static inline int load_s(const uint8_t *p, size_t i, int wide) {
    if (wide) {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        return v;
    }
    return p[i];
}

/* Pass 1: category histogram per component, and the largest sample (to check it
 * fits the precision). H.1.2.1: 2^(P-1) predicts the first sample, Rb the first
 * sample of every later row, Ra everything else. */
static inline void count_pass(const uint8_t *src, const df_ljpeg_enc_opts *o, const int wide,
                              const unsigned nc, uint32_t freq[][17], int *maxv) {
    const size_t cols = o->columns, stride = cols * nc;
    const int initial = 1 << (o->precision - 1);
    int mx = 0;
    unsigned k;
    size_t r, x;
    for (r = 0; r < o->rows; r++) {
        const size_t row = r * stride;
        for (k = 0; k < nc; k++) {
            uint32_t *f = freq[k];
            int a = load_s(src, row + k, wide);
            int p = r ? load_s(src, row - stride + k, wide) : initial;
            f[category(wrap_diff(a, p))]++;
            mx |= a;
            for (x = 1; x < cols; x++) {
                int v = load_s(src, row + x * nc + k, wide);
                f[category(wrap_diff(v, a))]++;
                mx |= v;
                a = v;
            }
        }
    }
    *maxv = mx;
}

/* K.2 (Figures K.1 to K.4): code lengths from frequencies, limited to 16 bits, then
 * BITS and HUFFVAL. A reserved symbol with count 1 keeps any code from being all
 * ones. Symbols here are the categories 0..16. */
static void optimal_table(const uint32_t *freq_in, uint8_t bits[17], uint8_t vals[17],
                          unsigned *nvals) {
    uint64_t freq[18];
    int codesize[18], others[18];
    unsigned counts[33];
    unsigned i, j, k, n = 0;
    for (i = 0; i < 17; i++) freq[i] = freq_in[i];
    freq[17] = 1;
    for (i = 0; i < 18; i++) {
        codesize[i] = 0;
        others[i] = -1;
    }
    for (;;) {
        int v1 = -1, v2 = -1;
        /* the two least frequent, ties to the larger symbol (K.1) */
        for (i = 0; i < 18; i++) {
            if (!freq[i]) continue;
            if (v1 < 0 || freq[i] <= freq[v1]) v1 = (int)i;
        }
        for (i = 0; i < 18; i++) {
            if (!freq[i] || (int)i == v1) continue;
            if (v2 < 0 || freq[i] <= freq[v2]) v2 = (int)i;
        }
        if (v2 < 0) break;
        freq[v1] += freq[v2];
        freq[v2] = 0;
        for (codesize[v1]++; others[v1] >= 0; codesize[v1]++) v1 = others[v1];
        others[v1] = v2;
        for (codesize[v2]++; others[v2] >= 0; codesize[v2]++) v2 = others[v2];
    }
    memset(counts, 0, sizeof counts);
    for (i = 0; i < 18; i++)
        if (codesize[i]) counts[codesize[i]]++;
    /* K.3 (Figure K.3): move codes longer than 16 bits up the tree. */
    for (i = 32; i > 16; i--) {
        while (counts[i] > 0) {
            j = i - 2;
            while (counts[j] == 0) j--;
            counts[i] -= 2;
            counts[i - 1]++;
            counts[j + 1] += 2;
            counts[j]--;
        }
    }
    /* drop the reserved code, the longest one */
    for (i = 16; i > 0 && counts[i] == 0; i--) {}
    counts[i]--;
    bits[0] = 0;
    for (i = 1; i <= 16; i++) bits[i] = (uint8_t)counts[i];
    /* K.4: HUFFVAL in order of code length (symbols with equal length by value). */
    for (k = 1; k <= 32; k++)
        for (i = 0; i < 17; i++)
            if (codesize[i] == (int)k) vals[n++] = (uint8_t)i;
    *nvals = n;
}

/* C.2 applied to our table: the code and length of each category. */
static void encoder_codes(const uint8_t bits[17], const uint8_t *vals, unsigned nvals,
                          uint16_t code_of[17], uint8_t size_of[17]) {
    unsigned l, i, k = 0;
    uint32_t code = 0;
    memset(size_of, 0, 17);
    for (l = 1; l <= 16; l++) {
        for (i = 0; i < bits[l] && k < nvals; i++, k++) {
            code_of[vals[k]] = (uint16_t)code++;
            size_of[vals[k]] = (uint8_t)l;
        }
        code <<= 1;
    }
}

typedef struct {
    uint8_t *out, *end;
    uint64_t acc;
    int n;
    int overflow;
} bitwriter;

/* Emit the top 32 of the pending bits with F.1.2.3 byte stuffing. */
static inline void flush32(bitwriter *w) {
    uint32_t word = (uint32_t)(w->acc >> (w->n - 32));
    w->n -= 32;
    if ((size_t)(w->end - w->out) < 8) {
        w->overflow = 1;
        return;
    }
    if ((~word - 0x01010101u) & word & 0x80808080u) {
        int s;
        for (s = 24; s >= 0; s -= 8) {
            uint8_t b = (uint8_t)(word >> s);
            *w->out++ = b;
            if (b == 0xFF) *w->out++ = 0;
        }
    } else {
        w->out[0] = (uint8_t)(word >> 24);
        w->out[1] = (uint8_t)(word >> 16);
        w->out[2] = (uint8_t)(word >> 8);
        w->out[3] = (uint8_t)word;
        w->out += 4;
    }
}

static inline void put_diff(bitwriter *w, int d, const uint16_t *code_of,
                            const uint8_t *size_of) {
    unsigned s = category(d);
    uint32_t v = code_of[s];
    unsigned len = size_of[s];
    if (s && s < 16) {
        v = (v << s) | ((uint32_t)(d < 0 ? d - 1 : d) & ((1u << s) - 1));
        len += s;
    }
    w->acc = (w->acc << len) | v;
    w->n += (int)len;
    if (w->n >= 32) flush32(w);
}

static inline void encode_pass(const uint8_t *src, const df_ljpeg_enc_opts *o, const int wide,
                               const unsigned nc, uint16_t code_of[][17],
                               uint8_t size_of[][17], bitwriter *w) {
    const size_t cols = o->columns, stride = cols * nc;
    const int initial = 1 << (o->precision - 1);
    unsigned k;
    size_t r, x;
    for (r = 0; r < o->rows && !w->overflow; r++) {
        const size_t row = r * stride;
        int a[3];
        for (k = 0; k < nc; k++) {
            a[k] = load_s(src, row + k, wide);
            put_diff(w, wrap_diff(a[k], r ? load_s(src, row - stride + k, wide) : initial),
                     code_of[k], size_of[k]);
        }
        for (x = 1; x < cols; x++) {
            for (k = 0; k < nc; k++) {
                int v = load_s(src, row + x * nc + k, wide);
                put_diff(w, wrap_diff(v, a[k]), code_of[k], size_of[k]);
                a[k] = v;
            }
        }
    }
}

static df_status check_opts(const df_ljpeg_enc_opts *o, df_error *err) {
    if (o == NULL) return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "opts is NULL");
    if (o->rows < 1 || o->rows > 65535 || o->columns < 1 || o->columns > 65535)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%ux%u image: rows and columns must be 1 to 65535 (B.2.2)", o->rows,
                       o->columns);
    if (o->components != 1 && o->components != 3)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "%u components (1 or 3)",
                       o->components);
    if (o->precision < 2 || o->precision > 16)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "precision %u (2 to 16)",
                       o->precision);
    return DF_OK;
}

size_t df_ljpeg_encode_bound(const df_ljpeg_enc_opts *opts) {
    uint64_t samples, bits;
    unsigned per;
    if (check_opts(opts, NULL)) return 0;
    samples = (uint64_t)opts->rows * opts->columns * opts->components;
    /* at most a 16-bit code plus 15 extra bits per sample; stuffing at most doubles */
    per = 16 + (opts->precision < 15 ? opts->precision : 15);
    bits = samples * per;
    bits = 2 * ((bits + 31) / 32) * 4 + ENC_HEADER_MAX + 8;
    return bits > (uint64_t)SIZE_MAX ? 0 : (size_t)bits;
}

static uint8_t *put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

df_status df_ljpeg_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_ljpeg_enc_opts *opts, df_error *err) {
    uint32_t freq[3][17];
    uint8_t bits[3][17], vals[3][17];
    uint16_t code_of[3][17];
    uint8_t size_of[3][17];
    unsigned nvals[3], k, nc, l;
    int maxv = 0, wide;
    size_t need, bound;
    uint64_t need64;
    uint8_t *p, *seg;
    bitwriter w;
    df_status st;
    df_error_clear(err);
    if (n_out) *n_out = 0;
    if ((st = check_opts(opts, err)) != DF_OK) return st;
    nc = opts->components;
    wide = opts->precision > 8;
    need64 = (uint64_t)opts->rows * opts->columns * nc * (wide ? 2 : 1);
    need = need64 > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)need64;
    if (src_len != need || src == NULL)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%zu bytes of samples; %u x %u x %u samples of %u bits take %zu",
                       src_len, opts->rows, opts->columns, nc, opts->precision, need);
    bound = df_ljpeg_encode_bound(opts);
    if (dst == NULL || dst_len < ENC_HEADER_MAX) {
        if (n_out) *n_out = bound;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "need up to %zu bytes", bound);
    }
    memset(freq, 0, sizeof freq);
    if (nc == 1) {
        if (wide) count_pass(src, opts, 1, 1, freq, &maxv);
        else count_pass(src, opts, 0, 1, freq, &maxv);
    } else {
        if (wide) count_pass(src, opts, 1, 3, freq, &maxv);
        else count_pass(src, opts, 0, 3, freq, &maxv);
    }
    if ((unsigned)maxv >> opts->precision)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "a sample uses bit %u, above the %u-bit precision",
                       31u - (unsigned)__builtin_clz((unsigned)maxv), opts->precision);
    for (k = 0; k < nc; k++) {
        optimal_table(freq[k], bits[k], vals[k], &nvals[k]);
        encoder_codes(bits[k], vals[k], nvals[k], code_of[k], size_of[k]);
    }

    /* B.2: SOI, SOF3, DHT, SOS; components are numbered 1..Nf, sampled 1x1. */
    p = dst;
    p = put16(p, 0xFFD8);
    p = put16(p, 0xFFC3);
    p = put16(p, 8 + 3 * nc);
    *p++ = (uint8_t)opts->precision;
    p = put16(p, opts->rows);
    p = put16(p, opts->columns);
    *p++ = (uint8_t)nc;
    for (k = 0; k < nc; k++) {
        *p++ = (uint8_t)(k + 1);
        *p++ = 0x11;
        *p++ = 0;
    }
    p = put16(p, 0xFFC4);
    seg = p;
    p += 2;
    for (k = 0; k < nc; k++) {
        *p++ = (uint8_t)k; /* class 0 (DC/lossless), destination k */
        for (l = 1; l <= 16; l++) *p++ = bits[k][l];
        memcpy(p, vals[k], nvals[k]);
        p += nvals[k];
    }
    put16(seg, (unsigned)(p - seg));
    p = put16(p, 0xFFDA);
    p = put16(p, 6 + 2 * nc);
    *p++ = (uint8_t)nc;
    for (k = 0; k < nc; k++) {
        *p++ = (uint8_t)(k + 1);
        *p++ = (uint8_t)(k << 4);
    }
    *p++ = 1; /* Ss: selection value 1 */
    *p++ = 0; /* Se */
    *p++ = 0; /* Ah, Al = point transform 0 */

    w.out = p;
    w.end = dst + dst_len - 2; /* keep room for EOI */
    w.acc = 0;
    w.n = 0;
    w.overflow = 0;
    if (nc == 1) {
        if (wide) encode_pass(src, opts, 1, 1, code_of, size_of, &w);
        else encode_pass(src, opts, 0, 1, code_of, size_of, &w);
    } else {
        if (wide) encode_pass(src, opts, 1, 3, code_of, size_of, &w);
        else encode_pass(src, opts, 0, 3, code_of, size_of, &w);
    }
    /* F.1.2.3: pad the last byte with 1 bits. */
    if (w.n & 7) {
        int pad = 8 - (w.n & 7);
        w.acc = (w.acc << pad) | ((1u << pad) - 1);
        w.n += pad;
    }
    if (w.n >= 32) flush32(&w);
    while (w.n > 0 && !w.overflow) {
        uint8_t b = (uint8_t)(w.acc >> (w.n - 8));
        w.n -= 8;
        if ((size_t)(w.end - w.out) < 2) {
            w.overflow = 1;
            break;
        }
        *w.out++ = b;
        if (b == 0xFF) *w.out++ = 0;
    }
    if (w.overflow) {
        if (n_out) *n_out = bound;
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "need up to %zu bytes", bound);
    }
    p = put16(w.out, 0xFFD9);
    if (n_out) *n_out = (size_t)(p - dst);
    return DF_OK;
}
