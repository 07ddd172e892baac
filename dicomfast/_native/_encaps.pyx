# cython: language_level=3, boundscheck=False, wraparound=False
"""Encapsulated pixel data: the fragments of a value and each frame's span."""
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint8_t
from libc.string cimport memset

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_OUTPUT_TOO_SMALL, df_encaps_fragments, df_encaps_frames, df_encaps_opts, df_error,
    df_fragment, df_frame_span, df_status,
)

MARKER_NONE = 0
MARKER_JPEG = 1
MARKER_J2K = 2


def frame_spans(const uint8_t[::1] value not None, unsigned int n_frames, int marker=0,
                bint little_endian=True, const uint8_t[::1] eot=None,
                const uint8_t[::1] eot_lengths=None):
    """Fragments and frames of an encapsulated Pixel Data value (PS3.5 §A.4).

    Returns (fragments, frames): fragments as [(offset, length)] with the Basic
    Offset Table first; frames as [(first_fragment, count, offset, length)] where
    first_fragment counts from the first fragment after the table and offsets
    are into `value`.
    """
    cdef df_encaps_opts opts
    memset(&opts, 0, sizeof(opts))
    opts.little_endian = little_endian
    opts.n_frames = n_frames
    opts.marker = marker
    if eot is not None and eot.shape[0]:
        opts.eot = &eot[0]
        opts.eot_len = eot.shape[0]
    if eot_lengths is not None and eot_lengths.shape[0]:
        opts.eot_lengths = &eot_lengths[0]
        opts.eot_lengths_len = eot_lengths.shape[0]
    cdef const uint8_t *src = &value[0] if value.shape[0] else NULL
    cdef size_t src_len = value.shape[0]
    cdef size_t cap = 64, n_frags = 0, n_spans = 0
    cdef df_error err
    cdef df_status st
    cdef df_fragment *frags = NULL
    cdef df_frame_span *spans = NULL
    try:
        while True:
            PyMem_Free(frags)
            frags = <df_fragment *>PyMem_Malloc(cap * sizeof(df_fragment))
            if frags == NULL:
                raise MemoryError()
            with nogil:
                st = df_encaps_fragments(src, src_len, frags, cap, &n_frags, &opts, &err)
            if st != DF_E_OUTPUT_TOO_SMALL:
                break
            cap = n_frags  # each fragment item is at least 8 bytes of input
        check(st, &err)
        spans = <df_frame_span *>PyMem_Malloc(max(n_frames, 1) * sizeof(df_frame_span))
        if spans == NULL:
            raise MemoryError()
        with nogil:
            st = df_encaps_frames(src, src_len, frags, n_frags, spans, max(n_frames, 1),
                                  &n_spans, &opts, &err)
        check(st, &err)
        fragments = [(frags[i].offset, frags[i].length) for i in range(n_frags)]
        frames = [(spans[i].first, spans[i].count, spans[i].offset, spans[i].length)
                  for i in range(n_spans)]
        return fragments, frames
    finally:
        PyMem_Free(frags)
        PyMem_Free(spans)
