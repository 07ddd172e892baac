/* Upper layer PDU framing and item parsing (PS3.8 §9.3, Annex D; PS3.7 Annex D.3.3).
 *
 * All multi-byte PDU fields are big endian (PS3.8 §9.3.1). Nothing here trusts a
 * length: each one is compared with what remains of its container before use.
 */
#include "dicomfast/df_pdu.h"

#define UID_MAX 64            /* PS3.5 §9.1 */
#define VERSION_NAME_MAX 16   /* PS3.7 §D.3.3.2.2 */
#define ASSOC_FIXED_LEN 68    /* A-ASSOCIATE-RQ/AC fields before the items (PS3.8 §9.3.2) */
#define FIXED_PDU_LEN 4       /* A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT */

typedef struct parser {
    const uint8_t *src;
    size_t src_len;
    df_pdu_item *dst;
    size_t dst_len;
    size_t n;                 /* entries found; may exceed dst_len (size query) */
    const df_pdu_opts *opts;
    df_error *err;
} parser;

static uint32_t push(parser *p, uint8_t type, size_t offset, size_t length, uint32_t parent) {
    if (p->n < p->dst_len) {
        df_pdu_item *it = &p->dst[p->n];
        it->offset = (uint32_t)offset;
        it->length = (uint32_t)length;
        it->parent = parent;
        it->type = type;
        it->pc_id = 0;
        it->control = 0;
        it->result = 0;
    }
    return (uint32_t)p->n++;
}

static df_pdu_item *entry(parser *p, uint32_t i) {
    return i < p->dst_len ? &p->dst[i] : NULL;
}

static df_status bad(parser *p, size_t offset, const char *what, size_t a, size_t b) {
    return df_fail(p->err, DF_E_MALFORMED, offset, DF_NO_TAG, "%s (%zu, %zu)", what, a, b);
}

/* A UID field of an item (PS3.8 Annex F: digits and '.', not padded; a single trailing
 * NUL is tolerated unless strict, as some implementations pad to even length). */
static df_status check_uid(parser *p, size_t off, size_t len, int allow_empty, const char *what) {
    size_t i, n = len;
    const uint8_t *s = p->src + off;
    if (n > 0 && s[n - 1] == 0 && !p->opts->strict)
        n--;
    if (n == 0) {
        if (allow_empty)
            return DF_OK;
        return df_fail(p->err, DF_E_MALFORMED, off, DF_NO_TAG, "%s: empty UID", what);
    }
    if (n > UID_MAX)
        return df_fail(p->err, DF_E_MALFORMED, off, DF_NO_TAG,
                       "%s: UID of %zu characters (at most %d)", what, n, UID_MAX);
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return df_fail(p->err, DF_E_MALFORMED, off + i, DF_NO_TAG,
                           "%s: byte 0x%02X is not allowed in a UID", what, s[i]);
    }
    return DF_OK;
}

/* Walk the sub-items of [start, end): callback per sub-item. */
typedef df_status (*sub_fn)(parser *p, uint8_t type, size_t val, size_t len, uint32_t parent,
                            void *state);

static df_status walk(parser *p, size_t start, size_t end, uint32_t parent, sub_fn fn,
                      void *state) {
    size_t pos = start;
    while (pos < end) {
        size_t len, val;
        df_status st;
        if (end - pos < 4)
            return bad(p, pos, "sub-item header runs past its item", end - pos, 4);
        len = df_load_u16be(p->src + pos + 2);
        val = pos + 4;
        if (len > end - val)
            return df_fail(p->err, DF_E_MALFORMED, pos, DF_NO_TAG,
                           "item 0x%02X: length %zu exceeds the %zu bytes left in its container",
                           p->src[pos], len, end - val);
        st = fn(p, p->src[pos], val, len, parent, state);
        if (st != DF_OK)
            return st;
        pos = val + len;
    }
    return DF_OK;
}

/* -- presentation context items (PS3.8 §9.3.2.2, §9.3.3.2) ---------------------------- */

typedef struct pc_state {
    int ac;
    uint8_t result;
    unsigned n_abstract;
    unsigned n_transfer;
} pc_state;

static df_status pc_sub(parser *p, uint8_t type, size_t val, size_t len, uint32_t parent,
                        void *state) {
    pc_state *s = state;
    df_status st;
    if (type == DF_ITEM_ABSTRACT_SYNTAX && !s->ac) {
        if ((st = check_uid(p, val, len, 0, "abstract syntax")) != DF_OK)
            return st;
        s->n_abstract++;
    } else if (type == DF_ITEM_TRANSFER_SYNTAX) {
        /* A rejected context's transfer syntax "shall not be tested" (PS3.8 §9.3.3.2). */
        int ignored = s->ac && s->result != 0;
        if (!ignored && (st = check_uid(p, val, len, 0, "transfer syntax")) != DF_OK)
            return st;
        s->n_transfer++;
    } else if (p->opts->strict) {
        return df_fail(p->err, DF_E_MALFORMED, val - 4, DF_NO_TAG,
                       "sub-item type 0x%02X is not allowed in a presentation context", type);
    }
    push(p, type, val, len, parent);
    return DF_OK;
}

static df_status presentation_context(parser *p, size_t val, size_t len, int ac) {
    pc_state s = {ac, 0, 0, 0};
    uint32_t me;
    df_pdu_item *it;
    df_status st;
    uint8_t id;
    if (len < 4)
        return bad(p, val, "presentation context item shorter than its 4 fixed bytes", len, 4);
    id = p->src[val];
    /* PS3.8 §9.3.2.2: presentation context IDs are odd integers 1-255. */
    if ((id & 1) == 0)
        return df_fail(p->err, DF_E_MALFORMED, val, DF_NO_TAG,
                       "presentation context ID %u is even", id);
    s.result = ac ? p->src[val + 2] : 0;
    if (ac && s.result > 4 && p->opts->strict)
        return df_fail(p->err, DF_E_MALFORMED, val + 2, DF_NO_TAG,
                       "presentation context %u: result/reason %u is undefined", id, s.result);
    me = push(p, ac ? DF_ITEM_PRESENTATION_CONTEXT_AC : DF_ITEM_PRESENTATION_CONTEXT_RQ, val,
              len, DF_PDU_NO_PARENT);
    if ((it = entry(p, me)) != NULL) {
        it->pc_id = id;
        it->result = s.result;
    }
    if ((st = walk(p, val + 4, val + len, me, pc_sub, &s)) != DF_OK)
        return st;
    if (!ac) {
        if (s.n_abstract != 1)
            return df_fail(p->err, DF_E_MALFORMED, val, DF_NO_TAG,
                           "presentation context %u has %u abstract syntax sub-items (needs 1)",
                           id, s.n_abstract);
        if (s.n_transfer == 0)
            return df_fail(p->err, DF_E_MALFORMED, val, DF_NO_TAG,
                           "presentation context %u proposes no transfer syntax", id);
    } else if (s.n_transfer > 1 || (s.result == 0 && s.n_transfer != 1)) {
        return df_fail(p->err, DF_E_MALFORMED, val, DF_NO_TAG,
                       "accepted presentation context %u has %u transfer syntaxes (needs 1)",
                       id, s.n_transfer);
    }
    return DF_OK;
}

/* -- user information sub-items (PS3.8 Annex D.1, PS3.7 Annex D.3.3) ------------------ */

/* A UID preceded by its 2-byte length, inside [*pos, end); advances *pos. */
static df_status uid_field(parser *p, size_t *pos, size_t end, const char *what) {
    size_t n;
    if (end - *pos < 2)
        return bad(p, *pos, what, end - *pos, 2);
    n = df_load_u16be(p->src + *pos);
    *pos += 2;
    if (n > end - *pos)
        return df_fail(p->err, DF_E_MALFORMED, *pos - 2, DF_NO_TAG,
                       "%s: UID length %zu exceeds the %zu bytes left", what, n, end - *pos);
    *pos += n;
    return check_uid(p, *pos - n, n, 0, what);
}

static df_status common_extended(parser *p, size_t val, size_t len) {
    /* PS3.7 §D.3.3.6: SOP class UID, service class UID, then a list of related general
     * SOP class UIDs whose total length is given up front. */
    size_t pos = val, end = val + len, rel_len, rel_end;
    df_status st;
    if ((st = uid_field(p, &pos, end, "common extended negotiation SOP class")) != DF_OK)
        return st;
    if ((st = uid_field(p, &pos, end, "common extended negotiation service class")) != DF_OK)
        return st;
    if (end - pos < 2)
        return bad(p, pos, "common extended negotiation: no related classes length", 0, 2);
    rel_len = df_load_u16be(p->src + pos);
    pos += 2;
    if (rel_len != end - pos)
        return bad(p, pos - 2, "common extended negotiation: related classes length mismatch",
                   rel_len, end - pos);
    rel_end = pos + rel_len;
    while (pos < rel_end) {
        if ((st = uid_field(p, &pos, rel_end, "related general SOP class")) != DF_OK)
            return st;
    }
    return DF_OK;
}

static df_status user_identity_rq(parser *p, size_t val, size_t len) {
    /* PS3.7 §D.3.3.7.1: type, positive-response-requested, primary, secondary fields. */
    size_t pos = val + 2, end = val + len, n;
    uint8_t kind;
    if (len < 6)
        return bad(p, val, "user identity RQ shorter than 6 bytes", len, 6);
    kind = p->src[val];
    if ((kind < 1 || kind > 5) && p->opts->strict)
        return df_fail(p->err, DF_E_MALFORMED, val, DF_NO_TAG,
                       "user identity type %u is undefined", kind);
    n = df_load_u16be(p->src + pos);
    pos += 2;
    if (n > end - pos || end - pos - n < 2)
        return bad(p, pos - 2, "user identity primary field overruns the sub-item", n, end - pos);
    pos += n;
    n = df_load_u16be(p->src + pos);
    pos += 2;
    if (n != end - pos)
        return bad(p, pos - 2, "user identity secondary field length mismatch", n, end - pos);
    return DF_OK;
}

static df_status user_sub(parser *p, uint8_t type, size_t val, size_t len, uint32_t parent,
                          void *state) {
    df_status st = DF_OK;
    int strict = p->opts->strict;
    (void)state;
    switch (type) {
    case DF_ITEM_MAXIMUM_LENGTH:
    case DF_ITEM_ASYNC_OPERATIONS_WINDOW:
        if (len != 4)
            return df_fail(p->err, DF_E_MALFORMED, val - 4, DF_NO_TAG,
                           "sub-item 0x%02X has length %zu (must be 4)", type, len);
        break;
    case DF_ITEM_IMPLEMENTATION_CLASS_UID:
        st = check_uid(p, val, len, 0, "implementation class UID");
        break;
    case DF_ITEM_IMPLEMENTATION_VERSION_NAME:
        if (len > VERSION_NAME_MAX || (len == 0 && strict))
            return df_fail(p->err, DF_E_MALFORMED, val - 4, DF_NO_TAG,
                           "implementation version name of %zu bytes (1 to 16)", len);
        break;
    case DF_ITEM_ROLE_SELECTION: {
        /* PS3.7 §D.3.3.4: UID length, SOP class UID, SCU role, SCP role. */
        size_t pos = val;
        if ((st = uid_field(p, &pos, val + len, "role selection SOP class")) != DF_OK)
            return st;
        if (val + len - pos != 2)
            return bad(p, pos, "role selection: SCU/SCP role fields", val + len - pos, 2);
        if (strict && (p->src[pos] > 1 || p->src[pos + 1] > 1))
            return df_fail(p->err, DF_E_MALFORMED, pos, DF_NO_TAG, "role values must be 0 or 1");
        break;
    }
    case DF_ITEM_SOP_CLASS_EXTENDED: {
        /* PS3.7 §D.3.3.5: UID length, SOP class UID, service-class-application-information. */
        size_t pos = val;
        st = uid_field(p, &pos, val + len, "extended negotiation SOP class");
        break;
    }
    case DF_ITEM_SOP_CLASS_COMMON_EXTENDED:
        st = common_extended(p, val, len);
        break;
    case DF_ITEM_USER_IDENTITY_RQ:
        st = user_identity_rq(p, val, len);
        break;
    case DF_ITEM_USER_IDENTITY_AC:
        if (len < 2 || df_load_u16be(p->src + val) != len - 2)
            return bad(p, val, "user identity AC: server response length mismatch", len, 2);
        break;
    default:
        /* Unknown user information sub-items are ignored by the receiver (PS3.7 §D.3.3). */
        if (strict)
            return df_fail(p->err, DF_E_MALFORMED, val - 4, DF_NO_TAG,
                           "unknown user information sub-item 0x%02X", type);
        break;
    }
    if (st != DF_OK)
        return st;
    push(p, type, val, len, parent);
    return DF_OK;
}

/* -- whole PDUs ------------------------------------------------------------------------ */

static df_status associate(parser *p, int ac) {
    size_t pos = DF_PDU_HEADER_LEN + ASSOC_FIXED_LEN;
    unsigned n_app = 0, n_pc = 0, n_user = 0;
    df_status st;
    while (pos < p->src_len) {
        uint8_t type;
        size_t len, val;
        if (p->src_len - pos < 4)
            return bad(p, pos, "item header runs past the PDU", p->src_len - pos, 4);
        type = p->src[pos];
        len = df_load_u16be(p->src + pos + 2);
        val = pos + 4;
        if (len > p->src_len - val)
            return df_fail(p->err, DF_E_MALFORMED, pos, DF_NO_TAG,
                           "item 0x%02X: length %zu exceeds the %zu bytes left in the PDU", type,
                           len, p->src_len - val);
        if (type == DF_ITEM_APPLICATION_CONTEXT) {
            if ((st = check_uid(p, val, len, 0, "application context name")) != DF_OK)
                return st;
            push(p, type, val, len, DF_PDU_NO_PARENT);
            n_app++;
        } else if (type == (ac ? DF_ITEM_PRESENTATION_CONTEXT_AC
                               : DF_ITEM_PRESENTATION_CONTEXT_RQ)) {
            if ((st = presentation_context(p, val, len, ac)) != DF_OK)
                return st;
            n_pc++;
        } else if (type == DF_ITEM_USER_INFORMATION) {
            uint32_t me = push(p, type, val, len, DF_PDU_NO_PARENT);
            if ((st = walk(p, val, val + len, me, user_sub, NULL)) != DF_OK)
                return st;
            n_user++;
        } else {
            return df_fail(p->err, DF_E_MALFORMED, pos, DF_NO_TAG,
                           "item type 0x%02X is not allowed in an A-ASSOCIATE-%s PDU", type,
                           ac ? "AC" : "RQ");
        }
        pos = val + len;
    }
    /* PS3.8 §9.3.2: one application context item, one or more presentation context
     * items, one user information item. */
    if (n_app != 1)
        return df_fail(p->err, DF_E_MALFORMED, 0, DF_NO_TAG,
                       "%u application context items (needs 1)", n_app);
    if (n_pc == 0)
        return df_fail(p->err, DF_E_MALFORMED, 0, DF_NO_TAG, "no presentation context items");
    if (n_user > 1 || (n_user == 0 && p->opts->strict))
        return df_fail(p->err, DF_E_MALFORMED, 0, DF_NO_TAG,
                       "%u user information items (needs 1)", n_user);
    return DF_OK;
}

static df_status p_data(parser *p) {
    /* PS3.8 §9.3.5: one or more PDV items: 4-byte length, context ID, control header. */
    size_t pos = DF_PDU_HEADER_LEN;
    if (pos == p->src_len)
        return bad(p, pos, "P-DATA-TF PDU without a PDV item", 0, 1);
    while (pos < p->src_len) {
        size_t len;
        uint32_t me;
        df_pdu_item *it;
        uint8_t control;
        if (p->src_len - pos < 6)
            return bad(p, pos, "PDV item header runs past the PDU", p->src_len - pos, 6);
        len = df_load_u32be(p->src + pos);
        if (len < 2)
            return bad(p, pos, "PDV item length below 2", len, 2);
        if (len > p->src_len - pos - 4)
            return df_fail(p->err, DF_E_MALFORMED, pos, DF_NO_TAG,
                           "PDV item length %zu exceeds the %zu bytes left in the PDU", len,
                           p->src_len - pos - 4);
        control = p->src[pos + 5];
        /* PS3.8 §E.2: bits 2-7 of the message control header are 0. */
        if (p->opts->strict && (control & 0xFC))
            return df_fail(p->err, DF_E_MALFORMED, pos + 5, DF_NO_TAG,
                           "message control header 0x%02X has reserved bits set", control);
        me = push(p, DF_ITEM_PDV, pos + 6, len - 2, DF_PDU_NO_PARENT);
        if ((it = entry(p, me)) != NULL) {
            it->pc_id = p->src[pos + 4];
            it->control = control;
        }
        pos += 4 + len;
    }
    return DF_OK;
}

static df_status check_length(uint32_t type, uint32_t length, const df_pdu_opts *opts,
                              df_error *err) {
    switch (type) {
    case DF_PDU_ASSOCIATE_RQ:
    case DF_PDU_ASSOCIATE_AC:
        if (length < ASSOC_FIXED_LEN)
            return df_fail(err, DF_E_MALFORMED, 2, DF_NO_TAG,
                           "A-ASSOCIATE PDU length %u is below the %d fixed bytes", length,
                           ASSOC_FIXED_LEN);
        if (opts->max_other_len && length > opts->max_other_len)
            return df_fail(err, DF_E_LIMIT, 2, DF_NO_TAG,
                           "A-ASSOCIATE PDU length %u exceeds the limit %u", length,
                           opts->max_other_len);
        return DF_OK;
    case DF_PDU_P_DATA_TF:
        if (length < 6)
            return df_fail(err, DF_E_MALFORMED, 2, DF_NO_TAG,
                           "P-DATA-TF PDU length %u cannot hold a PDV item", length);
        if (opts->max_pdata_len && length > opts->max_pdata_len)
            return df_fail(err, DF_E_LIMIT, 2, DF_NO_TAG,
                           "P-DATA-TF PDU length %u exceeds the maximum length %u we offered",
                           length, opts->max_pdata_len);
        return DF_OK;
    case DF_PDU_ASSOCIATE_RJ:
    case DF_PDU_RELEASE_RQ:
    case DF_PDU_RELEASE_RP:
    case DF_PDU_ABORT:
        if (length != FIXED_PDU_LEN)
            return df_fail(err, DF_E_MALFORMED, 2, DF_NO_TAG,
                           "PDU type 0x%02X has length %u (must be 4)", type, length);
        return DF_OK;
    default:
        return df_fail(err, DF_E_MALFORMED, 0, DF_NO_TAG, "unrecognized PDU type 0x%02X", type);
    }
}

df_status df_pdu_frame(const uint8_t *src, size_t src_len, df_pdu_frame_info *dst,
                       const df_pdu_opts *opts, df_error *err) {
    df_status st;
    df_error_clear(err);
    dst->type = 0;
    dst->length = 0;
    dst->needed = DF_PDU_HEADER_LEN;
    dst->complete = 0;
    if (src_len < DF_PDU_HEADER_LEN) {
        /* The type byte alone already tells an unrecognized PDU: refuse it at once. */
        if (src_len >= 1 && (src[0] < DF_PDU_ASSOCIATE_RQ || src[0] > DF_PDU_ABORT))
            return df_fail(err, DF_E_MALFORMED, 0, DF_NO_TAG, "unrecognized PDU type 0x%02X",
                           src[0]);
        return DF_OK;
    }
    dst->type = src[0];
    dst->length = df_load_u32be(src + 2);
    if ((st = check_length(dst->type, dst->length, opts, err)) != DF_OK)
        return st;
    dst->needed = (uint64_t)DF_PDU_HEADER_LEN + dst->length;
    dst->complete = (uint64_t)src_len >= dst->needed;
    return DF_OK;
}

df_status df_pdu_parse(const uint8_t *src, size_t src_len, df_pdu_item *dst, size_t dst_len,
                       size_t *n_out, const df_pdu_opts *opts, df_error *err) {
    parser p;
    df_status st;
    uint32_t type, length;
    df_error_clear(err);
    *n_out = 0;
    if (src_len < DF_PDU_HEADER_LEN)
        return df_fail(err, DF_E_TRUNCATED, src_len, DF_NO_TAG,
                       "%zu bytes cannot hold a PDU header", src_len);
    if (src_len > (size_t)0xFFFFFFFFu)
        return df_fail(err, DF_E_LIMIT, 0, DF_NO_TAG, "PDU of %zu bytes", src_len);
    type = src[0];
    length = df_load_u32be(src + 2);
    if ((st = check_length(type, length, opts, err)) != DF_OK)
        return st;
    if ((uint64_t)length + DF_PDU_HEADER_LEN > src_len)
        return df_fail(err, DF_E_TRUNCATED, src_len, DF_NO_TAG,
                       "PDU length %u but only %zu bytes after the header", length,
                       src_len - DF_PDU_HEADER_LEN);
    if ((uint64_t)length + DF_PDU_HEADER_LEN < src_len)
        return df_fail(err, DF_E_INVALID_ARG, (uint64_t)length + DF_PDU_HEADER_LEN, DF_NO_TAG,
                       "%zu bytes follow the PDU", src_len - length - DF_PDU_HEADER_LEN);
    p.src = src;
    p.src_len = src_len;
    p.dst = dst;
    p.dst_len = dst != NULL ? dst_len : 0;
    p.n = 0;
    p.opts = opts;
    p.err = err;
    switch (type) {
    case DF_PDU_ASSOCIATE_RQ:
    case DF_PDU_ASSOCIATE_AC:
        st = associate(&p, type == DF_PDU_ASSOCIATE_AC);
        break;
    case DF_PDU_P_DATA_TF:
        st = p_data(&p);
        break;
    default:
        st = DF_OK;  /* fixed-size PDUs: the length check was all */
        break;
    }
    if (st != DF_OK)
        return st;
    *n_out = p.n;
    if (p.n > p.dst_len)
        return df_fail(err, DF_E_OUTPUT_TOO_SMALL, 0, DF_NO_TAG, "need %zu item entries", p.n);
    return DF_OK;
}
