# cython: language_level=3, boundscheck=False, wraparound=False
"""The system calls of a group commit, for a whole batch in one stretch without
the GIL (the sequence is explained in dicomfast/net/services/durable.py, which also
has the same steps in Python).

Made from Python, every write, fsync and link would release and take back the GIL;
with the event loop thread busy receiving, each of those hand-overs is a context
switch or two. Here a batch costs one.

``create_whole`` writes a whole object that is still in memory (every object
smaller than the SCP's flush size) to a new file by direct I/O (O_DIRECT), through
an aligned staging buffer: the data goes from that buffer to the device, not
through the page cache. A buffered write costs a page-cache page per 4 KiB, found,
charged and later reclaimed (on a virtual machine each page the host has taken
back is also faulted in again): several times the CPU of the copy into the staging
buffer. The tail after the last whole 4 KiB block is written buffered (O_DIRECT
cleared with fcntl), and the commit's fsync makes both durable. A file system
without direct I/O (EINVAL) gets a buffered write.

Linux only (O_TMPFILE files linked in through /proc/self/fd, sync_file_range,
O_DIRECT); elsewhere ``available`` is False and the Python version is used.
"""
import os

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Malloc

cdef extern from *:
    """
    #include <errno.h>
    #ifdef __linux__
    #include <fcntl.h>
    #include <stdio.h>
    #include <string.h>
    #include <sys/uio.h>
    #include <unistd.h>
    #define DF_DURABLE_AVAILABLE 1
    typedef struct iovec df_iovec;
    #else
    #define DF_DURABLE_AVAILABLE 0
    typedef struct { void *iov_base; size_t iov_len; } df_iovec;
    #endif

    typedef struct {
        int fd;               /* the object's file; -1: create it */
        int err;              /* 0, or the errno that stopped this object */
        long long offset;     /* where iov goes in the file */
        df_iovec *iov;
        int niov;
        const char *name;     /* final name in the folder */
        const char *spare;    /* a free hidden name, for replacing an existing file */
    } df_commit_job;

    #ifdef __linux__
    /* pwritev until everything is written: the kernel may write less than asked. */
    static int df_write_all(int fd, df_iovec *iov, int n, long long off) {
        while (n > 0) {
            ssize_t w = pwritev(fd, iov, n > 512 ? 512 : n, (off_t)off);
            if (w < 0) {
                if (errno == EINTR) continue;
                return errno;
            }
            if (w == 0) return EIO;
            off += w;
            while (n > 0 && (size_t)w >= iov->iov_len) {
                w -= (ssize_t)iov->iov_len;
                iov++;
                n--;
            }
            if (w > 0) {
                iov->iov_base = (char *)iov->iov_base + w;
                iov->iov_len -= (size_t)w;
            }
        }
        return 0;
    }

    /* Direct I/O needs buffer address, length and file offset aligned to the
       device's logical block; 4 KiB covers every common device. */
    #define DF_DIRECT_ALIGN 4096

    static size_t df_iov_total(const df_iovec *iov, int n) {
        size_t total = 0;
        while (n-- > 0) total += (iov++)->iov_len;
        return total;
    }

    /* A whole object into the new O_DIRECT file `fd`: gathered into `stage`, its
       whole 4 KiB blocks written directly, the tail buffered. A direct write the
       file system refuses (EINVAL) is redone buffered from the start. */
    static int df_write_direct(int fd, const df_iovec *iov, int n, size_t total,
                               char *stage) {
        size_t body = total & ~(size_t)(DF_DIRECT_ALIGN - 1), pos = 0;
        int k, e, fl;
        df_iovec v;
        for (k = 0; k < n; k++) {
            memcpy(stage + pos, iov[k].iov_base, iov[k].iov_len);
            pos += iov[k].iov_len;
        }
        if (body) {
            v.iov_base = stage;
            v.iov_len = body;
            e = df_write_all(fd, &v, 1, 0);
            if (e == EINVAL) body = 0;
            else if (e) return e;
        }
        if (total > body) {
            fl = fcntl(fd, F_GETFL);
            if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0) return errno;
            v.iov_base = stage + body;
            v.iov_len = total - body;
            return df_write_all(fd, &v, 1, (long long)body);
        }
        return 0;
    }

    /* linkat(2) of an O_TMPFILE file: through /proc/self/fd with AT_SYMLINK_FOLLOW,
       which needs no privilege (AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH). */
    static int df_link(int fd, int dir_fd, const char *name) {
        char path[48];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        return linkat(AT_FDCWD, path, dir_fd, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
    }

    /* linkat never replaces: an existing name is replaced atomically through
       `spare` (linked, then renamed over it). */
    static int df_link_replacing(int fd, int dir_fd, const char *name, const char *spare) {
        int e = df_link(fd, dir_fd, name);
        if (e != EEXIST) return e;
        e = df_link(fd, dir_fd, spare);
        if (e) return e;
        if (renameat(dir_fd, spare, dir_fd, name) == 0) return 0;
        e = errno;
        unlinkat(dir_fd, spare, 0);
        return e;
    }

    /* A new unnamed file in the folder `dir_fd` holding `iov` at `offset`: a whole
       object (offset 0) that fits the aligned buffer `stage` is written by direct
       I/O, anything else buffered (so is everything on a file system that refuses
       direct I/O, EINVAL). Returns the descriptor, or -1 with *err set (nothing
       left open). */
    static int df_create(int dir_fd, df_iovec *iov, int n, long long offset, char *stage,
                         size_t stage_len, int *err) {
        size_t total = df_iov_total(iov, n);
        int fd;
        *err = 0;
        if (stage != NULL && offset == 0 && total <= stage_len) {
            fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC | O_DIRECT, 0600);
            if (fd >= 0) {
                *err = df_write_direct(fd, iov, n, total, stage);
                goto written;
            }
            if (errno != EINVAL) {
                *err = errno;
                return -1;
            }
        }
        fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
            *err = errno;
            return -1;
        }
        *err = df_write_all(fd, iov, n, offset);
    written:
        if (*err) {
            close(fd);
            return -1;
        }
        return fd;
    }

    static void df_commit(df_commit_job *jobs, size_t n, int dir_fd, int do_fsync) {
        size_t i;
        int any = 0;
        /* 1. The rest of each file, and its writeback started: the file system
              allocates the whole batch in one journal transaction. */
        for (i = 0; i < n; i++) {
            df_commit_job *j = &jobs[i];
            if (j->fd < 0) {
                j->fd = df_create(dir_fd, j->iov, j->niov, j->offset, NULL, 0, &j->err);
            } else {
                j->err = df_write_all(j->fd, j->iov, j->niov, j->offset);
            }
            if (!j->err && do_fsync)
                sync_file_range(j->fd, 0, 0, SYNC_FILE_RANGE_WRITE);  /* a hint only */
        }
        /* 2-3. fsync each (the first waits for that transaction, the others mostly
                find their inode committed), then give it its name. */
        for (i = 0; i < n; i++) {
            df_commit_job *j = &jobs[i];
            if (!j->err && do_fsync && fsync(j->fd) != 0)
                j->err = errno;
            if (!j->err)
                j->err = df_link_replacing(j->fd, dir_fd, j->name, j->spare);
            if (j->fd >= 0) {
                close(j->fd);
                j->fd = -1;
            }
            if (!j->err)
                any = 1;
        }
        /* 4. One folder fsync makes every new name of the batch durable. */
        if (any && do_fsync && fsync(dir_fd) != 0) {
            int e = errno;
            for (i = 0; i < n; i++)
                if (!jobs[i].err)
                    jobs[i].err = e;
        }
    }
    #else
    static void df_commit(df_commit_job *jobs, size_t n, int dir_fd, int do_fsync) {
        size_t i;
        for (i = 0; i < n; i++) jobs[i].err = ENOSYS;
    }
    static int df_create(int dir_fd, df_iovec *iov, int n, long long offset, char *stage,
                         size_t stage_len, int *err) {
        *err = ENOSYS;
        return -1;
    }
    #endif
    """
    ctypedef struct df_iovec:
        void *iov_base
        size_t iov_len
    ctypedef struct df_commit_job:
        int fd
        int err
        long long offset
        df_iovec *iov
        int niov
        const char *name
        const char *spare
    void df_commit(df_commit_job *jobs, size_t n, int dir_fd, int do_fsync) nogil
    int df_create(int dir_fd, df_iovec *iov, int n, long long offset, char *stage,
                  size_t stage_len, int *err) nogil
    int DF_DURABLE_AVAILABLE
    int DF_DIRECT_ALIGN

#: Whether this build can commit natively (Linux).
available = bool(DF_DURABLE_AVAILABLE)


def commit_batch(list jobs, int dir_fd, bint do_fsync):
    """Commit `jobs` (durable.Job objects of unnamed files, ``tmp`` empty) into the
    folder open as `dir_fd`: sets each job's ``error`` (0: durable under its name)
    and leaves every ``fd`` closed (-1)."""
    cdef Py_ssize_t n = len(jobs), i, total = 0, held = 0, pos = 0
    for job in jobs:
        if job.tmp:
            raise ValueError("named temporary files are committed by the Python version")
        total += len(job.chunks)
    cdef df_commit_job *cjobs = <df_commit_job *>PyMem_Malloc(max(n, 1) * sizeof(df_commit_job))
    cdef Py_buffer *bufs = <Py_buffer *>PyMem_Malloc(max(total, 1) * sizeof(Py_buffer))
    cdef df_iovec *iovs = <df_iovec *>PyMem_Malloc(max(total, 1) * sizeof(df_iovec))
    if cjobs == NULL or bufs == NULL or iovs == NULL:
        PyMem_Free(cjobs)
        PyMem_Free(bufs)
        PyMem_Free(iovs)
        raise MemoryError()
    # The encoded names must outlive the C call: this list holds them.
    cdef list names = []
    cdef bytes name, spare
    try:
        for i in range(n):
            job = jobs[i]
            name = os.fsencode(job.name)
            spare = os.fsencode(job.spare)
            names.append((name, spare))
            cjobs[i].fd = job.fd
            cjobs[i].err = 0
            cjobs[i].offset = job.offset
            cjobs[i].iov = iovs + pos
            cjobs[i].niov = 0
            cjobs[i].name = name
            cjobs[i].spare = spare
            for chunk in job.chunks:
                PyObject_GetBuffer(chunk, &bufs[held], PyBUF_SIMPLE)
                held += 1
                if bufs[held - 1].len:
                    iovs[pos].iov_base = bufs[held - 1].buf
                    iovs[pos].iov_len = <size_t>bufs[held - 1].len
                    pos += 1
                    cjobs[i].niov += 1
        with nogil:
            df_commit(cjobs, <size_t>n, dir_fd, do_fsync)
        for i in range(n):
            job = jobs[i]
            job.fd = -1
            job.error = cjobs[i].err
    finally:
        for i in range(held):
            PyBuffer_Release(&bufs[i])
        PyMem_Free(cjobs)
        PyMem_Free(bufs)
        PyMem_Free(iovs)


def create_whole(int dir_fd, list chunks, stage=None):
    """A new unnamed file in the folder open as `dir_fd`, holding `chunks` (a whole
    object): written by direct I/O through `stage` (as for commit_batch) where it
    fits (`stage` must be aligned to 4 KiB, as an mmap is), else buffered. Returns
    its descriptor, for a Job with nothing left to write; raises OSError (nothing
    left open). Runs without the GIL: the event loop goes on receiving meanwhile."""
    cdef Py_ssize_t n = len(chunks), i, held = 0, pos = 0
    cdef Py_buffer stage_buf
    cdef char *stage_ptr = NULL
    cdef size_t stage_len = 0
    cdef bint staged = False
    cdef int fd = -1, err = 0
    cdef Py_buffer *bufs = <Py_buffer *>PyMem_Malloc(max(n, 1) * sizeof(Py_buffer))
    cdef df_iovec *iovs = <df_iovec *>PyMem_Malloc(max(n, 1) * sizeof(df_iovec))
    if bufs == NULL or iovs == NULL:
        PyMem_Free(bufs)
        PyMem_Free(iovs)
        raise MemoryError()
    try:
        if stage is not None:
            PyObject_GetBuffer(stage, &stage_buf, PyBUF_WRITABLE)
            staged = True
            if <size_t>stage_buf.buf % DF_DIRECT_ALIGN == 0:
                stage_ptr = <char *>stage_buf.buf
                stage_len = <size_t>stage_buf.len
        for i in range(n):
            PyObject_GetBuffer(chunks[i], &bufs[held], PyBUF_SIMPLE)
            held += 1
            if bufs[held - 1].len:
                iovs[pos].iov_base = bufs[held - 1].buf
                iovs[pos].iov_len = <size_t>bufs[held - 1].len
                pos += 1
        with nogil:
            fd = df_create(dir_fd, iovs, <int>pos, 0, stage_ptr, stage_len, &err)
    finally:
        if staged:
            PyBuffer_Release(&stage_buf)
        for i in range(held):
            PyBuffer_Release(&bufs[i])
        PyMem_Free(bufs)
        PyMem_Free(iovs)
    if fd < 0:
        raise OSError(err, os.strerror(err))
    return fd
