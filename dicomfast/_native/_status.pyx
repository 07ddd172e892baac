# cython: language_level=3
"""The one table from C status codes to Python exceptions."""
from dicomfast._native.dfcore cimport (
    DF_E_DECODE, DF_E_INVALID_ARG, DF_E_LIBRARY, DF_E_LIMIT, DF_E_MALFORMED,
    DF_E_NO_MEMORY, DF_E_NOT_DICOM, DF_E_OUTPUT_TOO_SMALL, DF_E_TRUNCATED, DF_E_UNSUPPORTED,
    DF_NO_TAG, DF_OK, df_error, df_status,
)

from dicomfast import errors


cdef int check(df_status status, const df_error *err, str what=None) except -1:
    """Raise the exception for a failed C call; `what` names the codec for decode errors."""
    if status == DF_OK:
        return 0
    detail = err.detail.decode("utf-8", "replace") if err != NULL else ""
    offset = err.offset if err != NULL else None
    tag = err.tag if err != NULL and err.tag != DF_NO_TAG else None
    if status == DF_E_TRUNCATED:
        raise errors.TruncatedDataError(detail, offset=offset, tag=tag)
    if status == DF_E_MALFORMED or status == DF_E_LIMIT:
        if what is not None:
            raise errors.DecodeError(detail, codec=what)
        raise errors.MalformedDataError(detail, offset=offset, tag=tag)
    if status == DF_E_NOT_DICOM:
        raise errors.InvalidDicomError(detail)
    if status == DF_E_DECODE or status == DF_E_LIBRARY:
        raise errors.DecodeError(detail, codec=what)
    if status == DF_E_UNSUPPORTED:
        if what is not None:
            raise errors.DecodeError(detail, codec=what)
        raise errors.UnsupportedTransferSyntaxError(detail)
    if status == DF_E_NO_MEMORY:
        raise MemoryError(detail)
    if status == DF_E_OUTPUT_TOO_SMALL or status == DF_E_INVALID_ARG:
        raise ValueError(detail)
    raise errors.DicomfastError(f"C core status {status}: {detail}")
