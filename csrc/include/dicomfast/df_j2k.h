/* JPEG 2000 (ISO/IEC 15444-1) and HTJ2K (ISO/IEC 15444-15) frames of encapsulated
 * pixel data: PS3.5 §8.2.4 and §A.4.4 (JPEG 2000), §10.18 (HTJ2K).
 *
 * The codestream header reader and the sample packing below need no codec
 * library and live in df_j2k.c. Decoding and encoding go through OpenJPEG
 * (glue/df_j2k_openjpeg.c: df_j2k_*) and OpenJPH (glue/df_htj2k_openjph.cpp:
 * df_htj2k_*); each is compiled only when CMake finds its library, which it
 * announces with DF_HAVE_OPENJPEG / DF_HAVE_OPENJPH.
 *
 * Decoders write native little-endian samples, pixel-interleaved, into the
 * caller's dst; they check the whole output size against dst_len before any
 * sample is decoded. Encoders write a raw J2K codestream (no JP2 boxes: PS3.5
 * §A.4.4) into dst; when it does not fit they return DF_E_OUTPUT_TOO_SMALL with
 * the size needed in *n_out. Libraries may allocate while they run; everything
 * they allocate is freed before the call returns.
 */
#ifndef DICOMFAST_DF_J2K_H
#define DICOMFAST_DF_J2K_H

#include "dicomfast/df_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progression orders, as COD's SGcod stores them (15444-1 Table A.16). */
#define DF_J2K_LRCP 0
#define DF_J2K_RLCP 1
#define DF_J2K_RPCL 2
#define DF_J2K_PCRL 3
#define DF_J2K_CPRL 4

/* Decoders handle up to 16-bit samples: DICOM's Bits Allocated stops there for
 * JPEG 2000 frames in practice, and every sample fits a uint16/int16. */
#define DF_J2K_MAX_PRECISION 16
/* Isot is 16 bits and 65535 is reserved, so a codestream has fewer tiles. */
#define DF_J2K_MAX_TILES 65535u
#define DF_J2K_MAX_LAYERS 16

typedef struct df_j2k_info {
    uint32_t columns;         /* Xsiz - XOsiz */
    uint32_t rows;            /* Ysiz - YOsiz */
    uint32_t x0, y0;          /* image offset on the reference grid */
    uint32_t tile_width, tile_height;
    uint32_t n_tiles;
    uint32_t components;
    uint32_t precision;       /* of component 0 */
    uint32_t is_signed;       /* of component 0 */
    uint32_t uniform;         /* every component has component 0's precision and sign */
    uint32_t subsampled;      /* some component has XRsiz or YRsiz other than 1 */
    uint32_t levels;          /* wavelet decomposition levels (COD) */
    uint32_t layers;          /* quality layers (COD) */
    uint32_t progression;     /* DF_J2K_LRCP .. DF_J2K_CPRL */
    uint32_t reversible;      /* 5/3 wavelet (COD); 0: 9/7 */
    uint32_t mct;             /* multiple component transform (COD) */
    uint32_t htj2k;           /* HT block coder: CAP Part 15 bit or code-block style 0x40 */
    uint32_t jp2;             /* wrapped in JP2 boxes */
    uint32_t colour_space;    /* JP2 colr EnumCS (16 sRGB, 17 grey, 18 sYCC), 0 when none */
    uint32_t coding_style;    /* COD Scod: 2 = SOP markers may be used, 4 = EPH markers used */
    uint32_t quant_style;     /* QCD Sqcd & 0x1F: 0 none, 1 scalar derived, 2 expounded */
    uint32_t quant_bands;     /* subbands QCD gives values for */
    uint32_t max_levels;      /* most decomposition levels of any component (COD, COCs) */
    uint32_t min_quant_bands; /* fewest subbands of QCD and the QCCs with style 0 or 2 */
    uint32_t quant_styles;    /* bit s set when QCD or a QCC has style s */
    uint64_t codestream_offset;  /* where SOC is in src */
    uint64_t codestream_len;     /* bytes from SOC to the end of src or of the jp2c box */
    uint64_t header_len;         /* bytes from SOC to the first SOT (or EOC) */
} df_j2k_info;

/* Read the main header (SOC, SIZ, COD, CAP up to the first SOT) of a codestream,
 * or of the one inside JP2 boxes. Needs no codec library. */
df_status df_j2k_info_read(const uint8_t *src, size_t src_len, df_j2k_info *info,
                           df_error *err);

typedef struct df_j2k_decode_opts {
    uint32_t reduce;          /* resolution levels to discard (each halves rows/columns) */
    uint32_t threads;         /* OpenJPEG worker threads; 0 or 1: the calling thread */
    uint32_t rows, columns;   /* full-resolution size the caller expects; 0: any */
    uint32_t components;      /* components the caller expects; 0: any */
    uint32_t sample_bytes;    /* bytes per output sample: 0 picks 1 up to 8 bits, else 2 */
    int out_signed;           /* the caller's signedness; -1: the codestream's */
    int fix_sign;             /* when out_signed differs from the codestream, reinterpret
                                 each precision-bit value (two's complement <-> unsigned) */
    int strict;               /* refuse JP2-wrapped codestreams */
} df_j2k_decode_opts;

typedef struct df_j2k_encode_opts {
    uint32_t rows, columns;
    uint32_t samples;         /* components, pixel-interleaved in src */
    uint32_t bits_stored;     /* precision, 1..16; every sample must fit in it */
    uint32_t sample_bytes;    /* bytes per sample in src: 1 or 2 (little endian) */
    int is_signed;
    int lossless;             /* reversible 5/3 wavelet; else irreversible 9/7 */
    int mct;                  /* RCT (lossless) or ICT (lossy) over 3 components */
    uint32_t n_layers;        /* quality layers given in layers[]; 0: one layer, everything */
    int use_psnr;             /* layers[] are PSNR targets in dB (rising), else
                                 compression ratios (falling, >= 1) */
    double layers[DF_J2K_MAX_LAYERS];
    uint32_t levels;          /* decomposition levels; 0: 5, fewer for small images */
    int progression;          /* DF_J2K_*; OpenJPEG encodes any, OpenJPH LRCP/RPCL/... */
    uint32_t threads;         /* OpenJPEG worker threads */
    float qstep;              /* OpenJPH irreversible quantisation step; 0: its default */
    int tlm;                  /* add a TLM marker segment (PS3.5 §10.18 for RPCL) */
} df_j2k_encode_opts;

/* OpenJPEG: JPEG 2000 Part 1 and, from OpenJPEG 2.5, HTJ2K codestreams. */
df_status df_j2k_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_j2k_decode_opts *opts, df_error *err);
df_status df_j2k_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                        size_t *n_out, const df_j2k_encode_opts *opts, df_error *err);
const char *df_j2k_library_version(void);

/* OpenJPH: HTJ2K codestreams only. threads is ignored (OpenJPH decodes on the
 * calling thread); the encoder writes an HT codestream with opts->progression. */
df_status df_htj2k_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_j2k_decode_opts *opts, df_error *err);
df_status df_htj2k_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                          size_t *n_out, const df_j2k_encode_opts *opts, df_error *err);
const char *df_htj2k_library_version(void);

/* ---- shared by the glue files; no codec library needed ---- */

/* Validate a decode against the header: supported features, the caller's
 * expected geometry, reduce; fills the output width/height after `reduce`, the
 * bytes per sample and the total size. */
typedef struct df_j2k_plan {
    uint32_t width, height;   /* after reduce */
    uint32_t sample_bytes;
    size_t n_bytes;
} df_j2k_plan;

df_status df_j2k_plan_decode(const df_j2k_info *info, const df_j2k_decode_opts *opts,
                             size_t dst_len, df_j2k_plan *plan, size_t *n_out, df_error *err);

/* Store decoded 32-bit samples of one component into a pixel-interleaved output. */
typedef struct df_j2k_store {
    int32_t lo, hi;           /* clamp to the codestream precision's range */
    uint32_t shift;           /* precision, for the sign reinterpretation */
    int fix;                  /* 0: none, 1: unsigned -> two's complement, 2: the reverse */
    int fold;                 /* widen: 0 none, 1 to uint8 first, 2 to int8 first */
    uint32_t sample_bytes;
} df_j2k_store;

void df_j2k_store_init(df_j2k_store *store, const df_j2k_info *info,
                       const df_j2k_decode_opts *opts, uint32_t sample_bytes);
/* count samples from src into dst (first sample of the component), every stride samples. */
void df_j2k_store_samples(const df_j2k_store *store, const int32_t *src, size_t count,
                          uint8_t *dst, size_t stride);

/* Check encode options and that src holds rows*columns*samples samples that fit
 * bits_stored; a sample out of range is DF_E_INVALID_ARG at its byte offset. */
df_status df_j2k_check_encode(const uint8_t *src, size_t src_len,
                              const df_j2k_encode_opts *opts, df_error *err);
/* Read sample i of src (as df_j2k_encode_opts describes it) as an int32. */
static inline int32_t df_j2k_load_sample(const uint8_t *src, size_t i, uint32_t sample_bytes,
                                         int is_signed) {
    if (sample_bytes == 1)
        return is_signed ? (int32_t)(int8_t)src[i] : (int32_t)src[i];
    uint16_t v = df_load_u16le(src + 2 * i);
    return is_signed ? (int32_t)(int16_t)v : (int32_t)v;
}
/* Read `count` samples of src, `stride` samples apart from sample `first`, into dst. */
void df_j2k_load_samples(const uint8_t *src, size_t first, size_t count, size_t stride,
                         uint32_t sample_bytes, int is_signed, int32_t *dst);
/* Default decomposition levels for an image: up to 5, no more than its size allows. */
uint32_t df_j2k_default_levels(uint32_t rows, uint32_t columns, uint32_t wanted);

/* Walk the tile-parts before a decode. With HT code-blocks (info->htj2k): their
 * data never holds 0xFF followed by a byte above 0x8F (bit-stuffed streams,
 * 15444-15 §7.3) and libraries may assert() rather than report it, so every
 * tile-part body is checked, and a broken tile-part chain is refused. Without:
 * a tile-part header asking for HT code-blocks is refused (they need the main
 * header's CAP), so info->htj2k alone tells whether a frame has any. */
df_status df_j2k_check_tile_parts(const uint8_t *src, size_t src_len, const df_j2k_info *info,
                                  df_error *err);

/* Copy a codestream adding a TLM marker segment (15444-1 §A.7.1) before the
 * first SOT, listing every tile-part's length. */
df_status df_j2k_add_tlm(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                         size_t *n_out, df_error *err);

#ifdef __cplusplus
}
#endif

#endif
