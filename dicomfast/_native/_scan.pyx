# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython face of the C element scanner: builds an ElementIndex over a buffer.

The index references the source buffer for its whole lifetime; every value
view is derived from it, so no value is copied until Python asks for it.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from dicomfast._native._status cimport check
from dicomfast._native.dfcore cimport (
    DF_E_OUTPUT_TOO_SMALL, DF_EL_FRAGMENTS, DF_EL_ITEM, DF_EL_NO_DELIMITER, DF_EL_SEQUENCE,
    DF_EL_UNDEFINED, DF_EL_IMPLICIT, DF_EL_BIG_ENDIAN, DF_OK,
    DF_SCAN_DEFAULT_DEPTH, DF_SCAN_MAX_DEPTH, df_element, df_error, df_scan_dataset,
    df_scan_lookup_vr, df_scan_opts, df_scan_preamble, df_scan_result, df_scan_vr_hash_bits,
    df_scan_vr_hash_build, df_status, df_vr_entry, df_vr_mask,
)

# Buffers at least this long are scanned with the GIL released.
cdef size_t NOGIL_BYTES = 256 * 1024

cdef dict _AMBIGUOUS = {
    0x7873: "US or SS",   # 'xs'
    0x6F78: "OB or OW",   # 'ox'
    0x7877: "US or SS or OW",  # 'xw'
    0x7577: "US or OW",   # 'uw'
    0: "NONE",
}
cdef dict _CODE_TO_VR = {}
cdef dict _VR_TO_CODE = {v: k for k, v in _AMBIGUOUS.items()}

cdef inline str vr_str(uint16_t code):
    s = _CODE_TO_VR.get(code)
    if s is None:
        s = _AMBIGUOUS.get(code)
        if s is None:
            s = bytes([code >> 8, code & 0xFF]).decode("latin-1")
        _CODE_TO_VR[code] = s
    return s


def vr_code(str vr):
    """The 16-bit code of a VR string ('PN' -> 0x504E; ambiguous ones get private codes)."""
    code = _VR_TO_CODE.get(vr)
    if code is not None:
        return code
    if len(vr) != 2:
        raise ValueError(f"not a VR: {vr!r}")
    b = vr.encode("ascii")
    return (b[0] << 8) | b[1]


cdef class VRTable:
    """The dictionary's VRs, laid out for the C scanner's implicit VR lookup."""
    cdef df_vr_entry *entries
    cdef size_t n_entries
    cdef df_vr_mask *masks
    cdef size_t n_masks
    cdef df_vr_entry *hash
    cdef uint32_t hash_bits

    def __cinit__(self, exact, masks):
        exact = sorted(exact)
        masks = list(masks)
        self.entries = <df_vr_entry *>PyMem_Malloc(max(1, len(exact)) * sizeof(df_vr_entry))
        self.masks = <df_vr_mask *>PyMem_Malloc(max(1, len(masks)) * sizeof(df_vr_mask))
        if self.entries == NULL or self.masks == NULL:
            raise MemoryError()
        self.n_entries = len(exact)
        self.n_masks = len(masks)
        cdef size_t i = 0
        for tag, vr in exact:
            self.entries[i].tag = tag
            self.entries[i].vr = vr_code(vr)
            self.entries[i].pad = 0
            i += 1
        i = 0
        for mask, value, vr in masks:
            self.masks[i].mask = mask
            self.masks[i].value = value
            self.masks[i].vr = vr_code(vr)
            self.masks[i].pad = 0
            i += 1
        # The same entries as a hash table: implicit VR data looks up every tag.
        cdef df_error err
        cdef uint32_t bits = df_scan_vr_hash_bits(self.n_entries)
        cdef size_t slots = (<size_t>1) << bits
        self.hash = <df_vr_entry *>PyMem_Malloc(slots * sizeof(df_vr_entry))
        if self.hash == NULL:
            raise MemoryError()
        check(df_scan_vr_hash_build(self.entries, self.n_entries, self.hash, slots, &err), &err)
        self.hash_bits = bits

    def __dealloc__(self):
        PyMem_Free(self.entries)
        PyMem_Free(self.masks)
        PyMem_Free(self.hash)

    cdef void fill(self, df_scan_opts *opts) noexcept:
        opts.dict = self.entries
        opts.dict_len = self.n_entries
        opts.masks = self.masks
        opts.masks_len = self.n_masks
        opts.hash = self.hash
        opts.hash_bits = self.hash_bits

    def lookup(self, uint32_t tag):
        """The VR an implicit VR reader gives this tag."""
        cdef df_scan_opts opts
        memset(&opts, 0, sizeof(opts))
        self.fill(&opts)
        return vr_str(df_scan_lookup_vr(tag, &opts))


def find_dataset_start(const uint8_t[::1] src not None):
    """(offset of File Meta/dataset, has_preamble, has_meta) for a Part 10 stream."""
    cdef size_t n_out = 0
    cdef int has_preamble = 0, has_meta = 0
    cdef df_error err
    cdef df_status st = df_scan_preamble(&src[0] if src.shape[0] else NULL, src.shape[0],
                                         &n_out, &has_preamble, &has_meta, &err)
    check(st, &err)
    return n_out, bool(has_preamble), bool(has_meta)


cdef object _cached_element(object el, object tag, uint32_t flags, dict encoded):
    """The cached bytes of a new element (a DataElement set since reading, holding
    text or nothing), or None: see ElementIndex.copy_stored. Only the writer fills
    the cache, with plain VRs' ASCII text, so a hit is an element it encodes so."""
    if el._pos >= 0 or el.is_undefined_length:
        return None  # still as read: copied from the source, or re-encoded, by Python
    value = el._value
    if value is None:
        value = ""
    elif type(value) is not str:
        return None
    found = encoded.get((tag, el.VR, value, flags))
    return found if type(found) is bytes else None


cdef class ElementIndex:
    """A flat preorder index of the elements of one encoded dataset.

    Entry i has a tag, VR, flags, value offset and length; containers are
    followed by their children and `end(i)` is the index past the subtree.
    """
    # The attributes are declared in _scan.pxd.

    def __dealloc__(self):
        PyMem_Free(self.elems)

    @property
    def source(self):
        """The buffer the offsets refer to (bytes, bytearray, mmap, ...)."""
        return self.source

    def tag(self, Py_ssize_t i):
        self._check(i)
        return self.elems[i].tag

    def vr(self, Py_ssize_t i):
        self._check(i)
        return vr_str(self.elems[i].vr)

    def flags(self, Py_ssize_t i):
        self._check(i)
        return self.elems[i].flags

    def length(self, Py_ssize_t i):
        self._check(i)
        return self.elems[i].length

    def end(self, Py_ssize_t i):
        self._check(i)
        return self.elems[i].end

    def offset(self, Py_ssize_t i):
        """Absolute offset of entry i's value in `source`."""
        self._check(i)
        return self.base + self.elems[i].offset

    def header_offset(self, Py_ssize_t i):
        self._check(i)
        return self.base + self.elems[i].header_offset

    def vr_flags(self, Py_ssize_t i):
        """(VR, flags) of entry i."""
        self._check(i)
        return vr_str(self.elems[i].vr), self.elems[i].flags

    def entry(self, Py_ssize_t i):
        """(tag, VR, flags, length, value offset, end) of entry i."""
        self._check(i)
        cdef df_element *e = &self.elems[i]
        return (e.tag, vr_str(e.vr), e.flags, e.length, self.base + e.offset, e.end)

    cdef int _check(self, Py_ssize_t i) except -1:
        if i < 0 or <size_t>i >= self.count:
            raise IndexError(f"element index {i} out of range")
        return 0

    def last_top(self):
        """Position of the last top-level entry (-1 when empty)."""
        cdef size_t j = 0, last = 0
        if self.count == 0:
            return -1
        while j < self.count:
            last = j
            j = self.elems[j].end
        return last

    def encoding_flags(self):
        """The implicit/big-endian flags of the first entry (how the data set was read)."""
        if self.count == 0:
            return 0
        return self.elems[0].flags & (DF_EL_IMPLICIT | DF_EL_BIG_ENDIAN)

    def extent(self, Py_ssize_t i):
        """(start, stop) absolute byte range of entry i as stored: header, value and,
        for undefined lengths, the closing delimiter."""
        self._check(i)
        cdef df_element *e = &self.elems[i]
        cdef size_t stop = e.offset + e.length
        if (e.flags & DF_EL_UNDEFINED) and not (e.flags & DF_EL_NO_DELIMITER):
            stop += 8
        return self.base + e.header_offset, self.base + stop

    def value_bytes(self, Py_ssize_t i):
        """A copy of entry i's value bytes."""
        self._check(i)
        cdef df_element *e = &self.elems[i]
        return PyBytes_FromStringAndSize(<const char *>(self.data + e.offset), e.length)

    def value_view(self, Py_ssize_t i):
        """A read-only zero-copy memoryview of entry i's value."""
        self._check(i)
        cdef df_element *e = &self.elems[i]
        cdef size_t start = self.base + e.offset
        return memoryview(self.source).cast("B")[start:start + e.length].toreadonly()

    def tag_map(self, Py_ssize_t start=0, Py_ssize_t stop=-1):
        """{tag: entry} for the direct children in [start, stop) (the top level by default)."""
        cdef size_t i = start
        cdef size_t end = self.count if stop < 0 else <size_t>stop
        cdef dict out = {}
        if end > self.count:
            raise IndexError("range past the index")
        while i < end:
            out[self.elems[i].tag] = i
            i = self.elems[i].end
        return out

    def children(self, Py_ssize_t i):
        """Entries directly below container i (items of a sequence, fragments, elements of an item)."""
        self._check(i)
        cdef size_t j = i + 1
        cdef size_t end = self.elems[i].end
        cdef list out = []
        while j < end:
            out.append(j)
            j = self.elems[j].end
        return out

    def copy_stored(self, list tags, Py_ssize_t i, dict entries, uint32_t mask,
                    uint32_t want, bytearray out, size_t small, dict encoded=None):
        """Append to `out` the stored bytes of the elements tags[i], tags[i + 1], ...
        while each one's entry in `entries` is still a position in this index, its
        flags & `mask` equal `want` and it is shorter than `small` bytes; the
        position in `tags` of the first that is not (len(tags) when all were).

        With `encoded` (the writer's cache of whole new elements: (tag, VR, text,
        `want`) -> bytes), an entry set since reading (a DataElement no longer in
        the index) whose text is in the cache is appended from it too: the dummies
        and emptied values a header rewrite leaves between the untouched elements.

        A writer's loop over a data set read from a file: the untouched elements
        are copied here, neighbours in the source with one copy, and only the rest
        come back to Python."""
        cdef Py_ssize_t n = len(tags)
        cdef size_t run_start = 0, run_stop = 0, start, stop
        cdef Py_ssize_t pos
        cdef df_element *e
        cdef object v, raw
        while i < n:
            v = entries.get(tags[i])
            if type(v) is not int:
                if encoded is None:
                    break
                raw = _cached_element(v, tags[i], want, encoded)
                if raw is None:
                    break
                self._append(out, run_start, run_stop)
                run_start = run_stop = 0
                out += <bytes>raw
                i += 1
                continue
            pos = v
            if pos < 0 or <size_t>pos >= self.count:
                break
            e = &self.elems[pos]
            if (e.flags & mask) != want:
                break
            start = e.header_offset
            stop = e.offset + e.length
            if (e.flags & DF_EL_UNDEFINED) and not (e.flags & DF_EL_NO_DELIMITER):
                stop += 8
            if stop - start >= small or stop > self.data_len:
                break
            if run_stop != run_start and start == run_stop:
                run_stop = stop
            else:
                self._append(out, run_start, run_stop)
                run_start = start
                run_stop = stop
            i += 1
        self._append(out, run_start, run_stop)
        return i

    cdef int _append(self, bytearray out, size_t start, size_t stop) except -1:
        cdef Py_ssize_t old = PyByteArray_GET_SIZE(out)
        if stop <= start:
            return 0
        PyByteArray_Resize(out, old + <Py_ssize_t>(stop - start))
        memcpy(PyByteArray_AS_STRING(out) + old, self.data + start, stop - start)
        return 0

    def nested_positions(self):
        """The set of entry positions (at any depth) that may hold data sets: SQ,
        UN (a sequence of unknown VR may hide in one), or read as a sequence. A walk
        over a data set's elements asks this once instead of each element's VR."""
        cdef set out = set()
        cdef size_t j
        cdef uint16_t vr
        for j in range(self.count):
            vr = self.elems[j].vr
            if vr == 0x5351 or vr == 0x554E or self.elems[j].flags & DF_EL_SEQUENCE:
                out.add(j)
        return out

    def find_top(self, uint32_t tag):
        """Position of the first top-level entry with this tag, or -1."""
        cdef size_t j = 0
        while j < self.count:
            if self.elems[j].tag == tag:
                return j
            j = self.elems[j].end
        return -1

    def top_plain(self, tags, codes, uint32_t mask):
        """The values of the top-level elements `tags` (a sequence of ints), in one
        call for the few attributes a scan wants from each of many files. For each
        tag: None when the data set has no such element; the value bytes alone when
        its VR code (two ASCII letters, the first in the high byte) is codes[k] and
        its flags have none of `mask` (the usual case, which a scan decodes through
        its caches without a tuple per value); else (VR, flags, value bytes).
        `codes` is as long as `tags`; 0 matches no VR."""
        cdef Py_ssize_t n = len(tags), k
        if len(codes) != n:
            raise ValueError("tags and codes differ in length")
        cdef list out = [None] * n
        cdef size_t j
        cdef uint32_t want
        cdef uint16_t code
        cdef df_element *e
        for k in range(n):
            want = tags[k]
            code = codes[k]
            # Top-level entries come in tag order in any valid data set; a linear
            # walk per tag also copes with the ones that do not.
            j = 0
            while j < self.count and self.elems[j].tag != want:
                j = self.elems[j].end
            if j < self.count:
                e = &self.elems[j]
                raw = PyBytes_FromStringAndSize(<const char *>(self.data + e.offset), e.length)
                if e.vr == code and not (e.flags & mask):
                    out[k] = raw
                else:
                    out[k] = (vr_str(e.vr), e.flags, raw)
        return out

    def children_of_root(self):
        """Top-level entries (for an index of sequence content: its items)."""
        cdef size_t j = 0
        cdef list out = []
        while j < self.count:
            out.append(j)
            j = self.elems[j].end
        return out

    def fragment_spans(self, Py_ssize_t i):
        """[(absolute offset, length)] of the fragments of encapsulated entry i."""
        self._check(i)
        if not (self.elems[i].flags & DF_EL_FRAGMENTS):
            raise ValueError("not encapsulated data")
        cdef size_t j = i + 1
        cdef size_t end = self.elems[i].end
        cdef list out = []
        while j < end:
            out.append((self.base + self.elems[j].offset, self.elems[j].length))
            j = self.elems[j].end
        return out


def scan(source, *, bint little_endian=True, bint explicit_vr=True, bint strict=False,
         unsigned int max_depth=DF_SCAN_DEFAULT_DEPTH, bint stop_before_pixels=False,
         bint meta_only=False, bint sequence_content=False, size_t start=0,
         VRTable table=None):
    """Scan `source[start:]` as one encoded dataset and return its ElementIndex.

    `source` is any contiguous bytes-like object (bytes, bytearray, memoryview,
    mmap); it is referenced, not copied. The GIL is released while scanning.
    """
    cdef const uint8_t[::1] view
    try:
        view = source
    except (TypeError, ValueError):
        view = memoryview(source).cast("B")
    return _scan_into(source, view, little_endian, explicit_vr, strict, max_depth,
                 stop_before_pixels, meta_only, sequence_content, start, table)


def scan_file_meta(source, bint strict=False, VRTable table=None):
    """The start of a Part 10 stream in one call (the hot path of reading small files).

    Returns (data set offset, has_preamble, meta index or None, raw Transfer Syntax
    UID value or None).
    """
    cdef const uint8_t[::1] view
    try:
        view = source
    except (TypeError, ValueError):
        view = memoryview(source).cast("B")
    cdef size_t n_out = 0
    cdef int has_preamble = 0, has_meta = 0
    cdef df_error err
    cdef df_status st = df_scan_preamble(&view[0] if view.shape[0] else NULL, view.shape[0],
                                         &n_out, &has_preamble, &has_meta, &err)
    check(st, &err)
    if not has_meta:
        return n_out, bool(has_preamble), None, None
    cdef ElementIndex meta = _scan_into(source, view, True, True, strict, DF_SCAN_DEFAULT_DEPTH,
                                   False, True, False, n_out, table)
    cdef size_t j = 0
    ts = None
    while j < meta.count:
        if meta.elems[j].tag == 0x00020010:
            ts = PyBytes_FromStringAndSize(<const char *>(meta.data + meta.elems[j].offset),
                                           meta.elems[j].length)
            break
        j = meta.elems[j].end
    return n_out + meta.bytes_used, bool(has_preamble), meta, ts


cdef ElementIndex _scan_into(object source, const uint8_t[::1] view, bint little_endian,
                        bint explicit_vr, bint strict, unsigned int max_depth,
                        bint stop_before_pixels, bint meta_only, bint sequence_content,
                        size_t start, VRTable table):
    cdef size_t total = view.shape[0]
    if start > total:
        raise ValueError("start past the end of the buffer")
    if not 1 <= max_depth <= DF_SCAN_MAX_DEPTH:
        raise ValueError(f"max_depth is between 1 and {DF_SCAN_MAX_DEPTH}")
    cdef ElementIndex idx = ElementIndex.__new__(ElementIndex)
    idx.source = source
    idx.view = view
    idx.data = (&view[0] + start) if total else NULL
    idx.data_len = total - start
    idx.base = start

    cdef df_scan_opts opts
    memset(&opts, 0, sizeof(opts))
    opts.little_endian = little_endian
    opts.explicit_vr = explicit_vr
    opts.strict = strict
    opts.max_depth = max_depth
    opts.stop_before = stop_before_pixels
    opts.meta_only = meta_only
    opts.sequence_content = sequence_content
    opts.base_offset = start
    if table is not None:
        table.fill(&opts)

    # One scan is the common case: guess the entry count from the size (elements
    # of small files average well over 16 bytes), capped so a huge file does not
    # reserve more than 2 MiB up front; a larger index takes one rescan.
    cdef size_t cap = idx.data_len // 16 + 16
    if cap > 65536:
        cap = 65536
    if meta_only and cap > 64:
        cap = 64
    cdef df_scan_result res
    cdef df_error err
    cdef df_status st
    cdef df_element *grown
    idx.elems = <df_element *>PyMem_Malloc(cap * sizeof(df_element))
    if idx.elems == NULL:
        raise MemoryError()
    while True:
        if idx.data_len >= NOGIL_BYTES:
            with nogil:
                st = df_scan_dataset(idx.data, idx.data_len, idx.elems, cap, &res, &opts,
                                     &err)
        else:
            # A header scans in about a microsecond: handing the GIL over for that
            # long costs other threads more (a convoy of switches) than it gives.
            st = df_scan_dataset(idx.data, idx.data_len, idx.elems, cap, &res, &opts, &err)
        if st != DF_E_OUTPUT_TOO_SMALL:
            break
        # The scan counted what it needs; each entry is at least 8 input bytes,
        # so this is bounded by the input size.
        cap = res.n_elements
        grown = <df_element *>PyMem_Realloc(idx.elems, cap * sizeof(df_element))
        if grown == NULL:
            raise MemoryError()
        idx.elems = grown
    check(st, &err)
    if res.n_elements + 64 < cap:
        # Give back the unused guess (shrinking in place is cheap).
        grown = <df_element *>PyMem_Realloc(idx.elems, (res.n_elements + 1) * sizeof(df_element))
        if grown != NULL:
            idx.elems = grown
    idx.count = res.n_elements
    idx.bytes_used = res.bytes_used
    idx.warnings = res.warnings
    return idx
