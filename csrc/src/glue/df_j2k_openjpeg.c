/* JPEG 2000 through OpenJPEG (>= 2.5, which also decodes HTJ2K code-blocks).
 *
 * OpenJPEG reads and writes through its stream API; the callbacks below work on
 * the caller's buffers, so there are no temporary files and no Python objects.
 * Its messages go to a per-call record that ends up in df_error, never to a
 * terminal. Each call owns its codec, stream and image and frees them before
 * returning, so calls on many threads at once are independent.
 */
#include "dicomfast/df_j2k.h"

#include <openjpeg.h>
#include <stdio.h>

/* ---- messages ---- */

typedef struct opj_messages {
    int n_errors;
    char first[DF_ERROR_DETAIL_LEN];
} opj_messages;

static void on_error(const char *msg, void *client_data) {
    opj_messages *m = (opj_messages *)client_data;
    if (m->n_errors++ == 0 && msg != NULL) {
        /* OpenJPEG ends its messages with a newline; df_error details do not. */
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
            n--;
        if (n >= sizeof m->first)
            n = sizeof m->first - 1;
        memcpy(m->first, msg, n);
        m->first[n] = '\0';
    }
}

/* Warnings and information stay quiet: errors carry what a caller needs. */
static void on_quiet(const char *msg, void *client_data) {
    (void)msg;
    (void)client_data;
}

static void quiet_codec(opj_codec_t *codec, opj_messages *m) {
    opj_set_error_handler(codec, on_error, m);
    opj_set_warning_handler(codec, on_quiet, m);
    opj_set_info_handler(codec, on_quiet, m);
}

static df_status opj_failed(df_error *err, df_status status, const opj_messages *m,
                            const char *what) {
    if (m->n_errors > 0)
        return df_fail(err, status, 0, DF_NO_TAG, "OpenJPEG %s: %s", what, m->first);
    return df_fail(err, status, 0, DF_NO_TAG, "OpenJPEG %s failed", what);
}

/* ---- reading from memory ---- */

typedef struct mem_source {
    const uint8_t *data;
    size_t len;
    size_t pos;
} mem_source;

static OPJ_SIZE_T source_read(void *buf, OPJ_SIZE_T n, void *user) {
    mem_source *s = (mem_source *)user;
    size_t left = s->len - s->pos;
    if (left == 0)
        return (OPJ_SIZE_T)-1;  /* OpenJPEG's end-of-stream answer */
    if (n > left)
        n = left;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return n;
}

static OPJ_OFF_T source_skip(OPJ_OFF_T n, void *user) {
    mem_source *s = (mem_source *)user;
    if (n < 0) {
        if ((uint64_t)(-n) > s->pos)
            return -1;
        s->pos -= (size_t)(-n);
        return n;
    }
    size_t left = s->len - s->pos;
    if ((uint64_t)n > left)
        n = (OPJ_OFF_T)left;
    s->pos += (size_t)n;
    return n > 0 ? n : -1;
}

static OPJ_BOOL source_seek(OPJ_OFF_T at, void *user) {
    mem_source *s = (mem_source *)user;
    if (at < 0 || (uint64_t)at > s->len)
        return OPJ_FALSE;
    s->pos = (size_t)at;
    return OPJ_TRUE;
}

/* ---- writing to the caller's buffer ---- */

/* Bytes past cap are counted but dropped, so a too-small dst still learns the
 * size it needs. */
typedef struct mem_sink {
    uint8_t *dst;
    size_t cap;
    size_t pos;
    size_t end;
} mem_sink;

static OPJ_SIZE_T sink_write(void *buf, OPJ_SIZE_T n, void *user) {
    mem_sink *s = (mem_sink *)user;
    if (s->pos < s->cap) {
        size_t k = n < s->cap - s->pos ? n : s->cap - s->pos;
        memcpy(s->dst + s->pos, buf, k);
    }
    s->pos += n;
    if (s->pos > s->end)
        s->end = s->pos;
    return n;
}

static OPJ_OFF_T sink_skip(OPJ_OFF_T n, void *user) {
    mem_sink *s = (mem_sink *)user;
    if (n < 0 && (uint64_t)(-n) > s->pos)
        return -1;
    s->pos = (size_t)((OPJ_OFF_T)s->pos + n);
    if (s->pos > s->end)
        s->end = s->pos;
    return n;
}

static OPJ_BOOL sink_seek(OPJ_OFF_T at, void *user) {
    mem_sink *s = (mem_sink *)user;
    if (at < 0)
        return OPJ_FALSE;
    s->pos = (size_t)at;
    if (s->pos > s->end)
        s->end = s->pos;
    return OPJ_TRUE;
}

const char *df_j2k_library_version(void) { return opj_version(); }

/* Always set, so that OPJ_NUM_THREADS in the environment does not decide. One
 * thread is 0 to OpenJPEG: a pool of 1 is a real worker thread that the caller
 * hands every code-block to and waits on, the same work plus a context switch
 * per block. Without thread support OpenJPEG refuses and works on this thread. */
static void df_j2k_set_threads(opj_codec_t *codec, uint32_t threads) {
    opj_codec_set_threads(codec, threads > 1 ? (int)threads : 0);
}

/* ---- decoding ---- */

df_status df_j2k_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_j2k_decode_opts *opts, df_error *err) {
    df_j2k_info info;
    df_j2k_plan plan;
    if (n_out != NULL)
        *n_out = 0;
    df_status st = df_j2k_info_read(src, src_len, &info, err);
    if (st != DF_OK)
        return st;
    /* Geometry, features and the output size are settled before OpenJPEG
     * allocates anything for the image: a forged SIZ cannot make it try. */
    st = df_j2k_plan_decode(&info, opts, dst_len, &plan, n_out, err);
    if (st == DF_OK)
        st = df_j2k_check_tile_parts(src, src_len, &info, err);
    if (st != DF_OK)
        return st;

    mem_source in = {src + info.codestream_offset, (size_t)info.codestream_len, 0};
    opj_messages msgs;
    memset(&msgs, 0, sizeof msgs);
    opj_stream_t *stream = NULL;
    opj_image_t *image = NULL;
    opj_codec_t *codec = opj_create_decompress(OPJ_CODEC_J2K);
    if (codec == NULL)
        return df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPEG could not make a decoder");
    quiet_codec(codec, &msgs);

    opj_dparameters_t params;
    opj_set_default_decoder_parameters(&params);
    params.cp_reduce = opts->reduce;
    if (!opj_setup_decoder(codec, &params)) {
        st = opj_failed(err, DF_E_LIBRARY, &msgs, "decoder setup");
        goto done;
    }
    /* Strict: a codestream cut short is an error, not a partly grey image. */
    opj_decoder_set_strict_mode(codec, OPJ_TRUE);
    df_j2k_set_threads(codec, opts->threads);

    size_t chunk = in.len < OPJ_J2K_STREAM_CHUNK_SIZE ? in.len : OPJ_J2K_STREAM_CHUNK_SIZE;
    stream = opj_stream_create(chunk > 0 ? chunk : 1, OPJ_TRUE);
    if (stream == NULL) {
        st = df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPEG could not make a stream");
        goto done;
    }
    opj_stream_set_read_function(stream, source_read);
    opj_stream_set_skip_function(stream, source_skip);
    opj_stream_set_seek_function(stream, source_seek);
    opj_stream_set_user_data(stream, &in, NULL);
    opj_stream_set_user_data_length(stream, in.len);

    if (!opj_read_header(stream, codec, &image)) {
        st = opj_failed(err, DF_E_DECODE, &msgs, "header");
        goto done;
    }
    if (image->numcomps != info.components || image->x1 - image->x0 != info.columns ||
        image->y1 - image->y0 != info.rows) {
        st = df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                     "OpenJPEG read a %u x %u x %u image from a %u x %u x %u header",
                     image->x1 - image->x0, image->y1 - image->y0, image->numcomps,
                     info.columns, info.rows, info.components);
        goto done;
    }
    if (!opj_decode(codec, stream, image) || !opj_end_decompress(codec, stream)) {
        st = opj_failed(err, DF_E_DECODE, &msgs, "decode");
        goto done;
    }
    for (uint32_t c = 0; c < info.components; c++) {
        const opj_image_comp_t *comp = &image->comps[c];
        if (comp->data == NULL || comp->w != plan.width || comp->h != plan.height ||
            comp->prec != info.precision || (uint32_t)comp->sgnd != info.is_signed) {
            st = df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                         "OpenJPEG gave component %u as %u x %u at %u bits, expected "
                         "%u x %u at %u bits", c, comp->w, comp->h, comp->prec, plan.width,
                         plan.height, info.precision);
            goto done;
        }
    }
    df_j2k_store store;
    df_j2k_store_init(&store, &info, opts, plan.sample_bytes);
    size_t n_pixels = (size_t)plan.width * plan.height;
    for (uint32_t c = 0; c < info.components; c++)
        df_j2k_store_samples(&store, image->comps[c].data, n_pixels,
                             dst + (size_t)c * plan.sample_bytes, info.components);
    st = DF_OK;

done:
    if (image != NULL)
        opj_image_destroy(image);
    if (stream != NULL)
        opj_stream_destroy(stream);
    opj_destroy_codec(codec);
    return st;
}

/* ---- encoding ---- */

df_status df_j2k_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_j2k_encode_opts *opts, df_error *err) {
    if (n_out != NULL)
        *n_out = 0;
    df_status st = df_j2k_check_encode(src, src_len, opts, err);
    if (st != DF_OK)
        return st;
    uint32_t n_comps = opts->samples;
    size_t n_pixels = (size_t)opts->rows * opts->columns;

    opj_image_cmptparm_t cparams[4];
    memset(cparams, 0, sizeof cparams);
    for (uint32_t c = 0; c < n_comps; c++) {
        cparams[c].dx = 1;
        cparams[c].dy = 1;
        cparams[c].w = opts->columns;
        cparams[c].h = opts->rows;
        cparams[c].prec = opts->bits_stored;
        cparams[c].sgnd = (OPJ_UINT32)(opts->is_signed != 0);
    }
    OPJ_COLOR_SPACE space = n_comps == 3 ? OPJ_CLRSPC_SRGB
                          : n_comps == 1 ? OPJ_CLRSPC_GRAY : OPJ_CLRSPC_UNSPECIFIED;
    opj_image_t *image = opj_image_create(n_comps, cparams, space);
    if (image == NULL)
        return df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPEG could not make an image");
    image->x0 = 0;
    image->y0 = 0;
    image->x1 = opts->columns;
    image->y1 = opts->rows;
    for (uint32_t c = 0; c < n_comps; c++)
        df_j2k_load_samples(src, c, n_pixels, n_comps, opts->sample_bytes, opts->is_signed,
                            image->comps[c].data);

    opj_cparameters_t params;
    opj_set_default_encoder_parameters(&params);
    params.cod_format = 0;  /* a bare J2K codestream: PS3.5 §A.4.4 */
    params.irreversible = opts->lossless ? 0 : 1;
    params.tcp_mct = (char)(opts->mct ? 1 : 0);
    params.numresolution = (int)df_j2k_default_levels(opts->rows, opts->columns, opts->levels) + 1;
    params.prog_order = (OPJ_PROG_ORDER)opts->progression;
    if (opts->n_layers == 0) {
        /* One layer holding every coded bit: lossless for 5/3, the finest 9/7. */
        params.tcp_numlayers = 1;
        params.tcp_rates[0] = 0;
        params.cp_disto_alloc = 1;
    } else {
        params.tcp_numlayers = (int)opts->n_layers;
        for (uint32_t i = 0; i < opts->n_layers; i++) {
            if (opts->use_psnr)
                params.tcp_distoratio[i] = (float)opts->layers[i];
            else
                params.tcp_rates[i] = (float)opts->layers[i];
        }
        if (opts->use_psnr)
            params.cp_fixed_quality = 1;
        else
            params.cp_disto_alloc = 1;
    }

    opj_messages msgs;
    memset(&msgs, 0, sizeof msgs);
    mem_sink out = {dst, dst != NULL ? dst_len : 0, 0, 0};
    opj_stream_t *stream = NULL;
    opj_codec_t *codec = opj_create_compress(OPJ_CODEC_J2K);
    if (codec == NULL) {
        opj_image_destroy(image);
        return df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPEG could not make an encoder");
    }
    quiet_codec(codec, &msgs);
    if (!opj_setup_encoder(codec, &params, image)) {
        st = opj_failed(err, DF_E_LIBRARY, &msgs, "encoder setup");
        goto done;
    }
    if (opts->tlm) {
        const char *const extra[] = {"TLM=YES", NULL};
        if (!opj_encoder_set_extra_options(codec, extra)) {
            st = opj_failed(err, DF_E_LIBRARY, &msgs, "TLM option");
            goto done;
        }
    }
    df_j2k_set_threads(codec, opts->threads);
    stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_FALSE);
    if (stream == NULL) {
        st = df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPEG could not make a stream");
        goto done;
    }
    opj_stream_set_write_function(stream, sink_write);
    opj_stream_set_skip_function(stream, sink_skip);
    opj_stream_set_seek_function(stream, sink_seek);
    opj_stream_set_user_data(stream, &out, NULL);
    if (!opj_start_compress(codec, image, stream) || !opj_encode(codec, stream) ||
        !opj_end_compress(codec, stream)) {
        st = opj_failed(err, DF_E_LIBRARY, &msgs, "encode");
        goto done;
    }
    if (n_out != NULL)
        *n_out = out.end;
    if (out.end > out.cap)
        st = df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                     "the codestream needs %zu bytes, the output has %zu", out.end, out.cap);
    else
        st = DF_OK;

done:
    if (stream != NULL)
        opj_stream_destroy(stream);
    opj_destroy_codec(codec);
    opj_image_destroy(image);
    return st;
}
