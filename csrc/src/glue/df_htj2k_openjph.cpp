/* HTJ2K (ISO/IEC 15444-15) through OpenJPH, behind the C API of df_j2k.h.
 *
 * OpenJPH reports an error by printing it to a stdio stream it keeps in a global
 * and then throwing; its configure_error() hook does nothing in the 0.9 series,
 * so the streams are the only lever. They are pointed, once per process, at a
 * stream that writes nowhere: on glibc a fopencookie() stream whose writes land
 * in a thread-local buffer, so the thread that hit the error reads its own
 * message back into df_error. Nothing reaches a terminal. Every call owns its
 * codestream object, and C++ exceptions never cross into C.
 */
#include "dicomfast/df_j2k.h"

#include <openjph/ojph_arch.h>
#include <openjph/ojph_defs.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_message.h>
#include <openjph/ojph_params.h>
#include <openjph/ojph_version.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <vector>

namespace {

thread_local char t_message[DF_ERROR_DETAIL_LEN];
thread_local size_t t_message_len;

#if defined(__GLIBC__)
ssize_t capture_write(void *, const char *buf, size_t n) {
    size_t room = sizeof t_message - 1 - t_message_len;
    size_t k = n < room ? n : room;
    std::memcpy(t_message + t_message_len, buf, k);
    t_message_len += k;
    t_message[t_message_len] = '\0';
    return (ssize_t)n;
}

std::FILE *make_quiet_stream() {
    cookie_io_functions_t io = {nullptr, capture_write, nullptr, nullptr};
    std::FILE *f = fopencookie(nullptr, "w", io);
    if (f != nullptr)
        std::setvbuf(f, nullptr, _IONBF, 0);  /* each message written by its own thread */
    return f;
}
#else
std::FILE *make_quiet_stream() {
#if defined(_WIN32)
    return std::fopen("NUL", "w");
#else
    return std::fopen("/dev/null", "w");
#endif
}
#endif

void quiet_openjph() {
    static std::once_flag once;
    std::call_once(once, [] {
        /* A null stream would make OpenJPH print through a null FILE*, so when
         * no quiet stream can be had its defaults stay. */
        std::FILE *f = make_quiet_stream();
        if (f != nullptr) {
            ojph::set_error_stream(f);
            ojph::set_warning_stream(f);
            ojph::set_info_stream(f);
        }
    });
    t_message_len = 0;
    t_message[0] = '\0';
}

df_status openjph_failed(df_error *err, df_status status, const char *what) {
    size_t n = t_message_len;
    while (n > 0 && (t_message[n - 1] == '\n' || t_message[n - 1] == '\r'))
        n--;
    t_message[n] = '\0';
    if (n == 0)
        return df_fail(err, status, 0, DF_NO_TAG, "OpenJPH %s failed", what);
    return df_fail(err, status, 0, DF_NO_TAG, "OpenJPH %s: %s", what, t_message);
}

const char *progression_name(int progression) {
    static const char *const names[] = {"LRCP", "RLCP", "RPCL", "PCRL", "CPRL"};
    return names[progression];
}

df_status decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                 size_t *n_out, const df_j2k_decode_opts *opts, df_error *err) {
    df_j2k_info info;
    df_j2k_plan plan;
    df_status st = df_j2k_info_read(src, src_len, &info, err);
    if (st != DF_OK)
        return st;
    st = df_j2k_plan_decode(&info, opts, dst_len, &plan, n_out, err);
    if (st != DF_OK)
        return st;
    if (!info.htj2k)
        return df_fail(err, DF_E_UNSUPPORTED, info.codestream_offset, DF_NO_TAG,
                       "OpenJPH decodes HTJ2K codestreams; this one uses Part 1 code-blocks");
    /* OpenJPH asserts, rather than reports, quantisation that does not fit the
     * decomposition levels, and reads irreversible step sizes only when each
     * subband has its own. Checked over every COC and QCC at once: stricter than
     * the standard's per-component pairing, never looser. */
    uint32_t wanted_style = info.reversible ? 0u : 2u;
    if (info.quant_styles != (1u << wanted_style))
        return df_fail(err, DF_E_UNSUPPORTED, info.codestream_offset, DF_NO_TAG,
                       "OpenJPH needs %s quantisation for the %s wavelet; QCD/QCC styles "
                       "(bit mask) 0x%x", info.reversible ? "no" : "expounded",
                       info.reversible ? "5/3" : "9/7", info.quant_styles);
    if (info.min_quant_bands < 3 * info.max_levels + 1)
        return df_fail(err, DF_E_DECODE, info.codestream_offset, DF_NO_TAG,
                       "QCD/QCC give %u subbands, %u decomposition levels need %u",
                       info.min_quant_bands, info.max_levels, 3 * info.max_levels + 1);
    st = df_j2k_check_tile_parts(src, src_len, &info, err);
    if (st != DF_OK)
        return st;

    ojph::mem_infile file;
    file.open(src + info.codestream_offset, (size_t)info.codestream_len);
    ojph::codestream cs;
    cs.read_headers(&file);
    cs.restrict_input_resolution(opts->reduce, opts->reduce);
    ojph::param_siz siz = cs.access_siz();
    if (siz.get_num_components() != info.components)
        return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG, "OpenJPH read %u components, not %u",
                       siz.get_num_components(), info.components);
    for (uint32_t c = 0; c < info.components; c++) {
        if (siz.get_recon_width(c) != plan.width || siz.get_recon_height(c) != plan.height ||
            siz.get_bit_depth(c) != info.precision)
            return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                           "OpenJPH gives component %u as %u x %u at %u bits, expected "
                           "%u x %u at %u bits", c, siz.get_recon_width(c),
                           siz.get_recon_height(c), siz.get_bit_depth(c), plan.width,
                           plan.height, info.precision);
    }
    cs.set_planar(false);
    cs.create();

    df_j2k_store store;
    df_j2k_store_init(&store, &info, opts, plan.sample_bytes);
    const size_t pixel_bytes = (size_t)plan.sample_bytes * info.components;
    const size_t row_bytes = pixel_bytes * plan.width;
    std::vector<uint32_t> rows(info.components, 0);  /* next row of each component */
    const uint64_t total = (uint64_t)plan.height * info.components;
    for (uint64_t k = 0; k < total; k++) {
        ojph::ui32 comp = 0;
        ojph::line_buf *line = cs.pull(comp);
        if (line == nullptr || comp >= info.components || rows[comp] >= plan.height ||
            line->size < plan.width)
            return df_fail(err, DF_E_DECODE, 0, DF_NO_TAG,
                           "OpenJPH returned an unexpected line for component %u", comp);
        uint8_t *out = dst + (size_t)rows[comp]++ * row_bytes + (size_t)comp * plan.sample_bytes;
        df_j2k_store_samples(&store, line->i32, plan.width, out, info.components);
    }
    cs.close();
    return DF_OK;
}

df_status encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                 size_t *n_out, const df_j2k_encode_opts *opts, df_error *err) {
    df_status st = df_j2k_check_encode(src, src_len, opts, err);
    if (st != DF_OK)
        return st;
    const uint32_t n = opts->samples, width = opts->columns;
    ojph::codestream cs;
    ojph::param_siz siz = cs.access_siz();
    siz.set_image_extent(ojph::point(width, opts->rows));
    siz.set_num_components(n);
    for (uint32_t c = 0; c < n; c++)
        siz.set_component(c, ojph::point(1, 1), opts->bits_stored, opts->is_signed != 0);
    siz.set_image_offset(ojph::point(0, 0));
    siz.set_tile_size(ojph::size(width, opts->rows));
    siz.set_tile_offset(ojph::point(0, 0));
    ojph::param_cod cod = cs.access_cod();
    cod.set_num_decomposition(df_j2k_default_levels(opts->rows, width, opts->levels));
    cod.set_block_dims(64, 64);
    cod.set_progression_order(progression_name(opts->progression));
    cod.set_color_transform(opts->mct != 0);
    cod.set_reversible(opts->lossless != 0);
    if (!opts->lossless && opts->qstep > 0.0f)
        cs.access_qcd().set_irrev_quant(opts->qstep);
    cs.set_planar(false);

    ojph::mem_outfile file;
    file.open();
    cs.write_headers(&file);
    ojph::ui32 comp = 0;
    ojph::line_buf *line = cs.exchange(nullptr, comp);
    for (uint32_t y = 0; y < opts->rows; y++) {
        for (uint32_t c = 0; c < n; c++) {
            df_j2k_load_samples(src, (size_t)y * width * n + comp, width, n, opts->sample_bytes,
                                opts->is_signed, line->i32);
            line = cs.exchange(line, comp);
        }
    }
    cs.flush();
    /* close() releases the memory file, so copy the codestream out first. */
    const uint8_t *data = file.get_data();
    size_t size = (size_t)file.tell();
    if (opts->tlm) {
        st = df_j2k_add_tlm(data, size, dst, dst_len, n_out, err);
    } else {
        *n_out = size;
        if (size > dst_len)
            st = df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG,
                         "the codestream needs %zu bytes, the output has %zu", size, dst_len);
        else
            std::memcpy(dst, data, size);
    }
    cs.close();
    return st;
}

}  // namespace

extern "C" {

const char *df_htj2k_library_version(void) {
    static const char version[] = OJPH_INT_TO_STRING(OPENJPH_VERSION_MAJOR) "."
        OJPH_INT_TO_STRING(OPENJPH_VERSION_MINOR) "." OJPH_INT_TO_STRING(OPENJPH_VERSION_PATCH);
    return version;
}

df_status df_htj2k_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_j2k_decode_opts *opts, df_error *err) {
    size_t needed = 0;
    quiet_openjph();
    df_status st;
    try {
        st = decode(src, src_len, dst, dst_len, &needed, opts, err);
    } catch (const std::bad_alloc &) {
        st = df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPH ran out of memory");
    } catch (...) {
        st = openjph_failed(err, DF_E_DECODE, "decode");
    }
    if (n_out != nullptr)
        *n_out = needed;
    return st;
}

df_status df_htj2k_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_j2k_encode_opts *opts, df_error *err) {
    size_t needed = 0;
    quiet_openjph();
    df_status st;
    try {
        st = encode(src, src_len, dst, dst_len, &needed, opts, err);
    } catch (const std::bad_alloc &) {
        st = df_fail(err, DF_E_NO_MEMORY, 0, DF_NO_TAG, "OpenJPH ran out of memory");
    } catch (...) {
        st = openjph_failed(err, DF_E_LIBRARY, "encode");
    }
    if (n_out != nullptr)
        *n_out = needed;
    return st;
}

}  // extern "C"
