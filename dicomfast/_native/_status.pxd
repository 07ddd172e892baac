from dicomfast._native.dfcore cimport df_error, df_status

cdef int check(df_status status, const df_error *err, str what=*) except -1
