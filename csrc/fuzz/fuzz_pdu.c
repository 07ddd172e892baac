/* libFuzzer harness for the upper layer PDU framing and item index: df_pdu_frame +
 * df_pdu_parse (PS3.8 §9.3, Annex D).
 *
 * Input layout: byte 0 chooses the options, the rest is the received byte stream.
 *   bit 0  strict              bits 1-2  max_pdata_len: 0 (none), 16, 16384, 1 MiB
 *   bit 3  max_other_len 64    (else 1 MiB, the association layer's default)
 *
 * Every whole PDU at the start of the stream is parsed, and the stream is consumed
 * PDU after PDU as the Framer of dicomfast/net/pdu.py does. Besides the sanitizers,
 * the harness checks the contracts the Python decoder relies on without re-checking:
 * frame() never asks for fewer bytes than it already has when incomplete, a complete
 * PDU is exactly 6 + PDU-length bytes, every indexed value lies inside the PDU, a
 * parent precedes its children, and the two-pass sizing of DF_E_OUTPUT_TOO_SMALL
 * converges. A violated contract traps, which libFuzzer records as a crash.
 *
 * Build and run: bash tools/fuzz.sh pdu 60
 */
#include <stdint.h>
#include <stdlib.h>

#include "dicomfast/df_pdu.h"

#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) __builtin_trap(); \
    } while (0)

static const uint32_t PDATA_LIMITS[4] = {0, 16, 16384, 1u << 20};

static void parse_one(const uint8_t *pdu, size_t len, const df_pdu_opts *opts) {
    df_pdu_item small[4];
    df_pdu_item *items;
    df_error err;
    size_t n = 0, n2 = 0, i;
    df_status st = df_pdu_parse(pdu, len, small, 4, &n, opts, &err);
    if (st == DF_E_OUTPUT_TOO_SMALL) {
        FUZZ_CHECK(n > 4);
        items = malloc(n * sizeof *items);
        if (items == NULL) return;
        st = df_pdu_parse(pdu, len, items, n, &n2, opts, &err);
        FUZZ_CHECK(st != DF_E_OUTPUT_TOO_SMALL);
        if (st == DF_OK) FUZZ_CHECK(n2 == n);
    } else {
        items = small;
        n2 = n;
        if (st == DF_OK) FUZZ_CHECK(n <= 4);
    }
    if (st == DF_OK) {
        for (i = 0; i < n2; i++) {
            const df_pdu_item *it = &items[i];
            FUZZ_CHECK((uint64_t)it->offset + it->length <= len);
            FUZZ_CHECK(it->parent == DF_PDU_NO_PARENT || it->parent < i);
            if (it->parent != DF_PDU_NO_PARENT) {
                const df_pdu_item *p = &items[it->parent];
                FUZZ_CHECK(it->offset >= p->offset &&
                           (uint64_t)it->offset + it->length <= (uint64_t)p->offset + p->length);
            }
        }
    } else {
        FUZZ_CHECK(st == DF_E_TRUNCATED || st == DF_E_MALFORMED || st == DF_E_LIMIT ||
                   st == DF_E_UNSUPPORTED || st == DF_E_INVALID_ARG);
    }
    if (items != small) free(items);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    df_pdu_opts opts;
    df_pdu_frame_info info;
    df_error err;
    const uint8_t *p;
    size_t left;
    if (size < 1) return 0;
    opts.strict = data[0] & 1;
    opts.max_pdata_len = PDATA_LIMITS[(data[0] >> 1) & 3];
    opts.max_other_len = (data[0] & 8) ? 64 : (1u << 20);
    p = data + 1;
    left = size - 1;
    while (left > 0) {
        /* Copy the stream so that a read past what is framed is caught. */
        uint8_t *buf = malloc(left);
        df_status st;
        if (buf == NULL) return 0;
        memcpy(buf, p, left);
        st = df_pdu_frame(buf, left, &info, &opts, &err);
        if (st != DF_OK) {
            FUZZ_CHECK(st == DF_E_MALFORMED || st == DF_E_LIMIT);
            free(buf);
            break;
        }
        if (!info.complete) {
            FUZZ_CHECK(info.needed > left || left < DF_PDU_HEADER_LEN);
            free(buf);
            break;
        }
        FUZZ_CHECK(info.needed == (uint64_t)DF_PDU_HEADER_LEN + info.length);
        FUZZ_CHECK(info.needed <= left);
        free(buf);
        /* An exactly sized copy of the one PDU. */
        buf = malloc((size_t)info.needed);
        if (buf == NULL) return 0;
        memcpy(buf, p, (size_t)info.needed);
        parse_one(buf, (size_t)info.needed, &opts);
        free(buf);
        p += info.needed;
        left -= (size_t)info.needed;
    }
    return 0;
}
