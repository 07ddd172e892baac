/* JPEG-LS frames (PS3.5 §A.4.3) decoded by CharLS's C API from memory.
 *
 * One CharLS decoder per call: CharLS keeps no global state, so calls on many
 * threads at once are safe. CharLS reports failures as error codes, never on a
 * stream; the message for a code is copied into the caller's df_error.
 */
#include "dicomfast/df_jpegls.h"

#include <stdlib.h>

#include <charls/charls.h>

#define DF_STR2(x) #x
#define DF_STR(x) DF_STR2(x)

const char *df_jpegls_library(void) {
    return "CharLS " DF_STR(CHARLS_VERSION_MAJOR) "." DF_STR(CHARLS_VERSION_MINOR) "." DF_STR(
        CHARLS_VERSION_PATCH);
}

static df_status df_jpegls_fail(df_error *err, charls_jpegls_errc ec, const char *during) {
    df_status status = DF_E_DECODE;
    switch (ec) {
    case CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY:
        status = DF_E_NO_MEMORY;
        break;
    case CHARLS_JPEGLS_ERRC_PARAMETER_VALUE_NOT_SUPPORTED:
    case CHARLS_JPEGLS_ERRC_BIT_DEPTH_FOR_TRANSFORM_NOT_SUPPORTED:
    case CHARLS_JPEGLS_ERRC_COLOR_TRANSFORM_NOT_SUPPORTED:
    case CHARLS_JPEGLS_ERRC_ENCODING_NOT_SUPPORTED:
    case CHARLS_JPEGLS_ERRC_JPEGLS_PRESET_EXTENDED_PARAMETER_TYPE_NOT_SUPPORTED:
        status = DF_E_UNSUPPORTED;
        break;
    default:
        break;
    }
    return df_fail(err, status, 0, DF_NO_TAG, "CharLS, %s: %s (code %d)", during,
                   charls_get_error_message(ec), (int)ec);
}

/* Create a decoder over src and read the header; *dec is NULL on failure. */
static df_status df_jpegls_open(const uint8_t *src, size_t src_len, charls_jpegls_decoder **dec,
                                df_jpegls_info *info, df_error *err) {
    charls_frame_info fi;
    charls_interleave_mode ilv = CHARLS_INTERLEAVE_MODE_NONE;
    charls_color_transformation ct = CHARLS_COLOR_TRANSFORMATION_NONE;
    int32_t near = 0;
    charls_jpegls_errc ec;

    *dec = NULL;
    memset(info, 0, sizeof *info);
    if (src == NULL || src_len < 4)
        return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                       "a JPEG-LS stream of %zu bytes is too short", src_len);
    charls_jpegls_decoder *d = charls_jpegls_decoder_create();
    if (d == NULL)
        return df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "CharLS could not create a decoder");
    ec = charls_jpegls_decoder_set_source_buffer(d, src, src_len);
    if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        ec = charls_jpegls_decoder_read_header(d);
    if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        ec = charls_jpegls_decoder_get_frame_info(d, &fi);
    if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        ec = charls_jpegls_decoder_get_near_lossless(d, 0, &near);
    if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        ec = charls_jpegls_decoder_get_interleave_mode(d, &ilv);
    if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        ec = charls_jpegls_decoder_get_color_transformation(d, &ct);
    if (ec != CHARLS_JPEGLS_ERRC_SUCCESS) {
        charls_jpegls_decoder_destroy(d);
        return df_jpegls_fail(err, ec, "reading the header");
    }
    info->rows = fi.height;
    info->columns = fi.width;
    info->components = (uint32_t)fi.component_count;
    info->precision = (uint32_t)fi.bits_per_sample;
    info->near_lossless = (uint32_t)near;
    info->interleave = (uint32_t)ilv;
    info->colour_transform = (uint32_t)ct;
    *dec = d;
    return DF_OK;
}

df_status df_jpegls_read_info(const uint8_t *src, size_t src_len, df_jpegls_info *info,
                              const df_jpegls_opts *opts, df_error *err) {
    charls_jpegls_decoder *dec;
    (void)opts;
    df_error_clear(err);
    df_status status = df_jpegls_open(src, src_len, &dec, info, err);
    if (dec != NULL)
        charls_jpegls_decoder_destroy(dec);
    return status;
}

/* Planes (ILV 0, ISO/IEC 14495-1 §A.2.1) -> pixel-interleaved samples. */
static void df_jpegls_interleave(const uint8_t *planes, uint8_t *dst, size_t pixels,
                                 size_t components, size_t width) {
    for (size_t c = 0; c < components; c++) {
        const uint8_t *plane = planes + c * pixels * width;
        uint8_t *out = dst + c * width;
        if (width == 1) {
            for (size_t i = 0; i < pixels; i++)
                out[i * components] = plane[i];
        } else {
            for (size_t i = 0; i < pixels; i++)
                memcpy(out + i * components * 2, plane + i * 2, 2);
        }
    }
}

df_status df_jpegls_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                           size_t *n_out, const df_jpegls_opts *opts, df_error *err) {
    charls_jpegls_decoder *dec;
    df_jpegls_info info;
    charls_jpegls_errc ec;
    (void)opts;

    *n_out = 0;
    df_error_clear(err);
    df_status status = df_jpegls_open(src, src_len, &dec, &info, err);
    if (status != DF_OK)
        return status;
    size_t width = info.precision > 8 ? 2 : 1;
    size_t pixels = (size_t)info.rows * info.columns;
    size_t need = pixels * info.components * width;
    *n_out = need;
    if (dst == NULL || dst_len < need) {
        charls_jpegls_decoder_destroy(dec);
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                       "the JPEG-LS frame needs %zu bytes, the output holds %zu", need,
                       dst == NULL ? 0 : dst_len);
    }
    if (info.components > 1 && info.interleave == CHARLS_INTERLEAVE_MODE_NONE) {
        /* CharLS writes one plane after another for non-interleaved scans. */
        uint8_t *planes = malloc(need);
        if (planes == NULL) {
            charls_jpegls_decoder_destroy(dec);
            return df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG,
                           "no memory for %zu bytes of JPEG-LS planes", need);
        }
        ec = charls_jpegls_decoder_decode_to_buffer(dec, planes, need, 0);
        if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
            df_jpegls_interleave(planes, dst, pixels, info.components, width);
        free(planes);
    } else {
        /* Line- and sample-interleaved scans come out pixel-interleaved. */
        ec = charls_jpegls_decoder_decode_to_buffer(dec, dst, need, 0);
    }
    charls_jpegls_decoder_destroy(dec);
    if (ec != CHARLS_JPEGLS_ERRC_SUCCESS)
        return df_jpegls_fail(err, ec, "decoding");
    return DF_OK;
}

/* -- encoding ---------------------------------------------------------------------- */

static df_status df_jpegls_check_enc(const df_jpegls_enc_opts *o, df_error *err) {
    if (o->rows == 0 || o->columns == 0 || o->rows > 65535 || o->columns > 65535 ||
        (o->components != 1 && o->components != 3))
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "JPEG-LS encodes 1 or 3 components of 1..65535 x 1..65535, not %u x %u "
                       "x %u", o->columns, o->rows, o->components);
    if (o->precision < 2 || o->precision > 16)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "JPEG-LS samples have 2 to 16 bits (ISO/IEC 14495-1 §A.1), not %u",
                       o->precision);
    if (o->sample_bytes != (o->precision <= 8 ? 1u : 2u) && o->sample_bytes != 2)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%u-bit samples do not come in %u byte(s)", o->precision,
                       o->sample_bytes);
    return DF_OK;
}

static charls_jpegls_encoder *df_jpegls_encoder(const df_jpegls_enc_opts *o,
                                                 charls_jpegls_errc *ec) {
    charls_jpegls_encoder *e = charls_jpegls_encoder_create();
    if (e == NULL) {
        *ec = CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    charls_frame_info fi = {o->columns, o->rows, (int32_t)o->precision, (int32_t)o->components};
    *ec = charls_jpegls_encoder_set_frame_info(e, &fi);
    if (*ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        *ec = charls_jpegls_encoder_set_near_lossless(e, (int32_t)o->near);
    if (*ec == CHARLS_JPEGLS_ERRC_SUCCESS && o->components == 3)
        *ec = charls_jpegls_encoder_set_interleave_mode(e, CHARLS_INTERLEAVE_MODE_SAMPLE);
    if (*ec != CHARLS_JPEGLS_ERRC_SUCCESS) {
        charls_jpegls_encoder_destroy(e);
        return NULL;
    }
    return e;
}

size_t df_jpegls_encode_bound(const df_jpegls_enc_opts *opts) {
    df_error err;
    charls_jpegls_errc ec;
    size_t size = 0;
    if (df_jpegls_check_enc(opts, &err) != DF_OK)
        return 0;
    charls_jpegls_encoder *e = df_jpegls_encoder(opts, &ec);
    if (e == NULL)
        return 0;
    if (charls_jpegls_encoder_get_estimated_destination_size(e, &size) !=
        CHARLS_JPEGLS_ERRC_SUCCESS)
        size = 0;
    charls_jpegls_encoder_destroy(e);
    return size;
}

/* Check every sample against the precision (JPEG-LS has no way to say a sample is
 * out of range: CharLS would code garbage) and, into tmp when given, write what
 * CharLS takes: the low P bits (two's complement for signed samples, PS3.5 §A.4.3),
 * one byte each up to 8 bits, else two. */
static df_status df_jpegls_samples(const uint8_t *src, size_t count,
                                   const df_jpegls_enc_opts *o, uint8_t *tmp, df_error *err) {
    const uint32_t p = o->precision, mask = (1u << p) - 1u;
    int32_t lo = o->is_signed ? -(int32_t)(1u << (p - 1)) : 0;
    int32_t hi = o->is_signed ? (int32_t)(1u << (p - 1)) - 1 : (int32_t)mask;
    if (o->is_signed && o->near > 0 && o->near < (1u << (p - 1))) {
        /* NEAR bounds the error of the unsigned P-bit codes, where the largest and the
         * most negative signed sample are neighbours: a sample within NEAR of either
         * end could come back as the other end. */
        lo += (int32_t)o->near;
        hi -= (int32_t)o->near;
    }
    const int narrow = p <= 8;
    for (size_t i = 0; i < count; i++) {
        int32_t v;
        if (o->sample_bytes == 1) {
            v = o->is_signed ? (int32_t)(int8_t)src[i] : (int32_t)src[i];
        } else {
            uint16_t u;
            memcpy(&u, src + 2 * i, 2);
            v = o->is_signed ? (int32_t)(int16_t)u : (int32_t)u;
        }
        if (v < lo || v > hi)
            return df_fail(err, DF_E_INVALID_ARG, (uint64_t)(i * o->sample_bytes), DF_NO_TAG,
                           "sample %zu is %d, outside the %u-bit %s range %d..%d%s", i,
                           (int)v, p, o->is_signed ? "signed" : "unsigned", (int)lo, (int)hi,
                           o->is_signed && o->near ? " that near-lossless coding keeps" : "");
        if (tmp != NULL) {
            uint32_t s = (uint32_t)v & mask;
            if (narrow) {
                tmp[i] = (uint8_t)s;
            } else {
                uint16_t w = (uint16_t)s;
                memcpy(tmp + 2 * i, &w, 2);
            }
        }
    }
    return DF_OK;
}

df_status df_jpegls_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                           size_t *n_out, const df_jpegls_enc_opts *opts, df_error *err) {
    charls_jpegls_errc ec;
    uint8_t *tmp = NULL;
    *n_out = 0;
    df_error_clear(err);
    df_status st = df_jpegls_check_enc(opts, err);
    if (st != DF_OK)
        return st;
    size_t count = (size_t)opts->rows * opts->columns * opts->components;
    if (src == NULL || src_len != count * opts->sample_bytes)
        return df_fail(err, DF_E_INVALID_ARG, 0, DF_NO_TAG,
                       "%zu bytes for %zu samples of %u byte(s)", src_len, count,
                       opts->sample_bytes);
    /* CharLS reads 1 byte per sample up to 8 bits and 2 above, unsigned: samples in
     * another width or signed go through a copy. */
    size_t charls_bytes = opts->precision <= 8 ? 1 : 2;
    if (opts->is_signed || charls_bytes != opts->sample_bytes) {
        tmp = malloc(count * charls_bytes);
        if (tmp == NULL)
            return df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG,
                           "no memory for %zu JPEG-LS samples", count);
    }
    st = df_jpegls_samples(src, count, opts, tmp, err);
    if (st != DF_OK) {
        free(tmp);
        return st;
    }
    charls_jpegls_encoder *e = df_jpegls_encoder(opts, &ec);
    if (e != NULL) {
        ec = charls_jpegls_encoder_set_destination_buffer(e, dst, dst_len);
        if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
            ec = charls_jpegls_encoder_encode_from_buffer(e, tmp != NULL ? tmp : src,
                                                          count * charls_bytes, 0);
        if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
            ec = charls_jpegls_encoder_get_bytes_written(e, n_out);
        charls_jpegls_encoder_destroy(e);
    }
    free(tmp);
    if (ec == CHARLS_JPEGLS_ERRC_SUCCESS)
        return DF_OK;
    *n_out = 0;
    /* The frame was checked above: what CharLS still refuses is a parameter (NEAR too
     * large for the precision, ...), or memory. */
    return df_fail(err, ec == CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY ? DF_E_NO_MEMORY
                                                                  : DF_E_INVALID_ARG,
                   0, DF_NO_TAG, "CharLS, encoding: %s (code %d)",
                   charls_get_error_message(ec), (int)ec);
}
