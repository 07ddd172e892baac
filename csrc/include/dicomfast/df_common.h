/* dicomfast C core: status codes, error record and the bounds-checked cursor.
 *
 * Every entry point of the C core has the shape
 *   df_status df_<area>_<verb>(const uint8_t *src, size_t src_len,
 *                              <dst, dst_len, n_out>, const df_<area>_opts *opts,
 *                              df_error *err);
 * It returns DF_OK (0) or a negative DF_E_* code and fills *err with where and why.
 * The core has no globals, does no I/O and never allocates memory a caller must free.
 */
#ifndef DICOMFAST_DF_COMMON_H
#define DICOMFAST_DF_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int df_status;

/* Stable codes: _native/_status.pyx maps each to one Python exception. */
#define DF_OK 0
#define DF_E_TRUNCATED (-1)          /* input ends inside something it announced */
#define DF_E_MALFORMED (-2)          /* breaks the encoding rules */
#define DF_E_OUTPUT_TOO_SMALL (-3)   /* dst too small; *n_out says how much is needed */
#define DF_E_LIMIT (-4)              /* a configured limit (depth, count, size) exceeded */
#define DF_E_UNSUPPORTED (-5)        /* valid but not handled (e.g. a codec feature) */
#define DF_E_INVALID_ARG (-6)        /* caller passed inconsistent arguments */
#define DF_E_DECODE (-7)             /* compressed data is corrupt */
#define DF_E_NOT_DICOM (-8)          /* not a DICOM stream at all */
#define DF_E_NO_MEMORY (-9)          /* a library we call failed to allocate */
#define DF_E_LIBRARY (-10)           /* an external codec library reported an error */

#define DF_ERROR_DETAIL_LEN 160

typedef struct df_error {
    df_status status;
    uint64_t offset;   /* byte offset in src where the problem was found */
    uint32_t tag;      /* element being read, or 0xFFFFFFFF when none */
    char detail[DF_ERROR_DETAIL_LEN];
} df_error;

#define DF_NO_TAG 0xFFFFFFFFu

/* Record an error; returns status so callers can `return df_fail(...)`. */
df_status df_fail(df_error *err, df_status status, uint64_t offset, uint32_t tag,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

void df_error_clear(df_error *err);

/* Bounds-checked cursor over a read-only buffer. All reads of untrusted input
 * go through these helpers: a read past the end is reported, never performed. */
typedef struct df_cursor {
    const uint8_t *base;
    size_t len;
    size_t pos;
} df_cursor;

static inline void df_cursor_init(df_cursor *c, const uint8_t *src, size_t src_len) {
    c->base = src;
    c->len = src_len;
    c->pos = 0;
}

static inline size_t df_cursor_remaining(const df_cursor *c) { return c->len - c->pos; }

static inline int df_cursor_has(const df_cursor *c, size_t n) { return c->len - c->pos >= n; }

static inline uint16_t df_load_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint16_t df_load_u16be(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t df_load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint32_t df_load_u32be(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t df_load_u64le(const uint8_t *p) {
    return (uint64_t)df_load_u32le(p) | ((uint64_t)df_load_u32le(p + 4) << 32);
}

#ifdef __cplusplus
}
#endif

#endif
