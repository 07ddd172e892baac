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
