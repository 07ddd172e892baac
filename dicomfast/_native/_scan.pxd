# The element index's C layout, for the modules that walk it without a Python call
# per element (_deid's header rewrite).
from libc.stdint cimport uint8_t, uint32_t

from dicomfast._native.dfcore cimport df_element


cdef class ElementIndex:
    cdef object source
    cdef const uint8_t[::1] view
    cdef const uint8_t *data        # the data set's first byte: entries' offsets count from here
    cdef size_t data_len
    cdef df_element *elems
    cdef readonly size_t count
    cdef readonly size_t base
    cdef readonly size_t bytes_used
    cdef readonly uint32_t warnings

    cdef int _check(self, Py_ssize_t i) except -1
    cdef int _append(self, bytearray out, size_t start, size_t stop) except -1
