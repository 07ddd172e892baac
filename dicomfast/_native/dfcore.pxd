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
