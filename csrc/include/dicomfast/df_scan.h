/* Element scanner: walks an encoded dataset and fills a flat element index.
 *
 * The index is a preorder list of df_element. A container (sequence, item,
 * encapsulated Pixel Data) is followed by its children; `end` is the index one
 * past its subtree, so siblings are found by jumping from entry to entry.end.
 * No value is copied: offsets point into the caller's buffer.
 */
#ifndef DICOMFAST_DF_SCAN_H
#define DICOMFAST_DF_SCAN_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* VRs are two ASCII letters packed big-endian: 'P','N' -> 0x504E. */
#define DF_VR(a, b) ((uint16_t)(((uint16_t)(a) << 8) | (uint16_t)(b)))
/* Codes for dictionary entries whose VR depends on other elements (PS3.6). */
#define DF_VR_US_SS DF_VR('x', 's')
#define DF_VR_OB_OW DF_VR('o', 'x')
#define DF_VR_US_SS_OW DF_VR('x', 'w')
#define DF_VR_US_OW DF_VR('u', 'w')
#define DF_VR_NONE 0

#define DF_UNDEFINED_LENGTH 0xFFFFFFFFu

/* df_element.flags */
#define DF_EL_UNDEFINED 0x0001u      /* stored with undefined length */
#define DF_EL_SEQUENCE 0x0002u       /* children are items */
#define DF_EL_ITEM 0x0004u           /* an item (FFFE,E000) of a sequence */
#define DF_EL_FRAGMENTS 0x0008u      /* encapsulated data: children are fragments */
#define DF_EL_FRAGMENT 0x0010u       /* one fragment item (the first is the offset table) */
#define DF_EL_IMPLICIT 0x0020u       /* read as implicit VR (VR from the dictionary) */
#define DF_EL_BIG_ENDIAN 0x0040u     /* value is big endian */
#define DF_EL_VR_FROM_DICT 0x0080u   /* VR was not in the stream */
#define DF_EL_UN_SEQUENCE 0x0100u    /* UN of undefined length read as implicit VR LE sequence */
#define DF_EL_ODD_LENGTH 0x0200u     /* value length is odd (PS3.5 §7.1.1 wants even) */
#define DF_EL_TRUNCATED 0x0400u      /* the data ends inside this value; length is what remains */
#define DF_EL_NO_DELIMITER 0x0800u   /* undefined length, but the data ended before its delimiter */

typedef struct df_element {
    uint32_t tag;
    uint16_t vr;
    uint16_t flags;
    uint32_t length;        /* value length in bytes (content length for undefined) */
    uint32_t end;           /* index one past this entry's subtree */
    uint64_t offset;        /* offset of the value in src */
    uint64_t header_offset; /* offset of the element's tag in src */
} df_element;

/* One implicit VR lookup entry (exact tag). Sorted ascending by tag. */
typedef struct df_vr_entry {
    uint32_t tag;
    uint16_t vr;
    uint16_t pad;
} df_vr_entry;

/* Repeating-group entry: tag & mask == value (e.g. (60xx,3000)). */
typedef struct df_vr_mask {
    uint32_t mask;
    uint32_t value;
    uint16_t vr;
    uint16_t pad;
} df_vr_mask;

typedef struct df_scan_opts {
    int little_endian;
    int explicit_vr;
    int strict;
    uint32_t max_depth;            /* sequence nesting limit; 0 means DF_SCAN_DEFAULT_DEPTH */
    uint32_t stop_before;          /* 1: stop at top-level Pixel Data/Float/Double Pixel Data */
    uint32_t meta_only;            /* 1: read group 0002 only (File Meta), stop at the first other group */
    uint32_t sequence_content;     /* 1: src is the value of a sequence (items), not a data set */
    uint64_t base_offset;          /* added to offsets in error reports (e.g. after a preamble) */
    const df_vr_entry *dict;       /* implicit VR lookup */
    size_t dict_len;
    const df_vr_mask *masks;
    size_t masks_len;
    const df_vr_entry *hash;       /* optional: `dict` as an open-addressing table of
                                    * 2^hash_bits slots (df_scan_vr_hash_build), so an
                                    * implicit VR lookup is one or two probes */
    uint32_t hash_bits;
} df_scan_opts;

#define DF_SCAN_DEFAULT_DEPTH 64u
#define DF_SCAN_MAX_DEPTH 512u

typedef struct df_scan_result {
    size_t n_elements;     /* entries written (or needed, with DF_E_OUTPUT_TOO_SMALL) */
    size_t bytes_used;     /* bytes of src consumed by the dataset */
    uint32_t warnings;     /* DF_WARN_* bits for recoverable oddities */
} df_scan_result;

/* df_scan_result.warnings */
#define DF_WARN_TRAILING_BYTES 0x1u     /* fewer than 8 bytes after the last element, ignored */
#define DF_WARN_ODD_LENGTH 0x2u         /* an odd value length */
#define DF_WARN_STRAY_DELIMITER 0x4u    /* an item/sequence delimiter outside a container, skipped */
#define DF_WARN_UNKNOWN_VR 0x8u         /* an explicit VR not in PS3.5 Table 6.2-1 */
#define DF_WARN_IMPLICIT_IN_EXPLICIT 0x10u /* implicit VR data though the syntax is explicit */
#define DF_WARN_EXPLICIT_IN_IMPLICIT 0x20u /* explicit VR data though the syntax is implicit */
#define DF_WARN_MISSING_DELIMITER 0x40u /* an undefined-length container ends with the data */
#define DF_WARN_TRUNCATED_VALUE 0x80u   /* the data ends inside the last value (kept, cut short) */

/* Scan src into dst (dst_len entries). On DF_E_OUTPUT_TOO_SMALL the scan runs to
 * the end counting, and res->n_elements is the number of entries needed. */
df_status df_scan_dataset(const uint8_t *src, size_t src_len, df_element *dst, size_t dst_len,
                          df_scan_result *res, const df_scan_opts *opts, df_error *err);

/* Preamble check: returns the offset where the File Meta group starts
 * (132 after a preamble + "DICM", 0 when the stream starts with group 0002 or
 * a dataset), and sets *has_meta. */
df_status df_scan_preamble(const uint8_t *src, size_t src_len, size_t *n_out, int *has_preamble,
                           int *has_meta, df_error *err);

/* Look up the implicit VR of a tag (exact table, then masks, then private rules). */
uint16_t df_scan_lookup_vr(uint32_t tag, const df_scan_opts *opts);

/* Slots of the hash table for n exact entries: a power of two at least 2n. */
#define DF_SCAN_VR_HASH_EMPTY 0xFFFFFFFFu /* (FFFF,FFFF) is never a dictionary tag */
uint32_t df_scan_vr_hash_bits(size_t n);

/* Lay src (src_len exact entries) out as a hash table in dst, which has
 * dst_len == 2^bits slots. Fails with DF_E_OUTPUT_TOO_SMALL when dst_len is not
 * 2^df_scan_vr_hash_bits(src_len), DF_E_INVALID_ARG for a tag equal to
 * DF_SCAN_VR_HASH_EMPTY. */
df_status df_scan_vr_hash_build(const df_vr_entry *src, size_t src_len, df_vr_entry *dst,
                                size_t dst_len, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
