/* fuzz_check.h -- checks shared by the libFuzzer targets.
 *
 * CHECK aborts with the failed condition, which libFuzzer reports as a crash
 * and saves the input for. The event checks are what decode.h and event.h
 * promise for an accepted message, whichever decoder produced it.
 */
#ifndef FS_FUZZ_CHECK_H
#define FS_FUZZ_CHECK_H

#include <math.h>
#include <stdbool.h>
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

static inline bool inside(fs_slice s, const char *base, size_t len)
{
    return base && s.ptr >= base && s.ptr + s.len <= base + len;
}

static inline bool is_literal(fs_slice s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Where an event's slices may point: the message, the used part of the
 * scratch (JSON unescaping; NULL for MessagePack), or a static default. */
typedef struct fuzz_where {
    const char *msg;
    size_t len;
    const char *scratch;
    size_t used;
} fuzz_where;

static inline void check_str(fs_slice s, const fuzz_where *w, uint32_t min, uint32_t max,
                             const char *dflt)
{
    CHECK(s.len >= min && s.len <= max);
    CHECK(inside(s, w->msg, w->len) || inside(s, w->scratch, w->used) ||
          (dflt && is_literal(s, dflt)));
    CHECK(fs_utf8_valid(s.ptr, s.len));
}

static inline void check_event(const fs_event *e, const fuzz_where *w)
{
    check_str(e->customer_id, w, 1, FS_MAX_CUSTOMER_ID, NULL);
    check_str(e->event, w, 1, FS_MAX_EVENT_TYPE, NULL);
    check_str(e->channel, w, 0, FS_MAX_LABEL, "unknown");
    check_str(e->campaign, w, 0, FS_MAX_LABEL, "unknown");
    check_str(e->segment, w, 0, FS_MAX_LABEL, "unknown");
    CHECK(isfinite(e->value) && fabs(e->value) < 1e18);
    CHECK(e->customer_hash == fs_hash_customer(e->customer_id.ptr, e->customer_id.len));
}

static inline bool same_slice(fs_slice a, fs_slice b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static inline bool same_event(const fs_event *a, const fs_event *b)
{
    return a->ts == b->ts && memcmp(&a->value, &b->value, sizeof a->value) == 0 &&
           a->customer_hash == b->customer_hash && same_slice(a->customer_id, b->customer_id) &&
           same_slice(a->event, b->event) && same_slice(a->channel, b->channel) &&
           same_slice(a->campaign, b->campaign) && same_slice(a->segment, b->segment);
}

static inline void pack_slice(msgpack_packer *pk, const char *key, fs_slice s)
{
    msgpack_pack_str(pk, strlen(key));
    msgpack_pack_str_body(pk, key, strlen(key));
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
}

/* The event re-packed by msgpack-c as a plain map (keys in reverse order of
 * the SPEC's table: order is free) must decode to the same event. */
static inline void check_msgpack_round_trip(fs_decoder *dec, const fs_event *e)
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

#endif
