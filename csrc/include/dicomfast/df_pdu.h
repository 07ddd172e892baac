/* DICOM upper layer PDU framing and item parsing, sans-IO (PS3.8 §9.3, PS3.7 Annex D).
 *
 * Two steps, both over caller-owned bytes:
 *   df_pdu_frame  looks at the start of a received byte stream and says whether a whole
 *                 PDU is there, and if not how many bytes must be buffered first; a PDU
 *                 longer than the limits in df_pdu_opts is refused before any of its
 *                 body is buffered (the caller answers with A-ABORT).
 *   df_pdu_parse  checks the structure of one whole PDU and lists its items as a flat
 *                 preorder index (item, its sub-items, the next item, ...), so the
 *                 caller can decode field values knowing every length is in bounds.
 */
#ifndef DICOMFAST_DF_PDU_H
#define DICOMFAST_DF_PDU_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PDU types (PS3.8 Table 9-11 and §9.3.1). */
#define DF_PDU_ASSOCIATE_RQ 0x01
#define DF_PDU_ASSOCIATE_AC 0x02
#define DF_PDU_ASSOCIATE_RJ 0x03
#define DF_PDU_P_DATA_TF 0x04
#define DF_PDU_RELEASE_RQ 0x05
#define DF_PDU_RELEASE_RP 0x06
#define DF_PDU_ABORT 0x07

/* Item and sub-item types (PS3.8 §9.3.2-9.3.3, Annex D; PS3.7 Annex D.3.3). */
#define DF_ITEM_APPLICATION_CONTEXT 0x10
#define DF_ITEM_PRESENTATION_CONTEXT_RQ 0x20
#define DF_ITEM_PRESENTATION_CONTEXT_AC 0x21
#define DF_ITEM_ABSTRACT_SYNTAX 0x30
#define DF_ITEM_TRANSFER_SYNTAX 0x40
#define DF_ITEM_USER_INFORMATION 0x50
#define DF_ITEM_MAXIMUM_LENGTH 0x51
#define DF_ITEM_IMPLEMENTATION_CLASS_UID 0x52
#define DF_ITEM_ASYNC_OPERATIONS_WINDOW 0x53
#define DF_ITEM_ROLE_SELECTION 0x54
#define DF_ITEM_IMPLEMENTATION_VERSION_NAME 0x55
#define DF_ITEM_SOP_CLASS_EXTENDED 0x56
#define DF_ITEM_SOP_CLASS_COMMON_EXTENDED 0x57
#define DF_ITEM_USER_IDENTITY_RQ 0x58
#define DF_ITEM_USER_IDENTITY_AC 0x59
/* Not a wire type: the index entry of one PDV item of a P-DATA-TF PDU. */
#define DF_ITEM_PDV 0xFF

#define DF_PDU_HEADER_LEN 6
#define DF_PDU_NO_PARENT 0xFFFFFFFFu

typedef struct df_pdu_opts {
    /* Largest P-DATA-TF PDU-length accepted: the Maximum Length we advertised
     * (PS3.8 Annex D.1). 0: no limit, as advertising 0 promises the peer. */
    uint32_t max_pdata_len;
    /* Largest PDU-length accepted for the other PDU types (association PDUs carry
     * no negotiated bound, but a receiver must never buffer without one); 0: none. */
    uint32_t max_other_len;
    /* Non-zero: also refuse what PS3.8 says "shall not be tested" on receipt is
     * nonetheless wrong (a wrong fixed length, unknown item types, reserved bits). */
    int strict;
} df_pdu_opts;

typedef struct df_pdu_frame_info {
    uint32_t type;    /* PDU type, once the header is in */
    uint32_t length;  /* the PDU-length field: bytes after the 6-byte header */
    uint64_t needed;  /* total bytes src must hold for the PDU to be complete */
    int complete;     /* 1: src starts with `needed` bytes of a whole PDU; 0: need more */
} df_pdu_frame_info;

/* One entry of the item index. `offset`/`length` locate the item's value (after its
 * own header) in src; for a PDV item, the presentation data value after the context
 * ID and message control header. */
typedef struct df_pdu_item {
    uint32_t offset;
    uint32_t length;
    uint32_t parent;   /* index of the enclosing item; DF_PDU_NO_PARENT at top level */
    uint8_t type;      /* DF_ITEM_* */
    uint8_t pc_id;     /* PDV: presentation context ID; presentation context items too */
    uint8_t control;   /* PDV: message control header (bit 0 command, bit 1 last) */
    uint8_t result;    /* presentation context AC: result/reason */
} df_pdu_item;

/* Whether src begins with a whole PDU. DF_OK with info->complete = 0 means "need
 * more bytes" (info->needed says how many in all). DF_E_MALFORMED: an unknown PDU
 * type or a length impossible for the type (PS3.8 §9.3; A-ABORT reason 1 or 6).
 * DF_E_LIMIT: longer than opts allows (A-ABORT). */
df_status df_pdu_frame(const uint8_t *src, size_t src_len, df_pdu_frame_info *dst,
                       const df_pdu_opts *opts, df_error *err);

/* Check one whole PDU (header included, src_len == 6 + PDU-length) and index its
 * items. A-ASSOCIATE-RQ/AC: items and sub-items; P-DATA-TF: PDV items; the fixed-size
 * PDUs: no entries, only the checks. DF_E_OUTPUT_TOO_SMALL sets *n_out to the number
 * of entries needed. Every entry's value lies inside src; every fixed-size field and
 * every length inside a sub-item's value (role selection, extended negotiation, user
 * identity) has been checked, so callers decode values without further bounds checks. */
df_status df_pdu_parse(const uint8_t *src, size_t src_len, df_pdu_item *dst, size_t dst_len,
                       size_t *n_out, const df_pdu_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
