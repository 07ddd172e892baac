/* JPEG 2000 codestream headers and sample packing, shared by the OpenJPEG and
 * OpenJPH glue (csrc/src/glue/). Marker segments: ISO/IEC 15444-1 Annex A; JP2
 * boxes: Annex I; the HT capability: ISO/IEC 15444-15 §A.3. */
#include "dicomfast/df_j2k.h"

#define J2K_SOC 0xFF4Fu
#define J2K_CAP 0xFF50u
#define J2K_SIZ 0xFF51u
#define J2K_COD 0xFF52u
#define J2K_COC 0xFF53u
#define J2K_TLM 0xFF55u
#define J2K_QCD 0xFF5Cu
#define J2K_QCC 0xFF5Du
#define J2K_SOT 0xFF90u
#define J2K_SOP 0xFF91u
#define J2K_EPH 0xFF92u
#define J2K_SOD 0xFF93u
#define J2K_EOC 0xFFD9u

#define JP2_BOX(a, b, c, d) \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static uint32_t ceil_div(uint32_t a, uint32_t b) {
    return (uint32_t)(((uint64_t)a + b - 1) / b);
}

/* A box header: its type, where its content starts and how long it is. */
static df_status jp2_box(df_cursor *c, uint32_t *type, size_t *content_len, df_error *err) {
    if (!df_cursor_has(c, 8))
        return df_fail(err, DF_E_DECODE, c->pos, DF_NO_TAG,
                       "JP2 box header needs 8 bytes, %zu remain", df_cursor_remaining(c));
    uint64_t len = df_load_u32be(c->base + c->pos);
    *type = df_load_u32be(c->base + c->pos + 4);
    size_t header = 8;
    if (len == 1) {
        if (!df_cursor_has(c, 16))
            return df_fail(err, DF_E_DECODE, c->pos, DF_NO_TAG,
                           "JP2 box extended length is cut off");
        len = ((uint64_t)df_load_u32be(c->base + c->pos + 8) << 32) |
              df_load_u32be(c->base + c->pos + 12);
        header = 16;
    } else if (len == 0) {
        len = df_cursor_remaining(c);  /* the last box runs to the end (15444-1 §I.4) */
    }
    if (len < header || len > df_cursor_remaining(c))
        return df_fail(err, DF_E_MALFORMED, c->pos, DF_NO_TAG,
                       "JP2 box length %llu does not fit the %zu bytes remaining",
                       (unsigned long long)len, df_cursor_remaining(c));
    c->pos += header;
    *content_len = (size_t)len - header;
    return DF_OK;
}

/* Walk the JP2 boxes: remember colr's enumerated colour space, return the jp2c
 * box's content as the codestream. */
static df_status jp2_find_codestream(const uint8_t *src, size_t src_len, df_j2k_info *info,
                                     df_error *err) {
    df_cursor c;
    df_cursor_init(&c, src, src_len);
    while (df_cursor_remaining(&c) > 0) {
        uint32_t type;
        size_t len;
        df_status st = jp2_box(&c, &type, &len, err);
        if (st != DF_OK)
            return st;
        if (type == JP2_BOX('j', 'p', '2', 'c')) {
            info->codestream_offset = c.pos;
            info->codestream_len = len;
            return DF_OK;
        }
        if (type == JP2_BOX('j', 'p', '2', 'h')) {
            /* A superbox: look inside for colr, then carry on after it. */
            df_cursor in;
            df_cursor_init(&in, src + c.pos, len);
            while (df_cursor_remaining(&in) > 0) {
                uint32_t sub;
                size_t sub_len;
                st = jp2_box(&in, &sub, &sub_len, err);
                if (st != DF_OK) {
                    err->offset += c.pos;
                    return st;
                }
                if (sub == JP2_BOX('c', 'o', 'l', 'r') && sub_len >= 7 && in.base[in.pos] == 1)
                    info->colour_space = df_load_u32be(in.base + in.pos + 3);
                in.pos += sub_len;
            }
        }
        c.pos += len;
    }
    return df_fail(err, DF_E_MALFORMED, src_len, DF_NO_TAG,
                   "JP2 boxes hold no contiguous codestream (jp2c) box");
}

static df_status read_siz(const uint8_t *p, size_t len, uint64_t at, df_j2k_info *info,
                          df_error *err) {
    /* Lsiz counts itself: 38 bytes, then 3 per component (Table A.9). */
    if (len < 38)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "SIZ segment of %zu bytes", len);
    uint32_t xsiz = df_load_u32be(p + 4), ysiz = df_load_u32be(p + 8);
    uint32_t x0 = df_load_u32be(p + 12), y0 = df_load_u32be(p + 16);
    uint32_t xt = df_load_u32be(p + 20), yt = df_load_u32be(p + 24);
    uint32_t xt0 = df_load_u32be(p + 28), yt0 = df_load_u32be(p + 32);
    uint32_t csiz = df_load_u16be(p + 36);
    if (xsiz <= x0 || ysiz <= y0)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "SIZ gives an empty image: %u..%u x %u..%u", x0, xsiz, y0, ysiz);
    if (xt == 0 || yt == 0 || xt0 > x0 || yt0 > y0 || (uint64_t)xt0 + xt <= x0 ||
        (uint64_t)yt0 + yt <= y0)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "SIZ tile grid %ux%u at (%u,%u) does not cover the image origin (%u,%u)",
                       xt, yt, xt0, yt0, x0, y0);
    if (csiz == 0 || csiz > 16384)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "SIZ has %u components", csiz);
    if (len < 38 + 3 * (size_t)csiz)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "SIZ segment of %zu bytes is short for %u components", len, csiz);
    uint64_t tiles = (uint64_t)ceil_div(xsiz - xt0, xt) * ceil_div(ysiz - yt0, yt);
    if (tiles > DF_J2K_MAX_TILES)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "SIZ tiles of %ux%u make %llu tiles, more than a codestream can hold",
                       xt, yt, (unsigned long long)tiles);
    info->columns = xsiz - x0;
    info->rows = ysiz - y0;
    info->x0 = x0;
    info->y0 = y0;
    info->tile_width = xt;
    info->tile_height = yt;
    info->n_tiles = (uint32_t)tiles;
    info->components = csiz;
    info->uniform = 1;
    info->subsampled = 0;
    for (uint32_t i = 0; i < csiz; i++) {
        const uint8_t *comp = p + 38 + 3 * (size_t)i;
        uint32_t prec = (uint32_t)(comp[0] & 0x7F) + 1, sgnd = comp[0] >> 7;
        if (prec > 38)
            return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                           "SIZ component %u has precision %u", i, prec);
        if (comp[1] == 0 || comp[2] == 0)
            return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                           "SIZ component %u has a zero sampling step", i);
        if (i == 0) {
            info->precision = prec;
            info->is_signed = sgnd;
        } else if (prec != info->precision || sgnd != info->is_signed) {
            info->uniform = 0;
        }
        if (comp[1] != 1 || comp[2] != 1)
            info->subsampled = 1;
    }
    return DF_OK;
}

/* Code-block width and height exponent offsets xcb, ycb (15444-1 Table A.18): each at
 * most 8 and xcb + ycb at most 8 (blocks of at most 4096 samples). Decoders size
 * their code-block buffers from these before reading any tile: OpenJPH 0.9 does not
 * check them and asks for tens of GB for a 32 x 32 image (found by fuzz_htj2k;
 * tests/fuzz_regressions/htj2k/oom-*), so refuse them here. */
static df_status check_code_block(uint32_t xcb, uint32_t ycb, uint64_t at, df_error *err) {
    if (xcb > 8 || ycb > 8 || xcb + ycb > 8)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "code-block size exponents xcb=%u, ycb=%u (each and their sum at "
                       "most 8)", xcb, ycb);
    return DF_OK;
}

static df_status read_cod(const uint8_t *p, size_t len, uint64_t at, df_j2k_info *info,
                          df_error *err) {
    /* Scod, SGcod (progression, layers, MCT), SPcod (levels, code-block size and
     * style, transform): Table A.12. */
    if (len < 12)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "COD segment of %zu bytes", len);
    info->coding_style = p[2];
    info->progression = p[3];
    info->layers = df_load_u16be(p + 4);
    info->mct = p[6];
    info->levels = p[7];
    if (p[10] & 0x40)
        info->htj2k = 1;
    info->reversible = p[11] == 1;
    if (info->progression > DF_J2K_CPRL || info->layers == 0 || info->levels > 32)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "COD has progression %u, %u layers, %u levels", info->progression,
                       info->layers, info->levels);
    return check_code_block(p[8], p[9], at, err);
}

/* COC (Table A.23): the code-block size of one component, which overrides COD's.
 * Ccoc is one byte below 257 components, else two (A.6.2). */
static df_status read_coc(const uint8_t *p, size_t len, uint64_t at, df_j2k_info *info,
                          df_error *err) {
    size_t c_len = info->components < 257 ? 1 : 2;
    if (len < 2 + c_len + 1 + 5)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "COC segment of %zu bytes", len);
    const uint8_t *sp = p + 2 + c_len + 1;  /* SPcoc: levels, xcb, ycb, style, transform */
    if (sp[0] > 32)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "COC has %u levels", sp[0]);
    if (sp[0] > info->max_levels)
        info->max_levels = sp[0];
    if (sp[3] & 0x40)
        info->htj2k = 1;  /* HT code-blocks for this component */
    return check_code_block(sp[1], sp[2], at, err);
}

/* QCD (Table A.27) or QCC (Table A.30, after its component index): the style, then
 * one byte per subband (no quantisation), one 16-bit step (scalar derived) or one
 * per subband (scalar expounded). Returns the style; *bands gets the subband count. */
static df_status read_quant(const uint8_t *p, size_t len, size_t skip, uint64_t at,
                            uint32_t *style, uint32_t *bands, df_error *err) {
    if (len < 3 + skip)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "quantisation segment of %zu bytes",
                       len);
    size_t body = len - 3 - skip;
    *style = p[2 + skip] & 0x1F;
    if (*style > 2)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "quantisation style %u", *style);
    *bands = *style == 0 ? (uint32_t)body : *style == 1 ? 1u : (uint32_t)(body / 2);
    if (*bands == 0 || (*style != 0 && body % 2 != 0) || (*style == 1 && body != 2))
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "quantisation segment of %zu bytes does not fit style %u", len, *style);
    return DF_OK;
}

/* Fold one QCD/QCC into the summary the decoders check against the levels. */
static void note_quant(df_j2k_info *info, uint32_t style, uint32_t bands) {
    info->quant_styles |= 1u << style;
    if (style != 1 && (info->min_quant_bands == 0 || bands < info->min_quant_bands))
        info->min_quant_bands = bands;
}

df_status df_j2k_info_read(const uint8_t *src, size_t src_len, df_j2k_info *info,
                           df_error *err) {
    static const uint8_t jp2_signature[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 13, 10, 0x87, 10};
    memset(info, 0, sizeof *info);
    if (src == NULL)
        src_len = 0;
    if (src_len >= 12 && memcmp(src, jp2_signature, 12) == 0) {
        info->jp2 = 1;
        df_status st = jp2_find_codestream(src, src_len, info, err);
        if (st != DF_OK)
            return st;
    } else {
        info->codestream_offset = 0;
        info->codestream_len = src_len;
    }
    df_cursor c;
    df_cursor_init(&c, src + info->codestream_offset, (size_t)info->codestream_len);
    uint64_t base = info->codestream_offset;
    if (!df_cursor_has(&c, 4) || df_load_u16be(c.base) != J2K_SOC ||
        df_load_u16be(c.base + 2) != J2K_SIZ)
        return df_fail(err, DF_E_MALFORMED, base, DF_NO_TAG,
                       "not a JPEG 2000 codestream: it must start with SOC then SIZ");
    c.pos = 2;
    int have_siz = 0, have_cod = 0, have_qcd = 0;
    for (;;) {
        if (!df_cursor_has(&c, 2))
            return df_fail(err, DF_E_DECODE, base + c.pos, DF_NO_TAG,
                           "codestream ends inside its main header");
        uint32_t marker = df_load_u16be(c.base + c.pos);
        if (marker == J2K_SOT || marker == J2K_EOC)
            break;
        if ((marker >> 8) != 0xFF || marker < 0xFF30)
            return df_fail(err, DF_E_MALFORMED, base + c.pos, DF_NO_TAG,
                           "0x%04X where a main header marker should be", marker);
        if (marker <= 0xFF3F) {  /* reserved markers without a segment (Table A.1) */
            c.pos += 2;
            continue;
        }
        if (!df_cursor_has(&c, 4))
            return df_fail(err, DF_E_DECODE, base + c.pos, DF_NO_TAG,
                           "codestream ends inside marker 0x%04X", marker);
        size_t len = df_load_u16be(c.base + c.pos + 2);
        if (len < 2 || len > df_cursor_remaining(&c) - 2)
            return df_fail(err, DF_E_DECODE, base + c.pos, DF_NO_TAG,
                           "marker 0x%04X segment of %zu bytes, %zu remain", marker, len,
                           df_cursor_remaining(&c) - 2);
        const uint8_t *seg = c.base + c.pos + 2;
        uint64_t at = base + c.pos;
        df_status st = DF_OK;
        /* SIZ, COD and QCD occur once in a main header (15444-1 Table A.2); decoders
         * differ on which of two they would use, so a second one is refused. */
        if ((marker == J2K_SIZ && have_siz) || (marker == J2K_COD && have_cod) ||
            (marker == J2K_QCD && have_qcd))
            return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                           "second 0x%04X marker segment in the main header", marker);
        if (marker == J2K_SIZ) {
            st = read_siz(seg, len, at, info, err);
            have_siz = 1;
        } else if (marker == J2K_COD) {
            st = read_cod(seg, len, at, info, err);
            if (st == DF_OK && info->levels > info->max_levels)
                info->max_levels = info->levels;
            have_cod = 1;
        } else if (marker == J2K_COC && have_siz) {
            st = read_coc(seg, len, at, info, err);
        } else if (marker == J2K_QCD) {
            st = read_quant(seg, len, 0, at, &info->quant_style, &info->quant_bands, err);
            if (st == DF_OK)
                note_quant(info, info->quant_style, info->quant_bands);
            have_qcd = 1;
        } else if (marker == J2K_QCC && have_siz) {
            uint32_t style, bands;
            st = read_quant(seg, len, info->components < 257 ? 1 : 2, at, &style, &bands, err);
            if (st == DF_OK)
                note_quant(info, style, bands);
        } else if (marker == J2K_CAP && len >= 6) {
            /* Pcap bit 15 (counting from the MSB as bit 1) announces Part 15. */
            if (df_load_u32be(seg + 2) & (1u << (32 - 15)))
                info->htj2k = 1;
        }
        if (st != DF_OK)
            return st;
        c.pos += 2 + len;
    }
    if (!have_cod)
        return df_fail(err, DF_E_MALFORMED, base + c.pos, DF_NO_TAG,
                       "main header has no COD marker segment");
    info->header_len = c.pos;
    return DF_OK;
}

/* Size of one axis after discarding `reduce` resolution levels (15444-1 B.5). */
static uint32_t reduced(uint32_t origin, uint32_t size, uint32_t reduce) {
    uint64_t end = (uint64_t)origin + size, step = (uint64_t)1 << reduce;
    return (uint32_t)((end + step - 1) / step - ((uint64_t)origin + step - 1) / step);
}

df_status df_j2k_plan_decode(const df_j2k_info *info, const df_j2k_decode_opts *opts,
                             size_t dst_len, df_j2k_plan *plan, size_t *n_out, df_error *err) {
    uint64_t at = info->codestream_offset;
    if (opts->strict && info->jp2)
        return df_fail(err, DF_E_MALFORMED, 0, DF_NO_TAG,
                       "the frame is a JP2 file; DICOM wants a bare codestream (PS3.5 A.4.4)");
    if ((opts->rows && opts->rows != info->rows) ||
        (opts->columns && opts->columns != info->columns) ||
        (opts->components && opts->components != info->components))
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "the codestream is %u x %u x %u, the data set says %u x %u x %u",
                       info->columns, info->rows, info->components, opts->columns, opts->rows,
                       opts->components);
    if (info->subsampled)
        return df_fail(err, DF_E_UNSUPPORTED, at, DF_NO_TAG,
                       "components are subsampled, which DICOM frames do not use");
    if (!info->uniform)
        return df_fail(err, DF_E_UNSUPPORTED, at, DF_NO_TAG,
                       "components differ in precision or signedness");
    if (info->precision > DF_J2K_MAX_PRECISION)
        return df_fail(err, DF_E_UNSUPPORTED, at, DF_NO_TAG,
                       "%u-bit samples; at most %d are supported", info->precision,
                       DF_J2K_MAX_PRECISION);
    if (opts->reduce > info->levels)
        return df_fail(err, DF_E_INVALID_ARG, at, DF_NO_TAG,
                       "reduce=%u but the codestream has %u decomposition levels", opts->reduce,
                       info->levels);
    uint32_t natural = info->precision <= 8 ? 1 : 2;
    uint32_t bytes = opts->sample_bytes ? opts->sample_bytes : natural;
    if (bytes != 1 && bytes != 2)
        return df_fail(err, DF_E_INVALID_ARG, at, DF_NO_TAG, "%u bytes per sample", bytes);
    if (bytes < natural)
        return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG,
                       "%u-bit samples do not fit %u byte(s) per sample", info->precision, bytes);
    plan->width = reduced(info->x0, info->columns, opts->reduce);
    plan->height = reduced(info->y0, info->rows, opts->reduce);
    plan->sample_bytes = bytes;
    uint64_t total = (uint64_t)plan->width * plan->height * info->components * bytes;
    if (total > SIZE_MAX)
        return df_fail(err, DF_E_LIMIT, at, DF_NO_TAG, "decoded image of %llu bytes",
                       (unsigned long long)total);
    plan->n_bytes = (size_t)total;
    if (n_out != NULL)
        *n_out = plan->n_bytes;
    if (dst_len < plan->n_bytes)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "the decoded frame needs %zu bytes, the output has %zu", plan->n_bytes,
                       dst_len);
    return DF_OK;
}

void df_j2k_store_init(df_j2k_store *store, const df_j2k_info *info,
                       const df_j2k_decode_opts *opts, uint32_t sample_bytes) {
    uint32_t p = info->precision;
    int out_signed = opts->out_signed < 0 ? (int)info->is_signed : opts->out_signed;
    store->lo = info->is_signed ? -(int32_t)(1u << (p - 1)) : 0;
    store->hi = info->is_signed ? (int32_t)((1u << (p - 1)) - 1) : (int32_t)((1u << p) - 1);
    store->shift = p;
    store->fix = 0;
    if (opts->fix_sign && out_signed != (int)info->is_signed)
        store->fix = out_signed ? 1 : 2;
    /* Widening an up-to-8-bit sample: truncate to the byte first, read as the
     * caller's signedness, as an 8-bit container would hold it. */
    store->fold = 0;
    if (sample_bytes == 2 && p <= 8)
        store->fold = out_signed ? 2 : 1;
    store->sample_bytes = sample_bytes;
}

static inline int32_t store_value(const df_j2k_store *s, int32_t v) {
    v = v < s->lo ? s->lo : (v > s->hi ? s->hi : v);
    if (s->fix == 1)
        v -= (int32_t)((uint32_t)(v >> (s->shift - 1)) << s->shift);
    else if (s->fix == 2)
        v &= (int32_t)((1u << s->shift) - 1);
    if (s->fold == 1)
        v &= 0xFF;
    else if (s->fold == 2)
        v = (int8_t)(uint8_t)(v & 0xFF);
    return v;
}

void df_j2k_store_samples(const df_j2k_store *s, const int32_t *src, size_t count,
                          uint8_t *dst, size_t stride) {
    const int32_t lo = s->lo, hi = s->hi;
    if (s->fix == 0 && s->fold == 0) {
        /* The common case, kept simple enough for the compiler to vectorise. */
        if (s->sample_bytes == 1) {
            for (size_t i = 0; i < count; i++) {
                int32_t v = src[i] < lo ? lo : (src[i] > hi ? hi : src[i]);
                dst[i * stride] = (uint8_t)v;
            }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        } else if (stride == 1) {
            /* One component on a little-endian host: whole 16-bit stores. */
            for (size_t i = 0; i < count; i++) {
                int32_t v = src[i] < lo ? lo : (src[i] > hi ? hi : src[i]);
                uint16_t u = (uint16_t)v;
                memcpy(dst + 2 * i, &u, 2);
            }
#endif
        } else {
            for (size_t i = 0; i < count; i++) {
                int32_t v = src[i] < lo ? lo : (src[i] > hi ? hi : src[i]);
                uint8_t *d = dst + 2 * i * stride;
                d[0] = (uint8_t)v;
                d[1] = (uint8_t)((uint32_t)v >> 8);
            }
        }
        return;
    }
    for (size_t i = 0; i < count; i++) {
        int32_t v = store_value(s, src[i]);
        if (s->sample_bytes == 1) {
            dst[i * stride] = (uint8_t)v;
        } else {
            uint8_t *d = dst + 2 * i * stride;
            d[0] = (uint8_t)v;
            d[1] = (uint8_t)((uint32_t)v >> 8);
        }
    }
}

df_status df_j2k_check_encode(const uint8_t *src, size_t src_len,
                              const df_j2k_encode_opts *opts, df_error *err) {
    if (opts->rows == 0 || opts->columns == 0 || opts->samples == 0 || opts->samples > 4)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "image of %u x %u x %u",
                       opts->columns, opts->rows, opts->samples);
    if (opts->bits_stored == 0 || opts->bits_stored > DF_J2K_MAX_PRECISION)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "%u bits stored", opts->bits_stored);
    uint32_t need = opts->bits_stored <= 8 ? 1 : 2;
    if ((opts->sample_bytes != 1 && opts->sample_bytes != 2) || opts->sample_bytes < need)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%u-bit samples in %u byte(s)", opts->bits_stored, opts->sample_bytes);
    if (opts->mct && opts->samples != 3)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "MCT needs 3 components, the image has %u", opts->samples);
    if (opts->n_layers > DF_J2K_MAX_LAYERS || (opts->lossless && opts->n_layers))
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%u quality layers for a %s encode", opts->n_layers,
                       opts->lossless ? "lossless" : "lossy");
    for (uint32_t i = 0; i < opts->n_layers; i++) {
        double v = opts->layers[i], prev = i ? opts->layers[i - 1] : 0.0;
        int bad = opts->use_psnr ? !(v > 0.0) || (i && !(v > prev))
                                 : !(v >= 1.0) || (i && !(v < prev));
        if (bad)
            return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                           "layer %u: %s %g; ratios must fall and stay >= 1, PSNRs rise", i,
                           opts->use_psnr ? "PSNR" : "ratio", v);
    }
    if (opts->levels > 32 || opts->progression < 0 || opts->progression > DF_J2K_CPRL)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "%u levels, progression %d",
                       opts->levels, opts->progression);
    uint64_t n = (uint64_t)opts->rows * opts->columns * opts->samples;
    if (n * opts->sample_bytes != src_len)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%zu bytes for %u x %u x %u samples of %u byte(s)", src_len,
                       opts->columns, opts->rows, opts->samples, opts->sample_bytes);
    int32_t lo = opts->is_signed ? -(int32_t)(1u << (opts->bits_stored - 1)) : 0;
    int32_t hi = opts->is_signed ? (int32_t)((1u << (opts->bits_stored - 1)) - 1)
                                 : (int32_t)((1u << opts->bits_stored) - 1);
    /* Whole-image minimum and maximum first (a loop that vectorises); only an
     * image out of range is searched for the offending sample. */
    int32_t row[1024];
    int32_t min = lo, max = hi;
    for (size_t i = 0; i < (size_t)n; i += 1024) {
        size_t k = (size_t)n - i < 1024 ? (size_t)n - i : 1024;
        df_j2k_load_samples(src, i, k, 1, opts->sample_bytes, opts->is_signed, row);
        for (size_t j = 0; j < k; j++) {
            min = row[j] < min ? row[j] : min;
            max = row[j] > max ? row[j] : max;
        }
    }
    if (min >= lo && max <= hi)
        return DF_OK;
    for (size_t i = 0; i < (size_t)n; i++) {
        int32_t v = df_j2k_load_sample(src, i, opts->sample_bytes, opts->is_signed);
        if (v < lo || v > hi)
            return df_fail(err, DF_E_INVALID_ARG, (uint64_t)i * opts->sample_bytes, DF_NO_TAG,
                           "sample %zu is %d, outside %d..%d for %u %s bits", i, v, lo, hi,
                           opts->bits_stored, opts->is_signed ? "signed" : "unsigned");
    }
    return DF_OK;
}

void df_j2k_load_samples(const uint8_t *src, size_t first, size_t count, size_t stride,
                         uint32_t sample_bytes, int is_signed, int32_t *dst) {
    /* One loop per sample type, so each is a plain widening the compiler vectorises. */
    if (sample_bytes == 1) {
        const uint8_t *p = src + first;
        if (is_signed)
            for (size_t i = 0; i < count; i++)
                dst[i] = (int8_t)p[i * stride];
        else
            for (size_t i = 0; i < count; i++)
                dst[i] = p[i * stride];
        return;
    }
    const uint8_t *p = src + 2 * first;
    if (is_signed)
        for (size_t i = 0; i < count; i++)
            dst[i] = (int16_t)df_load_u16le(p + 2 * i * stride);
    else
        for (size_t i = 0; i < count; i++)
            dst[i] = df_load_u16le(p + 2 * i * stride);
}

/* Code-block style of a COD or COC segment (`p` at its length field), or -1 when
 * the segment is too short to hold one (Tables A.12 and A.23). */
static int segment_cblk_style(uint32_t marker, const uint8_t *p, size_t len,
                              const df_j2k_info *info) {
    size_t at = marker == J2K_COD ? 2 + 1 + 4 + 3
                                  : 2 + (info->components < 257 ? 1u : 2u) + 1 + 3;
    return at < len ? p[at] : -1;
}

df_status df_j2k_check_tile_parts(const uint8_t *src, size_t src_len, const df_j2k_info *info,
                                  df_error *err) {
    const uint8_t *cs = src + info->codestream_offset;
    const uint64_t base = info->codestream_offset;
    size_t len = (size_t)info->codestream_len, at = (size_t)info->header_len;
    uint32_t parts = 0;
    const int ht = info->htj2k != 0;
    (void)src_len;
    while (at + 2 <= len && df_load_u16be(cs + at) != J2K_EOC) {
        /* SOT: Lsot = 10, Isot, Psot, TPsot, TNsot (Table A.4). Without HT
         * code-blocks a broken chain is left to the decoder, which cannot get past
         * it either; with them the frame is refused. */
        if (at + 12 > len || df_load_u16be(cs + at) != J2K_SOT) {
            if (!ht)
                return DF_OK;
            return df_fail(err, DF_E_DECODE, base + at, DF_NO_TAG,
                           "no SOT where tile-part %u should start", parts);
        }
        uint32_t lsot = df_load_u16be(cs + at + 2), isot = df_load_u16be(cs + at + 4);
        uint32_t psot = df_load_u32be(cs + at + 6), tpsot = cs[at + 10], tnsot = cs[at + 11];
        if (lsot != 10 || isot >= info->n_tiles || (tnsot != 0 && tpsot >= tnsot) ||
            (psot != 0 && psot < 14)) {
            if (!ht)
                return DF_OK;
            return df_fail(err, DF_E_DECODE, base + at, DF_NO_TAG,
                           "SOT of tile %u (part %u of %u, %u bytes) does not fit %u tile(s)",
                           isot, tpsot, tnsot, psot, info->n_tiles);
        }
        if (psot > len - at) {
            if (!ht)
                psot = 0;  /* cut short: the decoder reads what there is */
            else
                return df_fail(err, DF_E_DECODE, base + len, DF_NO_TAG,
                               "the codestream is cut short: tile-part %u needs %u bytes, "
                               "%zu remain", parts, psot, len - at);
        }
        size_t end = psot == 0 ? len : at + psot;
        /* The tile-part header's marker segments, up to SOD. HT code-blocks need
         * the CAP marker in the main header (15444-15 §A.2): a COD or COC asking for
         * them here, in a codestream that announced none, is refused, so that the
         * main header alone tells which decoder a frame needs. */
        size_t p = at + 12;
        while (p + 4 <= end && df_load_u16be(cs + p) != J2K_SOD) {
            uint32_t marker = df_load_u16be(cs + p), seg = df_load_u16be(cs + p + 2);
            if (cs[p] != 0xFF || seg < 2 || seg > end - p - 2) {
                if (!ht)
                    return DF_OK;
                return df_fail(err, DF_E_DECODE, base + p, DF_NO_TAG,
                               "a broken marker segment in a tile-part header");
            }
            if (!ht && (marker == J2K_COD || marker == J2K_COC)) {
                int style = segment_cblk_style(marker, cs + p + 2, seg, info);
                if (style >= 0 && (style & 0x40))
                    return df_fail(err, DF_E_DECODE, base + p, DF_NO_TAG,
                                   "a tile-part header asks for HT code-blocks, which the "
                                   "main header does not announce");
            }
            p += 2 + (size_t)seg;
        }
        if (p + 2 > end || df_load_u16be(cs + p) != J2K_SOD) {
            if (!ht)
                return DF_OK;
            return df_fail(err, DF_E_DECODE, base + at, DF_NO_TAG,
                           "tile-part %u has no SOD marker", parts);
        }
        for (p += 2; ht && p + 1 < end; p++) {
            const uint8_t *ff = memchr(cs + p, 0xFF, end - 1 - p);
            if (ff == NULL)
                break;
            p = (size_t)(ff - cs);
            if (cs[p + 1] <= 0x8F)
                continue;
            uint32_t m = df_load_u16be(cs + p);
            if (m == J2K_EOC && psot == 0)
                break;  /* the last tile-part runs to EOC */
            if ((m == J2K_SOP && (info->coding_style & 2)) ||
                (m == J2K_EPH && (info->coding_style & 4)))
                continue;
            return df_fail(err, DF_E_DECODE, base + p, DF_NO_TAG,
                           "0x%04X inside tile-part data: the codestream is corrupt", m);
        }
        parts++;
        if (psot == 0)
            break;
        at = end;
    }
    if (ht && parts < info->n_tiles)
        return df_fail(err, DF_E_DECODE, base + at, DF_NO_TAG,
                       "the codestream is cut short: %u tile-parts for %u tiles", parts,
                       info->n_tiles);
    return DF_OK;
}

uint32_t df_j2k_default_levels(uint32_t rows, uint32_t columns, uint32_t wanted) {
    /* Each level halves the image; stop before the smaller side reaches one pixel. */
    uint32_t side = rows < columns ? rows : columns, max = 0;
    while (max < 32 && (side >> (max + 1)) > 0)
        max++;
    if (wanted == 0)
        wanted = 5;
    return wanted < max ? wanted : max;
}

df_status df_j2k_add_tlm(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, df_error *err) {
    df_j2k_info info;
    df_status st = df_j2k_info_read(src, src_len, &info, err);
    if (st != DF_OK)
        return st;
    if (info.jp2)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "TLM goes into bare codestreams");
    size_t sot = (size_t)info.header_len;
    size_t parts = 0;
    for (size_t at = sot; at + 12 <= src_len && df_load_u16be(src + at) == J2K_SOT;) {
        uint32_t psot = df_load_u32be(src + at + 6);
        if (psot == 0)  /* the last tile-part runs to EOC (Table A.5) */
            psot = (uint32_t)(src_len - at - (df_load_u16be(src + src_len - 2) == J2K_EOC ? 2 : 0));
        if (psot < 14 || psot > src_len - at)
            return df_fail(err, DF_E_MALFORMED, at, DF_NO_TAG, "tile-part length %u", psot);
        parts++;
        at += psot;
    }
    /* Stlm: ST=2 (16-bit Ttlm), SP=1 (32-bit Ptlm): 6 bytes per tile-part. */
    size_t seg = 2 + 2 + 2 + 6 * parts;
    if (parts == 0 || seg - 2 > 0xFFFF)
        return df_fail(err, DF_E_LIMIT, sot, DF_NO_TAG, "%zu tile-parts for one TLM", parts);
    *n_out = src_len + seg;
    if (dst_len < *n_out)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "the codestream with TLM needs %zu bytes", *n_out);
    memmove(dst + sot + seg, src + sot, src_len - sot);
    if (dst != src)
        memcpy(dst, src, sot);
    uint8_t *t = dst + sot;
    t[0] = 0xFF;
    t[1] = 0x55;
    t[2] = (uint8_t)((seg - 2) >> 8);
    t[3] = (uint8_t)(seg - 2);
    t[4] = 0;     /* Ztlm: the only TLM segment */
    t[5] = 0x60;  /* Stlm */
    t += 6;
    const uint8_t *body = dst + sot + seg;
    size_t body_len = src_len - sot;
    for (size_t at = 0; at + 12 <= body_len && df_load_u16be(body + at) == J2K_SOT;) {
        uint32_t psot = df_load_u32be(body + at + 6);
        if (psot == 0)
            psot = (uint32_t)(body_len - at - (df_load_u16be(body + body_len - 2) == J2K_EOC ? 2 : 0));
        t[0] = body[at + 4];  /* Isot */
        t[1] = body[at + 5];
        t[2] = (uint8_t)(psot >> 24);
        t[3] = (uint8_t)(psot >> 16);
        t[4] = (uint8_t)(psot >> 8);
        t[5] = (uint8_t)psot;
        t += 6;
        at += psot;
    }
    return DF_OK;
}
