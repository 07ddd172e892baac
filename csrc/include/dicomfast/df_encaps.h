/* Encapsulated pixel data (PS3.5 §A.4): fragments, offset tables, frames. */
#ifndef DICOMFAST_DF_ENCAPS_H
#define DICOMFAST_DF_ENCAPS_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct df_fragment {
    uint64_t offset;     /* offset of the fragment's data in src */
    uint64_t length;
    uint64_t item_offset; /* offset of its item tag, relative to the first fragment after the BOT */
} df_fragment;

typedef struct df_frame_span {
    uint32_t first;      /* index of the frame's first fragment (0 = first after the BOT) */
    uint32_t count;      /* number of fragments */
    uint64_t offset;     /* offset of the first fragment's data in src */
    uint64_t length;     /* total data bytes over its fragments (EOT: the table's length) */
} df_frame_span;

/* Where frames start when there is no offset table and fragments are split. */
#define DF_MARKER_NONE 0   /* no markers: cannot split (RLE, unknown) */
#define DF_MARKER_JPEG 1   /* SOI FF D8 (JPEG, JPEG-LS, lossless JPEG) */
#define DF_MARKER_J2K 2    /* SOC FF 4F (JPEG 2000, HTJ2K) */

typedef struct df_encaps_opts {
    int little_endian;
    uint32_t n_frames;            /* Number of Frames (1 when absent) */
    int marker;                   /* DF_MARKER_* of the transfer syntax */
    const uint8_t *eot;           /* Extended Offset Table (7FE0,0001) value, or NULL */
    size_t eot_len;
    const uint8_t *eot_lengths;   /* Extended Offset Table Lengths (7FE0,0002), or NULL */
    size_t eot_lengths_len;
} df_encaps_opts;

/* List the fragments of an encapsulated value (from the Basic Offset Table item to
 * the sequence delimiter or the end). dst[0] is the BOT; *n_out the number of items.
 * DF_E_OUTPUT_TOO_SMALL sets *n_out to the count needed. */
df_status df_encaps_fragments(const uint8_t *src, size_t src_len, df_fragment *dst, size_t dst_len,
                              size_t *n_out, const df_encaps_opts *opts, df_error *err);

/* Compute the frames' spans from the fragments (frags[0] is the BOT) following
 * PS3.5 §A.4: Extended Offset Table, else Basic Offset Table, else one fragment per
 * frame, else all fragments one frame, else frame starts found from markers. */
df_status df_encaps_frames(const uint8_t *src, size_t src_len, const df_fragment *frags,
                           size_t n_frags, df_frame_span *dst, size_t dst_len, size_t *n_out,
                           const df_encaps_opts *opts, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
