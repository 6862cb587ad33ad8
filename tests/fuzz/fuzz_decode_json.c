/* fuzz_decode_json.c -- libFuzzer target: fs_decode_json on arbitrary bytes.
 *
 * The message and the scratch are exactly as large as the API allows (len
 * bytes each), so ASan catches any read past the message or write past the
 * scratch. On FS_OK it checks the event invariants: each string slice lies in
 * the message or in the used part of the scratch (or is a static default),
 * is valid UTF-8 and within its limit; the value is finite and below 1e18.
 * It also checks determinism (same bytes, same result) and a round trip:
 * the event re-packed as MessagePack decodes to the same event, so both
 * decoders agree on every event JSON accepts.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "decode.h"
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

typedef struct where {
    const char *msg;
    size_t len;
    const char *scratch;
    size_t used;
} where;

static void check_str(fs_slice s, const where *w, uint32_t min, uint32_t max, const char *dflt)
{
    CHECK(s.len >= min && s.len <= max);
    CHECK(inside(s, w->msg, w->len) || inside(s, w->scratch, w->used) ||
          (dflt && is_literal(s, dflt)));
    CHECK(fs_utf8_valid(s.ptr, s.len));
}

static void check_event(const fs_event *e, const where *w)
{
    check_str(e->customer_id, w, 1, FS_MAX_CUSTOMER_ID, NULL);
    check_str(e->event, w, 1, FS_MAX_EVENT_TYPE, NULL);
    check_str(e->channel, w, 0, FS_MAX_LABEL, "unknown");
    check_str(e->campaign, w, 0, FS_MAX_LABEL, "");
    check_str(e->segment, w, 0, FS_MAX_LABEL, "unknown");
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

static void pack_slice(msgpack_packer *pk, const char *key, fs_slice s)
{
    msgpack_pack_str(pk, strlen(key));
    msgpack_pack_str_body(pk, key, strlen(key));
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void round_trip(fs_decoder *dec, const fs_event *e)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pack_slice(&pk, "segment", e->segment);
    pack_slice(&pk, "campaign", e->campaign);
    pack_slice(&pk, "channel", e->channel);
    pack_slice(&pk, "event", e->event);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "value", 5);
    msgpack_pack_double(&pk, e->value);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, e->ts);
    pack_slice(&pk, "customer_id", e->customer_id);
    fs_event again;
    CHECK(fs_decode_msgpack(dec, sb.data, sb.size, &again) == FS_OK);
    CHECK(same_event(e, &again));
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fs_decoder *dec;
    if (!dec)
        dec = fs_decoder_new();
    const char *msg = (const char *)data;
    char *scratch = malloc(size ? size : 1);
    CHECK(scratch);
    fs_event ev, ev2;
    size_t used = 99, used2 = 99;
    fs_reject r = fs_decode_json(dec, msg, size, &ev, scratch, &used);
    CHECK((unsigned)r < FS_REJECT_COUNT);
    CHECK(r != FS_REJECT_KEY_NOT_STRING && r != FS_REJECT_BAD_START_BYTE); /* msgpack only */
    CHECK(used <= size);
    if (r == FS_OK) {
        where w = {msg, size, scratch, used};
        check_event(&ev, &w);
        /* Deterministic, including with a different scratch buffer. */
        char *scratch2 = malloc(size ? size : 1);
        CHECK(scratch2);
        CHECK(fs_decode_json(dec, msg, size, &ev2, scratch2, &used2) == FS_OK);
        CHECK(used2 == used && same_event(&ev, &ev2));
        free(scratch2);
        round_trip(dec, &ev);
    } else {
        CHECK(fs_decode_json(dec, msg, size, &ev2, scratch, &used2) == r);
    }
    free(scratch);
    return 0;
}
