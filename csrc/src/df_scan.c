/* Element scanner (PS3.5 §7: data set encoding; §7.5: nesting of data sets;
 * §A.4: encapsulated pixel data). See df_scan.h for the index layout. */
#include "dicomfast/df_scan.h"

#define TAG_ITEM 0xFFFEE000u
#define TAG_ITEM_DELIM 0xFFFEE00Du
#define TAG_SEQ_DELIM 0xFFFEE0DDu

enum frame_kind { FRAME_TOP = 0, FRAME_SEQUENCE, FRAME_ITEM, FRAME_FRAGMENTS };

typedef struct scan_frame {
    uint32_t entry;    /* index of the container's entry (unused for FRAME_TOP) */
    uint8_t kind;
    uint8_t undefined; /* ends with a delimiter rather than at `limit` */
    uint8_t implicit;
    uint8_t little;
    size_t limit;      /* first byte past the container (src_len when undefined) */
    uint32_t depth;    /* sequence nesting depth of this frame */
} scan_frame;

typedef struct scan_state {
    const uint8_t *src;
    size_t src_len;
    df_element *dst;
    size_t dst_len;
    size_t n;
    const df_scan_opts *opts;
    df_error *err;
    uint32_t warnings;
} scan_state;

static int is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }

/* What an explicit VR says about the header that carries it, indexed by the two
 * upper-case letters: 1 = known VR with a 2-byte length, 2 = known VR with a
 * 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1, 7.1-2). A table
 * rather than a switch: every element takes this branch, and the switch's
 * comparison tree mispredicts. */
#define VR_SLOT(a, b) (((a) - 'A') * 26 + ((b) - 'A'))
enum { VR_UNKNOWN = 0, VR_SHORT = 1, VR_LONG = 2 };
static const uint8_t vr_class[26 * 26] = {
    [VR_SLOT('A', 'E')] = VR_SHORT, [VR_SLOT('A', 'S')] = VR_SHORT,
    [VR_SLOT('A', 'T')] = VR_SHORT, [VR_SLOT('C', 'S')] = VR_SHORT,
    [VR_SLOT('D', 'A')] = VR_SHORT, [VR_SLOT('D', 'S')] = VR_SHORT,
    [VR_SLOT('D', 'T')] = VR_SHORT, [VR_SLOT('F', 'L')] = VR_SHORT,
    [VR_SLOT('F', 'D')] = VR_SHORT, [VR_SLOT('I', 'S')] = VR_SHORT,
    [VR_SLOT('L', 'O')] = VR_SHORT, [VR_SLOT('L', 'T')] = VR_SHORT,
    [VR_SLOT('P', 'N')] = VR_SHORT, [VR_SLOT('S', 'H')] = VR_SHORT,
    [VR_SLOT('S', 'L')] = VR_SHORT, [VR_SLOT('S', 'S')] = VR_SHORT,
    [VR_SLOT('S', 'T')] = VR_SHORT, [VR_SLOT('T', 'M')] = VR_SHORT,
    [VR_SLOT('U', 'I')] = VR_SHORT, [VR_SLOT('U', 'L')] = VR_SHORT,
    [VR_SLOT('U', 'S')] = VR_SHORT,
    [VR_SLOT('O', 'B')] = VR_LONG, [VR_SLOT('O', 'D')] = VR_LONG,
    [VR_SLOT('O', 'F')] = VR_LONG, [VR_SLOT('O', 'L')] = VR_LONG,
    [VR_SLOT('O', 'V')] = VR_LONG, [VR_SLOT('O', 'W')] = VR_LONG,
    [VR_SLOT('S', 'Q')] = VR_LONG, [VR_SLOT('S', 'V')] = VR_LONG,
    [VR_SLOT('U', 'C')] = VR_LONG, [VR_SLOT('U', 'N')] = VR_LONG,
    [VR_SLOT('U', 'R')] = VR_LONG, [VR_SLOT('U', 'T')] = VR_LONG,
    [VR_SLOT('U', 'V')] = VR_LONG,
};

/* The class of the VR bytes a, b (VR_UNKNOWN unless both are upper case). */
static int vr_class_of(uint8_t a, uint8_t b) {
    if (!is_upper(a) || !is_upper(b)) return VR_UNKNOWN;
    return vr_class[VR_SLOT(a, b)];
}

static uint32_t hash_slot(uint32_t tag, uint32_t bits) {
    return (uint32_t)((tag * 0x9E3779B1u) >> (32u - bits)); /* Fibonacci hashing */
}

uint32_t df_scan_vr_hash_bits(size_t n) {
    uint32_t bits = 4;
    while (bits < 30 && ((size_t)1 << bits) < 2 * n) bits++;
    return bits;
}

df_status df_scan_vr_hash_build(const df_vr_entry *src, size_t src_len, df_vr_entry *dst,
                                size_t dst_len, df_error *err) {
    uint32_t bits = df_scan_vr_hash_bits(src_len);
    size_t mask = ((size_t)1 << bits) - 1;
    df_error_clear(err);
    if (dst_len != mask + 1)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "hash needs %zu slots",
                       mask + 1);
    for (size_t i = 0; i < dst_len; i++) {
        dst[i].tag = DF_SCAN_VR_HASH_EMPTY;
        dst[i].vr = 0;
        dst[i].pad = 0;
    }
    for (size_t i = 0; i < src_len; i++) {
        if (src[i].tag == DF_SCAN_VR_HASH_EMPTY)
            return df_fail(err, DF_E_INVALID_ARG, 0, src[i].tag, "tag (FFFF,FFFF) in the table");
        size_t slot = hash_slot(src[i].tag, bits);
        /* At most half full, so an empty slot is always found. */
        while (dst[slot].tag != DF_SCAN_VR_HASH_EMPTY && dst[slot].tag != src[i].tag)
            slot = (slot + 1) & mask;
        dst[slot] = src[i];
    }
    return DF_OK;
}

uint16_t df_scan_lookup_vr(uint32_t tag, const df_scan_opts *opts) {
    uint16_t group = (uint16_t)(tag >> 16);
    uint16_t elem = (uint16_t)(tag & 0xFFFFu);
    if (group & 1u) {
        /* Private groups (PS3.5 §7.8.1): creators are LO, group length UL, the rest unknown. */
        if (elem == 0) return DF_VR('U', 'L');
        if (elem >= 0x0010u && elem <= 0x00FFu) return DF_VR('L', 'O');
        return DF_VR('U', 'N');
    }
    if (opts->hash != NULL && opts->hash_bits > 0) {
        size_t mask = ((size_t)1 << opts->hash_bits) - 1;
        size_t slot = hash_slot(tag, opts->hash_bits);
        for (;;) {
            uint32_t t = opts->hash[slot].tag;
            if (t == tag) return opts->hash[slot].vr;
            if (t == DF_SCAN_VR_HASH_EMPTY) break;
            slot = (slot + 1) & mask;
        }
    } else if (opts->dict != NULL && opts->dict_len > 0) {
        size_t lo = 0, hi = opts->dict_len;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            uint32_t t = opts->dict[mid].tag;
            if (t == tag) return opts->dict[mid].vr;
            if (t < tag) lo = mid + 1; else hi = mid;
        }
    }
    for (size_t i = 0; i < opts->masks_len; i++) {
        if ((tag & opts->masks[i].mask) == opts->masks[i].value) return opts->masks[i].vr;
    }
    if (elem == 0) return DF_VR('U', 'L'); /* group length (PS3.5 §7.2) */
    return DF_VR('U', 'N');
}

static uint32_t read_tag(const uint8_t *p, int little) {
    if (little) return ((uint32_t)df_load_u16le(p) << 16) | df_load_u16le(p + 2);
    return ((uint32_t)df_load_u16be(p) << 16) | df_load_u16be(p + 2);
}

static uint32_t read_u32(const uint8_t *p, int little) {
    return little ? df_load_u32le(p) : df_load_u32be(p);
}

static uint16_t read_u16(const uint8_t *p, int little) {
    return little ? df_load_u16le(p) : df_load_u16be(p);
}

static int is_pixel_tag(uint32_t tag) {
    return tag == 0x7FE00010u || tag == 0x7FE00009u || tag == 0x7FE00008u;
}

static uint64_t abs_off(const scan_state *s, size_t pos) { return s->opts->base_offset + pos; }

/* Append an entry; past dst_len only count (the caller will retry with room). */
static uint32_t push_entry(scan_state *s, uint32_t tag, uint16_t vr, uint16_t flags,
                           uint32_t length, size_t offset, size_t header_offset) {
    size_t idx = s->n++;
    if (idx < s->dst_len) {
        df_element *e = &s->dst[idx];
        e->tag = tag;
        e->vr = vr;
        e->flags = flags;
        e->length = length;
        e->end = (uint32_t)(idx + 1);
        e->offset = offset;
        e->header_offset = header_offset;
    }
    return (uint32_t)idx;
}

static void close_entry(scan_state *s, uint32_t idx, size_t content_end) {
    if (idx < s->dst_len) {
        df_element *e = &s->dst[idx];
        e->end = (uint32_t)s->n;
        if (e->flags & DF_EL_UNDEFINED) e->length = (uint32_t)(content_end - e->offset);
    }
}

static void mark_entry(scan_state *s, uint32_t idx, uint16_t flag) {
    if (idx < s->dst_len) s->dst[idx].flags |= flag;
}

/* Heuristic of PS3.5 §A.1 readers: do these 8 bytes look like an explicit VR header? */
static int looks_explicit(const uint8_t *p) {
    return vr_class_of(p[4], p[5]) != VR_UNKNOWN;
}

df_status df_scan_preamble(const uint8_t *src, size_t src_len, size_t *n_out, int *has_preamble,
                           int *has_meta, df_error *err) {
    df_error_clear(err);
    *n_out = 0;
    *has_preamble = 0;
    *has_meta = 0;
    if (src_len >= 132 && memcmp(src + 128, "DICM", 4) == 0) {
        *n_out = 132;
        *has_preamble = 1;
        *has_meta = src_len >= 134 && df_load_u16le(src + 132) == 0x0002u;
        return DF_OK;
    }
    if (src_len >= 4 && memcmp(src, "DICM", 4) == 0) {
        /* The prefix without its preamble (seen in the wild). */
        *n_out = 4;
        *has_preamble = 1;
        *has_meta = src_len >= 6 && df_load_u16le(src + 4) == 0x0002u;
        return DF_OK;
    }
    if (src_len >= 8 && df_load_u16le(src) == 0x0002u) {
        *has_meta = 1;
        return DF_OK;
    }
    if (src_len < 8) return df_fail(err, DF_E_NOT_DICOM, 0, DF_NO_TAG, "only %zu bytes", src_len);
    return DF_OK;
}

df_status df_scan_dataset(const uint8_t *src, size_t src_len, df_element *dst, size_t dst_len,
                          df_scan_result *res, const df_scan_opts *opts, df_error *err) {
    scan_frame stack[2 * DF_SCAN_MAX_DEPTH + 2];
    uint32_t max_depth = opts->max_depth ? opts->max_depth : DF_SCAN_DEFAULT_DEPTH;
    if (max_depth > DF_SCAN_MAX_DEPTH) max_depth = DF_SCAN_MAX_DEPTH;
    scan_state s = {src, src_len, dst, dst_len, 0, opts, err, 0};
    size_t pos = 0;
    int sp = 0;
    int first = 1;

    df_error_clear(err);
    res->n_elements = 0;
    res->bytes_used = 0;
    res->warnings = 0;

    stack[0].entry = 0;
    stack[0].kind = opts->sequence_content ? FRAME_SEQUENCE : FRAME_TOP;
    stack[0].undefined = 0;
    stack[0].implicit = (uint8_t)!opts->explicit_vr;
    stack[0].little = (uint8_t)(opts->little_endian != 0);
    stack[0].limit = src_len;
    stack[0].depth = 0;

    for (;;) {
        scan_frame *f = &stack[sp];
        size_t remaining;
        uint32_t tag;
        size_t hdr = pos;

        if (sp == 0 && pos >= f->limit) break;
        /* A defined-length container ends exactly at its limit. */
        if (pos >= f->limit) {
            if (f->undefined) {
                if (opts->strict)
                    return df_fail(err, DF_E_TRUNCATED, abs_off(&s, pos), DF_NO_TAG,
                                   "undefined-length %s has no delimiter before the end of data",
                                   f->kind == FRAME_ITEM ? "item" : "sequence");
                s.warnings |= DF_WARN_MISSING_DELIMITER;
                mark_entry(&s, f->entry, DF_EL_NO_DELIMITER);
            }
            close_entry(&s, f->entry, pos);
            sp--;
            continue;
        }
        remaining = f->limit - pos;
        if (remaining < 8) {
            if (opts->strict || f->limit != src_len)
                return df_fail(err, DF_E_TRUNCATED, abs_off(&s, pos), DF_NO_TAG,
                               "%zu bytes left, too few for an element header", remaining);
            /* Lenient: a few trailing bytes after the last element (padding, or a
             * file cut short) are ignored; open containers close at the end. */
            s.warnings |= f->kind == FRAME_TOP ? DF_WARN_TRAILING_BYTES : DF_WARN_TRUNCATED_VALUE;
            pos = src_len;
            continue;
        }

        tag = read_tag(src + pos, f->little);

        if (f->kind == FRAME_SEQUENCE || f->kind == FRAME_FRAGMENTS) {
            uint32_t len = read_u32(src + pos + 4, f->little);
            if (tag == TAG_SEQ_DELIM) {
                pos += 8;
                if (f->undefined) {
                    close_entry(&s, f->entry, hdr);
                    sp--;
                } else if (opts->strict) {
                    return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                                   "sequence delimiter in a defined-length sequence");
                } else {
                    s.warnings |= DF_WARN_STRAY_DELIMITER;
                }
                continue;
            }
            if (tag != TAG_ITEM) {
                if (f->kind == FRAME_SEQUENCE && f->undefined && !opts->strict &&
                    tag == TAG_ITEM_DELIM) {
                    /* An item delimiter where an item should start: skip it. */
                    s.warnings |= DF_WARN_STRAY_DELIMITER;
                    pos += 8;
                    continue;
                }
                return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                               "expected an item tag (FFFE,E000) in %s, found (%04X,%04X)",
                               f->kind == FRAME_SEQUENCE ? "a sequence" : "encapsulated data",
                               tag >> 16, tag & 0xFFFFu);
            }
            pos += 8;
            if (f->kind == FRAME_FRAGMENTS) {
                if (len == DF_UNDEFINED_LENGTH)
                    return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                                   "fragment with undefined length");
                if (len > f->limit - pos) {
                    if (opts->strict || f->limit != src_len)
                        return df_fail(err, DF_E_TRUNCATED, abs_off(&s, hdr), tag,
                                       "fragment length 0x%X exceeds 0x%zX remaining bytes",
                                       len, f->limit - pos);
                    len = (uint32_t)(f->limit - pos);
                    s.warnings |= DF_WARN_TRUNCATED_VALUE;
                }
                push_entry(&s, tag, DF_VR_NONE,
                           (uint16_t)(DF_EL_FRAGMENT | (f->little ? 0 : DF_EL_BIG_ENDIAN)), len,
                           pos, hdr);
                pos += len;
                continue;
            }
            /* A sequence item: a nested dataset (PS3.5 §7.5). */
            {
                uint16_t flags = DF_EL_ITEM | (f->implicit ? DF_EL_IMPLICIT : 0) |
                                 (f->little ? 0 : DF_EL_BIG_ENDIAN);
                size_t limit;
                uint8_t undefined = len == DF_UNDEFINED_LENGTH;
                if (undefined) {
                    flags |= DF_EL_UNDEFINED;
                    limit = f->limit;
                } else {
                    if (len > f->limit - pos) {
                        if (opts->strict || f->limit != src_len)
                            return df_fail(err, DF_E_TRUNCATED, abs_off(&s, hdr), tag,
                                           "item length 0x%X exceeds 0x%zX remaining bytes",
                                           len, f->limit - pos);
                        len = (uint32_t)(f->limit - pos);
                        flags |= DF_EL_TRUNCATED;
                        s.warnings |= DF_WARN_TRUNCATED_VALUE;
                    }
                    limit = pos + len;
                }
                uint32_t idx = push_entry(&s, tag, DF_VR_NONE, flags,
                                          undefined ? 0 : len, pos, hdr);
                scan_frame *nf = &stack[++sp];
                nf->entry = idx;
                nf->kind = FRAME_ITEM;
                nf->undefined = undefined;
                nf->implicit = f->implicit;
                nf->little = f->little;
                nf->limit = limit;
                nf->depth = f->depth;
                first = 0;
            }
            continue;
        }

        /* FRAME_TOP or FRAME_ITEM: a data element, or a delimiter. */
        if ((tag >> 16) == 0xFFFEu) {
            if (tag == TAG_ITEM_DELIM && f->kind == FRAME_ITEM && f->undefined) {
                pos += 8;
                close_entry(&s, f->entry, hdr);
                sp--;
                continue;
            }
            if (tag == TAG_SEQ_DELIM && f->kind == FRAME_ITEM && f->undefined && !opts->strict) {
                /* Item delimiter missing: close the item, let the sequence take this. */
                s.warnings |= DF_WARN_MISSING_DELIMITER;
                mark_entry(&s, f->entry, DF_EL_NO_DELIMITER);
                close_entry(&s, f->entry, hdr);
                sp--;
                continue;
            }
            if (!opts->strict && (tag == TAG_ITEM_DELIM || tag == TAG_SEQ_DELIM)) {
                s.warnings |= DF_WARN_STRAY_DELIMITER;
                pos += 8;
                continue;
            }
            return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                           "item or delimiter tag (%04X,%04X) where a data element should be",
                           tag >> 16, tag & 0xFFFFu);
        }
        if (f->kind == FRAME_TOP) {
            if (opts->meta_only && (tag >> 16) != 0x0002u) break;
            if (opts->stop_before && is_pixel_tag(tag)) break;
        }

        /* PS3.5 §A: some writers use the other VR encoding than their syntax says.
         * Decide once, from the first element, as other readers do. */
        if (first && f->kind == FRAME_TOP && !opts->strict) {
            int exp = looks_explicit(src + pos);
            if (!f->implicit && !exp) {
                f->implicit = 1;
                s.warnings |= DF_WARN_IMPLICIT_IN_EXPLICIT;
            } else if (f->implicit && exp) {
                f->implicit = 0;
                s.warnings |= DF_WARN_EXPLICIT_IN_IMPLICIT;
            }
        }
        first = 0;

        {
            uint16_t vr;
            uint32_t len;
            uint16_t flags = f->little ? 0 : DF_EL_BIG_ENDIAN;
            if (f->implicit) {
                vr = df_scan_lookup_vr(tag, opts);
                len = read_u32(src + pos + 4, f->little);
                flags |= DF_EL_IMPLICIT | DF_EL_VR_FROM_DICT;
                pos += 8;
            } else {
                uint8_t a = src[pos + 4], b = src[pos + 5];
                int vr_kind = vr_class_of(a, b);
                vr = DF_VR(a, b);
                if (vr_kind == VR_UNKNOWN && (!is_upper(a) || !is_upper(b)))
                    return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr + 4), tag,
                                   "invalid VR bytes 0x%02X 0x%02X", a, b);
                if (vr_kind == VR_UNKNOWN) {
                    if (opts->strict)
                        return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr + 4), tag,
                                       "unknown VR '%c%c'", a, b);
                    s.warnings |= DF_WARN_UNKNOWN_VR;
                }
                if (vr_kind == VR_SHORT) {
                    len = read_u16(src + pos + 6, f->little);
                    pos += 8;
                } else {
                    /* Long form; also for VRs newer than this reader (PS3.5 §7.1.2). */
                    if (f->limit - pos < 12) {
                        if (opts->strict || f->limit != src_len)
                            return df_fail(err, DF_E_TRUNCATED, abs_off(&s, hdr), tag,
                                           "element header runs past the end of data");
                        /* Lenient, as for a header of fewer than 8 bytes above. */
                        s.warnings |= f->kind == FRAME_TOP ? DF_WARN_TRAILING_BYTES
                                                           : DF_WARN_TRUNCATED_VALUE;
                        pos = src_len;
                        continue;
                    }
                    len = read_u32(src + pos + 8, f->little);
                    pos += 12;
                }
            }

            if (len == DF_UNDEFINED_LENGTH) {
                uint8_t kind;
                uint8_t implicit = f->implicit;
                uint8_t little = f->little;
                uint16_t stream_vr = vr;
                flags |= DF_EL_UNDEFINED;
                if (tag == 0x7FE00010u || (!f->implicit && (vr == DF_VR('O', 'B') ||
                                                            vr == DF_VR('O', 'W')))) {
                    /* Encapsulated Pixel Data (PS3.5 §A.4). */
                    kind = FRAME_FRAGMENTS;
                    flags |= DF_EL_FRAGMENTS;
                    if (f->implicit) vr = DF_VR('O', 'B');
                } else if (vr == DF_VR('S', 'Q') || f->implicit) {
                    kind = FRAME_SEQUENCE;
                    flags |= DF_EL_SEQUENCE;
                    vr = DF_VR('S', 'Q');
                } else if (vr == DF_VR('U', 'N')) {
                    /* PS3.5 §6.2.2: UN of undefined length holds implicit VR LE items. */
                    kind = FRAME_SEQUENCE;
                    flags |= DF_EL_SEQUENCE | DF_EL_UN_SEQUENCE;
                    vr = DF_VR('S', 'Q');
                    implicit = 1;
                    little = 1;
                } else {
                    return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                                   "undefined length with VR '%c%c'", vr >> 8, vr & 0xFF);
                }
                /* Only SQ says for sure that items follow. For a VR taken as a container
                 * by rule (implicit VR, UN, OB/OW) an undefined length must be followed
                 * by an item or the sequence delimiter (PS3.5 §7.5, §A.4); if it is
                 * not, the length is what is wrong, so name this element. */
                if (stream_vr != DF_VR('S', 'Q') && f->limit - pos >= 4) {
                    uint32_t next = read_tag(src + pos, little);
                    if (next != TAG_ITEM && next != TAG_SEQ_DELIM)
                        return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                                       "undefined length with VR '%c%c', but no item follows",
                                       stream_vr >> 8, stream_vr & 0xFF);
                }
                if (f->depth + 1 > max_depth)
                    return df_fail(err, DF_E_LIMIT, abs_off(&s, hdr), tag,
                                   "sequences nested deeper than %u", max_depth);
                uint32_t idx = push_entry(&s, tag, vr, flags, 0, pos, hdr);
                scan_frame *nf = &stack[++sp];
                nf->entry = idx;
                nf->kind = kind;
                nf->undefined = 1;
                nf->implicit = implicit;
                nf->little = little;
                nf->limit = f->limit;
                nf->depth = f->depth + 1;
                continue;
            }

            if (len > f->limit - pos) {
                if (f->limit != src_len || opts->strict)
                    return df_fail(err, f->kind == FRAME_TOP ? DF_E_TRUNCATED : DF_E_MALFORMED,
                                   abs_off(&s, hdr), tag,
                                   "value length 0x%X exceeds 0x%zX remaining bytes", len,
                                   f->limit - pos);
                /* A file cut short inside its last value: keep what is there. */
                len = (uint32_t)(f->limit - pos);
                flags |= DF_EL_TRUNCATED;
                s.warnings |= DF_WARN_TRUNCATED_VALUE;
            }
            if (len & 1u) {
                if (opts->strict)
                    return df_fail(err, DF_E_MALFORMED, abs_off(&s, hdr), tag,
                                   "odd value length 0x%X (PS3.5 §7.1.1)", len);
                flags |= DF_EL_ODD_LENGTH;
                s.warnings |= DF_WARN_ODD_LENGTH;
            }
            if (vr == DF_VR('S', 'Q')) {
                if (f->depth + 1 > max_depth)
                    return df_fail(err, DF_E_LIMIT, abs_off(&s, hdr), tag,
                                   "sequences nested deeper than %u", max_depth);
                uint32_t idx = push_entry(&s, tag, vr, flags | DF_EL_SEQUENCE, len, pos, hdr);
                scan_frame *nf = &stack[++sp];
                nf->entry = idx;
                nf->kind = FRAME_SEQUENCE;
                nf->undefined = 0;
                nf->implicit = f->implicit;
                nf->little = f->little;
                nf->limit = pos + len;
                nf->depth = f->depth + 1;
                continue;
            }
            push_entry(&s, tag, vr, flags, len, pos, hdr);
            pos += len;
        }
    }

    res->n_elements = s.n;
    res->bytes_used = pos;
    res->warnings = s.warnings;
    if (s.n > dst_len) {
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "index needs %zu entries", s.n);
    }
    if (s.n > UINT32_MAX - 1)
        return df_fail(err, DF_E_LIMIT, 0, DF_NO_TAG, "more than 2^32 elements");
    return DF_OK;
}
