# cython: language_level=3, boundscheck=False, wraparound=False
"""Whole-file reads in one call, the GIL released around the system calls.

Reading many small files is dominated by per-call overhead: open, fstat, read
and close each cost a Python call and a GIL round trip when made from Python.
Here they are four system calls between one GIL release and one bytes object.
"""
import os

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.exc cimport PyErr_SetFromErrnoWithFilenameObject

cdef extern from "Python.h":
    # Raw pointers: the head buffer is shrunk in place to the bytes read.
    PyObject *PyBytes_FromStringAndSize(const char *v, Py_ssize_t n)
    int _PyBytes_Resize(PyObject **o, Py_ssize_t n)
    void Py_DECREF(PyObject *o)

cdef extern from *:
    """
    #include <errno.h>
    #include <fcntl.h>
    #include <sys/stat.h>
    static int df_errno(void) { return errno; }
    static void df_set_errno(int e) { errno = e; }
    #ifdef _WIN32
    #include <io.h>
    #define df_open(p) _open((p), _O_RDONLY | _O_BINARY)
    #define df_close _close
    #define df_read(fd, buf, n) _read((fd), (buf), (unsigned)(n))
    typedef struct _stat64 df_stat_t;
    #define df_fstat _fstat64
    #define DF_IS_REG(m) (((m) & _S_IFMT) == _S_IFREG)
    #else
    #include <unistd.h>
    #define df_open(p) open((p), O_RDONLY | O_CLOEXEC)
    #define df_close close
    #define df_read read
    typedef struct stat df_stat_t;
    #define df_fstat fstat
    #define DF_IS_REG(m) S_ISREG(m)
    #endif
    """
    ctypedef struct df_stat_t:
        long long st_size
        unsigned int st_mode
    int df_open(const char *path) nogil
    int df_close(int fd) nogil
    long df_read(int fd, void *buf, size_t n) nogil
    int df_fstat(int fd, df_stat_t *st) nogil
    bint DF_IS_REG(unsigned int mode) nogil
    int df_errno() nogil
    void df_set_errno(int e) nogil
    int EINTR

# Larger files take the general path (chunked reads in Python); this one is for
# the many small files of a header scan.
cdef long long _MAX_DIRECT = 1 << 30
# Heads up to this size are read into a buffer made before the file is opened.
cdef long long _SMALL_HEAD = 1 << 20


cdef object _read(object path, long long limit):
    """(up to `limit` first bytes, file size) of a regular file, or None."""
    cdef bytes encoded = os.fsencode(path)
    cdef const char *cpath = encoded
    cdef int fd
    cdef df_stat_t st
    cdef int rc
    cdef int saved
    with nogil:
        fd = df_open(cpath)
        saved = df_errno()
    if fd < 0:
        df_set_errno(saved)
        PyErr_SetFromErrnoWithFilenameObject(OSError, path)
    with nogil:
        rc = df_fstat(fd, &st)
        saved = df_errno()
    if rc != 0 or not DF_IS_REG(st.st_mode) or st.st_size <= 0 or st.st_size > _MAX_DIRECT:
        df_close(fd)
        if rc != 0:
            df_set_errno(saved)
            PyErr_SetFromErrnoWithFilenameObject(OSError, path)
        return None
    cdef size_t size = <size_t>(st.st_size if st.st_size < limit else limit)
    cdef PyObject *raw = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>size)
    if raw == NULL:
        raise MemoryError()
    cdef bytes data = <bytes>raw
    Py_DECREF(raw)  # `data` holds the reference now
    cdef char *buf = PyBytes_AS_STRING(data)
    cdef size_t got = 0
    cdef long n = 0
    with nogil:
        while got < size:
            n = df_read(fd, buf + got, size - got)
            if n < 0 and df_errno() == EINTR:
                continue
            if n <= 0:
                break
            got += <size_t>n
        saved = df_errno()
        df_close(fd)
    if n < 0:
        df_set_errno(saved)
        PyErr_SetFromErrnoWithFilenameObject(OSError, path)
    if got != size:
        return None  # the file shrank while being read: let the caller retry
    return data, st.st_size


cdef object _read_head_small(object path, long long limit):
    """read_head for a small limit: one buffer of `limit` bytes made first, then
    open, fstat, read and close in one stretch without the GIL (one hand-over,
    not three), and the buffer cut to what was read."""
    cdef bytes encoded = os.fsencode(path)
    cdef const char *cpath = encoded
    cdef PyObject *raw = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>limit)
    if raw == NULL:
        raise MemoryError()
    cdef char *buf = PyBytes_AS_STRING(<object>raw)
    cdef int fd = -1, rc = 0, saved = 0, regular = 0
    cdef long long file_size = 0
    cdef df_stat_t st
    cdef size_t got = 0, want = 0
    cdef long n = 0
    with nogil:
        fd = df_open(cpath)
        if fd < 0:
            saved = df_errno()
        else:
            rc = df_fstat(fd, &st)
            if rc != 0:
                saved = df_errno()
            elif DF_IS_REG(st.st_mode) and 0 < st.st_size <= _MAX_DIRECT:
                regular = 1
                file_size = st.st_size
                want = <size_t>(file_size if file_size < limit else limit)
                while got < want:
                    n = df_read(fd, buf + got, want - got)
                    if n < 0 and df_errno() == EINTR:
                        continue
                    if n <= 0:
                        if n < 0:
                            saved = df_errno()
                        break
                    got += <size_t>n
            df_close(fd)
    if fd < 0 or rc != 0 or n < 0:
        Py_DECREF(raw)
        df_set_errno(saved)
        PyErr_SetFromErrnoWithFilenameObject(OSError, path)
    if not regular or got != want:
        Py_DECREF(raw)
        return None  # not a plain file, or it shrank while being read
    if _PyBytes_Resize(&raw, <Py_ssize_t>got) != 0:
        raise MemoryError()
    data = <object>raw
    Py_DECREF(raw)  # `data` holds the reference now
    return data, file_size


def read_head(path, long long limit):
    """(the first `limit` bytes of a regular file, or all of a shorter one; the file
    size), or None when the caller should read it itself (a special file, an empty
    or very large one, one that changed size). Raises OSError like open()."""
    if limit <= 0:
        raise ValueError("limit is a positive number of bytes")
    if limit <= _SMALL_HEAD:
        return _read_head_small(path, limit)
    return _read(path, limit)


def read_small_file(path):
    """The bytes of a regular file, or None when the caller should read it itself
    (a special file, an empty or very large one, or a file that changed size).

    Raises OSError, with the file name, when the file cannot be opened or read.
    """
    got = _read(path, _MAX_DIRECT)
    return None if got is None else got[0]


def read_heads(paths, long long limit):
    """read_head for many files in one call: every open, fstat, read and close of
    the batch happens in one stretch without the GIL, so a thread reading a batch
    lets the others parse theirs instead of handing the GIL back and forth per file.

    Returns, per path: (head bytes, file size); None when the caller should read
    that file itself; or the OSError opening or reading it raised (not raised here,
    so one missing file does not cost the batch).
    """
    if not 0 < limit <= _SMALL_HEAD:
        raise ValueError(f"limit is between 1 and {_SMALL_HEAD} bytes")
    cdef list encoded = [os.fsencode(p) for p in paths]
    cdef Py_ssize_t n = len(encoded), k
    cdef const char **cpaths = <const char **>PyMem_Malloc(max(n, 1) * sizeof(char *))
    cdef char **cbufs = <char **>PyMem_Malloc(max(n, 1) * sizeof(char *))
    cdef PyObject **bufs = <PyObject **>PyMem_Malloc(max(n, 1) * sizeof(PyObject *))
    cdef long long *sizes = <long long *>PyMem_Malloc(max(n, 1) * sizeof(long long))
    cdef size_t *gots = <size_t *>PyMem_Malloc(max(n, 1) * sizeof(size_t))
    cdef int *errs = <int *>PyMem_Malloc(max(n, 1) * sizeof(int))
    cdef int *states = <int *>PyMem_Malloc(max(n, 1) * sizeof(int))
    cdef int fd, saved
    cdef df_stat_t st
    cdef size_t got, want
    cdef long r
    cdef list out
    if (cpaths == NULL or cbufs == NULL or bufs == NULL or sizes == NULL or gots == NULL
            or errs == NULL or states == NULL):
        PyMem_Free(cpaths); PyMem_Free(cbufs); PyMem_Free(bufs); PyMem_Free(sizes); PyMem_Free(gots)
        PyMem_Free(errs); PyMem_Free(states)
        raise MemoryError()
    for k in range(n):
        bufs[k] = NULL
    try:
        for k in range(n):
            cpaths[k] = PyBytes_AS_STRING(encoded[k])
            bufs[k] = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>limit)
            if bufs[k] == NULL:
                raise MemoryError()
            cbufs[k] = PyBytes_AS_STRING(<object>bufs[k])
        with nogil:
            for k in range(n):
                # states: 0 read, 1 not a plain file (or it changed), 2 OS error
                states[k] = 1
                errs[k] = 0
                sizes[k] = 0
                gots[k] = 0
                fd = df_open(cpaths[k])
                if fd < 0:
                    states[k] = 2
                    errs[k] = df_errno()
                    continue
                if df_fstat(fd, &st) != 0:
                    states[k] = 2
                    errs[k] = df_errno()
                elif DF_IS_REG(st.st_mode) and 0 < st.st_size <= _MAX_DIRECT:
                    sizes[k] = st.st_size
                    want = <size_t>(st.st_size if st.st_size < limit else limit)
                    got = 0
                    r = 0
                    while got < want:
                        r = df_read(fd, cbufs[k] + got, want - got)
                        if r < 0 and df_errno() == EINTR:
                            continue
                        if r <= 0:
                            break
                        got += <size_t>r
                    if r < 0:
                        states[k] = 2
                        errs[k] = df_errno()
                    elif got == want:
                        states[k] = 0
                        gots[k] = got
                df_close(fd)
        out = [None] * n
        for k in range(n):
            if states[k] == 0:
                if _PyBytes_Resize(&bufs[k], <Py_ssize_t>gots[k]) != 0:
                    bufs[k] = NULL
                    raise MemoryError()
                out[k] = (<object>bufs[k], sizes[k])
            elif states[k] == 2:
                out[k] = OSError(errs[k], os.strerror(errs[k]), paths[k])
        return out
    finally:
        for k in range(n):
            if bufs[k] != NULL:
                Py_DECREF(bufs[k])
        PyMem_Free(cpaths); PyMem_Free(cbufs); PyMem_Free(bufs); PyMem_Free(sizes); PyMem_Free(gots)
        PyMem_Free(errs); PyMem_Free(states)
