/* Encapsulated pixel data: fragments and frames (PS3.5 §A.4, Tables A.4-1/A.4-2). */
#include "dicomfast/df_encaps.h"

#define TAG_ITEM 0xFFFEE000u
#define TAG_SEQ_DELIM 0xFFFEE0DDu

static uint32_t load_u32(const uint8_t *p, int little) {
    return little ? df_load_u32le(p) : df_load_u32be(p);
}

df_status df_encaps_fragments(const uint8_t *src, size_t src_len, df_fragment *dst, size_t dst_len,
                              size_t *n_out, const df_encaps_opts *opts, df_error *err) {
    size_t pos = 0, n = 0;
    uint64_t first_item = 0;
    int little = opts->little_endian;
    df_error_clear(err);
    *n_out = 0;
    while (src_len - pos >= 8) {
        uint32_t tag = ((uint32_t)(little ? df_load_u16le(src + pos) : df_load_u16be(src + pos))
                        << 16) |
                       (little ? df_load_u16le(src + pos + 2) : df_load_u16be(src + pos + 2));
        uint32_t len = load_u32(src + pos + 4, little);
        if (tag == TAG_SEQ_DELIM) break;
        if (tag != TAG_ITEM)
            return df_fail(err, DF_E_MALFORMED, pos, tag,
                           "expected a fragment item (FFFE,E000), found (%04X,%04X)", tag >> 16,
                           tag & 0xFFFFu);
        if (len == 0xFFFFFFFFu || len > src_len - pos - 8)
            return df_fail(err, DF_E_TRUNCATED, pos, tag,
                           "fragment length 0x%X exceeds 0x%zX remaining bytes", len,
                           src_len - pos - 8);
        if (n == 1) first_item = pos;
        if (n < dst_len) {
            dst[n].offset = pos + 8;
            dst[n].length = len;
            dst[n].item_offset = n == 0 ? 0 : pos - first_item;
        }
        n++;
        pos += 8 + (size_t)len;
    }
    *n_out = n;
    if (n == 0) return df_fail(err, DF_E_MALFORMED, 0, DF_NO_TAG, "no Basic Offset Table item");
    if (n > dst_len)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "%zu fragments", n);
    return DF_OK;
}

/* Index of the fragment whose item starts at `item_offset`, or -1. */
static long find_fragment(const df_fragment *frags, size_t n_frags, uint64_t item_offset) {
    size_t lo = 1, hi = n_frags;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (frags[mid].item_offset == item_offset) return (long)mid;
        if (frags[mid].item_offset < item_offset) lo = mid + 1; else hi = mid;
    }
    return -1;
}

static int starts_with_marker(const uint8_t *src, const df_fragment *f, int marker) {
    if (f->length < 2) return 0;
    const uint8_t *p = src + f->offset;
    if (marker == DF_MARKER_JPEG) return p[0] == 0xFF && p[1] == 0xD8;
    if (marker == DF_MARKER_J2K) return p[0] == 0xFF && p[1] == 0x4F;
    return 0;
}

static void set_span(df_frame_span *s, const df_fragment *frags, size_t first, size_t last) {
    uint64_t total = 0;
    for (size_t k = first; k < last; k++) total += frags[k].length;
    s->first = (uint32_t)(first - 1);
    s->count = (uint32_t)(last - first);
    s->offset = frags[first].offset;
    s->length = total;
}

df_status df_encaps_frames(const uint8_t *src, size_t src_len, const df_fragment *frags,
                           size_t n_frags, df_frame_span *dst, size_t dst_len, size_t *n_out,
                           const df_encaps_opts *opts, df_error *err) {
    size_t n_frames = opts->n_frames ? opts->n_frames : 1;
    size_t n_data = n_frags ? n_frags - 1 : 0; /* fragments after the BOT */
    size_t i;
    df_error_clear(err);
    *n_out = n_frames;
    if (dst_len < n_frames)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "%zu frames", n_frames);
    if (n_data == 0)
        return df_fail(err, DF_E_MALFORMED, 0, 0x7FE00010u, "no fragments after the offset table");

    if (opts->eot != NULL && opts->eot_len > 0) {
        /* Extended Offset Table: 64-bit offsets and lengths (PS3.3 C.7.6.3.1.8). */
        if (opts->eot_len != 8 * n_frames || opts->eot_lengths == NULL ||
            opts->eot_lengths_len != 8 * n_frames)
            return df_fail(err, DF_E_MALFORMED, 0, 0x7FE00001u,
                           "Extended Offset Table has %zu bytes for %zu frames", opts->eot_len,
                           n_frames);
        for (i = 0; i < n_frames; i++) {
            uint64_t off = df_load_u64le(opts->eot + 8 * i);
            uint64_t len = df_load_u64le(opts->eot_lengths + 8 * i);
            long k = find_fragment(frags, n_frags, off);
            if (k < 0)
                return df_fail(err, DF_E_MALFORMED, 8 * i, 0x7FE00001u,
                               "offset %llu of frame %zu is not a fragment's start",
                               (unsigned long long)off, i);
            size_t last = (size_t)k;
            uint64_t total = 0;
            while (last < n_frags && total < len) total += frags[last++].length;
            if (total < len)
                return df_fail(err, DF_E_MALFORMED, 8 * i, 0x7FE00002u,
                               "frame %zu length %llu runs past the fragments", i,
                               (unsigned long long)len);
            set_span(&dst[i], frags, (size_t)k, last);
            dst[i].length = len;
        }
        return DF_OK;
    }

    if (frags[0].length > 0) {
        /* Basic Offset Table: 32-bit offsets of each frame's first item. */
        const uint8_t *bot = src + frags[0].offset;
        if (frags[0].length % 4 || frags[0].length / 4 != n_frames)
            return df_fail(err, DF_E_MALFORMED, frags[0].offset, 0xFFFEE000u,
                           "Basic Offset Table has %llu entries for %zu frames",
                           (unsigned long long)(frags[0].length / 4), n_frames);
        for (i = 0; i < n_frames; i++) {
            uint32_t off = load_u32(bot + 4 * i, opts->little_endian);
            long k = find_fragment(frags, n_frags, off);
            if (k < 0)
                return df_fail(err, DF_E_MALFORMED, frags[0].offset + 4 * i, 0xFFFEE000u,
                               "offset %u of frame %zu is not a fragment's start", off, i);
            dst[i].first = (uint32_t)k;
        }
        for (i = 0; i < n_frames; i++) {
            size_t first = dst[i].first;
            size_t last = i + 1 < n_frames ? dst[i + 1].first : n_frags;
            if (last <= first)
                return df_fail(err, DF_E_MALFORMED, frags[0].offset + 4 * i, 0xFFFEE000u,
                               "Basic Offset Table offsets are not increasing at frame %zu", i);
            set_span(&dst[i], frags, first, last);
        }
        return DF_OK;
    }

    if (n_data == n_frames) {
        for (i = 0; i < n_frames; i++) set_span(&dst[i], frags, i + 1, i + 2);
        return DF_OK;
    }
    if (n_frames == 1) {
        set_span(&dst[0], frags, 1, n_frags);
        return DF_OK;
    }
    /* No table and fragments split: a frame starts at each fragment that begins
     * with the codec's start marker (SOI or SOC). */
    if (opts->marker == DF_MARKER_NONE)
        return df_fail(err, DF_E_MALFORMED, 0, 0x7FE00010u,
                       "%zu fragments for %zu frames and no offset table", n_data, n_frames);
    {
        size_t f = 0, start = 1;
        for (size_t k = 1; k <= n_frags; k++) {
            int boundary = k == n_frags || (k > start && starts_with_marker(src, &frags[k],
                                                                             opts->marker));
            if (!boundary) continue;
            if (f >= n_frames)
                return df_fail(err, DF_E_MALFORMED, frags[k - 1].offset, 0x7FE00010u,
                               "more frame start markers than %zu frames", n_frames);
            set_span(&dst[f++], frags, start, k);
            start = k;
        }
        if (f != n_frames)
            return df_fail(err, DF_E_MALFORMED, 0, 0x7FE00010u,
                           "found %zu frame start markers for %zu frames", f, n_frames);
    }
    return DF_OK;
}
