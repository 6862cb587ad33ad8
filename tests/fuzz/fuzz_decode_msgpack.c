/* fuzz_decode_msgpack.c -- libFuzzer target: fs_decode_msgpack on arbitrary bytes.
 *
 * Besides "no crash, no sanitizer report", it checks what the decoder
 * promises (decode.h, event.h):
 *   - the reason is a known one, and agrees with the framer on the message's
 *     shape (truncated / bad start byte / malformed / trailing data);
 *   - on FS_OK every string slice lies inside the message (or is one of the
 *     static defaults), is valid UTF-8 and within its length limit, the value
 *     is finite and below 1e18, and the hash matches the customer id;
 *   - the result is deterministic: decoding the same bytes again gives the
 *     same reason and the same event;
 *   - round trip: the event re-packed as a plain map with msgpack-c, and
 *     written as JSON, decodes (in both decoders) to the same event;
 *   - differential: the msgpack-c-based reference decoder (mp_reference.h)
 *     gives the same reason, and on FS_OK the same event, slices at the
 *     same bytes of the message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz_check.h"
#include "mp_reference.h"

/* The framer decides truncated / bad byte / trailing before anything else. */
static void check_against_frame(const char *msg, size_t len, fs_reject r)
{
    size_t n = 0;
    switch (fs_frame_msgpack(msg, len, &n)) {
    case FS_FRAME_NEED_MORE:
        CHECK(r == FS_REJECT_TRUNCATED);
        break;
    case FS_FRAME_BAD:
        CHECK(n >= 1 && n <= len && (unsigned char)msg[n - 1] == 0xc1);
        CHECK(r == (n == 1 ? FS_REJECT_BAD_START_BYTE : FS_REJECT_MALFORMED));
        break;
    case FS_FRAME_OK:
        CHECK(n >= 1 && n <= len);
        if (n < len)
            CHECK(r == FS_REJECT_TRAILING_DATA);
        else
            CHECK(r != FS_REJECT_TRUNCATED && r != FS_REJECT_TRAILING_DATA &&
                  r != FS_REJECT_BAD_START_BYTE);
        break;
    }
}

/* Appends s as a JSON string literal. */
static size_t json_str(char *out, fs_slice s)
{
    size_t o = 0;
    out[o++] = '"';
    for (uint32_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

/* Round trip through both decoders: msgpack-c's re-packing (fuzz_check.h),
 * and the event written as JSON. */
static void round_trip(fs_decoder *dec, const fs_event *e)
{
    check_msgpack_round_trip(dec, e);
    fs_event again;

    /* 6 bytes of JSON per input byte at most, plus keys and numbers. */
    size_t cap = 6 * (e->customer_id.len + e->event.len + 3 * FS_MAX_LABEL) + 256;
    char *js = malloc(cap), *scratch = malloc(cap);
    CHECK(js && scratch);
    size_t n = (size_t)sprintf(js, "{\"customer_id\":");
    n += json_str(js + n, e->customer_id);
    n += (size_t)sprintf(js + n, ",\"ts\":%lld,\"event\":", (long long)e->ts);
    n += json_str(js + n, e->event);
    n += (size_t)sprintf(js + n, ",\"channel\":");
    n += json_str(js + n, e->channel);
    n += (size_t)sprintf(js + n, ",\"campaign\":");
    n += json_str(js + n, e->campaign);
    n += (size_t)sprintf(js + n, ",\"segment\":");
    n += json_str(js + n, e->segment);
    n += (size_t)sprintf(js + n, ",\"value\":%.17g}", e->value);
    CHECK(n <= cap);
    size_t used;
    CHECK(fs_decode_json(dec, js, n, &again, scratch, &used) == FS_OK);
    CHECK(same_event(e, &again));
    free(js);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fs_decoder *dec;
    if (!dec)
        dec = fs_decoder_new();
    const char *msg = (const char *)data;
    fs_event ev, ev2;
    fs_reject r = fs_decode_msgpack(dec, msg, size, &ev);
    CHECK((unsigned)r < FS_REJECT_COUNT);
    check_against_frame(msg, size, r);
    fs_event ref;
    fs_reject rr = fs_ref_decode_msgpack(msg, size, &ref);
    if (rr != r) {
        fprintf(stderr, "decoder %s, reference %s\n", fs_reject_name(r), fs_reject_name(rr));
        CHECK(rr == r);
    }
    if (r == FS_OK)
        CHECK(same_event(&ev, &ref) && ev.customer_id.ptr == ref.customer_id.ptr &&
              ev.event.ptr == ref.event.ptr);
    CHECK(fs_decode_msgpack(dec, msg, size, &ev2) == r);
    if (r == FS_OK) {
        fuzz_where w = {msg, size, NULL, 0};
        check_event(&ev, &w);
        CHECK(same_event(&ev, &ev2));
        round_trip(dec, &ev);
    }
    return 0;
}
