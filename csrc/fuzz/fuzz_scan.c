/* libFuzzer harness for the element scanner: df_scan_preamble + df_scan_dataset.
 *
 * Build and run (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -Icsrc/include csrc/src/df_scan.c csrc/src/df_common.c csrc/fuzz/fuzz_scan.c \
 *         -o /tmp/fuzz_scan
 *   mkdir -p /tmp/fuzz_scan_corpus   # seeds: real files with a mode byte in front, e.g.
 *   { printf '\003'; cat CT_small.dcm; } > /tmp/fuzz_scan_corpus/ct_small_explicit_le
 *   /tmp/fuzz_scan -max_total_time=180 -max_len=65536 /tmp/fuzz_scan_corpus
 *
 * Input layout: byte 0 chooses the options, the rest is the stream.
 *   bit 0  little endian          bit 1  explicit VR        bit 2  strict
 *   bit 3  sequence_content       bit 4  stop_before pixels
 *   bits 5-6  max_depth: 0 (default 64), 1, 8, DF_SCAN_MAX_DEPTH
 *   bit 7  scan the whole stream as one data set instead of the Part 10 path
 *          (preamble, File Meta as explicit VR LE with meta_only, then the data set)
 *
 * Besides the sanitizers, the harness checks the index invariants the Cython
 * layer relies on without re-checking them (every value view lies inside src,
 * `end` nests properly) and the two-pass sizing contract of _scan.pyx: a rescan
 * with exactly the count DF_E_OUTPUT_TOO_SMALL reported must not report it again,
 * or the Python wrapper would loop. The fixed dst of DF_FUZZ_DST entries makes
 * that path common. A violated invariant traps, so libFuzzer records a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicomfast/df_scan.h"

#define DF_FUZZ_DST 2048

/* A small implicit VR dictionary, sorted by tag: enough sequences (SQ) and
 * ambiguous VRs that implicit VR inputs reach the nested and pixel paths. */
static const df_vr_entry fuzz_dict[] = {
    {0x00020010u, DF_VR('U', 'I'), 0}, {0x00080005u, DF_VR('C', 'S'), 0},
    {0x00081115u, DF_VR('S', 'Q'), 0}, {0x00081140u, DF_VR('S', 'Q'), 0},
    {0x00100010u, DF_VR('P', 'N'), 0}, {0x00280010u, DF_VR('U', 'S'), 0},
    {0x00280106u, DF_VR_US_SS, 0},      {0x00400275u, DF_VR('S', 'Q'), 0},
    {0x300A0010u, DF_VR('S', 'Q'), 0}, {0x300A00B0u, DF_VR('S', 'Q'), 0},
    {0x7FE00008u, DF_VR('O', 'F'), 0}, {0x7FE00010u, DF_VR_OB_OW, 0},
};

/* Repeating groups (PS3.5 §7.6): overlay data (60xx,3000), curve data (50xx,3000). */
static const df_vr_mask fuzz_masks[] = {
    {0xFF00FFFFu, 0x60003000u, DF_VR_OB_OW, 0},
    {0xFF00FFFFu, 0x50003000u, DF_VR_OB_OW, 0},
};

#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) __builtin_trap(); \
    } while (0)

static int known_status(df_status st) {
    return st == DF_OK || st == DF_E_TRUNCATED || st == DF_E_MALFORMED ||
           st == DF_E_OUTPUT_TOO_SMALL || st == DF_E_LIMIT;
}

/* The invariants of a successful scan that the Cython layer trusts. */
static void check_index(const df_element *dst, size_t n, size_t src_len,
                        const df_scan_result *res) {
    FUZZ_CHECK(res->n_elements == n);
    FUZZ_CHECK(res->bytes_used <= src_len);
    for (size_t i = 0; i < n; i++) {
        const df_element *e = &dst[i];
        /* value_bytes()/value_view() copy [offset, offset + length) unchecked. */
        FUZZ_CHECK(e->offset <= src_len);
        FUZZ_CHECK(e->length <= src_len - e->offset);
        FUZZ_CHECK(e->header_offset <= e->offset);
        /* children()/tag_map() walk entry -> entry.end and must always move forward
         * and stay inside the parent's subtree. */
        FUZZ_CHECK(e->end > i && e->end <= n);
        for (size_t j = i + 1; j < e->end; j = dst[j].end)
            FUZZ_CHECK(dst[j].end > j && dst[j].end <= e->end);
    }
}

/* One scan as _scan.pyx does it: a fixed first buffer, then exactly the size
 * asked for. Returns the status of the final pass. */
static df_status scan_checked(const uint8_t *src, size_t src_len, const df_scan_opts *opts,
                              df_scan_result *res) {
    df_element dst[DF_FUZZ_DST];
    df_error err;
    df_status st = df_scan_dataset(src, src_len, dst, DF_FUZZ_DST, res, opts, &err);
    FUZZ_CHECK(known_status(st));
    if (st == DF_OK) {
        check_index(dst, res->n_elements, src_len, res);
        return st;
    }
    FUZZ_CHECK(err.status == st);
    FUZZ_CHECK(memchr(err.detail, '\0', sizeof err.detail) != NULL);
    if (st != DF_E_OUTPUT_TOO_SMALL) {
        FUZZ_CHECK(err.offset <= opts->base_offset + src_len);
        return st;
    }
    /* Each entry needs at least 8 input bytes, so the count is bounded by the input. */
    FUZZ_CHECK(res->n_elements > DF_FUZZ_DST && res->n_elements <= src_len / 8 + 1);
    {
        size_t need = res->n_elements;
        df_element *big = (df_element *)malloc(need * sizeof *big);
        if (big == NULL) return st;
        st = df_scan_dataset(src, src_len, big, need, res, opts, &err);
        /* Same input, same options: the counting pass and this one must agree. */
        FUZZ_CHECK(st != DF_E_OUTPUT_TOO_SMALL);
        FUZZ_CHECK(known_status(st));
        if (st == DF_OK) {
            FUZZ_CHECK(res->n_elements == need);
            check_index(big, need, src_len, res);
        }
        free(big);
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint32_t depths[4] = {0, 1, 8, DF_SCAN_MAX_DEPTH};
    df_scan_opts opts;
    df_scan_result res;
    const uint8_t *src;
    size_t src_len, start = 0;
    uint8_t mode;

    if (size < 1) return 0;
    mode = data[0];
    src = data + 1;
    src_len = size - 1;

    memset(&opts, 0, sizeof opts);
    opts.little_endian = mode & 1u;
    opts.explicit_vr = (mode >> 1) & 1u;
    opts.strict = (mode >> 2) & 1u;
    opts.sequence_content = (mode >> 3) & 1u;
    opts.stop_before = (mode >> 4) & 1u;
    opts.max_depth = depths[(mode >> 5) & 3u];
    opts.dict = fuzz_dict;
    opts.dict_len = sizeof fuzz_dict / sizeof fuzz_dict[0];
    opts.masks = fuzz_masks;
    opts.masks_len = sizeof fuzz_masks / sizeof fuzz_masks[0];

    if (!(mode & 0x80u)) {
        /* The Part 10 path of dicomfast.part10.read. */
        int has_preamble = -1, has_meta = -1;
        df_error err;
        df_status st = df_scan_preamble(src_len ? src : NULL, src_len, &start, &has_preamble,
                                        &has_meta, &err);
        FUZZ_CHECK(st == DF_OK || st == DF_E_NOT_DICOM);
        if (st != DF_OK) return 0;
        FUZZ_CHECK(start <= src_len);
        FUZZ_CHECK(has_preamble == 0 || has_preamble == 1);
        FUZZ_CHECK(has_meta == 0 || has_meta == 1);
        if (has_meta) {
            /* File Meta is always explicit VR little endian (PS3.10 §7.1). */
            df_scan_opts meta = opts;
            meta.little_endian = 1;
            meta.explicit_vr = 1;
            meta.sequence_content = 0;
            meta.stop_before = 0;
            meta.meta_only = 1;
            meta.base_offset = start;
            if (scan_checked(src + start, src_len - start, &meta, &res) != DF_OK) return 0;
            start += res.bytes_used;
        }
    }
    opts.base_offset = start;
    scan_checked(src + start, src_len - start, &opts, &res);
    return 0;
}
