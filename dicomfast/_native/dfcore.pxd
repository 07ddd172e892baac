# The one declaration of the C API (csrc/include/dicomfast/*.h) for Cython.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "dicomfast/df_common.h" nogil:
    ctypedef int df_status
    enum:
        DF_OK
        DF_E_TRUNCATED
        DF_E_MALFORMED
        DF_E_OUTPUT_TOO_SMALL
        DF_E_LIMIT
        DF_E_UNSUPPORTED
        DF_E_INVALID_ARG
        DF_E_DECODE
        DF_E_NOT_DICOM
        DF_E_NO_MEMORY
        DF_E_LIBRARY
        DF_NO_TAG

    ctypedef struct df_error:
        df_status status
        uint64_t offset
        uint32_t tag
        char detail[160]

    void df_error_clear(df_error *err)


cdef extern from "dicomfast/df_scan.h" nogil:
    enum:
        DF_UNDEFINED_LENGTH
        DF_EL_UNDEFINED
        DF_EL_SEQUENCE
        DF_EL_ITEM
        DF_EL_FRAGMENTS
        DF_EL_FRAGMENT
        DF_EL_IMPLICIT
        DF_EL_BIG_ENDIAN
        DF_EL_VR_FROM_DICT
        DF_EL_UN_SEQUENCE
        DF_EL_ODD_LENGTH
        DF_EL_TRUNCATED
        DF_EL_NO_DELIMITER
        DF_SCAN_DEFAULT_DEPTH
        DF_SCAN_MAX_DEPTH

    ctypedef struct df_element:
        uint32_t tag
        uint16_t vr
        uint16_t flags
        uint32_t length
        uint32_t end
        uint64_t offset
        uint64_t header_offset

    ctypedef struct df_vr_entry:
        uint32_t tag
        uint16_t vr
        uint16_t pad

    ctypedef struct df_vr_mask:
        uint32_t mask
        uint32_t value
        uint16_t vr
        uint16_t pad

    ctypedef struct df_scan_opts:
        int little_endian
        int explicit_vr
        int strict
        uint32_t max_depth
        uint32_t stop_before
        uint32_t meta_only
        uint32_t sequence_content
        uint64_t base_offset
        const df_vr_entry *dict
        size_t dict_len
        const df_vr_mask *masks
        size_t masks_len
        const df_vr_entry *hash
        uint32_t hash_bits

    ctypedef struct df_scan_result:
        size_t n_elements
        size_t bytes_used
        uint32_t warnings

    df_status df_scan_dataset(const uint8_t *src, size_t src_len, df_element *dst,
                              size_t dst_len, df_scan_result *res, const df_scan_opts *opts,
                              df_error *err)
    df_status df_scan_preamble(const uint8_t *src, size_t src_len, size_t *n_out,
                               int *has_preamble, int *has_meta, df_error *err)
    uint16_t df_scan_lookup_vr(uint32_t tag, const df_scan_opts *opts)
    uint32_t df_scan_vr_hash_bits(size_t n)
    df_status df_scan_vr_hash_build(const df_vr_entry *src, size_t src_len, df_vr_entry *dst,
                                    size_t dst_len, df_error *err)


cdef extern from "dicomfast/df_swap.h" nogil:
    ctypedef struct df_swap_opts:
        unsigned width

    ctypedef struct df_unpack_opts:
        uint64_t first_bit
        uint64_t count

    df_status df_swap_bytes(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                            size_t *n_out, const df_swap_opts *opts, df_error *err)
    df_status df_unpack_bits(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                             size_t *n_out, const df_unpack_opts *opts, df_error *err)


cdef extern from "dicomfast/df_encaps.h" nogil:
    enum:
        DF_MARKER_NONE
        DF_MARKER_JPEG
        DF_MARKER_J2K

    ctypedef struct df_fragment:
        uint64_t offset
        uint64_t length
        uint64_t item_offset

    ctypedef struct df_frame_span:
        uint32_t first
        uint32_t count
        uint64_t offset
        uint64_t length

    ctypedef struct df_encaps_opts:
        int little_endian
        uint32_t n_frames
        int marker
        const uint8_t *eot
        size_t eot_len
        const uint8_t *eot_lengths
        size_t eot_lengths_len

    df_status df_encaps_fragments(const uint8_t *src, size_t src_len, df_fragment *dst,
                                  size_t dst_len, size_t *n_out, const df_encaps_opts *opts,
                                  df_error *err)
    df_status df_encaps_frames(const uint8_t *src, size_t src_len, const df_fragment *frags,
                               size_t n_frags, df_frame_span *dst, size_t dst_len, size_t *n_out,
                               const df_encaps_opts *opts, df_error *err)


# JPEG Baseline / Extended through libjpeg-turbo (csrc/src/glue/df_jpeg.c; built when
# cmake/libjpeg.cmake finds the library).
cdef extern from "dicomfast/df_jpeg.h" nogil:
    enum:
        DF_JPEG_CS_UNKNOWN
        DF_JPEG_CS_GRAY
        DF_JPEG_CS_RGB
        DF_JPEG_CS_YBR
        DF_JPEG_FROM_JFIF
        DF_JPEG_FROM_ADOBE
        DF_JPEG_FROM_IDS
        DF_JPEG_FROM_HINT
        DF_JPEG_FROM_COMPONENTS

    ctypedef struct df_jpeg_info:
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t precision
        uint32_t sof
        uint32_t colour_space
        uint32_t colour_from

    ctypedef struct df_jpeg_opts:
        uint32_t hint
        int keep_ybr
        int strict

    int df_jpeg_max_precision()
    const char *df_jpeg_library()
    df_status df_jpeg_read_info(const uint8_t *src, size_t src_len, df_jpeg_info *info,
                                const df_jpeg_opts *opts, df_error *err)
    df_status df_jpeg_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                             size_t *n_out, const df_jpeg_opts *opts, df_error *err)

    ctypedef struct df_jpeg_enc_opts:
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t quality
        int input_ybr
        int subsample

    df_status df_jpeg_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                             size_t *n_out, const df_jpeg_enc_opts *opts, df_error *err)


# JPEG-LS through CharLS (csrc/src/glue/df_jpegls.c; built when cmake/charls.cmake finds it).
cdef extern from "dicomfast/df_jpegls.h" nogil:
    ctypedef struct df_jpegls_info:
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t precision
        uint32_t near_lossless
        uint32_t interleave
        uint32_t colour_transform

    ctypedef struct df_jpegls_opts:
        int reserved

    const char *df_jpegls_library()
    df_status df_jpegls_read_info(const uint8_t *src, size_t src_len, df_jpegls_info *info,
                                  const df_jpegls_opts *opts, df_error *err)
    df_status df_jpegls_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                               size_t *n_out, const df_jpegls_opts *opts, df_error *err)

    ctypedef struct df_jpegls_enc_opts:
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t precision
        uint32_t sample_bytes
        uint32_t is_signed
        uint32_t near

    size_t df_jpegls_encode_bound(const df_jpegls_enc_opts *opts)
    df_status df_jpegls_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                               size_t *n_out, const df_jpegls_enc_opts *opts, df_error *err)


# Deflated Image Frame Compression through zlib (csrc/src/glue/df_zlib.c; built when
# cmake/zlib.cmake finds it).
cdef extern from "dicomfast/df_zlib.h" nogil:
    ctypedef struct df_zlib_opts:
        int level
        int strict

    const char *df_zlib_library()
    df_status df_zlib_inflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                              size_t *n_out, const df_zlib_opts *opts, df_error *err)
    size_t df_zlib_deflate_bound(size_t src_len)
    df_status df_zlib_deflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                              size_t *n_out, const df_zlib_opts *opts, df_error *err)


cdef extern from "dicomfast/df_rle.h" nogil:
    enum:
        DF_RLE_MAX_SEGMENTS
        DF_RLE_HEADER_LEN

    ctypedef struct df_rle_opts:
        uint32_t rows
        uint32_t columns
        uint16_t samples_per_pixel
        uint16_t bits_allocated
        int strict

    df_status df_rle_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                            size_t *n_out, const df_rle_opts *opts, df_error *err)
    size_t df_rle_encode_bound(const df_rle_opts *opts)
    df_status df_rle_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                            size_t *n_out, const df_rle_opts *opts, df_error *err)


# Upper layer PDU framing and item parsing (csrc/src/df_pdu.c; PS3.8 §9.3).
cdef extern from "dicomfast/df_pdu.h" nogil:
    enum:
        DF_PDU_NO_PARENT
        DF_PDU_HEADER_LEN

    ctypedef struct df_pdu_opts:
        uint32_t max_pdata_len
        uint32_t max_other_len
        int strict

    ctypedef struct df_pdu_frame_info:
        uint32_t type
        uint32_t length
        uint64_t needed
        int complete

    ctypedef struct df_pdu_item:
        uint32_t offset
        uint32_t length
        uint32_t parent
        uint8_t type
        uint8_t pc_id
        uint8_t control
        uint8_t result

    df_status df_pdu_frame(const uint8_t *src, size_t src_len, df_pdu_frame_info *dst,
                           const df_pdu_opts *opts, df_error *err)
    df_status df_pdu_parse(const uint8_t *src, size_t src_len, df_pdu_item *dst,
                           size_t dst_len, size_t *n_out, const df_pdu_opts *opts,
                           df_error *err)


# Lossless JPEG, ITU-T T.81 process 14 (csrc/src/df_ljpeg.c, df_ljpeg_enc.c; PS3.5 §A.4.1).
cdef extern from "dicomfast/df_ljpeg.h" nogil:
    enum:
        DF_LJPEG_MAX_COMPONENTS

    ctypedef struct df_ljpeg_info_t:
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t precision
        uint32_t bytes_per_sample
        uint32_t planar
        uint32_t restart_interval
        uint32_t comp_rows[4]
        uint32_t comp_columns[4]
        uint8_t comp_id[4]
        uint8_t comp_h[4]
        uint8_t comp_v[4]
        size_t out_len
        size_t sof_offset

    ctypedef struct df_ljpeg_opts:
        int strict
        int planar
        int int16_predictors

    ctypedef struct df_ljpeg_enc_opts:
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t precision

    df_status df_ljpeg_info(const uint8_t *src, size_t src_len, df_ljpeg_info_t *info,
                            df_error *err)
    df_status df_ljpeg_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                              size_t *n_out, const df_ljpeg_opts *opts, df_error *err)
    size_t df_ljpeg_encode_bound(const df_ljpeg_enc_opts *opts)
    df_status df_ljpeg_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                              size_t *n_out, const df_ljpeg_enc_opts *opts, df_error *err)


# ---- JPEG 2000 / HTJ2K (df_j2k.h): OpenJPEG in _j2k, OpenJPH in _htj2k ----
cdef extern from "dicomfast/df_j2k.h" nogil:
    enum:
        DF_J2K_LRCP
        DF_J2K_RLCP
        DF_J2K_RPCL
        DF_J2K_PCRL
        DF_J2K_CPRL
        DF_J2K_MAX_PRECISION
        DF_J2K_MAX_LAYERS

    ctypedef struct df_j2k_info:
        uint32_t columns
        uint32_t rows
        uint32_t x0
        uint32_t y0
        uint32_t tile_width
        uint32_t tile_height
        uint32_t n_tiles
        uint32_t components
        uint32_t precision
        uint32_t is_signed
        uint32_t uniform
        uint32_t subsampled
        uint32_t levels
        uint32_t layers
        uint32_t progression
        uint32_t reversible
        uint32_t mct
        uint32_t htj2k
        uint32_t jp2
        uint32_t colour_space
        uint32_t coding_style
        uint32_t quant_style
        uint32_t quant_bands
        uint64_t codestream_offset
        uint64_t codestream_len
        uint64_t header_len

    ctypedef struct df_j2k_decode_opts:
        uint32_t reduce
        uint32_t threads
        uint32_t rows
        uint32_t columns
        uint32_t components
        uint32_t sample_bytes
        int out_signed
        int fix_sign
        int strict

    ctypedef struct df_j2k_encode_opts:
        uint32_t rows
        uint32_t columns
        uint32_t samples
        uint32_t bits_stored
        uint32_t sample_bytes
        int is_signed
        int lossless
        int mct
        uint32_t n_layers
        int use_psnr
        double layers[16]
        uint32_t levels
        int progression
        uint32_t threads
        float qstep
        int tlm

    df_status df_j2k_info_read(const uint8_t *src, size_t src_len, df_j2k_info *info,
                               df_error *err)
    df_status df_j2k_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                            size_t *n_out, const df_j2k_decode_opts *opts, df_error *err)
    df_status df_j2k_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                            size_t *n_out, const df_j2k_encode_opts *opts, df_error *err)
    const char *df_j2k_library_version()
    df_status df_htj2k_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                              size_t *n_out, const df_j2k_decode_opts *opts, df_error *err)
    df_status df_htj2k_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
                              size_t *n_out, const df_j2k_encode_opts *opts, df_error *err)
    const char *df_htj2k_library_version()
