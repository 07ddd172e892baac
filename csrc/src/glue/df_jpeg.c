/* JPEG Baseline / Extended frames (PS3.5 §A.4.1) decoded by libjpeg(-turbo) from memory.
 *
 * libjpeg reports errors through error_exit, which must not return: the error
 * manager here formats the message into the caller's df_error and longjmps back
 * to the one setjmp in df_jpeg_run. Nothing is ever printed. Each call owns its
 * own decompressor, so any number of threads may decode at once.
 */
#include "dicomfast/df_jpeg.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h uses FILE and size_t without including their headers */

#include <jpeglib.h>
/* after jpeglib.h: jconfig.h decides which messages jerror.h declares */
#include <jerror.h>

typedef struct df_jpeg_errmgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    df_error *err;
    df_status status;
    int strict;
    int encoding; /* libjpeg refusing to compress is the caller's parameters, not data */
} df_jpeg_errmgr;

static void df_jpeg_record(j_common_ptr cinfo, df_status status) {
    df_jpeg_errmgr *mgr = (df_jpeg_errmgr *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    mgr->status = df_fail(mgr->err, status, 0, DF_NO_TAG, "libjpeg: %s", msg);
}

static void df_jpeg_error_exit(j_common_ptr cinfo) {
    df_jpeg_errmgr *mgr = (df_jpeg_errmgr *)cinfo->err;
    int code = cinfo->err->msg_code;
    df_status status = mgr->encoding ? DF_E_INVALID_ARG : DF_E_DECODE;
    if (code == JERR_OUT_OF_MEMORY)
        status = DF_E_NO_MEMORY;
    else if (code == JERR_SOF_UNSUPPORTED || code == JERR_BAD_PRECISION ||
             code == JERR_NOT_COMPILED || code == JERR_CONVERSION_NOTIMPL)
        status = DF_E_UNSUPPORTED;
    df_jpeg_record(cinfo, status);
    longjmp(mgr->jump, 1);
}

/* Warnings that mean the decoder had to invent pixels. */
static int df_jpeg_loses_data(int code) {
#ifdef D_ARITH_CODING_SUPPORTED
    if (code == JWRN_ARITH_BAD_CODE)
        return 1;
#endif
    return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC ||
           code == JWRN_HUFF_BAD_CODE;
}

static void df_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    df_jpeg_errmgr *mgr = (df_jpeg_errmgr *)cinfo->err;
    if (msg_level >= 0)
        return; /* trace messages */
    cinfo->err->num_warnings++;
    /* A truncated or damaged entropy-coded segment is always an error: libjpeg
     * would fill the rest of the image with grey. Other warnings (extraneous
     * bytes before a marker, an unknown Adobe transform) leave the pixels intact
     * and only fail in strict mode. */
    if (mgr->strict || df_jpeg_loses_data(cinfo->err->msg_code)) {
        df_jpeg_record(cinfo, DF_E_DECODE);
        longjmp(mgr->jump, 1);
    }
}

static void df_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

/* libjpeg's error manager for one call: nothing printed, errors into err. */
static struct jpeg_error_mgr *df_jpeg_errors(df_jpeg_errmgr *mgr, df_error *err, int strict,
                                             int encoding) {
    memset(mgr, 0, sizeof *mgr);
    jpeg_std_error(&mgr->pub);
    mgr->pub.error_exit = df_jpeg_error_exit;
    mgr->pub.emit_message = df_jpeg_emit_message;
    mgr->pub.output_message = df_jpeg_output_message;
    mgr->err = err;
    mgr->status = encoding ? DF_E_INVALID_ARG : DF_E_DECODE;
    mgr->strict = strict;
    mgr->encoding = encoding;
    return &mgr->pub;
}

/* PS3.5 §8.2.1 leaves the colour space of a three-component JPEG stream to the
 * stream: a JFIF marker means YCbCr, an Adobe APP14 marker's transform flag says
 * YCbCr (1) or none (0), component identifiers 1,2,3 mean YCbCr and 'R','G','B'
 * mean RGB. Only a stream that says none of these falls back to the data set's
 * Photometric Interpretation. */
static void df_jpeg_colour(df_jpeg_info *info, int jfif, int adobe, const uint8_t *ids,
                           const df_jpeg_opts *opts) {
    info->colour_space = DF_JPEG_CS_UNKNOWN;
    info->colour_from = 0;
    if (info->components == 1) {
        info->colour_space = DF_JPEG_CS_GRAY;
        info->colour_from = DF_JPEG_FROM_COMPONENTS;
    } else if (info->components != 3) {
        return;
    } else if (jfif) {
        info->colour_space = DF_JPEG_CS_YBR;
        info->colour_from = DF_JPEG_FROM_JFIF;
    } else if (adobe >= 0) {
        info->colour_space = adobe == 0 ? DF_JPEG_CS_RGB : DF_JPEG_CS_YBR;
        info->colour_from = DF_JPEG_FROM_ADOBE;
    } else if (ids[0] == 1 && ids[1] == 2 && ids[2] == 3) {
        info->colour_space = DF_JPEG_CS_YBR;
        info->colour_from = DF_JPEG_FROM_IDS;
    } else if ((ids[0] == 'R' && ids[1] == 'G' && ids[2] == 'B') ||
               (ids[0] == 'r' && ids[1] == 'g' && ids[2] == 'b')) {
        info->colour_space = DF_JPEG_CS_RGB;
        info->colour_from = DF_JPEG_FROM_IDS;
    } else {
        info->colour_space =
            opts != NULL && opts->hint == DF_JPEG_CS_RGB ? DF_JPEG_CS_RGB : DF_JPEG_CS_YBR;
        info->colour_from = DF_JPEG_FROM_HINT;
    }
}

/* Walk the marker segments (ISO/IEC 10918-1 §B.1.1) from SOI to the first SOS
 * through the bounds-checked cursor: the frame header and the colour evidence,
 * read the same way whatever precision this build's libjpeg decodes. */
df_status df_jpeg_read_info(const uint8_t *src, size_t src_len, df_jpeg_info *info,
                            const df_jpeg_opts *opts, df_error *err) {
    df_cursor c;
    int jfif = 0, adobe = -1, have_sof = 0;
    uint8_t ids[3] = {0, 0, 0};

    df_error_clear(err);
    memset(info, 0, sizeof *info);
    df_cursor_init(&c, src, src == NULL ? 0 : src_len);
    if (!df_cursor_has(&c, 2) || src[0] != 0xFF || src[1] != 0xD8)
        return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG, "no JPEG SOI marker at the frame start");
    c.pos = 2;
    for (;;) {
        if (!df_cursor_has(&c, 2))
            return df_fail(err, DF_E_DECODE, c.pos, DF_NO_TAG,
                           "the JPEG stream ends before its first scan");
        /* Find the next marker as libjpeg does (next_marker in jdmarker.c): skip
         * bytes other than 0xFF, then fill bytes (§B.1.1.2); 0xFF 0x00 is a stuffed
         * zero, not a marker, and is skipped too. libjpeg warns about the skipped
         * bytes; that is an error only in strict mode (df_jpeg_emit_message). Any
         * other reading could put a different frame header in front of the decoder
         * than the one this function reports. */
        size_t from = c.pos;
        while (df_cursor_has(&c, 1) && src[c.pos] != 0xFF)
            c.pos++;
        int skipped = c.pos != from;
        while (df_cursor_has(&c, 2) && src[c.pos + 1] == 0xFF)
            c.pos++;
        if (!df_cursor_has(&c, 2))
            continue;
        if (src[c.pos + 1] == 0x00) {
            c.pos += 2;
            if (opts != NULL && opts->strict)
                return df_fail(err, DF_E_DECODE, from, DF_NO_TAG,
                               "bytes that are not a JPEG marker at offset %zu", from);
            continue;
        }
        if (skipped && opts != NULL && opts->strict)
            return df_fail(err, DF_E_DECODE, from, DF_NO_TAG,
                           "byte 0x%02X where a JPEG marker should start", src[from]);
        uint8_t m = src[c.pos + 1];
        size_t at = c.pos;
        c.pos += 2;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* TEM and RSTn have no length */
        if (m == 0xD9)
            return df_fail(err, DF_E_DECODE, at, DF_NO_TAG, "JPEG EOI before any scan");
        if (!df_cursor_has(&c, 2))
            return df_fail(err, DF_E_DECODE, c.pos, DF_NO_TAG, "JPEG marker length missing");
        size_t len = df_load_u16be(src + c.pos);
        if (len < 2 || !df_cursor_has(&c, len))
            return df_fail(err, DF_E_DECODE, at, DF_NO_TAG,
                           "JPEG marker 0xFF%02X segment of %zu bytes exceeds the %zu left", m,
                           len, df_cursor_remaining(&c));
        const uint8_t *seg = src + c.pos + 2;
        size_t n = len - 2;
        c.pos += len;
        if (m == 0xDA)
            break;
        if (m == 0xE0 && n >= 5 && memcmp(seg, "JFIF\0", 5) == 0) {
            jfif = 1;
        } else if (m == 0xEE && n >= 12 && memcmp(seg, "Adobe", 5) == 0) {
            adobe = seg[11];
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (have_sof)
                return df_fail(err, DF_E_DECODE, at, DF_NO_TAG, "a second JPEG frame header");
            if (n < 6 || n < 6 + 3 * (size_t)seg[5])
                return df_fail(err, DF_E_DECODE, at, DF_NO_TAG, "JPEG frame header too short");
            have_sof = 1;
            info->sof = (uint32_t)(m - 0xC0);
            info->precision = seg[0];
            info->rows = df_load_u16be(seg + 1);
            info->columns = df_load_u16be(seg + 3);
            info->components = seg[5];
            for (size_t k = 0; k < 3 && k < info->components; k++)
                ids[k] = seg[6 + 3 * k];
        }
    }
    if (!have_sof)
        return df_fail(err, DF_E_DECODE, c.pos, DF_NO_TAG, "JPEG scan before any frame header");
    df_jpeg_colour(info, jfif, adobe, ids, opts);
    return DF_OK;
}

/* Everything after the setjmp: a separate function keeps its locals out of the
 * reach of longjmp (C11 §7.13.2.1). */
static df_status df_jpeg_work(struct jpeg_decompress_struct *ci, const uint8_t *src,
                              size_t src_len, uint8_t *dst, size_t dst_len, size_t *n_out,
                              const df_jpeg_info *info, const df_jpeg_opts *opts,
                              df_error *err) {
    jpeg_mem_src(ci, src, (unsigned long)src_len);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK)
        return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG, "the JPEG stream has no image");
    ci->jpeg_color_space = info->colour_space == DF_JPEG_CS_RGB   ? JCS_RGB
                           : info->colour_space == DF_JPEG_CS_YBR ? JCS_YCbCr
                                                                  : ci->jpeg_color_space;
    if (info->colour_space == DF_JPEG_CS_YBR && opts != NULL && opts->keep_ybr)
        ci->out_color_space = JCS_YCbCr;
    else if (info->colour_space != DF_JPEG_CS_GRAY)
        ci->out_color_space = JCS_RGB;
    ci->dct_method = JDCT_ISLOW; /* the accurate integer IDCT; the fast ones lose precision */

    jpeg_start_decompress(ci);
    size_t row_bytes = (size_t)ci->output_width * (size_t)ci->output_components;
    size_t need = row_bytes * ci->output_height;
    *n_out = need;
    if (dst_len < need)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "the JPEG frame needs %zu bytes, the output holds %zu", need, dst_len);
    JSAMPROW rows[16];
    while (ci->output_scanline < ci->output_height) {
        JDIMENSION left = ci->output_height - ci->output_scanline;
        JDIMENSION n = left < 16 ? left : 16;
        for (JDIMENSION k = 0; k < n; k++)
            rows[k] = dst + (size_t)(ci->output_scanline + k) * row_bytes;
        if (jpeg_read_scanlines(ci, rows, n) == 0)
            return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                           "libjpeg returned no scanline at row %u", ci->output_scanline);
    }
    jpeg_finish_decompress(ci);
    return DF_OK;
}

#define DF_STR2(x) #x
#define DF_STR(x) DF_STR2(x)

int df_jpeg_max_precision(void) { return BITS_IN_JSAMPLE; }

const char *df_jpeg_library(void) {
#ifdef LIBJPEG_TURBO_VERSION
    return "libjpeg-turbo " DF_STR(LIBJPEG_TURBO_VERSION);
#else
    return "libjpeg " DF_STR(JPEG_LIB_VERSION);
#endif
}

/* The one setjmp: on a libjpeg error, df_jpeg_error_exit returns here. */
static df_status df_jpeg_run(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                             size_t *n_out, const df_jpeg_info *info, const df_jpeg_opts *opts,
                             df_error *err) {
    struct jpeg_decompress_struct cinfo;
    df_jpeg_errmgr mgr;
    df_status status;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = df_jpeg_errors(&mgr, err, opts != NULL && opts->strict, 0);
    if (setjmp(mgr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return mgr.status;
    }
    jpeg_create_decompress(&cinfo);
    status = df_jpeg_work(&cinfo, src, src_len, dst, dst_len, n_out, info, opts, err);
    jpeg_destroy_decompress(&cinfo);
    return status;
}

df_status df_jpeg_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, const df_jpeg_opts *opts, df_error *err) {
    df_jpeg_info info;
    df_status status;

    *n_out = 0;
    status = df_jpeg_read_info(src, src_len, &info, opts, err);
    if (status != DF_OK)
        return status;
    if (info.precision != BITS_IN_JSAMPLE)
        return df_fail(err, DF_E_UNSUPPORTED, 0, DF_NO_TAG,
                       "%u-bit JPEG samples: %s decodes %d-bit samples only", info.precision,
                       df_jpeg_library(), BITS_IN_JSAMPLE);
    if (info.components != 1 && info.components != 3)
        return df_fail(err, DF_E_UNSUPPORTED, 0, DF_NO_TAG,
                       "a JPEG stream with %u components (DICOM allows 1 or 3)", info.components);
    if (src_len > (size_t)(unsigned long)-1)
        return df_fail(err, DF_E_LIMIT, 0, DF_NO_TAG, "JPEG stream too large");
    return df_jpeg_run(src, src_len, dst, dst == NULL ? 0 : dst_len, n_out, &info, opts, err);
}

/* -- encoding ---------------------------------------------------------------------- */

/* A destination in the caller's buffer: when it is full, the encode stops with
 * DF_E_OUTPUT_TOO_SMALL (the caller retries with more) rather than allocating. */
typedef struct df_jpeg_dest {
    struct jpeg_destination_mgr pub;
    uint8_t *buf;
    size_t len;
} df_jpeg_dest;

static void df_jpeg_dest_init(j_compress_ptr ci) {
    df_jpeg_dest *d = (df_jpeg_dest *)ci->dest;
    d->pub.next_output_byte = d->buf;
    d->pub.free_in_buffer = d->len;
}

static boolean df_jpeg_dest_full(j_compress_ptr ci) {
    df_jpeg_errmgr *mgr = (df_jpeg_errmgr *)ci->err;
    df_jpeg_dest *d = (df_jpeg_dest *)ci->dest;
    mgr->status = df_fail(mgr->err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                          "the JPEG stream needs more than %zu bytes", d->len);
    longjmp(mgr->jump, 1);
    return FALSE; /* not reached */
}

static void df_jpeg_dest_term(j_compress_ptr ci) { (void)ci; }

static df_status df_jpeg_compress(struct jpeg_compress_struct *ci, const uint8_t *src,
                                  df_jpeg_dest *dest, size_t *n_out,
                                  const df_jpeg_enc_opts *o) {
    ci->dest = &dest->pub;
    ci->image_width = o->columns;
    ci->image_height = o->rows;
    ci->input_components = (int)o->components;
    ci->in_color_space = o->components == 1 ? JCS_GRAYSCALE : o->input_ybr ? JCS_YCbCr : JCS_RGB;
    jpeg_set_defaults(ci); /* YCbCr in the stream for colour, 4:2:0 until set below */
    jpeg_set_quality(ci, (int)o->quality, TRUE);
    ci->optimize_coding = TRUE;
    ci->dct_method = JDCT_ISLOW;
    if (o->components == 3) {
        /* h2v1: the chroma halved across the rows only, which YBR_FULL_422 names
         * (PS3.3 C.7.6.3.1.2); h1v1 keeps it whole (YBR_FULL). */
        ci->comp_info[0].h_samp_factor = o->subsample ? 2 : 1;
        ci->comp_info[0].v_samp_factor = 1;
        for (int k = 1; k < 3; k++) {
            ci->comp_info[k].h_samp_factor = 1;
            ci->comp_info[k].v_samp_factor = 1;
        }
    }
    jpeg_start_compress(ci, TRUE);
    size_t row_bytes = (size_t)o->columns * o->components;
    JSAMPROW rows[16];
    while (ci->next_scanline < ci->image_height) {
        JDIMENSION left = ci->image_height - ci->next_scanline;
        JDIMENSION n = left < 16 ? left : 16;
        for (JDIMENSION k = 0; k < n; k++)
            rows[k] = (JSAMPROW)(src + (size_t)(ci->next_scanline + k) * row_bytes);
        jpeg_write_scanlines(ci, rows, n);
    }
    jpeg_finish_compress(ci);
    *n_out = dest->len - dest->pub.free_in_buffer;
    return DF_OK;
}

df_status df_jpeg_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, const df_jpeg_enc_opts *opts, df_error *err) {
    struct jpeg_compress_struct cinfo;
    df_jpeg_errmgr mgr;
    df_jpeg_dest dest;
    df_status status;

    *n_out = 0;
    df_error_clear(err);
    if (opts->rows == 0 || opts->columns == 0 || opts->rows > JPEG_MAX_DIMENSION ||
        opts->columns > JPEG_MAX_DIMENSION || (opts->components != 1 && opts->components != 3))
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "baseline JPEG encodes 1 or 3 components of 1..%d x 1..%d, not %u x %u"
                       " x %u", JPEG_MAX_DIMENSION, JPEG_MAX_DIMENSION, opts->columns,
                       opts->rows, opts->components);
    if (opts->quality < 1 || opts->quality > 100)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG, "JPEG quality is 1 to 100, not %u",
                       opts->quality);
    if (src == NULL || src_len != (size_t)opts->rows * opts->columns * opts->components)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%zu bytes for a %u x %u x %u frame of 8-bit samples", src_len,
                       opts->columns, opts->rows, opts->components);
    memset(&cinfo, 0, sizeof cinfo);
    memset(&dest, 0, sizeof dest);
    dest.pub.init_destination = df_jpeg_dest_init;
    dest.pub.empty_output_buffer = df_jpeg_dest_full;
    dest.pub.term_destination = df_jpeg_dest_term;
    dest.buf = dst;
    dest.len = dst == NULL ? 0 : dst_len;
    cinfo.err = df_jpeg_errors(&mgr, err, 0, 1);
    if (setjmp(mgr.jump)) {
        jpeg_destroy_compress(&cinfo);
        return mgr.status;
    }
    jpeg_create_compress(&cinfo);
    status = df_jpeg_compress(&cinfo, src, &dest, n_out, opts);
    jpeg_destroy_compress(&cinfo);
    return status;
}
