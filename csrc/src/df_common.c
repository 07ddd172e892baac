/* Error record helpers shared by every part of the C core. */
#include "dicomfast/df_common.h"

#include <stdarg.h>
#include <stdio.h>

df_status df_fail(df_error *err, df_status status, uint64_t offset, uint32_t tag,
                  const char *fmt, ...) {
    if (err != NULL) {
        va_list ap;
        err->status = status;
        err->offset = offset;
        err->tag = tag;
        va_start(ap, fmt);
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
        va_end(ap);
    }
    return status;
}

void df_error_clear(df_error *err) {
    if (err != NULL) {
        err->status = DF_OK;
        err->offset = 0;
        err->tag = DF_NO_TAG;
        err->detail[0] = '\0';
    }
}
