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
 *     written as JSON, decodes (in both decoders) to the same event.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "decode.h"
#include "frame.h"
#include "utf8.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool inside(fs_slice s, const char *base, size_t len)
{
    return s.ptr >= base && s.ptr + s.len <= base + len;
}

static bool is_literal(fs_slice s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static void check_label(fs_slice s, const char *msg, size_t len, const char *dflt)
{
    CHECK(s.len <= FS_MAX_LABEL);
    CHECK(inside(s, msg, len) || is_literal(s, dflt));
    CHECK(fs_utf8_valid(s.ptr, s.len));
}

static void check_event(const fs_event *e, const char *msg, size_t len)
{
    CHECK(e->customer_id.len >= 1 && e->customer_id.len <= FS_MAX_CUSTOMER_ID);
    CHECK(e->event.len >= 1 && e->event.len <= FS_MAX_EVENT_TYPE);
    CHECK(inside(e->customer_id, msg, len));
    CHECK(inside(e->event, msg, len));
    CHECK(fs_utf8_valid(e->customer_id.ptr, e->customer_id.len));
    CHECK(fs_utf8_valid(e->event.ptr, e->event.len));
    check_label(e->channel, msg, len, "unknown");
    check_label(e->campaign, msg, len, "");
    check_label(e->segment, msg, len, "unknown");
    CHECK(isfinite(e->value) && fabs(e->value) < 1e18);
    CHECK(e->customer_hash == fs_hash_customer(e->customer_id.ptr, e->customer_id.len));
}

static bool same_slice(fs_slice a, fs_slice b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static bool same_event(const fs_event *a, const fs_event *b)
{
    return a->ts == b->ts && memcmp(&a->value, &b->value, sizeof a->value) == 0 &&
           a->customer_hash == b->customer_hash && same_slice(a->customer_id, b->customer_id) &&
           same_slice(a->event, b->event) && same_slice(a->channel, b->channel) &&
           same_slice(a->campaign, b->campaign) && same_slice(a->segment, b->segment);
}

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

static void pack_slice(msgpack_packer *pk, const char *key, fs_slice s)
{
    msgpack_pack_str(pk, strlen(key));
    msgpack_pack_str_body(pk, key, strlen(key));
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
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

static void round_trip(fs_decoder *dec, const fs_event *e)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pack_slice(&pk, "customer_id", e->customer_id);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, e->ts);
    pack_slice(&pk, "event", e->event);
    pack_slice(&pk, "channel", e->channel);
    pack_slice(&pk, "campaign", e->campaign);
    pack_slice(&pk, "segment", e->segment);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "value", 5);
    msgpack_pack_double(&pk, e->value);
    fs_event again;
    CHECK(fs_decode_msgpack(dec, sb.data, sb.size, &again) == FS_OK);
    CHECK(same_event(e, &again));
    msgpack_sbuffer_destroy(&sb);

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
    CHECK(fs_decode_msgpack(dec, msg, size, &ev2) == r);
    if (r == FS_OK) {
        check_event(&ev, msg, size);
        CHECK(same_event(&ev, &ev2));
        round_trip(dec, &ev);
    }
    return 0;
}
