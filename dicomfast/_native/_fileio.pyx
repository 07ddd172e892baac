# cython: language_level=3, boundscheck=False, wraparound=False
"""Whole-file reads in one call, the GIL released around the system calls.

Reading many small files is dominated by per-call overhead: open, fstat, read
and close each cost a Python call and a GIL round trip when made from Python.
Here they are four system calls between one GIL release and one bytes object.
"""
import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_SetFromErrnoWithFilenameObject

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
    cdef bytes data = PyBytes_FromStringAndSize(NULL, size)
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


def read_head(path, long long limit):
    """(the first `limit` bytes of a regular file, or all of a shorter one; the file
    size), or None when the caller should read it itself (a special file, an empty
    or very large one, one that changed size). Raises OSError like open()."""
    if limit <= 0:
        raise ValueError("limit is a positive number of bytes")
    return _read(path, limit)


def read_small_file(path):
    """The bytes of a regular file, or None when the caller should read it itself
    (a special file, an empty or very large one, or a file that changed size).

    Raises OSError, with the file name, when the file cannot be opened or read.
    """
    got = _read(path, _MAX_DIRECT)
    return None if got is None else got[0]
