# cython: language_level=3, boundscheck=False, wraparound=False
"""The de-identification header rewrite over an element index (dicomfast.deid's
fast path): the profile's actions applied entry by entry, the output written into
one C buffer, without a Python object per element.

It does what Deidentifier's walk and the writer do together for a data set they
would handle without help: actions X, Z, D, U (and U*) and keep, private
elements and group lengths removed, sequences walked item by item, the
de-identification record merged in at its tags. Anything else (a C action, an
element whose value the walk would decode first, a data set read with repairs)
raises NeedsDataset, and the caller takes the data set path instead.

Unchanged elements are copied as stored. A sequence whose items changed is
written again in its own form, its items in the sequence's form (defined
lengths, or undefined lengths with delimiters), as the writer writes one; a
sequence kept by the profile whose items did not change is copied as stored.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset

from dicomfast._native._scan cimport ElementIndex
from dicomfast._native.dfcore cimport (
    DF_EL_FRAGMENTS, DF_EL_ITEM, DF_EL_NO_DELIMITER, DF_EL_SEQUENCE, DF_EL_UN_SEQUENCE,
    DF_EL_UNDEFINED, df_element,
)

# Action codes (Plan's table): what happens to an element with that tag.
cdef enum:
    KEEP = 0
    REMOVE = 1      # X
    EMPTY = 2       # Z
    DUMMY = 3       # D
    NEW_UID = 4     # U and U*

cdef uint32_t _EMPTY_SLOT = 0xFFFFFFFF  # (FFFF,FFFF) is no attribute's tag
cdef uint16_t _VR_UI = 0x5549
cdef uint16_t _VR_UN = 0x554E
cdef uint32_t _ITEM = 0xFFFEE000
cdef uint32_t _ITEM_DELIMITER = 0xFFFEE00D
cdef uint32_t _SEQUENCE_DELIMITER = 0xFFFEE0DD
cdef uint32_t _UNDEFINED = 0xFFFFFFFF
cdef uint32_t _SOP_CLASS = 0x00080016
cdef uint32_t _SOP_INSTANCE = 0x00080018


class NeedsDataset(Exception):
    """This data set needs the walk over a Dataset (dicomfast.deid._walk)."""


cdef struct Buffer:
    uint8_t *p
    size_t n
    size_t cap


cdef int _reserve(Buffer *b, size_t more) except -1:
    cdef size_t want = b.n + more
    cdef size_t cap
    cdef uint8_t *p
    if want <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 4096
    while cap < want:
        cap *= 2
    p = <uint8_t *>PyMem_Realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef int _put(Buffer *b, const uint8_t *src, size_t n) except -1:
    _reserve(b, n)
    memcpy(b.p + b.n, src, n)
    b.n += n
    return 0


cdef inline void _le16(uint8_t *p, uint32_t v) noexcept:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF


cdef inline void _le32(uint8_t *p, uint32_t v) noexcept:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = (v >> 24) & 0xFF


cdef int _tag_length(Buffer *b, uint32_t tag, uint32_t length) except -1:
    """A tag and a 32-bit length: an implicit VR header, or an item or delimiter."""
    _reserve(b, 8)
    _le16(b.p + b.n, tag >> 16)
    _le16(b.p + b.n + 2, tag & 0xFFFF)
    _le32(b.p + b.n + 4, length)
    b.n += 8
    return 0


cdef class Plan:
    """The actions of one Deidentifier, laid out for rewrite(): a hash table of
    tag -> action, the repeating-group masks, the dummy value of each VR, the
    explicit VRs with 4-byte lengths, and the record elements (tag, bytes) to
    merge in, for explicit and for implicit VR little endian."""
    cdef uint32_t *tags
    cdef uint8_t *codes
    cdef uint32_t bits
    cdef list repeaters
    cdef dict dummies
    cdef bytes zero_dummy
    cdef uint8_t long_form[8192]  # a bit per 16-bit VR code
    cdef list records_explicit
    cdef list records_implicit

    def __cinit__(self, dict actions, list repeaters, dict dummies, object long_form_vrs,
                  list records_explicit, list records_implicit):
        cdef size_t n = len(actions)
        cdef uint32_t bits = 4
        cdef size_t slots, k
        cdef uint32_t tag, mask
        while (<size_t>1 << bits) < 2 * n + 2:
            bits += 1
        slots = <size_t>1 << bits
        self.bits = bits
        self.tags = <uint32_t *>PyMem_Malloc(slots * sizeof(uint32_t))
        self.codes = <uint8_t *>PyMem_Malloc(slots)
        if self.tags == NULL or self.codes == NULL:
            raise MemoryError()
        for k in range(slots):
            self.tags[k] = _EMPTY_SLOT
        mask = <uint32_t>(slots - 1)
        for key, code in actions.items():
            tag = key
            k = _slot(tag, bits)
            while self.tags[k] != _EMPTY_SLOT:
                k = (k + 1) & mask
            self.tags[k] = tag
            self.codes[k] = code
        self.repeaters = [(int(m), int(v), int(c)) for m, v, c in repeaters]
        self.dummies = dict(dummies)
        self.zero_dummy = b"\0\0"
        memset(self.long_form, 0, sizeof(self.long_form))
        for code in long_form_vrs:
            self.long_form[<uint16_t>code >> 3] |= 1 << (<uint16_t>code & 7)
        self.records_explicit = list(records_explicit)
        self.records_implicit = list(records_implicit)

    def __dealloc__(self):
        PyMem_Free(self.tags)
        PyMem_Free(self.codes)

    cdef int action(self, uint32_t tag) except -1:
        cdef uint32_t mask = (<uint32_t>1 << self.bits) - 1
        cdef size_t k = _slot(tag, self.bits)
        cdef uint32_t group = tag >> 16
        while self.tags[k] != _EMPTY_SLOT:
            if self.tags[k] == tag:
                return self.codes[k]
            k = (k + 1) & mask
        if 0x5000 <= group <= 0x60FF:  # repeating groups: curves, overlays (PS3.5 §7.6)
            for m, v, c in self.repeaters:
                if tag & <uint32_t>m == <uint32_t>v:
                    return c
        return KEEP


cdef inline size_t _slot(uint32_t tag, uint32_t bits) noexcept:
    return <size_t>((tag * <uint32_t>2654435761u) >> (32 - bits))


cdef inline bint _plain_vr(uint16_t vr) noexcept:
    """Two capital letters: a VR as stored or from the dictionary, not one of the
    scanner's codes for "US or SS"-style entries, whose VR the Dataset resolves."""
    return (0x41 <= (vr >> 8) <= 0x5A) and (0x41 <= (vr & 0xFF) <= 0x5A)


cdef class _Rewrite:
    """The state of one rewrite: the index, the plan, the output and what the File
    Meta needs from the data set."""
    cdef ElementIndex idx
    cdef Plan plan
    cdef bint explicit
    cdef object new_uids
    cdef Buffer out
    cdef object sop_class
    cdef object sop_instance

    def __dealloc__(self):
        PyMem_Free(self.out.p)

    cdef int header(self, const df_element *e, uint32_t length) except -1:
        """The header of element `e` with a new value of `length` bytes."""
        cdef uint8_t *p
        cdef uint16_t vr = e.vr
        if not self.explicit:
            return _tag_length(&self.out, e.tag, length)
        _reserve(&self.out, 12)
        p = self.out.p + self.out.n
        _le16(p, e.tag >> 16)
        _le16(p + 2, e.tag & 0xFFFF)
        p[4] = vr >> 8
        p[5] = vr & 0xFF
        if self.plan.long_form[vr >> 3] & (1 << (vr & 7)) or length == _UNDEFINED:
            p[6] = 0
            p[7] = 0
            _le32(p + 8, length)
            self.out.n += 12
        else:
            _le16(p + 6, length)
            self.out.n += 8
        return 0

    cdef int stored(self, const df_element *e) except -1:
        """Entry `e` as stored: header, value and, for undefined lengths, delimiter."""
        cdef size_t stop = e.offset + e.length
        if e.flags & DF_EL_UNDEFINED and not e.flags & DF_EL_NO_DELIMITER:
            stop += 8
        return _put(&self.out, self.idx.data + e.header_offset, stop - e.header_offset)

    cdef int value(self, const df_element *e, bytes value) except -1:
        self.header(e, <uint32_t>PyBytes_GET_SIZE(value))
        return _put(&self.out, <const uint8_t *>PyBytes_AS_STRING(value),
                    PyBytes_GET_SIZE(value))

    cdef bytes stored_value(self, const df_element *e):
        return PyBytes_FromStringAndSize(<const char *>(self.idx.data + e.offset), e.length)

    cdef int check(self, size_t j, size_t stop, bint top) except -1:
        """Raise NeedsDataset for what walk() would hand to the Dataset way, before
        walk() maps any UID: a fallback then leaves the UID map as the Dataset way
        alone would (the same decisions as walk(), without writing)."""
        cdef df_element *e
        cdef df_element *item
        cdef uint32_t tag
        cdef int action
        cdef int64_t previous = -1
        cdef size_t k
        while j < stop:
            e = &self.idx.elems[j]
            tag = e.tag
            j = e.end
            if <int64_t>tag <= previous:
                # Out of order or repeated (PS3.5 §7.1 wants ascending tags): the
                # Dataset sorts them, and keeps one of each.
                raise NeedsDataset(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) out of order")
            previous = tag
            if (tag >> 16) & 1 or not tag & 0xFFFF or (top and tag >> 16 == 0x0002):
                continue
            action = self.plan.action(tag)
            if action == REMOVE:
                continue
            if e.flags & DF_EL_SEQUENCE:
                if e.flags & (DF_EL_UN_SEQUENCE | DF_EL_NO_DELIMITER):
                    raise NeedsDataset(f"({tag >> 16:04X},{tag & 0xFFFF:04X}): a sequence "
                                       "read with repairs")
                k = e - self.idx.elems + 1
                while k < e.end:
                    item = &self.idx.elems[k]
                    if not item.flags & DF_EL_ITEM:
                        raise NeedsDataset("a sequence holds something other than items")
                    self.check(k + 1, item.end, False)
                    k = item.end
            elif action != KEEP and (e.flags & DF_EL_FRAGMENTS or not _plain_vr(e.vr)
                                     or e.vr == _VR_UN):
                raise NeedsDataset(f"({tag >> 16:04X},{tag & 0xFFFF:04X}): its value is "
                                   "decoded before it is replaced")
        return 0

    cdef int walk(self, size_t j, size_t stop, list records) except -1:
        """The elements of entries [j, stop) (a data set or an item's): written, and
        1 when anything differs from the stored bytes, else 0."""
        cdef df_element *e
        cdef uint32_t tag
        cdef int action
        cdef int changed = 0
        cdef Py_ssize_t r = 0
        cdef Py_ssize_t n_records = len(records) if records is not None else 0
        cdef uint32_t record_tag
        cdef bint top = records is not None
        while j < stop:  # tags ascend: check() said so
            e = &self.idx.elems[j]
            tag = e.tag
            j = e.end
            while r < n_records:  # the record's elements that sort first
                record_tag = records[r][0]
                if record_tag > tag:
                    break
                self.record(records[r])
                r += 1
                if record_tag == tag:
                    changed = 1
                    e = NULL  # replaced by the record's element
                    break
            if e == NULL:
                continue
            if (tag >> 16) & 1 or not tag & 0xFFFF or (top and tag >> 16 == 0x0002):
                # Private elements (Table E.1-1's last row: X); group lengths, which
                # the changes would make wrong and which are optional (PS3.5 §7.2);
                # and, in the data set itself, File Meta elements, which the File
                # Meta written anew replaces.
                changed = 1
                continue
            action = self.plan.action(tag)
            if action == REMOVE:
                changed = 1
            elif e.flags & DF_EL_SEQUENCE:
                changed |= self.sequence(e, action)
            elif action == KEEP:
                self.stored(e)
                if top and tag == _SOP_CLASS:
                    self.sop_class = self.stored_value(e)
                elif top and tag == _SOP_INSTANCE:
                    self.sop_instance = self.stored_value(e)
            else:
                changed |= self.replace(e, action, top)
        while r < n_records:
            self.record(records[r])
            r += 1
            changed = 1
        return changed

    cdef int record(self, tuple record) except -1:
        cdef bytes raw = record[1]
        return _put(&self.out, <const uint8_t *>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))

    cdef int replace(self, const df_element *e, int action, bint top) except -1:
        """Z, D or U on an element that is not a sequence, of a plain VR (check()
        said so); 1 when it changed. The data set's own SOP Instance UID (`top`) is
        kept for the File Meta."""
        cdef bytes value
        if e.vr == _VR_UI and action != EMPTY:
            value = self.new_uids(self.stored_value(e))
            if top and e.tag == _SOP_INSTANCE:
                self.sop_instance = value
            self.value(e, value)
            return 1
        if action == DUMMY:
            value = self.plan.dummies.get(e.vr, self.plan.zero_dummy)
            self.value(e, value)
            return 1
        # Z, and U on what is not a UID (nothing to map: emptied).
        if e.length == 0:
            self.stored(e)
            return 0
        self.header(e, 0)
        return 1

    cdef int sequence(self, const df_element *e, int action) except -1:
        """A sequence under `action`; 1 when it changed."""
        cdef size_t start = self.out.n
        cdef size_t first = e - self.idx.elems + 1
        cdef bint undefined = (e.flags & DF_EL_UNDEFINED) != 0
        cdef bint has_items = first < e.end
        cdef int changed
        if action == EMPTY or (action == DUMMY and not has_items):
            # Z: no items; D on an empty sequence: one empty item (Table E.1-1a:
            # a dummy that is a sequence holds an item).
            self.header(e, _UNDEFINED if undefined else (0 if action == EMPTY else 8))
            if action == DUMMY:
                _tag_length(&self.out, _ITEM, _UNDEFINED if undefined else 0)
                if undefined:
                    _tag_length(&self.out, _ITEM_DELIMITER, 0)
            if undefined:
                _tag_length(&self.out, _SEQUENCE_DELIMITER, 0)
            return 1 if (action == DUMMY or has_items) else 0
        changed = self.items(e, undefined)
        if action == KEEP and not changed:
            self.out.n = start  # kept and unchanged: as stored
            self.stored(e)
        return changed

    cdef int items(self, const df_element *e, bint undefined) except -1:
        """The sequence `e` written again with each item walked; 1 when an item changed."""
        cdef size_t sq_length_at, item_length_at, body
        cdef size_t j = e - self.idx.elems + 1
        cdef df_element *item
        cdef int changed = 0
        self.header(e, _UNDEFINED if undefined else 0)
        sq_length_at = self.out.n - 4
        body = self.out.n
        while j < e.end:
            item = &self.idx.elems[j]  # an item: check() said so
            _tag_length(&self.out, _ITEM, _UNDEFINED if undefined else 0)
            item_length_at = self.out.n - 4
            changed |= self.walk(j + 1, item.end, None)
            if undefined:
                _tag_length(&self.out, _ITEM_DELIMITER, 0)
            else:
                _le32(self.out.p + item_length_at, <uint32_t>(self.out.n - item_length_at - 4))
            j = item.end
        if undefined:
            _tag_length(&self.out, _SEQUENCE_DELIMITER, 0)
        else:
            _le32(self.out.p + sq_length_at, <uint32_t>(self.out.n - body))
        return changed


def rewrite(ElementIndex index, Plan plan, object new_uids, bint explicit):
    """The data set of `index` (little endian, explicit VR or not) with the plan's
    actions applied and its record merged in: (bytes, SOP Class UID value, SOP
    Instance UID value as written, either None when the data set has none).
    `new_uids(stored value) -> bytes` gives the value that replaces a UI value.
    NeedsDataset for what only the walk over a Dataset does."""
    cdef _Rewrite rw = _Rewrite.__new__(_Rewrite)
    rw.idx = index
    rw.plan = plan
    rw.explicit = explicit
    rw.new_uids = new_uids
    rw.check(0, index.count, True)
    rw.walk(0, index.count, plan.records_explicit if explicit else plan.records_implicit)
    return (PyBytes_FromStringAndSize(<const char *>rw.out.p, rw.out.n), rw.sop_class,
            rw.sop_instance)
